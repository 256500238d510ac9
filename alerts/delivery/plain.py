"""Alert (or digest) -> the title and plain-text body a subscriber reads on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.delivery import story_render
from alerts.models import Alert

TITLE_LIMIT = 250
SUMMARY_LIMIT = 600


def title(alert: Alert) -> str:
    """The headline (``Update: `` first for a story's update), shortened on a word boundary if very long."""
    return _shorten(story_render.titled(alert, alert.title or alert.link or "(untitled)"), TITLE_LIMIT)


def body(alert: Alert, sources: Sequence[str] | None = None) -> str:
    """What an update changed (if it is one), the summary (if any), then feed and published time, the
    other feeds that reported the story (``sources``, by default the alert's), and the link, one per line."""
    changed, also = story_render.story_lines(alert, alert.sources if sources is None else sources)
    lines: list[str] = [changed, ""] if changed else []
    if alert.summary and alert.summary.strip() != alert.title.strip():
        lines += [_shorten(alert.summary, SUMMARY_LIMIT), ""]
    source = alert.feed
    if alert.published:
        source += " · " + _when(alert.published)
    lines.append(source)
    if also:
        lines.append(also)
    if alert.link:
        lines.append(alert.link)
    return "\n".join(lines)


def digest_body(alerts: Sequence[Alert]) -> str:
    """Every headline with its link, one alert per line."""
    return "\n".join(f"• {title(alert)}" + (f" — {alert.link}" if alert.link else "") for alert in alerts)


def _when(published: str) -> str:
    try:
        moment = datetime.fromisoformat(published)
    except ValueError:
        return published
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
