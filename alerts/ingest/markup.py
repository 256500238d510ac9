"""Text out of markup, shared by the feed, HTML, JSON and article readers: visible text of a node or
a fragment, link-less item ids, links made absolute, and :func:`feed_item`, the one place every reader
builds its items (untrusted text cleaned and capped). Pure, no I/O (selectolax's Lexbor parser)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode
from w3lib.url import safe_url_string

from alerts.models import FeedItem
from alerts.text import clean, digest, normalise, truncate, visible

TITLE_LIMIT = 1000  # characters of an item's title, whatever the source kind
SUMMARY_LIMIT = 1000  # characters of its summary
CATEGORY_LIMIT = 200  # characters of one category
MAX_CATEGORIES = 100  # categories of one item

_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "main", "nav", "ol", "p",
        "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})


def node_text(node: LexborNode) -> str:
    """The visible text of ``node``: blocks separated, scripts and styles dropped, whitespace collapsed."""
    parts: list[str] = []
    stack: list[LexborNode | None] = [node]  # None closes a block element
    while stack:
        current = stack.pop()
        if current is None:
            parts.append(" ")
            continue
        tag = current.tag or ""
        if tag == "-text":
            parts.append(current.text_content or "")
        elif tag not in _SKIP and (not tag.startswith("-") or tag == "-document"):
            if tag in _BLOCK:
                parts.append(" ")
                stack.append(None)
            stack.extend(reversed(list(current.iter(include_text=True))))
    return clean("".join(parts))


def html_text(fragment: str) -> str:
    """Plain text of an HTML or text fragment (tags dropped, entities decoded, whitespace collapsed)."""
    if "<" not in fragment:
        return clean(html.unescape(fragment))
    body = LexborHTMLParser(f"<body>{fragment}").body
    return node_text(body) if body is not None else ""


def text_id(title: str) -> str:
    """The id of a link-less item: the same line re-spaced, re-cased or re-punctuated gets the same id."""
    return "text:" + digest(normalise(title) or clean(title).casefold())


def document_base(tree: LexborHTMLParser, base_url: str) -> str:
    """The URL that relative links resolve against: ``<base href>`` if the page has one."""
    base = tree.css_first("base[href]")
    href = base.attributes.get("href") if base is not None else None
    return (absolute_url(href, base_url) if href else None) or base_url


def absolute_url(value: str | None, base: str) -> str | None:
    """``value`` resolved against ``base`` as a URI (non-ASCII percent-encoded); None unless http(s)."""
    value = re.sub(r"[\t\n\r]", "", value or "").strip()
    if not value:
        return None
    try:
        url = urljoin(base, value)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return str(safe_url_string(url))
    except ValueError:
        return None


def feed_item(
    *,
    id: str,
    title: str,
    summary: str = "",
    link: str | None = None,
    published: datetime | None = None,
    categories: Iterable[str] = (),
) -> FeedItem:
    """A :class:`FeedItem` from what a reader found, its text made safe to store, log and send.

    Every reader (RSS/Atom/RDF/JSON Feed, HTML, JSON API) builds its items here, so the rules hold
    for every source kind: controls (C0, C1, DEL) and the bidi embeddings, overrides and isolates
    (U+202A-U+202E, U+2066-U+2069) are removed from the title, summary, categories and link (LRM and
    RLM stay); text is one line; the title is cut to TITLE_LIMIT characters and the summary to
    SUMMARY_LIMIT on a word boundary with an ellipsis, each category to CATEGORY_LIMIT, and no more
    than MAX_CATEGORIES are kept. The id is the reader's, as it found it (ids are digested for keys).
    """
    kept: dict[str, None] = {}
    for category in categories:
        if text := truncate(clean(category), CATEGORY_LIMIT):
            kept.setdefault(text)
            if len(kept) == MAX_CATEGORIES:
                break
    return FeedItem(
        id=id,
        title=truncate(clean(title), TITLE_LIMIT),
        summary=truncate(clean(summary), SUMMARY_LIMIT),
        link=(visible(link).strip() or None) if link else None,
        published=published,
        categories=tuple(kept),
    )


def bounded(item: FeedItem) -> FeedItem:
    """``item`` passed through :func:`feed_item` again: for code that completes an item after its reader
    (an article page's description or title), so what it adds is held to the same rules."""
    return feed_item(
        id=item.id,
        title=item.title,
        summary=item.summary,
        link=item.link,
        published=item.published,
        categories=item.categories,
    )
