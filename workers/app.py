"""The Celery app: broker, queues, and the logging/context signals (no beat: see alerts.service.poller)."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from celery import Celery, signals
from kombu.entity import Exchange, Queue

from alerts import log
from alerts.config.settings import Settings
from alerts.service.supervise import DELIVER_QUEUE, POLL_QUEUE
from alerts.state import redis_url
from alerts.state.connection import DEFAULT_URL

SETTINGS = Settings.from_env()


def _queue(name: str) -> Queue:
    """A queue bound to its own direct exchange, so each queue receives only its own tasks."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


def _make_app() -> Celery:
    broker, transport = redis_url.celery_broker(SETTINGS.redis_url or DEFAULT_URL)  # sentinel:// too
    app = Celery("breaking-alerts", broker=broker, include=["workers.tasks"])
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_serializer="json",
        accept_content=["json"],
        task_queues=[_queue(POLL_QUEUE), _queue(DELIVER_QUEUE)],
        task_default_queue=POLL_QUEUE,
        task_routes={"alerts.deliver_batch": {"queue": DELIVER_QUEUE}},
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis outage never makes a worker exit: it waits
        broker_channel_error_retry=True,
        # tasks running when the broker connection drops keep running (cancelling a send mid-message
        # would only send it again); their deliveries are the outbox's to finish or hand out again
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_enable_prefetch_count_reduction=False,
        broker_transport_options={"visibility_timeout": 3600, **transport},
        # no beat schedule: the poll worker's poller (alerts.service.poller) polls the feeds when they
        # are due and runs the periodic jobs (sweep, digests, WebSub renewals) itself
        beat_schedule={},
    )
    return app


class QuietBrokerOutage(logging.Filter):
    """While Redis is away, Celery and kombu log a line (often with a traceback) every few seconds from
    each component: the consumer's reconnects, the producer's failed sends. Those go to debug; one
    process says it once instead (``redis.unavailable`` and ``redis.recovered``, from the poll
    worker's heartbeat, :mod:`alerts.state.liveness`)."""

    MARKERS = ("Cannot connect to", "Connection to broker lost", "Connection error", "Trying again in")
    # Celery's warning after every reconnect; the choice it asks for is made (keep running tasks)
    SETTLED = "worker_cancel_long_running_tasks_on_connection_loss"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings" and self.SETTLED in str(record.args or record.msg):
            return False
        if not record.name.startswith(("celery", "kombu")) or not self._about_the_broker(record):
            return True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None
        return True

    def _about_the_broker(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, _connection_errors()):
                return True
            error = error.__cause__ or error.__context__
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return False
        return any(marker in message for marker in self.MARKERS)


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What the broker's transport raises when it cannot reach Redis (redis-py's, kombu's, OSError)."""
    global _CONNECTION_ERRORS
    if _CONNECTION_ERRORS is None:
        from kombu.exceptions import OperationalError

        transport = app.connection_for_write()
        _CONNECTION_ERRORS = (
            OperationalError,
            OSError,
            *transport.connection_errors,
            *transport.channel_errors,
        )
    return _CONNECTION_ERRORS


_CONNECTION_ERRORS: tuple[type[BaseException], ...] | None = None
_FILTERS = (QuietBrokerOutage(),)
log.configure(SETTINGS.log_level, filters=_FILTERS)  # before Celery's own start-up checks: JSON lines
app = _make_app()


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery calls this instead of configuring logging itself."""
    log.configure(SETTINGS.log_level, filters=_FILTERS)


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task=task_id, task_name=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
