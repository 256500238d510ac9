"""The health table of ``alerts feeds``: one row per configured feed, from its stored state. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.models import Feed
from alerts.polling import policy


def rows(
    feeds: Mapping[str, Feed],
    states: Mapping[str, Mapping[str, str]],
    schedule: Mapping[str, tuple[float | None, float | None]],
) -> list[dict[str, Any]]:
    """One dict per feed: status, last success and error, failures, items, usual gap, schedule
    (``states`` and ``schedule`` as :mod:`alerts.state` keeps them)."""
    result = []
    for name, feed in feeds.items():
        state = states.get(name, {})
        health = policy.Health.from_state(state)
        next_poll, interval = schedule.get(name, (None, None))
        if health.unhealthy:
            status = "unhealthy"
        elif health.failures:
            status = "failing"
        elif health.last_ok is None:
            status = "new"
        else:
            status = "ok"
        result.append(
            {
                "feed": name,
                "url": feed.url,
                "status": status,
                "last_ok": health.last_ok,
                "last_error": health.last_error,
                "last_error_at": health.last_error_at,
                "failures": health.failures,
                "items_seen": health.items_seen,
                "median_gap": health.median_gap,
                "last_304": health.last_304,
                "next_poll": next_poll,
                "interval": interval if interval is not None else feed.every,
                "unhealthy": health.unhealthy,
            }
        )
    return result


def table(rows_: list[dict[str, Any]], now: float) -> str:
    """A fixed-width text table for a terminal, times shown relative to ``now``."""
    header = ("FEED", "STATUS", "LAST OK", "FAILS", "ITEMS", "GAP", "LAST 304", "NEXT", "EVERY", "LAST ERROR")
    lines = [header]
    for row in rows_:
        lines.append(
            (
                row["feed"],
                row["status"],
                _ago(row["last_ok"], now),
                str(row["failures"]),
                str(row["items_seen"]),
                _span(row["median_gap"]),
                _ago(row["last_304"], now),
                _span(row["next_poll"] - now) if row["next_poll"] else "-",
                _span(row["interval"]),
                (row["unhealthy"] or row["last_error"] or "")[:60] if row["status"] != "ok" else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _ago(moment: float | None, now: float) -> str:
    return "-" if moment is None else _span(now - moment) + " ago"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
