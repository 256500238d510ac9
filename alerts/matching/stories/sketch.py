"""Finding the stories a report may belong to without comparing it with every open story: a MinHash
of its features cut into bands (reports sharing many features share many bands), and bands of the
facts alone (places, actors, what happened, numbers) where reports in other languages meet. Pure.

MinHash is computed here rather than with datasketch: a headline has about fifteen features, so
32 hash functions in plain Python cost tens of µs, where datasketch would bring numpy and scipy
(tens of MB) into every poll worker for the same numbers.
"""

from __future__ import annotations

import hashlib
import random
import zlib

from alerts.matching.stories.fingerprint import StoryPrint

PERMUTATIONS = 12
ROWS = 1  # one row per band: reports with Jaccard J share a band with 1 - (1 - J)^12, and how many
# bands they share estimates J, which ranks the candidates (bench/stories.py: two rows lost a third
# of the reworded pairs before any comparison)
BANDS = PERMUTATIONS // ROWS
_MASK = 0xFFFFFFFF
_RANDOM = random.Random(0x5709)  # fixed: every worker must cut the same bands
_PERMUTATIONS = [(_RANDOM.getrandbits(32), _RANDOM.getrandbits(32) | 1) for _ in range(PERMUTATIONS)]


def minhash(features: frozenset[str]) -> list[int]:
    """The MinHash signature of ``features``: for each of PERMUTATIONS 32-bit hash functions (a
    CRC-32 of the feature, xor-ed and multiplied by odd constants), the least value."""
    values = [zlib.crc32(feature.encode()) for feature in features] or [0]
    return [min(((value ^ mask) * odd) & _MASK for value in values) for mask, odd in _PERMUTATIONS]


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def band_keys(report: StoryPrint) -> list[str]:
    """The bucket keys of the report's bands (within its language)."""
    signature = minhash(report.features)
    return [
        _key(f"{report.lang}|{band}|" + ",".join(map(str, signature[band * ROWS : (band + 1) * ROWS])))
        for band in range(BANDS)
    ]


FACT_BANDS = 8  # one-row bands over the facts alone: reports in two languages meet there


def fact_band_keys(report: StoryPrint) -> list[str]:
    """Bucket keys of bands over what any language says alike (places, actors, concepts, numbers)."""
    if not report.facts:
        return []
    signature = minhash(report.facts)[:FACT_BANDS]
    return [_key(f"facts|{band}|{value}") for band, value in enumerate(signature)]


def bucket_keys(report: StoryPrint) -> list[str]:
    """Every bucket the report is filed under and looked up in."""
    return band_keys(report) + fact_band_keys(report)
