"""When to poll a feed next, and whether it is healthy: pure policy, no I/O.

- Success: the feed's interval (``every``, or for ``every: auto`` a third of the median gap between
  its items, within ``min_every``..``max_every``), but never sooner than ``Cache-Control: max-age``;
  while a WebSub hub pushes the feed, only the safety rate (``PUSHED_SAFETY_INTERVAL``).
- Failure: exponential backoff with jitter from the interval, capped (a failing feed is re-probed
  at least every ``BACKOFF_CAP``, never disabled); ``Retry-After`` (429, 503) is honoured as given.
- Health: unhealthy after ``FAILURES_UNHEALTHY`` failures in a row, or when silent too long. Silence
  is judged only from real history: the times new items were seen arriving (``seen``: polls after
  the first, and pushes; never a first poll's backlog, whose items' own times say nothing of when
  the feed speaks), and only over time the service was watching (a restart or an outage of ours
  never makes a feed silent). Too long is the feed's ``silence:`` when it sets one (``off``: never),
  else ``SILENCE_FACTOR`` times the median gap between arrivals once ``MIN_GAPS`` gaps are known,
  and never under ``SILENCE_FLOOR``.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from alerts.models import Feed

BACKOFF_CAP = 30 * 60.0
PUSHED_SAFETY_INTERVAL = 15 * 60.0  # a feed that WebSub pushes is still polled this often
MAX_CACHE_WAIT = 60 * 60.0
MAX_RETRY_AFTER = 24 * 3600.0
FAILURES_UNHEALTHY = 5
SILENCE_FACTOR = 10.0
SILENCE_FLOOR = 3600.0  # a feed is never called silent sooner than this
MIN_GAPS = 5  # gaps between arrivals needed before a feed's usual gap means anything
ARRIVALS_KEPT = 21
WATCH_GAP = 600.0  # a longer pause in our own polling (an outage, a restart) restarts the silence clock


@dataclass(frozen=True, slots=True)
class Health:
    """A feed's health fields, as kept in its Redis state hash."""

    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    items_seen: int = 0
    last_304: float | None = None
    arrivals: tuple[float, ...] = ()  # published times of its latest new items, oldest first (rhythm)
    unhealthy: str | None = None
    seen: tuple[float, ...] = ()  # when new items were seen arriving (not a first poll), oldest first
    watched_since: float | None = None  # since when polls have followed each other without a long pause

    @classmethod
    def from_state(cls, state: Mapping[str, str]) -> Health:
        """Parse the stored fields (missing ones take their defaults)."""

        def number(name: str) -> float | None:
            value = state.get(name)
            return float(value) if value not in (None, "") else None

        def times(name: str) -> tuple[float, ...]:
            return tuple(float(v) for v in (state.get(name) or "").split(",") if v)

        return cls(
            last_ok=number("last_ok"),
            last_error=state.get("last_error") or None,
            last_error_at=number("last_error_at"),
            failures=int(state.get("failures") or 0),
            items_seen=int(state.get("items_seen") or 0),
            last_304=number("last_304"),
            arrivals=times("arrivals"),
            unhealthy=state.get("unhealthy") or None,
            seen=times("seen"),
            watched_since=number("watched_since"),
        )

    @property
    def median_gap(self) -> float | None:
        """The median time between the feed's new items (by their published times), once known."""
        return _median_gap(self.arrivals)

    @property
    def usual_silence(self) -> float | None:
        """The median time between arrivals seen by the service, once it has seen enough of them."""
        return _median_gap(self.seen)


def _median_gap(times: tuple[float, ...]) -> float | None:
    if len(times) <= MIN_GAPS:
        return None
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if len(gaps) >= MIN_GAPS else None


def record_arrivals(health: Health, times: list[float]) -> str:
    """The ``arrivals`` field after new items published at ``times``."""
    arrivals = sorted([*health.arrivals, *times])[-ARRIVALS_KEPT:]
    return ",".join(f"{t:.3f}" for t in arrivals)


def record_seen(health: Health, at: float) -> str:
    """The ``seen`` field after new items were seen arriving at ``at`` (one entry per poll or push)."""
    return ",".join(f"{t:.3f}" for t in sorted([*health.seen, at])[-ARRIVALS_KEPT:])


def watched_since(health: Health, now: float) -> float:
    """Since when the service has been watching the feed: now, unless the last good poll was recent."""
    if health.watched_since is not None and health.last_ok is not None and now - health.last_ok <= WATCH_GAP:
        return health.watched_since
    return now


def silence_limit(feed: Feed, health: Health) -> float | None:
    """How long without a new item makes ``feed`` unhealthy; None while it cannot be judged, or never."""
    if feed.silence is not None:
        return feed.silence or None
    gap = health.usual_silence
    return None if gap is None else max(SILENCE_FACTOR * gap, SILENCE_FLOOR)


def interval(feed: Feed, health: Health) -> float:
    """Seconds between polls of a healthy feed."""
    if not feed.adaptive:
        return feed.every
    gap = health.median_gap
    if gap is None:
        return min(max(feed.every, feed.min_every), feed.max_every)
    return min(max(gap / 3, feed.min_every), feed.max_every)


def after_success(feed: Feed, health: Health, max_age: float | None, pushed: bool = False) -> float:
    """Delay before the next poll after a successful one (at least the safety rate while WebSub pushes)."""
    delay = interval(feed, health)
    if max_age is not None and max_age > delay:
        delay = min(max_age, MAX_CACHE_WAIT)
    return max(delay, PUSHED_SAFETY_INTERVAL) if pushed else delay


def after_failure(
    feed: Feed, failures: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Delay before re-probing a feed that failed ``failures`` times in a row."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_RETRY_AFTER)
    base = feed.every if not feed.adaptive else feed.min_every
    cap = max(BACKOFF_CAP, base)
    ceiling = min(cap, base * 2.0 ** max(0, failures - 1))
    jitter: float = (rng or random.Random()).uniform(0.5, 1.0)
    return max(base, jitter * ceiling)


def unhealthy_reason(feed: Feed, health: Health, now: float) -> str | None:
    """Why the feed is unhealthy now, or None."""
    if health.failures >= FAILURES_UNHEALTHY:
        return f"{health.failures} failures in a row: {health.last_error or 'unknown error'}"
    limit = silence_limit(feed, health)
    since = max(
        [*health.seen[-1:], *([health.watched_since] if health.watched_since is not None else [])],
        default=None,
    )
    if limit is None or since is None or now - since <= limit:
        return None
    silent = now - since
    gap = health.usual_silence
    usual = f", {silent / gap:.0f} times its usual gap" if gap and feed.silence is None else ""
    return f"no new item for {_span(silent)} (limit {_span(limit)}{usual})"


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
