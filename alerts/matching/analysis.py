"""Item -> the document the matcher reads: words per field, the keys each word answers to, metadata."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

import Stemmer

from alerts.models import FeedItem
from alerts.text import arabic_forms, is_arabic, normalise, words

TEXT_FIELDS = ("title", "summary", "category")
STEM_LANGUAGES = {"en": "english", "es": "spanish", "ar": "arabic"}


@cache
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEM_LANGUAGES[language])


@lru_cache(maxsize=131072)
def stem_keys(word: str) -> frozenset[str]:
    """Language-tagged stems of a normalised word: ``ar:`` for Arabic script, ``en:`` and ``es:`` else."""
    languages = ("ar",) if is_arabic(word) else ("en", "es")
    return frozenset(f"{lang}:{_stemmer(lang).stemWord(word)}" for lang in languages)


@lru_cache(maxsize=131072)
def _word_keys(word: str, stemming: bool) -> frozenset[str]:
    forms = arabic_forms(word)
    if not stemming:
        return frozenset(forms)
    return frozenset(forms).union(*(stem_keys(form) for form in forms))


@dataclass(frozen=True, slots=True)
class Document:
    """What the matcher sees of one item."""

    words: dict[str, list[str]]  # field -> normalised words
    keys: dict[str, list[frozenset[str]]]  # field -> per word, every key it answers to
    meta: frozenset[tuple[str, str]]  # ("feed", name), ("region", R), ("lang", code), ("category", c)
    raw: str  # title and summary as published, for regex subscriptions


def detect_language(text: str) -> str | None:
    """``ar`` when most letters are Arabic script; otherwise unknown (None)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    arabic = sum(1 for ch in letters if "\u0600" <= ch <= "\u06ff")
    return "ar" if arabic * 2 > len(letters) else None


def analyse(
    item: FeedItem,
    feed: str,
    regions: Iterable[str] = (),
    lang: str | None = None,
    stemming: bool = False,
) -> Document:
    """Split the item into fields of normalised words; each word answers to its Arabic prefix-free
    forms and, when ``stemming``, to its stems."""
    category_words: list[str] = []
    for category in item.categories:
        if category_words:
            category_words.append("")  # a break: no phrase spans two categories
        category_words += words(category)
    fields = {"title": words(item.title), "summary": words(item.summary), "category": category_words}
    keys = {
        name: [_word_keys(word, stemming) if word else frozenset() for word in field]
        for name, field in fields.items()
    }
    language = lang or detect_language(item.title)
    meta = {("feed", feed), *(("region", region) for region in regions)}
    meta.update(("category", normalise(category)) for category in item.categories)
    if language:
        meta.add(("lang", language))
    return Document(fields, keys, frozenset(meta), f"{item.title}\n{item.summary}")
