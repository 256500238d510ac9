"""Per-channel rendering of alerts, checked against the Apprise plugins that will carry it (no network)."""

from __future__ import annotations

import email
import html
import json
import re
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from typing import Any

import apprise
import pytest
from apprise.plugins.email import NotifyEmail
from apprise.plugins.fcm import NotifyFCM

from alerts.delivery import plain
from alerts.delivery.render import Message, Priority, channel_kind, render, webhook_payload, with_params
from alerts.delivery.templates import compile_template
from alerts.models import Alert

SENT_AT = 1714557700.0  # 2024-05-01T10:01:40Z
TGRAM = "tgram://123456789:AAbbCCdd-ee_ff/987654"
NASTY = '<script>alert("x")</script> & "co"'
LINK = 'https://news.example/story?id=7&q="a b"&x=%20y'


def make_alert(**changes: Any) -> Alert:
    """A fully populated alert, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "subscriber": "ops",
        "story": "story-1",
        "item": "item-1",
        "feed": "Wire",
        "title": "Earthquake hits the coast",
        "summary": "A strong earthquake struck the coast early on Wednesday, officials said.",
        "link": "https://news.example/quake",
        "published": "2024-05-01T12:00:00+02:00",
        "regions": ("Asia",),
        "subscriptions": ("quakes",),
        "terms": ("earthquake",),
        "fetched_at": 1714557600.0,
        "extra": {"categories": ["World", "Disasters"]},
    }
    fields.update(changes)
    return Alert(**fields)


class TagChecker(HTMLParser):
    """Records tags and fails on unbalanced markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.anchors: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags.add(tag)
        if tag == "a":
            self.anchors.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(markup: str) -> TagChecker:
    """Parse ``markup``; assert every tag is closed and no bare ``&`` or ``<`` starts a broken entity."""
    checker = TagChecker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"
    assert not re.search(r"&(?!amp;|lt;|gt;|quot;|#x?[0-9a-fA-F]+;)", markup), "a broken entity"
    return checker


def utf16(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def plugin(message: Message) -> Any:
    """The Apprise plugin instance for a message's URL (inspection only)."""
    instance = apprise.Apprise.instantiate(message.url)
    assert instance is not None, f"Apprise rejects {message.url}"
    return instance


def test_channel_kind() -> None:
    """Each schema maps to its channel kind, case-insensitively."""
    assert channel_kind(TGRAM) == "telegram"
    assert channel_kind("MAILTOS://u:p@example.com") == "email"
    pushes = ("ntfy://h/t", "pover://u@t", "fcm://k/d", "gotify://h/t")
    assert [channel_kind(u) for u in pushes] == ["push"] * 4
    assert [channel_kind(u) for u in ("json://h", "jsons://h/p", "form://h", "xml://h")] == ["webhook"] * 4
    assert channel_kind("console://") == "console"
    assert channel_kind("slack://a/b/c") == channel_kind("no-schema") == "other"


def test_telegram_escapes_headline_and_summary() -> None:
    """``<script>&"`` in headline and summary reach Telegram as text, never as markup."""
    message = render(make_alert(title=NASTY, summary="Summary " + NASTY), TGRAM, sent_at=SENT_AT)
    checker = check_html(message.body)
    assert checker.tags <= {"b", "i", "a"} and "script" not in checker.tags
    assert "&lt;script&gt;" in message.body and "&amp; " in message.body
    assert "".join(checker.text).count(NASTY) == 2
    assert message.body_format == "html" and message.title == ""


def test_telegram_bold_headline_link_feed_and_time() -> None:
    """The headline is bold on the first line; the link is an anchor; feed and UTC time are shown."""
    message = render(make_alert(link=LINK), TGRAM, sent_at=SENT_AT)
    lines = message.body.split("\n")
    assert lines[0] == "<b>Earthquake hits the coast</b>"
    assert "<i>Wire · 2024-05-01 10:00 UTC</i>" in lines
    anchors = check_html(message.body).anchors
    assert anchors == [{"href": LINK.replace('"', "%22").replace(" ", "%20")}]
    assert '"' not in re.findall(r'href="([^"]*)"', message.body)[0]


def test_telegram_huge_summary_is_cut_to_the_limit() -> None:
    """A huge summary is cut on a word boundary so the whole message fits 4096 units, markup intact."""
    summary = " ".join(f"w{i}&<x>é😀" for i in range(5000))
    message = render(make_alert(summary=summary, link=LINK), TGRAM, sent_at=SENT_AT)
    assert utf16(message.body) <= 4096
    assert utf16(message.body) > 4000  # the room is used
    checker = check_html(message.body)
    shown = html.unescape(message.body.split("\n")[1])
    assert shown.endswith("😀…") and summary.startswith(shown.removesuffix("…"))
    assert summary[len(shown) - 1] == " "  # cut between words
    assert checker.anchors and message.body.endswith("</a>")


def test_telegram_low_priority_is_silent() -> None:
    """``low`` sets ``silent=yes``; other priorities leave the chat notified; format is html."""
    low = render(make_alert(), TGRAM, Priority.LOW, sent_at=SENT_AT)
    flash = render(make_alert(), TGRAM, Priority.FLASH, sent_at=SENT_AT)
    assert plugin(low).silent is True and plugin(flash).silent is False
    for message in (low, flash):
        assert plugin(message).resolve_format(None).value == "html"


@pytest.mark.parametrize("body_format", [None, "html"])
def test_telegram_what_apprise_posts(monkeypatch: pytest.MonkeyPatch, body_format: str | None) -> None:
    """Through Apprise (post intercepted), Telegram gets our HTML intact, in HTML parse mode, silently."""
    posted: list[dict[str, Any]] = []

    class Reply:
        status_code = 200
        content = b'{"ok": true}'

    def fake_post(url: str, data: str, **_: Any) -> Reply:
        posted.append(json.loads(data))
        return Reply()

    monkeypatch.setattr("apprise.plugins.telegram.requests.post", fake_post)
    message = render(make_alert(title=NASTY, link=LINK), TGRAM, Priority.LOW, sent_at=SENT_AT)
    messenger = apprise.Apprise()
    messenger.add(plugin(message))
    assert messenger.notify(body=message.body, title=message.title, body_format=body_format)
    [payload] = posted
    assert payload["parse_mode"] == "HTML" and payload["disable_notification"] is True
    assert payload["text"].replace("\r\n", "\n") == message.body
    assert check_html(payload["text"]).anchors[0]["href"] == check_html(message.body).anchors[0]["href"]


def test_email_html_escaped_rtl_with_anchor() -> None:
    """Email HTML escapes the headline, marks headline and summary ``dir="auto"``, links the story."""
    arabic = "زلزال قوي يضرب الساحل"
    message = render(make_alert(title=NASTY, summary=arabic, link=LINK), "mailtos://u:p@example.com")
    assert message.title == NASTY and message.body_format == "html"
    checker = check_html(message.body)
    assert "script" not in checker.tags
    assert f'<h2 dir="auto">{NASTY.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}</h2>' in (
        message.body
    )
    assert f'<p dir="auto">{arabic}</p>' in message.body
    assert [a["href"] for a in checker.anchors] == [LINK.replace('"', "%22").replace(" ", "%20")]
    assert "Wire · 2024-05-01 10:00 UTC" in message.body


def test_email_sent_as_html_with_text_alternative() -> None:
    """Apprise's email plugin sends our HTML with a text/plain alternative that still carries the link."""
    message = render(make_alert(), "mailto://user:pass@example.com", sent_at=SENT_AT)
    instance = plugin(message)
    [prepared] = NotifyEmail.prepare_emails(
        subject=message.title,
        body=message.body,
        notify_format=instance.resolve_format(None),
        from_addr=instance.from_addr,
        to=instance.targets,
    )
    parsed = email.message_from_string(prepared.body, EmailMessage, policy=default_policy)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in parsed.walk() if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert 'dir="auto"' in parts["text/html"] and "https://news.example/quake" in parts["text/plain"]
    assert parsed["Subject"] == message.title


@pytest.mark.parametrize(
    ("priority", "value", "plugin_value"),
    [
        (Priority.FLASH, "5", "max"),
        (Priority.HIGH, "4", "high"),
        (Priority.NORMAL, "3", "default"),
        (Priority.LOW, "2", "low"),
    ],
)
def test_ntfy_priority_click_and_existing_params(priority: Priority, value: str, plugin_value: str) -> None:
    """ntfy gets ``priority`` and ``click``; the subscriber's own ``tags`` survive."""
    message = render(make_alert(link=LINK), "ntfy://ntfy.example/topic?tags=news", priority, sent_at=SENT_AT)
    assert message.url.startswith("ntfy://ntfy.example/topic?tags=news&")
    assert f"priority={value}" in message.url
    instance = plugin(message)
    assert instance.priority == plugin_value and instance.click == LINK
    assert "tags=news" in instance.url()


def test_per_message_params_win_and_others_are_kept() -> None:
    """Our parameters replace the subscriber's (case-insensitively); theirs, ``:`` and ``+`` ones, stay."""
    url = "ntfy://ntfy.example/topic?Priority=1&tags=a,b&+X-Extra=1;click=http://old.example"
    message = render(make_alert(), url, Priority.HIGH, sent_at=SENT_AT)
    instance = plugin(message)
    assert instance.priority == "high" and instance.click == "https://news.example/quake"
    assert message.url.count("priority") == 1 and "tags=a,b" in message.url and "+X-Extra=1" in message.url
    assert with_params("json://h/p", {"format": "text"}) == "json://h/p?format=text"
    assert with_params("json://h/p?a=%2F", {}) == "json://h/p?a=%2F"


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(Priority.FLASH, 1), (Priority.HIGH, 1), (Priority.NORMAL, 0), (Priority.LOW, -1)],
)
def test_pushover_priority_and_url(priority: Priority, expected: int) -> None:
    """Pushover gets its priority and the story as supplementary ``url``; the body stays within 1024."""
    message = render(make_alert(link=LINK, summary="x " * 2000), "pover://userkey@apptoken", priority)
    instance = plugin(message)
    assert instance.priority == expected and instance.supplemental_url == LINK
    assert len(message.body) <= 1024 and message.body.endswith("Wire · 2024-05-01 10:00 UTC")
    assert LINK not in message.body  # the click-through carries it


def test_push_bodies_respect_service_limits() -> None:
    """ntfy counts UTF-8 bytes (4096), FCM characters (1000); FCM gets its priority and the link inline."""
    arabic = " ".join(["زلزال"] * 3000)
    ntfy = render(make_alert(summary=arabic), "ntfys://ntfy.example/t", sent_at=SENT_AT)
    assert 3900 < len(ntfy.body.encode()) <= 4096 and ntfy.body.split("\n")[0].endswith("زلزال…")
    fcm = render(make_alert(summary=arabic), "fcm://AAAAkey/device", Priority.FLASH, sent_at=SENT_AT)
    assert len(fcm.body) <= 1000 and fcm.body.endswith("\nhttps://news.example/quake")
    parse_url: Any = NotifyFCM.parse_url  # FCM may be disabled here (no cryptography): parse only
    parsed = parse_url(fcm.url)
    assert parsed["priority"] == "max" and parsed["format"] == "text"


def test_push_title_cut_on_word_boundary() -> None:
    """A long headline becomes a push title of at most 100 characters, cut between words."""
    title = "Officials confirm " + "very " * 60 + "long headline"
    message = render(make_alert(title=title), "ntfy://ntfy.example/topic", sent_at=SENT_AT)
    assert len(message.title) <= 100 and message.title.endswith("very…")
    assert title.startswith(message.title.removesuffix("…"))
    assert plugin(message).title_maxlen >= len(message.title)


def test_webhook_payload_has_every_field() -> None:
    """The webhook message is a JSON document with every alert field, timestamps in ISO 8601."""
    alert = make_alert(title=NASTY)
    message = render(alert, "jsons://hook.example/alerts?:type=kind", Priority.HIGH, sent_at=SENT_AT)
    document = json.loads(message.body)
    assert document == webhook_payload(alert, Priority.HIGH, SENT_AT)
    assert document == {
        "schema": "breaking-alerts/alert@1",
        "item": "item-1",
        "story": "story-1",
        "subscriber": "ops",
        "feed": "Wire",
        "title": NASTY,
        "summary": alert.summary,
        "link": "https://news.example/quake",
        "regions": ["Asia"],
        "categories": ["World", "Disasters"],
        "subscriptions": ["quakes"],
        "terms": ["earthquake"],
        "published": "2024-05-01T12:00:00+02:00",
        "first_seen": "2024-05-01T10:00:00+00:00",
        "sent_at": "2024-05-01T10:01:40+00:00",
        "priority": "high",
        "update": False,
        "update_of": None,
        "sources": [],
        "changes": [],
    }
    assert json.loads(render(make_alert(extra={}), "json://h/").body)["categories"] == []


def test_webhook_what_apprise_posts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Apprise's json plugin (request intercepted) the receiver can parse ``message`` back."""
    sent: list[dict[str, Any]] = []

    class Reply:
        status_code = 200
        content = b""

    def fake_request(method: str, url: str, data: str, **_: Any) -> Reply:
        sent.append(json.loads(data))
        return Reply()

    monkeypatch.setattr("apprise.plugins.custom_json.requests.request", fake_request)
    message = render(make_alert(), "json://hook.example/alerts?:type=kind", sent_at=SENT_AT)
    messenger = apprise.Apprise()
    messenger.add(plugin(message))
    assert messenger.notify(body=message.body, title=message.title)
    [envelope] = sent
    assert envelope["title"] == "Earthquake hits the coast" and envelope["kind"] == "info"
    assert json.loads(envelope["message"])["item"] == "item-1"


def test_console_and_other_use_plain_rendering() -> None:
    """Console and unknown kinds get today's plain title and body, URL untouched."""
    alert = make_alert()
    for url in ("console://", "slack://a/b/c?footer=no"):
        message = render(alert, url, Priority.FLASH)
        assert message == Message(plain.title(alert), plain.body(alert), "text", url)


def test_unsafe_links_are_never_linked() -> None:
    """A ``javascript:`` link is neither an anchor nor a click-through."""
    alert = make_alert(link="javascript:alert(1)")
    assert "<a " not in render(alert, TGRAM).body and "<a " not in render(alert, "mailto://u:p@ex.com").body
    assert "click=" not in render(alert, "ntfy://ntfy.example/t").url


def test_template_renders_custom_title_and_body() -> None:
    """A subscriber's push template shapes title and body from alert, priority and sent_at."""
    template = compile_template(
        "push", "{{ priority|upper }}: {{ alert.title }}", "{{ alert.feed }} at {{ sent_at }}"
    )
    message = render(make_alert(), "ntfy://ntfy.example/t", Priority.FLASH, SENT_AT, template)
    assert message.title == "FLASH: Earthquake hits the coast"
    assert message.body == "Wire at 2024-05-01T10:01:40+00:00" and message.template_error is None
    assert plugin(message).priority == "max"


def test_template_autoescapes_html_kinds() -> None:
    """Templates for HTML kinds escape alert text; the title (plain text) is escaped where it is used."""
    template = compile_template("telegram", "{{ alert.title }}", "<i>{{ alert.summary }}</i>")
    message = render(make_alert(title=NASTY, summary=NASTY), TGRAM, sent_at=SENT_AT, template=template)
    assert check_html(message.body).tags == {"b", "i"} and message.template_error is None
    assert "<script>" not in message.body


@pytest.mark.parametrize(
    "source",
    [
        "{{ alert.__class__.__mro__ }}",
        "{{ alert.__class__ }}",
        "{{ alert.extra.update(x=1) }}",
        "{{ 'x' * 10**9 }}",
        "{{ 1 / 0 }}",
    ],
)
def test_template_sandbox_failures_fall_back(source: str) -> None:
    """Unsafe or failing templates fall back to the default rendering and say why."""
    template = compile_template("email", None, source)
    message = render(make_alert(), "mailto://u:p@ex.com", sent_at=SENT_AT, template=template)
    assert message.template_error and "body template failed" in message.template_error
    assert replace(message, template_error=None) == render(
        make_alert(), "mailto://u:p@ex.com", sent_at=SENT_AT
    )
    assert '<h2 dir="auto">Earthquake hits the coast</h2>' in message.body
    assert "mro" not in message.body and "class" not in message.body


def test_template_too_long_for_telegram_falls_back() -> None:
    """A Telegram template rendering beyond 4096 units is replaced by the default message."""
    template = compile_template("telegram", None, "{% for i in range(2000) %}word {% endfor %}")
    message = render(make_alert(), TGRAM, sent_at=SENT_AT, template=template)
    assert message.template_error and "too long" in message.template_error
    assert message.body.startswith("<b>Earthquake hits the coast</b>\nA strong earthquake")


def test_template_syntax_error_names_the_line() -> None:
    """A syntax error is a ValueError naming the kind, part and line."""
    with pytest.raises(ValueError, match=r"push body template, line 2: .*"):
        compile_template("push", "{{ alert.title }}", "ok {{ alert.feed }}\n{% if %}")
    with pytest.raises(ValueError, match="unknown channel kind"):
        compile_template("pager", None, "x")


def test_template_for_another_kind_is_refused() -> None:
    """Using an email template on a push URL is a caller error (escaping would be wrong)."""
    with pytest.raises(ValueError, match="email template"):
        render(make_alert(), "ntfy://ntfy.example/t", template=compile_template("email", None, "x"))
