"""Feed bytes -> normalised :class:`FeedItem` list; pure, no I/O.

This is the only module that imports fastfeedparser and feedparser. fastfeedparser is the fast
path; feedparser (10-25x slower here, more forgiving about encodings and odd documents) is the
fallback when fastfeedparser raises, yields no usable item, or leaves undecodable bytes (U+FFFD)
in the text. Only :class:`FeedParseError` escapes.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import fastfeedparser
import feedparser
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from alerts.errors import FeedParseError
from alerts.ingest.dates import parse_time
from alerts.models import FeedItem
from alerts.text import truncate

SUMMARY_LIMIT = 1000
_MESSAGE_LIMIT = 160
_BLOCK_TAGS = (
    "address", "article", "blockquote", "br", "dd", "div", "dt", "figcaption", "figure", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "ol", "p", "pre", "section",
    "table", "td", "th", "tr", "ul",
)  # fmt: skip
_RAW_SUMMARY_LIMIT = 50 * SUMMARY_LIMIT  # most HTML parsed for one summary
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")  # the other C0 controls are whitespace to str.split
_TAG = re.compile(r"<[^>]*>")
# Positions (off by feedparser's own prologue) and fastfeedparser's echo of the body's first bytes.
_NOISE = re.compile(r"^<unknown>:\d+:\d+: | \(first \d+ chars:.*$")
_local = threading.local()


def parse_feed(body: bytes, base_url: str, content_type: str | None = None) -> list[FeedItem]:
    """Parse RSS 0.9x/1.0/2.0, RDF, Atom or JSON Feed bytes into normalised items.

    Items keep the document order (newest first in news feeds). A well-formed feed without items
    gives []; an empty body, or a broken or non-feed document with no usable item, raises
    :class:`FeedParseError`.
    """
    if not body or not body.strip():
        raise FeedParseError("empty body")
    is_json = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
    ffp_error: str | None = None
    try:
        doc = fastfeedparser.parse(body)
        items = _items(doc.get("entries") or [], doc.get("feed") or {}, base_url)
    except Exception as exc:
        ffp_error = _brief(exc)
    else:
        if items and _mojibake(items) and b"\xef\xbf\xbd" not in body:
            return _prefer_feedparser(items, body, base_url, content_type)
        if items or is_json:  # feedparser cannot read JSON Feed: a parsed one with no items is []
            return items
    if is_json:
        raise FeedParseError("not a feed: not a valid JSON Feed")
    return _parse_with_feedparser(body, base_url, content_type, ffp_error)


def _parse_with_feedparser(
    body: bytes, base_url: str, content_type: str | None, ffp_error: str | None
) -> list[FeedItem]:
    """The slow, forgiving path; decides between [] (well-formed, no items) and FeedParseError."""
    headers = {"content-location": base_url, "content-type": content_type or "application/xml"}
    try:  # A BytesIO, never bytes: feedparser would treat bytes as a file name and open it.
        doc = feedparser.parse(
            io.BytesIO(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
        entries = doc.get("entries") or []
        items = _items(entries, doc.get("feed") or {}, base_url)
    except Exception as exc:
        raise FeedParseError(f"not a feed: {ffp_error or _brief(exc)}") from None
    if items:
        return items
    if doc.get("bozo"):
        bozo = doc.get("bozo_exception")
        reason = ffp_error or (
            f"ill-formed XML ({_brief(bozo)})"
            if isinstance(bozo, SAXParseException)
            else _brief(bozo or "ill-formed document")
        )
        raise FeedParseError(
            f"no usable items in ill-formed feed: {reason}" if entries else f"not a feed: {reason}"
        )
    if not doc.get("version"):
        raise FeedParseError(f"not a feed: {ffp_error or 'unrecognised document'}")
    return []


def _prefer_feedparser(
    items: list[FeedItem], body: bytes, base_url: str, content_type: str | None
) -> list[FeedItem]:
    """feedparser's reading when it decodes better (fastfeedparser assumes UTF-8 when undeclared)."""
    try:
        other = _parse_with_feedparser(body, base_url, content_type, None)
    except FeedParseError:
        return items
    return other if other and _mojibake(other) < _mojibake(items) else items


def _mojibake(items: list[FeedItem]) -> int:
    """How many U+FFFD replacement characters (bytes that did not decode) the items' text holds."""
    return sum(item.title.count("\ufffd") + item.summary.count("\ufffd") for item in items)


def _items(entries: Iterable[Mapping[str, Any]], feed: Mapping[str, Any], base_url: str) -> list[FeedItem]:
    """Normalise entries from either library, dropping those with neither title nor link."""
    feed_link = _link(_str(feed.get("link")), base_url)
    base = feed_link or base_url
    items = []
    for entry in entries:
        title = _text(_str(entry.get("title")))
        raw_link = _str(entry.get("link")).strip() or _alternate(entry.get("links"))
        link = _link(raw_link, base)
        if not title and not link:
            continue
        raw_summary = _str(entry.get("description")) or _str(entry.get("summary")) or _content(entry)
        raw_id = entry.get("id")
        guid = str(raw_id).strip() if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
        if guid == raw_link:  # fastfeedparser copies a missing guid from the link, maybe relative
            guid = ""
        items.append(
            FeedItem(
                id=guid or link or "sha1:" + hashlib.sha1(title.encode()).hexdigest(),
                title=title,
                summary=_summary(raw_summary),
                link=link,
                published=_date(entry, "published") or _date(entry, "updated"),
                categories=_categories(entry.get("tags")),
            )
        )
    return items


def _text(value: str) -> str:
    """Plain text from an HTML or text fragment: tags dropped, entities unescaped, whitespace collapsed."""
    if "<" in value:
        try:
            root = etree.fromstring(value, _html_parser())
        except Exception:  # invalid characters, encoding declarations: fall back to a regex
            root = None
        if root is None:
            value = html.unescape(_TAG.sub(" ", value))
        else:
            etree.strip_elements(root, "script", "style", with_tail=False)
            for element in root.iter(*_BLOCK_TAGS):
                element.tail = " " + (element.tail or "")
            value = "".join(root.itertext())
    elif "&" in value:
        value = html.unescape(value)
    return " ".join(_CONTROL.sub("", value).split())


def _summary(raw: str) -> str:
    """Plain-text summary of at most SUMMARY_LIMIT characters; parses only as much HTML as it needs."""
    for size in (4 * SUMMARY_LIMIT, _RAW_SUMMARY_LIMIT):
        text = _text(raw[:size])
        if len(text) > SUMMARY_LIMIT or len(raw) <= size:
            break
    return truncate(text, SUMMARY_LIMIT)


def _html_parser() -> Any:
    """One lxml HTML parser per thread (lxml parsers must not be shared across threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            recover=True, no_network=True, remove_comments=True, remove_pis=True
        )
    return parser


def _str(value: Any) -> str:
    """``value`` if it is a string, else ''."""
    return value if isinstance(value, str) else ""


def _link(value: str, base: str) -> str | None:
    """``value`` made absolute against ``base``; None unless it is an http(s) URL."""
    value = value.strip()
    if not value:
        return None
    try:
        url = urljoin(base, value)
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _alternate(links: Any) -> str:
    """The href of the first alternate link in a ``links`` list."""
    for link in links if isinstance(links, list) else ():
        if isinstance(link, Mapping) and link.get("rel", "alternate") == "alternate":
            return _str(link.get("href"))
    return ""


def _content(entry: Mapping[str, Any]) -> str:
    """The value of the first content block, if any."""
    content = entry.get("content")
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return _str(content[0].get("value"))
    return ""


def _date(entry: Mapping[str, Any], key: str) -> datetime | None:
    """``entry[key]`` as an aware UTC datetime: feedparser's struct_time, else an ISO/RFC 822 string."""
    try:
        parsed = entry.get(f"{key}_parsed")
        if isinstance(parsed, time.struct_time):
            return datetime(*parsed[:5], min(parsed.tm_sec, 59), tzinfo=UTC)
    except (ValueError, TypeError, OverflowError):
        return None
    return parse_time(_str(entry.get(key)))


def _categories(tags: Any) -> tuple[str, ...]:
    """Tag terms (else labels), cleaned, without blanks or repeats, in document order."""
    seen: dict[str, None] = {}
    for tag in tags if isinstance(tags, list) else ():
        if isinstance(tag, Mapping) and (term := _text(_str(tag.get("term")) or _str(tag.get("label")))):
            seen.setdefault(term)
    return tuple(seen)


def _brief(error: object) -> str:
    """A one-line, bounded description of a parser error."""
    text = _NOISE.sub("", " ".join(str(error).split())) or type(error).__name__
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
