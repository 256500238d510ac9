"""The site's regions as sets of countries, nested by ``parent``: :class:`RegionTaxonomy` and its
``regions.yaml`` (the packaged ``alerts/matching/geo/data/regions.yaml``, or one in the config directory that
replaces it), validated with file:line problems.

A region may sit inside another (Palestine inside MENA): a country's regions are expanded to their
ancestors, so a MENA subscription gets Palestine items.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alerts.errors import ConfigError, Problem
from alerts.models import REGIONS, region_named
from alerts.text import did_you_mean
from alerts.yamlsource import Document, load

DATA_DIR = Path(__file__).parent / "data"
REGIONS_FILE = "regions.yaml"

_REGION_ORDER = {region: index for index, region in enumerate(REGIONS)}


def _ordered(regions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(regions), key=_REGION_ORDER.__getitem__))


@functools.cache
def country_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code (pycountry), plus XK (Kosovo, user-assigned but in CLDR)."""
    import pycountry

    return frozenset({country.alpha_2 for country in pycountry.countries} | {"XK"})


class RegionTaxonomy:
    """Regions as sets of countries, nested by ``parent``; immutable once built."""

    __slots__ = ("_ancestors", "_by_country", "_members", "_parents", "source")

    def __init__(
        self, members: Mapping[str, Iterable[str]], parents: Mapping[str, str] | None = None, source: str = ""
    ) -> None:
        self.source = source
        self._members = {region: frozenset(codes) for region, codes in members.items()}
        self._parents = dict(parents or {})
        for region in (*self._members, *self._parents, *self._parents.values()):
            if region not in _REGION_ORDER:
                raise ValueError(f"unknown region {region!r}")
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for region in REGIONS:
            chain = [region]
            while (parent := self._parents.get(chain[-1])) is not None:
                if parent in chain:
                    raise ValueError(f"region parents form a cycle: {' -> '.join([*chain, parent])}")
                chain.append(parent)
            self._ancestors[region] = _ordered(chain)
        by_country: dict[str, set[str]] = {}
        for region, codes in self._members.items():
            for code in codes:
                by_country.setdefault(code, set()).update(self._ancestors[region])
        self._by_country = {code: _ordered(regions) for code, regions in by_country.items()}

    @classmethod
    def load(cls, override: Path | None = None) -> RegionTaxonomy:
        """The packaged default, or ``override`` (a regions.yaml); ConfigError names file:line problems."""
        if override is None:
            return _default_taxonomy()
        return _load_taxonomy(override)

    def regions_of(self, country: str) -> tuple[str, ...]:
        """The regions ``country`` (ISO alpha-2) belongs to, expanded with their ancestors."""
        return self._by_country.get(country.upper(), ())

    def expand(self, regions: Iterable[str]) -> tuple[str, ...]:
        """``regions`` (canonical names) plus their ancestors: Palestine -> Palestine, MENA."""
        found: set[str] = set()
        for region in regions:
            found.update(self._ancestors.get(region, ()))
        return _ordered(found)

    def countries(self, region: str) -> frozenset[str]:
        """The countries listed directly under ``region``."""
        return self._members.get(region, frozenset())

    def parent(self, region: str) -> str | None:
        """The region ``region`` sits in, if any."""
        return self._parents.get(region)


@functools.cache
def _default_taxonomy() -> RegionTaxonomy:
    return _load_taxonomy(DATA_DIR / REGIONS_FILE)


def _load_taxonomy(path: Path) -> RegionTaxonomy:
    doc = load(path)
    members, parents, problems = _parse_taxonomy(doc)
    if problems:
        raise ConfigError(problems)
    return RegionTaxonomy(members, parents, source=str(path))


def _parse_taxonomy(doc: Document) -> tuple[dict[str, list[str]], dict[str, str], list[Problem]]:
    problems = list(doc.problems)
    members: dict[str, list[str]] = {}
    parents: dict[str, str] = {}
    keys: dict[str, Any] = {}
    if problems:
        return members, parents, problems
    if not isinstance(doc.data, dict) or not doc.data:
        problems.append(doc.problem((), "expected a mapping of region -> list of country codes"))
        return members, parents, problems
    known = country_codes()
    for key, spec in doc.data.items():
        region = region_named(str(key))
        if region is None:
            hint = did_you_mean(str(key), REGIONS)
            problems.append(
                doc.problem((key,), f"unknown region {key!r}{hint} (known: {', '.join(REGIONS)})")
            )
            continue
        if region in members:
            problems.append(doc.problem((key,), f"region {region!r} is defined twice"))
            continue
        keys[region] = key
        codes: Any = spec
        codes_path: tuple[str | int, ...] = (key,)
        if isinstance(spec, dict):
            for field in spec:
                if field not in ("countries", "parent"):
                    problems.append(
                        doc.problem((key, field), f"unknown field {field!r} (use countries, parent)")
                    )
            codes = spec.get("countries", [])
            codes_path = (key, "countries")
            if spec.get("parent") is not None:
                parent = region_named(str(spec["parent"]))
                if parent is None:
                    problems.append(doc.problem((key, "parent"), f"unknown parent region {spec['parent']!r}"))
                elif parent == region:
                    problems.append(doc.problem((key, "parent"), f"region {region!r} is its own parent"))
                else:
                    parents[region] = parent
        elif spec is None:
            codes = []
        if not isinstance(codes, list):
            problems.append(doc.problem(codes_path, f"{region}: expected a list of country codes"))
            codes = []
        members[region] = []
        for index, code in enumerate(codes):
            if not isinstance(code, str) or code.upper() not in known:
                written = doc.booleans.get((*codes_path, index))
                hint = f" ({written} is read as a boolean: quote it)" if written else ""
                problems.append(
                    doc.problem((*codes_path, index), f"unknown country code {code!r} in {region}{hint}")
                )
                continue
            members[region].append(code.upper())
    reported: set[str] = set()
    for region in parents:
        chain = [region]
        while (parent := parents.get(chain[-1])) is not None and parent not in chain:
            chain.append(parent)
        if parent is not None and parent == region and region not in reported:
            reported.update(chain)
            cycle = " -> ".join([*chain, region])
            problems.append(doc.problem((keys[region], "parent"), f"region parents form a cycle: {cycle}"))
    return members, parents, problems
