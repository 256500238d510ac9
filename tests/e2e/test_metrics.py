"""`alerts run`'s metrics and health server, and `alerts status`, against a real service: an alert goes
through the prefork deliver worker and /metrics counts it once; Redis stops and /readyz says why."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.service import embedded_redis
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for

ALERTS = Path(sys.executable).with_name("alerts")
PASSWORD = "metrics-test-password"
_OWN_ENV = ("ALERTS_", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")


def _get(url: str) -> tuple[int, str]:
    """Status and body of a GET (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics exposes: (name, sorted labels) -> value."""
    code, body = _get(base + "/metrics")
    assert code == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _alerts(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_ENV)}
    return subprocess.run(
        [str(ALERTS), *args], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (the test stops it), with a password."""
    port = embedded_redis.free_port()
    process = embedded_redis.start(port, tmp_path / "redis", persist=False, password=PASSWORD)
    yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0", process
    embedded_redis.stop(process)


def _metrics_dirs(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"alerts-metrics-{pid}-*"))


def test_metrics_count_each_delivery_once_and_readyz_follows_redis(
    tmp_path: Path,
    config_dir: Path,
    feed_server: FeedServer,
    webhook: WebhookSink,
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """One alert through `alerts run` (two prefork deliver processes): the webhook deliveries counter
    and the latency histogram say 1, the config load is counted once for every process that loaded it,
    the gauges read Redis; `alerts status` shows the same; with Redis stopped /readyz is 503 with the
    reason (no password), /healthz 200, and `alerts status` one line and exit 1."""
    redis_url, redis_process = private_redis
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [webhook.url], "burst": "off"}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    port = embedded_redis.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "REDIS_URL": redis_url,
        "ALERTS_CONFIG": str(config_dir),
        "ALERTS_STATE_DIR": str(tmp_path / "state"),
        "ALERTS_METRICS_LISTEN": f"127.0.0.1:{port}",
        "ALERTS_CONCURRENCY": "2",
        "ALERTS_LOG_LEVEL": "INFO",
    }
    service = WorkerProcess(env, tmp_path / "run.log", via_cli=True)
    try:
        service.start()
        wait_for(lambda: service.events("metrics.listening"), timeout=10, what="metrics.listening")
        assert service.events("metrics.listening")[0]["address"] == f"127.0.0.1:{port}"
        wait_for(lambda: service.events("feed.seeded"), timeout=30, what="the first poll")
        wait_for(lambda: _get(base + "/readyz")[0] == 200, timeout=30, what="/readyz 200")
        ready = json.loads(_get(base + "/readyz")[1])
        assert ready["ready"] is True and set(ready["workers"]) == {"poll", "deliver"}

        feed_server.publish("wire", Entry("Earthquake shakes Lima", "http://news.test/lima"))
        wait_for(lambda: len(webhook.received) == 1, timeout=30, what="the alert at the sink")
        wait_for(
            lambda: _value(_samples(base), "alerts_deliveries_total", kind="webhook", outcome="sent") >= 1,
            timeout=10,
            what="the delivery counted",
        )

        wait_for(  # the polls after Lima's are answered 304
            lambda: _value(_samples(base), "alerts_polls_total", feed="wire", outcome="304") >= 1,
            timeout=10,
            what="a 304 poll counted",
        )
        samples = _samples(base)
        deliveries = {key: value for key, value in samples.items() if key[0] == "alerts_deliveries_total"}
        assert sum(deliveries.values()) == 1.0, deliveries  # across every process, counted once
        assert _value(samples, "alerts_delivery_latency_seconds_count", kind="webhook") == 1.0
        assert _value(samples, "alerts_delivery_latency_seconds_bucket", kind="webhook", le="+Inf") == 1.0
        assert 0 < _value(samples, "alerts_delivery_latency_seconds_sum", kind="webhook") < 30
        assert _value(samples, "alerts_alerts_sent_total", kind="webhook") == 1.0
        # the poller's polls: the first (200, an empty feed seeded), 304s, and the one that found Lima
        assert _value(samples, "alerts_items_new_total", feed="wire") == 1.0
        assert _value(samples, "alerts_matches_total") == 1.0
        assert _value(samples, "alerts_polls_total", feed="wire", outcome="200") == 2.0
        assert _value(samples, "alerts_fetch_duration_seconds_count") >= 3
        # the poll worker, the deliver worker and its children each loaded the config: one version
        assert _value(samples, "alerts_config_reloads_total", outcome="loaded") == 1.0
        assert _value(samples, "alerts_heartbeats_total", outcome="ok") > 0
        assert _value(samples, "alerts_redis_up") == 1.0
        assert _value(samples, "alerts_workers_alive") >= 4  # poll, deliver, its two pool processes
        assert _value(samples, "alerts_feeds", state="healthy") == 1.0
        assert _value(samples, "alerts_outbox_pending") == 0.0
        assert _value(samples, "alerts_config_valid") == 1.0
        assert _value(samples, "alerts_config_last_load_timestamp_seconds") > 0

        shown = _alerts("status", "--json", REDIS_URL=redis_url)
        assert shown.returncode == 0, shown.stderr
        status: dict[str, Any] = json.loads(shown.stdout)
        assert status["workers"]["alive"] >= 4
        assert (status["feeds"]["total"], status["feeds"]["healthy"]) == (1, 1)
        assert status["outbox"] == {"pending": 0, "oldest_age": None, "dead": 0}
        assert status["last_hour"]["sent"] == 1 and status["last_hour"]["by_kind"]["webhook"]["sent"] == 1
        assert 0 < status["last_hour"]["latency_p50"] < 30
        assert status["config"]["state"] == "loaded" and status["config"]["feeds"] == 1
        text = _alerts("status", REDIS_URL=redis_url)
        assert text.returncode == 0, text.stderr
        assert "1 sent, 0 dead" in text.stdout and "1 healthy" in text.stdout, text.stdout

        embedded_redis.stop(redis_process)

        code, body = _get(base + "/readyz")
        assert code == 503
        answer = json.loads(body)
        assert answer["ready"] is False and answer["reason"].startswith("redis unavailable"), answer
        assert _get(base + "/healthz") == (200, '{"alive": true}\n')
        assert _value(_samples(base), "alerts_redis_up") == 0.0
        down = _alerts("status", REDIS_URL=redis_url)
        assert down.returncode == 1 and down.stdout == ""
        [line] = down.stderr.splitlines()
        assert "does not answer" in line and PASSWORD not in line
        assert PASSWORD not in body + service.text()
        directories = _metrics_dirs(service.pid)
        assert len(directories) == 1
    finally:
        service.stop()
    assert _metrics_dirs(service.pid) == [], "the multiprocess directory is removed at exit"


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path, config_dir: Path, redis_url: str) -> None:
    """ALERTS_METRICS_LISTEN on a port another server holds: one line naming it, exit 1, no traceback,
    nothing started."""
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}],
        subscribers=[{"name": "desk", "notify": ["json://127.0.0.1:9/hook"]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _alerts(
            "run",
            REDIS_URL=redis_url,
            ALERTS_CONFIG=str(config_dir),
            ALERTS_STATE_DIR=str(tmp_path / "state"),
            ALERTS_METRICS_LISTEN=f"127.0.0.1:{port}",
        )
    assert result.returncode == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"ALERTS_METRICS_LISTEN 127.0.0.1:{port}: address already in use (another `alerts run`?): "
        "choose a free host:port, or off"
    ]


def test_status_without_redis_is_one_line(tmp_path: Path, config_dir: Path) -> None:
    """Like `alerts feeds`: no Redis running is one line and exit 1."""
    result = _alerts(
        "status",
        ALERTS_CONFIG=str(config_dir),
        ALERTS_STATE_DIR=str(tmp_path / "state"),
        REDIS_URL="embedded",
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"no embedded Redis is running in {tmp_path / 'state'}: start `alerts run` (it starts one)"
    ]
