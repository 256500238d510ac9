"""Article enrichment: category, keywords, author, time and region from the pages new items link to.

Article pages are fetched concurrently, within the feed's ``enrich_budget`` (default 2 s): what
arrives in time is used for matching; what is late is not waited for. Parsed metadata is cached
in Redis for a day, so an item seen again, or linked from several feeds, costs one fetch.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from alerts import log
from alerts.errors import AlertsError
from alerts.ingest.article import ArticleMeta, parse_article
from alerts.ingest.fetch import FetchResult, Limits, Validators, fetch_many
from alerts.models import Feed, FeedItem

CACHE_TTL = 24 * 3600
ARTICLE_MAX_BYTES = 2 * 1024 * 1024
_logger = log.get("alerts.enrich")


class Cache(Protocol):
    """Where parsed metadata is kept between polls (:class:`alerts.state.articles.ArticleCache`)."""

    def get_many(self, urls: Sequence[str]) -> list[str | None]: ...

    def put(self, url: str, value: str, ttl: int) -> None: ...


def enrich(items: Sequence[FeedItem], feed: Feed, cache: Cache) -> list[FeedItem]:
    """``items`` with metadata from their article pages merged in (unchanged when it is late)."""
    linked = [item.link for item in items if item.link]
    if not feed.enrich or not linked:
        return list(items)
    started = time.monotonic()
    urls = list(dict.fromkeys(linked))
    metas = _cached(cache, urls)
    missing = [url for url in urls if url not in metas]
    if missing:
        budget = feed.enrich_budget
        limits = Limits(
            connect_timeout=budget, read_timeout=budget, total_timeout=budget, max_bytes=ARTICLE_MAX_BYTES
        )
        for url, result in zip(
            missing, fetch_many([(u, Validators()) for u in missing], limits), strict=True
        ):
            if not isinstance(result, FetchResult):
                _logger.info("item.enrich_skipped", feed=feed.name, link=url, error=str(result))
                continue
            try:
                meta = parse_article(result.body, result.url, result.content_type)
            except AlertsError as exc:
                _logger.info("item.enrich_skipped", feed=feed.name, link=url, error=str(exc))
                continue
            metas[url] = meta
            cache.put(url, _dump(meta), CACHE_TTL)
    _logger.debug(
        "feed.enriched",
        feed=feed.name,
        links=len(urls),
        found=len(metas),
        ms=round((time.monotonic() - started) * 1000, 1),
    )
    return [merge(item, metas[item.link]) if item.link in metas else item for item in items]


def merge(item: FeedItem, meta: ArticleMeta) -> FeedItem:
    """The item completed by its page: categories (category, keywords, region), time, summary."""
    categories = [*item.categories, *(c for c in (meta.category, *meta.keywords, meta.region) if c)]
    return dataclasses.replace(
        item,
        title=item.title or meta.title or "",
        summary=item.summary or meta.description or "",
        published=item.published or meta.published,
        categories=tuple(dict.fromkeys(categories)),
    )


def _cached(cache: Cache, urls: list[str]) -> dict[str, ArticleMeta]:
    found = {}
    for url, raw in zip(urls, cache.get_many(urls), strict=True):
        if raw:
            found[url] = _load(raw)
    return found


def _dump(meta: ArticleMeta) -> str:
    data = dataclasses.asdict(meta)
    for name in ("published", "updated"):
        data[name] = data[name].isoformat() if data[name] else None
    return json.dumps(data, ensure_ascii=False)


def _load(raw: str) -> ArticleMeta:
    data = json.loads(raw)
    for name in ("published", "updated"):
        data[name] = datetime.fromisoformat(data[name]) if data[name] else None
    data["keywords"] = tuple(data.get("keywords") or ())
    return ArticleMeta(**data)
