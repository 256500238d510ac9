"""Native webhooks: a plain http(s):// URL receives each alert as a JSON document, posted by aiohttp."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.delivery import channels, outbox
from alerts.delivery.render import WEBHOOK_SCHEMA
from alerts.delivery.send import send_test
from alerts.models import Alert
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Store
from alerts.text import digest
from tests.harness.configs import write_config
from tests.harness.servers import WebhookSink


def _alert(story: str = "s1", title: str = "Gaza ceasefire talks resume") -> Alert:
    return Alert(
        subscriber="desk",
        story=story,
        item=f"item-{story}",
        feed="wire",
        title=title,
        summary="Delegations meet in Cairo.",
        link=f"http://news.test/{story}",
        published="2024-05-01T12:30:00+00:00",
        regions=("MENA", "Palestine"),
        subscriptions=("gaza",),
        terms=("gaza",),
        fetched_at=time.time(),
        priority="high",
    )


def _runtime(config_dir: Path, redis_url: str, notify_urls: list[str]) -> Runtime:
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": notify_urls}],
        [{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))


@pytest.fixture
def refusing() -> Iterator[WebhookSink]:
    """A webhook answering 503 with Retry-After: 7."""
    sink = WebhookSink(status=503, retry_after="7").start()
    yield sink
    sink.stop()


def test_the_document_is_the_body_with_the_delivery_id_as_header(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """The receiver gets every field of the alert as the JSON body, and the delivery id as a header."""
    url = f"{webhook.url}/desk?team=night"
    runtime = _runtime(config_dir, redis_url, [url])
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(url))])
    with capture_logs() as logs:
        assert runtime.sender.deliver_batch([delivery]) == {"sent": 1}
    [(path, headers, raw)] = webhook.requests
    document = json.loads(raw)
    assert path == "/hook/desk" and headers["Content-Type"] == "application/json"
    assert headers["X-Alerts-Delivery"] == delivery and "X-Alerts-Signature" not in headers
    assert document["schema"] == WEBHOOK_SCHEMA
    assert (document["item"], document["story"], document["feed"]) == ("item-s1", "s1", "wire")
    assert document["title"] == "Gaza ceasefire talks resume" and document["link"] == "http://news.test/s1"
    assert document["regions"] == ["MENA", "Palestine"] and document["subscriptions"] == ["gaza"]
    assert document["terms"] == ["gaza"] and document["priority"] == "high"
    assert document["published"] == "2024-05-01T12:30:00+00:00"
    assert document["first_seen"] and document["sent_at"]
    [sent] = [event for event in logs if event["event"] == "alert.sent"]
    assert sent["target"] == f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}/***", (
        "path and query masked"
    )
    assert store.deliveries.get(delivery)["state"] == "sent"
    assert runtime.sender.deliver_batch([delivery]) == {"skipped": 1}, "sent once"
    assert len(webhook.requests) == 1


def test_a_secret_in_the_fragment_signs_the_body_and_never_leaves(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """``#secret=...`` adds an HMAC-SHA256 signature of the body; the secret is not sent nor logged."""
    url = f"{webhook.url}#secret=s3cr3t-value"
    runtime = _runtime(config_dir, redis_url, [url])
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(url))])
    with capture_logs() as logs:
        assert runtime.sender.deliver_batch([delivery]) == {"sent": 1}
    [(path, headers, raw)] = webhook.requests
    expected = hmac.new(b"s3cr3t-value", raw, hashlib.sha256).hexdigest()
    assert headers["X-Alerts-Signature"] == f"sha256={expected}"
    assert path == "/hook" and b"s3cr3t" not in raw
    assert "s3cr3t" not in repr(logs) and "s3cr3t" not in channels.private(url)


def test_a_refusal_is_retried_after_the_time_the_receiver_asked(
    refusing: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A 503 with Retry-After: 7 books the retry exactly 7 s later; the error names the status."""
    runtime = _runtime(config_dir, redis_url, [refusing.url])
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(refusing.url))])
    with capture_logs() as logs:
        assert runtime.sender.deliver_batch([delivery]) == {"retrying": 1}
    record = store.deliveries.get(delivery)
    assert record["state"] == "retrying" and "HTTP 503" in record["last_error"]
    due = store.client.zscore(keys.OUTBOX_DUE, delivery)
    assert due is not None and time.time() + 6 <= due <= time.time() + 7.5
    [failed] = [event for event in logs if event["event"] == "alert.failed"]
    assert failed["retry_in"] == pytest.approx(7, abs=0.5)


def test_an_unreachable_receiver_is_retried_and_its_path_is_not_logged(
    config_dir: Path, redis_url: str, store: Store
) -> None:
    """Connection refused: the delivery retries with backoff; the error shows only the origin."""
    url = "http://127.0.0.1:9/hooks/T0001/B0002/secret-token"
    runtime = _runtime(config_dir, redis_url, [url])
    [delivery] = outbox.record(store.deliveries, [(_alert(), digest(url))])
    with capture_logs() as logs:
        assert runtime.sender.deliver_batch([delivery], outbox.Policy(backoff_base=10)) == {"retrying": 1}
    record = store.deliveries.get(delivery)
    assert "http://127.0.0.1:9" in record["last_error"] and "secret-token" not in record["last_error"]
    assert "secret-token" not in repr(logs)


def test_webhooks_and_apprise_urls_of_one_batch_all_arrive(
    webhook: WebhookSink, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A batch mixing native webhooks and Apprise json:// URLs sends every delivery once."""
    urls = [f"{webhook.url}/native", f"{webhook.apprise_url}/apprise"]
    runtime = _runtime(config_dir, redis_url, urls)
    jobs = [(_alert(f"s{n}", f"Story {n}"), digest(url)) for n in range(10) for url in urls]
    ids = outbox.record(store.deliveries, jobs)
    assert runtime.sender.deliver_batch(ids) == {"sent": 20}
    paths = sorted(path for path, _, _ in webhook.requests)
    assert paths == ["/hook/apprise"] * 10 + ["/hook/native"] * 10
    native = [json.loads(raw)["title"] for path, _, raw in webhook.requests if path == "/hook/native"]
    apprise = [
        json.loads(json.loads(raw)["message"])["title"]
        for path, _, raw in webhook.requests
        if path == "/hook/apprise"
    ]
    assert sorted(native) == sorted(apprise) == sorted(f"Story {n}" for n in range(10))


def test_send_test_posts_to_a_webhook(webhook: WebhookSink) -> None:
    """``send_test`` (used by ``alerts send-test``) posts to a native webhook too."""
    target = send_test(webhook.url, "breaking-alerts test", '{"test": true}')
    assert target.endswith("/***")
    assert [json.loads(raw) for _, _, raw in webhook.requests] == [{"test": True}]
