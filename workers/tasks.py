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
from alerts.errors import AlertsError, StoreUnavailable
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.poller import Periodic, Poller
from alerts.service.runtime import Runtime
from alerts.service.supervise import DELIVER_QUEUE, POLL_QUEUE
from alerts.websub import subscriptions
from workers.app import app

_logger = log.get("alerts.tasks")


_runtime_lock = threading.Lock()


@functools.cache
def _built() -> Runtime:
    return Runtime.from_env(sends=_sends)


_sends = True  # whether this worker delivers (and checks notify URLs); known once its queues are


def runtime() -> Runtime:
    """This worker process's runtime, built once from the environment (by one thread: loading a large
    configuration takes seconds, and sixteen threads each loading it would take a minute)."""
    with _runtime_lock:
        return _built()


@signals.celeryd_after_setup.connect
def _warm_up(**_: Any) -> None:
    """Load the configuration before the first task (in the parent, so forked children share it); a
    worker that only polls does not load Apprise to check notify URLs it never uses."""
    global _sends
    consumed = app.amqp.queues.consume_from
    _sends = not consumed or DELIVER_QUEUE in consumed
    try:
        runtime().live.current()
    except AlertsError as exc:  # the first task reports it again, with its context
        _logger.error("config.invalid", error=str(exc))


@signals.worker_ready.connect
@signals.worker_process_init.connect
def _start_heartbeat(**_: Any) -> None:
    """Every worker process (the consumer, and each prefork child) beats from its start, so what it
    claims is free within seconds of its death (:mod:`alerts.state.liveness`)."""
    runtime().store.liveness.start()


@signals.worker_ready.connect
def _start_poller(**_: Any) -> None:
    """A worker that consumes the poll queue polls the due feeds and runs the periodic jobs
    (:mod:`alerts.service.poller`), and announces Redis outages for the service (one line each)."""
    global _POLLER
    if POLL_QUEUE not in app.amqp.queues.consume_from or _POLLER is not None:
        return
    built = runtime()
    built.store.liveness.report = True
    jobs = [
        Periodic("sweep", 1.0, _sweep),
        Periodic("digests", 5.0, lambda: pipeline.send_digests(runtime(), _enqueue_deliveries)),
    ]
    if built.settings.websub_url:
        jobs.append(Periodic("websub_renew", 60.0, lambda: subscriptions.renew(runtime().store)))
    _POLLER = Poller(
        built,
        _enqueue_deliveries,
        threads=built.settings.poll_concurrency,
        tick=built.settings.tick,
        jobs=jobs,
    ).start()


_POLLER: Poller | None = None


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _release(**_: Any) -> None:
    """A clean stop (its tasks finished or handed back) frees what this process still holds at once;
    the poller first finishes the polls under way."""
    if _POLLER is not None:
        _POLLER.stop()
    runtime().store.liveness.release()


def _sweep() -> int:
    """Reap dead workers and hand out deliveries that are due: lost tasks, retries, the dead's."""
    ids = pipeline.sweep(runtime())
    _send_batches(ids)
    return len(ids)


@signals.task_received.connect
def _received(request: Any = None, **_: Any) -> None:
    """A delivery task in this worker's prefetch buffer is this process's to run: if it dies first,
    its deliveries are reaped and handed out again at once (not when the broker's visibility ends)."""
    if getattr(request, "name", None) != "alerts.deliver_batch":
        return
    try:
        runtime().store.deliveries.own([str(delivery) for delivery in request.args[0]])
    except (AlertsError, IndexError, TypeError) as exc:  # the sweep's hand-out still covers them
        _logger.debug("outbox.own_failed", error=str(exc))


def _interrupted(task: str, exc: StoreUnavailable) -> None:
    """Redis went away mid-task: nothing is lost (claims and deliveries are taken over or handed out
    again once it is back), and the outage is announced once by the beat, not by every task."""
    _logger.debug("task.interrupted", task_name=task, error=str(exc))


@app.task(name="alerts.tick", ignore_result=True, acks_late=False)
def tick() -> int:
    """Queue one poll per feed that is due (the poller polls them itself; kept for a beat of an older
    version still sending it)."""
    try:
        due = pipeline.schedule(runtime())
    except StoreUnavailable as exc:
        _interrupted("tick", exc)
        return 0
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
    except StoreUnavailable as exc:
        _interrupted("poll", exc)
        return "interrupted"
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
    except StoreUnavailable as exc:  # the feed's safety poll picks its items up once Redis is back
        _interrupted("push", exc)
        return 0
    except AlertsError as exc:
        _logger.warning("feed.push_failed", feed=feed, error=str(exc), error_type=type(exc).__name__)
        return 0


@app.task(name="alerts.websub_renew", ignore_result=True, acks_late=False)
def websub_renew() -> int:
    """Renew WebSub leases close to expiry (beat sends this every minute)."""
    if not runtime().settings.websub_url:
        return 0
    try:
        return subscriptions.renew(runtime().store)
    except StoreUnavailable as exc:
        _interrupted("websub_renew", exc)
        return 0


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
    try:
        return runtime().sender.deliver_batch(ids)
    except StoreUnavailable as exc:
        _interrupted("deliver_batch", exc)
        return {}


@app.task(name="alerts.digests", ignore_result=True, acks_late=False)
def send_digests() -> int:
    """Fold alerts held by quiet hours, caps, bursts or digest schedules into due digests (beat)."""
    try:
        return pipeline.send_digests(runtime(), _enqueue_deliveries)
    except StoreUnavailable as exc:
        _interrupted("digests", exc)
        return 0


@app.task(name="alerts.sweep", ignore_result=True, acks_late=False)
def sweep() -> int:
    """Reap dead workers and hand out deliveries that are due: lost tasks, retries, the dead's
    (every second)."""
    try:
        return _sweep()
    except StoreUnavailable as exc:
        _interrupted("sweep", exc)
        return 0
