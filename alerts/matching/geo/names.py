"""The gazetteer's building blocks: :class:`Entry` (what a normalised name means), the data layers,
and :class:`Builder`, which keys names as :func:`alerts.text.normalise` words and resolves a key
several names share (a later layer wins over an earlier one; within a layer the heaviest entry);
plus the inflection of demonyms, which package and overlay names both use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alerts.text import normalise

ARABIC = re.compile(r"[\u0621-\u064a]")
POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b")

# how a name must be written to count: any case (Arabic, lower-case forms), capitalised, all capitals
UNCASED, CASED, ACRONYM = 0, 1, 2
# the data layers, in order: a later layer overrides an earlier one
CITY, STATE, CAPITAL, DEMONYM, COUNTRY, OVERLAY = range(6)
LAYER_NAMES = ("city", "state", "capital", "demonym", "country", "overlay")


@dataclass(frozen=True, slots=True)
class Entry:
    """What a gazetteer key stands for: a place, its countries and/or regions, and how it is written."""

    place: str
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    case: int = CASED
    article: bool = False  # an Arabic demonym: may be written with an article the key lacks
    ignore: bool = False  # a blocker: consumed by the longest match, never reported


def cased(name: str) -> int:
    return CASED if any(ch.isupper() or ch.islower() for ch in name) else UNCASED


class Builder:
    """Names by layer; :meth:`build` gives the key -> entry table (``stop`` drops package names)."""

    def __init__(self, stop: Iterable[str]) -> None:
        self.stop = {normalise(name) for name in stop}
        self.layers: list[dict[str, list[tuple[tuple[float, ...], Entry]]]] = [{} for _ in LAYER_NAMES]
        self.conflicts: list[str] = []

    def add(self, layer: int, name: str, entry: Entry, weight: tuple[float, ...] = (0.0,)) -> None:
        key = normalise(POSSESSIVE.sub("", name))
        if len(key.replace(" ", "")) < 2 or (layer != OVERLAY and key in self.stop):
            return
        case = cased(name)
        if layer != OVERLAY and case == CASED and len(key) < 3:
            return
        if entry.case == CASED and case == UNCASED:  # Arabic script has no case
            entry = dataclasses.replace(entry, case=UNCASED)
        self.layers[layer].setdefault(key, []).append((weight, entry))

    def build(self) -> dict[str, Entry]:
        table: dict[str, Entry] = {}
        for layer, names in enumerate(self.layers):
            for key, found in names.items():
                table[key] = self._resolve(layer, key, found)
        return table

    def _resolve(self, layer: int, key: str, found: list[tuple[tuple[float, ...], Entry]]) -> Entry:
        best = max(found, key=lambda item: item[0])[1]
        same = [
            entry
            for _, entry in found
            if (entry.place, entry.countries, entry.regions, entry.ignore)
            == (best.place, best.countries, best.regions, best.ignore)
        ]
        case = min(entry.case for entry in same)
        article = any(entry.article for entry in same)
        if len(same) < len(found):
            if layer == COUNTRY:  # a name two codes share (سانت مارتن: MF and SX): both
                codes = dict.fromkeys(code for _, entry in found for code in entry.countries)
                return Entry(best.place, tuple(codes), best.regions, case, article)
            if layer == OVERLAY:
                places = sorted({entry.place for _, entry in found})
                self.conflicts.append(f"{key!r} names {', '.join(places)}")
        return Entry(best.place, best.countries, best.regions, case, article, best.ignore)


# Spanish demonyms: ending -> its replacements (venezolano -> venezolana, venezolanos, venezolanas;
# libanés -> libanesa, libaneses, libanesas; israelí -> israelíes, israelís; estadounidense -> -s)
_ES_ENDINGS = (
    ("o", ("o", "a", "os", "as")),
    ("es", ("es", "esa", "eses", "esas")),
    ("an", ("an", "ana", "anes", "anas")),
    ("on", ("on", "ona", "ones", "onas")),
    ("ol", ("ol", "ola", "oles", "olas")),
    ("i", ("i", "is", "ies")),
    ("u", ("u", "us", "ues")),
    ("e", ("e", "es")),
    ("a", ("a", "as")),
)


def inflect(language: str, word: str) -> list[str]:
    """A demonym's forms: en plural; es feminine and plurals; ar feminine, plurals, dual."""
    if language == "en":
        plural = not word.endswith(("s", "sh", "ch", "x", "z", "ese"))
        return [word, word + "s"] if plural else [word]
    base = normalise(word)
    if language == "es":
        for ending, replacements in _ES_ENDINGS:
            if base.endswith(ending):
                return [base[: -len(ending)] + replacement for replacement in replacements]
        return [base, base + "es"]
    if " " in base or not base.endswith("\u064a"):  # Arabic: only single words in -ي inflect
        return [base]
    return [
        base,
        base + "\u0647",
        base + "\u0648\u0646",
        base + "\u064a\u0646",
        base + "\u0627\u0646",
        base + "\u0627\u062a",
    ]


def strings(value: Any) -> list[str]:
    """A YAML value (nothing, a scalar or a list) as a list of strings."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]
