"""One fetched body -> FeedItems, by the feed's format: feeds (RSS/Atom/JSON Feed), HTML pages, JSON APIs."""

from __future__ import annotations

from functools import lru_cache

from alerts.ingest.feeds import parse_feed
from alerts.ingest.html import Selectors, parse_html
from alerts.ingest.jsonapi import JsonMapping, parse_json_api
from alerts.models import Feed, FeedItem

FORMATS = ("feed", "html", "json")


@lru_cache(maxsize=4096)
def selectors(pairs: tuple[tuple[str, str], ...]) -> Selectors:
    """Validated selectors from the feed's ``selectors:`` (raises ValueError with a clear message)."""
    return Selectors.parse(dict(pairs))


@lru_cache(maxsize=4096)
def json_mapping(pairs: tuple[tuple[str, str], ...]) -> JsonMapping:
    """A compiled JMESPath mapping from the feed's ``json:`` (raises ValueError naming the field)."""
    return JsonMapping.parse(dict(pairs))


def parse_source(feed: Feed, body: bytes, url: str, content_type: str | None) -> list[FeedItem]:
    """Items of one fetched body; raises FeedParseError when it is not what the feed promises."""
    if feed.format == "html":
        return parse_html(body, url, selectors(feed.selectors), content_type)
    if feed.format == "json":
        return parse_json_api(body, url, json_mapping(feed.json_map))
    return parse_feed(body, url, content_type)
