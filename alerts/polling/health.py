"""After each poll: record the feed's health, book its next poll, and tell ops when it turns unhealthy.

The transitions are atomic in Redis (HSETNX / HDEL on the ``unhealthy`` field), so with any number
of workers ``feed.unhealthy`` and ``feed.recovered`` are logged, and ops notified, once each.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from alerts import log
from alerts.ingest.fetch import HttpStatusError
from alerts.models import Alert, Feed
from alerts.polling import policy
from alerts.service.runtime import Runtime, Snapshot
from alerts.state import keys
from alerts.websub import subscriptions

Dispatch = Callable[[Sequence[tuple[Alert, str]]], None]
_logger = log.get("alerts.health")


def failed(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    state: dict[str, str],
    error: Exception,
    dispatch: Dispatch,
) -> int:
    """Record a failed poll, back off, and flag the feed unhealthy after repeated failures."""
    now = time.time()
    failures = int(state.get("failures") or 0) + 1
    runtime.store.update_feed_state(
        feed.name, {"failures": failures, "last_error": str(error)[:500], "last_error_at": now}
    )
    retry_after = error.retry_after if isinstance(error, HttpStatusError) else None
    delay = policy.after_failure(feed, failures, retry_after)
    runtime.store.reschedule(feed.name, now + delay)
    health = policy.Health.from_state({**state, "failures": str(failures), "last_error": str(error)})
    _check(runtime, snapshot, feed, health, now, dispatch)
    return failures


def succeeded(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    state: dict[str, str],
    dispatch: Dispatch,
    *,
    max_age: float | None,
    pushed: bool = False,
    arrivals: Sequence[float] = (),
    fields: dict[str, str | int | float | None] | None = None,
) -> None:
    """Record a good poll (new items' times for the usual gap), book the next one, maybe recover."""
    now = time.time()
    health = policy.Health.from_state(state)
    update: dict[str, str | int | float | None] = {
        **(fields or {}),
        "last_ok": now,
        "failures": 0,
        "last_error": None,
    }
    if arrivals:
        update["arrivals"] = policy.record_arrivals(health, list(arrivals))
        update["items_seen"] = health.items_seen + len(arrivals)
        health = policy.Health.from_state({**state, "arrivals": str(update["arrivals"])})
    health = dataclasses.replace(health, failures=0, last_error=None)
    runtime.store.update_feed_state(feed.name, update)
    every = policy.interval(feed, health)
    if feed.adaptive:
        runtime.store.set_interval(feed.name, every)
    delay = policy.after_success(feed, health, max_age)
    if pushed:
        delay = max(delay, subscriptions.SAFETY_INTERVAL)  # WebSub delivers; polling is only a safety net
    if delay != feed.every or pushed or int(state.get("failures") or 0):
        runtime.store.reschedule(feed.name, now + delay)
    _check(runtime, snapshot, feed, health, now, dispatch)


def _check(
    runtime: Runtime, snapshot: Snapshot, feed: Feed, health: policy.Health, now: float, dispatch: Dispatch
) -> None:
    reason = policy.unhealthy_reason(health, now)
    if reason and runtime.store.flag(feed.name, "unhealthy", reason):
        _logger.warning("feed.unhealthy", feed=feed.name, reason=reason)
        _notify_ops(snapshot, feed, f"Feed {feed.name} is unhealthy", reason, now, dispatch)
    elif reason is None and health.unhealthy and runtime.store.unflag(feed.name, "unhealthy"):
        _logger.info("feed.recovered", feed=feed.name, was=health.unhealthy)
        _notify_ops(snapshot, feed, f"Feed {feed.name} recovered", f"Was: {health.unhealthy}", now, dispatch)


def _notify_ops(
    snapshot: Snapshot, feed: Feed, title: str, summary: str, now: float, dispatch: Dispatch
) -> None:
    """One alert to each ``ops:`` subscriber of subscriptions.yaml; a failure to queue is only logged."""
    config = snapshot.config
    jobs = []
    for name in config.ops:
        alert = Alert(
            subscriber=name,
            story=keys.digest(f"health:{feed.name}:{title}:{int(now)}"),
            item=f"health:{feed.name}",
            feed=feed.name,
            title=title,
            summary=f"{summary}\n{feed.url}",
            fetched_at=now,
        )
        jobs += [(alert, keys.digest(url)) for url in config.subscribers[name].notify]
    if jobs:
        try:
            dispatch(jobs)
        except Exception as exc:
            _logger.error("ops.notify_failed", feed=feed.name, error=str(exc))
