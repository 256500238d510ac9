"""Feed bytes -> normalised :class:`FeedItem` list; pure, no I/O.

This is the only module that imports fastfeedparser and feedparser. fastfeedparser is the fast
path; feedparser (10-25x slower here, more forgiving about encodings and odd documents) reads what
the fast path would misread: documents :func:`~alerts.ingest.feedcheck.fast_path_hazard` flags
(undeclared entities, ill-formed XML, namespaced shadowing, xhtml, xml:base, a contrary HTTP
charset), and those on which fastfeedparser raises, yields no usable item, or leaves undecodable
bytes (U+FFFD) in the text. Before either, a document whose DTD declares entities (the billion laughs,
external entities) is refused with :class:`EntitiesRefused`. Items are built by
:func:`alerts.ingest.markup.feed_item`, which cleans and caps their text for every source kind. Only
:class:`FeedParseError` escapes (EntitiesRefused is one, and a :class:`FeedRejected` too).
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

from alerts.errors import FeedParseError, FeedRejected
from alerts.ingest.charset import undeclared_as_utf8, utf8_read_as_latin1, windows_1252_controls
from alerts.ingest.dates import parse_time
from alerts.ingest.feedcheck import declared_entity, fast_path_hazard
from alerts.ingest.markup import SUMMARY_LIMIT, TITLE_LIMIT, feed_item
from alerts.models import FeedItem
from alerts.text import clean, truncate

__all__ = ["SUMMARY_LIMIT", "SUMMARY_TITLE_LIMIT", "TITLE_LIMIT", "EntitiesRefused", "parse_feed"]

SUMMARY_TITLE_LIMIT = 200  # the title made from the summary of an item that has none (RSS allows it)
_MESSAGE_LIMIT = 160
_BLOCK_TAGS = (
    "address", "article", "blockquote", "br", "dd", "div", "dt", "figcaption", "figure", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "ol", "p", "pre", "section",
    "table", "td", "th", "tr", "ul",
)  # fmt: skip
_RAW_SUMMARY_LIMIT = 50 * SUMMARY_LIMIT  # most HTML parsed for one summary
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")  # the other C0 controls are whitespace to str.split
_TAG = re.compile(r"<[^>]*>")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SYNTHESIS_HTML = 2048  # how much of the content fastfeedparser strips to make up a description
_SYNTHESIS_LIMIT = 512  # and where it cuts the text
_HIDDEN = re.compile("<(?:script|style)", re.IGNORECASE)
# Positions (off by feedparser's own prologue) and fastfeedparser's echo of the body's first bytes.
_NOISE = re.compile(r"^<unknown>:\d+:\d+: | \(first \d+ chars:.*$")
_local = threading.local()


class EntitiesRefused(FeedRejected, FeedParseError):
    """Raised for a document whose DTD declares XML entities: refused, never parsed.

    A FeedRejected (the document will not become safe by asking again) and a FeedParseError (no feed
    could be read): the poll records it as a failure and logs it as ``feed.rejected`` with the reason.
    """


def parse_feed(body: bytes, base_url: str, content_type: str | None = None) -> list[FeedItem]:
    """Parse RSS 0.9x/1.0/2.0, RDF, Atom or JSON Feed bytes into normalised items.

    Items keep the document order (newest first in news feeds). A well-formed feed without items
    gives []; an empty body, or a broken or non-feed document with no usable item, raises
    :class:`FeedParseError`; a document that declares XML entities, :class:`EntitiesRefused`.
    ``content_type`` is the HTTP header, whose charset counts.
    """
    if not body or not body.strip():
        raise FeedParseError("empty body")
    is_json = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
    if not is_json:
        body = undeclared_as_utf8(body, content_type)
        if (entity := declared_entity(body)) is not None:
            named = f": {_brief(repr(entity))} in its DOCTYPE" if entity else ""
            raise EntitiesRefused(
                f"the document declares XML entities (billion laughs / XXE){named};"
                " refused as defusedxml does"
            )
    hazard = None if is_json else fast_path_hazard(body, content_type)
    tolerant: tuple[list[FeedItem], Any] | None = None
    if hazard:
        tolerant = _read_with_feedparser(body, base_url, content_type)
        if tolerant[0]:
            return tolerant[0]  # else fastfeedparser's reading, if any, is all there is
    ffp_error: str | None = None
    try:
        doc = fastfeedparser.parse(body)
        items = _items(doc.get("entries") or [], doc.get("feed") or {}, base_url, fast=True)
    except Exception as exc:
        ffp_error = _brief(exc)
    else:
        if items and not hazard and _mojibake(items) and b"\xef\xbf\xbd" not in body:
            return _prefer_feedparser(items, body, base_url, content_type)
        if items or is_json:  # feedparser cannot read JSON Feed: a parsed one with no items is []
            return items
    if is_json:
        raise FeedParseError("not a feed: not a valid JSON Feed")
    if tolerant is None:
        tolerant = _read_with_feedparser(body, base_url, content_type)
    return tolerant[0] or _no_items(tolerant[1], ffp_error)


def _parse_with_feedparser(
    body: bytes, base_url: str, content_type: str | None, ffp_error: str | None
) -> list[FeedItem]:
    """The slow, forgiving path; decides between [] (well-formed, no items) and FeedParseError."""
    items, result = _read_with_feedparser(body, base_url, content_type)
    return items or _no_items(result, ffp_error)


def _read_with_feedparser(body: bytes, base_url: str, content_type: str | None) -> tuple[list[FeedItem], Any]:
    """feedparser's items and its result (the exception when it or the normalisation raised)."""
    headers = {"content-location": base_url, "content-type": content_type or "application/xml"}
    try:  # A BytesIO, never bytes: feedparser would treat bytes as a file name and open it.
        doc = feedparser.parse(
            io.BytesIO(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
        return _items(doc.get("entries") or [], doc.get("feed") or {}, base_url), doc
    except Exception as exc:
        return [], exc


def _no_items(doc: Any, ffp_error: str | None) -> list[FeedItem]:
    """[] for a well-formed feed that has no usable item; else FeedParseError naming the reason."""
    if isinstance(doc, Exception):
        raise FeedParseError(f"not a feed: {ffp_error or _brief(doc)}")
    if doc.get("bozo"):
        bozo = doc.get("bozo_exception")
        reason = ffp_error or (
            f"ill-formed XML ({_brief(bozo)})"
            if isinstance(bozo, SAXParseException)
            else _brief(bozo or "ill-formed document")
        )
        raise FeedParseError(
            f"no usable items in ill-formed feed: {reason}" if doc.get("entries") else f"not a feed: {reason}"
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


def _items(
    entries: Iterable[Mapping[str, Any]], feed: Mapping[str, Any], base_url: str, fast: bool = False
) -> list[FeedItem]:
    """Normalise entries from either library, dropping those with no title, link or summary text.

    An item with only a description (RSS allows it; microblogs publish them) is titled with the
    start of its summary. ``fast``: fastfeedparser's entries, whose description or id may be its own.
    """
    feed_link = _link(_str(feed.get("link")), base_url)
    base = feed_link or base_url
    items = []
    for entry in entries:
        title = _text(_str(entry.get("title")))
        raw_link = _str(entry.get("link")).strip() or _alternate(entry.get("links"))
        link = _link(raw_link, base)
        summary = _summary(_raw_summary(entry, fast))
        if not title and not link and not summary:
            continue
        title = title or truncate(summary, SUMMARY_TITLE_LIMIT)
        raw_id = entry.get("id")
        guid = str(raw_id).strip() if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
        if fast and guid == raw_link and not _SCHEME.match(guid):
            guid = ""  # fastfeedparser copies a missing guid from the link: the absolute link is the id
        items.append(
            feed_item(
                id=guid or link or "sha1:" + hashlib.sha1(title.encode()).hexdigest(),
                title=title,
                summary=summary,
                link=link,
                published=_date(entry, "published") or _date(entry, "updated"),
                categories=_categories(entry.get("tags")),
            )
        )
    return items


def _raw_summary(entry: Mapping[str, Any], fast: bool) -> str:
    """The entry's description (else summary, else content), as the publisher wrote it.

    fastfeedparser makes up a missing description from the content with its tags cut out, which
    keeps script text and stops at 512 characters: the content itself is read then.
    """
    description = _str(entry.get("description")) or _str(entry.get("summary"))
    content = _content(entry)
    if not description or (fast and content and _made_up_from(description, content)):
        return content
    return description


def _made_up_from(description: str, content: str) -> bool:
    """Whether ``description`` is fastfeedparser's own: HTML ``content`` stripped, cut at 512 characters.

    Only a cut one, or one from content with scripts or styles, reads differently from the content.
    """
    if len(description) != _SYNTHESIS_LIMIT and not _HIDDEN.search(content, 0, _SYNTHESIS_HTML):
        return False
    if "<" not in content or "<" in description:
        return False
    text = " ".join(html.unescape(_TAG.sub(" ", content[:_SYNTHESIS_HTML])).split())
    made_up = " ".join(description.split())
    return text.startswith(made_up) and (len(description) == _SYNTHESIS_LIMIT or made_up == text)


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
            for frame in root.iter("iframe"):  # its fallback markup comes back as raw text
                frame.text = html.unescape(_TAG.sub(" ", frame.text or ""))
            for element in root.iter(*_BLOCK_TAGS):
                element.tail = " " + (element.tail or "")
            value = "".join(root.itertext())
    elif "&" in value:
        value = html.unescape(value)
    value = _CONTROL.sub("", value)
    if not value.isascii():  # misdecoded text: UTF-8 read as Latin-1, windows-1252 read as Latin-1
        value = windows_1252_controls(utf8_read_as_latin1(value))
    return clean(value)  # the C1 controls left once those are repaired, bidi embeddings, whitespace


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
