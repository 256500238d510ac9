"""The Celery app: broker, queues, beat schedule, and the logging/context signals."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, signals
from kombu.entity import Exchange, Queue

from alerts import log
from alerts.config.settings import Settings
from alerts.service.supervise import DELIVER_QUEUE, POLL_QUEUE
from alerts.state.connection import DEFAULT_URL

SETTINGS = Settings.from_env()
TICK_SECONDS = SETTINGS.tick


def _queue(name: str) -> Queue:
    """A queue bound to its own direct exchange, so each queue receives only its own tasks."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


def _make_app() -> Celery:
    broker = SETTINGS.redis_url or DEFAULT_URL
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
        broker_transport_options={"visibility_timeout": 3600},
        beat_scheduler="celery.beat:Scheduler",  # in memory: the tick needs no state file in the cwd
        beat_max_loop_interval=1,
        beat_schedule={
            "tick": {
                "task": "alerts.tick",
                "schedule": TICK_SECONDS,
                "options": {"queue": POLL_QUEUE, "expires": max(1.0, TICK_SECONDS * 4)},
            },
            "sweep": {
                "task": "alerts.sweep",
                "schedule": 1.0,
                "options": {"queue": POLL_QUEUE, "expires": 5.0},
            },
            "digests": {
                "task": "alerts.digests",
                "schedule": 5.0,
                "options": {"queue": POLL_QUEUE, "expires": 10.0},
            },
            "websub-renew": {
                "task": "alerts.websub_renew",
                "schedule": 60.0,
                "options": {"queue": POLL_QUEUE, "expires": 50.0},
            },
        },
    )
    return app


log.configure(
    SETTINGS.log_level
)  # before Celery's own start-up checks, so even their warnings are JSON lines
app = _make_app()


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Celery calls this instead of configuring logging itself."""
    log.configure(SETTINGS.log_level)


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task=task_id, task_name=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
