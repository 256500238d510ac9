"""Region names of the reference site and the regions an item belongs to."""

from __future__ import annotations

from collections.abc import Iterable

from alerts.models import REGIONS
from alerts.text import normalise

_BY_KEY = {normalise(region): region for region in REGIONS}


def region_named(name: str) -> str | None:
    """The canonical region for ``name`` (case, accents and punctuation ignored), or None."""
    return _BY_KEY.get(normalise(name))


def item_regions(feed_region: str | None, categories: Iterable[str]) -> tuple[str, ...]:
    """The feed's region plus every category that names a region, canonical and sorted."""
    found = {region for region in (region_named(c) for c in categories) if region}
    if feed_region:
        found.add(feed_region)
    return tuple(sorted(found))
