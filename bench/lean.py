"""Lean (issue 13): CPU per 304 poll and memory of `alerts run`, side by side with a baseline checkout.

Every feed answers 304 (a local server with ETags), polled ``--every`` (5 s); after every feed has
been polled twice and ``--warmup`` seconds more, the CPU time of every process of `alerts run` (the
supervisor, its workers and their children, and the Redis it uses) is read over ``--seconds``, and
divided by the polls the feed server answered meanwhile. PSS is summed over the same processes at
the end. The baseline is a temporary ``git worktree`` of ``--baseline-rev`` run with the same
interpreter, feeds and settings, one after the other on the same machine.

    .venv/bin/python bench/lean.py                                 # 100 and 2,000 feeds, vs baseline
    .venv/bin/python bench/lean.py --feeds 100 --seconds 30 --baseline-rev none
    .venv/bin/python bench/lean.py --feeds 1000 --subscriptions 100000 --baseline-rev none  # growth
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # type: ignore[import-untyped]

from alerts.service import embedded_redis
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer
from tests.harness.worker import wait_for

MIB = 1024 * 1024
BASELINE = "6d9b218"  # main before issue 13 (issues 9-12 landed)


@dataclass
class Run:
    """What one `alerts run` cost."""

    tree: str
    feeds: int
    subscriptions: int
    polls_per_s: float
    cpu_ms_per_poll: float
    cpu_s_per_min: float
    pss_mib: float
    processes: int
    redis_pss_mib: float
    detail: list[str]


def processes(root: psutil.Process, redis_pid: int) -> list[psutil.Process]:
    """`alerts run` and everything under it, and the Redis it uses."""
    found = [root, *root.children(recursive=True)]
    with contextlib.suppress(psutil.Error):
        found.append(psutil.Process(redis_pid))
    return found


def role(proc: psutil.Process, root: psutil.Process, redis_pid: int) -> str:
    """What a process of `alerts run` is, for the per-process lines."""
    if proc.pid == root.pid:
        return "supervisor"
    if proc.pid == redis_pid:
        return "redis"
    with contextlib.suppress(psutil.Error):
        command = " ".join(proc.cmdline())
        parent = proc.parent()
        for name in ("poll", "deliver", "websub"):
            if (
                f"{name}@" in command
                or f"workers.{name}" in command
                or (name == "poll" and "alerts@" in command)
            ):
                return f"{name} child" if parent is not None and parent.pid != root.pid else name
    return "other"


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    """pid -> user + system CPU seconds (children's own, not reaped ones)."""
    times = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cpu = proc.cpu_times()
            times[proc.pid] = cpu.user + cpu.system
    return times


def pss(proc: psutil.Process) -> float:
    """PSS in MiB (RSS where smaps cannot be read)."""
    try:
        return float(proc.memory_full_info().pss) / MIB
    except (psutil.AccessDenied, AttributeError):
        return float(proc.memory_info().rss) / MIB


def subscriptions_of(count: int) -> list[dict[str, object]]:
    """``count`` keyword subscriptions over 10 subscribers, none matching the feeds' items."""
    return [
        {"name": f"s{n:06d}", "subscribers": [f"desk{n % 10}"], "keywords": [f"zzkeyword{n}"]}
        for n in range(count)
    ]


def measure(tree: Path, label: str, args: argparse.Namespace, feeds: int) -> Run:
    """One `alerts run` from ``tree`` with ``feeds`` feeds answering 304."""
    with tempfile.TemporaryDirectory(prefix="lean-") as tmp:
        work = Path(tmp)
        port = embedded_redis.free_port()
        redis = embedded_redis.start(port, work / "redis", persist=False)
        server = FeedServer().start()
        service: subprocess.Popen[bytes] | None = None
        try:
            names = [f"f{n:04d}" for n in range(feeds)]
            for name in names:
                server.publish(name, Entry(f"Old {name}", f"http://old.test/{name}"))
            (work / "config").mkdir()
            write_config(
                work / "config",
                feeds=[{"name": name, "url": server.url(name), "every": args.every} for name in names],
                subscribers=[
                    {"name": f"desk{n}", "notify": [f"json://127.0.0.1:9/desk{n}"]} for n in range(10)
                ],
                subscriptions=subscriptions_of(args.subscriptions),
            )
            env = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "ALERTS_CONFIG": str(work / "config"),
                "ALERTS_LOG_LEVEL": "INFO",
                "ALERTS_HOST_CONCURRENCY": str(args.host_concurrency),
                "ALERTS_METRICS_LISTEN": "127.0.0.1:0",  # on, as by default, on a port of its own
            }
            log = (work / "service.log").open("wb")
            service = subprocess.Popen(
                [args.python, "-m", "alerts.service.cli", "run"],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            wait_for(
                lambda: min(server.feed(n).requests for n in names) >= 2,
                timeout=120 + feeds / 20,
                what=f"{label}: every feed polled twice",
            )
            time.sleep(args.warmup)
            root = psutil.Process(service.pid)
            procs = processes(root, redis.pid)
            client = Store.from_url(f"redis://127.0.0.1:{port}/0").client
            stats_before = client.info("commandstats")
            before, polls_before, started = cpu_seconds(procs), server_requests(server), time.monotonic()
            time.sleep(args.seconds)
            after, polls_after, took = cpu_seconds(procs), server_requests(server), time.monotonic() - started
            stats_after = client.info("commandstats")
            used = sum(after[pid] - before[pid] for pid in after if pid in before)
            polls = polls_after - polls_before
            alive = processes(root, redis.pid)
            memory = [pss(proc) for proc in alive]
            detail = []
            for proc, mib in zip(alive, memory, strict=True):
                busy = (after.get(proc.pid, 0) - before.get(proc.pid, 0)) * 1000 / took
                detail.append(
                    f"    {role(proc, root, redis.pid):16} CPU {busy:7.1f} ms/s  PSS {mib:6.1f} MiB"
                )
            detail += commands(stats_before, stats_after, took)
            redis_pss = pss(psutil.Process(redis.pid))
            return Run(
                tree=label,
                feeds=feeds,
                subscriptions=args.subscriptions,
                polls_per_s=polls / took,
                cpu_ms_per_poll=used * 1000 / max(polls, 1),
                cpu_s_per_min=used * 60 / took,
                pss_mib=sum(memory),
                processes=len(alive),
                redis_pss_mib=redis_pss,
                detail=detail,
            )
        finally:
            if service is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGTERM)
                try:
                    service.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(service.pid, signal.SIGKILL)
                    service.wait()
            server.stop()
            embedded_redis.stop(redis)


def commands(before: dict[str, Any], after: dict[str, Any], took: float) -> list[str]:
    """The Redis commands the service sent meanwhile: calls per second and server time, busiest first."""
    rows = []
    for name, stats in after.items():
        calls = stats["calls"] - before.get(name, {}).get("calls", 0)
        usec = stats["usec"] - before.get(name, {}).get("usec", 0)
        if calls:
            rows.append(
                (
                    usec,
                    f"    redis {name.removeprefix('cmdstat_'):22} {calls / took:8.1f}/s"
                    f" {usec / took / 1000:6.2f} ms/s",
                )
            )
    return [row for _, row in sorted(rows, reverse=True)[:12]]


def server_requests(server: FeedServer) -> int:
    return sum(feed.requests for feed in server.feeds.values())


@contextlib.contextmanager
def worktree(rev: str) -> object:
    """A temporary checkout of ``rev``."""
    path = Path(tempfile.mkdtemp(prefix="lean-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def table(runs: list[Run]) -> str:
    head = (
        f"{'tree':10} {'feeds':>6} {'subs':>7} {'polls/s':>8} {'CPU ms/poll':>12} {'CPU s/min':>10}"
        f" {'PSS MiB':>8} {'of it Redis':>11} {'procs':>6}"
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        lines.append(
            f"{run.tree:10} {run.feeds:6} {run.subscriptions:7} {run.polls_per_s:8.1f}"
            f" {run.cpu_ms_per_poll:12.2f} {run.cpu_s_per_min:10.1f} {run.pss_mib:8.0f}"
            f" {run.redis_pss_mib:11.0f} {run.processes:6}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", default="100,2000", help="comma-separated feed counts")
    parser.add_argument("--every", default="5s")
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument(
        "--host-concurrency",
        type=int,
        default=10_000,
        help="every feed is on one host here, standing for many",
    )
    parser.add_argument("--detail", action="store_true", help="CPU and PSS of each process")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of the service: a venv with requirements.lock alone is what `make run` installs"
        " (the test venv's extras, such as rich, which structlog then imports, weigh some 8 MB per process)",
    )
    parser.add_argument("--baseline-rev", default=BASELINE, help="a git revision, or none")
    args = parser.parse_args()
    counts = [int(n) for n in args.feeds.split(",")]
    runs: list[Run] = []
    trees: list[tuple[str, contextlib.AbstractContextManager[object]]] = [
        ("current", contextlib.nullcontext(ROOT))
    ]
    if args.baseline_rev != "none":
        trees.insert(0, (f"base {args.baseline_rev[:7]}", worktree(args.baseline_rev)))
    for label, context in trees:
        with context as tree:
            assert isinstance(tree, Path)
            for count in counts:
                run = measure(tree, label, args, count)
                print(table([run]).splitlines()[-1], flush=True)
                if args.detail:
                    print("\n".join(run.detail), flush=True)
                runs.append(run)
    print()
    print(f"`alerts run`, every feed answering 304 every {args.every}; CPU of every process incl. Redis")
    print(table(runs))
    if args.baseline_rev != "none":
        for count in counts:
            base = next(r for r in runs if r.feeds == count and r.tree != "current")
            now = next(r for r in runs if r.feeds == count and r.tree == "current")
            print(
                f"{count} feeds: CPU per poll {now.cpu_ms_per_poll:.2f} ms vs {base.cpu_ms_per_poll:.2f} ms"
                f" (x{now.cpu_ms_per_poll / base.cpu_ms_per_poll:.2f}), PSS {now.pss_mib:.0f} vs"
                f" {base.pss_mib:.0f} MiB (x{now.pss_mib / base.pss_mib:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
