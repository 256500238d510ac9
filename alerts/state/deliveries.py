"""Delivery records of the outbox, the due, dead and created sets, and the history stream.

Every (subscriber, story, URL) delivery is a hash; the due set says when each is next to be sent
or checked; claims, outcomes and hand-outs are single Lua calls (see ``lua/outbox_*.lua``).

Each record names the process responsible for its next step (``owner``): the one that created it,
handed it out, received its task, or is sending it. When that process dies, the sweep reaps it
(:mod:`alerts.state.liveness`) and the delivery is due at once; the leases bound only a process
that lives but is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from alerts.errors import StoreUnavailable
from alerts.state import keys
from alerts.state.connection import script, translated
from alerts.state.liveness import Liveness

FINISH_RETRY_CAP = 1.0  # seconds between tries to record an outcome while Redis is away


@dataclass(frozen=True, slots=True)
class Finish:
    """The outcome of one delivery attempt, as :meth:`Deliveries.finish` records it."""

    delivery: str
    fields: Mapping[str, str | int | float]
    retry_at: float | None = None
    dead_at: float | None = None
    ttl: int | None = None
    history: Mapping[str, str] | None = None
    history_retention: int = 7 * 86400

    def keys(self) -> list[str]:
        return [
            keys.outbox(self.delivery),
            keys.OUTBOX_DUE,
            keys.OUTBOX_DEAD,
            keys.HISTORY,
            keys.OUTBOX_CREATED,
        ]

    def args(self, owner: str) -> list[str | int]:
        pairs = [str(part) for name, value in self.fields.items() for part in (name, value)]
        entry = [part for name, value in (self.history or {}).items() for part in (name, value)]
        oldest = f"{int((time.time() - self.history_retention) * 1000)}-0" if self.history is not None else ""
        args: list[str | int] = [
            self.delivery,
            _opt(self.retry_at),
            _opt(self.dead_at),
            _opt(self.ttl),
            oldest,
            owner,
        ]
        return [*args, len(self.fields), *pairs, *entry]


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """The outbox at a glance (:meth:`Deliveries.summary`)."""

    pending: int  # not yet sent or dead: pending, being sent, retrying
    oldest_created: float | None  # unix seconds the oldest of those was created (None: none waits)
    dead: int


class Deliveries:
    """The outbox's records."""

    def __init__(self, client: redis.Redis, liveness: Liveness) -> None:
        self._client = client
        self._liveness = liveness
        self._own = script(client, "outbox_own")
        self._create = script(client, "outbox_create")
        self._claim = script(client, "outbox_claim")
        self._finish = script(client, "outbox_finish")
        self._due = script(client, "outbox_due")
        self._progress = script(client, "outbox_progress")

    def create(
        self, records: Sequence[tuple[str, Mapping[str, str]]], due_at: float, now: float
    ) -> list[bool]:
        """Create the records that do not exist yet (pending, due at ``due_at``, this process
        responsible for handing them on); True per record to hand on now: a new one, or a pending
        one whose responsible process died before it could."""
        if not records:
            return []
        args: list[str | float] = [due_at, now, self._liveness.owner, self._liveness.stale()]
        for delivery, fields in records:
            args += [delivery, len(fields)]
            for name, value in fields.items():
                args += [name, value]
        record_keys = [keys.outbox(delivery) for delivery, _ in records]
        with translated():
            result = self._create(
                keys=[keys.OUTBOX_DUE, keys.WORKERS, keys.OUTBOX_CREATED, *record_keys], args=args
            )
        return [bool(flag) for flag in result]

    def claim(self, deliveries: Sequence[str], now: float, lease: float) -> list[dict[str, str] | None]:
        """Take each delivery to send it under a lease: its fields, or None when it is not ours to send
        (sent, dead, or a live worker is sending it)."""
        if not deliveries:
            return []
        owner, stale = self._liveness.owner, self._liveness.stale()
        with translated():
            raw = self._claim(
                keys=[keys.OUTBOX_DUE, keys.WORKERS, *(keys.outbox(d) for d in deliveries)],
                args=[now, lease, owner, stale, *deliveries],
            )
        return [_fields(found) if isinstance(found, list) else None for found in raw]

    def own(self, deliveries: Sequence[str]) -> int:
        """This process received a task for ``deliveries``: it is responsible for them until it
        claims them (if it dies first, they are reaped and handed out again). Returns how many."""
        if not deliveries:
            return 0
        with translated():
            return int(self._own(args=[self._liveness.owner, *deliveries]))

    def finish(self, finishes: Sequence[Finish], patience: float = 0.0) -> None:
        """Record each attempt's outcome (book a retry, give up, or finish; log it to history), in one
        round trip. While Redis is away, keep trying for ``patience`` seconds: a message a channel
        accepted is recorded as sent once Redis is back, instead of being sent again."""
        if not finishes:
            return
        deadline = time.monotonic() + patience
        pause = 0.1
        while True:
            try:
                self._finish_once(finishes)
                return
            except StoreUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(FINISH_RETRY_CAP, pause * 2)

    def _finish_once(self, finishes: Sequence[Finish]) -> None:
        owner = self._liveness.owner
        with translated():
            if len(finishes) == 1:
                self._finish(keys=finishes[0].keys(), args=finishes[0].args(owner))
                return
            pipe = self._client.pipeline(transaction=False)
            for finish in finishes:
                self._finish(keys=finish.keys(), args=finish.args(owner), client=pipe)
            pipe.execute()

    def update_claimed(
        self, delivery: str, claimed: Mapping[str, str], fields: Mapping[str, str | int | float]
    ) -> bool:
        """Set ``fields`` on a delivery while the claim that returned ``claimed`` (its fields) still holds:
        False, and nothing written, once it does not (finished, dropped, or its lease taken over)."""
        lease_until = claimed.get("lease_until")
        if lease_until is None:
            return False
        pairs = [str(part) for name, value in fields.items() for part in (name, value)]
        with translated():
            return bool(self._progress(keys=[keys.outbox(delivery)], args=[lease_until, *pairs]))

    def due(self, now: float, limit: int, lease: float) -> list[str]:
        """Deliveries due now (new, retries, or abandoned by a dead worker), each booked ``lease`` later
        and this process responsible for handing them on."""
        owner = self._liveness.owner
        with translated():
            return [str(d) for d in self._due(keys=[keys.OUTBOX_DUE], args=[now, limit, lease, owner])]

    def get(self, delivery: str) -> dict[str, str]:
        """A delivery's record ({} when unknown)."""
        with translated():
            return _fields(self._client.hgetall(keys.outbox(delivery)))

    def get_field(self, delivery: str, name: str) -> str | None:
        """One field of a delivery's record (None when the record or the field is unknown)."""
        with translated():
            value = self._client.hget(keys.outbox(delivery), name)
        return None if value is None else str(value)

    def dead(self, limit: int = 1000) -> list[str]:
        """Dead deliveries, oldest first."""
        with translated():
            return [str(d) for d in self._client.zrange(keys.OUTBOX_DEAD, 0, limit - 1)]

    def revive(self, delivery: str, now: float) -> bool:
        """Move a dead delivery back to retrying, due now; False if it is not dead."""
        with translated():
            if self._client.zrem(keys.OUTBOX_DEAD, delivery) == 0:
                return False
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(keys.outbox(delivery), mapping={"state": "retrying", "created": now, "updated": now})
            pipe.persist(keys.outbox(delivery))
            pipe.zadd(keys.OUTBOX_DUE, {delivery: now})
            pipe.zadd(keys.OUTBOX_CREATED, {delivery: now})
            pipe.execute()
            return True

    def drop(self, delivery: str) -> bool:
        """Forget a delivery (dead or not); False if unknown."""
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(keys.outbox(delivery))
            pipe.zrem(keys.OUTBOX_DEAD, delivery)
            pipe.zrem(keys.OUTBOX_DUE, delivery)
            pipe.zrem(keys.OUTBOX_CREATED, delivery)
            return bool(pipe.execute()[0])

    def summary(self) -> OutboxSummary:
        """How many deliveries wait (not yet sent or dead), when the oldest of them was created, and
        how many are dead: a few O(log n) reads, whatever the outbox's size."""
        with translated():
            pipe = self._client.pipeline(transaction=False)
            pipe.zcard(keys.OUTBOX_DUE)
            pipe.zrange(keys.OUTBOX_CREATED, 0, 0, withscores=True)
            pipe.zcard(keys.OUTBOX_DEAD)
            pending, oldest, dead = pipe.execute()
        return OutboxSummary(int(pending), float(oldest[0][1]) if oldest else None, int(dead))

    def history(self, since: float, count: int = 10_000) -> list[dict[str, str]]:
        """History entries (sent and dead deliveries) since ``since`` (unix seconds), oldest first."""
        with translated():
            entries = self._client.xrange(keys.HISTORY, min=f"{int(since * 1000)}-0", count=count)
        return [_fields(fields or {}) for _, fields in entries or []]


def _fields(raw: Any) -> dict[str, str]:
    """A hash as str -> str, from HGETALL's dict or a script's flat [field, value, ...] list."""
    if isinstance(raw, list):
        return {str(raw[i]): str(raw[i + 1]) for i in range(0, len(raw), 2)}
    return {str(k): str(v) for k, v in raw.items()}


def _opt(value: float | int | None) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
