"""Polling throughput: 2,000 feeds on a local server, one real Celery worker with conditional GET,
side by side in the same run with a naive sequential loop (full GET + feedparser, one feed at a time).

    python bench/poll.py [--feeds 2000] [--seconds 30] [--latency 0.05]

Prints fetches per minute of each, and how many of the worker's fetches were answered 304.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.ingest.fetch import fetch_one
from alerts.service import embedded_redis
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer
from tests.harness.worker import WorkerProcess, wait_for


def naive_rate(server: FeedServer, names: list[str], seconds: float) -> float:
    """Fetches per minute of a sequential loop: full GET, feedparser, no validators."""
    import feedparser

    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name in names:
            feedparser.parse(fetch_one(server.url(name)).body)
            done += 1
            if time.monotonic() >= deadline:
                break
    return done * 60 / seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads")
    parser.add_argument("--latency", type=float, default=0.05, help="server answer delay (internet RTT)")
    args = parser.parse_args()
    server = FeedServer(latency=args.latency).start()
    names = [f"f{n}" for n in range(args.feeds)]
    for name in names:
        server.publish(name, *(Entry(f"{name} story {k}", f"http://n.test/{name}/{k}") for k in range(20)))
    url, redis_process = "redis://127.0.0.1:6379/11", None
    if not embedded_redis.answers(url):
        redis_process = embedded_redis.start(
            embedded_redis.free_port(), Path(tempfile.mkdtemp()), persist=False
        )
        url = f"redis://127.0.0.1:{redis_process.args[2]}/11"
    Store.from_url(url).client.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.mkdir()
        write_config(
            config,
            feeds=[{"name": name, "url": server.url(name), "every": "1s"} for name in names],
            subscribers=[{"name": "desk", "notify": ["json://127.0.0.1:9/x"]}],
            subscriptions=[{"name": "none", "subscribers": ["desk"], "keywords": ["nothing matches this"]}],
        )
        env = {
            "REDIS_URL": url,
            "ALERTS_CONFIG": str(config),
            "ALERTS_LOG_LEVEL": "INFO",
            "ALERTS_HOST_CONCURRENCY": "16",
        }
        worker = WorkerProcess(env, Path(tmp) / "worker.log", concurrency=args.concurrency).start()
        try:
            wait_for(
                lambda: sum(f.requests for f in server.feeds.values()) >= args.feeds,
                timeout=120,
                what="every feed polled once",
            )
            before = sum(f.requests for f in server.feeds.values())
            before_304 = sum(f.not_modified for f in server.feeds.values())
            time.sleep(args.seconds)
            fetched = sum(f.requests for f in server.feeds.values()) - before
            not_modified = sum(f.not_modified for f in server.feeds.values()) - before_304
        finally:
            worker.stop()
    naive = naive_rate(server, names, min(args.seconds, 20.0))
    server.stop()
    if redis_process is not None:
        embedded_redis.stop(redis_process)
    ours = fetched * 60 / args.seconds
    share = not_modified / max(fetched, 1)
    print(
        f"{args.feeds} feeds on 127.0.0.1 answering after {args.latency * 1000:.0f} ms, every: 1s, "
        f"one worker ({args.concurrency} threads), {args.seconds:.0f} s measured"
    )
    print(f"worker, conditional GET: {ours:9.0f} fetches/min  ({share:.0%} answered 304)")
    print(f"naive sequential loop:   {naive:9.0f} fetches/min")
    print(f"ratio                    {ours / naive:9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
