"""Names across scripts: the consonants a name keeps in Arabic and in Latin letters, so كفركلا and
Kfarkela, صفاقس and Sfax, أم درمان and Omdurman meet where the geotagger knows neither spelling
(villages, neighbourhoods, islands). Transliteration by anyascii (the one module that touches it);
the skeleton drops what the two scripts write differently: short vowels, the long vowels and
semivowels (ا و ي: a, o, u, i, y, w), h and ع, doubled letters, and folds the letters one script has
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
    kept: list[str] = []
    for letter in latin.translate(_FOLDED):
        if not ("a" <= letter <= "z") or letter in _DROPPED or (kept and kept[-1] == letter):
            continue
        kept.append(letter)
    return "".join(kept)


def sounds(names: list[str], neighbours: bool = False) -> frozenset[str]:
    """The skeletons of ``names`` long enough to pair; with ``neighbours`` (words in the order
    written), also each two neighbours joined: أم درمان is Omdurman."""
    found = {skeleton(name) for name in names}
    if neighbours:
        found.update(skeleton(first + second) for first, second in itertools.pairwise(names))
    return frozenset(key for key in found if len(key) >= MIN_CONSONANTS)
