"""The sender counts each delivery's outcome by channel kind once it is recorded, with a sent alert's
first-seen-to-sent latency; the pacing counts what it holds, by reason (real Redis, local sinks)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from alerts.config.settings import Settings
from alerts.delivery import digests, outbox, ratelimit
from alerts.models import Alert, Pacing, Subscriber
from alerts.service.runtime import Runtime
from alerts.state.store import Store
from alerts.text import digest
from tests.delivery.conftest import NtfySink
from tests.harness.configs import write_config
from tests.harness.servers import WebhookSink


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _alert(story: str, seen_ago: float = 0.0) -> Alert:
    return Alert(
        subscriber="desk",
        story=story,
        item=f"item-{story}",
        feed="wire",
        title=f"Gaza story {story}",
        link=f"http://news.test/{story}",
        fetched_at=time.time() - seen_ago,
    )


def _runtime(config_dir: Path, redis_url: str, notify: list[str], **subscriber: Any) -> Runtime:
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": notify, **subscriber}],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))


def test_sent_retrying_and_dead_are_counted_by_kind_with_latency(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A native webhook sent: deliveries{webhook,sent} +1, alerts +1, its latency (seen 2 s ago) in the
    2 s..5 s bucket; the sink refusing: retrying, then (past the max age) dead; the same alert
    never counted twice."""
    runtime = _runtime(config_dir, redis_url, [webhook.url])
    before = {
        o: _value("alerts_deliveries_total", kind="webhook", outcome=o) for o in ("sent", "retrying", "dead")
    }
    latency = {
        le: _value("alerts_delivery_latency_seconds_bucket", kind="webhook", le=le) for le in ("2.0", "5.0")
    }
    alerts = _value("alerts_alerts_sent_total", kind="webhook")

    [first] = outbox.record(store.deliveries, [(_alert("s1", seen_ago=2.5), digest(webhook.url))])
    assert runtime.sender.deliver(first) == "sent"
    assert runtime.sender.deliver(first) == "skipped"  # not counted again
    webhook.status = 503
    [second] = outbox.record(store.deliveries, [(_alert("s2"), digest(webhook.url))])
    assert runtime.sender.deliver(second) == "retrying"
    assert runtime.sender.deliver(second, outbox.Policy(max_age=0)) == "dead"

    after = {o: _value("alerts_deliveries_total", kind="webhook", outcome=o) - before[o] for o in before}
    assert after == {"sent": 1, "retrying": 1, "dead": 1}
    assert _value("alerts_alerts_sent_total", kind="webhook") - alerts == 1
    assert _value("alerts_delivery_latency_seconds_bucket", kind="webhook", le="2.0") - latency["2.0"] == 0
    assert _value("alerts_delivery_latency_seconds_bucket", kind="webhook", le="5.0") - latency["5.0"] == 1


def test_a_delivery_whose_turn_is_later_is_rate_limited(
    ntfy: NtfySink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """An ntfy server that asked us to wait: the delivery is booked for later and counted
    rate_limited (push kind); once the wait is over it is sent and counted sent."""
    runtime = _runtime(config_dir, redis_url, [ntfy.apprise_url])
    before = {o: _value("alerts_deliveries_total", kind="push", outcome=o) for o in ("sent", "rate_limited")}
    [bucket] = ratelimit.buckets(ntfy.apprise_url)
    store.rates.block(bucket.destination, time.time() + 30)
    [delivery] = outbox.record(store.deliveries, [(_alert("s1"), digest(ntfy.apprise_url))])
    assert runtime.sender.deliver(delivery) == "deferred"
    store.client.delete(f"alerts:rate:{bucket.destination}")
    assert runtime.sender.deliver(delivery) == "sent"
    after = {o: _value("alerts_deliveries_total", kind="push", outcome=o) - before[o] for o in before}
    assert after == {"sent": 1, "rate_limited": 1}


def test_a_delivery_no_longer_configured_is_counted_dropped(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    runtime = _runtime(config_dir, redis_url, [webhook.url])
    dropped = _value("alerts_deliveries_total", kind="unknown", outcome="dropped")
    [delivery] = outbox.record(store.deliveries, [(_alert("s1"), digest("https://gone.test/hook"))])
    assert runtime.sender.deliver(delivery) == "dropped"
    assert _value("alerts_deliveries_total", kind="unknown", outcome="dropped") - dropped == 1


def test_held_alerts_are_counted_by_reason(store: Store) -> None:
    """A subscriber on a digest schedule: every alert held (reason digest); a flash alert goes at once;
    a burst beyond its count is held (reason burst)."""
    before = {r: _value("alerts_alerts_held_total", reason=r) for r in ("digest", "burst")}
    scheduled = Subscriber(name="desk", notify=("json://127.0.0.1:9/x",), pacing=Pacing(digest="hourly"))
    sent = digests.route(store.pacing, {"desk": scheduled}, [_alert("a"), _alert("b")])
    assert sent == []
    bursty = Subscriber(name="night", notify=("json://127.0.0.1:9/x",), pacing=Pacing(burst_count=1))
    night = [dataclasses.replace(_alert(s), subscriber="night") for s in ("c", "d", "e")]
    assert len(digests.route(store.pacing, {"night": bursty}, night)) == 1
    after = {r: _value("alerts_alerts_held_total", reason=r) - before[r] for r in before}
    assert after == {"digest": 2, "burst": 2}
