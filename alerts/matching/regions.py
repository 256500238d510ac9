"""An item's regions, and the words that put it there: its feed, its categories, the places it names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.matching.geo import Geotagger, RegionTaxonomy
from alerts.models import FeedItem, region_named


@dataclass(frozen=True)
class Classifier:
    """Regions of items from the feed's ``region:``, region-named categories and a geotagger."""

    taxonomy: RegionTaxonomy
    geotagger: Geotagger

    @classmethod
    def build(cls, taxonomy: RegionTaxonomy) -> Classifier:
        """A classifier over ``taxonomy`` (the packaged one, or the config's regions.yaml)."""
        return cls(taxonomy, Geotagger(taxonomy))

    def regions(
        self, item: FeedItem, feed_region: str | None = None, extra: Iterable[str] = ()
    ) -> dict[str, list[str]]:
        """Region -> why (``feed``, ``category:...``, the place words, or the region inside it)."""
        sources: dict[str, list[str]] = {}

        def add(region: str, why: str) -> None:
            reasons = sources.setdefault(region, [])
            if why not in reasons:
                reasons.append(why)

        if feed_region:
            add(feed_region, "feed")
        for region in extra:
            add(region, "given")
        for category in item.categories:
            named = region_named(category)
            if named:
                add(named, f"category:{category}")
        for region, words in self.geotagger.regions(item.title, item.summary).items():
            for word in words:
                add(region, word)
        for region in list(sources):
            for ancestor in self.taxonomy.expand([region]):
                if ancestor not in sources:
                    add(ancestor, f"in:{region}")
        return dict(sorted(sources.items()))
