"""Finding the stories a report may belong to without comparing it with every open story: a MinHash
of its features cut into bands (reports sharing many features share many bands), and bands of the
facts alone (places, actors, what happened, numbers) where reports in other languages meet. Pure.

Bands are one row each, so a band is named by the feature that is its minimum: the buckets of a
report are a few of its own features (about 8 distinct for 12 bands of 15 features), and the
lookup weighs each by how many bands it stands for. Fewer keys, the same candidates.

MinHash is computed here rather than with datasketch: a headline has about fifteen features, so
32 hash functions in plain Python cost tens of µs, where datasketch would bring numpy and scipy
(tens of MB) into every poll worker for the same numbers.
"""

from __future__ import annotations

import random
import zlib

from alerts.matching.stories.fingerprint import StoryPrint

PERMUTATIONS = 12
# one row per band: reports with Jaccard J share a band with 1 - (1 - J)^12, and how many bands
# they share estimates J, which ranks the candidates (bench/stories.py: two rows lost a third of the
# reworded pairs before any comparison)
_MASK = 0xFFFFFFFF
_RANDOM = random.Random(0x5709)  # fixed: every worker must cut the same bands
_PERMUTATIONS = [(_RANDOM.getrandbits(32), _RANDOM.getrandbits(32) | 1) for _ in range(PERMUTATIONS)]


def minima(features: frozenset[str], permutations: int = PERMUTATIONS) -> list[int]:
    """For each of ``permutations`` 32-bit hash functions (a CRC-32 of the feature, xor-ed and
    multiplied by odd constants), the CRC-32 of the feature that hashes least: a MinHash signature
    whose entries name features, so two bands whose minimum is one feature are one bucket."""
    values = sorted({zlib.crc32(feature.encode()) for feature in features}) or [0]
    found = []
    for mask, odd in _PERMUTATIONS[:permutations]:
        hashed = [((value ^ mask) * odd) & _MASK for value in values]
        found.append(values[hashed.index(min(hashed))])
    return found


def band_keys(report: StoryPrint) -> list[str]:
    """The bucket keys of the report's bands (within its language), one per band: a feature that is
    the minimum of several bands is listed as often (the lookup weighs a bucket by it)."""
    return [f"{report.lang}:{value:08x}" for value in minima(report.features)]


FACT_BANDS = 8  # one-row bands over the facts alone: reports in two languages meet there


def fact_band_keys(report: StoryPrint) -> list[str]:
    """Bucket keys of bands over what any language says alike (places, actors, concepts, numbers)."""
    if not report.facts:
        return []
    return [f"f:{value:08x}" for value in minima(report.facts, FACT_BANDS)]


def bucket_keys(report: StoryPrint) -> list[str]:
    """Every bucket the report is filed under and looked up in, one per band (repeats included)."""
    return band_keys(report) + fact_band_keys(report)
