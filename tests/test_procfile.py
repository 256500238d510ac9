"""The Procfile runs what the service is made of: a poll worker (its poller needs no beat), a deliver
worker, and the WebSub server on the platform's $PORT."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROCFILE = Path(__file__).resolve().parents[1] / "Procfile"


def _processes() -> dict[str, str]:
    lines = [line for line in PROCFILE.read_text().splitlines() if line.strip()]
    return dict(line.split(": ", 1) for line in lines)


def test_the_processes_and_their_queues() -> None:
    processes = _processes()
    assert set(processes) == {"poll", "deliver", "websub"}  # no beat: each poll worker schedules itself
    assert "--queues poll " in processes["poll"] and "--queues deliver " in processes["deliver"]
    assert "workers.app" in processes["poll"] and "workers.websub" in processes["websub"]


def test_websub_listens_on_the_platforms_port() -> None:
    """The line as a platform's shell runs it: $PORT becomes ALERTS_WEBSUB_LISTEN (8787 without it)."""
    command = _processes()["websub"].replace("python -m workers.websub", "printenv ALERTS_WEBSUB_LISTEN")
    for port, expected in (("5123", "0.0.0.0:5123"), (None, "0.0.0.0:8787")):
        env = {k: v for k, v in os.environ.items() if k != "PORT"} | ({"PORT": port} if port else {})
        done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected
