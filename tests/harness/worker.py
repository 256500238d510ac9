"""A real Celery worker (with its poller) in a subprocess, its log captured to a file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``celery -A workers.app worker`` on both queues, or ``alerts run`` itself."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, via_cli: bool = False, concurrency: int = 8
    ) -> None:
        self._concurrency = concurrency
        # `alerts run`'s metrics server on a port of its own (the default one may be taken on this machine)
        self._env = {**os.environ, "ALERTS_METRICS_LISTEN": "127.0.0.1:0", **env, "PYTHONUNBUFFERED": "1"}
        self._via_cli = via_cli
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> Mapping[str, str]:
        """The environment the worker runs with."""
        return self._env

    def start(self) -> WorkerProcess:
        """Start the worker and return once it logs that it is ready."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._command(),
            cwd=ROOT,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for(lambda: "ready" in self.text(), timeout=30, what="celery worker ready")
        except AssertionError:
            self.kill()  # never leave a half-started worker behind
            raise
        return self

    def _command(self) -> list[str]:
        if self._via_cli:
            return [str(Path(sys.executable).with_name("alerts")), "run"]
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--queues",
            "poll,deliver",
            "--pool",
            "threads",
            "--concurrency",
            str(self._concurrency),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]

    def kill(self) -> None:
        """SIGKILL the worker and every process it started: no shutdown at all."""
        if self._process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then kill if it lingers."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)  # anything it left behind

    @property
    def pid(self) -> int:
        """The process id of the worker (or of `alerts run`, the parent of its workers)."""
        assert self._process is not None, "not started"
        return self._process.pid

    def text(self) -> str:
        """Everything the worker logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines, optionally only those with ``event == name``."""
        events = []
        for line in self.text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                events.append(event)
        return events


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
