"""Alert -> the message one Apprise URL receives, shaped for its channel kind (pure: no I/O, no Apprise).

Kinds (:func:`channel_kind`) and what :func:`render` produces for them:

- ``telegram``: Telegram HTML (``format=html``), everything escaped, bold headline, italic feed and time, the
  link as an anchor; at most 4096 UTF-16 units *before* entity parsing (so always within Telegram's limit),
  the summary cut first, on a word boundary, before escaping (a tag or entity is never cut). ``title`` is
  empty: Telegram has no title field and Apprise would prepend it unescaped. ``low`` -> ``silent=yes``.
- ``email``: subject = headline; an HTML body (``format=html``). Apprise's email plugin sends HTML as
  multipart/alternative with a text/plain part it derives from the HTML, so the link is also the anchor text.
- ``push``: a short plain title (<= 100 characters), a plain body within the service's limit
  (:data:`PUSH_SERVICES`), priority and click-through link as URL parameters, ``format=text``.
- ``webhook``: ``message`` (Apprise's body) is a JSON document with every field of the alert
  (:func:`webhook_payload`); the receiver gets ``{"version", "title", "message", "type", ...}`` and does
  ``json.loads(payload["message"])``. Apprise's ``:key=value`` URL mapping only adds flat strings (and
  would make the URL differ per alert), so it is not used. A plain ``http(s)://`` URL (a native webhook,
  :mod:`alerts.delivery.webhook`) receives the JSON document itself as the request body.
- ``console``/``other``: today's plain rendering (:mod:`alerts.delivery.plain`), URL unchanged.

A story's update is titled ``Update: <headline>`` and lists what changed; a story's first alert names the
other feeds that reported it (:mod:`alerts.delivery.story_render`; ``sources`` may be fresher than the
alert's, read when it is sent). Subscriber templates get ``sources``, ``update``, ``update_of`` and
``changes`` and shape the title themselves.

A digest (an alert with ``held`` alerts) is its own kind of message: :mod:`alerts.delivery.digest_render`.

Per-message parameters are added to a copy of the subscriber's URL; its own parameters are kept, ours win.
A subscriber template (:mod:`alerts.delivery.templates`) that fails at render time never blocks an alert:
the default rendering is returned with :attr:`Message.template_error` set, for the caller to log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote

from alerts.delivery import ids, plain, story_render
from alerts.delivery.fitting import clean as _clean
from alerts.delivery.fitting import escape, fit, href, iso, shorten, utf16
from alerts.delivery.fitting import when as _when
from alerts.delivery.templates import Template, TemplateFailure
from alerts.models import Alert
from alerts.text import digest

TELEGRAM_LIMIT = 4096  # characters after entity parsing; we count UTF-16 units of the raw HTML (stricter)
TITLE_LIMIT = 250
PUSH_TITLE_LIMIT = 100
FEED_LIMIT = 100
LINK_TEXT_LIMIT = 100
EMAIL_SUMMARY_LIMIT = 4000
WEBHOOK_SCHEMA = "breaking-alerts/alert@1"


class Priority(StrEnum):
    FLASH = "flash"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Message:
    """What to hand to ``notify.send(message.url, message.title, message.body, ...)``."""

    title: str
    body: str
    body_format: str  # "text" | "html" | "markdown" (Apprise NotifyFormat values)
    url: str  # the Apprise URL to use, with per-message parameters applied
    template_error: str | None = None  # why the subscriber's template was not used (default rendering)


@dataclass(frozen=True, slots=True)
class PushService:
    """Limits and URL parameters of one mobile push service."""

    body_limit: int
    in_bytes: bool = False  # the limit counts UTF-8 bytes, not characters
    priorities: Mapping[Priority, str] = field(default_factory=dict)  # value of ?priority=
    click: str | None = None  # URL parameter carrying the click-through link
    click_limit: int = 2048


def _levels(flash: str, high: str, normal: str, low: str) -> dict[Priority, str]:
    return {Priority.FLASH: flash, Priority.HIGH: high, Priority.NORMAL: normal, Priority.LOW: low}


#: Limits and parameters: ntfy's message limit is 4096 bytes (larger ones become attachments); Pushover's
#: 1024 characters (url 512; priority 2 needs acknowledgement, so flash is 1 like high); FCM ~1000.
PUSH_SERVICES: dict[str, PushService] = {
    "ntfy": PushService(4096, True, _levels("5", "4", "3", "2"), "click"),
    "pover": PushService(1024, False, _levels("1", "1", "0", "-1"), "url", click_limit=512),
    "fcm": PushService(1000, False, _levels("max", "high", "normal", "low")),
    "gotify": PushService(4000, False, _levels("emergency", "high", "normal", "low")),
}
PUSH_SERVICES |= {"ntfys": PUSH_SERVICES["ntfy"], "gotifys": PUSH_SERVICES["gotify"]}
PUSH_DEFAULT = PushService(1000)  # other push services: a conservative limit, no parameters
PUSH_SCHEMAS = frozenset(PUSH_SERVICES) | {"pbul", "psafer", "psafers", "pushy", "join", "prowl", "bark"}
PUSH_SCHEMAS |= {"barks", "gorush", "gorushs", "onesignal", "spush", "simplepush"}
KIND_SCHEMAS: dict[str, frozenset[str]] = {
    "telegram": frozenset({"tgram"}),
    "email": frozenset({"mailto", "mailtos"}),
    "push": PUSH_SCHEMAS,
    "webhook": frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "http", "https"}),
    "console": frozenset({"console"}),
}


def channel_kind(url: str) -> str:
    """``telegram``, ``email``, ``push``, ``webhook``, ``console`` or ``other``, from the URL's schema."""
    schema = url.split("://", 1)[0].strip().lower() if "://" in url else ""
    return next((kind for kind, schemas in KIND_SCHEMAS.items() if schema in schemas), "other")


def render(
    alert: Alert,
    url: str,
    priority: Priority = Priority.NORMAL,
    sent_at: float | None = None,
    template: Template | None = None,
    *,
    sources: Sequence[str] | None = None,
    target: str | None = None,
) -> Message:
    """The message for ``alert`` on ``url``; ``sent_at`` (epoch seconds) defaults to now, ``sources`` (the
    feeds that reported its story, the first first) to the alert's, ``target`` (the delivery's URL
    digest, which an update's ``update_of`` is computed for) to the digest of ``url``."""
    if alert.is_digest:
        raise ValueError("a digest is rendered by alerts.delivery.digest_render")
    kind = channel_kind(url)
    if template is not None and template.kind != kind:
        raise ValueError(f"a {template.kind} template cannot render for a {kind} URL")
    renderer = _RENDERERS[kind]
    context = _Context(
        alert,
        Priority(priority),
        time.time() if sent_at is None else sent_at,
        url,
        tuple(alert.sources if sources is None else sources),
        ids.update_of(alert, digest(url) if target is None else target),
    )
    if template is None:
        return renderer(context, None, None)
    try:
        variables = {
            "alert": alert.to_json(),
            "priority": context.priority.value,
            "sent_at": iso(context.sent_at),
            "sources": list(context.sources),
            "update": alert.update,
            "update_of": context.update_of,
            "changes": list(alert.changes),
        }
        return renderer(context, template.render_title(variables), template.render_body(variables))
    except TemplateFailure as exc:
        return replace(renderer(context, None, None), template_error=str(exc))


def with_params(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` set in its query (keys are case-insensitive); its other pairs kept as-is."""
    base, _, query = url.partition("?")
    ours = {key.lower() for key in params}
    kept = [
        pair
        for pair in re.split(r"[&;]", query)
        if pair and unquote(pair.split("=", 1)[0]).strip().lower() not in ours
    ]
    added = [f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in params.items()]
    return base + ("?" + "&".join(kept + added) if kept or added else "")


def webhook_payload(
    alert: Alert,
    priority: Priority,
    sent_at: float,
    sources: Sequence[str] | None = None,
    update_of: str | None = None,
) -> dict[str, Any]:
    """Every field of an alert, JSON-safe: what a webhook's ``message`` holds. ``update_of``: for an update,
    the delivery id of its story's first alert to the same URL (its ``X-Alerts-Delivery``)."""
    categories = alert.extra.get("categories") or ()
    return {
        "schema": WEBHOOK_SCHEMA,
        "item": alert.item,
        "story": alert.story,
        "subscriber": alert.subscriber,
        "feed": alert.feed,
        "title": alert.title,
        "summary": alert.summary,
        "link": alert.link,
        "regions": list(alert.regions),
        "categories": [str(c) for c in categories] if isinstance(categories, list | tuple) else [],
        "subscriptions": list(alert.subscriptions),
        "terms": list(alert.terms),
        "published": alert.published,
        "first_seen": iso(alert.fetched_at) if alert.fetched_at else None,
        "sent_at": iso(sent_at),
        "priority": priority.value,
        "update": bool(alert.update),
        "update_of": update_of if alert.update else None,
        "sources": list(alert.sources if sources is None else sources),
        "changes": list(alert.changes),
    }


def headline(alert: Alert) -> str:
    """The alert's headline, whitespace collapsed (its link, or "(untitled)", when it has none)."""
    return _clean(alert.title or alert.link or "(untitled)")


def titled(alert: Alert) -> str:
    """The headline as a message shows it: ``Update: <headline>`` for a story's update."""
    return story_render.titled(alert, headline(alert))


def safe_link(alert: Alert) -> str | None:
    """The link when it is an absolute http(s) URL (never ``javascript:`` and the like)."""
    link = (alert.link or "").strip()
    return link if re.match(r"https?://[^\s/]", link, re.IGNORECASE) else None


def source(alert: Alert) -> str:
    """``feed · YYYY-MM-DD HH:MM UTC`` (the feed alone when the time is unknown)."""
    when = _when(alert.published)
    feed = shorten(_clean(alert.feed), FEED_LIMIT)
    return f"{feed} · {when}" if when else feed


@dataclass(frozen=True, slots=True)
class _Context:
    alert: Alert
    priority: Priority
    sent_at: float
    url: str
    sources: tuple[str, ...]
    update_of: str | None

    @property
    def headline(self) -> str:
        return headline(self.alert)

    @property
    def title(self) -> str:
        return titled(self.alert)

    @property
    def changed(self) -> str | None:
        return story_render.changed(self.alert)

    @property
    def also(self) -> str | None:
        return story_render.also_reported(self.alert, self.sources)

    @property
    def summary(self) -> str:
        summary = _clean(self.alert.summary)
        return "" if summary == self.headline else summary

    @property
    def source(self) -> str:
        return source(self.alert)

    @property
    def link(self) -> str | None:
        return safe_link(self.alert)


def _telegram(ctx: _Context, title: str | None, body: str | None) -> Message:
    head = f"<b>{escape(shorten(title or ctx.title, TITLE_LIMIT))}</b>"
    params = {"format": "html"} | ({"silent": "yes"} if ctx.priority is Priority.LOW else {})
    url = with_params(ctx.url, params)
    if body is not None:
        text = f"{head}\n{body}"
        if utf16(text) > TELEGRAM_LIMIT:
            raise TemplateFailure(f"telegram message too long ({utf16(text)} > {TELEGRAM_LIMIT} units)")
        return Message("", text, "html", url)
    lead = [head, *([escape(ctx.changed)] if ctx.changed else [])]
    tail = [f"<i>{escape(ctx.source)}</i>", *([escape(ctx.also)] if ctx.also else [])]
    link = []
    if ctx.link:
        link.append(f'<a href="{href(ctx.link)}">{escape(shorten(ctx.link, LINK_TEXT_LIMIT))}</a>')

    def assemble(summary: str) -> str:
        return "\n".join([*lead, *([escape(summary)] if summary else []), *tail, *link])

    if utf16(assemble("")) > TELEGRAM_LIMIT:  # a monstrous link: leave it out rather than cut it
        link = []
    summary = fit(ctx.summary, lambda s: utf16(assemble(s)) <= TELEGRAM_LIMIT)
    return Message("", assemble(summary), "html", url)


def _email(ctx: _Context, title: str | None, body: str | None) -> Message:
    subject = shorten(title or ctx.title, TITLE_LIMIT)
    url = with_params(ctx.url, {"format": "html"})
    if body is not None:
        return Message(subject, body, "html", url)
    parts = [f'<h2 dir="auto">{escape(subject)}</h2>']
    if ctx.changed:
        parts.append(f'<p dir="auto">{escape(ctx.changed)}</p>')
    if ctx.summary:
        parts.append(f'<p dir="auto">{escape(shorten(ctx.summary, EMAIL_SUMMARY_LIMIT))}</p>')
    parts.append(f'<p dir="auto">{escape(ctx.source)}</p>')
    if ctx.also:
        parts.append(f'<p dir="auto">{escape(ctx.also)}</p>')
    if ctx.link:
        parts.append(f'<p><a href="{href(ctx.link)}">{escape(ctx.link)}</a></p>')
    return Message(subject, '<div dir="auto">\n' + "\n".join(parts) + "\n</div>", "html", url)


def _push(ctx: _Context, title: str | None, body: str | None) -> Message:
    service = PUSH_SERVICES.get(ctx.url.split("://", 1)[0].lower(), PUSH_DEFAULT)
    params = {"format": "text"}
    if ctx.priority in service.priorities:
        params["priority"] = service.priorities[ctx.priority]
    if service.click and ctx.link and len(ctx.link) <= service.click_limit:
        params[service.click] = ctx.link.replace("%", "%25")  # the plugins unquote this value once more
    size: Callable[[str], int] = (lambda s: len(s.encode())) if service.in_bytes else len

    def fits(text: str) -> bool:
        return size(text) <= service.body_limit

    if body is None:
        lead = [fit(ctx.changed, fits)] if ctx.changed else []
        tail = [ctx.source, *([ctx.also] if ctx.also else [])]
        tail += [ctx.link] if ctx.link and service.click not in params else []
        tail = [fit(line, fits) for line in tail]
        summary = fit(ctx.summary, lambda s: fits("\n".join([*lead, s, *tail]))) if ctx.summary else ""
        body = "\n".join([line for line in [*lead, summary, *tail] if line])
    return Message(
        shorten(title or ctx.title, PUSH_TITLE_LIMIT),
        fit(body, fits),
        "text",
        with_params(ctx.url, params),
    )


def _webhook(ctx: _Context, title: str | None, body: str | None) -> Message:
    if body is None:
        payload = webhook_payload(ctx.alert, ctx.priority, ctx.sent_at, ctx.sources, ctx.update_of)
        body = json.dumps(payload, ensure_ascii=False)
    native = ctx.url.split("://", 1)[0].lower() in ("http", "https")  # posted as is, not through Apprise
    url = ctx.url if native else with_params(ctx.url, {"format": "text"})
    return Message(title or ctx.title, body, "text", url)


def _plain(ctx: _Context, title: str | None, body: str | None) -> Message:
    text = body or plain.body(ctx.alert, ctx.sources)
    return Message(title or plain.title(ctx.alert), text, "text", ctx.url)


_RENDERERS: dict[str, Callable[[_Context, str | None, str | None], Message]] = {
    "telegram": _telegram,
    "email": _email,
    "push": _push,
    "webhook": _webhook,
    "console": _plain,
    "other": _plain,
}
