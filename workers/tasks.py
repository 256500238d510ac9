"""Thin adapters: decode arguments, call one ``alerts.service.pipeline`` function, map errors to retries."""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Sequence
from typing import Any

from celery import signals

from alerts import log
from alerts.delivery import outbox
from alerts.errors import AlertsError
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from alerts.service.supervise import DELIVER_QUEUE, POLL_QUEUE
from alerts.websub import subscriptions
from workers.app import app

_logger = log.get("alerts.tasks")


_runtime_lock = threading.Lock()


@functools.cache
def _built() -> Runtime:
    return Runtime.from_env()


def runtime() -> Runtime:
    """This worker process's runtime, built once from the environment (by one thread: loading a large
    configuration takes seconds, and sixteen threads each loading it would take a minute)."""
    with _runtime_lock:
        return _built()


@signals.worker_init.connect
def _warm_up(**_: Any) -> None:
    """Load the configuration before the first task (in the parent, so forked children share it)."""
    try:
        runtime().live.current()
    except AlertsError as exc:  # the first task reports it again, with its context
        _logger.error("config.invalid", error=str(exc))


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
    return subscriptions.renew(runtime().store)


def _enqueue_deliveries(jobs: Sequence[tuple[Alert, str]]) -> None:
    """Record the deliveries in the outbox, then queue them in batches over one producer connection.

    If the broker is down the records stay pending and the sweep hands them out later: nothing is
    lost, and the poll's claims stand (so nothing is alerted twice either).
    """
    ids = outbox.record(runtime().store.deliveries, jobs, runtime().policy)
    _send_batches(ids)


def _send_batches(ids: Sequence[str]) -> None:
    if not ids:
        return
    try:
        with app.producer_or_acquire() as producer:
            for batch in outbox.batches(ids):
                deliver_batch.apply_async((batch,), queue=DELIVER_QUEUE, producer=producer)
    except Exception as exc:  # kombu raises many kinds; the sweep will hand these out
        _logger.warning("outbox.enqueue_deferred", deliveries=len(ids), error=str(exc))


@app.task(name="alerts.deliver_batch", ignore_result=True)
def deliver_batch(ids: list[str]) -> dict[str, int]:
    """Send a batch of outbox deliveries, each on its own (retries are booked in the outbox)."""
    return runtime().sender.deliver_batch(ids)


@app.task(name="alerts.digests", ignore_result=True, acks_late=False)
def send_digests() -> int:
    """Fold alerts held by quiet hours, caps, bursts or digest schedules into due digests (beat)."""
    return pipeline.send_digests(runtime(), _enqueue_deliveries)


@app.task(name="alerts.sweep", ignore_result=True, acks_late=False)
def sweep() -> int:
    """Hand out deliveries that are due: lost tasks, retries, claims of dead workers (every second)."""
    ids = outbox.sweep(runtime().store.deliveries, runtime().policy)
    _send_batches(ids)
    return len(ids)
