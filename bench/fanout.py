"""Fan-out: one item matched by 10,000 subscribers, each with its own webhook URL on a local sink.

Measures, through `alerts run`, the time from the item's appearance to the last of the 10,000
webhooks received, the throughput, and the CPU used by the service, the sink and Redis; once with
native webhooks (``http://`` URLs, posted by aiohttp) and once with Apprise's ``json://``; side by
side in the same run with sequential ``Apprise.notify`` calls to the same sink (the naive way).

    python bench/fanout.py [--subscribers 10000] [--channels native,apprise]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apprise
import psutil

from alerts.service import embedded_redis
from alerts.state.store import Store
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


@dataclass
class Run:
    """One fan-out: when the first and the last webhook arrived, and the CPU each party used."""

    channel: str
    first: float
    took: float
    cpu: dict[str, float]


def fan_out(args: argparse.Namespace, channel: str, redis_url: str) -> Run:
    """Start `alerts run` with N subscribers on ``channel`` URLs, publish one item, wait for every webhook."""
    feeds, sink = FeedServer().start(), WebhookSink().start()
    Store.from_url(redis_url).client.flushdb()
    base = sink.url if channel == "native" else sink.apprise_url
    names = [f"s{n}" for n in range(args.subscribers)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config"
            config.mkdir()
            write_config(
                config,
                feeds=[{"name": "wire", "url": feeds.url("wire"), "every": "1s"}],
                subscribers=[{"name": name, "notify": [f"{base}/{name}"]} for name in names],
                subscriptions=[{"name": "everyone", "subscribers": names, "keywords": ["flash"]}],
            )
            env = {
                "REDIS_URL": redis_url,
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
            except AssertionError:
                print(worker.text()[-3000:], file=sys.stderr)  # what the service said, to see why
                raise
            finally:
                worker.stop()
                if args.keep_log:
                    args.keep_log.with_suffix(f".{channel}.log").write_text(worker.text())
        return Run(channel, min(sink.arrived) - published, max(sink.arrived) - published, used)
    finally:
        feeds.stop()
        sink.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2, help="deliver worker processes")
    parser.add_argument(
        "--channels", default="native,apprise", help="native (http:// webhooks), apprise (json://), or both"
    )
    parser.add_argument("--keep-log", type=Path, help="keep the service's log: PATH.<channel>.log")
    args = parser.parse_args()
    url, redis_process = "redis://127.0.0.1:6379/13", None
    if not embedded_redis.answers(url):
        redis_process = embedded_redis.start(
            embedded_redis.free_port(), Path(tempfile.mkdtemp()), persist=False
        )
        url = f"redis://127.0.0.1:{redis_process.args[2]}/13"
    try:
        runs = [fan_out(args, channel, url) for channel in args.channels.split(",")]
        sink = WebhookSink().start()
        try:
            naive = sequential_rate(sink)
        finally:
            sink.stop()
    finally:
        Store.from_url(url).client.flushdb()
        if redis_process is not None:
            embedded_redis.stop(redis_process)
    cores = os.cpu_count() or 1
    print(f"{args.subscribers} subscribers, a webhook URL each; alerts run, {args.concurrency} deliver procs")
    for run in runs:
        kind = "native http:// webhooks" if run.channel == "native" else "Apprise json:// webhooks"
        print(
            f"\n{kind}: first after {run.first:.2f} s, all after {run.took:.2f} s  (target: all within 10 s)"
        )
        rate = args.subscribers / run.took
        print(f"  throughput {rate:6.0f} deliveries/s, {rate / naive:.1f}x sequential Apprise.notify")
        print(
            f"  CPU seconds meanwhile ({cores} cores x {run.took:.1f} s = {cores * run.took:.1f}): service"
            f" {run.cpu['service']:.1f}, sink and feed server {run.cpu['sink']:.1f},"
            f" redis {run.cpu['redis']:.1f}"
            f" -> {run.cpu['service'] / args.subscribers * 1000:.2f} ms of service CPU per delivery"
        )
    print(f"\nsequential Apprise.notify (json://): {naive:6.0f} sends/s", end="")
    print(f" -> {args.subscribers / naive:.1f} s for all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
