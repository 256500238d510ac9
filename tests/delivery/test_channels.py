"""What channels receive from a real Apprise send: a local Telegram Bot API double and an ntfy endpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerts.config.settings import Settings
from alerts.delivery import channels, outbox
from alerts.models import Alert
from alerts.service.runtime import Runtime
from alerts.state.store import Store
from alerts.text import digest
from tests.delivery.conftest import NtfySink
from tests.harness.configs import write_config
from tests.harness.servers import TelegramDouble


def _deliver(config_dir: Path, redis_url: str, url: str, alert: Alert) -> str:
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": [url]}],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    runtime = Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))
    [delivery] = outbox.record(runtime.store.deliveries, [(alert, digest(url))])
    return runtime.sender.deliver(delivery, outbox.Policy())


def _alert(
    title: str, summary: str = "", priority: str = "normal", link: str = "https://news.test/a?x=1&y=2"
) -> Alert:
    return Alert(
        subscriber="desk",
        story="s",
        item="i",
        feed="wire",
        title=title,
        summary=summary,
        link=link,
        published="2024-05-01T12:30:00+00:00",
        fetched_at=time.time(),
        priority=priority,
    )


def test_telegram_gets_escaped_html_with_a_bold_headline_and_the_link(
    telegram_api: TelegramDouble, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A headline with < & > reaches the Bot API as escaped HTML (parse mode HTML), bold, with its link."""
    alert = _alert("Strikes <continue> in Gaza & Rafah", summary='5 > 3 & "quoted"')
    assert (
        _deliver(
            config_dir, redis_url, "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/-100123", alert
        )
        == "sent"
    )
    [message] = telegram_api.messages
    assert message["parse_mode"].lower() == "html"
    text = message["text"]
    assert "<b>Strikes &lt;continue&gt; in Gaza &amp; Rafah</b>" in text
    assert "5 &gt; 3 &amp;" in text and '<a href="https://news.test/a?x=1&amp;y=2">' in text
    assert len(text) <= 4096 and message.get("disable_notification") in (None, False)


def test_telegram_respects_the_limit_and_low_priority_is_silent(
    telegram_api: TelegramDouble, config_dir: Path, redis_url: str
) -> None:
    """A huge summary is cut to fit 4096 characters; a low-priority alert is sent silently."""
    alert = _alert("Long report", summary="word & " * 3000, priority="low")
    assert (
        _deliver(
            config_dir, redis_url, "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/-100123", alert
        )
        == "sent"
    )
    [message] = telegram_api.messages
    assert len(message["text"]) <= 4096 and message["text"].count("<b>") == message["text"].count("</b>")
    assert message.get("disable_notification") is True


@pytest.mark.parametrize(
    ("priority", "expected"), [("flash", "max"), ("high", "high"), ("normal", None), ("low", "low")]
)
def test_ntfy_gets_title_priority_and_click_url(
    ntfy: NtfySink, config_dir: Path, redis_url: str, priority: str, expected: str | None
) -> None:
    """ntfy receives the headline as title, the subscription's priority, and the article as click URL."""
    alert = _alert("Earthquake hits Lima", summary="Magnitude 7.1", priority=priority)
    assert _deliver(config_dir, redis_url, ntfy.apprise_url, alert) == "sent"
    [published] = ntfy.published
    assert published["body"]["title"] == "Earthquake hits Lima"
    assert "Magnitude 7.1" in published["body"]["message"]
    assert published["headers"].get("X-Priority") == expected  # ntfy's names; normal is its default
    assert published["headers"]["X-Click"] == "https://news.test/a?x=1&y=2"


def test_priority_comes_from_the_most_urgent_matching_subscription(config_dir: Path, redis_url: str) -> None:
    """An item matched by a flash and a low subscription of one subscriber is a flash alert."""
    from alerts.service import pipeline
    from tests.harness.servers import Entry, FeedServer

    server = FeedServer().start()
    try:
        write_config(
            config_dir,
            [{"name": "wire", "url": server.url("wire")}],
            [{"name": "desk", "notify": ["json://127.0.0.1:9/x"]}],
            [
                {"name": "calm", "subscribers": ["desk"], "keywords": ["gaza"], "priority": "low"},
                {"name": "urgent", "subscribers": ["desk"], "keywords": ["strike"], "priority": "flash"},
            ],
        )
        runtime = Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))
        jobs: list[tuple[Alert, str]] = []
        pipeline.poll_feed(runtime, "wire", jobs.extend)
        server.publish("wire", Entry("Strike in Gaza", "http://news.test/s"))
        pipeline.poll_feed(runtime, "wire", jobs.extend)
        [(alert, _)] = jobs
        assert alert.priority == "flash" and alert.subscriptions == ("calm", "urgent")
    finally:
        server.stop()


def test_telegram_api_unchanged() -> None:
    """The Telegram API override does not leak between tests."""
    from apprise.plugins.telegram import NotifyTelegram

    assert NotifyTelegram.notify_url == channels.TELEGRAM_API
