"""Geotagging speed: headlines/s of alerts.matching.geo.Geotagger beside a naive baseline, on one core.

The corpus is the real headlines of the shared feeds, the seed's BREAKING ticker and a few Arabic
and Spanish ticker lines. Prints the gazetteer's build time and memory, then headlines/s of
``Geotagger.tag`` with a warm word cache (news vocabulary repeats) and with fresh words (every
headline carries three never-seen words), and of the naive baseline in the same run: one compiled
regex per place name over the normalised text, measured on a subset and scaled up.

    python bench/geo.py [--rounds 20] [--naive-headlines 200]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.ingest.feeds import parse_feed
from alerts.matching import geo
from alerts.matching.geo.gazetteer import packaged
from alerts.text import normalise

FEEDS = ROOT.parent / "shared" / "feeds"
SEED = ROOT.parent / "shared" / "seed" / "almayadeen-english-article-page.txt"
EXTRA = [
    "عاجل: غارة إسرائيلية على بلدة في جنوب لبنان",
    "مراسل الميادين في غزة: شهداء وجرحى في قصف إسرائيلي على مخيم جباليا",
    "الاحتلال يقتحم جنين ونابلس والقدس المحتلة",
    "مراسل الميادين: غارة على الضاحية الجنوبية لبيروت وأخرى على النبطية",
    "El presidente venezolano denuncia amenazas de Estados Unidos contra Venezuela",
    "Ataque israelí en el sur del Líbano deja dos muertos",
    "Colonos atacan aldeas palestinas en Cisjordania",
    "Cancillería venezolana rechaza sanciones de EE. UU.",
]


def rss_mb() -> float:
    """Resident memory of this process in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def items() -> list[tuple[str, str]]:
    """(title, summary) of every item of the shared feeds."""
    found: list[tuple[str, str]] = []
    for path in sorted(FEEDS.glob("*")):
        try:
            parsed = parse_feed(path.read_bytes(), "http://bench.test/")
        except Exception:
            continue
        found += [(item.title, item.summary or "") for item in parsed if item.title]
    return found


def corpus() -> list[str]:
    """Real headlines from the shared feeds and the seed's ticker, plus Arabic and Spanish lines."""
    headlines = [title for title, _ in items()]
    if SEED.exists():
        lines = SEED.read_text(encoding="utf-8").splitlines()
        start = lines.index("BREAKING") + 1 if "BREAKING" in lines else 0
        headlines += [line for line in lines[start : start + 10] if line.strip()]
    return headlines + EXTRA


def naive(names: list[str]) -> list[re.Pattern[str]]:
    """The baseline: one compiled regex per place name, whole words, over normalised text."""
    return [re.compile(rf"(?<!\S){re.escape(name)}(?!\S)") for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the corpus for the geotagger")
    parser.add_argument("--naive-headlines", type=int, default=200, help="headlines for the naive baseline")
    args = parser.parse_args()
    headlines = corpus()
    average = sum(map(len, headlines)) / len(headlines)
    print(f"corpus: {len(headlines)} headlines, {average:.0f} chars on average")

    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    taxonomy = geo.RegionTaxonomy.load()
    tagger = geo.Geotagger(taxonomy)
    build = time.perf_counter() - start
    stats = geo.stats()
    grown = rss_mb() - before
    print(f"build: {build * 1000:.0f} ms cold (gazetteer + taxonomy + tagger), +{grown:.0f} MB RSS")
    print(f"names: {stats['keys']}, countries: {stats['countries']}, cities: {stats['cities']}")
    start = time.perf_counter()
    geo.Geotagger(taxonomy)
    print(f"build: {(time.perf_counter() - start) * 1000:.1f} ms warm (another Geotagger, gazetteer cached)")

    tagged = sum(1 for headline in headlines if tagger.tag(headline))
    print(f"headlines with at least one place: {tagged}/{len(headlines)}")

    start = time.perf_counter()
    for _ in range(args.rounds):
        for headline in headlines:
            tagger.tag(headline)
    elapsed = time.perf_counter() - start
    warm = args.rounds * len(headlines) / elapsed
    each = elapsed / args.rounds / len(headlines) * 1e6
    print(f"geotagger, warm word cache: {warm:,.0f} headlines/s ({each:.1f} µs each)")

    rng = random.Random(7)
    fresh = [
        f"{headline} {' '.join(''.join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(3))}"
        for headline in headlines
    ]
    tagger = geo.Geotagger(taxonomy)  # empty word cache
    start = time.perf_counter()
    for headline in fresh:
        tagger.tag(headline)
    elapsed = time.perf_counter() - start
    print(f"geotagger, cold cache + 3 unseen words each: {len(fresh) / elapsed:,.0f} headlines/s")

    pairs = items()
    start = time.perf_counter()
    for _ in range(max(1, args.rounds // 4)):
        for title, summary in pairs:
            tagger.tag(title, summary)
    elapsed = time.perf_counter() - start
    chars = sum(len(title) + len(summary) for title, summary in pairs) / len(pairs)
    rate = max(1, args.rounds // 4) * len(pairs) / elapsed
    print(f"geotagger, tag(title, summary) ({chars:.0f} chars on average): {rate:,.0f} items/s")

    patterns = naive(sorted(packaged().entries))
    subset = headlines[: args.naive_headlines]
    start = time.perf_counter()
    for headline in subset:
        text = normalise(headline)
        [pattern.pattern for pattern in patterns if pattern.search(text)]
    elapsed = time.perf_counter() - start
    rate = len(subset) / elapsed
    print(f"naive baseline ({len(patterns)} regexes, {len(subset)} headlines): {rate:,.0f} headlines/s")
    print(f"-> the geotagger (warm) is {warm / rate:,.0f}x the naive baseline")


if __name__ == "__main__":
    main()
