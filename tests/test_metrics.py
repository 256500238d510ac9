"""alerts.metrics: the recording functions and their label values, the scrape-time collector, and the
multiprocess mode `alerts run` uses (a forked child counts from zero; forks never copy a held lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from alerts import metrics
from alerts.errors import AddressRefused, FeedParseError, FeedRejected, FetchError
from alerts.ingest.fetch import HttpStatusError

ROOT = Path(__file__).resolve().parents[1]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_polled_counts_by_feed_and_outcome_and_times_the_fetch() -> None:
    """Statuses become 200/304/http_4xx/http_5xx; a known failure kind stays; anything else is
    ``error`` (labels stay bounded); the fetch histogram counts only polls given a duration."""
    before = {
        outcome: _value("alerts_polls_total", feed="metrics-wire", outcome=outcome)
        for outcome in ("200", "304", "http_5xx", "http_4xx", "timeout", "busy", "deferred", "error")
    }
    fetches = _value("alerts_fetch_duration_seconds_count")
    for outcome in (200, "203", 304, 503, 404, "timeout", "busy", "deferred", "no-such-kind", 101):
        metrics.polled("metrics-wire", outcome, None if outcome in ("busy", "deferred") else 0.2)
    after = {
        outcome: _value("alerts_polls_total", feed="metrics-wire", outcome=outcome) - before[outcome]
        for outcome in before
    }
    assert after == {
        "200": 2,
        "304": 1,
        "http_5xx": 1,
        "http_4xx": 1,
        "timeout": 1,
        "busy": 1,
        "deferred": 1,
        "error": 2,
    }
    assert _value("alerts_fetch_duration_seconds_count") - fetches == 8
    assert REGISTRY.get_sample_value("alerts_polls_total", {"feed": "metrics-wire", "outcome": "203"}) is None


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (HttpStatusError("HTTP 503 from x", status=503, url="http://x/"), "http_5xx"),
        (HttpStatusError("HTTP 429 from x", status=429, url="http://x/"), "http_4xx"),
        (FeedRejected("HTTP 404 Not Found from http://x/"), "http_4xx"),
        (FeedRejected("body of http://x/ exceeds the cap of 10 bytes"), "rejected"),
        (AddressRefused("refused", "x", "10.0.0.1", "private"), "refused"),
        (FeedParseError("not a feed"), "parse"),
        (FetchError("timeout after 10.0s reading http://x/"), "timeout"),
        (FetchError("cannot connect to http://x/: Connection refused"), "network"),
        (ValueError("something else"), "error"),
    ],
)
def test_poll_outcome_names_the_kind_of_failure(error: BaseException, outcome: str) -> None:
    assert metrics.poll_outcome(error) == outcome
    assert metrics.poll_outcome(error) in metrics.POLL_OUTCOMES


def test_items_matches_and_holds() -> None:
    """new_items and matched ignore zero; held names quiet hours ``quiet_hours`` and folds unknown
    reasons into ``digest``."""
    items, matches = _value("alerts_items_new_total", feed="metrics-wire"), _value("alerts_matches_total")
    held = {r: _value("alerts_alerts_held_total", reason=r) for r in metrics.HELD_REASONS}
    metrics.new_items("metrics-wire", 3)
    metrics.new_items("metrics-wire", 0)
    metrics.matched(2)
    metrics.matched(0)
    for reason in ("quiet", "max_per_hour", "burst", "digest", "burst", None):
        metrics.held(reason)
    assert _value("alerts_items_new_total", feed="metrics-wire") - items == 3
    assert _value("alerts_matches_total") - matches == 2
    assert {r: _value("alerts_alerts_held_total", reason=r) - held[r] for r in held} == {
        "quiet_hours": 1,
        "max_per_hour": 1,
        "burst": 2,
        "digest": 2,
    }


def test_deliveries_alerts_and_latency_by_kind() -> None:
    """sent() counts the delivery, its alerts (a digest's each) and, for a single alert, its latency in
    the bucket it falls in; other outcomes are counted by delivery(); an unknown outcome is a bug."""
    kind = "email"
    count = _value("alerts_delivery_latency_seconds_count", kind=kind)
    le_1 = _value("alerts_delivery_latency_seconds_bucket", kind=kind, le="1.0")
    le_05 = _value("alerts_delivery_latency_seconds_bucket", kind=kind, le="0.5")
    sent, alerts = (
        _value("alerts_deliveries_total", kind=kind, outcome="sent"),
        _value("alerts_alerts_sent_total", kind=kind),
    )
    others = {o: _value("alerts_deliveries_total", kind=kind, outcome=o) for o in ("retrying", "dead")}
    metrics.sent(kind, 1, 0.7)
    metrics.sent(kind, 12, None)  # a digest of 12
    metrics.delivery(kind, "retrying")
    metrics.delivery(kind, "dead")
    assert _value("alerts_deliveries_total", kind=kind, outcome="sent") - sent == 2
    assert _value("alerts_alerts_sent_total", kind=kind) - alerts == 13
    assert _value("alerts_delivery_latency_seconds_count", kind=kind) - count == 1
    assert _value("alerts_delivery_latency_seconds_bucket", kind=kind, le="1.0") - le_1 == 1
    assert _value("alerts_delivery_latency_seconds_bucket", kind=kind, le="0.5") - le_05 == 0
    assert {o: _value("alerts_deliveries_total", kind=kind, outcome=o) - others[o] for o in others} == {
        "retrying": 1,
        "dead": 1,
    }
    with pytest.raises(ValueError, match="unknown delivery outcome"):
        metrics.delivery(kind, "deferred")
    with pytest.raises(ValueError, match="unknown config outcome"):
        metrics.config_reload("held")


def test_latency_buckets_span_a_twentieth_of_a_second_to_five_minutes() -> None:
    assert metrics.LATENCY_BUCKETS[0] == 0.05 and metrics.LATENCY_BUCKETS[-1] == 300.0
    assert list(metrics.LATENCY_BUCKETS) == sorted(metrics.LATENCY_BUCKETS)


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_collector_exposes_the_gauges_it_is_given() -> None:
    """Every gauge family of GAUGES with the values read; an unknown value (no worker, never loaded) has
    no sample; the supervisor's restarts are a counter."""
    registry = CollectorRegistry()
    gauges = metrics.Gauges(
        outbox_pending=7,
        outbox_oldest=42.5,
        outbox_dead=1,
        feeds={"healthy": 3, "unhealthy": 1},
        workers_alive=4,
        heartbeat_age=None,
        config_loaded_at=1_700_000_000.0,
        config_valid=False,
    )
    registry.register(metrics.ServiceCollector(lambda: gauges, lambda: {"poll": 0, "deliver": 2}))
    samples = _scrape(registry)
    assert samples == {
        ("alerts_redis_up", ()): 1.0,
        ("alerts_outbox_pending", ()): 7.0,
        ("alerts_outbox_oldest_seconds", ()): 42.5,
        ("alerts_outbox_dead", ()): 1.0,
        ("alerts_workers_alive", ()): 4.0,
        ("alerts_config_last_load_timestamp_seconds", ()): 1_700_000_000.0,
        ("alerts_config_valid", ()): 0.0,
        ("alerts_feeds", (("state", "healthy"),)): 3.0,
        ("alerts_feeds", (("state", "failing"),)): 0.0,
        ("alerts_feeds", (("state", "unhealthy"),)): 1.0,
        ("alerts_feeds", (("state", "new"),)): 0.0,
        ("alerts_worker_restarts_total", (("worker", "deliver"),)): 2.0,
        ("alerts_worker_restarts_total", (("worker", "poll"),)): 0.0,
    }
    assert {name for name, _ in samples} <= metrics.series_names()


def test_the_collector_says_only_that_redis_is_down() -> None:
    registry = CollectorRegistry()
    registry.register(metrics.ServiceCollector(lambda: None))
    assert _scrape(registry) == {("alerts_redis_up", ()): 0.0}


def test_series_names_cover_every_metric_this_module_defines() -> None:
    names = metrics.series_names()
    for expected in (
        "alerts_polls_total",
        "alerts_fetch_duration_seconds_bucket",
        "alerts_items_new_total",
        "alerts_matches_total",
        "alerts_alerts_held_total",
        "alerts_alerts_sent_total",
        "alerts_deliveries_total",
        "alerts_delivery_latency_seconds_bucket",
        "alerts_delivery_latency_seconds_count",
        "alerts_config_reloads_total",
        "alerts_heartbeats_total",
        "alerts_outbox_pending",
        "alerts_outbox_oldest_seconds",
        "alerts_feeds",
        "alerts_workers_alive",
        "alerts_heartbeat_age_seconds",
        "alerts_config_last_load_timestamp_seconds",
    ):
        assert expected in names
    assert all(name.startswith("alerts_") for name in names)


_FORKS = """
import os, signal, sys, threading
from alerts import metrics

signal.alarm(50)  # a hung run ends by itself (and so does each child, below)

stop = threading.Event()

def beat():  # another thread recording all the time, as the heartbeat thread does
    while not stop.is_set():
        metrics.heartbeat(True)

metrics.sent("webhook", 1, 0.3)  # the parent's own count, before any fork
thread = threading.Thread(target=beat)
thread.start()
children = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)
        metrics.sent("webhook", 1, 0.3)
        os._exit(0)
    children.append(pid)
for pid in children:
    _, code = os.waitpid(pid, 0)
    assert code == 0, code
stop.set()
thread.join()
"""


def test_multiprocess_mode_counts_a_forked_child_from_zero_and_never_deadlocks(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (as `alerts run` gives its children), a process that counted once
    forks 20 children that count once each while another thread records all the time: the files add
    up to 21 (nothing the parent counted is counted again by a child), and no child hangs on a lock
    the fork copied."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FORKS), "20"], cwd=ROOT, env=env, check=True, timeout=60
    )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    samples = _scrape(registry)
    assert samples[("alerts_deliveries_total", (("kind", "webhook"), ("outcome", "sent")))] == 21
    assert samples[("alerts_delivery_latency_seconds_count", (("kind", "webhook"),))] == 21
    assert samples[("alerts_heartbeats_total", (("outcome", "ok"),))] > 0
    assert len(list(directory.glob("counter_*.db"))) == 21
