"""After each poll: record the feed's health, book its next poll, and say when it turns unhealthy.

The transitions are atomic in Redis (HSETNX / HDEL on the ``unhealthy`` field), so with any number
of workers ``feed.unhealthy`` and ``feed.recovered`` are logged, and a :class:`Transition` returned
(for the caller to tell ops), once each.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from alerts import log
from alerts.ingest.fetch import HttpStatusError
from alerts.models import Feed
from alerts.polling import policy
from alerts.state.polls import PollWrite
from alerts.state.store import Store

_logger = log.get("alerts.health")


@dataclass(frozen=True, slots=True)
class Transition:
    """A feed turned unhealthy, or recovered: the notice ops receive."""

    feed: str
    title: str
    summary: str


def failed(
    store: Store, feed: Feed, state: dict[str, str], error: Exception
) -> tuple[int, Transition | None]:
    """Record a failed poll and back off; (failures in a row, the transition to unhealthy if now)."""
    now = time.time()
    failures = int(state.get("failures") or 0) + 1
    store.feeds.update(
        feed.name, {"failures": failures, "last_error": str(error)[:500], "last_error_at": now}
    )
    retry_after = error.retry_after if isinstance(error, HttpStatusError) else None
    store.schedule.reschedule(feed.name, now + policy.after_failure(feed, failures, retry_after))
    health = policy.Health.from_state({**state, "failures": str(failures), "last_error": str(error)})
    return failures, _check(store, feed, health, now)


def succeeded(
    store: Store,
    feed: Feed,
    state: dict[str, str],
    *,
    max_age: float | None,
    pushed: bool = False,
    arrivals: Sequence[float] = (),
    seen: int = 0,
    fields: dict[str, str | int | float | None] | None = None,
) -> Transition | None:
    """Record a good poll and book the next one; the transition to recovered (or silent) if now.

    ``arrivals`` are the published times of its new items (the feed's rhythm, for ``every: auto``);
    ``seen`` counts the new items seen arriving now (0 on a first poll: its backlog is not news)."""
    now = time.time()
    write, health = success(
        feed, state, now, max_age=max_age, pushed=pushed, arrivals=arrivals, seen=seen, fields=fields
    )
    store.polls.record([write])
    return _check(store, feed, health, now)


def success(
    feed: Feed,
    state: dict[str, str],
    now: float,
    *,
    max_age: float | None,
    pushed: bool = False,
    arrivals: Sequence[float] = (),
    seen: int = 0,
    fields: dict[str, str | int | float | None] | None = None,
) -> tuple[PollWrite, policy.Health]:
    """What a good poll at ``now`` records (pure): the state fields, the next poll when it is not one
    interval on (the schedule books that by itself), the interval of an adaptive feed; and the feed's
    health after it."""
    health = policy.Health.from_state(state)
    update: dict[str, str | int | float | None] = {
        **(fields or {}),
        "last_ok": now,
        "failures": 0,
        "last_error": None,
        "watched_since": policy.watched_since(health, now),
    }
    if arrivals:
        update["arrivals"] = policy.record_arrivals(health, list(arrivals))
        update["items_seen"] = health.items_seen + len(arrivals)
    if seen:
        update["seen"] = policy.record_seen(health, now)
    health = policy.Health.from_state({**state, **{k: str(v) for k, v in update.items() if v is not None}})
    health = dataclasses.replace(health, failures=0, last_error=None)
    every = policy.interval(feed, health)
    delay = policy.after_success(feed, health, max_age, pushed)
    rebook = delay != feed.every or pushed or int(state.get("failures") or 0)
    write = PollWrite(
        feed.name, update, next_at=now + delay if rebook else None, interval=every if feed.adaptive else None
    )
    return write, health


def quiet(feed: Feed, health: policy.Health, now: float) -> bool:
    """True when a good poll changes nothing ops are told: the feed neither is nor turns unhealthy
    (such polls may be recorded in a batch, without :func:`succeeded`'s checks)."""
    return health.unhealthy is None and policy.unhealthy_reason(feed, health, now) is None


def pushed_items(store: Store, feed: Feed, count: int) -> None:
    """New items a WebSub hub pushed: they arrived, so the feed is not silent."""
    if count:
        health = policy.Health.from_state(store.feeds.get(feed.name))
        store.feeds.update(feed.name, {"seen": policy.record_seen(health, time.time())})


def _check(store: Store, feed: Feed, health: policy.Health, now: float) -> Transition | None:
    reason = policy.unhealthy_reason(feed, health, now)
    if reason and store.feeds.flag(feed.name, "unhealthy", reason):
        _logger.warning("feed.unhealthy", feed=feed.name, reason=reason)
        return Transition(feed.name, f"Feed {feed.name} is unhealthy", reason)
    if reason is None and health.unhealthy and store.feeds.unflag(feed.name, "unhealthy"):
        _logger.info("feed.recovered", feed=feed.name, was=health.unhealthy)
        return Transition(feed.name, f"Feed {feed.name} recovered", f"Was: {health.unhealthy}")
    return None
