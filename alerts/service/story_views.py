"""What ``alerts explain`` says about stories, and what ``alerts stories`` lists."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerts.config.settings import Settings
from alerts.matching.geo import Geotagger
from alerts.matching.stories.compare import StoryPolicy
from alerts.matching.stories.fingerprint import Fingerprinter, StoryPrint
from alerts.models import Feed, FeedItem
from alerts.service.storyline import Storyline, StoryMatch
from alerts.state.store import Store
from alerts.state.stories import Story


def explainer(
    geotagger: Geotagger, settings: Settings, store: Store | None, feed: Feed | None
) -> Callable[[str], dict[str, Any]]:
    """headline -> the story part of ``alerts explain``, as if from ``feed`` (the open stories are
    read from ``store``; None: unknown). Nothing is filed."""
    as_from = feed or Feed(name="explain", url="")
    if store is None:
        prints = Fingerprinter(geotagger)

        def unknown(headline: str) -> dict[str, Any]:
            report = prints.fingerprint(FeedItem(id="explain", title=headline), time.time(), as_from.lang)
            return explained(report, None, open_known=False)

        return unknown
    storyline = Storyline(geotagger, settings.stories or StoryPolicy(), store.stories, settings.dedupe_window)

    def explain(headline: str) -> dict[str, Any]:
        report, match = storyline.explain(as_from, FeedItem(id="explain", title=headline), time.time())
        return explained(report, match, open_known=True)

    return explain


def explained(report: StoryPrint, match: StoryMatch | None, open_known: bool) -> dict[str, Any]:
    """The story part of ``alerts explain``: what the headline pins down, and the open story it
    would join (``open_known`` False: no Redis answered, so the open stories are unknown)."""
    result: dict[str, Any] = {
        "language": report.lang,
        "places": sorted(report.places),
        "numbers": [f"{number:g}" for number in sorted(report.numbers)],
        "actors": sorted(report.actors),
        "events": sorted(report.events),
        "terms": sorted(term.split(":", 1)[-1] for term in report.terms),
        "joins": None,
    }
    if not open_known:
        result["joins"] = "unknown (no Redis is running: open stories are kept there)"
    elif match is not None:
        result["joins"] = {
            "story": match.story,
            "title": match.title,
            "why": match.verdict.reason,
            "score": round(match.verdict.score, 2),
            "shared": [feature.split(":", 1)[-1] for feature in match.verdict.shared],
            "update": list(match.changes),
        }
    return result


def explained_text(result: dict[str, Any]) -> str:
    """The human-readable lines of :func:`explained`."""
    facts = ", ".join(
        f"{name} {', '.join(result[name])}"
        for name in ("places", "numbers", "actors", "events")
        if result[name]
    )
    lines = [f"story facts: {facts or '-'} ({result['language']})"]
    joins = result["joins"]
    if joins is None:
        lines.append("story: opens a new story (no open story tells this event)")
    elif isinstance(joins, str):
        lines.append(f"story: {joins}")
    else:
        lines.append(f'story: joins {joins["story"]} "{joins["title"]}": {joins["why"]}')
        lines.append(f"  shared: {', '.join(joins['shared']) or '-'}")
        if joins["update"]:
            lines.append(f"  an update: {', '.join(joins['update'])}")
    return "\n".join(lines)


def listed(story: Story) -> dict[str, Any]:
    """One story of ``alerts stories --json``."""
    return {
        "story": story.story,
        "title": story.title,
        "feed": story.feed,
        "opened": story.opened,
        "last": story.last,
        "sources": list(story.sources),
        "updates": story.updates,
        "subscribers": list(story.recipients),
    }


def listed_text(story: Story) -> str:
    """One story of ``alerts stories``: when, sources, updates, subscribers, the first headline."""
    when = datetime.fromtimestamp(story.opened, UTC).strftime("%Y-%m-%d %H:%M")
    sources = ", ".join(story.sources)
    updates = f"{story.updates} update{'s' if story.updates != 1 else ''}"
    subscribers = ", ".join(story.recipients) or "-"
    return f"{when}  {story.title[:80]}\n    sources: {sources}; {updates}; sent to: {subscribers}"
