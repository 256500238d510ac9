"""Finding places in text: :class:`Geotagger` and its :class:`PlaceHit`.

Text and names are compared as :func:`alerts.text.normalise` words (case, accents, Arabic
hamza/tashkeel folded, possessive 's dropped), by dictionary look-ups of word n-grams that extend only
while they are the start of some name (about 6 µs a headline; each distinct word is analysed once and
cached). The longest name wins (Guinea-Bissau, not Guinea; Papua New Guinea; Niger never matches
inside Nigeria since whole words are compared); when it fails a rule of :mod:`alerts.matching.geo.rules`, the
next shorter one at that word is tried. ``tag`` reports each (words, place) once, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alerts.matching.geo.gazetteer import packaged
from alerts.matching.geo.names import POSSESSIVE, Entry
from alerts.matching.geo.rules import (
    Token,
    Words,
    accepts,
    apply_context,
    candidates,
    drop_us_towns,
    word_case,
)
from alerts.matching.geo.taxonomy import RegionTaxonomy
from alerts.models import REGIONS
from alerts.text import normalise


@dataclass(frozen=True, slots=True)
class PlaceHit:
    """One place found in a text."""

    text: str  # the words as found in the input
    place: str  # canonical place name (English)
    countries: tuple[str, ...]  # ISO alpha-2
    regions: tuple[str, ...]  # canonical region names (already expanded to ancestors)


# a word: letters/digits, with Arabic tashkeel, tatweel and Latin combining marks inside it
_TOKEN = re.compile(
    r"[^\W_][^\W_\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u0640]*"
    r"(?:[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u0640]+[^\W_]*)*"
)


class Geotagger:
    """Finds places in headlines and maps them to countries and regions; pure and thread-safe enough
    (its only state is a bounded cache of analysed words)."""

    CACHE_WORDS = 200_000

    def __init__(self, taxonomy: RegionTaxonomy) -> None:
        self.taxonomy = taxonomy
        gazetteer = packaged()
        self._gaz = gazetteer
        self._entries = gazetteer.entries
        self._prefixes = gazetteer.prefixes
        self._regions: dict[Entry, tuple[str, ...]] = {}
        for entry in {
            *gazetteer.entries.values(),
            *(alt for _, alt in gazetteer.context.values()),
            *gazetteer.us_states.values(),
        }:
            self._regions[entry] = self._resolve(entry)
        self._words: dict[str, Token] = {}

    def _resolve(self, entry: Entry) -> tuple[str, ...]:
        regions = list(entry.regions)
        for code in entry.countries:
            regions.extend(self.taxonomy.regions_of(code))
        return self.taxonomy.expand(regions)

    def tag(self, *texts: str) -> list[PlaceHit]:
        """The places named in ``texts`` (e.g. title, summary), in order, one per distinct word and place."""
        raw: list[tuple[str, str, Entry]] = []  # (found text, key, entry)
        words: list[list[str]] = []
        for text in texts:
            if text:
                words.append(self._scan(text, raw))
        hits: list[PlaceHit] = []
        seen: set[tuple[str, str]] = set()
        for found, entry in apply_context(self._gaz, raw, words):
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

    def _word(self, word: str) -> Token:
        token = self._words.get(word)
        if token is None:
            norm = word.lower() if word.isascii() else normalise(word)
            token = (norm, candidates(self._gaz, norm), word_case(word))
            if len(self._words) >= self.CACHE_WORDS:
                self._words.clear()
            self._words[word] = token
        return token

    def _scan(self, text: str, raw: list[tuple[str, str, Entry]]) -> list[str]:
        """Append the places of one text to ``raw``; return its normalised words."""
        matches = list(_TOKEN.finditer(text))
        if "'" in text or "\u2019" in text:  # drop the possessive 's, as normalise does (Gaza's = Gaza)
            possessive = {found.start() + 1 for found in POSSESSIVE.finditer(text)}
            if possessive:
                matches = [match for match in matches if match.start() not in possessive]
        cache = self._words
        tokens = [cache.get(word) or self._word(word) for word in map(re.Match.group, matches)]
        words = Words(text, matches, tokens, [token[0] for token in tokens])
        found: list[tuple[int, int, str, Entry]] = []
        i, count = 0, len(tokens)
        while i < count:
            if not tokens[i][1]:  # most words start no name
                i += 1
                continue
            for length, key, prefix, article in self._options(words, i):
                entry = self._entries[key]
                if accepts(self._gaz, words, i, i + length, key, entry, prefix, article):
                    found.append((i, i + length, key, entry))
                    i += length
                    break
            else:
                i += 1
        for i, j, key, entry in drop_us_towns(self._gaz, words, found):
            raw.append((text[matches[i].start() : matches[j - 1].end()], key, entry))
        return words.norms

    def _options(self, words: Words, i: int) -> list[tuple[int, str, str, bool]]:
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
