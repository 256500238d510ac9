"""`alerts demo`: a local newsroom and the whole service, alerts on the terminal, no account or
network: breaking items appear on the console within about a second, and it stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from alerts.service.demo import HEADLINES
from tests.harness.worker import wait_for

ALERTS = Path(sys.executable).with_name("alerts")
STAMP = re.compile(r"\((\d\d):(\d\d):(\d\d)\)$")


def test_the_demo_shows_breaking_items_on_the_terminal_within_seconds(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "REDIS_URL"))}
    env["HOME"] = str(tmp_path)  # nothing of the user's is touched: the demo keeps to a temp dir
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:  # as the README has it, then a Ctrl-C
        demo = subprocess.Popen(
            [str(ALERTS), "demo", "--every", "2"],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        wait_for(lambda: out.read_text().count("🚨 ") >= 3, timeout=60, what="three alerts on the terminal")
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        code = demo.wait(timeout=30)
    done = subprocess.CompletedProcess(demo.args, code, out.read_text(), err.read_text())
    out.unlink()
    err.unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    shown = [line[2:] for line in done.stdout.splitlines() if line.startswith("🚨 ")]
    assert len(shown) >= 3, done.stdout + done.stderr[-3000:]
    assert all(STAMP.sub("", title).strip() in HEADLINES for title in shown)
    assert len(set(shown)) == len(shown)  # each item once
    sent = [json.loads(line) for line in done.stderr.splitlines() if '"alert.sent"' in line]
    assert len(sent) == len(shown)
    for event in sent:  # published at the time in its title (whole seconds), sent within 2 s of it
        match = STAMP.search(event["title"])
        assert match is not None
        at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).astimezone()  # titles: local
        published = at.replace(hour=int(match[1]), minute=int(match[2]), second=int(match[3]), microsecond=0)
        assert 0 <= (at - published).total_seconds() < 2.5, (event["title"], event["timestamp"])
    assert not list(tmp_path.iterdir()) or all(p.name.startswith(".") for p in tmp_path.iterdir())
