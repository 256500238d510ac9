"""Pytest fixtures around the harness: servers, sinks and a worker, each stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.servers import FeedServer, TelegramDouble, WebhookSink
from tests.harness.smtp import SmtpSink
from tests.harness.worker import WorkerProcess


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """RSS feeds served on 127.0.0.1."""
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    """A json:// webhook sink on 127.0.0.1."""
    sink = WebhookSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def telegram() -> Iterator[TelegramDouble]:
    """A local Telegram Bot API double."""
    double = TelegramDouble().start()
    yield double
    double.stop()


@pytest.fixture
def start_worker(tmp_path: Path, redis_url: str, config_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts real Celery workers on the test Redis and config dir; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(via_cli: bool = False, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            {"REDIS_URL": redis_url, "ALERTS_CONFIG": str(config_dir), "ALERTS_LOG_LEVEL": "INFO", **env},
            tmp_path / "worker.log",
            via_cli=via_cli,
        ).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
