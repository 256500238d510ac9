"""Thin adapters: decode arguments, call one ``alerts.pipeline`` function, map errors to retries."""

from __future__ import annotations

import base64
import functools
import random
from collections.abc import Sequence
from typing import Any

from alerts import log, pipeline
from alerts import push as push_module
from alerts.errors import AlertsError, TransientError, UnknownTarget
from alerts.models import Alert
from alerts.runtime import Runtime
from workers.app import DELIVER_QUEUE, POLL_QUEUE, app

MAX_DELIVERY_RETRIES = 10
_logger = log.get("alerts.tasks")


@functools.cache
def runtime() -> Runtime:
    """This worker process's runtime, built once from the environment."""
    return Runtime.from_env()


def backoff(retries: int, base: float = 2.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter: up to base * 2**retries seconds, at most ``cap``."""
    return float(random.uniform(0.5, 1.0) * min(cap, base * 2**retries))


@app.task(name="alerts.tick", ignore_result=True, acks_late=False)
def tick() -> int:
    """Queue one poll per feed that is due (beat sends this every ALERTS_TICK seconds)."""
    due = pipeline.schedule(runtime())
    if due:
        with app.producer_or_acquire() as producer:
            for name in due:
                poll.apply_async((name,), queue=POLL_QUEUE, producer=producer)
    return len(due)


@app.task(name="alerts.poll", ignore_result=True)
def poll(feed: str) -> str:
    """Poll one feed; failures are logged and the schedule polls it again at its next turn."""
    try:
        return pipeline.poll_feed(runtime(), feed, _enqueue_deliveries).status
    except AlertsError as exc:
        _logger.warning("feed.failed", feed=feed, error=str(exc), error_type=type(exc).__name__)
        return "failed"


@app.task(name="alerts.push", ignore_result=True)
def push(feed: str, body: str, content_type: str | None = None) -> int:
    """Content a WebSub hub pushed (base64): parsed, matched and deduped like a poll."""
    try:
        return pipeline.process_push(
            runtime(), feed, base64.b64decode(body), content_type, _enqueue_deliveries
        )
    except AlertsError as exc:
        _logger.warning("feed.push_failed", feed=feed, error=str(exc), error_type=type(exc).__name__)
        return 0


@app.task(name="alerts.websub_renew", ignore_result=True, acks_late=False)
def websub_renew() -> int:
    """Renew WebSub leases close to expiry (beat sends this every minute)."""
    if not runtime().settings.websub_url:
        return 0
    return push_module.renew(runtime().store)


def _enqueue_deliveries(jobs: Sequence[tuple[Alert, str]]) -> None:
    """One deliver task per (alert, URL), sent over one producer connection."""
    if not jobs:
        return
    with app.producer_or_acquire() as producer:
        for alert, target in jobs:
            deliver.apply_async((alert.to_json(), target), queue=DELIVER_QUEUE, producer=producer)


@app.task(name="alerts.deliver", bind=True, ignore_result=True, max_retries=MAX_DELIVERY_RETRIES)
def deliver(self: Any, alert: dict[str, Any], target: str) -> bool:
    """Send one alert to one URL; transient failures retry with exponential backoff."""
    decoded = Alert.from_json(alert)
    try:
        pipeline.deliver(runtime(), decoded, target, attempt=self.request.retries)
    except UnknownTarget as exc:
        _logger.warning("alert.dropped", subscriber=decoded.subscriber, item=decoded.item, error=str(exc))
        return False
    except TransientError as exc:
        if self.request.retries >= MAX_DELIVERY_RETRIES:
            _logger.error(
                "alert.failed",
                subscriber=decoded.subscriber,
                item=decoded.item,
                error=str(exc),
                final=True,
                attempts=self.request.retries + 1,
            )
            return False
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None
    return True
