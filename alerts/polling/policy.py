"""When to poll a feed next, and whether it is healthy: pure policy, no I/O.

- Success: the feed's interval (``every``, or for ``every: auto`` a third of the median gap between
  its items, within ``min_every``..``max_every``), but never sooner than ``Cache-Control: max-age``;
  while a WebSub hub pushes the feed, only the safety rate (``PUSHED_SAFETY_INTERVAL``).
- Failure: exponential backoff with jitter from the interval, capped (a failing feed is re-probed
  at least every ``BACKOFF_CAP``, never disabled); ``Retry-After`` (429, 503) is honoured as given.
- Health: unhealthy after ``FAILURES_UNHEALTHY`` failures in a row, or when silent for
  ``SILENCE_FACTOR`` times its usual gap (once it has enough history to know its usual gap).
"""

from __future__ import annotations

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
MIN_GAPS = 5  # arrivals needed before a feed's silence means anything
ARRIVALS_KEPT = 21


@dataclass(frozen=True, slots=True)
class Health:
    """A feed's health fields, as kept in its Redis state hash."""

    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    items_seen: int = 0
    last_304: float | None = None
    arrivals: tuple[float, ...] = ()  # times of its latest new items, oldest first
    unhealthy: str | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, str]) -> Health:
        """Parse the stored fields (missing ones take their defaults)."""

        def number(name: str) -> float | None:
            value = state.get(name)
            return float(value) if value not in (None, "") else None

        arrivals = tuple(float(v) for v in (state.get("arrivals") or "").split(",") if v)
        return cls(
            last_ok=number("last_ok"),
            last_error=state.get("last_error") or None,
            last_error_at=number("last_error_at"),
            failures=int(state.get("failures") or 0),
            items_seen=int(state.get("items_seen") or 0),
            last_304=number("last_304"),
            arrivals=arrivals,
            unhealthy=state.get("unhealthy") or None,
        )

    @property
    def median_gap(self) -> float | None:
        """The median time between the feed's new items, once it has enough of them."""
        if len(self.arrivals) <= MIN_GAPS:
            return None
        gaps = [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False) if b > a]
        return statistics.median(gaps) if len(gaps) >= MIN_GAPS else None


def record_arrivals(health: Health, times: list[float]) -> str:
    """The ``arrivals`` field after new items arrived at ``times``."""
    arrivals = sorted([*health.arrivals, *times])[-ARRIVALS_KEPT:]
    return ",".join(f"{t:.3f}" for t in arrivals)


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


def unhealthy_reason(health: Health, now: float) -> str | None:
    """Why the feed is unhealthy now, or None."""
    if health.failures >= FAILURES_UNHEALTHY:
        return f"{health.failures} failures in a row: {health.last_error or 'unknown error'}"
    gap = health.median_gap
    if gap is not None and health.arrivals and now - health.arrivals[-1] > SILENCE_FACTOR * gap:
        silent = now - health.arrivals[-1]
        return f"silent for {silent / 60:.0f} min, {silent / gap:.0f} times its usual gap"
    return None
