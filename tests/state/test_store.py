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
from alerts.state.schedule import FIRST_POLL_WINDOW
from alerts.state.store import Store


def test_claim_items_first_sighting_wins(store: Store) -> None:
    """The first claim of an item id is True, later claims of it are False, per feed."""
    assert store.claims.items("bbc", ["a", "b"], ttl=60).won == [True, True]
    assert store.claims.items("bbc", ["b", "c", "a"], ttl=60).won == [False, True, False]
    assert store.claims.items("aj", ["a"], ttl=60).won == [True]
    assert store.claims.items("bbc", [], ttl=60).won == []


def test_claim_items_refreshes_ttl(store: Store) -> None:
    """A second sighting of a confirmed item pushes the expiry of its key back to the full ttl."""
    key = keys.item_seen("bbc", "a")
    claim = store.claims.items("bbc", ["a"], ttl=1000)
    assert claim.won == [True]
    assert 990 <= store.client.ttl(key) <= 1000
    store.claims.confirm(claim.held, 1000)
    store.client.expire(key, 5)
    assert store.claims.items("bbc", ["a"], ttl=1000).won == [False]
    assert store.client.ttl(key) >= 990


def test_unconfirmed_claims_expire_after_the_hold(store: Store) -> None:
    """A claim never confirmed (its worker died) lasts only the hold, then the item is new again."""
    key = keys.item_seen("bbc", "a")
    assert store.claims.items("bbc", ["a"], ttl=1000, hold=30).won == [True]
    assert 25 <= store.client.ttl(key) <= 30
    assert store.claims.items("bbc", ["a"], ttl=1000, hold=30).won == [False]
    assert store.client.ttl(key) <= 30, "a held claim is not extended by other pollers"
    store.client.delete(key)  # the hold ran out
    claim = store.claims.items("bbc", ["a"], ttl=1000, hold=30)
    assert claim.won == [True]
    store.claims.confirm(claim.held, 1000)
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
                won = [
                    i for i, ok in zip(batch, own.claims.items("feed", batch, ttl=60).won, strict=True) if ok
                ]
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


def _story(*story_keys: str) -> tuple[str, tuple[str, ...]]:
    """One (subscriber, story keys) pair of subscriber ``s``."""
    return ("s", story_keys)


def _sent(key: str) -> str:
    return keys.story_sent("s", key)


def test_claim_stories_group_needs_every_key_free(store: Store) -> None:
    """A group wins only if none of its keys is held; a loser's other keys join the story (transitive)."""
    assert store.claims.stories([_story("link:a", "headline:a")], hold=60).won == [True]
    assert store.claims.stories([_story("link:b", "headline:a")], hold=60).won == [False]
    assert store.client.exists(_sent("link:b")) == 1
    assert store.claims.stories([_story("link:b", "headline:b")], hold=60).won == [False]
    assert store.claims.stories([_story("link:c")], hold=60).won == [True]
    assert 50 <= store.client.ttl(_sent("link:a")) <= 60
    assert store.claims.stories([], hold=60).won == []


def test_claim_stories_within_one_batch(store: Store) -> None:
    """Groups of one batch sharing a key, directly or through a chain, yield one winner; others win."""
    groups = [_story("a", "b"), _story("b", "c"), _story("d"), _story("c", "e"), _story("f")]
    result = store.claims.stories(groups, hold=60).won
    assert result == [True, False, True, False, True]
    assert store.client.exists(*map(_sent, "abcdef")) == 6


def test_release_allows_a_new_claim(store: Store) -> None:
    """Released claims can be claimed again."""
    claim = store.claims.stories([_story("x", "y")], hold=60)
    assert claim.won == [True]
    store.claims.release(claim.held)
    assert store.claims.stories([_story("y")], hold=60).won == [True]


def test_mark_seeded_once(store: Store) -> None:
    """mark_seeded is True the first time per feed and False afterwards."""
    assert store.feeds.mark_seeded("bbc") is True
    assert store.feeds.mark_seeded("bbc") is False
    assert store.feeds.mark_seeded("aj") is True
    assert "seeded" in store.feeds.get("bbc")


def test_update_feed_state_sets_and_deletes(store: Store) -> None:
    """Fields are set, overwritten, and deleted when given None."""
    store.feeds.update("bbc", {"etag": '"v1"', "last_ok": 5, "last_error": "boom"})
    assert store.feeds.get("bbc") == {"etag": '"v1"', "last_ok": "5", "last_error": "boom"}
    store.feeds.update("bbc", {"etag": '"v2"', "last_error": None, "missing": None})
    assert store.feeds.get("bbc") == {"etag": '"v2"', "last_ok": "5"}
    store.feeds.update("bbc", {"etag": None, "last_ok": None})
    assert store.feeds.get("bbc") == {}


def test_feed_lock_and_unlock(store: Store) -> None:
    """A free lock yields a token with the given lifetime; a held one yields None until unlocked."""
    token = store.locks.lock_feed("x", ttl=5)
    assert token
    assert 0 < store.client.pttl(keys.poll_lock("x")) <= 5000
    assert store.locks.lock_feed("x", ttl=5) is None
    store.locks.unlock_feed("x", "someone-else|1")
    assert store.locks.lock_feed("x", ttl=5) is None, "only the holder's token unlocks"
    store.locks.unlock_feed("x", token)
    assert store.locks.lock_feed("x", ttl=5)


def test_new_feeds_are_due_within_the_first_poll_window(store: Store) -> None:
    """Feeds added to the schedule are due within the first-poll window, spread, and limit caps the batch."""
    assert store.schedule.sync({"a": 60.0, "b": 120.0, "c": 30.0}, "fp1") is True
    booked = [score for _, score in store.client.zrange(keys.SCHEDULE, 0, -1, withscores=True)]
    assert len(set(booked)) == 3 and max(booked) <= time.time() + FIRST_POLL_WINDOW
    now = time.time() + FIRST_POLL_WINDOW
    first = store.schedule.due(now, limit=2)
    assert len(first) == 2
    assert sorted(first + store.schedule.due(now)) == ["a", "b", "c"]


def test_due_feed_waits_one_interval(store: Store) -> None:
    """A polled feed is not due again until its interval has passed."""
    before = time.time()
    store.schedule.sync({"a": 60.0, "b": 120.0}, "fp1")
    assert sorted(store.schedule.due(time.time() + FIRST_POLL_WINDOW)) == ["a", "b"]
    assert store.schedule.due(time.time() + FIRST_POLL_WINDOW) == []
    next_a = store.client.zscore(keys.SCHEDULE, "a")
    assert next_a is not None
    assert before + 60 <= next_a <= time.time() + FIRST_POLL_WINDOW + 60
    assert store.schedule.due(next_a - 1) == []
    assert store.schedule.due(next_a) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(next_a + 60)


def test_overdue_feed_is_booked_from_now(store: Store) -> None:
    """A feed found long overdue is booked one interval after now, not at a past time."""
    store.schedule.sync({"a": 60.0}, "fp1")
    later = time.time() + 10_000
    assert store.schedule.due(later) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(later + 60)
    assert store.schedule.due(later + 59) == []


def test_sync_schedule_removes_and_keeps(store: Store) -> None:
    """Dropped feeds leave the schedule, kept ones keep their booking, an unchanged fingerprint is a no-op."""
    store.schedule.sync({"a": 60.0, "b": 60.0}, "fp1")
    store.schedule.due(time.time() + FIRST_POLL_WINDOW)
    booked = store.client.zscore(keys.SCHEDULE, "a")
    assert store.schedule.sync({"a": 60.0}, "fp2") is True
    assert store.client.zscore(keys.SCHEDULE, "b") is None
    assert store.client.hget(keys.INTERVALS, "b") is None
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(booked, abs=FIRST_POLL_WINDOW)
    assert store.schedule.due(time.time() + 10_000) == ["a"]
    assert store.schedule.sync({"a": 60.0, "z": 5.0}, "fp2") is False
    assert store.client.zscore(keys.SCHEDULE, "z") is None


def test_interval_change_applies_to_next_booking(store: Store) -> None:
    """A new interval for a known feed is used from its next poll on."""
    store.schedule.sync({"a": 60.0}, "fp1")
    store.schedule.sync({"a": 300.0}, "fp2")
    now = time.time() + FIRST_POLL_WINDOW
    assert store.schedule.due(now) == ["a"]
    assert store.client.zscore(keys.SCHEDULE, "a") == pytest.approx(now + 300, abs=5)


def test_unreachable_redis_raises_store_unavailable_quickly() -> None:
    """Operations on a Redis that does not answer raise StoreUnavailable within seconds; ping is False."""
    store = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.claims.items("bbc", ["a"], ttl=60)
    with pytest.raises(StoreUnavailable):
        store.schedule.due(time.time())
    assert store.ping() is False
    assert time.monotonic() - started < 5


def test_shortened_interval_takes_effect_at_once(store: Store) -> None:
    """A feed whose interval is shortened is due after the new interval, not after the old booking."""
    store.schedule.sync({"slow": 3600.0}, "v1")
    assert store.schedule.due(time.time() + FIRST_POLL_WINDOW) == ["slow"]
    assert store.schedule.due(time.time() + 60) == []
    store.schedule.sync({"slow": 5.0}, "v2")
    assert store.schedule.due(time.time() + 6) == ["slow"]


def test_ten_thousand_feeds_are_scheduled_once_per_interval_across_workers(store: Store) -> None:
    """10,000 feeds sync fast, first polls spread out; four concurrent ticks never hand out a feed twice."""
    import threading

    feeds = {f"feed-{n}": 300.0 for n in range(10_000)}
    started = time.perf_counter()
    assert store.schedule.sync(feeds, "big") is True
    assert time.perf_counter() - started < 5
    booked = [score for _, score in store.client.zrange(keys.SCHEDULE, 0, -1, withscores=True)]
    assert max(booked) - min(booked) > 50, "first polls are spread, not all at once"
    moment = time.time() + len(feeds) / 100 + 1  # every first poll is due, no second one yet
    handed: list[str] = []
    lock = threading.Lock()

    def tick() -> None:
        while due := store.schedule.due(moment, limit=500):
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
