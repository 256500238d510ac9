"""Article enrichment: category, keywords, author, time and region from the pages new items link to.

Article pages are fetched concurrently, at most :data:`MAX_PAGES` per poll (the newest items' first;
the rest go out unenriched, counted in one ``feed.enrich_capped`` line), and the feed's
``enrich_budget`` (default 2 s) is a deadline for the poll's whole enrichment: what arrives in time
is used for matching; what is late is not waited for. Item links come from content, so each is
checked (:mod:`alerts.ingest.addresses`): a link to a private or reserved address is not fetched
(one ``fetch.refused`` line) and its item goes out unenriched, unless the feed says
``allow_private: true``. Parsed metadata is cached in Redis for a day, so an item seen again, or
linked from several feeds, costs one fetch.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from alerts import log
from alerts.errors import AddressRefused, AlertsError
from alerts.ingest.article import ArticleMeta, parse_article
from alerts.ingest.fetch import AddressPolicy, FetchResult, Limits, Validators, fetch_many
from alerts.ingest.markup import bounded
from alerts.models import Feed, FeedItem

CACHE_TTL = 24 * 3600
ARTICLE_MAX_BYTES = 2 * 1024 * 1024
MAX_PAGES = 20  # article pages fetched per poll of one feed
_logger = log.get("alerts.enrich")


class Cache(Protocol):
    """Where parsed metadata is kept between polls (:class:`alerts.state.articles.ArticleCache`)."""

    def get_many(self, urls: Sequence[str]) -> list[str | None]: ...

    def put(self, url: str, value: str, ttl: int) -> None: ...


def enrich(items: Sequence[FeedItem], feed: Feed, cache: Cache) -> list[FeedItem]:
    """``items`` with metadata from their article pages merged in (unchanged when it is late, over
    the cap of pages, or refused); returns within about ``feed.enrich_budget``."""
    if not feed.enrich or not any(item.link for item in items):
        return list(items)
    started = time.monotonic()
    deadline = started + feed.enrich_budget
    urls = list(dict.fromkeys(item.link for item in _newest_first(items) if item.link))
    metas = _cached(cache, urls)
    missing = [url for url in urls if url not in metas]
    fetched, capped = missing[:MAX_PAGES], missing[MAX_PAGES:]
    if capped:
        _logger.info("feed.enrich_capped", feed=feed.name, fetched=len(fetched), unenriched=len(capped))
    left = deadline - time.monotonic()
    if fetched and left > 0:
        limits = Limits(
            connect_timeout=left, read_timeout=left, total_timeout=left, max_bytes=ARTICLE_MAX_BYTES
        )
        policy = AddressPolicy.feed_content(feed)
        results = fetch_many([(u, Validators()) for u in fetched], limits, policy, budget=left)
        for url, result in zip(fetched, results, strict=True):
            if isinstance(result, AddressRefused):
                continue  # logged once as fetch.refused
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


def _newest_first(items: Sequence[FeedItem]) -> list[FeedItem]:
    """By published time, newest first; undated items last, in document order."""
    return sorted(
        items, key=lambda item: item.published.timestamp() if item.published else float("-inf"), reverse=True
    )


def merge(item: FeedItem, meta: ArticleMeta) -> FeedItem:
    """The item completed by its page: categories (category, keywords, region), time, summary; what
    the page adds is cleaned and capped as a reader's text is (:func:`~alerts.ingest.markup.bounded`)."""
    categories = [*item.categories, *(c for c in (meta.category, *meta.keywords, meta.region) if c)]
    return bounded(
        dataclasses.replace(
            item,
            title=item.title or meta.title or "",
            summary=item.summary or meta.description or "",
            published=item.published or meta.published,
            categories=tuple(dict.fromkeys(categories)),
        )
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
