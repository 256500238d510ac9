"""``alerts run``: one machine's whole service as two Celery worker processes under one supervisor
(and the WebSub callback server when ``ALERTS_WEBSUB_URL`` is set). Celery itself runs only in the
children (``workers/``): this module builds their command lines.

The poll worker (with the embedded beat; threads, since polling waits on the network) and the
deliver worker (processes, since Apprise's sending is CPU-bound; each batch is sent on threads)
are separate, so a slow or failing channel can never hold up polling, nor a burst of polls delivery.
Both inherit this process's environment (REDIS_URL, ALERTS_CONFIG) and stderr.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from alerts.config.settings import Settings

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
_COMMON = ["--without-gossip", "--without-mingle"]


def commands(settings: Settings, poll_concurrency: int, deliver_concurrency: int) -> list[list[str]]:
    """The worker command lines."""
    celery = [sys.executable, "-m", "celery", "-A", "workers.app", "--quiet", "worker", *_COMMON]
    level = ["--loglevel", settings.log_level]
    workers = [
        [
            *celery,
            "--beat",
            "-Q",
            POLL_QUEUE,
            "-n",
            "poll@%h",
            "--pool",
            "threads",
            "-c",
            str(poll_concurrency),
            *level,
        ],
        # delivery is CPU-bound in Apprise: one process per core, each sending a batch on its own threads
        [
            *celery,
            "-Q",
            DELIVER_QUEUE,
            "-n",
            "deliver@%h",
            "--pool",
            "prefork",
            "-c",
            str(deliver_concurrency),
            *level,
        ],
    ]
    if settings.websub_url:
        workers.append([sys.executable, "-m", "workers.websub"])
    return workers


def run(settings: Settings, poll_concurrency: int = 16, deliver_concurrency: int = 2) -> int:
    """Start both workers; stop both when either ends or on SIGINT/SIGTERM. Returns an exit code."""
    children = [
        subprocess.Popen(command) for command in commands(settings, poll_concurrency, deliver_concurrency)
    ]
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        stop(signal.SIGTERM, None)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [child.returncode for child in children]
    return (
        0 if stopping and all(code in (0, -signal.SIGTERM) for code in codes) else max(abs(c) for c in codes)
    )
