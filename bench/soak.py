"""Soak (issue 11): `alerts run` under steady traffic, failing channels and one killed worker.

200 feeds of 10 items, each ``every: 2s`` (100 polls/s; ``1s``, 200 polls/s, fills the poll
worker's core on this 2-core machine); items appended at Poisson moments (``--rate``/s over all
feeds), each a unique headline matched by one of 5 subscriptions, for 5 subscribers (``burst: off``)
on a native webhook sink each. Sinks alpha (HTTP 500) and bravo (503, Retry-After 10) fail a fifth
of every period (60 s of every 5 min in an hour; 20 s of every 100 s in 5 min), then recover. At
mid-run a burst of 40 alerts is published and the deliver child sending it is SIGKILLed as the
first arrives; the service recovers by itself, on default settings (no shortened leases). All
feeds are on 127.0.0.1, so ALERTS_HOST_CONCURRENCY is 16 (real feeds are on many hosts). Then a
bounded drain for the outbox's retries, and one table: delivered, expected, lost, duplicated,
latency publish -> sink, the PSS of every service process after warm-up (10% of the run, >= 30 s)
and at the end. Exit 1 if an alert was lost or a service process grew > 10% after warm-up (Redis
is shown, not judged: it holds the data the service keeps by design, 48 h of dedupe marks and 7 d
of history).

    .venv/bin/python bench/soak.py                      # 5 minutes, then up to 3 min of drain
    .venv/bin/python bench/soak.py --minutes 60         # one hour, up to 5 min of drain
    .venv/bin/python bench/soak.py --feeds 200 --rate 2 --seed 11 --every 2s
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # type: ignore[import-untyped]

from alerts.config.durations import parse_duration
from alerts.service import embedded_redis
from alerts.state import keys
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for

NAMES = ["alpha", "bravo", "charlie", "delta", "echo"]  # subscriber k's subscription matches NAMES[k]
FAILING = {0: (500, None, 0.25), 1: (503, "10", 0.60)}  # sink -> status, Retry-After, offset in period
BURST = 40  # alerts published at once just before the kill, so that it hits a batch being sent
KEEP_ENTRIES = 10  # a served feed holds 10 items from the start (a steady workload)
MIB, NAN = 1024 * 1024, float("nan")
FAILED, ERROR = '"event": "alert.failed"', '"level": "error"'  # as the JSON log lines spell them
COMMON = {"--quiet", "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-A", "workers.app"}
Publish = Callable[[str, int, str], None]  # (feed, subscriber index, kind of headline)
PLAIN = {"supervisor", "poll worker", "beat", "deliver parent", "redis (embedded)"}  # one of each


@dataclass
class Plan:
    """When things happen, in seconds from the start of traffic."""

    duration: float
    period: float
    fail: float
    kill_at: float
    warmup: float

    @classmethod
    def of(cls, minutes: float) -> Plan:
        duration = minutes * 60
        period = min(300.0, duration / 3)
        return cls(duration, period, period / 5, duration / 2, max(30.0, duration / 10))

    def failing(self, sink: int, t: float) -> bool:
        """Whether ``sink`` refuses at ``t``."""
        if sink not in FAILING or not 0 <= t < self.duration:
            return False
        start = FAILING[sink][2] * self.period
        return start <= t % self.period < start + self.fail


@dataclass
class Soak:
    """What was published, received and sampled."""

    published: dict[str, tuple[float, int]] = field(default_factory=dict)  # title -> (time, sink)
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (title, time), repeats too
    samples: list[tuple[float, dict[str, tuple[int, float, float]]]] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)  # label -> command line
    labels: dict[int, str] = field(default_factory=dict)  # pid -> label
    notes: list[str] = field(default_factory=list)
    start: float = 0.0
    killed_at: float | None = None
    burst_seen: threading.Event = field(default_factory=threading.Event)

    def received(self) -> set[str]:
        return {title for title, _ in list(self.arrivals)}


def receive(soak: Soak, title: str) -> None:
    """A sink's callback: note the arrival (and the first of the burst)."""
    soak.arrivals.append((title, time.time()))
    if " burst " in title:
        soak.burst_seen.set()


def roles(root_pid: int, redis_pid: int | None) -> list[tuple[str, psutil.Process]]:
    """The service's processes by role: the `alerts run` supervisor, its workers and their children."""
    root = psutil.Process(root_pid)
    found = [("supervisor", root)]
    for child in root.children():
        command = " ".join(child.cmdline())
        role = "poll worker" if "poll@" in command else "deliver parent" if "deliver@" in command else "other"
        found.append((role, child))
        kind = "beat" if role == "poll worker" else f"{role.split()[0]} child"
        found += [(kind, kid) for kid in sorted(child.children(recursive=True), key=lambda p: p.pid)]
    if redis_pid is not None:
        found.append(("redis (embedded)", psutil.Process(redis_pid)))
    return found


def megabytes(process: psutil.Process) -> tuple[float, float]:
    """PSS and USS in MiB (RSS twice where /proc/PID/smaps cannot be read)."""
    try:
        full = process.memory_full_info()
        return float(full.pss) / MIB, float(full.uss) / MIB
    except (psutil.AccessDenied, AttributeError):
        return (float(process.memory_info().rss) / MIB,) * 2


def short(command: list[str]) -> str:
    """A command line without directories and the options every worker shares."""
    return " ".join(Path(arg).name if arg.startswith("/") else arg for arg in command if arg not in COMMON)


def sample(soak: Soak, root_pid: int, redis_pid: int | None) -> None:
    """Record the memory of every service process now; a replaced process takes its predecessor's label."""
    taken: dict[str, tuple[int, float, float]] = {}
    with contextlib.suppress(psutil.Error):
        found = roles(root_pid, redis_pid)
        alive = {process.pid for _, process in found}
        for role, process in found:
            label = soak.labels.get(process.pid)
            if label is None:
                same = [name for pid, name in soak.labels.items() if name.startswith(role)]
                gone = [name for pid, name in soak.labels.items() if name in same and pid not in alive]
                label = min(gone) if gone else (role if role in PLAIN else f"{role} {len(same) + 1}")
                soak.labels = {pid: name for pid, name in soak.labels.items() if name != label}
                soak.labels[process.pid] = label
            with contextlib.suppress(psutil.Error):
                taken[label] = (process.pid, *megabytes(process))
                soak.commands.setdefault(label, short(process.cmdline()))
    soak.samples.append((time.time() - soak.start, taken))


def kill_mid_batch(soak: Soak, root_pid: int, publish: Publish) -> None:
    """Publish a burst of BURST alerts on one feed for echo, and SIGKILL the deliver child sending
    them (the busiest since the burst) as soon as the first reaches the sink (after 10 s: anyway)."""
    found = roles(root_pid, None)
    children = [process for role, process in found if role == "deliver child"]
    parent = next((process for role, process in found if role == "deliver parent"), None)
    if not children or parent is None:
        soak.notes.append("no deliver child found to kill")
        return
    cpu = {p.pid: sum(p.cpu_times()[:2]) for p in children}
    soak.burst_seen.clear()
    for _ in range(BURST):
        publish("f000", len(NAMES) - 1, "burst")
    soak.burst_seen.wait(10)
    victim = max(children, key=lambda p: sum(p.cpu_times()[:2]) - cpu[p.pid])
    os.kill(victim.pid, signal.SIGKILL)
    soak.killed_at = time.time() - soak.start
    arrived = sum(1 for title, _ in list(soak.arrivals) if " burst " in title)
    try:
        wait_for(lambda: bool({p.pid for p in parent.children()} - set(cpu)), timeout=30, what="a new child")
        outcome = f"replaced after {time.time() - soak.start - soak.killed_at:.1f} s"
    except AssertionError:
        outcome = "not replaced within 30 s"
    soak.notes.append(
        f"SIGKILLed {soak.labels.get(victim.pid, '?')} (pid {victim.pid}) at {soak.killed_at:.0f} s with"
        f" {arrived} of a {BURST}-alert burst at the sink; {outcome}"
    )


def run_traffic(
    args: argparse.Namespace,
    plan: Plan,
    feeds: FeedServer,
    sinks: list[WebhookSink],
    soak: Soak,
    on_tick: Callable[[float, Publish], None],
) -> None:
    """Publish at Poisson moments for ``plan.duration`` seconds, flipping failing sinks as planned."""
    rng = random.Random(args.seed)
    soak.start = time.time()
    next_item, numbers = soak.start + rng.expovariate(args.rate), iter(range(10**9))

    def publish(feed: str, k: int, kind: str = "story") -> None:
        number = next(numbers)
        title = f"{NAMES[k].capitalize()} soak {kind} {number} on {feed}"
        feeds.publish(feed, Entry(title, f"http://news.test/soak/{number}"))
        if kind != "burst":  # (a burst is trimmed by the feed's next item, long after it was polled)
            del feeds.feed(feed).entries[KEEP_ENTRIES:]
        soak.published[title] = (time.time(), k)

    while (now := time.time()) < soak.start + plan.duration:
        t = now - soak.start
        for k, (status, retry_after, _) in FAILING.items():
            refusing = plan.failing(k, t)
            if refusing != (sinks[k].status != 200):
                sinks[k].status, sinks[k].retry_after = (status if refusing else 200), retry_after
                print(f"  {t:6.0f} s  {NAMES[k]} sink {'answers ' + str(status) if refusing else 'recovers'}")
        on_tick(t, publish)
        while now >= next_item:
            publish(f"f{rng.randrange(args.feeds):03d}", rng.randrange(len(NAMES)))
            next_item += rng.expovariate(args.rate)
        time.sleep(max(0.0, min(0.05, next_item - time.time())))


def outbox_states(url: str) -> Counter[str]:
    """How many outbox records are in each state."""
    client = Store.from_url(url).client
    states: Counter[str] = Counter()
    for key in client.scan_iter(match=keys.OUTBOX + "d:*", count=1000):
        state = client.hget(key, "state")
        states[state.decode() if isinstance(state, bytes) else str(state)] += 1
    return states


def latency_row(label: str, values: list[float]) -> str:
    """p50 / p99 (nearest rank) / max."""
    if not (ordered := sorted(values)):
        return f"{label:<40} {'(none)':>22}"
    p50, p99 = statistics.median(ordered), ordered[min(len(ordered), max(1, round(0.99 * len(ordered)))) - 1]
    return f"{label:<40} {p50:6.2f} / {p99:6.2f} / {ordered[-1]:6.2f} s   (n={len(ordered)})"


def report(plan: Plan, soak: Soak, extra: dict[str, Any]) -> int:
    """Print the table; return the exit status."""
    first: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for title, at in soak.arrivals:
        counts[title] += 1
        first.setdefault(title, at)
    expected = set(soak.published)
    lost = sorted(expected - set(first), key=lambda title: soak.published[title][0])
    duplicated = sum(count - 1 for title, count in counts.items() if title in expected)
    latency = {title: first[title] - at for title, (at, _) in soak.published.items() if title in first}

    def stretch(title: str) -> bool:
        at, k = soak.published[title]
        return plan.failing(k, at - soak.start) or plan.failing(k, at - soak.start + 3)

    kill = soak.killed_at if soak.killed_at is not None else -1e9
    calm = {t: v for t, v in latency.items() if not stretch(t)}
    near_kill = [v for t, v in calm.items() if abs(soak.published[t][0] - soak.start - kill) <= 10]
    print("\n" + "=" * 103)
    print(f"{'':<40} {'value / start':>22} {'end':>9} {'growth':>8} {'USS growth':>10}")
    for label, value in [
        ("expected (unique alerts published)", len(expected)),
        ("delivered (unique alerts received)", len(first.keys() & expected)),
        ("lost", len(lost)),
        ("duplicated (extra copies received)", duplicated),
        ("received but never published", len(first.keys() - expected)),
    ]:
        print(f"{label:<40} {value:>22}")
    print("latency publish -> sink, p50 / p99 / max")
    print(latency_row("  all alerts", list(latency.values())))
    print(latency_row("  without the failing-sink stretches", list(calm.values())))
    print(latency_row("  of those, published within 10 s of kill", near_kill))
    slow = sorted(v for v in calm.values() if v > 10)
    spread = f"   ({slow[0]:.0f}-{slow[-1]:.0f} s)" if slow else ""
    print(f"{'  outside the stretches, over 10 s':<40} {len(slow):>22}{spread}")
    for label, value in extra.items():
        print(f"{label:<40} {value:>22}")
    problems = [f"{len(lost)} alerts lost, e.g. {lost[:3]}"] if lost else []
    base = min(soak.samples, key=lambda s: abs(s[0] - plan.warmup)) if soak.samples else (0.0, {})
    end = soak.samples[-1] if soak.samples else (0.0, {})
    print(f"memory, PSS MiB (start = at {base[0]:.0f} s, after warm-up; end = at {end[0]:.0f} s)")
    for label in sorted(end[1].keys() | base[1].keys(), key=lambda name: list(soak.commands).index(name)):
        (pid0, mib0, uss0), (pid1, mib1, uss1) = (row.get(label, (0, NAN, NAN)) for row in (base[1], end[1]))
        growth, uss = (mib1 / mib0 - 1) * 100, (uss1 / uss0 - 1) * 100
        name = f"{label} {pid1}" + (" (new pid)" if pid0 != pid1 else "")
        print(f"  {name:<38} {mib0:>22.1f} {mib1:>9.1f} {growth:>+7.1f}% {uss:>+9.1f}%")
        if growth > 10 and not label.startswith("redis"):
            problems.append(f"{label} grew {growth:+.1f}% after warm-up ({mib0:.1f} -> {mib1:.1f} MiB)")
    print("=" * 103)
    print("PSS trend (MiB, every sample; '.' = absent):")
    step = max(1, len(soak.samples) // 12)
    picked = soak.samples[::step] + ([soak.samples[-1]] if (len(soak.samples) - 1) % step else [])
    print(f"  {'at (s)':<22}" + "".join(f"{at:>7.0f}" for at, _ in picked))
    for label in soak.commands:
        cells = "".join(f"{row[label][1]:>7.1f}" if label in row else f"{'.':>7}" for _, row in picked)
        print(f"  {label:<22}{cells}")
    print("processes (label: command line):")
    for label, command in soak.commands.items():
        print(f"  {label:<22} {command[:110]}")
    for note in soak.notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--every", default="2s", help="poll interval of every feed")
    parser.add_argument("--rate", type=float, default=2.0, help="items per second across all feeds")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--drain", type=float, help="max seconds to wait for retries (180; 300 for 1 h)")
    parser.add_argument("--keep-log", type=Path, help="copy the service's log here")
    args = parser.parse_args()
    plan = Plan.of(args.minutes)
    drain = args.drain if args.drain is not None else max(180.0, 5 * plan.fail)
    soak = Soak()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        port = embedded_redis.free_port()
        redis = embedded_redis.start(port, work / "redis", persist=False)
        url = f"redis://127.0.0.1:{port}/0"
        feeds, sinks = FeedServer(), [WebhookSink() for _ in NAMES]
        servers: list[FeedServer | WebhookSink] = []
        worker: WorkerProcess | None = None
        alive = False
        try:
            Store.from_url(url).client.flushall()
            servers.append(feeds.start())
            for sink in sinks:
                servers.append(sink.start())
                sink.on_receive = lambda doc: receive(soak, str(doc.get("title")))
            (work / "config").mkdir()
            names = [f"f{n:03d}" for n in range(args.feeds)]
            for name in names:  # already there at the first poll: recorded, never alerted
                feeds.publish(name, *(Entry(f"Old {n}", f"http://old.test/{name}/{n}") for n in range(10)))
            write_config(
                work / "config",
                feeds=[{"name": name, "url": feeds.url(name), "every": args.every} for name in names],
                subscribers=[
                    {"name": name, "notify": [f"{sink.url}/{name}"], "burst": "off"}
                    for name, sink in zip(NAMES, sinks, strict=True)
                ],
                subscriptions=[
                    {"name": f"on-{name}", "subscribers": [name], "keywords": [name]} for name in NAMES
                ],
            )
            env = {"REDIS_URL": url, "ALERTS_CONFIG": str(work / "config"), "ALERTS_LOG_LEVEL": "INFO"}
            env.setdefault("ALERTS_HOST_CONCURRENCY", os.environ.get("ALERTS_HOST_CONCURRENCY", "16"))
            env["ALERTS_CONCURRENCY"] = "2"  # two deliver processes: one of them is killed mid-run
            worker = WorkerProcess(env, work / "service.log", via_cli=True).start()
            wait_for(lambda: min(feeds.feed(n).requests for n in names) >= 2, timeout=90, what="seeding")
            print(
                f"soak: {args.minutes:g} min, {args.feeds} feeds every {args.every}, {args.rate:g} items/s,"
                f" {len(NAMES)} subscribers; failing {plan.fail:.0f} s of every {plan.period:.0f} s;"
                f" kill at {plan.kill_at:.0f} s; drain <= {drain:.0f} s"
            )
            polls: dict[str, float] = {}
            next_sample = 0.0

            def tick(t: float, publish: Publish) -> None:
                nonlocal next_sample
                assert worker is not None
                if t >= next_sample:
                    sample(soak, worker.pid, redis.pid)
                    print(f"  {t:6.0f} s  published {len(soak.published)}, received {len(soak.received())}")
                    next_sample += args.sample
                if "warm" not in polls and t >= plan.warmup:
                    polls["warm"], polls["warm_t"] = sum(f.requests for f in feeds.feeds.values()), t
                if soak.killed_at is None and t >= plan.kill_at:
                    kill_mid_batch(soak, worker.pid, publish)

            run_traffic(args, plan, feeds, sinks, soak, tick)
            done = sum(f.requests for f in feeds.feeds.values())
            polled = (done - polls.get("warm", 0)) / (time.time() - soak.start - polls.get("warm_t", 0))
            drained, scheduled = time.time(), args.feeds / parse_duration(args.every)
            print(f"traffic over; draining (<= {drain:.0f} s) for {len(soak.published)} alerts")
            while time.time() < drained + drain and not (
                soak.received() >= set(soak.published) and set(outbox_states(url)) <= {"sent"}
            ):
                time.sleep(1)
            drain_took = time.time() - drained
            time.sleep(5)  # a repeat still in flight arrives now
            sample(soak, worker.pid, redis.pid)
            states = outbox_states(url)
            with contextlib.suppress(psutil.Error):
                alive = psutil.Process(worker.pid).status() != psutil.STATUS_ZOMBIE
            log = worker.text()
            extra = {
                "polls/s after warm-up (scheduled)": f"{polled:.1f} ({scheduled:.0f})",
                "drain took": f"{drain_took:.0f} s",
                "outbox records by state": ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
                "outbox still pending (not sent)": sum(v for k, v in states.items() if k != "sent"),
                "log: alert.failed / error lines": f"{log.count(FAILED)} / {log.count(ERROR)}",
                "service alive at the end": "yes" if alive else "NO",
            }
            if args.keep_log:
                args.keep_log.write_text(log)
        finally:
            if worker is not None:
                worker.stop()
            for server in servers:
                with contextlib.suppress(Exception):
                    server.stop()
            embedded_redis.stop(redis)
    return report(plan, soak, extra)


if __name__ == "__main__":
    sys.exit(main())
