"""End to end, untrusted content stays untrusted: a real worker polls feeds the admin wrote (on
127.0.0.1) whose content points at an "internal" listener on 127.0.0.2 (an item link with enrich on,
a hub, the feed URL's redirect). Nothing reaches the listener, the healthy alert is delivered, and
``ALERTS_ALLOW_PRIVATE_ADDRESSES=true`` lifts the rule for the whole deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.configs import write_config
from tests.harness.servers import Entry, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for
from tests.ingest.listeners import Listener, Newsroom

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def internal() -> Iterator[Listener]:
    listener = Listener("127.0.0.2").start()
    yield listener
    listener.stop()


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    site = Newsroom().start()
    yield site
    site.stop()


def _configure(config_dir: Path, newsroom: Newsroom, internal: Listener, webhook: WebhookSink) -> None:
    newsroom.hub = f"{internal.base}/hub"
    newsroom.moved_to = f"{internal.base}/feed.xml"
    write_config(
        config_dir,
        feeds=[
            {
                "name": "wire",
                "url": f"{newsroom.base}/feed.xml",
                "every": "1s",
                "enrich": True,
                "allow_insecure_hub": True,
            },
            {"name": "moved", "url": f"{newsroom.base}/moved.xml", "every": "1s"},
        ],
        subscribers=[{"name": "desk", "notify": [webhook.url]}],
        subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )


def test_a_worker_never_reaches_an_internal_address_from_content(
    newsroom: Newsroom, internal: Listener, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """Item link (enrich on), hub and the feed's redirect all point at 127.0.0.2: zero connections
    there; the alert is delivered (unenriched); one fetch.refused line per refusal, naming the feed;
    the redirected feed fails with an AddressRefused error, the other stays healthy."""
    _configure(config_dir, newsroom, internal, webhook)
    worker = start_worker(ALERTS_WEBSUB_URL="http://127.0.0.1:9")
    wait_for(lambda: len(worker.events("feed.seeded")) >= 1, what="first poll of wire")
    newsroom.publish(Entry("Gaza crossing reopens", f"{internal.base}/story?key=k1"))
    wait_for(lambda: webhook.titles(), timeout=20, what="the alert")
    wait_for(lambda: worker.events("feed.failed"), what="the redirected feed's failure")
    assert webhook.titles() == ["Gaza crossing reopens"]
    assert webhook.received[0]["summary"] == ""  # not enriched
    assert internal.touched == 0
    refused = worker.events("fetch.refused")
    sources = {(event["source"], event.get("feed")) for event in refused}
    assert {("link", "wire"), ("redirect", "moved"), ("hub", "wire")} <= sources
    assert all(event["address"] == "127.0.0.2" and event["reason"] == "loopback" for event in refused)
    assert not any("k1" in line for line in worker.text().splitlines() if "fetch.refused" in line)
    failed = worker.events("feed.failed")
    assert {event["feed"] for event in failed} == {"moved"}
    assert failed[0]["error_type"] == "AddressRefused" and "redirected to 127.0.0.2" in failed[0]["error"]


def test_allow_private_addresses_lifts_the_rule_for_the_deployment(
    newsroom: Newsroom, internal: Listener, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """With ALERTS_ALLOW_PRIVATE_ADDRESSES=true the same content reaches 127.0.0.2: the redirected
    feed is read, the article enriches the alert, the hub is asked."""
    _configure(config_dir, newsroom, internal, webhook)
    worker = start_worker(ALERTS_WEBSUB_URL="http://127.0.0.1:9", ALERTS_ALLOW_PRIVATE_ADDRESSES="true")
    wait_for(lambda: len(worker.events("feed.seeded")) >= 2, what="first polls")
    newsroom.publish(Entry("Gaza crossing reopens", f"{internal.base}/story"))
    wait_for(lambda: "Gaza crossing reopens" in webhook.titles(), timeout=20, what="the alert")
    wait_for(lambda: any(line.startswith("POST /hub") for line in internal.requests), what="the hub")
    assert any(line.startswith("GET /feed.xml") for line in internal.requests)  # the redirect
    assert any(line.startswith("GET /story") for line in internal.requests)  # the enrichment
    assert not worker.events("fetch.refused") and not worker.events("feed.failed")
    [alert] = [payload for payload in webhook.received if payload["title"] == "Gaza crossing reopens"]
    assert alert["summary"]  # enriched from the page
