"""Fan-out: one item matched by 10,000 subscribers, each with its own webhook URL on a local sink.

Measures, with a real Celery worker, the time from the item's appearance to the last of the
10,000 webhooks received, and the throughput; side by side in the same run with sequential
``Apprise.notify`` calls to the same sink (the naive way), extrapolated to 10,000.

    python bench/fanout.py [--subscribers 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apprise
import psutil

from alerts import embedded
from alerts.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for


def sequential_rate(sink: WebhookSink, count: int = 300) -> float:
    """Sends per second of one Apprise.notify call after another."""
    started = time.perf_counter()
    for n in range(count):
        messenger = apprise.Apprise()
        messenger.add(f"{sink.apprise_url}/{n}")
        messenger.notify(body="naive", title=f"naive {n}")
    return count / (time.perf_counter() - started)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """CPU time (user + system) used so far by these processes; those that exited count 0."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def redis_servers() -> list[psutil.Process]:
    """The redis-server processes on this machine (the bench's Redis is one of them)."""
    return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("redis-server")]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2, help="deliver worker processes")
    parser.add_argument("--keep-log", type=Path, help="copy the service's log here")
    args = parser.parse_args()
    feeds, sink = FeedServer().start(), WebhookSink().start()
    url, redis_process = "redis://127.0.0.1:6379/13", None
    if not embedded.answers(url):
        redis_process = embedded.start(embedded.free_port(), Path(tempfile.mkdtemp()), persist=False)
        url = f"redis://127.0.0.1:{redis_process.args[2]}/13"
    Store.from_url(url).client.flushdb()
    names = [f"s{n}" for n in range(args.subscribers)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config"
            config.mkdir()
            write_config(
                config,
                feeds=[{"name": "wire", "url": feeds.url("wire"), "every": "1s"}],
                subscribers=[{"name": name, "notify": [f"{sink.apprise_url}/{name}"]} for name in names],
                subscriptions=[{"name": "everyone", "subscribers": names, "keywords": ["flash"]}],
            )
            env = {
                "REDIS_URL": url,
                "ALERTS_CONFIG": str(config),
                "ALERTS_LOG_LEVEL": "INFO",
                "ALERTS_CONCURRENCY": str(args.concurrency),
            }
            # `alerts run` itself: a poll worker and a deliver worker of one process per core
            worker = WorkerProcess(env, Path(tmp) / "worker.log", via_cli=True).start()
            try:
                wait_for(lambda: worker.events("feed.seeded"), timeout=60, what="first poll")
                groups = {"service": tree(worker.pid), "sink": [psutil.Process()], "redis": redis_servers()}
                before = {name: cpu_seconds(group) for name, group in groups.items()}
                feeds.publish("wire", Entry("Flash: one story for everyone", "http://news.test/flash"))
                published = time.time()
                wait_for(lambda: len(sink.received) >= args.subscribers, timeout=300, what="every webhook")
                used = {name: cpu_seconds(group) - before[name] for name, group in groups.items()}
                took = max(sink.arrived) - published
                first = min(sink.arrived) - published
            except AssertionError:
                print(worker.text()[-3000:], file=sys.stderr)  # what the service said, to see why
                raise
            finally:
                worker.stop()
                if args.keep_log:
                    args.keep_log.write_text(worker.text())
        naive = sequential_rate(sink)
    finally:
        feeds.stop()
        sink.stop()
        if redis_process is not None:
            embedded.stop(redis_process)
    print(f"{args.subscribers} subscribers, a webhook URL each; alerts run, {args.concurrency} deliver procs")
    print(f"fan-out: first webhook after {first:.2f} s, all after {took:.2f} s  (target: all within 10 s)")
    print(f"throughput {args.subscribers / took:8.0f} deliveries/s")
    print(
        f"CPU seconds meanwhile ({os.cpu_count()} cores x {took:.1f} s = {(os.cpu_count() or 1) * took:.1f})"
        f": service {used['service']:.1f}"
        f", sink and feed server {used['sink']:.1f}, redis {used['redis']:.1f}"
        f"  -> {used['service'] / args.subscribers * 1000:.2f} ms of service CPU per delivery"
    )
    print(f"sequential Apprise.notify {naive:8.0f} sends/s -> {args.subscribers / naive:.1f} s for all")
    print(f"ratio {naive and (args.subscribers / took) / naive:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
