"""Text normalisation shared by feed items and subscription terms, so both sides compare alike.

One pipeline for English, Spanish and Arabic: Unicode NFKC, casefold, Latin diacritics removed
(Líbano = libano), Arabic tashkeel and tatweel removed, alef forms unified (أ إ آ ٱ -> ا),
ى = ي, ة = ه, Arabic-Indic digits = ASCII digits. Possessive 's is dropped (Gaza's = Gaza);
other punctuation, apostrophes, quotes and hyphens split words (al-Quds = al quds).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")
# What untrusted text loses: the C0 and C1 controls that str.split does not treat as space (tab, line
# breaks, the separators \x1c-\x1f and NEL are space), DEL, zero-width space, the bidi embeddings and
# overrides (U+202A-U+202E) and isolates (U+2066-U+2069), which can make "txt.exe" show as "exe.txt"
# or reorder a headline, and the BOM. The marks LRM, RLM and ALM (U+200E, U+200F, U+061C) and ZWJ/ZWNJ
# stay: Arabic and Persian text uses them legitimately.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u200b\u202a-\u202e\u2066-\u2069\ufeff]")
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")
_FOLD = str.maketrans(
    {
        "\u0640": None,  # tatweel
        "\u0649": "\u064a",  # alef maksura -> yeh
        "\u0629": "\u0647",  # teh marbuta -> heh
        "\u0671": "\u0627",  # alef wasla -> alef
        **{chr(0x0660 + digit): str(digit) for digit in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + digit): str(digit) for digit in range(10)},  # Extended (Persian) digits
    }
)
_ARABIC = re.compile(r"^[\u0600-\u06ff]+$")
_CONJUNCTIONS = ("", "و", "ف")
_PREPOSITIONS = ("", "ب", "ل", "ك")
MIN_ARABIC_STEM = 3


def normalise(text: str) -> str:
    """Lower-case, accent-free words separated by single spaces."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The normalised words of ``text``."""
    text = _POSSESSIVE.sub("", unicodedata.normalize("NFKC", text))
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(stripped.casefold().translate(_FOLD))


def is_arabic(word: str) -> bool:
    """True for a word written in Arabic script."""
    return bool(_ARABIC.match(word))


@lru_cache(maxsize=65536)
def arabic_forms(word: str) -> tuple[str, ...]:
    """``word`` and the words it can be with its attached prefixes removed.

    Arabic attaches a conjunction (و ف), a preposition (ب ل ك) and the article (ال) to the word:
    وغزه, بغزه, والمستشفي, بالاحتلال, للمستشفي. Only those prefixes are removed, and only when at
    least three letters remain, so a short term never matches inside an unrelated longer word.
    """
    if not is_arabic(word):
        return (word,)
    forms = [word]
    for conjunction in _CONJUNCTIONS:
        if not word.startswith(conjunction):
            continue
        rest = word[len(conjunction) :]
        for preposition in _PREPOSITIONS:
            if not rest.startswith(preposition):
                continue
            body = rest[len(preposition) :]
            forms.append(body)
            if body.startswith("ال"):
                forms.append(body[2:])
        if rest.startswith("لل"):  # ل + ال contracts to لل
            forms += [rest[2:], "ال" + rest[2:]]
    return tuple(dict.fromkeys(form for form in forms if len(form) >= MIN_ARABIC_STEM))


def digest(value: str) -> str:
    """A short, stable, key-safe digest of an arbitrary string (24 hex digits)."""
    return hashlib.blake2b(value.encode("utf-8"), digest_size=12).hexdigest()


def clean(text: str) -> str:
    """``text`` on one line: without controls and bidi embeddings, whitespace collapsed to single spaces."""
    return " ".join(_INVISIBLE.sub("", text).split())


def visible(text: str) -> str:
    """``text`` without controls and bidi embeddings, its whitespace kept (for links)."""
    return _INVISIBLE.sub("", text)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters on a word boundary, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace() and (space := cut.rfind(" ")) > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the choice closest to ``word`` (ignoring case and accents), or ''."""
    by_key = {normalise(choice) or choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(normalise(word) or word.casefold(), list(by_key), n=1, cutoff=0.6)
    return f" (did you mean {by_key[close[0]]!r}?)" if close else ""
