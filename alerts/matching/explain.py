"""Why a headline would alert whom: regions with their sources, and each matching subscription's terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.matching.index import Matcher
from alerts.matching.regions import Classifier
from alerts.models import Feed, FeedItem


class Explainer:
    """Evaluates headlines as if from ``feed`` (optional) with extra ``regions``; never delivers."""

    def __init__(
        self, matcher: Matcher, classifier: Classifier, feed: Feed | None = None, regions: Sequence[str] = ()
    ) -> None:
        self._matcher = matcher
        self._classifier = classifier
        self._feed = feed
        self._regions = tuple(regions)

    def explain(self, headline: str) -> dict[str, Any]:
        """``{"regions", "region_sources", "matches": [{"subscription", "subscribers", "terms"}]}``"""
        feed = self._feed
        item = FeedItem(id="explain", title=headline)
        sources = self._classifier.regions(item, feed.region if feed else None, self._regions)
        matches = self._matcher.match(item, feed.name if feed else "", sources, feed.lang if feed else None)
        return {
            "regions": list(sources),
            "region_sources": sources,
            "matches": [
                {"subscription": m.subscription, "subscribers": list(m.subscribers), "terms": list(m.terms)}
                for m in matches
            ],
        }

    @staticmethod
    def text(result: dict[str, Any]) -> str:
        """The human-readable form of :meth:`explain`'s result."""
        sources = result["region_sources"]
        regions = ", ".join(f"{region} ({', '.join(why)})" for region, why in sources.items())
        lines = [f"regions: {regions or '-'}"]
        if not result["matches"]:
            lines.append("no subscription matches")
        for match in result["matches"]:
            terms, subscribers = ", ".join(match["terms"]), ", ".join(match["subscribers"])
            lines.append(f"{match['subscription']}: matched by {terms} -> {subscribers}")
        return "\n".join(lines)
