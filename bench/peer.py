"""Peer: breaking-alerts vs changedetection.io on the same feeds and sink, alert latency and CPU.

Both tools watch one measured feed every 1 s plus 100 background feeds every 5 s, all served by one
local FeedServer (ETag / 304; changedetection sends no If-None-Match, so it always gets 200), and
notify one local WebhookSink through an Apprise ``json://`` URL. Once a tool is steady (every feed
checked, then ``--warmup`` s), ``--items`` unique headlines are appended to the measured feed at
random moments 2-4 s apart (the same seeded schedule for both tools). Measured per tool:

- latency: appended to the served feed -> received by the sink (its headline found in the body),
  p50 / p90 / max over the items;
- CPU: user + system seconds of every process of the tool (the process tree, reaped children
  included; for ours also its Redis) from the first append's wait to the last append + ``--tail``;
- the effective check interval of the measured feed and of a background feed (requests the feed
  server answered in that window).

The tools run one after the other, never together. Ours: ``python -m alerts.service.cli run``
(``--python``), an embedded Redis without persistence, ``ALERTS_HOST_CONCURRENCY`` 10000 (every
feed is on one loopback host), a subscription on ``breaking``, ``burst: off``. Theirs:
``changedetection.py -h 127.0.0.1 -p <free> -d <fresh tmp> -C -l INFO`` (INFO as ours; its default
is DEBUG) with, set for 1-second checks to be possible:

- env ``MINIMUM_SECONDS_RECHECK_TIME=1`` (its scheduler's floor, default 3 s);
- ``settings.requests.jitter_seconds`` left at its default 0 (no random +/- on the interval);
- per watch ``time_between_check_use_default: false``, ``time_between_check: {seconds: 1}`` (5 for
  the background), ``fetch_backend: html_requests``;
- env ``ALLOW_IANA_RESTRICTED_ADDRESSES=true`` (else it refuses to fetch or notify 127.0.0.1).

The measured watch is given with ``-u URL -u0 JSON`` (which also keeps the default internet watches
of a fresh datastore out), with ``notification_urls: [json://sink]``, ``notification_format: text``
and ``notification_body: {{diff_added}}``; the 100 background watches are POSTed to
``/api/v1/watch`` with the ``x-api-key`` read from ``<datastore>/changedetection.json``
(``settings.application.api_access_token``). Every process and temp dir is removed at the end.

    .venv/bin/python bench/peer.py [--items 30] [--python /tmp/runvenv/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # type: ignore[import-untyped]

from alerts.service import embedded_redis
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink

BACKGROUND = 100
MEASURED = "wire"
TARGET_CPU, TARGET_P50 = 0.25, 0.7
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Result:
    """What one tool did over the measurement window."""

    tool: str
    latencies_ms: list[float]
    items: int
    cpu_s: float
    window_s: float
    measured_every_s: float
    background_every_s: float
    processes: int

    def p(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else 0.0


def until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> None:
    """Poll ``condition`` until truthy, or raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def tree(root: psutil.Process, extra: list[int]) -> list[psutil.Process]:
    """``root``, everything under it, and the ``extra`` pids."""
    found = [root]
    with contextlib.suppress(psutil.Error):
        found += root.children(recursive=True)
    for pid in extra:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def cpu_total(procs: list[psutil.Process]) -> float:
    """User + system seconds of ``procs`` and of the children they reaped. A process that exits
    between two readings moves into its parent's children times, so differences stay right."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cpu = proc.cpu_times()
            total += cpu.user + cpu.system + cpu.children_user + cpu.children_system
    return total


class Bench:
    """The feeds, the sink, the headlines and the schedule of one tool's run."""

    def __init__(self, schedule: list[float], tail: float) -> None:
        self.schedule, self.tail = schedule, tail
        token = secrets.token_hex(3)
        self.headlines = [f"Breaking: peer bench item {n:03d} {token}" for n in range(len(schedule))]
        self.appended: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self.server = FeedServer().start()
        self.sink = WebhookSink()
        self.sink.on_receive = self._received
        self.sink.start()
        self.background = [f"bg{n:03d}" for n in range(BACKGROUND)]
        for name in [MEASURED, *self.background]:
            self.server.publish(name, Entry(f"Old story of {name}", f"http://old.test/{name}"))

    def _received(self, payload: dict[str, Any]) -> None:
        now, text = time.time(), f"{payload.get('title', '')}\n{payload.get('message', '')}"
        for headline in self.headlines:
            if headline in text and headline in self.appended:
                self.arrived.setdefault(headline, now)

    def stop(self) -> None:
        self.server.stop()
        self.sink.stop()

    def requests(self) -> tuple[int, int]:
        """Requests answered so far: the measured feed, the first background feed."""
        return self.server.feed(MEASURED).requests, self.server.feed(self.background[0]).requests

    def measure(self, tool: str, procs: Callable[[], list[psutil.Process]]) -> Result:
        """Append the headlines on the schedule; CPU and requests over the window; then the arrivals."""
        before_cpu, before_req, started = cpu_total(procs()), self.requests(), time.monotonic()
        for headline, delay in zip(self.headlines, self.schedule, strict=True):
            time.sleep(delay)
            self.appended[headline] = time.time()
            self.server.publish(MEASURED, Entry(headline, f"http://news.test/{headline[-10:]}"))
        time.sleep(self.tail)
        running = procs()
        after_cpu, after_req, window = cpu_total(running), self.requests(), time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            until(lambda: len(self.arrived) >= len(self.headlines), 30, "the last alerts")
        measured, background = (max(a - b, 1) for a, b in zip(after_req, before_req, strict=True))
        return Result(
            tool=tool,
            latencies_ms=[(self.arrived[h] - self.appended[h]) * 1000 for h in self.arrived],
            items=len(self.headlines),
            cpu_s=after_cpu - before_cpu,
            window_s=window,
            measured_every_s=window / measured,
            background_every_s=window / background,
            processes=len(running),
        )


def stop_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the session of ``process``, SIGKILL it if still there after 30 s."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # stragglers of the session
        os.killpg(process.pid, signal.SIGKILL)


def run_ours(args: argparse.Namespace, schedule: list[float]) -> Result:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peer-ours-")))
        bench = Bench(schedule, args.tail)
        stack.callback(bench.stop)
        port = embedded_redis.free_port()
        redis = embedded_redis.start(port, work / "redis", persist=False)
        stack.callback(embedded_redis.stop, redis)
        (work / "config").mkdir()
        feeds = [{"name": MEASURED, "url": bench.server.url(MEASURED), "every": "1s"}]
        feeds += [{"name": n, "url": bench.server.url(n), "every": "5s"} for n in bench.background]
        write_config(
            work / "config",
            feeds=feeds,
            subscribers=[{"name": "desk", "notify": [bench.sink.apprise_url], "burst": "off"}],
            subscriptions=[{"name": "peer", "subscribers": ["desk"], "keywords": ["breaking"]}],
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "ALERTS_CONFIG": str(work / "config"),
            "ALERTS_STATE_DIR": str(work / "state"),
            "ALERTS_LOG_LEVEL": "INFO",
            "ALERTS_HOST_CONCURRENCY": "10000",
            "ALERTS_METRICS_LISTEN": "127.0.0.1:0",
            "ALERTS_WEBSUB_LISTEN": "127.0.0.1:0",
        }
        with (work / "service.log").open("wb") as log:
            service = subprocess.Popen(
                [args.python, "-m", "alerts.service.cli", "run"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.callback(stop_group, service)
        names = [MEASURED, *bench.background]
        until(
            lambda: service.poll() is None and min(bench.server.feed(n).requests for n in names) >= 2,
            120,
            "ours: every feed polled twice",
        )
        time.sleep(args.warmup)
        root = psutil.Process(service.pid)
        return bench.measure("breaking-alerts", lambda: tree(root, [redis.pid]))


def api(base: str, key: str, path: str, body: object | None = None) -> Any:
    """A call to changedetection's REST API; JSON in and out."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers)
    with NO_PROXY.open(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def answers(base: str, key: str) -> bool:
    try:
        api(base, key, "/api/v1/systeminfo")
    except OSError:
        return False
    return True


def run_theirs(args: argparse.Namespace, schedule: list[float]) -> Result:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peer-cdio-")))
        bench = Bench(schedule, args.tail)
        stack.callback(bench.stop)
        port = embedded_redis.free_port()
        base = f"http://127.0.0.1:{port}"
        watch = {"time_between_check_use_default": False, "fetch_backend": "html_requests"}
        measured = {
            **watch,
            "time_between_check": {"seconds": 1},
            "notification_urls": [bench.sink.apprise_url],
            "notification_format": "text",
            "notification_title": "changedetection.io",
            "notification_body": "{{diff_added}}",
        }
        env = {
            **os.environ,
            "MINIMUM_SECONDS_RECHECK_TIME": "1",
            "ALLOW_IANA_RESTRICTED_ADDRESSES": "true",
            "LISTEN_HOST": "127.0.0.1",
        }
        command = [args.changedetection, "-h", "127.0.0.1", "-p", str(port), "-d", str(work / "ds"), "-C"]
        command += ["-l", "INFO", "-u", bench.server.url(MEASURED), "-u0", json.dumps(measured)]
        with (work / "changedetection.log").open("wb") as log:
            service = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        stack.callback(stop_group, service)
        settings = work / "ds" / "changedetection.json"
        until(lambda: service.poll() is None and settings.exists(), 120, "theirs: its datastore")
        key = json.loads(settings.read_text())["settings"]["application"]["api_access_token"]
        until(lambda: service.poll() is None and answers(base, key), 120, "theirs: its API", every=0.5)
        for name in bench.background:
            api(
                base,
                key,
                "/api/v1/watch",
                {**watch, "url": bench.server.url(name), "time_between_check": {"seconds": 5}},
            )
        watches = api(base, key, "/api/v1/watch")
        assert len(watches) == BACKGROUND + 1, f"theirs: {len(watches)} watches, not {BACKGROUND + 1}"
        until(
            lambda: (
                service.poll() is None
                and all(w["last_checked"] for w in api(base, key, "/api/v1/watch").values())
                and bench.server.feed(MEASURED).requests >= 3
            ),
            180,
            "theirs: every watch checked",
            every=1.0,
        )
        time.sleep(args.warmup)
        root = psutil.Process(service.pid)
        return bench.measure("changedetection.io", lambda: tree(root, []))


def version(script: str) -> str:
    python = Path(script).with_name("python")
    probe = "from importlib.metadata import version; print(version('changedetection.io'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def table(results: list[Result]) -> str:
    head = (
        f"{'tool':20} {'recv':>7} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} {'CPU s':>7} {'CPU %':>6}"
        f" {'1s feed every':>14} {'5s feed every':>14} {'procs':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.tool:20} {len(r.latencies_ms):>3}/{r.items:<3} {r.p(0.5):8.0f} {r.p(0.9):8.0f}"
            f" {max(r.latencies_ms, default=0):8.0f} {r.cpu_s:7.2f} {r.cpu_s * 100 / r.window_s:6.1f}"
            f" {r.measured_every_s:13.2f}s {r.background_every_s:13.2f}s {r.processes:6}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM raises SystemExit, so every cleanup runs."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=30, help="headlines appended to the measured feed")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds once every feed was checked")
    parser.add_argument("--tail", type=float, default=5.0, help="seconds of the window after the last append")
    parser.add_argument("--seed", type=int, default=None, help="of the append schedule (default: random)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter of ours (e.g. /tmp/runvenv/bin/python, runtime lock only)",
    )
    parser.add_argument("--changedetection", default="/tmp/cdio/bin/changedetection.py")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    schedule = [rng.uniform(2.0, 4.0) for _ in range(args.items)]
    results: list[Result] = []
    with terminated_cleanly():
        for run in (run_ours, run_theirs):
            result = run(args, schedule)
            print(table([result]).splitlines()[-1], flush=True)
            results.append(result)
    ours, theirs = results
    print()
    print(
        f"{args.items} items appended 2-4 s apart to a feed checked every 1 s, plus {BACKGROUND} feeds"
        f" every 5 s; window {ours.window_s:.0f} s / {theirs.window_s:.0f} s;"
        f" changedetection.io {version(args.changedetection)}; ours with {args.python}"
    )
    print(table(results))
    cpu = ours.cpu_s / theirs.cpu_s if theirs.cpu_s else float("inf")
    p50 = ours.p(0.5) / theirs.p(0.5) if theirs.p(0.5) else float("inf")
    verdict = {True: "ok", False: "MISSED"}
    print(f"ours/theirs CPU        {cpu:6.3f}x   target <= {TARGET_CPU}x   {verdict[cpu <= TARGET_CPU]}")
    print(f"ours/theirs latency p50 {p50:5.3f}x   target <= {TARGET_P50}x   {verdict[p50 <= TARGET_P50]}")
    complete = all(len(r.latencies_ms) == r.items for r in results)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
