"""A digest (an Alert whose ``held`` are the alerts that waited) -> the messages one URL receives, shaped
for its channel kind (pure: no I/O, no Apprise). No held alert is left out:

- ``telegram``: ``<b>N alerts</b>``, then one line per alert, ``• <a href="link">headline</a>``, in as many
  messages as needed, each within 4096 UTF-16 units as Apprise posts it (a line break becomes CRLF), each a
  whole set of lines: a line is never split across two messages (a monstrous headline is shortened, a
  monstrous link left out). Several messages say which alerts each holds: ``<b>200 alerts</b> (66–130)``.
- ``email``: subject = the digest's title; an HTML list, one item per alert: headline, feed and time, then
  the link as its own anchor text (so the text/plain part Apprise derives lists the links too). No limit.
- ``push``: title ``N alerts``; the first headlines (at most :data:`PUSH_HEADLINES`) and ``+K more``, within
  the service's limit; the digest's priority (its most urgent alert's); no click-through link.
- ``webhook``: a digest document (:data:`DIGEST_SCHEMA`) whose ``alerts`` are the documents
  :func:`~alerts.delivery.render.webhook_payload` makes, one per held alert, oldest first.
- ``console``/``other``: the digest's title; every headline with its link, one per line.

A held update of a story shows as ``Update: <headline>`` (its webhook document as any update's).

Subscriber templates shape single alerts only: a digest always gets this rendering.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.delivery import ids, plain
from alerts.delivery.fitting import escape, fit, href, iso, shorten, utf16
from alerts.delivery.render import (
    PUSH_DEFAULT,
    PUSH_SERVICES,
    PUSH_TITLE_LIMIT,
    TELEGRAM_LIMIT,
    TITLE_LIMIT,
    Message,
    Priority,
    channel_kind,
    safe_link,
    source,
    titled,
    webhook_payload,
    with_params,
)
from alerts.models import Alert
from alerts.text import digest as text_digest

DIGEST_SCHEMA = "breaking-alerts/digest@1"
PUSH_HEADLINES = 10  # the most headlines a push digest lists before "+K more"


@dataclass(frozen=True, slots=True)
class Part:
    """One message of a digest; once it is sent, the digest's first ``done`` held alerts are delivered."""

    message: Message
    done: int


def render_digest(
    digest: Alert,
    url: str,
    priority: Priority = Priority.NORMAL,
    sent_at: float | None = None,
    start: int = 0,
    target: str | None = None,
) -> list[Part]:
    """The messages for ``digest`` on ``url``, in order. ``start``: how many held alerts earlier messages
    delivered (a Telegram digest resumes after them; the other kinds are always one whole message);
    ``target``: the delivery's URL digest (by default that of ``url``), for held updates' ``update_of``."""
    if not digest.is_digest:
        raise ValueError("not a digest: a single alert is rendered by alerts.delivery.render")
    kind = channel_kind(url)
    if kind == "telegram":
        return _telegram(digest, url, priority, min(max(start, 0), len(digest.held)))
    sent_at = time.time() if sent_at is None else sent_at
    if kind == "email":
        message = _email(digest, url)
    elif kind == "push":
        message = _push(digest, url, priority)
    elif kind == "webhook":
        message = _webhook(digest, url, priority, sent_at, text_digest(url) if target is None else target)
    else:
        message = Message(plain.title(digest), plain.digest_body(digest.held), "text", url)
    return [Part(message, len(digest.held))]


def digest_payload(
    digest: Alert, priority: Priority, sent_at: float, target: str | None = None
) -> dict[str, object]:
    """A digest as a webhook receives it: its own fields, and every held alert's document (a held update's
    ``update_of`` is for ``target``, the delivery's URL digest; None without one)."""
    return {
        "schema": DIGEST_SCHEMA,
        "story": digest.story,
        "subscriber": digest.subscriber,
        "title": digest.title,
        "count": len(digest.held),
        "priority": priority.value,
        "first_seen": iso(digest.fetched_at) if digest.fetched_at else None,
        "sent_at": iso(sent_at),
        "alerts": [
            webhook_payload(
                alert,
                _priority(alert.priority),
                sent_at,
                update_of=ids.update_of(alert, target) if target is not None else None,
            )
            for alert in digest.held
        ],
    }


def _telegram(digest: Alert, url: str, priority: Priority, start: int) -> list[Part]:
    params = {"format": "html"} | ({"silent": "yes"} if priority is Priority.LOW else {})
    url = with_params(url, params)
    total = len(digest.held)
    count = f"<b>{_count(total)}</b>"
    widest = _posted(f"{count} ({total}–{total})")  # no range header is longer
    room = TELEGRAM_LIMIT - widest - 2  # for one line, after the header and a line break
    lines = [_telegram_line(alert, room) for alert in digest.held[start:]]
    whole = "\n".join([count, *lines])
    if start == 0 and _posted(whole) <= TELEGRAM_LIMIT:
        return [Part(Message("", whole, "html", url), total)]
    parts: list[Part] = []
    chunk: list[str] = []
    used = widest
    for line in lines:
        size = _posted(line) + 2
        if chunk and used + size > TELEGRAM_LIMIT:
            parts.append(_telegram_part(count, chunk, start, url))
            start += len(chunk)
            chunk, used = [], widest
        chunk.append(line)
        used += size
    if chunk:
        parts.append(_telegram_part(count, chunk, start, url))
    return parts


def _telegram_part(count: str, lines: Sequence[str], start: int, url: str) -> Part:
    first, last = start + 1, start + len(lines)
    header = f"{count} ({first}–{last})" if last > first else f"{count} ({first})"
    return Part(Message("", "\n".join([header, *lines]), "html", url), last)


def _telegram_line(alert: Alert, room: int) -> str:
    """``• <a href="link">headline</a>`` within ``room``; a link too long for it is left out, not cut."""
    title = shorten(titled(alert), TITLE_LIMIT)
    link = safe_link(alert)
    if link:

        def anchor(text: str) -> str:
            return f'• <a href="{href(link)}">{escape(text)}</a>'

        shown = fit(title, lambda text: _posted(anchor(text)) <= room)
        if shown:
            return anchor(shown)
    return "• " + escape(fit(title, lambda text: _posted("• " + escape(text)) <= room))


def _posted(text: str) -> int:
    """UTF-16 units of ``text`` as Apprise posts it to Telegram (each line break becomes CRLF)."""
    return utf16(text) + text.count("\n")


def _email(digest: Alert, url: str) -> Message:
    items = []
    for alert in digest.held:
        item = f"{escape(shorten(titled(alert), TITLE_LIMIT))} <i>({escape(source(alert))})</i>"
        link = safe_link(alert)
        if link:
            item += f'<br><a href="{href(link)}">{escape(link)}</a>'
        items.append(f'<li dir="auto">{item}</li>')
    body = "\n".join(
        [
            '<div dir="auto">',
            f'<h2 dir="auto">{_count(len(digest.held))}</h2>',
            "<ul>",
            *items,
            "</ul>",
            "</div>",
        ]
    )
    subject = shorten(" ".join(digest.title.split()) or _count(len(digest.held)), TITLE_LIMIT)
    return Message(subject, body, "html", with_params(url, {"format": "html"}))


def _push(digest: Alert, url: str, priority: Priority) -> Message:
    service = PUSH_SERVICES.get(url.split("://", 1)[0].lower(), PUSH_DEFAULT)
    params = {"format": "text"}
    if priority in service.priorities:
        params["priority"] = service.priorities[priority]
    size: Callable[[str], int] = (lambda s: len(s.encode())) if service.in_bytes else len
    lines = ["• " + shorten(titled(alert), PUSH_TITLE_LIMIT) for alert in digest.held[:PUSH_HEADLINES]]
    total = len(digest.held)
    body = f"+{total} more"  # when not even one headline fits
    for shown in range(len(lines), 0, -1):  # as many of the first headlines as fit with "+K more"
        text = "\n".join(lines[:shown] + ([f"+{total - shown} more"] if total > shown else []))
        if size(text) <= service.body_limit:
            body = text
            break
    return Message(_count(total), body, "text", with_params(url, params))


def _webhook(digest: Alert, url: str, priority: Priority, sent_at: float, target: str) -> Message:
    body = json.dumps(digest_payload(digest, priority, sent_at, target), ensure_ascii=False)
    native = url.split("://", 1)[0].lower() in ("http", "https")  # posted as is, not through Apprise
    return Message(
        shorten(digest.title, TITLE_LIMIT),
        body,
        "text",
        url if native else with_params(url, {"format": "text"}),
    )


def _count(total: int) -> str:
    return "1 alert" if total == 1 else f"{total} alerts"


def _priority(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        return Priority.NORMAL
