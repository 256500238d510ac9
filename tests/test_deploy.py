"""deploy/: the Grafana dashboard and the Prometheus alert rules parse, have what ops need, and refer
only to metrics alerts.metrics defines (a renamed metric breaks this test, not the dashboard)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from alerts import metrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
RULES = DEPLOY / "prometheus-rules.yaml"
METRIC = re.compile(r"\b(alerts_[a-z0-9_]+)\b")
LATENCY = "rate(alerts_delivery_latency_seconds_bucket"


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs() -> dict[str, list[str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {
        panel["title"]: [target["expr"] for target in panel.get("targets", [])]
        for panel in _panels(dashboard)
    }


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_dashboard_parses_and_has_the_panels_ops_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "breaking-alerts" and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    exprs = _dashboard_exprs()
    joined = {title: " ".join(found) for title, found in exprs.items()}
    wanted = {
        "poll rate": "rate(alerts_polls_total",
        "poll errors": 'alerts_polls_total{outcome!~"200|304|busy"}',
        "items per minute": "rate(alerts_items_new_total",
        "alerts per minute": "rate(alerts_alerts_sent_total",
        "latency p50": f"histogram_quantile(0.5, sum by (kind, le) ({LATENCY}",
        "latency p99": f"histogram_quantile(0.99, sum by (kind, le) ({LATENCY}",
        "outbox depth": "alerts_outbox_pending",
        "outbox oldest": "alerts_outbox_oldest_seconds",
        "unhealthy feeds": 'alerts_feeds{state="unhealthy"}',
    }
    for what, fragment in wanted.items():
        assert any(fragment in text for text in joined.values()), f"no panel shows {what} ({fragment})"
    for panel in _panels(dashboard):
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_the_rules_parse_and_cover_the_outbox_a_failing_channel_and_workers_down() -> None:
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {"AlertsOutboxStuck", "AlertsChannelFailing", "AlertsWorkersDown"} <= set(names)
    by_name = {rule["alert"]: rule for rule in rules}
    assert by_name["AlertsOutboxStuck"]["expr"] == "alerts_outbox_oldest_seconds > 300"
    assert "alerts_workers_alive < 1" in by_name["AlertsWorkersDown"]["expr"]
    assert 'outcome=~"retrying|dead"' in by_name["AlertsChannelFailing"]["expr"]
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_every_metric_they_name_is_one_alerts_metrics_defines() -> None:
    defined = metrics.series_names()
    exprs = [expr for found in _dashboard_exprs().values() for expr in found] + [
        rule["expr"] for rule in _rules()
    ]
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named, "the files name metrics"
    assert named <= defined, f"not defined by alerts.metrics: {sorted(named - defined)}"
    # and every metric is on the dashboard or in a rule: a new one forgotten there is worth a look
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in defined}
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for name in named}
    assert not families - used, sorted(families - used)
