"""200 held alerts through the real path (pacing in Redis, the outbox, the sender) to real local sinks."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.config.settings import Settings
from alerts.delivery import digests, outbox, ratelimit
from alerts.delivery.digest_render import DIGEST_SCHEMA
from alerts.delivery.render import Priority, webhook_payload
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from alerts.state import keys
from tests.delivery.conftest import NtfySink
from tests.harness.configs import write_config
from tests.harness.servers import TelegramDouble, WebhookSink
from tests.harness.smtp import SmtpSink

HELD = 200
GROUP = "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/-100123"
CHAT = "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/4242"
LINE = re.compile(r'^• <a href="([^"]*)">(.*)</a>$')


def _alert(n: int) -> Alert:
    return Alert(
        subscriber="desk",
        story=f"s{n}",
        item=f"i{n}",
        feed="wire",
        title=f"Story {n:03}: talks & <strikes> resume" if n % 9 != 4 else f"خبر عاجل رقم {n}",
        summary="Delegations met in Cairo.",
        link=f"https://news.test/{n}?a=1&b=2",
        published="2024-05-01T12:30:00+00:00",
        regions=("MENA",),
        subscriptions=("gaza",),
        terms=("gaza",),
        fetched_at=time.time() + n / 1000,
        priority="high" if n == 7 else "normal",
    )


def _runtime(config_dir: Path, redis_url: str, url: str, **settings: Any) -> Runtime:
    desk: dict[str, Any] = {
        "name": "desk",
        "notify": [url],
        "templates": {"telegram": {"body": "{{ alert.title }}"}, "email": {"title": "T: {{ alert.title }}"}},
    }
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [desk],
        [{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, **settings))


def _held(runtime: Runtime) -> tuple[list[Alert], str]:
    """Route HELD + 5 alerts at once (the default burst rule sends 5, holds the rest); record the digest
    that is due when the burst window ends: the held alerts, and the delivery id."""
    now = time.time()
    alerts = [_alert(n) for n in range(HELD + 5)]
    subscribers = runtime.live.current().config.subscribers
    assert len(digests.route(runtime.store.pacing, subscribers, alerts, now)) == 5
    assert digests.due_digests(runtime.store.pacing, now + 59) == []
    ids: list[str] = []
    sent = pipeline.send_digests(
        runtime, lambda jobs: ids.extend(outbox.record(runtime.store.deliveries, jobs)), now + 60
    )
    assert sent == 1 and len(ids) == 1
    return alerts[5:], ids[0]


def _telegram_lines(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(link, headline) of each line after each message's header; fails on a line that is not whole."""
    lines = []
    for message in messages:
        text = message["text"].replace("\r\n", "\n")
        assert text.startswith(f"<b>{HELD} alerts</b> (")
        for line in text.split("\n")[1:]:
            match = LINE.match(line)
            assert match, f"not a whole line: {line[:80]!r}"
            lines.append((html.unescape(match.group(1)), html.unescape(match.group(2))))
    return lines


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_telegram_gets_every_headline_in_messages_of_whole_lines(
    telegram_api: TelegramDouble, config_dir: Path, redis_url: str
) -> None:
    """200 held alerts reach a Telegram group as several messages, each within 4096, each whole lines,
    every headline and link once; the delivery is one sent record with one history entry."""
    runtime = _runtime(config_dir, redis_url, GROUP)
    held, delivery = _held(runtime)
    assert runtime.sender.deliver(delivery) == "sent"
    messages = telegram_api.messages
    assert len(messages) > 2 and all(_utf16(m["text"]) <= 4096 for m in messages)
    assert all(m["parse_mode"].lower() == "html" for m in messages)
    assert _telegram_lines(messages) == [(a.link, a.title) for a in held], "the template is not applied"
    assert runtime.store.deliveries.get(delivery)["state"] == "sent"
    [entry] = runtime.store.deliveries.history(0)
    assert entry["state"] == "sent" and entry["title"] == f"{HELD} alerts: {held[0].title}"
    assert runtime.sender.deliver(delivery) == "skipped" and len(telegram_api.messages) == len(messages)


def test_a_telegram_digest_failing_midway_resumes_without_resending(
    telegram_api: TelegramDouble, config_dir: Path, redis_url: str
) -> None:
    """Message 3 refused: the delivery retries, and the retry sends messages 3.. only, never 1-2 again."""
    runtime = _runtime(config_dir, redis_url, GROUP)
    held, delivery = _held(runtime)
    telegram_api.refuse_after = 2
    assert runtime.sender.deliver(delivery) == "retrying"
    record = runtime.store.deliveries.get(delivery)
    first_two = _telegram_lines(telegram_api.messages)
    assert len(telegram_api.messages) == 2 and len(telegram_api.refused) == 1
    assert record["state"] == "retrying" and int(record["digest_sent"]) == len(first_two)
    telegram_api.refuse_after = None
    assert runtime.sender.deliver(delivery) == "sent"
    assert _telegram_lines(telegram_api.messages) == [(a.link, a.title) for a in held]
    assert telegram_api.refused[0]["text"] == telegram_api.messages[2]["text"], "message 3 is the one retried"
    assert [h["state"] for h in runtime.store.deliveries.history(0)] == ["sent"]


def test_a_telegram_digest_waits_for_its_turn_between_messages(
    telegram_api: TelegramDouble, config_dir: Path, redis_url: str
) -> None:
    """A private chat at 1 message per 1.5 s: each next message is booked for its turn, none sent twice."""
    runtime = _runtime(config_dir, redis_url, CHAT, rates={**ratelimit.DEFAULTS, "TELEGRAM_CHAT": (1.0, 1.5)})
    held, delivery = _held(runtime)
    outcomes = [runtime.sender.deliver(delivery)]
    assert outcomes == ["deferred"] and len(telegram_api.messages) == 1
    deadline = time.time() + 30
    while outcomes[-1] != "sent" and time.time() < deadline:
        due = runtime.store.client.zscore(keys.OUTBOX_DUE, delivery)
        assert due is not None and runtime.store.deliveries.get(delivery)["state"] == "retrying"
        time.sleep(max(0.0, due - time.time()) + 0.05)
        [handed] = outbox.sweep(runtime.store.deliveries, runtime.policy)
        outcomes.append(runtime.sender.deliver(handed))
    assert outcomes[-1] == "sent" and outcomes.count("sent") == 1
    assert _telegram_lines(telegram_api.messages) == [(a.link, a.title) for a in held]
    assert int(runtime.store.deliveries.get(delivery)["attempts"]) == 1, "waiting for a turn is no failure"


def test_email_lists_every_headline_with_its_link_in_both_parts(
    smtp: SmtpSink, config_dir: Path, redis_url: str
) -> None:
    """One email: an HTML list and the derived text/plain part both carry all 200 headlines and links."""
    runtime = _runtime(config_dir, redis_url, smtp.apprise_url())
    held, delivery = _held(runtime)
    assert runtime.sender.deliver(delivery) == "sent"
    [message] = smtp.messages
    assert str(message["subject"]) == f"{HELD} alerts: {held[0].title}", "the template is not applied"
    parts = {
        part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()
    }
    assert parts["text/html"].count("<li") == HELD
    for kind, text in parts.items():
        shown = html.unescape(text) if kind == "text/html" else text
        positions = [shown.index(alert.title) for alert in held]
        assert positions == sorted(positions), f"{kind}: every headline, in order"
        assert all(f"{alert.link}" in shown for alert in held), f"{kind}: every link"


def test_ntfy_says_how_many_with_the_first_headlines(
    ntfy: NtfySink, config_dir: Path, redis_url: str
) -> None:
    """ntfy gets "200 alerts", the first headlines and "+K more", within 4096 bytes, at the top priority."""
    runtime = _runtime(config_dir, redis_url, ntfy.apprise_url)
    held, delivery = _held(runtime)
    assert runtime.sender.deliver(delivery) == "sent"
    [published] = ntfy.published
    body = published["body"]["message"]
    lines = body.split("\n")
    assert published["body"]["title"] == f"{HELD} alerts" and len(body.encode()) <= 4096
    assert lines[:-1] == [f"• {alert.title}" for alert in held[: len(lines) - 1]]
    assert lines[-1] == f"+{HELD - (len(lines) - 1)} more"
    assert published["headers"].get("X-Priority") == "high" and "X-Click" not in published["headers"]


@pytest.mark.parametrize("native", [True, False])
def test_webhooks_get_every_alert_document(
    webhook: WebhookSink, config_dir: Path, redis_url: str, native: bool
) -> None:
    """A native webhook (the body) and Apprise json:// (``message``) get a digest of 200 alert documents."""
    url = webhook.url if native else webhook.apprise_url
    runtime = _runtime(config_dir, redis_url, url)
    held, delivery = _held(runtime)
    assert runtime.sender.deliver(delivery) == "sent"
    [(_, headers, raw)] = webhook.requests
    document = json.loads(raw) if native else json.loads(json.loads(raw)["message"])
    assert document["schema"] == DIGEST_SCHEMA and document["count"] == HELD
    assert document["priority"] == "high" and document["subscriber"] == "desk"
    sent_at = datetime.fromisoformat(document["sent_at"]).timestamp()
    assert document["alerts"] == [webhook_payload(a, Priority(a.priority), sent_at) for a in held]
    if native:
        assert headers["X-Alerts-Delivery"] == delivery and headers["Content-Type"] == "application/json"


def test_console_prints_every_headline(
    capsys: pytest.CaptureFixture[str], config_dir: Path, redis_url: str
) -> None:
    """console:// prints the digest's title and every headline with its link, one per line."""
    runtime = _runtime(config_dir, redis_url, "console://")
    held, delivery = _held(runtime)
    assert runtime.sender.deliver(delivery) == "sent"
    out = capsys.readouterr().out
    assert f"{HELD} alerts: {held[0].title}" in out
    assert [line for line in out.splitlines() if line.startswith("• ")] == [
        f"• {alert.title} — {alert.link}" for alert in held
    ]


def test_progress_is_written_only_while_the_claim_holds(config_dir: Path, redis_url: str) -> None:
    """A digest's progress is noted under our lease only: not once sent, taken over, or dropped."""
    runtime = _runtime(config_dir, redis_url, "console://")
    deliveries = runtime.store.deliveries
    _, delivery = _held(runtime)
    [claimed] = deliveries.claim([delivery], time.time(), 120)
    assert claimed is not None and outbox.progress(claimed) == 0
    assert outbox.note_progress(deliveries, delivery, claimed, 40)
    assert outbox.progress(deliveries.get(delivery)) == 40
    [again] = deliveries.claim([delivery], time.time() + 121, 120)  # our lease ran out: another worker's
    assert again is not None and not outbox.note_progress(deliveries, delivery, claimed, 80)
    assert outbox.note_progress(deliveries, delivery, again, 80)
    deliveries.drop(delivery)
    assert not outbox.note_progress(deliveries, delivery, again, 120) and deliveries.get(delivery) == {}
