"""Names across scripts: the consonants a name keeps in Arabic and in Latin letters, so كفركلا and
Kfarkela, صفاقس and Sfax, أم درمان and Omdurman meet where the geotagger knows neither spelling
(villages, neighbourhoods, islands). Transliteration by anyascii (the one module that touches it);
the skeleton drops what the two scripts write differently: short vowels, the long vowels and
semivowels (ا و ي: a, o, u, i, y, w), h and ع, a letter written twice, and folds the letters one script has
and the other lacks (p -> b, v -> f, q -> k, z -> s). Pure."""

from __future__ import annotations

import itertools
from functools import lru_cache

from anyascii import anyascii

MIN_CONSONANTS = 3  # shorter skeletons (Rafah: rf) say too little to pair two names
_DIGRAPHS = (("kh", "k"), ("gh", "j"), ("sh", "s"), ("ch", "s"), ("th", "t"), ("dh", "d"), ("ph", "f"))
_FOLDED = str.maketrans({"q": "k", "c": "k", "g": "j", "p": "b", "v": "f", "z": "s", "x": "ks"})
_DROPPED = frozenset("aeiouywh")
_ARTICLE = "ال"


@lru_cache(maxsize=65536)
def skeleton(name: str) -> str:
    """The consonant skeleton of ``name`` (one or more words, any script): "Kfarkela" -> "kfrkl"."""
    if name.startswith(_ARTICLE) and len(name) > len(_ARTICLE) + 2:
        name = name[len(_ARTICLE) :]
    latin = anyascii(name).lower()
    for pair, single in _DIGRAPHS:
        latin = latin.replace(pair, single)
    letters = [letter for letter in latin.translate(_FOLDED) if "a" <= letter <= "z"]
    once = [letter for at, letter in enumerate(letters) if not at or letters[at - 1] != letter]  # Melilla
    return "".join(letter for letter in once if letter not in _DROPPED)


def sounds(names: list[str], neighbours: bool = False) -> frozenset[str]:
    """The skeletons of ``names`` long enough to pair; with ``neighbours`` (words in the order
    written), also each two neighbours joined: أم درمان is Omdurman."""
    found = {skeleton(name) for name in names}
    if neighbours:
        found.update(skeleton(first + second) for first, second in itertools.pairwise(names))
    found |= {_merged(key) for key in found}  # Baluchistán, بلوشستان: blsstn and blstn
    return frozenset(key for key in found if len(key) >= MIN_CONSONANTS)


def _merged(key: str) -> str:
    """A skeleton with a consonant repeated across a dropped vowel written once."""
    return "".join(letter for at, letter in enumerate(key) if not at or key[at - 1] != letter)
