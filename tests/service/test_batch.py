"""Batched polls (alerts.service.batch) and the poller (alerts.service.poller), in process: real Redis,
a real feed server, no Celery. At the defaults a user runs (tick 0.25 s, claim hold 60 s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.models import Alert
from alerts.service.batch import poll_batch
from alerts.service.pipeline import schedule_sync
from alerts.service.poller import Periodic, Poller
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer

UNREACHABLE = "json://127.0.0.1:9/unused"


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []
        self.lock = threading.Lock()

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        with self.lock:
            self.jobs.extend(jobs)

    def titles(self) -> list[str]:
        with self.lock:
            return [alert.title for alert, _ in self.jobs]


def _config(config_dir: Path, feed_server: FeedServer, names: list[str], every: str = "5s") -> None:
    for name in names:
        feed_server.publish(name, Entry(f"Old {name}", f"http://old.test/{name}"))
    write_config(
        config_dir,
        feeds=[{"name": name, "url": feed_server.url(name), "every": every} for name in names],
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}],
        subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )


def _runtime(config_dir: Path, redis_url: str, **settings: object) -> Runtime:
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, **settings))  # type: ignore[arg-type]


def test_a_batch_seeds_then_records_304s_and_alerts_what_is_new(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    names = [f"f{n}" for n in range(5)]
    _config(config_dir, feed_server, names)
    runtime, recorder = _runtime(config_dir, redis_url, host_concurrency=5), Recorder()  # one host here
    first = poll_batch(runtime, names, recorder)
    assert sorted(report.status for report in first) == ["ok"] * 5  # seeded: recorded, not alerted
    with capture_logs() as logs:
        second = poll_batch(runtime, names, recorder)
    assert [report.status for report in second] == ["not_modified"] * 5
    states = runtime.store.feeds.get_many(names)
    assert all(float(state["last_304"]) > 0 and state["failures"] == "0" for state in states.values())
    assert [event["status"] for event in logs if event["event"] == "feed.polled"] == [304] * 5
    assert all(event["log_level"] == "debug" for event in logs if event["event"] == "feed.polled")
    feed_server.publish("f3", Entry("Gaza crossing reopens", "http://news.test/gaza"))
    third = {report.feed: report for report in poll_batch(runtime, names, recorder)}
    assert third["f3"].status == "ok" and third["f3"].alerts == 1
    assert recorder.titles() == ["Gaza crossing reopens"]
    assert not runtime.store.client.keys(keys.POLL_LOCK + "*")  # every lock given back
    assert runtime.store.client.zcard(keys.host_slots("127.0.0.1")) == 0


def test_a_feed_another_live_process_polls_is_busy_and_a_full_host_defers(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    names = ["a", "b", "c"]
    _config(config_dir, feed_server, names)
    runtime = _runtime(config_dir, redis_url, host_concurrency=1)
    schedule_sync(runtime, runtime.live.current().config)
    other = Store.from_url(redis_url)
    other.liveness.start()
    try:
        time.sleep(1.2)
        assert other.locks.lock_feed("a", 60) is not None
        slot = other.locks.take_host_slot("127.0.0.1", 1, 60)  # the host's one slot: another's poll
        assert slot is not None
        reports = {report.feed: report.status for report in poll_batch(runtime, names, Recorder())}
        assert reports == {"a": "busy", "b": "deferred", "c": "deferred"}
        booked = runtime.store.schedule.of(["b", "c"])
        assert all(at is not None and at <= time.time() + 1.0 for at, _ in booked.values())
        assert not runtime.store.client.exists(keys.poll_lock("b"), keys.poll_lock("c"))
        other.locks.give_host_slot("127.0.0.1", slot)
    finally:
        other.liveness.release()


def test_a_batch_polls_one_hosts_feeds_back_to_back_within_its_limit(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """Five feeds of one host allowed one poll at a time: the batch polls them in turn (never two at
    once at the server), all within the batch, none deferred to a later turn."""
    names = [f"f{n}" for n in range(5)]
    _config(config_dir, feed_server, names)
    feed_server.latency = 0.05
    runtime = _runtime(config_dir, redis_url, host_concurrency=1)
    schedule_sync(runtime, runtime.live.current().config)
    started = time.monotonic()
    reports = poll_batch(runtime, names, Recorder())
    took = time.monotonic() - started
    assert sorted(report.status for report in reports) == ["ok"] * 5
    assert 0.25 <= took < 2.0, took  # five 50 ms answers one after the other
    assert runtime.store.client.zcard(keys.host_slots("127.0.0.1")) == 0


def test_a_failing_feed_fails_alone(feed_server: FeedServer, config_dir: Path, redis_url: str) -> None:
    names = ["good", "bad"]
    _config(config_dir, feed_server, names)
    feed_server.feed("bad").status = 503
    runtime = _runtime(config_dir, redis_url)
    reports = {report.feed: report.status for report in poll_batch(runtime, names, Recorder())}
    assert reports == {"good": "ok", "bad": "failed"}
    assert runtime.store.feeds.get("bad")["failures"] == "1"
    assert not runtime.store.client.keys(keys.POLL_LOCK + "*")


def test_the_poller_polls_each_feed_at_its_cadence_and_runs_the_jobs(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """Three feeds every 1 s, the defaults' tick: over 6 s each is polled about six times (never
    twice at once), and a job every second runs about six times."""
    names = ["a", "b", "c"]
    _config(config_dir, feed_server, names, every="1s")
    runtime, ran = _runtime(config_dir, redis_url), []
    job = Periodic("job", 1.0, lambda: ran.append(1))
    poller = Poller(runtime, Recorder(), threads=4, tick=0.25, jobs=[job])
    poller.start()
    try:
        time.sleep(2.5)  # first polls are spread over the first seconds
        start = {name: feed_server.feed(name).requests for name in names}
        time.sleep(6)
        polls = {name: feed_server.feed(name).requests - start[name] for name in names}
    finally:
        poller.stop()
    assert all(5 <= count <= 7 for count in polls.values()), polls
    assert 7 <= len(ran) <= 10, len(ran)


def test_two_pollers_never_poll_a_feed_twice_in_its_interval(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    names = [f"f{n}" for n in range(20)]
    _config(config_dir, feed_server, names, every="2s")
    runtimes = [_runtime(config_dir, redis_url, host_concurrency=20) for _ in range(2)]
    pollers = [Poller(runtime, Recorder(), threads=4, tick=0.25) for runtime in runtimes]
    for poller in pollers:
        poller.start()
    try:
        time.sleep(3)
        start = {name: feed_server.feed(name).requests for name in names}
        time.sleep(8)
        polls = {name: feed_server.feed(name).requests - start[name] for name in names}
    finally:
        for poller in pollers:
            poller.stop()
    assert all(3 <= count <= 5 for count in polls.values()), polls  # 8 s / 2 s each, once per turn
