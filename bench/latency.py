"""End-to-end alert latency with a real Celery worker, Redis, a local feed and a local webhook sink.

Appends 50 items one by one (at random moments) to a feed polled with ``every: 1s`` and prints:
  (a) appended -> received by the sink   (targets: p50 < 1.5 s, max < 3 s)
  (b) fetched  -> handed to Apprise       (target: p99 < 250 ms), from the worker's alert.sent events
Side by side, in the same run, the processing step of a naive poller (feedparser, one Redis
GET+SET per item, one regex per subscription) against ours on the same 50-item feed body.

    python bench/latency.py [--items 50] [--subscriptions 1000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.ingest.feeds import parse_feed
from alerts.matching.index import Matcher
from alerts.models import Subscription
from alerts.service import embedded_redis
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink, render_rss
from tests.harness.worker import WorkerProcess, wait_for


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def redis_url() -> tuple[str, object]:
    """The machine's Redis (db 10) if it answers, else a private one."""
    url = "redis://127.0.0.1:6379/10"
    if embedded_redis.answers(url):
        return url, None
    process = embedded_redis.start(embedded_redis.free_port(), Path(tempfile.mkdtemp()), persist=False)
    return f"redis://127.0.0.1:{process.args[2]}/10", process


def end_to_end(items: int, url: str, workdir: Path) -> tuple[list[float], list[float]]:
    """(a) and (b) latencies in milliseconds."""
    feeds, sink = FeedServer().start(), WebhookSink().start()
    arrived: dict[str, float] = {}
    sink.on_receive = lambda payload: arrived.setdefault(payload["title"], time.time())
    config = workdir / "config"
    config.mkdir()
    write_config(
        config,
        feeds=[{"name": "wire", "url": feeds.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [sink.apprise_url], "burst": "off"}],  # 1 alert, 1 message
        subscriptions=[{"name": "bench", "subscribers": ["desk"], "keywords": ["breaking"]}],
    )
    worker = WorkerProcess(
        {"REDIS_URL": url, "ALERTS_CONFIG": str(config), "ALERTS_LOG_LEVEL": "INFO"}, workdir / "worker.log"
    ).start()
    try:
        wait_for(lambda: worker.events("feed.seeded"), timeout=20, what="first poll")
        appended: dict[str, float] = {}
        for number in range(items):
            time.sleep(random.uniform(0.2, 1.0))
            title = f"Breaking: item {number} of the latency bench"
            feeds.publish("wire", Entry(title, f"http://news.test/{number}"))
            appended[title] = time.time()
        wait_for(lambda: len(arrived) >= items, timeout=60, what="all alerts")
        time.sleep(0.5)
        received = [(arrived[title] - appended[title]) * 1000 for title in appended]
        handed = [float(event["pipeline_ms"]) for event in worker.events("alert.sent")]
        return received, handed
    finally:
        worker.stop()
        feeds.stop()
        sink.stop()


def processing(url: str, subscriptions: int, rounds: int = 20) -> tuple[float, float]:
    """Milliseconds per 50-item poll: ours vs a naive poller, on the same body."""
    import feedparser

    body = render_rss(
        [Entry(f"Breaking: story {n} about Gaza and Lebanon", f"http://n.test/{n}") for n in range(50)]
    )
    vocabulary = [f"term{n}" for n in range(subscriptions)] + ["gaza"]
    subs = [
        Subscription(name=f"s{n}", subscribers=("desk",), keywords=(vocabulary[n],))
        for n in range(subscriptions)
    ]
    store = Store.from_url(url)
    matcher = Matcher(subs)
    patterns = [re.compile(rf"\b{re.escape(s.keywords[0])}\b", re.IGNORECASE) for s in subs]
    client = store.client

    start = time.perf_counter()
    for round_ in range(rounds):
        items = parse_feed(body, "http://n.test/")
        store.claims.items(f"bench{round_}", [item.id for item in items], 600)
        for item in items:
            matcher.match(item, "wire")
    ours = (time.perf_counter() - start) * 1000 / rounds

    start = time.perf_counter()
    for round_ in range(rounds):
        for entry in feedparser.parse(body).entries:
            key = f"naive{round_}:{entry.link}"
            if client.get(key) is None:
                client.set(key, 1, ex=600)
            text = f"{entry.title} {entry.get('summary', '')}"
            [pattern for pattern in patterns if pattern.search(text)]
    naive = (time.perf_counter() - start) * 1000 / rounds
    return ours, naive


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--subscriptions", type=int, default=1000)
    args = parser.parse_args()
    url, process = redis_url()
    Store.from_url(url).client.flushdb()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            received, handed = end_to_end(args.items, url, Path(workdir))
        ours, naive = processing(url, args.subscriptions)
    finally:
        if process is not None:
            embedded_redis.stop(process)  # type: ignore[arg-type]
    print(f"items: {args.items}, feed polled every 1s, beat tick 0.25s")
    print(
        f"(a) appended -> received  p50 {statistics.median(received):7.0f} ms  "
        f"p95 {percentile(received, 0.95):7.0f} ms  max {max(received):7.0f} ms"
        "   (target p50 < 1500, max < 3000)"
    )
    print(
        f"(b) fetched  -> Apprise   p50 {statistics.median(handed):7.1f} ms  "
        f"p99 {percentile(handed, 0.99):7.1f} ms  max {max(handed):7.1f} ms   (target p99 < 250)"
    )
    print(
        f"processing of one 50-item poll with {args.subscriptions} subscriptions: "
        f"ours {ours:.2f} ms, naive {naive:.2f} ms  ({naive / ours:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
