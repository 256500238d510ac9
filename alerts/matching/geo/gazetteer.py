"""The gazetteer: normalised name -> :class:`~alerts.matching.geo.names.Entry`, built once per process
from the package names (:mod:`alerts.matching.geo.sources`) and the curated overlay, ``data/places.yaml``.

The overlay adds Gaza, the West Bank, al-Quds, Nabatieh, Dahiyeh, the Gulf of Aqaba, Bir Ora, ...;
region-level names (Middle East, Maghreb, Latin America, EU...); bodies that stand for their country
in ticker lines (Hezbollah, Ansar Allah, IOF, Knesset, Kremlin, White House, Channel 12); Arabic and
Spanish demonyms. Overlay names win; ``stop`` drops package names that are English words (Male,
Victoria, Mobile). places.yaml also holds the city population tiers and the data of the ambiguity
rules (``ambiguous``: ``person``, ``not_names``, ``context``, ``after``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerts.errors import ConfigError, Problem
from alerts.matching.geo.names import (
    ACRONYM,
    ARABIC,
    CASED,
    LAYER_NAMES,
    OVERLAY,
    UNCASED,
    Builder,
    Entry,
    cased,
    inflect,
    strings,
)
from alerts.matching.geo.sources import add_cities, add_countries, add_states, display_names
from alerts.matching.geo.taxonomy import DATA_DIR
from alerts.models import region_named
from alerts.text import normalise
from alerts.yamlsource import Document, load

PLACES_FILE = "places.yaml"


@dataclass(frozen=True, slots=True)
class Gazetteer:
    """The index :class:`~alerts.matching.geo.tagger.Geotagger` matches against, and the ambiguity data of
    places.yaml normalised (see :mod:`alerts.matching.geo.rules`)."""

    entries: dict[str, Entry]
    prefixes: frozenset[str]  # every proper word-prefix of a multi-word key ("gaza", "gulf of")
    first_words: frozenset[str]  # the first word of every key
    person: frozenset[str]
    not_names: frozenset[str]
    context: dict[str, tuple[tuple[str, ...], Entry]]
    after: dict[str, frozenset[str]]
    us_states: dict[str, Entry]
    stats: dict[str, int]
    conflicts: tuple[str, ...]


def _load_places() -> Document:
    doc = load(DATA_DIR / PLACES_FILE)
    if doc.problems:
        raise ConfigError(doc.problems)
    return doc


@functools.cache
def packaged() -> Gazetteer:
    """Load and index the packaged data (about 0.3 s; once per process)."""
    doc = _load_places()
    data: dict[str, Any] = doc.data
    builder = Builder(strings(data.get("stop")))
    overlay_countries: dict[str, Any] = data.get("countries") or {}
    names = display_names(overlay_countries)
    population = add_countries(builder, names)
    counts = add_cities(builder, data.get("cities") or {})
    us_states = add_states(builder)
    problems = add_overlay(builder, doc, names)
    if problems:
        raise ConfigError(problems)
    entries = builder.build()
    ambiguous: dict[str, Any] = data.get("ambiguous") or {}
    context: dict[str, tuple[tuple[str, ...], Entry]] = {}
    for name, spec in (ambiguous.get("context") or {}).items():
        cues = tuple(normalise(cue) for cue in strings(spec.get("cues")))
        context[normalise(name)] = (cues, Entry(str(spec["place"]), tuple(strings(spec.get("countries")))))
    prefixes: set[str] = set()
    for key in entries:
        words = key.split(" ")
        prefixes.update(" ".join(words[:end]) for end in range(1, len(words)))
    stats = {f"{LAYER_NAMES[layer]} names": len(found) for layer, found in enumerate(builder.layers)}
    stats |= counts
    stats["keys"] = len(entries)
    stats["countries"] = len(
        {code for entry in entries.values() for code in entry.countries} & set(population)
    )
    stats["arabic keys"] = sum(1 for key in entries if ARABIC.match(key))
    return Gazetteer(
        entries=entries,
        prefixes=frozenset(prefixes),
        first_words=frozenset(key.split(" ", 1)[0] for key in entries),
        person=frozenset(normalise(name) for name in strings(ambiguous.get("person"))),
        not_names=frozenset(normalise(name) for name in strings(ambiguous.get("not_names"))),
        context=context,
        after={
            normalise(name): frozenset(normalise(word) for word in strings(words))
            for name, words in (ambiguous.get("after") or {}).items()
        },
        us_states=us_states,
        stats=stats,
        conflicts=tuple(builder.conflicts),
    )


@functools.cache
def country_places() -> frozenset[str]:
    """The canonical names that stand for a whole country or a region, not a town (Lebanon, DR
    Congo, the Red Sea): reports naming only these may be about anywhere in it."""
    names = display_names(_load_places().data.get("countries") or {})
    coarse = set(names.values())
    coarse.update(entry.place for entry in packaged().entries.values() if len(entry.countries) != 1)
    return frozenset(coarse)


def stats() -> dict[str, int]:
    """How many names each data layer contributed, and the totals (keys, countries, cities, capitals)."""
    return dict(packaged().stats)


def add_overlay(builder: Builder, doc: Document, names: Mapping[str, str]) -> list[Problem]:
    """The curated ``countries`` and ``places`` of places.yaml; returns its problems."""
    data: dict[str, Any] = doc.data
    problems: list[Problem] = []
    for code, spec in (data.get("countries") or {}).items():
        if code not in names:
            problems.append(doc.problem(("countries", code), f"unknown country code {code!r}"))
            continue
        problems += _add_forms(builder, doc, ("countries", code), spec or {}, Entry(names[code], (code,)))
    for place, spec in (data.get("places") or {}).items():
        spec = spec or {}
        here = ("places", place)
        countries = tuple(strings(spec.get("countries")))
        problems += [
            doc.problem((*here, "countries"), f"unknown country code {code!r}")
            for code in countries
            if code not in names
        ]
        regions = [region_named(name) for name in strings(spec.get("regions"))]
        problems += [
            doc.problem((*here, "regions"), f"unknown region {name!r}")
            for name, region in zip(strings(spec.get("regions")), regions, strict=True)
            if region is None
        ]
        if not (countries or regions or spec.get("ignore")):
            problems.append(doc.problem(here, f"{place}: needs countries, regions or ignore"))
        known = tuple(region for region in regions if region is not None)
        entry = Entry(str(place), countries, known, ignore=bool(spec.get("ignore")))
        problems += _add_forms(builder, doc, here, spec, entry)
    return problems


def _add_forms(
    builder: Builder, doc: Document, here: tuple[str | int, ...], spec: Mapping[str, Any], entry: Entry
) -> list[Problem]:
    """One overlay entry's names (cased by script), acronyms, lower-case forms and inflected demonyms."""
    problems: list[Problem] = []
    for name in strings(spec.get("names")):
        builder.add(OVERLAY, name, dataclasses.replace(entry, case=cased(name)))
    for name in strings(spec.get("acronyms")):
        builder.add(OVERLAY, name, dataclasses.replace(entry, case=ACRONYM))
    for name in strings(spec.get("lower")):
        builder.add(OVERLAY, name, dataclasses.replace(entry, case=UNCASED))
    demonyms: dict[str, Any] = spec.get("demonyms") or {}
    for language, words in demonyms.items():
        if language not in ("en", "es", "ar"):
            problems.append(doc.problem((*here, "demonyms", language), f"unknown language {language!r}"))
            continue
        case = CASED if language == "en" else UNCASED  # Spanish demonyms are written in lower case
        for word in strings(words):
            for form in inflect(language, word):
                builder.add(OVERLAY, form, dataclasses.replace(entry, case=case, article=language == "ar"))
    return problems
