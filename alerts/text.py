"""Text normalisation shared by feed items and subscription terms, so both sides compare alike."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
_ARABIC_FOLD = str.maketrans(
    {
        "\u0640": None,  # tatweel
        "\u0649": "\u064a",  # alef maksura -> yeh
        "\u0629": "\u0647",  # teh marbuta -> heh
        "\u0671": "\u0627",  # alef wasla -> alef
    }
)


def normalise(text: str) -> str:
    """Lower-case, accent-free words separated by single spaces.

    NFKD then dropping combining marks removes Latin accents (Líbano -> libano) and Arabic
    tashkeel and hamza carriers (أ إ آ -> ا); punctuation, apostrophes and hyphens split words
    (Gaza's -> gaza s, al-Quds -> al quds).
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = stripped.casefold().translate(_ARABIC_FOLD)
    return " ".join(_WORD.findall(folded))


def words(text: str) -> list[str]:
    """The normalised words of ``text``."""
    return normalise(text).split()
