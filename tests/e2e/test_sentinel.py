"""Redis Sentinel through `alerts run` at the defaults: a real primary, replica and two sentinels on
loopback, the primary SIGKILLed mid-flow, and alerts keep flowing from the promoted replica."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.harness.configs import write_config
from tests.harness.sentinel import PASSWORD, SENTINEL_PASSWORD, SentinelGroup
from tests.harness.servers import Entry, FeedServer, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, its replica and two sentinels, every one on 127.0.0.1."""
    group = SentinelGroup(tmp_path / "sentinel").start()
    yield group
    group.stop()


def _publish(feed_server: FeedServer, titles: list[str]) -> None:
    feed_server.publish("wire", *(Entry(title, f"http://news.test/{abs(hash(title))}") for title in titles))


def test_the_primary_killed_the_service_follows_the_promoted_replica_and_alerts_every_item_once(
    sentinels: SentinelGroup,
    feed_server: FeedServer,
    webhook: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    config_dir: Path,
) -> None:
    """REDIS_URL=sentinel://...;sentinel://.../0?master_name=mymaster&sentinel_password=... serves
    Celery and the state store; after the primary dies, the items published meanwhile and after are
    alerted exactly once within 30 s, no worker exits, nothing logs a traceback, and neither password
    reaches the log."""
    write_config(
        config_dir,
        [{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        [{"name": "desk", "notify": [webhook.apprise_url], "burst": "off"}],
        [{"name": "all", "subscribers": ["desk"], "keywords": ["breaking"]}],
    )
    service = start_worker(via_cli=True, REDIS_URL=sentinels.url)
    wait_for(lambda: service.events("feed.seeded") or service.events("feed.polled"), timeout=30, what="poll")
    workers = {p.pid for p in psutil.Process(service.pid).children()}
    _publish(feed_server, ["Breaking: before the failover"])
    wait_for(lambda: webhook.titles() == ["Breaking: before the failover"], timeout=30, what="first alert")
    sentinels.wait_in_sync()  # replication is asynchronous: what the primary had not passed on is lost
    old = sentinels.kill_primary()
    during = [f"Breaking: during the failover {n}" for n in range(3)]
    for title in during:
        _publish(feed_server, [title])
        time.sleep(1)
    started = time.monotonic()
    sentinels.wait_failed_over(old)
    promoted_after = time.monotonic() - started
    after = [f"Breaking: after the failover {n}" for n in range(3, 6)]  # numbers apart: stories apart
    _publish(feed_server, after)
    expected = ["Breaking: before the failover", *during, *after]
    wait_for(lambda: set(webhook.titles()) >= set(expected), timeout=30, what="every alert, after")
    time.sleep(3)
    text = service.text()
    assert Counter(webhook.titles()) == Counter(expected), "each item exactly once"
    assert {p.pid for p in psutil.Process(service.pid).children()} == workers, "no worker exited"
    assert not service.events("worker.exited")
    assert "Traceback" not in text
    assert PASSWORD not in text and SENTINEL_PASSWORD not in text
    assert promoted_after < 30
