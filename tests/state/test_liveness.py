"""Liveness: what a dead worker process held is free at once; what a live one holds stays its own.

A "dead" process here is what one leaves behind in Redis: an entry in the workers set whose last
beat is old (or none at all), and claims that name it. The live ones are real Stores, beating.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.delivery import outbox
from alerts.errors import StoreUnavailable
from alerts.models import Alert
from alerts.service import embedded_redis
from alerts.state import keys
from alerts.state.liveness import BEAT_EVERY, TIMEOUT
from alerts.state.store import Store
from tests.harness.worker import wait_for

DEAD = "elsewhere:4242:dead00"


def _died(store: Store, owner: str = DEAD, seconds_ago: float = 60.0) -> None:
    """Leave what a process that stopped beating ``seconds_ago`` leaves in the workers set."""
    store.client.zadd(keys.WORKERS, {owner: time.time() - seconds_ago})


def _alert(story: str = "s1") -> Alert:
    return Alert(
        subscriber="desk", story=story, item="i1", feed="wire", title="Strike", fetched_at=time.time()
    )


@pytest.fixture
def other(redis_url: str) -> Iterator[Store]:
    """A second live process's store on the same Redis, beating steadily (it judges the dead by the age
    of their beat: at once on a Redis that has been up for a while, else after TIMEOUT)."""
    store = Store.from_url(redis_url)
    store.liveness.start()
    wait_for(lambda: store.liveness.stale() >= 0, timeout=TIMEOUT + 3 * BEAT_EVERY)
    yield store
    store.liveness.release()


def test_a_started_process_beats_every_second(store: Store) -> None:
    """start() joins the workers set; the heartbeat thread then moves its score on every second."""
    owner = store.liveness.start()
    first = store.client.zscore(keys.WORKERS, owner)
    assert first is not None
    wait_for(lambda: (store.client.zscore(keys.WORKERS, owner) or 0) > first, timeout=BEAT_EVERY * 3)
    assert store.liveness.release() == 0
    assert store.client.zscore(keys.WORKERS, owner) is None, "a clean stop leaves the set"


def test_item_claims_of_a_dead_owner_are_taken_over_and_a_live_ones_are_not(
    store: Store, other: Store
) -> None:
    """A held item claim naming a dead process is won by the next poll; one a live process holds is not."""
    assert store.claims.items("wire", ["a"], ttl=3600, hold=60).won == [True]
    assert other.claims.items("wire", ["a"], ttl=3600, hold=60).won == [False], "its owner lives"
    store.client.set(keys.item_seen("wire", "b"), f"p:{DEAD}", ex=60)
    _died(store)
    assert other.claims.items("wire", ["b"], ttl=3600, hold=60).won == [True]
    assert store.client.get(keys.item_seen("wire", "b")) == f"p:{other.liveness.owner}"


def test_story_claims_and_locks_of_a_dead_owner_are_free(store: Store, other: Store) -> None:
    """Story claims, the poll lock and a host slot of a dead process are taken at once."""
    story_key = keys.story_sent("desk", "link:x")
    store.client.set(story_key, f"p:{DEAD}", ex=60)
    store.client.set(keys.poll_lock("wire"), f"{DEAD}|1", px=60_000)
    store.client.zadd(keys.host_slots("news.test"), {f"{DEAD}|1": time.time() + 60})
    _died(store, seconds_ago=0)  # it beat just now
    assert other.claims.stories([("desk", ["link:x"])], hold=60).won == [False], "not known dead yet"
    assert other.locks.lock_feed("wire", 60) is None
    _died(store)
    assert other.claims.stories([("desk", ["link:x"])], hold=60).won == [True]
    assert other.locks.lock_feed("wire", 60)
    assert other.locks.take_host_slot("news.test", 1, 60), "the dead one's slot no longer counts"


def test_an_unconfirmed_claim_released_by_its_owner_only(store: Store, other: Store) -> None:
    """release() undoes this process's held claims, never a claim another process took over."""
    claimed = store.claims.items("wire", ["a", "b"], ttl=3600, hold=60)
    store.client.set(keys.item_seen("wire", "b"), f"p:{other.liveness.owner}", ex=60)
    store.claims.release(claimed.held)
    assert store.client.get(keys.item_seen("wire", "a")) is None
    assert store.client.get(keys.item_seen("wire", "b")) == f"p:{other.liveness.owner}"


def test_the_dead_are_judged_by_the_age_of_their_beat_only_once_this_process_beats_steadily(
    store: Store, other: Store
) -> None:
    """Right after Redis comes back every beat is old: a process that has not yet beaten for TIMEOUT
    itself counts only the absent as dead."""
    other.liveness._failed(StoreUnavailable("gone"), time.monotonic())  # as after an outage
    assert other.liveness.stale() < 0
    store.client.set(keys.poll_lock("wire"), f"{DEAD}|1", px=60_000)
    _died(store, seconds_ago=TIMEOUT * 10)
    assert other.locks.lock_feed("wire", 60) is None, "old beats do not count as death yet"
    assert other.liveness.reap() == [], "nor does the sweep reap them"
    wait_for(lambda: other.liveness.stale() == TIMEOUT, timeout=TIMEOUT + 3 * BEAT_EVERY)
    assert other.locks.lock_feed("wire", 60)


def test_reaping_makes_every_delivery_of_the_dead_due_at_once(store: Store, other: Store) -> None:
    """The sweep's reap: deliveries a dead process created, received or was sending are due now (a
    sending one is retrying); the dead leave the set; a live process's deliveries are untouched."""
    ids = outbox.record(store.deliveries, [(_alert("s1"), "t1"), (_alert("s2"), "t1"), (_alert("s3"), "t1")])
    store.deliveries.claim(ids[:1], time.time(), lease=120)  # being sent by `store`
    mine = outbox.record(other.deliveries, [(_alert("s4"), "t1")])
    dead = store.liveness.owner
    store.liveness._stop.set()  # SIGKILL: no more beats, nothing released
    store.client.zadd(keys.WORKERS, {dead: time.time() - 60})
    now = time.time()
    reaped = other.liveness.reap(now)
    assert [(r.owner, r.deliveries) for r in reaped] == [(dead, 3)]
    due = dict(store.client.zrangebyscore(keys.OUTBOX_DUE, "-inf", now + 1, withscores=True))
    assert set(due) == set(ids) and mine[0] not in due
    assert store.deliveries.get(ids[0])["state"] == "retrying"
    assert "owner" not in store.deliveries.get(ids[1])
    assert store.client.zscore(keys.WORKERS, dead) is None
    assert not store.client.exists(keys.owned(dead))
    assert [d for d in other.deliveries.claim(ids, now, lease=120) if d] and len(ids) == 3


def test_a_clean_stop_hands_back_what_it_held(store: Store, other: Store) -> None:
    """release(): this process's deliveries are due at once and its claims free, with no wait."""
    ids = outbox.record(store.deliveries, [(_alert(), "t1")])
    store.deliveries.claim(ids, time.time(), lease=120)
    token = store.locks.lock_feed("wire", 60)
    assert token and store.liveness.release() == 1
    assert other.locks.lock_feed("wire", 60), "a released owner's lock is free"
    assert other.deliveries.claim(ids, time.time(), lease=120)[0] is not None


def test_a_received_task_is_its_receivers_until_claimed(store: Store, other: Store) -> None:
    """own(): a worker that received a delivery task and died before running it is reaped, and the
    delivery is due at once (not when the broker's visibility timeout ends, an hour later)."""
    ids = outbox.record(other.deliveries, [(_alert(), "t1")])
    assert store.deliveries.own(ids) == 1
    assert store.deliveries.get(ids[0])["owner"] == store.liveness.owner
    assert not store.client.sismember(keys.owned(other.liveness.owner), ids[0])
    dead = store.liveness.owner
    store.liveness._stop.set()
    store.client.zadd(keys.WORKERS, {dead: time.time() - 60})
    assert [r.deliveries for r in other.liveness.reap()] == [1]


def test_a_pending_record_whose_creator_died_is_handed_on_again(store: Store, other: Store) -> None:
    """A poll killed after recording deliveries but before queueing them: the next poll's record()
    returns them as to hand on (the creator is dead), and not while the creator lives."""
    jobs = [(_alert(), "t1")]
    ids = outbox.record(store.deliveries, jobs)
    assert outbox.record(other.deliveries, jobs) == [], "its creator lives: it is being handed on"
    store.liveness._stop.set()
    store.client.zrem(keys.WORKERS, store.liveness.owner)
    assert outbox.record(other.deliveries, jobs) == ids


def test_a_process_declared_dead_rejoins_under_a_new_name(store: Store) -> None:
    """A process reaped while alive (it was stuck) rejoins under a new name: what it held is others'."""
    first = store.liveness.start()
    store.client.zrem(keys.WORKERS, first)
    wait_for(lambda: store.liveness.owner != first, timeout=BEAT_EVERY * 3)
    assert store.client.zscore(keys.WORKERS, store.liveness.owner) is not None


def test_releases_that_failed_while_redis_was_away_run_when_it_is_back(tmp_path: Path) -> None:
    """Redis stopped mid-poll: the lock cannot be released then; it is, once Redis answers again."""
    port = embedded_redis.free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = embedded_redis.start(port, tmp_path)
    store, other = Store.from_url(url), Store.from_url(url)
    try:
        token = store.locks.lock_feed("wire", 60)
        assert token
        embedded_redis.stop(server)
        store.locks.unlock_feed("wire", token)  # no error: deferred
        wait_for(lambda: not store.liveness.available, timeout=BEAT_EVERY * 3)
        server = embedded_redis.start(port, tmp_path)
        wait_for(lambda: store.liveness.available, timeout=BEAT_EVERY * 5)
        wait_for(lambda: other.client.get(keys.poll_lock("wire")) is None, timeout=BEAT_EVERY * 3)
    finally:
        store.liveness.release()
        other.liveness.release()
        embedded_redis.stop(server)


def test_record_fields_carry_no_owner_into_the_alert(store: Store) -> None:
    """The owner is bookkeeping of the record, never part of the alert a channel renders."""
    ids = outbox.record(store.deliveries, [(_alert(), "t1")])
    fields = store.deliveries.claim(ids, time.time(), lease=120)[0]
    assert fields is not None and fields["owner"] == store.liveness.owner
    assert "owner" not in json.loads(fields["alert"])


def test_a_process_started_on_a_redis_long_up_judges_the_dead_at_once(store: Store) -> None:
    """A restart after a crash (Redis stayed up): the new process takes over the dead's work at once,
    without first waiting TIMEOUT for a steady streak of its own."""
    wait_for(lambda: int(store.client.info("server")["uptime_in_seconds"]) > TIMEOUT + 1, timeout=TIMEOUT + 3)
    fresh = Store(store.client)
    try:
        fresh.liveness.start()
        assert fresh.liveness.stale() == TIMEOUT
    finally:
        fresh.liveness.release()


def test_held_alerts_taken_for_a_digest_by_a_process_that_died_are_given_back(
    store: Store, other: Store
) -> None:
    """A process that took a subscriber's held alerts for a digest and died before recording it:
    the reaper gives them back, due at once; a recorded digest's taken alerts are gone."""
    now = time.time()
    store.pacing.note({}, {"desk": ({"s1": '{"a": 1}'}, now - 1), "ops": ({"s2": '{"b": 2}'}, now - 1)}, now)
    assert store.pacing.pop_held(now) == {"desk": {"s1": '{"a": 1}'}, "ops": {"s2": '{"b": 2}'}}
    store.pacing.digested(["ops"])
    assert other.pacing.pop_held(now) == {}, "taken: no second digest"
    dead = store.liveness.owner
    store.liveness._stop.set()
    store.client.zadd(keys.WORKERS, {dead: time.time() - 60})
    assert [r.deliveries for r in other.liveness.reap(now)] == [1]
    assert other.pacing.pop_held(now + 1) == {"desk": {"s1": '{"a": 1}'}}, (
        "given back, and only the unrecorded"
    )


def test_a_digest_that_could_not_be_recorded_is_held_again(store: Store) -> None:
    """give_back(): the taken alerts are held again, due now, for the next round."""
    now = time.time()
    store.pacing.note({}, {"desk": ({"s1": '{"a": 1}'}, now - 1)}, now)
    assert store.pacing.pop_held(now) == {"desk": {"s1": '{"a": 1}'}}
    store.pacing.give_back(["desk"], now)
    assert store.pacing.pop_held(now) == {"desk": {"s1": '{"a": 1}'}}


def test_a_process_that_never_reached_redis_says_so_itself() -> None:
    """A worker started with a REDIS_URL nothing answers logs one warning (no beat may know of it);
    one that loses Redis later leaves the announcement to the beat (``report``)."""
    from structlog.testing import capture_logs

    store = Store.from_url(f"redis://127.0.0.1:{embedded_redis.free_port()}/0")
    with capture_logs() as logs:
        store.liveness.start()
        store.liveness._beat("join")
    # only this process's own events: other tests' heartbeat threads may log meanwhile (rejoins)
    mine = [(e["event"], e["log_level"]) for e in logs if e.get("owner") == store.liveness._owner]
    assert mine == [("redis.unavailable", "warning")]
    store.liveness._stop.set()
