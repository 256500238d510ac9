"""The metrics and health server (real sockets on loopback, a real Redis behind the gauges), its
listen setting, the multiprocess directory, and what the supervisor does for metrics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts import metrics
from alerts.config.settings import Settings
from alerts.service import observe
from alerts.service.supervise import Supervisor
from alerts.state.store import Store
from tests.harness.worker import wait_for


def _request(url: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture
def serve(store: Store) -> Iterator[Callable[..., str]]:
    """Serve the application on 127.0.0.1 (a port of its own) with ``ready``; returns the base URL."""
    servers: list[observe.MetricsServer] = []

    def start(ready: observe.Readiness) -> str:
        server = observe.MetricsServer("127.0.0.1:0")
        server.start(observe.application(observe.registry(store, None), ready))
        servers.append(server)
        return f"http://{server.address}"

    yield start
    for server in servers:
        server.close()


def test_the_routes(serve: Callable[..., str]) -> None:
    """/metrics: this process's metrics (no multiprocess directory) and the gauges from Redis, in the
    text format; /healthz 200; /readyz 200 or 503 with the JSON the check gives; HEAD works; anything
    else is 404 or 405."""
    answers = iter([(True, {"ready": True}), (False, {"ready": False, "reason": "redis unavailable: x"})])
    base = serve(lambda: next(answers))
    metrics.matched(1)

    code, body, headers = _request(base + "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"alerts_matches", "alerts_redis_up", "alerts_outbox_pending", "alerts_feeds"} <= names
    assert "alerts_redis_up 1.0" in body

    assert _request(base + "/healthz")[:2] == (200, '{"alive": true}\n')
    code, body, headers = _request(base + "/readyz")
    assert (code, json.loads(body), headers["Content-Type"]) == (200, {"ready": True}, "application/json")
    code, body, _ = _request(base + "/readyz")
    assert (code, json.loads(body)) == (503, {"ready": False, "reason": "redis unavailable: x"})
    assert _request(base + "/healthz", "HEAD")[:2] == (200, "")
    assert _request(base + "/readyz", "POST")[0] == 405
    assert _request(base + "/favicon.ico")[0] == 404


def test_a_readiness_check_that_raises_is_a_503_not_a_traceback(serve: Callable[..., str]) -> None:
    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("boom")

    code, body, _ = _request(serve(broken) + "/readyz")
    assert (code, json.loads(body)) == (
        503,
        {"ready": False, "reason": "readiness check failed: RuntimeError"},
    )


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(observe.ListenError) as raised:
            observe.MetricsServer(f"127.0.0.1:{port}")
    assert str(raised.value) == (
        f"ALERTS_METRICS_LISTEN 127.0.0.1:{port}: address already in use (another `alerts run`?): "
        "choose a free host:port, or off"
    )


def test_ipv6_loopback() -> None:
    try:
        server = observe.MetricsServer("[::1]:0")
    except observe.ListenError:
        pytest.skip("no IPv6 loopback here")
    try:
        server.start(
            observe.application(
                observe.registry(Store.from_url("redis://127.0.0.1:9/0"), None), lambda: (True, {})
            )
        )
        assert server.address.startswith("[::1]:")
        assert _request(f"http://{server.address}/healthz")[0] == 200
    finally:
        server.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9000", ("::1", 9000)), (":9464", ("0.0.0.0", 9464))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert observe.parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9464", "localhost", "127.0.0.1:http", "127.0.0.1:70000"])
def test_parse_listen_refuses_what_is_not_host_port(text: str) -> None:
    with pytest.raises(observe.ListenError, match="expected host:port"):
        observe.parse_listen(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "127.0.0.1:9464"),
        ("", "127.0.0.1:9464"),
        ("off", None),
        ("OFF", None),
        ("0.0.0.0:9100", "0.0.0.0:9100"),
    ],
)
def test_the_listen_setting(value: str | None, expected: str | None) -> None:
    env = {"ALERTS_METRICS_LISTEN": value} if value is not None else {}
    assert Settings.from_env(env).metrics_listen == expected


def test_the_multiprocess_directory_is_fresh_and_killed_supervisors_leftovers_go(tmp_path: Path) -> None:
    """A new private directory each time; one left by a dead process goes, one of a live process stays."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftover = Path(tempfile.mkdtemp(prefix=f"{observe.DIR_PREFIX}{int(dead.stdout)}-"))
    (leftover / "counter_1.db").write_bytes(b"x")
    alive = Path(tempfile.mkdtemp(prefix=f"{observe.DIR_PREFIX}{os.getppid()}-"))
    try:
        directory = Path(observe.multiprocess_dir())
        assert directory.is_dir() and list(directory.iterdir()) == []
        assert directory.name.startswith(f"{observe.DIR_PREFIX}{os.getpid()}-")
        assert (directory.stat().st_mode & 0o777) == 0o700
        assert not leftover.exists() and alive.exists()
        observe.remove_multiprocess_dir(str(directory))
        assert not directory.exists()
    finally:
        observe.remove_multiprocess_dir(str(alive))
        observe.remove_multiprocess_dir(str(leftover))


def test_the_supervisor_gives_children_the_directory_and_marks_the_dead(tmp_path: Path) -> None:
    """Each child gets PROMETHEUS_MULTIPROC_DIR; one that exits is counted as restarted, its pid's live
    gauge files removed (its counters kept), and pids() shows it as restarting."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    seen = tmp_path / "seen"
    code = f"import os; open({str(seen)!r}, 'a').write(os.environ['{metrics.MULTIPROC_ENV}'] + '\\n')"
    supervisor = Supervisor(
        {"crash": [sys.executable, "-c", code]},
        env={metrics.MULTIPROC_ENV: str(directory)},
        metrics_dir=str(directory),
    )
    supervisor.check(0.0)
    [child] = supervisor.children
    assert child.process is not None
    pid = child.process.pid
    (directory / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (directory / f"counter_{pid}.db").write_bytes(b"")
    assert supervisor.pids() == {"crash": pid}
    child.process.wait(10)
    supervisor.check(0.5)
    assert supervisor.pids() == {"crash": None} and supervisor.restarts() == {"crash": 1}
    assert not (directory / f"gauge_livesum_{pid}.db").exists() and (directory / f"counter_{pid}.db").exists()
    wait_for(lambda: seen.exists() and seen.read_text(), what="the child's environment")
    assert seen.read_text() == f"{directory}\n"
    supervisor.stop(hurry=lambda: True)
