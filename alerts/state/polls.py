"""The polls of a batch of due feeds, begun and ended in one round trip each.

:meth:`PollBatches.begin` takes, for every feed of the batch at once, its poll lock (unless a live
process holds it), a slot on its host (unless ``ALERTS_HOST_CONCURRENCY`` polls of that host are
running anywhere: the feed is then booked a little later) and reads its state. :meth:`PollBatches.end`
writes what the polls recorded (state fields, next poll, interval: :class:`PollWrite`) and releases
the locks and slots, in one pipeline. Tokens name their process (``<owner>|<nonce>``), so a dead
process's locks and slots are taken over as soon as its heartbeat lapses (:mod:`alerts.state.liveness`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis

from alerts.errors import StoreUnavailable
from alerts.state import keys
from alerts.state.connection import execute_scripted, queue_script, script, translated
from alerts.state.liveness import Liveness

GRANTED, BUSY, DEFERRED = 1, 0, 2


@dataclass(frozen=True, slots=True)
class PollWrite:
    """What one poll records: state fields (None deletes one), the next poll and the interval."""

    feed: str
    fields: Mapping[str, str | int | float | None] = field(default_factory=dict)
    next_at: float | None = None  # book the next poll then (only if the feed is still scheduled)
    interval: float | None = None  # the interval booked after each poll from now on


@dataclass(frozen=True, slots=True)
class Grant:
    """A poll this process may make: the feed's state as read, and the tokens to give back."""

    feed: str
    host: str
    token: str
    state: dict[str, str]


@dataclass(frozen=True, slots=True)
class Begun:
    """A batch's polls: those granted, and the feeds another process polls (busy) or whose host is
    full (deferred: booked again within a second)."""

    granted: list[Grant]
    busy: list[str]
    deferred: list[str]


class PollBatches:
    """Poll locks, host slots and state for batches of feeds."""

    def __init__(self, client: redis.Redis, liveness: Liveness) -> None:
        self._client = client
        self._liveness = liveness
        self._begin = script(client, "poll_begin")
        self._end = script(client, "poll_end")

    def begin(
        self,
        feeds: Sequence[tuple[str, str]],
        ttl: float,
        host_limit: int,
        retry_at: Sequence[float] | None = None,
        now: float | None = None,
    ) -> Begun:
        """Begin the polls of ``feeds`` ((name, host) pairs); ``retry_at``: when to book each feed
        again if its host is full (None: the caller books the deferred ones). Locks and slots are
        held at most ``ttl`` seconds."""
        now = time.time() if now is None else now
        nonce = time.time_ns()
        tokens = [f"{self._liveness.owner}|{nonce}.{i}" for i in range(len(feeds))]
        keys_ = [keys.WORKERS, keys.SCHEDULE]
        args: list[str | int | float] = [now, int(ttl * 1e3), now + ttl, host_limit, self._liveness.stale()]
        retries: Sequence[float | str] = [""] * len(feeds) if retry_at is None else retry_at
        for (name, host), token, retry in zip(feeds, tokens, retries, strict=True):
            keys_ += [keys.poll_lock(name), keys.host_slots(host), keys.feed_state(name)]
            args += [name, token, retry]
        if not feeds:
            return Begun([], [], [])
        with translated():
            answers = self._begin(keys=keys_, args=args)
        begun = Begun([], [], [])
        for (name, host), token, (code, flat) in zip(feeds, tokens, answers, strict=True):
            if code == GRANTED:
                state = {str(flat[j]): str(flat[j + 1]) for j in range(0, len(flat), 2)}
                begun.granted.append(Grant(name, host, token, state))
            else:
                (begun.busy if code == BUSY else begun.deferred).append(name)
        return begun

    def end(self, grants: Sequence[Grant], writes: Sequence[PollWrite] = ()) -> None:
        """Record ``writes`` and release the locks and slots of ``grants``, in one round trip. While
        Redis is away the writes are lost (the next poll redoes them) and the release happens as
        soon as it is back."""
        try:
            self._run(grants, writes)
        except StoreUnavailable:
            self._liveness.later(lambda: self.release(grants))
            raise

    def record(self, writes: Sequence[PollWrite]) -> None:
        """Record ``writes`` now (polls whose locks are released later)."""
        if writes:
            self._run((), writes)

    def release(self, grants: Sequence[Grant]) -> None:
        """Release the locks and slots of ``grants`` (if still ours)."""
        if grants:
            self._run(grants, ())

    def _run(self, grants: Sequence[Grant], writes: Sequence[PollWrite]) -> None:
        def build(pipe: redis.client.Pipeline) -> None:
            queue_writes(pipe, writes)
            if grants:
                keys_ = [key for g in grants for key in (keys.poll_lock(g.feed), keys.host_slots(g.host))]
                queue_script(pipe, self._end, keys_, [g.token for g in grants])

        with translated():
            execute_scripted(self._client, build, [self._end])


def queue_writes(pipe: redis.client.Pipeline, writes: Sequence[PollWrite]) -> None:
    """Queue ``writes`` on ``pipe``."""
    for write in writes:
        state = keys.feed_state(write.feed)
        present = {name: value for name, value in write.fields.items() if value is not None}
        absent = [name for name, value in write.fields.items() if value is None]
        if present:
            pipe.hset(state, mapping=present)  # type: ignore[arg-type]
        if absent:
            pipe.hdel(state, *absent)
        if write.interval is not None:
            pipe.hset(keys.INTERVALS, write.feed, write.interval)
        if write.next_at is not None:
            pipe.zadd(keys.SCHEDULE, {write.feed: write.next_at}, xx=True)
