"""Benchmark parse_feed (fastfeedparser fast path) against the feedparser-only path on the shared feeds.

Usage: python bench/parse.py [-n RUNS] [--min-items K] [DIR]

Both columns include the same normalisation into FeedItems: the second runs parse_feed's feedparser
fallback alone. "check" is the share of parse_feed's time spent deciding whether the fast path is safe
(alerts.ingest.feedcheck), and "hazard" why it sends the file to feedparser ("-": it does not). Files
with fewer than K items (the small test fixtures) are not news feeds: skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.errors import FeedParseError
from alerts.ingest.feedcheck import fast_path_hazard
from alerts.ingest.feeds import _parse_with_feedparser, parse_feed
from alerts.models import FeedItem

FEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "feeds"
BASE = "https://example.test/feed.xml"


def feedparser_only(body: bytes, base_url: str) -> list[FeedItem]:
    """The fallback path alone, as parse_feed runs it."""
    return _parse_with_feedparser(body, base_url, None, None)


def hazard_only(body: bytes, base_url: str) -> list[FeedItem]:
    """The safety check alone."""
    fast_path_hazard(body)
    return []


def average_ms(parse: Callable[[bytes, str], list[FeedItem]], body: bytes, runs: int) -> float:
    """Mean wall time of one parse in milliseconds, after one warm-up run."""
    parse(body, BASE)
    started = time.perf_counter()
    for _ in range(runs):
        parse(body, BASE)
    return (time.perf_counter() - started) * 1000 / runs


def main() -> None:
    """Print one row per news feed file, then the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--min-items", type=int, default=5)
    parser.add_argument("dir", nargs="?", type=Path, default=FEEDS)
    args = parser.parse_args()
    print(
        f"{'file':44} {'items':>5} {'fast ms':>8} {'/50 it':>7} {'fp ms':>8} {'/50 it':>7} {'ratio':>6} "
        f"{'check':>6} hazard"
    )
    ratios: list[float] = []
    checks: list[float] = []
    fast_per50: list[float] = []
    fp_per50: list[float] = []
    for path in sorted(args.dir.iterdir()):
        if path.name == "MANIFEST.tsv":
            continue
        body = path.read_bytes()
        try:
            count = len(parse_feed(body, BASE))
        except FeedParseError:
            continue
        if count < args.min_items:
            continue
        fast, slow = average_ms(parse_feed, body, args.runs), average_ms(feedparser_only, body, args.runs)
        fast_per50.append(fast * 50 / count)
        fp_per50.append(slow * 50 / count)
        ratios.append(slow / fast)
        checks.append(average_ms(hazard_only, body, args.runs) / fast)
        hazard = fast_path_hazard(body)
        print(
            f"{path.name[:44]:44} {count:5} {fast:8.2f} {fast_per50[-1]:7.2f} "
            f"{slow:8.2f} {fp_per50[-1]:7.2f} {ratios[-1]:5.1f}x {checks[-1]:6.0%} {hazard or '-'}"
        )
    if ratios:
        fast_mean, fp_mean = statistics.mean(fast_per50), statistics.mean(fp_per50)
        print(
            f"{len(ratios)} feeds, {args.runs} runs each: mean per 50 items fast {fast_mean:.2f} ms, "
            f"feedparser {fp_mean:.2f} ms; ratio geometric mean {statistics.geometric_mean(ratios):.1f}x "
            f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x); safety check {statistics.median(checks):.0%} "
            f"of parse_feed's time (median; max {max(checks):.0%})"
        )


if __name__ == "__main__":
    main()
