"""JSON API responses -> :class:`FeedItem` list through a JMESPath field mapping; pure, no I/O.

For ``format: json`` sources: ``items`` selects the list of entries in the document; the other
expressions are evaluated on each entry. Nested paths (``links.web``), projections and functions
(``join(' ', [kicker, headline])``) are JMESPath's. Titles and summaries may hold HTML (WordPress's
``title.rendered``): tags are dropped and entities decoded. Times are ISO 8601, RFC 2822 or epoch
seconds or milliseconds. Ids: the ``id`` expression's value if any, else the link, else the same
text id as link-less HTML ticker lines (:func:`alerts.ingest.markup.text_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

from alerts.errors import FeedParseError
from alerts.ingest.dates import parse_time
from alerts.ingest.markup import TITLE_LIMIT, absolute_url, feed_item, html_text, text_id
from alerts.models import FeedItem
from alerts.text import truncate

_KEYS = ("items", "title", "link", "time", "summary", "id", "categories")
_REQUIRED = ("items", "title")
_FUNCTIONS: dict[str, Any] = dict(Functions().FUNCTION_TABLE)


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """JMESPath expressions: ``items`` on the document, the others on each item; compiled on creation."""

    items: str
    title: str
    link: str | None = None
    time: str | None = None
    summary: str | None = None
    id: str | None = None
    categories: str | None = None  # a string or a list of strings; region names among them count

    def __post_init__(self) -> None:
        for name in _KEYS:
            expression = getattr(self, name)
            if expression is not None or name in _REQUIRED:
                _check(name, expression)

    @classmethod
    def parse(cls, mapping: Mapping[str, str]) -> JsonMapping:
        """A mapping from config; ValueError naming the field whose expression is missing or bad."""
        unknown = sorted(str(key) for key in mapping if key not in _KEYS)
        if unknown:
            raise ValueError(f"unknown json mapping key(s) {', '.join(unknown)}; expected {', '.join(_KEYS)}")
        for key in _REQUIRED:
            if not mapping.get(key):
                raise ValueError(f"json mapping: {key!r} is required (a JMESPath expression)")
        for key, value in mapping.items():
            if not isinstance(value, str):
                raise ValueError(
                    f"json mapping {key!r}: expected a JMESPath string, got {type(value).__name__}"
                )
        return cls(**{key: value.strip() for key, value in mapping.items()})


def parse_json_api(body: bytes, base_url: str, mapping: JsonMapping) -> list[FeedItem]:
    """The items of a JSON document in order, one per distinct id; entries without a title skipped."""
    if not body or not body.strip():
        raise FeedParseError("empty body")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FeedParseError(f"not JSON: {exc}") from None
    entries = _search(mapping.items, document)
    if not isinstance(entries, list):
        raise FeedParseError(f"items {mapping.items!r} gave {_kind(entries)}, not a list")
    items: dict[str, FeedItem] = {}
    for entry in entries:
        title = truncate(_text(_search(mapping.title, entry)), TITLE_LIMIT)
        if not title:
            continue
        link = absolute_url(_scalar(_search(mapping.link, entry)), base_url) if mapping.link else None
        raw_id = _scalar(_search(mapping.id, entry)) if mapping.id else ""
        item = feed_item(
            id=raw_id or link or text_id(title),
            title=title,
            summary=_text(_search(mapping.summary, entry)) if mapping.summary else "",
            link=link,
            published=parse_time(_search(mapping.time, entry)) if mapping.time else None,
            categories=_categories(_search(mapping.categories, entry)) if mapping.categories else (),
        )
        items.setdefault(item.id, item)
    return list(items.values())


def _check(name: str, expression: Any) -> None:
    """ValueError naming the field when ``expression`` is missing or does not compile."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"json mapping {name!r}: expected a JMESPath expression, got {expression!r}")
    try:
        problem = _function_problem(_compiled(expression).parsed)
    except JMESPathError as exc:
        problem = " ".join(str(exc).split())
    if problem:
        raise ValueError(f"json mapping {name!r}: invalid JMESPath {expression!r}: {problem}")


def _function_problem(node: Any) -> str | None:
    """An unknown function or a wrong argument count in a parsed expression (jmespath finds these late)."""
    if not isinstance(node, dict):
        return None
    if node.get("type") == "function_expression":
        name, count = str(node.get("value")), len(node.get("children") or ())
        entry = _FUNCTIONS.get(name)
        if entry is None:
            return f"unknown function {name}()"
        signature = entry["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if count < len(signature) or (count > len(signature) and not variadic):
            wanted = f"{len(signature)}{' or more' if variadic else ''}"
            return f"{name}() takes {wanted} argument(s), got {count}"
    for child in node.get("children") or ():
        if problem := _function_problem(child):
            return problem
    return None


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> ParsedResult:
    """``expression`` compiled once per process."""
    return jmespath.compile(expression)


def _search(expression: str | None, data: Any) -> Any:
    """The value of ``expression`` on ``data``; None when absent or when a function rejects its input."""
    if expression is None:
        return None
    try:
        return _compiled(expression).search(data)
    except JMESPathError:
        return None


def _scalar(value: Any) -> str:
    """A string or integer value as a stripped string ('' for anything else)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def _text(value: Any) -> str:
    """Plain text of a string (HTML allowed) or number; a list of strings is joined with spaces."""
    if isinstance(value, list):
        return html_text(" ".join(part for part in value if isinstance(part, str)))
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return html_text(str(value))


def _categories(value: Any) -> tuple[str, ...]:
    """Category names from a string or a list of strings: cleaned, no blanks or repeats."""
    values = value if isinstance(value, list) else [value]
    return tuple(dict.fromkeys(text for text in (_text(each) for each in values) if text))


def _kind(value: Any) -> str:
    """How a JSON value reads in an error message."""
    if value is None:
        return "nothing"
    return {dict: "an object", str: "a string", bool: "a boolean"}.get(type(value), "a number")
