"""`alerts run` from start to stop: which Redis every command uses, a clean stop on Ctrl-C or SIGTERM
(the embedded Redis last), and a crashed worker restarted while the rest keep running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from alerts.service import embedded_redis, supervise
from alerts.service.supervise import Supervisor
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink
from tests.harness.worker import wait_for

ALERTS = Path(sys.executable).with_name("alerts")
ROOT = Path(__file__).resolve().parents[2]
_OWN_ENV = ("ALERTS_", "REDIS_URL", "BOT_TOKEN")
CLOSED_FEED = "http://127.0.0.1:9/wire.xml"  # refused at once: the service records a failing feed


def _env(config_dir: Path, state_dir: Path, **extra: str) -> dict[str, str]:
    """Our own variables only as given (never REDIS_URL from the caller's environment)."""
    base = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_ENV)}
    return {
        **base,
        "ALERTS_CONFIG": str(config_dir),
        "ALERTS_STATE_DIR": str(state_dir),
        "ALERTS_LOG_LEVEL": "INFO",
        "ALERTS_METRICS_LISTEN": "127.0.0.1:0",  # a port of its own: the default may be taken here
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _alerts(config_dir: Path, state_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ALERTS), *args],
        env=_env(config_dir, state_dir, **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class Service:
    """`alerts run` in a session of its own, as a terminal starts it; stdout and stderr kept apart."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.out, self.err = directory / "run.out", directory / "run.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [str(ALERTS), "run", "--concurrency", "2"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_ready(self) -> Service:
        """Return once both workers said they are ready."""
        wait_for(lambda: self.ready().count("@") == 2 or self.process.poll() is not None, 60, "both ready")
        assert self.process.poll() is None, self.text()
        return self

    def ready(self) -> str:
        """The "poll@host ready." and "deliver@host ready." lines so far."""
        return " ".join(e["event"] for e in self.events() if str(e.get("event", "")).endswith(" ready."))

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.err.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    found.append(event)
        return found

    def interrupt(self, sig: signal.Signals) -> tuple[int, float]:
        """Send ``sig`` to the whole process group (a terminal's Ctrl-C); the exit code and seconds taken."""
        began = time.monotonic()
        os.killpg(self.process.pid, sig)
        code = self.process.wait(timeout=15)
        return code, time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL it if it still runs (its children then get SIGTERM from the kernel)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    """Services started by a test, killed after it if still running; no redis-server of theirs left."""
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()
    with contextlib.suppress(ValueError, OSError):
        pid = json.loads((tmp_path / "state" / "redis.json").read_text())["pid"]
        wait_for(lambda: not psutil.pid_exists(pid), timeout=15, what="the embedded redis-server to exit")


def _failing_feed_config(config_dir: Path) -> None:
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": CLOSED_FEED, "every": "1s"}],
        subscribers=[{"name": "desk", "notify": ["json://127.0.0.1:9/hook"]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )


def _embedded_servers(state_dir: Path) -> list[int]:
    """redis-server processes working in ``state_dir``."""
    found = []
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] == "redis-server" and Path(process.cwd()) == state_dir:
                found.append(process.pid)
    return found


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stop_is_clean_and_stops_the_embedded_redis_last(
    sig: signal.Signals, config_dir: Path, state_dir: Path, tmp_path: Path, services: list[Service]
) -> None:
    """Ctrl-C (SIGINT to the group) or SIGTERM: exit 0 within 10 s, no traceback, every worker gone before
    the embedded Redis stops, the record removed; the state dir is 0700, its files 0600, with an AOF."""
    _failing_feed_config(config_dir)
    service = Service(tmp_path, _env(config_dir, state_dir, REDIS_URL="embedded"))
    services.append(service)
    service.wait_ready()
    record = json.loads((state_dir / "redis.json").read_text())
    assert record["url"].startswith("redis://default:") and psutil.pid_exists(record["pid"])
    assert _embedded_servers(state_dir) == [record["pid"]]
    workers = [event["pid"] for event in service.events("worker.started")]
    assert len(workers) == 2

    code, seconds = service.interrupt(sig)

    assert code == 0, service.text()
    assert seconds < 10
    assert "Traceback" not in service.text()
    assert not any(psutil.pid_exists(pid) for pid in [*workers, record["pid"]])
    assert not (state_dir / "redis.json").exists()
    names = [event["event"] for event in service.events()]
    stopping, redis_stopped = names.index("supervisor.stopping"), names.index("redis.stopped")
    assert stopping < redis_stopped < names.index("supervisor.stopped")
    assert "worker.killed" not in names and "worker.exited" not in names
    assert service.events("supervisor.stopping")[0]["signal"] == sig.name
    assert _mode(state_dir) == 0o700 and (state_dir / "alerts.aof").stat().st_size > 0
    assert {path.name: _mode(path) for path in state_dir.iterdir()} == {
        path.name: 0o600 for path in state_dir.iterdir()
    }
    assert record["url"].split("@")[0].split(":")[-1] not in service.text()  # the password is never logged


def test_read_commands_use_the_running_embedded_redis(
    config_dir: Path, state_dir: Path, tmp_path: Path, services: list[Service]
) -> None:
    """With REDIS_URL unset, feeds, dlq and history read the instance recorded in the state dir: the
    feed failures the running service wrote there."""
    _failing_feed_config(config_dir)
    service = Service(tmp_path, _env(config_dir, state_dir, REDIS_URL="embedded"))
    services.append(service)
    service.wait_ready()
    wait_for(lambda: service.events("feed.failed"), timeout=20, what="a failed poll")

    feeds = _alerts(config_dir, state_dir, "feeds", "--json")
    assert feeds.returncode == 0, feeds.stderr
    [row] = json.loads(feeds.stdout)
    assert row["feed"] == "wire" and row["status"] == "failing" and row["failures"] >= 1
    dlq = _alerts(config_dir, state_dir, "dlq", "list")
    assert (dlq.returncode, dlq.stdout) == (0, "0 dead deliveries\n"), dlq.stderr
    history = _alerts(config_dir, state_dir, "history", "--json")
    assert (history.returncode, history.stdout) == (0, ""), history.stderr
    retry = _alerts(config_dir, state_dir, "dlq", "retry", "no-such-delivery", REDIS_URL="embedded")
    assert (retry.returncode, retry.stdout) == (1, "retry: no-such-delivery: not found\n")
    assert _embedded_servers(state_dir) == [json.loads((state_dir / "redis.json").read_text())["pid"]]


@pytest.mark.parametrize("command", [["feeds"], ["dlq", "list"], ["history"]], ids=" ".join)
def test_read_commands_start_no_redis(command: list[str], config_dir: Path, state_dir: Path) -> None:
    """With no embedded Redis running (a stale record at most), a read command says so in one line and
    exits 1; it starts no private copy of the last snapshot."""
    _failing_feed_config(config_dir)
    state_dir.mkdir()
    (state_dir / "redis.json").write_text(json.dumps({"url": "redis://127.0.0.1:9/0", "pid": 2**22 + 1}))
    result = _alerts(config_dir, state_dir, *command, REDIS_URL="embedded")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"no embedded Redis is running in {state_dir}: start `alerts run` (it starts one)"
    ]
    assert not (state_dir / "redis.json").exists()  # the stale record was removed
    assert _embedded_servers(state_dir) == [] and not (state_dir / "alerts.aof").exists()


@pytest.mark.parametrize("command", [["feeds"], ["run"], ["once"], ["dlq", "list"]], ids=" ".join)
def test_unanswered_redis_url_is_one_line_without_the_password(
    command: list[str], config_dir: Path, state_dir: Path
) -> None:
    """REDIS_URL that does not answer: exit 1 at once, one line naming the URL masked and what to do."""
    _failing_feed_config(config_dir)
    url = f"redis://:secret@127.0.0.1:{embedded_redis.free_port()}/0"
    began = time.monotonic()
    result = _alerts(config_dir, state_dir, *command, REDIS_URL=url)
    assert time.monotonic() - began < 5
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "secret" not in output and "Traceback" not in output
    [line] = output.splitlines()
    assert url.replace("secret", "***") in line
    assert "start Redis there, or unset REDIS_URL to use the embedded one" in line


def test_once_with_the_embedded_redis_stops_it(config_dir: Path, state_dir: Path) -> None:
    """`alerts once` with REDIS_URL=embedded starts the instance, polls, and stops it (record removed)."""
    _failing_feed_config(config_dir)
    result = _alerts(config_dir, state_dir, "once", REDIS_URL="embedded")
    assert result.returncode == 1, result.stderr  # its one feed failed
    assert result.stdout.startswith("wire: failed: ")
    assert not (state_dir / "redis.json").exists() and _embedded_servers(state_dir) == []
    assert (state_dir / "alerts.aof").exists()


def test_a_killed_worker_is_restarted_and_the_service_still_delivers(
    config_dir: Path,
    state_dir: Path,
    tmp_path: Path,
    redis_url: str,
    feed_server: FeedServer,
    webhook: WebhookSink,
    services: list[Service],
) -> None:
    """SIGKILL of the deliver worker: `worker.exited` is logged, a new deliver worker starts after its
    backoff, the poll worker keeps running, and a new alert still arrives."""
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [webhook.apprise_url]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    service = Service(tmp_path, _env(config_dir, state_dir, REDIS_URL=redis_url))
    services.append(service)
    service.wait_ready()
    wait_for(lambda: service.events("feed.seeded"), timeout=20, what="first poll")
    [deliver] = [
        child for child in psutil.Process(service.process.pid).children() if "deliver@%h" in child.cmdline()
    ]
    [poll] = [event["pid"] for event in service.events("worker.started") if event["worker"] == "poll"]
    pool = deliver.children()

    deliver.kill()

    wait_for(lambda: service.events("worker.exited"), timeout=10, what="worker.exited")
    [exited] = service.events("worker.exited")
    assert (exited["worker"], exited["pid"], exited["signal"], exited["restart_in"]) == (
        "deliver",
        deliver.pid,
        "SIGKILL",
        1.0,
    )
    wait_for(lambda: len(service.events("worker.started")) == 3, timeout=10, what="a new deliver worker")
    restarted = service.events("worker.started")[-1]
    assert restarted["worker"] == "deliver" and restarted["pid"] != deliver.pid
    wait_for(lambda: service.ready().count("deliver@") == 2, timeout=60, what="the new deliver worker ready")
    wait_for(lambda: not any(p.is_running() for p in pool), timeout=10, what="the old pool processes gone")
    assert psutil.pid_exists(poll) and service.process.poll() is None

    feed_server.publish("wire", Entry("Earthquake shakes Lima", "http://news.test/lima"))
    wait_for(lambda: webhook.titles() == ["Earthquake shakes Lima"], timeout=30, what="the alert")

    code, seconds = service.interrupt(signal.SIGINT)
    assert code == 0 and seconds < 10 and "Traceback" not in service.text()


def test_second_ctrl_c_kills_the_workers_at_once(
    config_dir: Path, state_dir: Path, tmp_path: Path, services: list[Service]
) -> None:
    """A second Ctrl-C while the workers shut down kills them at once: still exit 0, no traceback, the
    embedded Redis stopped and its record removed."""
    _failing_feed_config(config_dir)
    service = Service(tmp_path, _env(config_dir, state_dir, REDIS_URL="embedded"))
    services.append(service)
    service.wait_ready()
    redis_pid = json.loads((state_dir / "redis.json").read_text())["pid"]
    os.killpg(service.process.pid, signal.SIGINT)
    wait_for(lambda: service.events("supervisor.stopping"), timeout=5, what="supervisor.stopping")
    code, seconds = service.interrupt(signal.SIGINT)
    assert code == 0 and seconds < 3, service.text()
    assert "Traceback" not in service.text()
    assert {event["worker"] for event in service.events("worker.killed")} <= {"poll", "deliver"}
    assert not psutil.pid_exists(redis_pid) and not (state_dir / "redis.json").exists()


def test_a_killed_supervisor_leaves_no_process_behind(
    config_dir: Path, state_dir: Path, tmp_path: Path, services: list[Service]
) -> None:
    """SIGKILL of `alerts run` alone: its workers and the embedded Redis get SIGTERM from the kernel and
    exit; the record left behind is ignored by the next command, which starts nothing."""
    _failing_feed_config(config_dir)
    service = Service(tmp_path, _env(config_dir, state_dir, REDIS_URL="embedded"))
    services.append(service)
    service.wait_ready()
    children = psutil.Process(service.process.pid).children(recursive=True)
    assert len(children) >= 4  # redis-server, two workers, the deliver pool (and the embedded beat)
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait()
    wait_for(lambda: not any(child.is_running() for child in children), timeout=20, what="no orphans")
    result = _alerts(config_dir, state_dir, "feeds", REDIS_URL="embedded")
    assert result.returncode == 1 and "no embedded Redis is running" in result.stderr
    assert not (state_dir / "redis.json").exists()


# --- the supervisor on its own, with small real child processes ---------------------------------


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_crashing_child_is_restarted_with_a_doubling_backoff_reset_once_it_stayed_up() -> None:
    """Backoff 1 s, doubling for each quick crash up to 30 s; back to 1 s after 60 s of uptime."""
    supervisor = Supervisor({"crash": _python("raise SystemExit(3)")})
    [child] = supervisor.children
    backoffs = []
    now = 0.0
    for uptime in (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 61.0, 0.5):
        supervisor.check(now)  # due: started
        assert child.process is not None
        child.process.wait(10)
        now += uptime
        supervisor.check(now)  # exited: scheduled
        assert child.process is None and child.restart_at == now + child.backoff
        backoffs.append(child.backoff)
        supervisor.check(now + child.backoff - 0.1)  # not yet
        assert child.process is None
        now += child.backoff
    assert backoffs == [1, 2, 4, 8, 16, 30, 30, 1, 2]


def test_stop_kills_a_child_that_ignores_sigterm_and_what_a_crashed_child_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child still running STOP_GRACE seconds after SIGTERM is SIGKILLed; the processes a crashed
    child started (its session) are killed with it; a polite child just exits."""
    monkeypatch.setattr(supervise, "STOP_GRACE", 1.0)
    stubborn, orphan = tmp_path / "stubborn", tmp_path / "orphan"
    supervisor = Supervisor(
        {
            "stubborn": _python(
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"open({str(stubborn)!r}, 'w').close(); time.sleep(60)"
            ),
            "polite": _python("import time; time.sleep(60)"),
            "crash": _python(
                "import subprocess, sys; "
                "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                f"open({str(orphan)!r}, 'w').write(str(p.pid)); sys.exit(1)"
            ),
        }
    )
    stubborn_child, polite_child, crash_child = supervisor.children
    supervisor.check(0)
    wait_for(lambda: stubborn.exists() and orphan.read_text() if orphan.exists() else False, what="started")
    assert crash_child.process is not None and crash_child.process.wait(10) == 1
    supervisor.check(0.1)
    grandchild = int(orphan.read_text())
    wait_for(lambda: not psutil.pid_exists(grandchild), timeout=5, what="the crashed child's orphan")
    stubborn_process, polite_process = stubborn_child.process, polite_child.process
    assert stubborn_process is not None and polite_process is not None
    began = time.monotonic()
    supervisor.stop(hurry=lambda: False)
    assert 1.0 <= time.monotonic() - began < 3
    assert (stubborn_process.returncode, polite_process.returncode) == (-signal.SIGKILL, -signal.SIGTERM)
    assert all(child.process is None for child in supervisor.children)


def test_children_run_in_their_own_session_and_die_with_the_supervisor(tmp_path: Path) -> None:
    """spawn(): a new session (a terminal's Ctrl-C never reaches it) and SIGTERM when its parent dies."""
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen(
        _python(
            "import sys, time; from alerts.service.supervise import spawn; "
            "child = spawn([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
        ),
        cwd=ROOT,
    )
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the child")
        child = int(pid_file.read_text())
        assert os.getsid(child) == child != os.getsid(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: not psutil.pid_exists(child), timeout=5, what="the child to die with its parent")
