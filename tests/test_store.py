"""Tests of the state store against a real Redis (the `store` and `redis_url` fixtures of conftest)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from alerts.errors import StoreUnavailable
from alerts.service.embedded_redis import free_port
from alerts.state import keys
from alerts.state.store import FIRST_POLL_WINDOW, Store


def test_claim_items_first_sighting_wins(store: Store) -> None:
    """The first claim of an item id is True, later claims of it are False, per feed."""
    assert store.claim_items("bbc", ["a", "b"], ttl=60) == [True, True]
    assert store.claim_items("bbc", ["b", "c", "a"], ttl=60) == [False, True, False]
    assert store.claim_items("aj", ["a"], ttl=60) == [True]
    assert store.claim_items("bbc", [], ttl=60) == []


def test_claim_items_refreshes_ttl(store: Store) -> None:
    """A second sighting of a confirmed item pushes the expiry of its key back to the full ttl."""
    key = keys.item_seen("bbc", "a")
    assert store.claim_items("bbc", ["a"], ttl=1000) == [True]
    assert 990 <= store.client.ttl(key) <= 1000
    store.confirm([key], 1000)
    store.client.expire(key, 5)
    assert store.claim_items("bbc", ["a"], ttl=1000) == [False]
    assert store.client.ttl(key) >= 990


def test_unconfirmed_claims_expire_after_the_hold(store: Store) -> None:
    """A claim never confirmed (its worker died) lasts only the hold, then the item is new again."""
    key = keys.item_seen("bbc", "a")
    assert store.claim_items("bbc", ["a"], ttl=1000, hold=30) == [True]
    assert 25 <= store.client.ttl(key) <= 30
    assert store.claim_items("bbc", ["a"], ttl=1000, hold=30) == [False]
    assert store.client.ttl(key) <= 30, "a held claim is not extended by other pollers"
    store.client.delete(key)  # the hold ran out
    assert store.claim_items("bbc", ["a"], ttl=1000, hold=30) == [True]
    store.confirm([key], 1000)
    assert store.client.get(key) == "d" and store.client.ttl(key) > 990


def test_claim_items_concurrently(redis_url: str) -> None:
    """Eight threads claiming the same 200 ids win each id exactly once in total."""
    ids = [f"item-{n}" for n in range(200)]
    wins: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            own = Store.from_url(redis_url)
            order = ids[:]
            random.Random(seed).shuffle(order)
            barrier.wait(timeout=10)
            for start in range(0, len(order), 10):
                batch = order[start : start + 10]
                won = [i for i, ok in zip(batch, own.claim_items("feed", batch, ttl=60), strict=True) if ok]
                with lock:
                    wins.update(won)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sorted(wins) == sorted(ids)
    assert set(wins.values()) == {1}


def test_claim_stories_group_needs_every_key_free(store: Store) -> None:
    """A group wins only if none of its keys is held; a loser's other keys join the story (transitive)."""
    assert store.claim_stories([["link:a", "headline:a"]], hold=60) == [True]
    assert store.claim_stories([["link:b", "headline:a"]], hold=60) == [False]
    assert store.client.exists("link:b") == 1
    assert store.claim_stories([["link:b", "headline:b"]], hold=60) == [False]
    assert store.claim_stories([["link:c"]], hold=60) == [True]
    assert 50 <= store.client.ttl("link:a") <= 60
    assert store.claim_stories([], hold=60) == []


def test_claim_stories_within_one_batch(store: Store) -> None:
    """Groups of one batch sharing a key, directly or through a chain, yield one winner; others win."""
    result = store.claim_stories([["a", "b"], ["b", "c"], ["d"], ["c", "e"], ["f"]], hold=60)
    assert result == [True, False, True, False, True]
    assert store.client.exists("a", "b", "c", "d", "e", "f") == 6


def test_release_allows_a_new_claim(store: Store) -> None:
    """Released claims can be claimed again."""
    assert store.claim_stories([["x", "y"]], hold=60) == [True]
    store.release(["x", "y"])
    assert store.claim_stories([["y"]], hold=60) == [True]


def test_mark_seeded_once(store: Store) -> None:
    """mark_seeded is True the first time per feed and False afterwards."""
    assert store.mark_seeded("bbc") is True
    assert store.mark_seeded("bbc") is False
    assert store.mark_seeded("aj") is True
    assert "seeded" in store.feed_state("bbc")


def test_update_feed_state_sets_and_deletes(store: Store) -> None:
    """Fields are set, overwritten, and deleted when given None."""
    store.update_feed_state("bbc", {"etag": '"v1"', "last_ok": 5, "last_error": "boom"})
    assert store.feed_state("bbc") == {"etag": '"v1"', "last_ok": "5", "last_error": "boom"}
    store.update_feed_state("bbc", {"etag": '"v2"', "last_error": None, "missing": None})
    assert store.feed_state("bbc") == {"etag": '"v2"', "last_ok": "5"}
    store.update_feed_state("bbc", {"etag": None, "last_ok": None})
    assert store.feed_state("bbc") == {}


def test_try_lock_and_unlock(store: Store) -> None:
    """A free lock yields a token with the given lifetime; a held one yields None until unlocked."""
    token = store.try_lock("lock:x", ttl_ms=5000)
    assert token
    assert 0 < store.client.pttl("lock:x") <= 5000
    assert store.try_lock("lock:x", ttl_ms=5000) is None
    store.unlock("lock:x")
    assert store.try_lock("lock:x", ttl_ms=5000)


def test_new_feeds_are_due_within_the_first_poll_window(store: Store) -> None:
    """Feeds added to the schedule are due within the first-poll window, spread, and limit caps the batch."""
    assert store.sync_schedule({"a": 60.0, "b": 120.0, "c": 30.0}, "fp1") is True
    booked = [score for _, score in store.client.zrange(keys.SCHEDULE, 0, -1, withscores=True)]
    assert len(set(booked)) == 3 and max(booked) <= time.time() + FIRST_POLL_WINDOW
    now = time.time() + FIRST_POLL_WINDOW
    first = store.due_feeds(now, limit=2)
    assert len(first) == 2
    assert sorted(first + store.due_feeds(now)) == ["a", "b", "c"]


def test_due_feed_waits_one_interval(store: Store) -> None:
    """A polled feed is not due again until its interval has passed."""
    before = time.time()
    store.sync_schedule({"a": 60.0, "b": 120.0}, "fp1")
    assert sorted(store.due_feeds(time.time() + FIRST_POLL_WINDOW)) == ["a", "b"]
    assert store.due_feeds(time.time() + FIRST_POLL_WINDOW) == []
    next_a = store.client.zscore(keys.SCHEDULE, "a")
    assert next_a is not None
    assert before + 60 <= next_a <= time.time() + FIRST_POLL_WINDOW + 60
    assert store.due_feeds(next_a - 1) == []
    assert store.due_feeds(next_a) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(next_a + 60)


def test_overdue_feed_is_booked_from_now(store: Store) -> None:
    """A feed found long overdue is booked one interval after now, not at a past time."""
    store.sync_schedule({"a": 60.0}, "fp1")
    later = time.time() + 10_000
    assert store.due_feeds(later) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(later + 60)
    assert store.due_feeds(later + 59) == []


def test_sync_schedule_removes_and_keeps(store: Store) -> None:
    """Dropped feeds leave the schedule, kept ones keep their booking, an unchanged fingerprint is a no-op."""
    store.sync_schedule({"a": 60.0, "b": 60.0}, "fp1")
    store.due_feeds(time.time() + FIRST_POLL_WINDOW)
    booked = store.client.zscore(keys.SCHEDULE, "a")
    assert store.sync_schedule({"a": 60.0}, "fp2") is True
    assert store.client.zscore(keys.SCHEDULE, "b") is None
    assert store.client.hget(keys.INTERVALS, "b") is None
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(booked, abs=FIRST_POLL_WINDOW)
    assert store.due_feeds(time.time() + 10_000) == ["a"]
    assert store.sync_schedule({"a": 60.0, "z": 5.0}, "fp2") is False
    assert store.client.zscore(keys.SCHEDULE, "z") is None


def test_interval_change_applies_to_next_booking(store: Store) -> None:
    """A new interval for a known feed is used from its next poll on."""
    store.sync_schedule({"a": 60.0}, "fp1")
    store.sync_schedule({"a": 300.0}, "fp2")
    now = time.time() + FIRST_POLL_WINDOW
    assert store.due_feeds(now) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(now + 300, abs=5)


def test_unreachable_redis_raises_store_unavailable_quickly() -> None:
    """Operations on a Redis that does not answer raise StoreUnavailable within seconds; ping is False."""
    store = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.claim_items("bbc", ["a"], ttl=60)
    with pytest.raises(StoreUnavailable):
        store.due_feeds(time.time())
    assert store.ping() is False
    assert time.monotonic() - started < 5


def test_shortened_interval_takes_effect_at_once(store: Store) -> None:
    """A feed whose interval is shortened is due after the new interval, not after the old booking."""
    store.sync_schedule({"slow": 3600.0}, "v1")
    assert store.due_feeds(time.time() + FIRST_POLL_WINDOW) == ["slow"]
    assert store.due_feeds(time.time() + 60) == []
    store.sync_schedule({"slow": 5.0}, "v2")
    assert store.due_feeds(time.time() + 6) == ["slow"]


def test_ten_thousand_feeds_are_scheduled_once_per_interval_across_workers(store: Store) -> None:
    """10,000 feeds sync fast, first polls spread out; four concurrent ticks never hand out a feed twice."""
    import threading

    feeds = {f"feed-{n}": 300.0 for n in range(10_000)}
    started = time.perf_counter()
    assert store.sync_schedule(feeds, "big") is True
    assert time.perf_counter() - started < 5
    booked = [score for _, score in store.client.zrange(keys.SCHEDULE, 0, -1, withscores=True)]
    assert max(booked) - min(booked) > 50, "first polls are spread, not all at once"
    moment = time.time() + len(feeds) / 100 + 1  # every first poll is due, no second one yet
    handed: list[str] = []
    lock = threading.Lock()

    def tick() -> None:
        while due := store.due_feeds(moment, limit=500):
            with lock:
                handed.extend(due)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(handed) == len(feeds) and set(handed) == set(feeds), "every feed exactly once"
    assert time.perf_counter() - started < 10
