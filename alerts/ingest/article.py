"""Article page -> :class:`ArticleMeta` for enriching an alert; pure, no I/O.

Two sources, field by field: the site's own JSON block ``<script id="tawsiyat-metadata"
type="text/tawsiyat">`` (url, postid, title, keywords, published_time, last_updated, author,
description, lang, type, classes) and the standard meta tags (Open Graph ``og:*``, ``article:*``,
``keywords``, ``description``, ``author``, the canonical link, ``<html lang>``). The JSON block wins
where it has a value; a missing, non-object or malformed block leaves the meta tags. Only an empty
body raises (:class:`FeedParseError`): any other page gives what it has, possibly nothing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from selectolax.lexbor import LexborHTMLParser

from alerts.errors import FeedParseError
from alerts.ingest.charset import decode_html
from alerts.ingest.dates import parse_time
from alerts.ingest.markup import absolute_url, document_base
from alerts.models import region_named
from alerts.text import clean

METADATA_SELECTOR = "script#tawsiyat-metadata"
_LIST_SEPARATORS = re.compile(r"[,،;]")  # Arabic pages separate keywords with "،" too
_LANG = re.compile(r"^[A-Za-z]{2,3}(?=$|[-_])")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    """What an article page says about itself; None (or ()) where it says nothing."""

    url: str | None
    title: str | None
    description: str | None
    author: str | None
    published: datetime | None
    updated: datetime | None
    category: str | None
    keywords: tuple[str, ...]
    lang: str | None
    region: str | None


def parse_article(body: bytes, url: str, content_type: str | None = None) -> ArticleMeta:
    """The metadata of the article page at ``url`` (relative URLs resolve against it)."""
    if not body or not body.strip():
        raise FeedParseError("empty body")
    tree = LexborHTMLParser(decode_html(body, content_type))
    base = document_base(tree, url)
    data = _metadata_block(tree)
    meta = _meta_tags(tree)

    def tag(*names: str) -> str | None:
        """The first non-empty content among meta tags ``names``."""
        return next((value for name in names for value in meta.get(name, ()) if value), None)

    classes = _classes(data.get("classes"))
    keywords = _keywords(data.get("keywords")) or _keywords(
        [*(meta.get("keywords") or ()), *(meta.get("article:tag") or ())]
    )
    category = next((value for mapping, value in classes if mapping == "category"), None)
    category = category or tag("article:section")
    canonical = tree.css_first("link[rel~='canonical'][href]")
    title_node, root = tree.css_first("title"), tree.css_first("html")
    return ArticleMeta(
        url=_first(
            absolute_url(_text(data.get("url")), base),
            absolute_url(tag("og:url"), base),
            absolute_url(canonical.attributes.get("href") if canonical is not None else None, base),
            absolute_url(url, url),
        ),
        title=_first(
            _text(data.get("title")),
            tag("og:title", "twitter:title"),
            clean(title_node.text()) if title_node is not None else None,
        ),
        description=_first(_text(data.get("description")), tag("og:description", "description")),
        author=_first(_author(data.get("author")), tag("author", "article:author")),
        published=_first(
            parse_time(data.get("published_time")),
            parse_time(tag("article:published_time", "datepublished")),
        ),
        updated=_first(
            parse_time(data.get("last_updated")),
            parse_time(tag("article:modified_time", "og:updated_time", "datemodified")),
        ),
        category=category,
        keywords=keywords,
        lang=_first(
            _lang(_text(data.get("lang"))),
            _lang(root.attributes.get("lang") if root is not None else None),
            _lang(tag("og:locale")),
        ),
        region=_region(
            [value for mapping, value in classes if mapping == "region"],
            [value for _, value in classes],
            keywords,
            [category or ""],
        ),
    )


def _first(*values: _T | None) -> _T | None:
    """The first value that is neither None nor empty: the JSON block's, else the meta tags'."""
    return next((value for value in values if value), None)


def _metadata_block(tree: LexborHTMLParser) -> dict[str, Any]:
    """The tawsiyat JSON object, or {} when the page has none or it does not parse."""
    script = tree.css_first(METADATA_SELECTOR)
    raw = script.text(deep=True) if script is not None else ""
    raw = raw.strip().removeprefix("<!--").removesuffix("-->").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _meta_tags(tree: LexborHTMLParser) -> dict[str, list[str]]:
    """Every ``<meta>`` content by lower-cased property, name or itemprop, in document order."""
    found: dict[str, list[str]] = {}
    for node in tree.css("meta[content]"):
        attributes = node.attributes
        content = clean(html.unescape(attributes.get("content") or ""))
        for key in ("property", "name", "itemprop"):
            if name := (attributes.get(key) or "").strip().lower():
                found.setdefault(name, []).append(content)
    return found


def _text(value: Any) -> str | None:
    """A JSON string value cleaned (entities decoded, whitespace collapsed), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return clean(html.unescape(str(value))) or None


def _author(value: Any) -> str | None:
    """An author given as a string, an object with a name, or a list of either."""
    if isinstance(value, dict):
        return _text(value.get("name"))
    if isinstance(value, list):
        names = [name for name in (_author(each) for each in value) if name]
        return ", ".join(dict.fromkeys(names)) or None
    return _text(value)


def _keywords(value: Any) -> tuple[str, ...]:
    """Keywords from a comma-separated string or a list of strings: cleaned, no blanks or repeats."""
    parts: Iterable[Any] = value if isinstance(value, list) else [value]
    seen: dict[str, str] = {}
    for part in parts:
        text = _text(part)
        for keyword in _LIST_SEPARATORS.split(text or ""):
            if keyword := clean(keyword):
                seen.setdefault(keyword.casefold(), keyword)
    return tuple(seen.values())


def _classes(value: Any) -> list[tuple[str, str]]:
    """The (mapping, value) pairs of the ``classes`` list, mapping lower-cased; malformed ones dropped."""
    pairs = []
    for entry in value if isinstance(value, list) else ():
        if isinstance(entry, dict) and (text := _text(entry.get("value"))):
            pairs.append(((_text(entry.get("mapping")) or "").casefold(), text))
    return pairs


def _lang(value: str | None) -> str | None:
    """The primary language subtag, lower-cased: "en-US" and "en_US" give "en"."""
    match = _LANG.match((value or "").strip())
    return match.group(0).lower() if match else None


def _region(*candidates: Iterable[str]) -> str | None:
    """The first of the site's regions named by the candidates, in the order given."""
    for group in candidates:
        for value in group:
            if region := region_named(value):
                return region
    return None
