"""Frozen value types that flow through the pipeline: fetch -> parse -> match -> dedupe -> deliver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from alerts.text import normalise

REGIONS: tuple[str, ...] = (
    "Africa",
    "Asia",
    "Asia-Pacific",
    "Europe",
    "Latin America",
    "MENA",
    "Palestine",
    "US & Canada",
)
PRIORITIES: tuple[str, ...] = ("flash", "high", "normal", "low")  # most urgent first
_REGION_BY_KEY = {normalise(region): region for region in REGIONS}


def region_named(name: str) -> str | None:
    """The canonical region for ``name`` (case, accents and punctuation ignored), or None."""
    return _REGION_BY_KEY.get(normalise(name))


@dataclass(frozen=True, slots=True)
class Pacing:
    """A subscriber's pacing settings (see :mod:`alerts.delivery.pacing`)."""

    timezone: str = "UTC"
    quiet_hours: tuple[time, time] | None = None
    max_per_hour: int | None = None
    digest: str | None = None  # "hourly" | "daily@HH:MM"
    burst_count: int | None = 5
    burst_within: float = 60.0


@dataclass(frozen=True, slots=True)
class Feed:
    """One configured source."""

    name: str
    url: str
    every: float = 60.0
    region: str | None = None
    backfill: int = 0
    lang: str | None = None
    adaptive: bool = False  # every: auto
    min_every: float = 30.0
    max_every: float = 900.0
    format: str = "feed"  # feed (RSS, Atom, JSON Feed) | html | json
    selectors: tuple[tuple[str, str], ...] = ()  # format html: CSS selectors
    json_map: tuple[tuple[str, str], ...] = ()  # format json: JMESPath per field
    enrich: bool = False  # fetch linked article pages for metadata
    enrich_budget: float = 2.0  # the most enrichment may delay an alert, seconds
    silence: float | None = None  # unhealthy after this long without new items (None: from gaps; 0: never)
    allow_private: bool = False  # redirects (and content links) of this feed may reach private addresses
    allow_insecure_hub: bool = False  # its WebSub hub may be plain http (hub.secret sent in the clear)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One normalised entry of a feed, as the parser produced it."""

    id: str
    title: str
    summary: str = ""
    link: str | None = None
    published: datetime | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Someone who receives alerts on one or more Apprise URLs."""

    name: str
    notify: tuple[str, ...]
    fallback: str | None = None  # receives alerts whose primary channel is dead
    templates: tuple[tuple[str, str | None, str | None], ...] = ()  # (channel kind, title, body)
    pacing: Pacing = field(default_factory=Pacing)  # quiet hours, caps, bursts, digests


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a subscriber asked for; terms are raw strings, normalised by the matcher."""

    name: str
    subscribers: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    query: str | None = None
    regex: str | None = None
    stem: bool = False
    priority: str = "normal"  # flash | high | normal | low


@dataclass(frozen=True, slots=True)
class Match:
    """A subscription that matched an item, with the terms that made it match."""

    subscription: str
    subscribers: tuple[str, ...]
    terms: tuple[str, ...]
    priority: str = "normal"


_LISTS = ("regions", "subscriptions", "terms", "sources", "changes")  # tuples in Alert, lists in JSON


@dataclass(frozen=True, slots=True)
class Alert:
    """One story for one subscriber; JSON-safe so it can travel through the broker."""

    subscriber: str
    story: str
    item: str
    feed: str
    title: str
    summary: str = ""
    link: str | None = None
    published: str | None = None
    regions: tuple[str, ...] = ()
    subscriptions: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    fetched_at: float = 0.0
    priority: str = "normal"
    extra: dict[str, Any] = field(default_factory=dict)
    held: tuple[Alert, ...] = ()  # a digest: the alerts it folds, oldest first; () for a single alert
    # stories (alerts.matching.stories): the feeds that reported the story when this alert was made;
    # update: 0 for the story's first alert, n for its n-th update (threaded under the first), with
    # what the update changed ("12 killed (was 8)")
    sources: tuple[str, ...] = ()
    update: int = 0
    changes: tuple[str, ...] = ()

    @property
    def is_digest(self) -> bool:
        """True for a digest (see :mod:`alerts.delivery.digests`)."""
        return bool(self.held)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the broker (built by hand: ``asdict`` deep-copies and is slow at fan-out).

        ``held`` appears only in a digest's JSON: a single alert's JSON is what it was before digests
        had their own kind, and JSON without ``held`` (older records) reads as a single alert."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in _LISTS:
            data[name] = list(data[name])
        data["extra"] = dict(self.extra)
        if self.held:
            data["held"] = [alert.to_json() for alert in self.held]
        else:
            del data["held"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_json`."""
        fields = dict(data)
        for name in _LISTS:
            fields[name] = tuple(fields.get(name) or ())
        fields["held"] = tuple(cls.from_json(held) for held in fields.get("held") or ())
        return cls(**fields)
