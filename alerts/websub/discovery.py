"""Find a topic's WebSub hub: ``rel="hub"`` and ``rel="self"`` links, from the Link header or the feed.

Pure, no I/O. The spec (W3C WebSub §4) has publishers advertise both links in HTTP Link headers
(RFC 8288) and lets subscribers fall back to links embedded in the document: Atom
``<link rel="hub" href="…"/>`` children of ``<feed>``, RSS ``<atom:link rel="hub" href="…"/>``
children of ``<channel>``. The header wins; a ``self`` missing from it is looked up in the
document, then taken from ``base_url`` (the URL the feed was fetched from) when one is given.

Documents are parsed with a parser that loads no DTD, resolves no entity and opens no network
connection; anything malformed yields None, never an exception.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Hub", "discover", "parse_link_header"]

ATOM = "http://www.w3.org/2005/Atom"
_ATOM_LINK = f"{{{ATOM}}}link"
_ATOM_FEED = f"{{{ATOM}}}feed"
_WS = " \t\r\n"

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Hub:
    """Where to subscribe (``hub_url``) and the canonical URL of what to subscribe to (``topic_url``)."""

    hub_url: str
    topic_url: str


def discover(body: bytes, link_header: str | None, base_url: str | None = None) -> Hub | None:
    """The hub and topic advertised for a feed, or None when it advertises no usable hub.

    ``link_header`` is the response's Link header (several headers joined with ", ").
    ``base_url``, when given, resolves relative references and stands in for a missing
    ``rel="self"``; without it a hub with no self link yields None. With several hubs the
    first one listed is chosen. Only absolute http(s) URLs are returned.
    """
    header_links = parse_link_header(link_header) if link_header else []
    hub = _first(header_links, "hub", base_url)
    topic = _first(header_links, "self", base_url)
    if hub is None or topic is None:
        doc_links = _document_links(body)
        if hub is None:
            hub = _first(doc_links, "hub", base_url)
            topic = topic or _first(doc_links, "self", base_url)
        else:
            topic = _first(doc_links, "self", base_url)
    if topic is None and base_url is not None:
        topic = _absolute(base_url, None)
    if hub is None or topic is None:
        return None
    return Hub(hub_url=hub, topic_url=topic)


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """RFC 8288 Link header -> ``[(target, {param: value})]``, param names lower-cased.

    Handles several links, quoted strings (with commas, semicolons and backslash escapes),
    bare tokens and valueless parameters; a repeated parameter keeps its first value, as the
    RFC requires for ``rel``. Malformed parts are skipped, never raised.
    """
    links: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i] in _WS or value[i] == ","):
            i += 1
        if i >= n:
            break
        if value[i] != "<":
            i = _skip_link(value, i)
            continue
        end = value.find(">", i + 1)
        if end < 0:
            break
        target = value[i + 1 : end].strip(_WS)
        i = end + 1
        params: dict[str, str] = {}
        while True:
            while i < n and value[i] in _WS:
                i += 1
            if i >= n or value[i] == ",":
                break
            if value[i] != ";":
                i = _skip_link(value, i)
                break
            i += 1
            while i < n and value[i] in _WS:
                i += 1
            start = i
            while i < n and value[i] not in "=;," and value[i] not in _WS:
                i += 1
            name = value[start:i].lower()
            while i < n and value[i] in _WS:
                i += 1
            param = ""
            if i < n and value[i] == "=":
                i += 1
                while i < n and value[i] in _WS:
                    i += 1
                if i < n and value[i] == '"':
                    param, i = _quoted(value, i)
                else:
                    start = i
                    while i < n and value[i] not in ";," and value[i] not in _WS:
                        i += 1
                    param = value[start:i]
            if name and name not in params:
                params[name] = param
        links.append((target, params))
    return links


def _quoted(value: str, i: int) -> tuple[str, int]:
    """The quoted string opening at ``value[i]`` (unescaped) and the index after it."""
    out: list[str] = []
    i += 1
    n = len(value)
    while i < n:
        char = value[i]
        if char == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    return "".join(out), n  # unterminated: take the rest


def _skip_link(value: str, i: int) -> int:
    """Index of the comma ending the current (malformed) link, quoted strings skipped."""
    n = len(value)
    while i < n and value[i] != ",":
        if value[i] == '"':
            _, i = _quoted(value, i)
        else:
            i += 1
    return i


def _first(links: Iterable[tuple[str, dict[str, str]]], rel: str, base_url: str | None) -> str | None:
    """The first usable target among ``links`` whose rel list holds ``rel``."""
    for target, params in links:
        if rel not in params.get("rel", "").lower().split():
            continue
        if params.get("anchor"):  # the link is about another resource
            continue
        url = _absolute(target, base_url)
        if url is not None:
            return url
    return None


def _absolute(target: str, base_url: str | None) -> str | None:
    """``target`` resolved against ``base_url``, if that gives an http(s) URL with a host."""
    target = target.strip(_WS)
    if not target:
        return None
    try:
        url = urljoin(base_url, target) if base_url else target
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _parser() -> Any:
    """One safe XML parser per thread (lxml parsers must not be shared across threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            recover=False,
            remove_comments=True,
            remove_pis=True,
        )
    return parser


def _local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _document_links(body: bytes) -> list[tuple[str, dict[str, str]]]:
    """Feed-level links of an Atom or RSS document as ``(href, {"rel": rel})``; [] if unreadable."""
    if not body:
        return []
    try:
        root = etree.fromstring(body, _parser())
    except (etree.LxmlError, ValueError, TypeError):
        return []
    if root is None:
        return []
    if root.tag == _ATOM_FEED:
        container = root
    elif _local_name(root.tag) in ("rss", "RDF"):  # RSS 2.0, and RSS 1.0 / RDF
        container = next((child for child in root if _local_name(child.tag) == "channel"), None)
        if container is None:
            return []
    else:
        return []
    links: list[tuple[str, dict[str, str]]] = []
    for child in container:
        if child.tag != _ATOM_LINK:
            continue
        href, rel = child.get("href"), child.get("rel")
        if isinstance(href, str) and isinstance(rel, str):
            links.append((href, {"rel": rel}))
    return links
