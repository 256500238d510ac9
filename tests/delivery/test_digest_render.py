"""A digest rendered per channel kind (pure, no network): every held alert is in it, within each limit."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from alerts.delivery import digests
from alerts.delivery.digest_render import DIGEST_SCHEMA, PUSH_HEADLINES, render_digest
from alerts.delivery.render import Priority, render, webhook_payload
from alerts.models import Alert

TGRAM = "tgram://123456789:AAbbCCdd-ee_ff/987654"
SENT_AT = 1714557700.0
LINE = re.compile(r'^• (?:<a href="([^"]*)">(.*)</a>|(.*))$')


def held(n: int, **changes: Any) -> Alert:
    """The n-th of a subscriber's held alerts, with text that needs escaping."""
    fields: dict[str, Any] = {
        "subscriber": "desk",
        "story": f"s{n}",
        "item": f"i{n}",
        "feed": "wire",
        "title": f"Story {n:03}: talks & <strikes> resume" if n % 7 != 6 else f"خبر عاجل {n} 😀",
        "summary": "Officials said more talks were planned.",
        "link": f"https://news.test/{n}?a=1&b=2",
        "published": "2024-05-01T12:00:00+00:00",
        "fetched_at": 1714557600.0 + n,
        "priority": "low" if n % 2 else "normal",
    }
    fields.update(changes)
    return Alert(**fields)


def make_digest(count: int = 200, **changes: Any) -> Alert:
    """A digest of ``count`` held alerts."""
    return digests.digest("desk", [held(n, **changes) for n in range(count)])


def posted(text: str) -> int:
    """UTF-16 units of a Telegram message as Apprise posts it (line breaks as CRLF)."""
    return len(text.encode("utf-16-le")) // 2 + text.count("\n")


def telegram_lines(texts: list[str]) -> list[tuple[str | None, str]]:
    """(link, headline) of every line after each message's header; fails on a line that is not whole."""
    found: list[tuple[str | None, str]] = []
    for text in texts:
        for line in text.split("\n")[1:]:
            match = LINE.match(line)
            assert match, f"not a whole line: {line[:80]!r}"
            link, anchored, bare = match.groups()
            found.append((html.unescape(link) if link else None, html.unescape(anchored or bare)))
    return found


def test_digest_json_travels_and_old_records_still_read() -> None:
    """A digest survives the outbox's JSON; a single alert's has no ``held``; old JSON reads as before."""
    digest = make_digest(3)
    assert Alert.from_json(json.loads(json.dumps(digest.to_json()))) == digest
    assert [a.story for a in digest.held] == ["s0", "s1", "s2"] and digest.is_digest
    single = held(1).to_json()
    assert "held" not in single
    old = {k: v for k, v in digest.to_json().items() if k != "held"} | {"summary": "• Story — link"}
    assert Alert.from_json(old).held == () and not Alert.from_json(old).is_digest
    assert render(Alert.from_json(old), TGRAM, sent_at=SENT_AT).body.startswith("<b>3 alerts: Story")
    with pytest.raises(ValueError, match="digest_render"):
        render(digest, TGRAM)
    with pytest.raises(ValueError, match="not a digest"):
        render_digest(held(1), TGRAM)


def test_telegram_splits_into_whole_lines_within_the_limit() -> None:
    """200 alerts: several messages, each within 4096 units as posted, each whole lines, all in order."""
    parts = render_digest(make_digest(), TGRAM, Priority.LOW, SENT_AT)
    texts = [part.message.body for part in parts]
    assert len(parts) > 2 and all(posted(text) <= 4096 for text in texts)
    assert all(posted(text) > 3500 for text in texts[:-1]), "each message is filled before the next"
    assert telegram_lines(texts) == [(a.link, a.title) for a in make_digest().held]
    done = 0
    for part in parts:
        count = part.message.body.split("\n")[0]
        assert count == f"<b>200 alerts</b> ({done + 1}–{part.done})"
        done = part.done
    assert done == 200 and all("silent=yes" in part.message.url for part in parts)


def test_a_small_telegram_digest_is_one_message() -> None:
    """Three alerts fit in one message, headed by the count without a range."""
    [part] = render_digest(make_digest(3), TGRAM, sent_at=SENT_AT)
    assert part.done == 3 and part.message.body.split("\n")[0] == "<b>3 alerts</b>"
    assert len(telegram_lines([part.message.body])) == 3 and "silent" not in part.message.url


def test_resuming_sends_exactly_the_messages_that_did_not_go() -> None:
    """Rendering after the first two messages' alerts gives exactly the first rendering's later messages."""
    first = render_digest(make_digest(), TGRAM, sent_at=SENT_AT)
    assert render_digest(make_digest(), TGRAM, sent_at=SENT_AT, start=first[1].done) == first[2:]
    assert render_digest(make_digest(), TGRAM, sent_at=SENT_AT, start=200) == []


def test_a_monstrous_line_is_shortened_not_split() -> None:
    """A 20,000-character headline is cut to fit; a 6,000-character link is left out; nothing else moves."""
    alerts = [held(n) for n in range(60)]
    alerts[10] = held(10, title="word " * 4000)
    alerts[20] = held(20, link="https://news.test/" + "x" * 6000)
    parts = render_digest(digests.digest("desk", alerts), TGRAM, sent_at=SENT_AT)
    lines = telegram_lines([part.message.body for part in parts])
    assert all(posted(part.message.body) <= 4096 for part in parts) and len(lines) == 60
    assert lines[10][1].endswith("…") and len(lines[10][1]) <= 250 and lines[10][0] == alerts[10].link
    assert lines[20] == (None, alerts[20].title)
    assert [line for n, line in enumerate(lines) if n not in (10, 20)] == [
        (a.link, a.title) for n, a in enumerate(alerts) if n not in (10, 20)
    ]


def test_email_lists_every_headline_with_its_link() -> None:
    """The email is an HTML list: one item per alert, headline escaped, feed and time, the link as text."""
    [part] = render_digest(make_digest(), "mailto://u:p@example.com", sent_at=SENT_AT)
    message = part.message
    assert message.title.startswith("200 alerts: Story 000") and message.body_format == "html"
    items = re.findall(r'<li dir="auto">(.*?)</li>', message.body)
    assert len(items) == 200 and '<h2 dir="auto">200 alerts</h2>' in message.body
    for item, alert in zip(items, make_digest().held, strict=True):
        assert html.escape(alert.title, quote=False) in item and "(wire · 2024-05-01 12:00 UTC)" in item
        assert f">{html.escape(alert.link or '', quote=False)}</a>" in item


@pytest.mark.parametrize(
    ("url", "limit", "in_bytes"), [("ntfy://h/t", 4096, True), ("pover://u@t", 1024, False)]
)
def test_push_says_how_many_with_the_first_headlines(url: str, limit: int, in_bytes: bool) -> None:
    """Push: "200 alerts", the first headlines, "+K more" for the rest, within the service's limit."""
    long = make_digest(title="Very long headline " * 20)
    for digest in (make_digest(), long):
        [part] = render_digest(digest, url, Priority.HIGH, SENT_AT)
        message = part.message
        lines = message.body.split("\n")
        shown = len(lines) - 1
        assert message.title == "200 alerts" and lines[-1] == f"+{200 - shown} more"
        assert (
            0 < shown <= PUSH_HEADLINES
            and (len(message.body.encode()) if in_bytes else len(message.body)) <= limit
        )
        assert lines[0].startswith("• " + digest.held[0].title[:40]) and "click=" not in message.url
    assert "priority=4" in render_digest(make_digest(), "ntfy://h/t", Priority.HIGH)[0].message.url


@pytest.mark.parametrize("url", ["json://hook.example/a", "https://hook.example/a"])
def test_webhooks_get_a_digest_document_of_alert_documents(url: str) -> None:
    """The webhook body is a digest document holding each alert's own document, in order."""
    digest = make_digest()
    [part] = render_digest(digest, url, Priority.NORMAL, SENT_AT)
    document = json.loads(part.message.body)
    assert document["schema"] == DIGEST_SCHEMA and document["count"] == 200
    assert document["story"] == digest.story and document["priority"] == "normal"
    assert document["alerts"] == [webhook_payload(a, Priority(a.priority), SENT_AT) for a in digest.held]
    assert ("format=text" in part.message.url) is url.startswith("json")


def test_console_lists_every_headline_with_its_link() -> None:
    """Console and unknown kinds: the digest's title, then one line per alert with its link."""
    for url in ("console://", "slack://a/b/c"):
        [part] = render_digest(make_digest(), url, sent_at=SENT_AT)
        assert part.message.url == url and part.message.title.startswith("200 alerts: ")
        assert part.message.body.split("\n") == [f"• {a.title} — {a.link}" for a in make_digest().held]
