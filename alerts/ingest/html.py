"""HTML pages and tickers -> :class:`FeedItem` list through CSS selectors; pure, no I/O.

For sites that publish no feed (the reference site answers bots with 403 on its RSS guesses), a
source names the CSS selector of one item and, relative to it, of its title, link, time and summary.

Parser: selectolax's Lexbor engine rather than lxml + cssselect. Lexbor builds the HTML5 tree a
browser builds, so a selector read off a browser's inspector or a public scraper selects the same
elements here; it evaluates CSS natively (``:has``, ``:is``, ``:not`` with lists) where cssselect
translates to XPath 1.0 and lacks some of them; it parses and queries a news home page several times
faster than lxml; and it ships type hints (lxml has none in this project). Decoding stays ours
(:mod:`alerts.ingest.charset`), since Lexbor alone reads undeclared bytes as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from alerts.errors import FeedParseError
from alerts.ingest.charset import decode_html
from alerts.ingest.dates import parse_time
from alerts.ingest.markup import TITLE_LIMIT, absolute_url, document_base, feed_item, node_text, text_id
from alerts.models import FeedItem
from alerts.text import clean, truncate

_ATTRIBUTE = re.compile(r"@([A-Za-z_:][-\w:.]*)\s*$")
_KEYS = ("item", "title", "link", "time", "summary", "categories")


@dataclass(frozen=True, slots=True)
class Selectors:
    """Where the items of an HTML page are: CSS, optionally ``css@attribute``; validated on creation.

    ``item`` selects each item; the others are relative to the item (its descendants, as with
    ``querySelector``) and take the first match; ``@attr`` alone reads the item's own attribute.
    Without ``@``, ``link`` reads ``href``, ``time`` reads ``datetime`` (else the text), and the
    others read the text. ``title`` None means the item's own text.
    """

    item: str
    title: str | None = None
    link: str | None = None
    time: str | None = None
    summary: str | None = None
    categories: str | None = None  # every match, e.g. ".tags a"; region names among them count

    def __post_init__(self) -> None:
        for name in _KEYS:
            spec = getattr(self, name)
            if spec is not None or name == "item":
                _field(name, spec)

    @classmethod
    def parse(cls, mapping: Mapping[str, str]) -> Selectors:
        """Selectors from a config mapping; ValueError with a clear message when one is wrong."""
        unknown = sorted(str(key) for key in mapping if key not in _KEYS)
        if unknown:
            raise ValueError(f"unknown selector key(s) {', '.join(unknown)}; expected {', '.join(_KEYS)}")
        if not mapping.get("item"):
            raise ValueError("selectors: 'item' is required (the CSS selector that matches each item)")
        for key, value in mapping.items():
            if not isinstance(value, str):
                raise ValueError(f"selectors.{key}: expected a string, got {type(value).__name__}")
        return cls(**{key: value.strip() for key, value in mapping.items()})


def parse_html(
    body: bytes, base_url: str, selectors: Selectors, content_type: str | None = None
) -> list[FeedItem]:
    """The items of an HTML page in document order, one per distinct id.

    Ids: the link if there is one, else :func:`text_id` of the title. Items without title text are
    skipped. A page where the item selector matches nothing, or only empty elements, raises
    :class:`FeedParseError`: a page whose markup changed must show in the logs.
    """
    if not body or not body.strip():
        raise FeedParseError("empty body")
    tree = LexborHTMLParser(decode_html(body, content_type))
    base = document_base(tree, base_url)
    nodes = tree.css(selectors.item)
    if not nodes:
        raise FeedParseError(f"selector {selectors.item!r} matched nothing")
    items: dict[str, FeedItem] = {}
    for node in nodes:
        item = _item(node, selectors, base)
        if item is not None:
            items.setdefault(item.id, item)
    if not items:
        raise FeedParseError(
            f"selector {selectors.item!r} matched {len(nodes)} element(s), none with a title"
        )
    return list(items.values())


def _item(node: LexborNode, selectors: Selectors, base: str) -> FeedItem | None:
    """One item, or None when it has no title text."""
    title = truncate(_read(node, selectors.title, "title"), TITLE_LIMIT)
    if not title:
        return None
    link = absolute_url(_read(node, selectors.link, "link"), base) if selectors.link else None
    categories: dict[str, None] = {}
    if selectors.categories:
        css, attr = _field("categories", selectors.categories)
        for match in _matches(node, css):
            if value := _value(match, attr, "categories"):
                categories.setdefault(value)
    return feed_item(
        id=link or text_id(title),
        title=title,
        summary=_read(node, selectors.summary, "summary"),
        link=link,
        published=parse_time(_read(node, selectors.time, "time")) if selectors.time else None,
        categories=tuple(categories),
    )


def _read(node: LexborNode, spec: str | None, name: str) -> str:
    """The cleaned value that ``spec`` selects in ``node`` ('' when nothing matches)."""
    if spec is None:
        return node_text(node) if name == "title" else ""
    css, attr = _field(name, spec)
    target = next(iter(_matches(node, css)), None)
    return _value(target, attr, name) if target is not None else ""


def _matches(node: LexborNode, css: str) -> list[LexborNode]:
    """Descendants of ``node`` that ``css`` selects (``node`` itself when ``css`` is empty)."""
    if not css:
        return [node]
    return [match for match in node.css(css) if match.mem_id != node.mem_id]


def _value(node: LexborNode, attr: str | None, name: str) -> str:
    """An attribute of ``node`` (``href`` for links, ``datetime`` for times), else its text."""
    attr = attr or {"link": "href", "time": "datetime"}.get(name)
    if attr and (value := node.attributes.get(attr)):
        return clean(value)
    return "" if name == "link" else node_text(node)


@lru_cache(maxsize=1024)
def _field(name: str, spec: str) -> tuple[str, str | None]:
    """``spec`` split into (css, attribute); ValueError naming the field when it is not valid."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"selectors.{name}: expected a CSS selector, got {spec!r}")
    spec = spec.strip()
    match = _ATTRIBUTE.search(spec)
    css, attr = (spec[: match.start()].strip(), match.group(1).lower()) if match else (spec, None)
    if name == "item" and (attr or not css):
        raise ValueError(f"selectors.item: {spec!r} must be a CSS selector of elements, without '@attribute'")
    if css:
        try:
            LexborHTMLParser("").css(css)
        except SelectolaxError:
            raise ValueError(f"selectors.{name}: {css!r} is not a valid CSS selector") from None
    return css, attr
