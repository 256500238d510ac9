"""The words that carry a news event across English, Arabic and Spanish: what happened (concepts),
who did it (actors beyond the geotagger's places), numbers written as words, the words that signal
an update, and the words that carry no event at all (stop words, ticker attributions).

The words live in ``data/lexicon.yaml``, written as people write them; :func:`lookup` compares
them by their normalised and stemmed forms, so "killed", "kills" and "killing" are one entry, as
are "غارة" and "الغارات".
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from alerts.errors import ConfigError
from alerts.matching.analysis import stem_keys
from alerts.text import arabic_forms, is_arabic, words
from alerts.yamlsource import load

LEXICON = Path(__file__).with_name("data") / "lexicon.yaml"


@cache
def _data() -> dict[str, Any]:
    doc = load(LEXICON)
    if doc.problems:
        raise ConfigError(doc.problems)
    loaded: dict[str, Any] = doc.data
    return loaded


NUMBER_CONTEXT = frozenset({"killed", "injured"})  # a number beside these is a toll (compared for updates)


@lru_cache(maxsize=131072)
def forms(word: str) -> frozenset[str]:
    """Every form a normalised word is compared by: itself, its Arabic prefix-free forms, their stems
    (Arabic by the Arabic stemmer, other words by the English and the Spanish one)."""
    found = {word, *arabic_forms(word)} if is_arabic(word) else {word}
    return frozenset(found).union(*(stem_keys(each) for each in found))


def _phrases(table: dict[str, list[str]]) -> dict[tuple[str, ...], str]:
    """Each entry's normalised words -> its key (single words are looked up by their forms)."""
    return {
        tuple(words(phrase)): key for key, phrases in table.items() for phrase in phrases if words(phrase)
    }


@cache
def _index(name: str) -> tuple[dict[str, str], dict[str, list[tuple[tuple[str, ...], str]]]]:
    """(form -> key for single words, first word -> (words, key) for phrases) of one table."""
    table = _data()[name]
    single: dict[str, str] = {}
    multi: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for phrase, key in _phrases(table).items():
        if len(phrase) == 1:
            for form in forms(phrase[0]):
                single.setdefault(form, key)
        else:
            multi.setdefault(phrase[0], []).append((phrase, key))
    return single, multi


def lookup(name: str, text_words: list[str]) -> set[str]:
    """The keys of table ``name`` ("concepts", "actors" or "cues") that ``text_words`` name."""
    single, multi = _index(name)
    found: set[str] = set()
    for position, word in enumerate(text_words):
        for form in forms(word):
            key = single.get(form)
            if key:
                found.add(key)
                break
        for phrase, key in multi.get(word, ()):
            if tuple(text_words[position : position + len(phrase)]) == phrase:
                found.add(key)
    return found


def is_known(word: str) -> bool:
    """True for a word that names a concept, an actor or an update cue (any table)."""
    return any(form in _index(name)[0] for name in ("concepts", "actors", "cues") for form in forms(word))


@cache
def _title_words() -> frozenset[str]:
    phrases = [phrase for name in ("concepts", "actors", "cues") for phrase in _phrases(_data()[name])]
    return (
        frozenset(words(_data()["titles"])) | stop_forms() | {word for phrase in phrases for word in phrase}
    )


@cache
def name_markers() -> frozenset[str]:
    """Normalised Arabic nouns a name follows (ship, village, town, neighbourhood, camp)."""
    return frozenset(words(_data()["name_markers"]))


def is_title(word: str) -> bool:
    """True for a word that names an office or a body rather than someone (President, Forces,
    Assembly), a stop word, or a word of a multi-word lexicon entry."""
    return word in _title_words()


@cache
def stop_forms() -> frozenset[str]:
    """Every form of every stop word."""
    return frozenset(form for word in words(_data()["stopwords"]) for form in forms(word))


@cache
def number_words() -> dict[str, int]:
    """Normalised number words -> their value (0: an unstated number, "dozens")."""
    named: dict[str, int] = _data()["numbers"]
    return {normalised: value for word, value in named.items() for normalised in words(word)[:1]}
