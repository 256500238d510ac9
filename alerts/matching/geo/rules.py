"""The rules that decide whether a name the longest match found counts as a place.

:class:`~alerts.matching.geo.tagger.Geotagger` tries the names starting at a word longest first; when one
fails a rule below, the next shorter one at that word is tried. Ambiguity rules, all data in ``places.yaml``:

1. Case: a Latin-script name counts only if one of its words is capitalised in the text ("nice
   weather", "turkey dinner", "chad" are no places); acronyms (US, U.S., UK, UAE, IOF, EU) only when
   written in capitals ("us" is a pronoun). Spanish demonyms (venezolano) and Arabic have no case.
   In an ALL-CAPS text everything counts as capitalised. (:func:`accepts`)
2. Arabic prefixes: و ف (and), ب ل ك (in, to, like), ال (the) and their combinations are stripped
   from a word when the rest is a known place (وغزة، بغزة، ولبنان، والقدس، للعراق -> العراق). Only
   demonyms may lose their article (الإسرائيلية -> إسرائيلي); a place never does (الصور "the
   pictures" is not صور Tyre). (:func:`candidates`, :func:`accepts`)
3. ``after``: a few Arabic names that are common words count only after a listed word (صور Tyre /
   "pictures" after في، قضاء، جنوب...; مالي Mali / "financial"; بنين Benin / "sons"; مأرب / "aims").
   (:func:`accepts`)
4. ``person``: given names and surnames (Jordan, Chad, Kenya, Paris, Houston...) do not count when
   directly next to (only spaces between) a capitalised word that is neither a place nor one of
   ``not_names`` (King, Minister, weekdays...): "Michael Jordan", "Jordan Peterson" are no places,
   "Jordan's king", "King of Jordan", "Amman, Jordan" are. Not applied to Title Case Headlines,
   where every word is capitalised. (:func:`accepts`)
5. ``context``: Georgia is the country unless a cue (Atlanta, Savannah, "US state", Kemp...) appears
   anywhere in the texts; then it is the US state. (:func:`apply_context`)
6. "Town, State": a place directly followed by a comma and a US state is a US town ("Lebanon,
   Pennsylvania", "Paris, Texas"): it is dropped and the state gives US. "Athens, Georgia" makes
   Georgia the US state; "Tbilisi, Georgia" stays the country. (:func:`drop_us_towns`)
7. Blockers (``ignore: true`` in the overlay): phrases the longest match consumes without a hit
   (Indian Ocean, Arab League, Georgia Tech, English). (``Geotagger.tag`` drops them.)

Known limits: a sentence-initial capitalised common word ("Nice to see") counts; ALL-CAPS text
defeats rules 1 and 4; "America" is the United States.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alerts.matching.geo.gazetteer import Gazetteer
from alerts.matching.geo.names import ACRONYM, ARABIC, CASED, Entry

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
Token = tuple[str, tuple[tuple[str, str, bool], ...], int]
_NONE, _LOWER, _TITLE, _UPPER = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Words:
    """One text split into words: the text, each word's match, and its analysis."""

    text: str
    matches: list[re.Match[str]]
    tokens: list[Token]
    norms: list[str]


def word_case(word: str) -> int:
    """How a word is written, for rules 1 and 4: no case, lower, Title or UPPER."""
    if word.isupper():
        return _UPPER
    first = word[0]
    return _TITLE if first.isupper() else _LOWER if first.islower() else _NONE


def _title_case(tokens: list[Token]) -> bool:
    """Whether a text capitalises nearly every longer word (a Title Case Headline)."""
    longer = [token[2] for token in tokens if len(token[0]) > 3 and token[2] != _NONE]
    return len(longer) >= 4 and sum(case >= _TITLE for case in longer) >= 0.8 * len(longer)


def candidates(gaz: Gazetteer, norm: str) -> tuple[tuple[str, str, bool], ...]:
    """The forms of a word that start some name: itself, and for Arabic the word less its prefixes
    (with whether an article was removed with them)."""
    first = gaz.first_words
    found: dict[str, tuple[str, str, bool]] = {}
    if norm in first:
        found[norm] = (norm, "", False)
    if ARABIC.match(norm):
        for prefix, article in _AR_PREFIXES:
            if not norm.startswith(prefix) or len(norm) - len(prefix) < 2:
                continue
            rest = norm[len(prefix) :]
            if rest in first and rest not in found:
                found[rest] = (rest, prefix, article and not rest.startswith(_AL))
            restored = _AL + rest  # للعراق -> العراق
            if article and restored in first and restored not in found and restored != norm:
                found[restored] = (restored, prefix, False)
    return tuple(found.values())


def accepts(
    gaz: Gazetteer, words: Words, i: int, j: int, key: str, entry: Entry, prefix: str, article: bool
) -> bool:
    """Whether words i..j name ``entry`` under the case, Arabic and ambiguity rules."""
    cases = [token[2] for token in words.tokens[i:j]]
    if entry.case == CASED and not any(case >= _TITLE for case in cases):
        return False
    if entry.case == ACRONYM and not all(case == _UPPER for case in cases):
        return False
    if article and not entry.article:
        return False
    allowed = gaz.after.get(key)
    if allowed is not None and prefix not in _BI:
        before = words.norms[i - 1] if i else ""
        conjunction = before[:1] in ("\u0648", "\u0641")  # وفي، ففي
        if before not in allowed and not (conjunction and before[1:] in allowed):
            return False
    return key not in gaz.person or not _beside_name(gaz, words, i, j)


def _beside_name(gaz: Gazetteer, words: Words, i: int, j: int) -> bool:
    """Whether words i..j sit directly next to a capitalised word that is no place: a person's name."""
    if _title_case(words.tokens):
        return False
    for k, (left, right) in ((i - 1, (i - 1, i)), (j, (j - 1, j))):
        if k < 0 or k >= len(words.tokens):
            continue
        norm, _, case = words.tokens[k]
        if case != _TITLE or len(norm) < 2 or norm in gaz.not_names or norm in gaz.entries:
            continue
        if words.text[words.matches[left].end() : words.matches[right].start()].isspace():
            return True
    return False


def apply_context(
    gaz: Gazetteer, raw: list[tuple[str, str, Entry]], words: list[list[str]]
) -> list[tuple[str, Entry]]:
    """(found text, entry) of each raw hit, a ``context`` name read as its alternative (Georgia, the US
    state) when one of its cues appears among ``words``, the normalised words of all the texts."""
    out: list[tuple[str, Entry]] = []
    cue_text: str | None = None
    for found, key, entry in raw:
        if key in gaz.context and entry is gaz.entries.get(key):
            if cue_text is None:
                cue_text = " " + " ".join(" ".join(norms) for norms in words) + " "
            cues, alternative = gaz.context[key]
            if any(f" {cue} " in cue_text for cue in cues):
                entry = alternative
        out.append((found, entry))
    return out


def drop_us_towns(
    gaz: Gazetteer, words: Words, found: list[tuple[int, int, str, Entry]]
) -> list[tuple[int, int, str, Entry]]:
    """ "Lebanon, Pennsylvania": a place followed by a comma and a US state is a US town, dropped;
    "Athens, Georgia" makes Georgia the US state, "Tbilisi, Georgia" leaves it the country."""
    found = list(found)
    for index in range(len(found) - 1, 0, -1):
        (_, end, _, place), (start, stop, key, state) = found[index - 1], found[index]
        if start != end or key not in gaz.us_states or "US" in place.countries:
            continue
        if words.text[words.matches[end - 1].end() : words.matches[start].start()].strip() != ",":
            continue
        if state.countries != ("US",):  # the country reading (Georgia)
            if set(place.countries) <= set(state.countries):
                continue
            found[index] = (start, stop, key, gaz.us_states[key])
        del found[index - 1]
    return found
