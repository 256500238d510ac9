"""Enrichment's caps: at most 20 article pages per poll (the newest items'), and ``enrich_budget`` a
deadline for the poll's whole enrichment. Pages are served on 127.0.0.1 (private addresses allowed
here: tests/ingest/test_ssrf.py proves the address rule)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from alerts.errors import FetchError
from alerts.ingest import http
from alerts.ingest.enrich import MAX_PAGES, enrich
from alerts.ingest.fetch import FetchResult, Limits, Validators, fetch_many
from alerts.models import Feed, FeedItem
from tests.ingest.listeners import Newsroom


class DictCache:
    """The article cache, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_many(self, urls: Sequence[str]) -> list[str | None]:
        return [self.values.get(url) for url in urls]

    def put(self, url: str, value: str, ttl: int) -> None:
        self.values[url] = value


@pytest.fixture(autouse=True)
def loopback_allowed() -> Iterator[None]:
    before = http.private_addresses_allowed()
    http.allow_private_addresses(True)
    yield
    http.allow_private_addresses(before)


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    site = Newsroom().start()
    yield site
    site.stop()


def _items(newsroom: Newsroom, count: int) -> list[FeedItem]:
    """``count`` items linking to article pages, the oldest first in the document (so newest-first
    is not document order), item ``n`` published ``n`` minutes after the first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        FeedItem(id=f"i{n}", title=f"Report {n}", link=f"{newsroom.base}/article/{n}",
                 published=start + timedelta(minutes=n))
        for n in range(count)
    ]  # fmt: skip


def test_128_links_cost_at_most_20_gets_of_the_newest_items_within_the_budget(newsroom: Newsroom) -> None:
    """128 linked items, each page 0.8 s slow, budget 2 s: 20 GETs (counted at the server), for the 20
    newest items; the other 108 go out unenriched, counted in one line; all within 2.5 s."""
    newsroom.delay = 0.8
    feed = Feed(name="wire", url=f"{newsroom.base}/feed.xml", enrich=True, enrich_budget=2.0)
    items = _items(newsroom, 128)
    with capture_logs() as logs:
        started = time.monotonic()
        out = enrich(items, feed, DictCache())
        elapsed = time.monotonic() - started
    assert newsroom.articles == MAX_PAGES == 20
    assert elapsed < 2.5
    enriched = {item.id for item in out if item.summary}
    assert enriched == {f"i{n}" for n in range(108, 128)}
    [capped] = [event for event in logs if event["event"] == "feed.enrich_capped"]
    assert (capped["feed"], capped["fetched"], capped["unenriched"]) == ("wire", 20, 108)
    assert [item.id for item in out] == [item.id for item in items]  # order kept


def test_the_budget_is_a_deadline_for_the_whole_enrichment(newsroom: Newsroom) -> None:
    """Pages slower than the budget: enrich returns at the deadline with what it has (nothing)."""
    newsroom.delay = 3.0
    feed = Feed(name="wire", url=f"{newsroom.base}/feed.xml", enrich=True, enrich_budget=1.0)
    items = _items(newsroom, 5)
    started = time.monotonic()
    out = enrich(items, feed, DictCache())
    assert time.monotonic() - started < 1.5
    assert out == items


def test_cached_pages_are_not_fetched_and_do_not_count_against_the_cap(newsroom: Newsroom) -> None:
    """A second enrichment of the same links is served from the cache: no GET."""
    feed = Feed(name="wire", url=f"{newsroom.base}/feed.xml", enrich=True)
    cache, items = DictCache(), _items(newsroom, 3)
    first = enrich(items, feed, cache)
    assert newsroom.articles == 3 and all(item.summary for item in first)
    assert enrich(items, feed, cache) == first and newsroom.articles == 3


def test_a_budget_ends_a_batch_of_fetches_with_what_arrived_in_time(newsroom: Newsroom) -> None:
    """fetch_many with a budget: 64 pages 0.8 s slow, 32 fetched at a time, budget 1.2 s: the first
    32 arrive, the rest come back as FetchError at the deadline (not after 1.6 s)."""
    newsroom.delay = 0.8
    urls = [(f"{newsroom.base}/article/{n}", Validators()) for n in range(64)]
    started = time.monotonic()
    results = fetch_many(urls, Limits(total_timeout=10.0), budget=1.2)
    assert time.monotonic() - started < 1.5
    arrived = [result for result in results if isinstance(result, FetchResult)]
    late = [result for result in results if isinstance(result, FetchError)]
    assert len(arrived) == 32 and len(late) == 32
    assert all("budget" in str(error) for error in late)
