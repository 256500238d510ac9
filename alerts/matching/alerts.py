"""A new item and the subscriptions it matched -> one alert per subscriber; which items of a first poll
alert at all (backfill), and when undated items appeared. Pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from alerts.models import PRIORITIES, Alert, Feed, FeedItem, Match


def by_subscriber(matches: list[Match]) -> dict[str, list[Match]]:
    """The matches of each subscriber, in match order."""
    grouped: dict[str, list[Match]] = {}
    for match in matches:
        for subscriber in match.subscribers:
            grouped.setdefault(subscriber, []).append(match)
    return grouped


def alert_for(
    feed: Feed,
    item: FeedItem,
    regions: tuple[str, ...],
    subscriber: str,
    matches: list[Match],
    fetched_at: float,
    story: str,
) -> Alert:
    """The alert ``subscriber`` gets for ``item``: the most urgent priority of its matches."""
    return Alert(
        subscriber=subscriber,
        story=story,
        item=item.id,
        feed=feed.name,
        title=item.title,
        summary=item.summary,
        link=item.link,
        published=item.published.isoformat() if item.published else None,
        regions=regions,
        subscriptions=tuple(match.subscription for match in matches),
        terms=tuple(sorted({term for match in matches for term in match.terms})),
        fetched_at=fetched_at,
        priority=min((match.priority for match in matches), key=PRIORITIES.index, default="normal"),
    )


def first_seen(items: list[FeedItem], fetched_at: float) -> list[FeedItem]:
    """Items without a published time (ticker lines) are stamped with when they were first seen."""
    seen = datetime.fromtimestamp(fetched_at, UTC)
    return [item if item.published else dataclasses.replace(item, published=seen) for item in items]


def arrivals(items: list[FeedItem], fetched_at: float) -> list[float]:
    """When each new item appeared: its published time if plausible, else when it was fetched."""
    times = []
    for item in items:
        published = item.published.timestamp() if item.published else None
        times.append(published if published and published <= fetched_at else fetched_at)
    return times


def backfill(items: list[FeedItem], count: int) -> list[FeedItem]:
    """The ``count`` newest items (by published time, undated ones last, else document order)."""
    if count <= 0:
        return []
    ranked = sorted(
        items, key=lambda item: item.published.timestamp() if item.published else float("-inf"), reverse=True
    )
    return ranked[:count]
