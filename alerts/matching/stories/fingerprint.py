"""An item -> what its headline pins down about the event: content words (stemmed, per language),
places (the geotagger's canonical names, so "خان يونس" and "Khan Younis" agree), actors, what
happened, numbers and tolls, update cues, and when. Pure."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from babel import Locale

from alerts.matching.analysis import detect_language, stem_keys
from alerts.matching.geo import Geotagger, country_codes
from alerts.matching.stories import lexicon
from alerts.models import FeedItem
from alerts.text import is_arabic, words

EVENT_CONCEPTS = frozenset(
    {
        "attack",
        "quake",
        "flood",
        "storm",
        "fire",
        "election",
        "protest",
        "ceasefire",
        "talks",
        "arrest",
        "explosion",
        "shooting",
        "crash",
        "resign",
        "sanctions",
        "intercept",
        "incursion",
        "clash",
    }
)  # what happened; the other concepts say to what or whom (house, car, children)
COARSE_PLACES = frozenset({"Gaza", "Gaza Strip", "West Bank", "Middle East", "Red Sea", "Europe", "Africa"})
_NUMBER = re.compile(r"^\d+$")  # a word that is a number (words() splits "5.1")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_ARABIC_DIGITS = str.maketrans(
    {chr(base + digit): str(digit) for base in (0x0660, 0x06F0) for digit in range(10)}
)
_SPANISH = frozenset(words("el la los las del y que por para con una según tras muertos personas dos años"))
_ENGLISH = frozenset(words("the of and to for with says killed after is are was on at by"))


@dataclass(frozen=True, slots=True)
class StoryPrint:
    """What one report says about its event."""

    lang: str  # "en", "es" or "ar"
    terms: frozenset[str]  # content words, stemmed in the report's language
    places: frozenset[str]  # canonical place names, every one
    fine: frozenset[str]  # those finer than a country or a region (towns, camps, provinces)
    countries: frozenset[str]
    actors: frozenset[str]
    concepts: frozenset[str]
    numbers: frozenset[float]
    tolls: frozenset[float]  # numbers said of the killed or injured
    cues: frozenset[str]  # update cues: rises, confirmed, dies, claims
    at: float  # when it was published (or first seen), unix seconds
    title: str = ""
    events: frozenset[str] = field(init=False, compare=False)  # the concepts that say what happened
    facts: frozenset[str] = field(init=False, compare=False)  # what any language says alike
    features: frozenset[str] = field(init=False, compare=False)  # everything compared in one language

    def __post_init__(self) -> None:
        facts = frozenset(
            [
                *(f"p:{place}" for place in self.places),
                *(f"a:{actor}" for actor in self.actors),
                *(f"c:{concept}" for concept in self.concepts),
                *(f"n:{number:g}" for number in self.numbers),
            ]
        )
        object.__setattr__(self, "events", self.concepts & EVENT_CONCEPTS)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "features", self.terms | facts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (sets as sorted lists)."""
        data: dict[str, Any] = {"lang": self.lang, "at": self.at, "title": self.title}
        for name in (
            "terms",
            "places",
            "fine",
            "countries",
            "actors",
            "concepts",
            "numbers",
            "tolls",
            "cues",
        ):
            data[name] = sorted(getattr(self, name))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoryPrint:
        """Inverse of :meth:`to_json`."""
        sets = {
            name: frozenset(data.get(name) or ())
            for name in (
                "terms",
                "places",
                "fine",
                "countries",
                "actors",
                "concepts",
                "numbers",
                "tolls",
                "cues",
            )
        }
        return cls(lang=data["lang"], at=float(data["at"]), title=data.get("title", ""), **sets)


class Fingerprinter:
    """Makes :class:`StoryPrint` s with one geotagger (thread-safe as the geotagger is)."""

    def __init__(self, geotagger: Geotagger) -> None:
        self._geo = geotagger

    def fingerprint(self, item: FeedItem, at: float, lang: str | None = None) -> StoryPrint:
        """The print of ``item``'s headline (the summary adds nothing: ticker lines have none, and
        an article's summary says much that is not the event)."""
        title_words = words(item.title)
        language = _language(item.title, title_words, lang)
        hits = self._geo.tag(item.title)
        places = frozenset(hit.place for hit in hits)
        coarse = _coarse_places()
        stop = lexicon.stop_forms()
        numbers = _numbers(item.title, title_words)
        terms = frozenset(
            _term(word, language)
            for word in title_words
            if word not in stop and not _NUMBER.match(word) and word not in lexicon.number_words()
        )
        concepts = lexicon.lookup("concepts", title_words)
        return StoryPrint(
            lang=language,
            terms=terms,
            places=places,
            fine=frozenset(place for place in places if place not in coarse),
            countries=frozenset(code for hit in hits for code in hit.countries),
            actors=frozenset(lexicon.lookup("actors", title_words)),
            concepts=frozenset(concepts),
            numbers=numbers,
            tolls=numbers if concepts & lexicon.NUMBER_CONTEXT else frozenset(),
            cues=frozenset(lexicon.lookup("cues", title_words)),
            at=at,
            title=item.title,
        )


def _language(title: str, title_words: list[str], given: str | None) -> str:
    if given in ("en", "es", "ar"):
        return given
    if detect_language(title) == "ar":
        return "ar"
    spanish = sum(word in _SPANISH for word in title_words)
    english = sum(word in _ENGLISH for word in title_words)
    return "es" if spanish > english else "en"


def _term(word: str, language: str) -> str:
    """One stem per word, in the report's language (Arabic words by the Arabic stemmer)."""
    keys = stem_keys(word)
    prefix = "ar:" if is_arabic(word) else f"{'es' if language == 'es' else 'en'}:"
    return next((key for key in sorted(keys) if key.startswith(prefix)), word)


def _numbers(title: str, title_words: list[str]) -> frozenset[float]:
    """The numbers a headline states, in digits (5.1, 1,200, ٨) or words (eight, ocho, ثمانية);
    years and unstated numbers ("dozens") left out."""
    found: set[float] = set()
    for match in _DIGITS.finditer(unicodedata.normalize("NFKC", title).translate(_ARABIC_DIGITS)):
        text = match.group()
        thousands = re.fullmatch(r"\d{1,3}(?:,\d{3})+", text)
        value = float(text.replace(",", "") if thousands else text.replace(",", "."))
        if not (1900 <= value <= 2100 and value.is_integer()):
            found.add(value)
    named = lexicon.number_words()
    found.update(float(named[word]) for word in title_words if named.get(word))
    return frozenset(found)


@cache
def _coarse_places() -> frozenset[str]:
    """Place names that stand for a whole country or region (compared only as context)."""
    english = Locale("en").territories
    names = {english[code] for code in country_codes() if code in english}
    return frozenset(
        names | COARSE_PLACES | {"Israel", "Palestine", "Lebanon", "Syria", "Iran", "Yemen", "Hezbollah"}
    )
