"""The durable outbox: lost tasks, dead workers, retries, dead deliveries, fallback, DLQ and history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.delivery import outbox
from alerts.models import Alert
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Store
from alerts.text import digest
from tests.harness.configs import write_config
from tests.harness.servers import WebhookSink

ALERTS = Path(sys.executable).with_name("alerts")


def _alert(story: str = "s1", title: str = "Gaza ceasefire talks resume") -> Alert:
    return Alert(
        subscriber="desk",
        story=story,
        item=f"item-{story}",
        feed="wire",
        title=title,
        link=f"http://news.test/{story}",
        fetched_at=time.time(),
    )


@pytest.fixture
def refusing() -> Iterator[WebhookSink]:
    """A webhook sink answering 503 (until told otherwise)."""
    sink = WebhookSink(status=503).start()
    yield sink
    sink.stop()


def _runtime(config_dir: Path, redis_url: str, notify: list[str], fallback: str | None = None) -> Runtime:
    subscriber: dict[str, object] = {"name": "desk", "notify": notify}
    if fallback:
        subscriber["fallback"] = fallback
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [subscriber],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))


def test_a_recorded_delivery_whose_task_was_lost_is_handed_out_by_the_sweep(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Records written but never queued (broker down, worker killed) come back from the sweep once."""
    runtime = _runtime(config_dir, redis_url, [webhook.apprise_url])
    ids = outbox.record(store.deliveries, [(_alert(), digest(webhook.apprise_url))])
    assert len(ids) == 1 and outbox.record(store.deliveries, [(_alert(), digest(webhook.apprise_url))]) == []
    assert outbox.sweep(store.deliveries) == [], "not due while its task may still be on its way"
    later = time.time() + outbox.Policy().sweep_lease + 1
    assert outbox.sweep(store.deliveries, now=later) == ids
    assert outbox.sweep(store.deliveries, now=later) == [], "handed to one worker only"
    assert runtime.sender.deliver_batch(ids) == {"sent": 1}
    assert runtime.sender.deliver_batch(ids) == {"skipped": 1}
    assert webhook.titles() == ["Gaza ceasefire talks resume"]
    assert outbox.sweep(store.deliveries, now=later + 3600) == [], "a sent delivery is never handed out again"


def test_a_claim_of_a_dead_worker_expires_and_the_delivery_is_sent_once(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A worker that claimed a delivery and died: after the lease, the sweep hands it out again."""
    runtime = _runtime(config_dir, redis_url, [webhook.apprise_url])
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(webhook.apprise_url))])
    assert (
        store.deliveries.claim([delivery], time.time(), outbox.Policy().delivery_lease)[0] is not None
    )  # then the worker dies
    assert runtime.sender.deliver_batch([delivery]) == {"skipped": 1}, "its lease still holds"
    assert outbox.sweep(store.deliveries, now=time.time() + outbox.Policy().sweep_lease + 1) == []
    after_lease = time.time() + outbox.Policy().delivery_lease + 1
    assert outbox.sweep(store.deliveries, now=after_lease) == [delivery]
    assert store.deliveries.claim([delivery], after_lease, outbox.Policy().delivery_lease)[0] is not None
    assert store.deliveries.get(delivery)["attempts"] == "2"


def test_failures_retry_with_backoff_then_die_and_go_to_the_fallback(
    refusing: WebhookSink, webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A failing URL is retried later (backoff), dead after max age; the fallback URL gets the alert."""
    runtime = _runtime(config_dir, redis_url, [refusing.apprise_url], fallback=webhook.apprise_url)
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(refusing.apprise_url))])
    policy = outbox.Policy(max_age=3600, backoff_base=10)
    with capture_logs() as logs:
        assert runtime.sender.deliver(delivery, policy) == "retrying"
    record = store.deliveries.get(delivery)
    assert record["state"] == "retrying" and "503" in record["last_error"]
    due = store.client.zscore(keys.OUTBOX_DUE, delivery)
    assert due is not None and time.time() + 4 <= due <= time.time() + 11
    assert [event["event"] for event in logs if event["event"].startswith("alert.")] == ["alert.failed"]
    with capture_logs() as logs:
        assert runtime.sender.deliver(delivery, outbox.Policy(max_age=0)) == "dead"
    assert any(event.get("final") for event in logs if event["event"] == "alert.failed")
    assert store.deliveries.dead() == [delivery]
    [fallback] = outbox.sweep(store.deliveries, now=time.time() + 1)
    assert runtime.sender.deliver_batch([fallback]) == {"sent": 1}
    assert webhook.titles() == ["Gaza ceasefire talks resume"] and refusing.received == []


def test_one_slow_url_does_not_hold_up_the_rest_of_its_batch(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Deliveries of one batch are sent concurrently: twenty alerts arrive while a slow one waits."""
    import threading

    slow = WebhookSink().start()
    gate = threading.Event()
    slow.on_receive = lambda _: gate.wait(3)
    try:
        runtime = _runtime(config_dir, redis_url, [webhook.apprise_url, slow.apprise_url])
        jobs = [(_alert("slow", "Slow one"), digest(slow.apprise_url))]
        jobs += [(_alert(f"s{n}", f"Story {n}"), digest(webhook.apprise_url)) for n in range(20)]
        ids = outbox.record(store.deliveries, jobs)
        worker = threading.Thread(target=runtime.sender.deliver_batch, args=(ids,))
        started = time.monotonic()
        worker.start()
        deadline = time.monotonic() + 2
        while len(webhook.received) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(webhook.received) == 20 and time.monotonic() - started < 2
        gate.set()
        worker.join(10)
    finally:
        slow.stop()


@pytest.mark.e2e
def test_dlq_and_history_commands(
    refusing: WebhookSink, webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """`alerts dlq list/retry/drop` manage dead deliveries; `alerts history` shows sent and dead ones."""
    runtime = _runtime(config_dir, redis_url, [refusing.apprise_url, webhook.apprise_url])
    target = digest(refusing.apprise_url)
    outbox.record(store.deliveries, [(_alert("a", "Story A"), target), (_alert("b", "Story B"), target)])
    dead_ids = [outbox.delivery_id("desk", story, target) for story in ("a", "b")]
    [sent_id] = outbox.record(store.deliveries, [(_alert("c", "Story C"), digest(webhook.apprise_url))])
    for delivery in dead_ids:
        assert runtime.sender.deliver(delivery, outbox.Policy(max_age=0)) == "dead"
    assert runtime.sender.deliver(sent_id, outbox.Policy()) == "sent"
    env = {**os.environ, "ALERTS_CONFIG": str(config_dir), "REDIS_URL": redis_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ALERTS), *args], env=env, capture_output=True, text=True, timeout=60)

    listed = json.loads(run("dlq", "list", "--json").stdout)
    assert sorted(row["delivery"] for row in listed) == sorted(dead_ids)
    assert all(row["attempts"] == "1" and "503" in row["last_error"] for row in listed)
    refusing.status = 200
    assert run("dlq", "retry", dead_ids[0]).returncode == 0
    assert run("dlq", "drop", dead_ids[1]).returncode == 0
    assert run("dlq", "drop", dead_ids[1]).returncode == 1
    assert json.loads(run("dlq", "list", "--json").stdout) == []
    assert runtime.sender.deliver_batch(outbox.sweep(store.deliveries, now=time.time() + 1)) == {"sent": 1}
    assert refusing.titles() == ["Story A"]
    history = [json.loads(line) for line in run("history", "--json", "--since", "10m").stdout.splitlines()]
    assert [(h["state"], h["title"]) for h in history] == [
        ("dead", "Story A"),
        ("dead", "Story B"),
        ("sent", "Story C"),
        ("sent", "Story A"),
    ]
    assert all(h["subscriber"] == "desk" and "json://" in h["target"] for h in history)
    assert run("history", "--subscriber", "nobody").stdout == ""
    text = run("history").stdout
    assert "Story C" in text and "sent" in text


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the poll after this point runs, not even except blocks."""


def test_a_poll_killed_before_recording_its_alerts_loses_nothing(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Claims of a poll whose process died before its deliveries were recorded are taken over as soon
    as that process is known dead (its heartbeat gone): the next poll, elsewhere, alerts once."""
    from alerts.service import pipeline
    from tests.harness.servers import Entry, FeedServer

    server = FeedServer().start()
    try:
        write_config(
            config_dir,
            [{"name": "wire", "url": server.url("wire")}],
            [{"name": "desk", "notify": [webhook.apprise_url]}],
            [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
        )
        dying, survivor = (Runtime(Settings(config_dir=config_dir, redis_url=redis_url)) for _ in range(2))
        server.publish("wire", Entry("Old news", "http://news.test/old"))
        pipeline.poll_feed(dying, "wire", pipeline.deliver_inline(dying))
        server.publish("wire", Entry("Gaza talks resume", "http://news.test/talks"))

        def killed(_: object) -> None:
            raise Killed

        with pytest.raises(Killed):
            pipeline.poll_feed(dying, "wire", killed)
        owner = dying.store.liveness.owner
        held = [k for k in store.client.scan_iter("alerts:seen:*") if store.client.get(k) == f"p:{owner}"]
        assert held, "the dead poll left held claims naming their owner"
        store.client.set(keys.poll_lock("wire"), f"{owner}|1")  # as if it died holding the lock too
        assert pipeline.poll_feed(survivor, "wire", pipeline.deliver_inline(survivor)).status == "busy"
        store.client.zrem(keys.WORKERS, owner)  # the owner is reaped: its heartbeat lapsed
        assert pipeline.poll_feed(survivor, "wire", pipeline.deliver_inline(survivor)).alerts == 1
        assert pipeline.poll_feed(survivor, "wire", pipeline.deliver_inline(survivor)).alerts == 0
        assert webhook.titles() == ["Gaza talks resume"]
    finally:
        server.stop()
