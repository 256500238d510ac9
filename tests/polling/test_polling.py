"""Polite polling: backoff, Retry-After, max-age, per-host slots, adaptive intervals, feed health."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.models import Alert, Feed
from alerts.polling import policy
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, ThreadedServer

UNREACHABLE = "json://127.0.0.1:9/hook"


class Recorder:
    """A dispatch that records jobs."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        self.jobs.extend(jobs)


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in logs if event["event"] == name]


# --- pure policy -----------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    """Each failure doubles the ceiling from the interval; jitter keeps it within [50%, 100%]; capped."""
    feed = Feed("f", "http://x/", every=60.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 60), (2, 120), (3, 240), (5, 960), (12, policy.BACKOFF_CAP)]:
        delays = [policy.after_failure(feed, failures, None, rng) for _ in range(50)]
        assert all(max(60.0, ceiling / 2) <= delay <= ceiling for delay in delays)
        if ceiling > 120:
            assert len(set(delays)) > 10, "jitter spreads retries of many feeds"


def test_retry_after_is_honoured_as_given() -> None:
    """A server's Retry-After wins over backoff (bounded to a day)."""
    feed = Feed("f", "http://x/", every=60.0)
    assert policy.after_failure(feed, 1, 7.0) == 7.0
    assert policy.after_failure(feed, 9, 3600.0) == 3600.0
    assert policy.after_failure(feed, 1, 10 * 86400.0) == policy.MAX_RETRY_AFTER


def test_max_age_delays_the_next_poll_but_never_shortens_it() -> None:
    """Cache-Control max-age longer than the interval is honoured; a shorter one changes nothing."""
    feed = Feed("f", "http://x/", every=30.0)
    health = policy.Health()
    assert policy.after_success(feed, health, 300.0) == 300.0
    assert policy.after_success(feed, health, 5.0) == 30.0
    assert policy.after_success(feed, health, None) == 30.0
    assert policy.after_success(feed, health, 10 * 3600.0) == policy.MAX_CACHE_WAIT


def test_adaptive_interval_follows_the_feeds_rhythm_within_bounds() -> None:
    """every: auto polls a busy feed often and a quiet one rarely, within min_every..max_every."""
    feed = Feed("f", "http://x/", every=60.0, adaptive=True, min_every=10.0, max_every=600.0)
    busy = policy.Health(arrivals=tuple(1000.0 + 60 * n for n in range(10)))
    quiet = policy.Health(arrivals=tuple(1000.0 + 7200 * n for n in range(10)))
    frantic = policy.Health(arrivals=tuple(1000.0 + 5 * n for n in range(10)))
    assert policy.interval(feed, busy) == 20.0
    assert policy.interval(feed, quiet) == 600.0
    assert policy.interval(feed, frantic) == 10.0
    assert policy.interval(feed, policy.Health()) == 60.0


def test_unhealthy_after_repeated_failures_or_a_long_silence() -> None:
    """K failures in a row, or silence for N usual gaps of seen arrivals (an hour at least), make a feed
    unhealthy; else it is healthy."""
    feed = Feed("f", "http://x/")
    now = 100_000.0
    hourly = tuple(now - 11 * 3600 + 3600 * n for n in range(10))  # seen arriving once an hour
    assert policy.unhealthy_reason(feed, policy.Health(failures=4), now) is None
    reason = policy.unhealthy_reason(feed, policy.Health(failures=5, last_error="HTTP 503"), now)
    assert reason is not None and "5 failures" in reason and "HTTP 503" in reason
    assert policy.unhealthy_reason(feed, policy.Health(seen=hourly), hourly[-1] + 9 * 3600) is None
    silent = policy.unhealthy_reason(feed, policy.Health(seen=hourly), hourly[-1] + 10 * 3600 + 1)
    assert silent is not None and "no new item for 10.0 h" in silent and "10 times its usual gap" in silent
    assert policy.unhealthy_reason(feed, policy.Health(seen=hourly[:3]), now + 10**6) is None


def test_silence_is_never_judged_under_the_floor() -> None:
    """Items seen seconds apart (a live blog's burst) make a usual gap of seconds; silence still needs
    an hour."""
    feed = Feed("f", "http://x/")
    burst = tuple(1000.0 + 5 * n for n in range(10))
    assert policy.unhealthy_reason(feed, policy.Health(seen=burst), burst[-1] + 59 * 60) is None
    assert policy.unhealthy_reason(feed, policy.Health(seen=burst), burst[-1] + 61 * 60) is not None


def test_a_feed_may_set_its_own_silence_or_none() -> None:
    """``silence: 6h`` judges a feed after 6 h without an item, even with no history; ``off`` never."""
    watched = policy.Health(watched_since=1000.0)
    six_hours = Feed("f", "http://x/", silence=6 * 3600.0)
    assert policy.unhealthy_reason(six_hours, watched, 1000.0 + 5 * 3600) is None
    assert policy.unhealthy_reason(six_hours, watched, 1000.0 + 6 * 3600 + 1) is not None
    never = Feed("f", "http://x/", silence=0.0)
    regular = tuple(1000.0 + 60 * n for n in range(10))
    assert policy.unhealthy_reason(never, policy.Health(seen=regular), 10**9) is None


def test_silence_counts_only_time_the_service_was_watching() -> None:
    """After a pause in our own polling (a restart, an outage), silence counts from when we resumed."""
    feed = Feed("f", "http://x/")
    regular = tuple(1000.0 + 60 * n for n in range(10))
    days_later = regular[-1] + 3 * 86400
    resumed = policy.Health(seen=regular, last_ok=regular[-1], watched_since=regular[0])
    since = policy.watched_since(resumed, days_later)
    assert since == days_later, "the last good poll was days ago: the clock restarts"
    restarted = policy.Health(seen=regular, watched_since=since)
    assert policy.unhealthy_reason(feed, restarted, days_later + 60) is None
    assert policy.unhealthy_reason(feed, restarted, days_later + 3601) is not None


# --- through the pipeline --------------------------------------------------------------------


def _runtime(config_dir: Path, redis_url: str, **settings: Any) -> Runtime:
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, **settings))


def _config(config_dir: Path, feeds: list[dict[str, Any]], ops: bool = False) -> None:
    write_config(
        config_dir,
        feeds=feeds,
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}, {"name": "oncall", "notify": [UNREACHABLE]}],
        subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    if ops:
        path = config_dir / "subscriptions.yaml"
        path.write_text(path.read_text() + "ops: [oncall]\n")


@pytest.fixture
def throttling_server() -> Any:
    """A server answering 429 with Retry-After: 120, and 200 with Cache-Control: max-age=600."""
    app = web.Application()

    async def throttled(_: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def cached(_: web.Request) -> web.Response:
        body = b'<rss version="2.0"><channel><title>t</title></channel></rss>'
        return web.Response(
            body=body, content_type="application/rss+xml", headers={"Cache-Control": "max-age=600"}
        )

    app.router.add_get("/throttled.xml", throttled)
    app.router.add_get("/cached.xml", cached)
    server = ThreadedServer(app).start()
    yield server
    server.stop()


def test_429_retry_after_and_max_age_book_the_next_poll(
    throttling_server: ThreadedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A 429 with Retry-After: 120 books the next poll 120 s later; max-age=600 books it 600 s later."""
    base = throttling_server.base
    _config(
        config_dir,
        [
            {"name": "throttled", "url": f"{base}/throttled.xml", "every": "10s"},
            {"name": "cached", "url": f"{base}/cached.xml", "every": "10s"},
        ],
    )
    runtime = _runtime(config_dir, redis_url)
    pipeline.schedule(runtime, now=time.time() + 10)
    started = time.time()
    assert pipeline.poll_feed(runtime, "throttled", Recorder()).status == "failed"
    assert pipeline.poll_feed(runtime, "cached", Recorder()).status == "ok"
    booked = store.schedule.of(["throttled", "cached"])
    assert booked["throttled"][0] == pytest.approx(started + 120, abs=3)
    assert booked["cached"][0] == pytest.approx(started + 600, abs=3)


def test_busy_host_defers_the_poll(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """With the host's slots all taken by other workers, a poll is deferred by about a second."""
    _config(config_dir, [{"name": "wire", "url": feed_server.url("wire"), "every": "1m"}])
    runtime = _runtime(config_dir, redis_url, host_concurrency=2)
    pipeline.schedule(runtime, now=time.time() + 10)
    held = [store.locks.take_host_slot("127.0.0.1", 2, 30) for _ in range(2)]
    assert all(held) and store.locks.take_host_slot("127.0.0.1", 2, 30) is None
    requests = feed_server.feed("wire").requests
    assert pipeline.poll_feed(runtime, "wire", Recorder()).status == "deferred"
    assert feed_server.feed("wire").requests == requests
    assert store.schedule.of(["wire"])["wire"][0] == pytest.approx(time.time() + 0.6, abs=0.5)
    store.locks.give_host_slot("127.0.0.1", held[0] or "")
    assert pipeline.poll_feed(runtime, "wire", Recorder()).status == "ok"
    assert store.client.zcard(keys.host_slots("127.0.0.1")) == 1, "the poll gave its slot back"


def test_unhealthy_and_recovered_are_logged_and_sent_to_ops_once(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Five failures log feed.unhealthy once and notify ops; the first good poll logs feed.recovered once."""
    _config(config_dir, [{"name": "wire", "url": feed_server.url("wire"), "every": "1m"}], ops=True)
    runtime = _runtime(config_dir, redis_url)
    feed_server.feed("wire").status = 503
    recorder = Recorder()
    with capture_logs() as logs:
        for _ in range(7):
            assert pipeline.poll_feed(runtime, "wire", recorder).status == "failed"
    assert len(_events(logs, "feed.unhealthy")) == 1
    assert store.feeds.get("wire")["failures"] == "7"
    [(alert, _)] = recorder.jobs
    assert alert.subscriber == "oncall" and "unhealthy" in alert.title and "503" in alert.summary
    feed_server.feed("wire").status = 200
    feed_server.publish("wire", Entry("Quiet day", "http://news.test/quiet"))
    with capture_logs() as logs:
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "not_modified"
    assert len(_events(logs, "feed.recovered")) == 1
    assert [a.title for a, _ in recorder.jobs] == ["Feed wire is unhealthy", "Feed wire recovered"]
    state = store.feeds.get("wire")
    assert state["failures"] == "0" and "unhealthy" not in state and state["items_seen"] == "1"


def test_adaptive_feed_books_its_learned_interval(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """every: auto learns the gap between items from the feed and books polls at a third of it."""
    now = time.time()
    for n in range(8):
        feed_server.publish(
            "wire", Entry(f"Item {n}", f"http://news.test/{n}", published=_at(now - 3600 + 300 * n))
        )
    _config(
        config_dir, [{"name": "wire", "url": feed_server.url("wire"), "every": "auto", "min_every": "10s"}]
    )
    runtime = _runtime(config_dir, redis_url)
    pipeline.schedule(runtime, now=time.time() + 10)
    assert pipeline.poll_feed(runtime, "wire", Recorder()).status == "ok"
    next_poll, every = store.schedule.of(["wire"])["wire"]
    assert every == pytest.approx(100.0)
    assert next_poll == pytest.approx(time.time() + 100, abs=3)


def _at(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


@pytest.mark.e2e
def test_alerts_feeds_reports_health(feed_server: FeedServer, config_dir: Path, redis_url: str) -> None:
    """`alerts feeds --json` and the table show each feed's status, failures, items and schedule."""
    import json
    import os
    import subprocess
    import sys

    feed_server.feed("down").status = 500
    feed_server.publish("wire", Entry("Gaza talks", "http://news.test/talks"))
    _config(
        config_dir,
        [
            {"name": "wire", "url": feed_server.url("wire"), "every": "1m"},
            {"name": "down", "url": feed_server.url("down"), "every": "1m"},
        ],
    )
    runtime = _runtime(config_dir, redis_url)
    pipeline.schedule(runtime, now=time.time() + 10)
    for name in ("wire", "down"):
        pipeline.poll_feed(runtime, name, Recorder())
    env = {**os.environ, "ALERTS_CONFIG": str(config_dir), "REDIS_URL": redis_url}
    alerts = str(Path(sys.executable).with_name("alerts"))
    result = subprocess.run([alerts, "feeds", "--json"], env=env, capture_output=True, text=True, check=True)
    rows = {row["feed"]: row for row in json.loads(result.stdout)}
    assert (rows["wire"]["status"], rows["wire"]["failures"], rows["wire"]["items_seen"]) == ("ok", 0, 1)
    assert (rows["down"]["status"], rows["down"]["failures"]) == ("failing", 1)
    assert "HTTP 500" in rows["down"]["last_error"] and rows["down"]["next_poll"] > time.time()
    text = subprocess.run([alerts, "feeds"], env=env, capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["FEED", "STATUS"]
    assert any(line.startswith("down") and "failing" in line and "HTTP 500" in line for line in lines)


def test_a_first_poll_backlog_stamped_seconds_apart_raises_no_false_notice(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Twenty feeds whose backlogs are stamped seconds apart (and a minute old) are polled twice: none
    is called unhealthy and ops hear nothing; only items seen arriving count as history."""
    now = time.time()
    names = [f"wire-{n}" for n in range(20)]
    for name in names:
        for n in range(12):
            feed_server.publish(
                name,
                Entry(f"{name} item {n}", f"http://news.test/{name}/{n}", published=_at(now - 60 - 11 + n)),
            )
    _config(
        config_dir, [{"name": name, "url": feed_server.url(name), "every": "1m"} for name in names], ops=True
    )
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    with capture_logs() as logs:
        for name in names:
            assert pipeline.poll_feed(runtime, name, recorder).status == "ok"
        feed_server.publish(names[0], Entry("A real new item", "http://news.test/new"))
        for name in names:
            assert pipeline.poll_feed(runtime, name, recorder).status in ("ok", "not_modified")
    assert not _events(logs, "feed.unhealthy") and recorder.jobs == []
    state = store.feeds.get(names[0])
    assert len(state["seen"].split(",")) == 1 and "seen" not in store.feeds.get(names[1])


def test_a_restart_after_a_long_pause_makes_no_feed_unhealthy(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A feed whose history stops two days ago (the service was down) is not silent at the next poll."""
    feed_server.publish("wire", Entry("Old item", "http://news.test/old"))
    _config(config_dir, [{"name": "wire", "url": feed_server.url("wire"), "every": "1m"}], ops=True)
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
    two_days_ago = time.time() - 2 * 86400
    history = ",".join(f"{two_days_ago - 600 * n:.3f}" for n in reversed(range(10)))
    store.feeds.update(
        "wire", {"seen": history, "last_ok": two_days_ago, "watched_since": two_days_ago - 86400}
    )
    with capture_logs() as logs:
        assert pipeline.poll_feed(runtime, "wire", recorder).status in ("ok", "not_modified")
    assert not _events(logs, "feed.unhealthy") and recorder.jobs == []
    assert float(store.feeds.get("wire")["watched_since"]) > time.time() - 60
