"""Matching at scale: 100,000 generated subscriptions against 1,000 real headlines, on one core.

Prints index build time and memory, items/s of the indexed matcher, and, in the same run, the
naive evaluator (one compiled regex per subscription) measured on a subset and scaled up.
Then the same headlines through ``alerts explain --json --file`` (load time and headlines/s).

    python bench/match.py [--subscriptions 100000] [--headlines 1000] [--naive-subset 2000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.ingest.feeds import parse_feed
from alerts.matching.index import Matcher
from alerts.models import REGIONS, FeedItem, Subscription
from alerts.text import words

FEEDS = ROOT.parent / "shared" / "feeds"
SEED = ROOT.parent / "shared" / "seed" / "almayadeen-english-article-page.txt"


def rss_mb() -> float:
    """Resident memory of this process in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def corpus() -> tuple[list[str], list[str]]:
    """Real headlines (shared feeds and the seed's ticker) and the words of all their text."""
    headlines: list[str] = []
    vocabulary: dict[str, None] = {}
    for path in sorted(FEEDS.glob("*")):
        try:
            items = parse_feed(path.read_bytes(), "http://bench.test/")
        except Exception:
            continue
        for item in items:
            if item.title.strip():
                headlines.append(" ".join(item.title.split()))
            vocabulary.update(dict.fromkeys(words(f"{item.title} {item.summary}")))
    if SEED.exists():
        lines = SEED.read_text(encoding="utf-8").splitlines()
        start = lines.index("BREAKING") + 1 if "BREAKING" in lines else 0
        headlines += [line for line in lines[start : start + 10] if line.strip()]
    return headlines, [word for word in vocabulary if len(word) > 2]


def subscriptions(count: int, vocabulary: list[str], rng: random.Random) -> list[Subscription]:
    """1-3 terms each; about 20% phrases, 10% with an exclusion, 10% with a region."""
    subs = []
    for number in range(count):
        terms = []
        for _ in range(rng.randint(1, 3)):
            phrase = rng.random() < 0.2
            terms.append(" ".join(rng.sample(vocabulary, 2)) if phrase else rng.choice(vocabulary))
        exclude = (rng.choice(vocabulary),) if rng.random() < 0.1 else ()
        regions = (rng.choice(REGIONS),) if rng.random() < 0.1 else ()
        subs.append(
            Subscription(f"s{number}", ("desk",), keywords=tuple(terms), exclude=exclude, regions=regions)
        )
    return subs


def naive_rate(subs: list[Subscription], items: list[FeedItem], total: int) -> float:
    """Items/s of one compiled regex per subscription, measured on ``subs`` and scaled to ``total``."""
    compiled = []
    for sub in subs:
        keywords = re.compile("|".join(rf"\b{re.escape(k)}\b" for k in sub.keywords), re.IGNORECASE)
        exclude = (
            re.compile("|".join(rf"\b{re.escape(e)}\b" for e in sub.exclude), re.I) if sub.exclude else None
        )
        compiled.append((keywords, exclude))
    start = time.perf_counter()
    for item in items:
        text = item.title
        for keywords, exclude in compiled:
            if keywords.search(text) and not (exclude and exclude.search(text)):
                pass
    elapsed = (time.perf_counter() - start) * total / len(subs)
    return len(items) / elapsed


def explain_cli(subs: list[Subscription], headlines: list[str]) -> tuple[float, float]:
    """(load seconds, headlines/s) of ``alerts explain --json --file`` over these subscriptions."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp)
        (config / "feeds.yaml").write_text("feeds: []\n")
        lines = ["subscribers:", "  - name: desk", '    notify: ["json://127.0.0.1:9/x"]', "subscriptions:"]
        for sub in subs:
            lines.append(
                f"  - name: {sub.name}\n    subscribers: [desk]\n    keywords: {json.dumps(sub.keywords)}"
            )
            if sub.exclude:
                lines.append(f"    exclude: {json.dumps(sub.exclude)}")
            if sub.regions:
                lines.append(f"    regions: {json.dumps(sub.regions)}")
        (config / "subscriptions.yaml").write_text("\n".join(lines) + "\n")
        file = config / "headlines.txt"
        file.write_text("\n".join(headlines) + "\n")
        env = {**os.environ, "ALERTS_CONFIG": str(config)}
        alerts = str(Path(sys.executable).with_name("alerts"))
        output = config / "out.jsonl"
        started = time.perf_counter()
        with output.open("w") as sink:  # a file, not a pipe: reading a pipe would be the bottleneck
            process = subprocess.Popen(
                [alerts, "explain", "--json", "--file", str(file)], env=env, stdout=sink
            )
            while not output.stat().st_size and process.poll() is None:
                time.sleep(0.005)
            loaded = time.perf_counter()  # the first results are out: loading is over
            process.wait()
            finished = time.perf_counter()
        lines = output.read_text().splitlines()
        assert len(lines) == len(headlines)
        first_batch = 8192 // (len(output.read_text()) // len(lines)) + 1  # results in the first write
    return loaded - started, (len(lines) - first_batch) / max(finished - loaded, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--headlines", type=int, default=1000)
    parser.add_argument("--naive-subset", type=int, default=2000)
    parser.add_argument("--no-cli", action="store_true", help="skip the alerts explain measurement")
    args = parser.parse_args()
    rng = random.Random(7)
    headlines, vocabulary = corpus()
    vocabulary = (vocabulary + [f"w{n}x" for n in range(20_000)])[:20_000]
    headlines = [rng.choice(headlines) for _ in range(args.headlines)]
    cli_headlines = headlines * 5  # enough work that timing noise does not matter
    items = [FeedItem(id=str(n), title=title) for n, title in enumerate(headlines)]
    subs = subscriptions(args.subscriptions, vocabulary, rng)
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    matcher = Matcher(subs)
    build = time.perf_counter() - start
    gc.collect()
    gc.freeze()  # the index is long-lived: keep it out of every later collection, as a worker does
    memory = rss_mb() - before
    start = time.perf_counter()
    matched = sum(len(matcher.match(item, "wire", ("MENA",))) for item in items)
    rate = len(items) / (time.perf_counter() - start)
    naive = naive_rate(subs[: args.naive_subset], items[:100], args.subscriptions)
    print(f"{args.subscriptions} subscriptions, {len(items)} headlines, vocabulary {len(vocabulary)}")
    print(f"index build {build:.2f} s, index memory {memory:.0f} MB   (targets < 10 s, < 300 MB)")
    print(f"indexed matcher {rate:9.0f} items/s   ({matched / len(items):.1f} matches/item) (target >= 5000)")
    print(f"naive regex     {naive:9.2f} items/s   (measured on {args.naive_subset} subscriptions, scaled)")
    print(f"speed-up        {rate / naive:9.0f}x")
    if not args.no_cli:
        load, cli_rate = explain_cli(subs, cli_headlines)
        print(
            f"alerts explain --json --file: load {load:.1f} s, {cli_rate:.0f} headlines/s  "
            "(targets < 15 s, >= 3000/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
