"""Per-subscriber pacing state: the times of recent instant alerts (for caps and bursts), and the
alerts held for a digest with the time their digest is due.

A digest's held alerts are taken (:meth:`PacingState.pop_held`) by one process, which owns them
until their deliveries are recorded (:meth:`PacingState.digested`); if it cannot record them, or
dies first, they are given back, due at once, so no held alert is lost to a crash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from alerts.state import keys
from alerts.state.connection import script, translated
from alerts.state.liveness import Liveness

RECENT_SPAN = 3600  # instant alerts are remembered this long (the longest cap is per hour)


class PacingState:
    """Recent sends and held alerts."""

    def __init__(self, client: redis.Redis, liveness: Liveness) -> None:
        self._client = client
        self._liveness = liveness
        self._held_done = script(client, "held_done")
        self._recent = script(client, "recent_sends")
        self._note = script(client, "note_sends")
        self._held_pop = script(client, "held_pop")

    def recent(self, subscribers: Sequence[str], now: float) -> dict[str, list[float]]:
        """Times of each subscriber's instant alerts in the last hour (one round trip for all)."""
        if not subscribers:
            return {}
        with translated():
            raw = self._recent(keys=[keys.recent(s) for s in subscribers], args=[now - RECENT_SPAN])
        return {s: [float(score) for score in scores] for s, scores in zip(subscribers, raw, strict=True)}

    def note(
        self,
        sends: Mapping[str, Mapping[str, float]],
        holds: Mapping[str, tuple[Mapping[str, str], float]],
        now: float,
    ) -> None:
        """In one round trip: remember instant alerts (subscriber -> story -> time), and keep held ones
        (subscriber -> (story -> alert JSON, release time)) for a digest."""
        if not any(sends.values()) and not holds:
            return
        noted = {subscriber: stamps for subscriber, stamps in sends.items() if stamps}
        args: list[str | float | int] = [now - RECENT_SPAN, RECENT_SPAN + 100]
        for stamps in noted.values():
            args.append(len(stamps))
            for story, at in stamps.items():
                args += [at, story]
        with translated():
            if noted:
                self._note(keys=[keys.recent(subscriber) for subscriber in noted], args=args)
            if holds:
                pipe = self._client.pipeline(transaction=False)
                for subscriber, (alerts, release_at) in holds.items():
                    pipe.hset(keys.held(subscriber), mapping=dict(alerts))  # type: ignore[arg-type]
                    pipe.zadd(keys.HELD_DUE, {subscriber: release_at}, nx=True)
                    pipe.zadd(keys.HELD_DUE, {subscriber: release_at}, lt=True)
                pipe.execute()

    def pop_held(self, now: float, limit: int = 500) -> dict[str, dict[str, str]]:
        """Subscriber -> its held alerts (story -> JSON), for every subscriber whose digest is due:
        this process's until :meth:`digested` or :meth:`give_back`."""
        with translated():
            raw = self._held_pop(keys=[keys.HELD_DUE], args=[now, limit, self._liveness.owner])
        result: dict[str, dict[str, str]] = {}
        i = 0
        while i < len(raw):
            subscriber, count = str(raw[i]), int(raw[i + 1])
            fields = raw[i + 2 : i + 2 + count]
            result[subscriber] = {str(fields[j]): str(fields[j + 1]) for j in range(0, count, 2)}
            i += 2 + count
        return result

    def digested(self, subscribers: Sequence[str]) -> None:
        """The digests of ``subscribers`` are recorded in the outbox: their taken alerts are done."""
        self._finish_taken(subscribers, "done")

    def give_back(self, subscribers: Sequence[str], now: float) -> None:
        """The digests of ``subscribers`` could not be recorded: their alerts are held again, due now."""
        self._finish_taken(subscribers, "back", now)

    def _finish_taken(self, subscribers: Sequence[str], how: str, now: float = 0.0) -> None:
        if subscribers:
            with translated():
                self._held_done(args=[self._liveness.owner, how, now, *subscribers])
