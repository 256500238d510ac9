"""Poll batches in Redis (alerts.state.polls) and the schedule's take: one round trip each."""

from __future__ import annotations

import time

from alerts.state import keys
from alerts.state.polls import PollWrite
from alerts.state.store import Store


def test_take_pops_the_due_feeds_and_says_when_the_next_is_due(store: Store) -> None:
    store.schedule.sync({"a": 5.0, "b": 5.0, "c": 5.0}, "fp")
    now = time.time()
    store.client.zadd(keys.SCHEDULE, {"a": now - 1, "b": now + 0.1, "c": now + 3})
    due, first = store.schedule.take(now + 0.25)
    assert sorted(due) == ["a", "b"]
    assert first is not None and abs(first - (now + 3)) < 0.01  # "c": a and b were booked 5 s on
    assert store.schedule.of(["a", "b"]) == {"a": (now - 1 + 5, 5.0), "b": (now + 0.1 + 5, 5.0)}
    store.client.delete(keys.SCHEDULE)
    assert store.schedule.take(now) == ([], None)


def test_begin_reads_state_and_end_records_and_releases(store: Store) -> None:
    store.schedule.sync({"a": 5.0, "b": 5.0}, "fp")
    store.feeds.update("a", {"etag": '"v1"'})
    begun = store.polls.begin([("a", "h"), ("b", "h")], ttl=60, host_limit=5, retry_at=[0, 0])
    assert [grant.feed for grant in begun.granted] == ["a", "b"] and not begun.busy and not begun.deferred
    assert begun.granted[0].state == {"etag": '"v1"'} and begun.granted[1].state == {}
    assert store.client.zcard(keys.host_slots("h")) == 2
    again = store.polls.begin([("a", "h")], ttl=60, host_limit=5, retry_at=[0])
    assert again.busy == ["a"]  # our own live process holds it
    at = time.time() + 30
    write = PollWrite("a", {"last_304": 1.5, "etag": None}, next_at=at, interval=7.0)
    store.polls.end(begun.granted, [write])
    assert store.feeds.get("a") == {"last_304": "1.5"}
    assert store.schedule.of(["a"])["a"] == (at, 7.0)
    assert not store.client.exists(keys.poll_lock("a"), keys.poll_lock("b"))
    assert store.client.zcard(keys.host_slots("h")) == 0


def test_a_full_host_defers_the_rest_of_the_batch(store: Store) -> None:
    store.schedule.sync({f"f{n}": 5.0 for n in range(4)}, "fp")
    retry = time.time() + 0.5
    begun = store.polls.begin([(f"f{n}", "h") for n in range(4)], ttl=60, host_limit=2, retry_at=[retry] * 4)
    assert [grant.feed for grant in begun.granted] == ["f0", "f1"] and begun.deferred == ["f2", "f3"]
    assert store.schedule.of(["f2"])["f2"][0] == retry
    assert not store.client.exists(keys.poll_lock("f2"))  # a deferred feed holds nothing


def test_a_dead_processes_lock_is_taken_over_at_once(store: Store, redis_url: str) -> None:
    other = Store.from_url(redis_url)
    other.liveness.start()
    time.sleep(1.2)
    held = other.polls.begin([("a", "h")], ttl=60, host_limit=1, retry_at=[0])
    assert [grant.feed for grant in held.granted] == ["a"]
    other.liveness.release()  # as when its process is reaped as dead: its owner leaves the set
    begun = store.polls.begin([("a", "h")], ttl=60, host_limit=1, retry_at=[0])
    assert [grant.feed for grant in begun.granted] == ["a"]  # the lock and the host's one slot
