"""Shared rate limits per destination and a channel's "retry after", with a local Telegram double."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerts.config.settings import Settings
from alerts.delivery import channels, outbox, ratelimit
from alerts.models import Alert
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Store
from alerts.text import digest
from tests.harness.configs import write_config
from tests.harness.servers import TelegramDouble

TOKEN = "123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr"


def test_buckets_per_kind_of_destination() -> None:
    """A Telegram send is limited per bot and per chat (group chats slower); SMTP and ntfy per server."""
    private = ratelimit.buckets(f"tgram://{TOKEN}/12345")
    group = ratelimit.buckets(f"tgram://{TOKEN}/-100123")
    assert [(b.count, b.period) for b in private] == [(30, 1), (1, 1)]
    assert [(b.count, b.period) for b in group] == [(30, 1), (20, 60)]
    assert private[0].destination == group[0].destination and private[1].destination != group[1].destination
    mail = ratelimit.buckets("mailto://u:p@example.com?smtp=smtp.example.com&to=a@b.c")
    assert mail[0].destination.endswith("smtp:smtp.example.com") and (mail[0].count, mail[0].period) == (
        10,
        1,
    )
    assert ratelimit.buckets("ntfy://ntfy.example.com/topic")[0].destination == "ntfy:ntfy.example.com"
    assert ratelimit.buckets("json://127.0.0.1/hook") == []
    env = Settings.from_env({"ALERTS_RATE_SMTP": "2/m"}).rates
    assert (
        ratelimit.buckets("mailto://example.com", env)[0].count,
        ratelimit.buckets("mailto://x", env)[0].period,
    ) == (2, 60)


def test_retry_after_is_read_from_the_refusal() -> None:
    """Telegram's "Too Many Requests: retry after 7" gives 7; an unrelated error gives None."""
    assert ratelimit.retry_after("(429) Too Many Requests: retry after 7.") == 7
    assert ratelimit.retry_after("Retry-After: 30") == 30
    assert ratelimit.retry_after("(500) Internal error") is None


def test_buckets_are_shared_and_make_sends_wait_their_turn(store: Store) -> None:
    """GCRA in Redis: a burst up to the limit goes at once, the next send waits its turn."""
    bucket = ratelimit.Bucket("test", 3, 1.0)
    spec = [bucket.spec]
    now = time.time()
    assert [store.rates.take(spec, now) for _ in range(3)] == [0, 0, 0]
    wait = store.rates.take(spec, now)
    assert 0.3 < wait <= 0.34
    assert store.rates.take(spec, now + wait) == 0


@pytest.fixture
def bot(telegram: TelegramDouble, monkeypatch: pytest.MonkeyPatch) -> TelegramDouble:
    """Apprise's Telegram plugin pointed at the local double."""
    from apprise.plugins.telegram import NotifyTelegram

    monkeypatch.setattr(NotifyTelegram, "notify_url", NotifyTelegram.notify_url)  # restored after the test
    channels.use_telegram_api(telegram.api)
    return telegram


def _runtime(config_dir: Path, redis_url: str, urls: list[str], **env: str) -> Runtime:
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": urls}],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    rates = Settings.from_env(env).rates
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, rates=rates))


def _record(runtime: Runtime, url: str, story: str) -> str:
    alert = Alert(
        subscriber="desk",
        story=story,
        item=story,
        feed="wire",
        title=f"Story {story}",
        fetched_at=time.time(),
    )
    [delivery] = outbox.record(runtime.store.deliveries, [(alert, digest(url))])
    return delivery


def test_a_slow_chat_limit_books_the_send_for_its_turn(
    bot: TelegramDouble, config_dir: Path, redis_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 1 message a minute per chat, the second alert waits (booked, not dropped, not a failure)."""
    url = f"tgram://{TOKEN}/12345"
    runtime = _runtime(config_dir, redis_url, [url], ALERTS_RATE_TELEGRAM_CHAT="1/m")
    first, second = _record(runtime, url, "a"), _record(runtime, url, "b")
    assert runtime.sender.deliver(first, outbox.Policy()) == "sent"
    assert runtime.sender.deliver(second, outbox.Policy()) == "deferred"
    record = store.deliveries.get(second)
    assert record["state"] == "retrying" and record["attempts"] == "0"
    due = store.client.zscore(keys.OUTBOX_DUE, second)
    assert due is not None and time.time() + 55 < due <= time.time() + 60
    assert [m["text"].count("Story") for m in bot.messages] == [1]


def test_a_429_retry_after_holds_that_chat_only(
    bot: TelegramDouble, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A 429 "retry after 7" books the retry 7 s later and holds that chat; another chat still gets sent."""
    chat, other = f"tgram://{TOKEN}/12345", f"tgram://{TOKEN}/67890"
    runtime = _runtime(config_dir, redis_url, [chat, other])
    bot.throttle = 7
    refused = _record(runtime, chat, "a")
    before = time.time()
    assert runtime.sender.deliver(refused, outbox.Policy()) == "retrying"
    due = store.client.zscore(keys.OUTBOX_DUE, refused)
    assert due is not None and before + 6.5 <= due <= time.time() + 7.1, "exactly the wait asked for"
    assert runtime.sender.deliver(_record(runtime, chat, "b"), outbox.Policy()) == "deferred"
    assert runtime.sender.deliver(_record(runtime, other, "c"), outbox.Policy()) == "sent"
    assert len(bot.messages) == 1
