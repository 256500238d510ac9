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


def _phrases(table: dict[str, list[str]]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Each entry's normalised words -> the keys it names ("shot dead": killed, and a shooting)."""
    found: dict[tuple[str, ...], list[str]] = {}
    for key, phrases in table.items():
        for phrase in phrases:
            normal = tuple(words(phrase))
            if normal and key not in found.setdefault(normal, []):
                found[normal].append(key)
    return {phrase: tuple(keys) for phrase, keys in found.items()}


Phrases = dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]  # first word -> (words, keys)


@cache
def _index(name: str) -> tuple[dict[str, tuple[str, ...]], Phrases]:
    """(form -> keys for single words, first word -> (words, keys) for phrases, longest first) of
    one table. A word may name more than one key ("shelling": an attack, and artillery)."""
    table = _data()[name]
    single: dict[str, list[str]] = {}
    exact: dict[str, list[str]] = {}
    multi: Phrases = {}
    for phrase, keys in _phrases(table).items():
        if len(phrase) > 1:
            multi.setdefault(phrase[0], []).append((phrase, keys))
            continue
        for key in keys:
            _add(exact, phrase[0], key)
            for form in forms(phrase[0]):
                _add(single, form, key)
    for phrases in multi.values():
        phrases.sort(key=lambda entry: -len(entry[0]))
    # a word written as an entry is that entry's, whatever its stems also name
    merged = {form: tuple(keys) for form, keys in single.items()}
    merged.update({word: tuple(keys) for word, keys in exact.items()})
    return merged, multi


def _add(index: dict[str, list[str]], form: str, key: str) -> None:
    keys = index.setdefault(form, [])
    if key not in keys:
        keys.append(key)


def lookup(name: str, text_words: list[str]) -> set[str]:
    """The keys of table ``name`` ("concepts", "actors" or "cues") that ``text_words`` name. A
    phrase takes its words ("tropical storm" is a storm, not also a storming; "car bomb" is a bomb,
    not a car); of a word's forms, the word itself first, then its stems in a fixed order."""
    found: set[str] = set()
    position = 0
    while position < len(text_words):
        word = text_words[position]
        phrase = next(
            (
                (len(words_of), keys)
                for words_of, keys in _phrases_from(name, word)
                if tuple(text_words[position + 1 : position + len(words_of)]) == words_of[1:]
            ),
            None,
        )
        if phrase:
            found.update(phrase[1])
            position += phrase[0]
            continue
        found.update(_word_keys(name, word))
        position += 1
    return found


@lru_cache(maxsize=262144)
def _word_keys(name: str, word: str) -> tuple[str, ...]:
    """The keys one word names in table ``name``: as written, else by its first form that does."""
    single = _index(name)[0]
    return single.get(word) or next((single[form] for form in sorted(forms(word)) if form in single), ())


@lru_cache(maxsize=262144)
def _phrases_from(name: str, word: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The phrases of table ``name`` that ``word`` may start, longest first: as written, or without
    its attached و, ف, ب ... ("ولا أنباء عن ضحايا" is "لا أنباء عن ضحايا")."""
    multi = _index(name)[1]
    if word in multi:
        return tuple(multi[word])
    firsts = sorted(form for form in arabic_forms(word) if form in multi) if is_arabic(word) else []
    return tuple(entry for first in firsts for entry in multi[first])


@lru_cache(maxsize=262144)
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
