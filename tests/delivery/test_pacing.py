"""Quiet hours, hourly caps, bursts and digests, with a controllable clock."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.config.load import load_config
from alerts.config.settings import Settings
from alerts.delivery import digests, pacing
from alerts.errors import ConfigError
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from alerts.state.store import Store
from tests.harness.configs import write_config


def at(text: str, zone: str = "UTC") -> float:
    """Unix time of a local wall-clock time, e.g. at("2026-11-30 23:30", "Europe/Madrid")."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


QUIET = pacing.Pacing(
    timezone="Europe/Madrid", quiet_hours=pacing.quiet_hours("23:00-07:00"), burst_count=None
)


@pytest.mark.parametrize(
    ("local", "held_until"),
    [
        ("2026-11-30 22:59", None),
        ("2026-11-30 23:00", "2026-12-01 07:00"),
        ("2026-12-01 03:10", "2026-12-01 07:00"),
        ("2026-12-01 07:00", None),
    ],
)
def test_quiet_hours_across_midnight_in_the_subscribers_timezone(local: str, held_until: str | None) -> None:
    """Alerts during 23:00-07:00 Madrid time wait until 07:00 Madrid time; outside they go at once."""
    decision = pacing.decide(QUIET, "normal", at(local, "Europe/Madrid"), [])
    assert decision.send is (held_until is None)
    if held_until:
        assert decision.release_at == at(held_until, "Europe/Madrid") and decision.reason == "quiet"


def test_flash_breaks_through_everything() -> None:
    """A flash alert is sent during quiet hours, in digest mode and over every cap."""
    strict = pacing.Pacing(quiet_hours=pacing.quiet_hours("00:00-23:59"), max_per_hour=1, digest="hourly")
    assert pacing.decide(strict, "flash", at("2026-11-30 12:00"), [at("2026-11-30 11:59")]).send


def test_digest_schedules() -> None:
    """hourly waits for the next full hour; daily@08:00 for the next 08:00 in the subscriber's zone."""
    hourly = pacing.Pacing(digest="hourly")
    assert pacing.decide(hourly, "high", at("2026-11-30 10:20"), []).release_at == at("2026-11-30 11:00")
    daily = pacing.Pacing(digest="daily@08:00", timezone="Asia/Beirut")
    assert pacing.decide(daily, "normal", at("2026-11-30 07:59", "Asia/Beirut"), []).release_at == at(
        "2026-11-30 08:00", "Asia/Beirut"
    )
    assert pacing.decide(daily, "normal", at("2026-11-30 08:01", "Asia/Beirut"), []).release_at == at(
        "2026-12-01 08:00", "Asia/Beirut"
    )


def test_hourly_cap_and_bursts() -> None:
    """Beyond max_per_hour in an hour, or 5 within 60 s, alerts wait for the end of that window."""
    now = at("2026-11-30 12:00")
    capped = pacing.Pacing(max_per_hour=3, burst_count=None)
    sent = [now - 3000, now - 2000, now - 1000]
    decision = pacing.decide(capped, "normal", now, sent)
    assert not decision.send and decision.reason == "max_per_hour" and decision.release_at == sent[0] + 3600
    assert pacing.decide(capped, "normal", now, sent[1:]).send
    burst = pacing.Pacing()  # the default: 5 within 60 s
    quick = [now - 50, now - 40, now - 30, now - 20, now - 10]
    decision = pacing.decide(burst, "normal", now, quick)
    assert not decision.send and decision.reason == "burst" and decision.release_at == quick[0] + 60
    assert pacing.decide(burst, "normal", now, quick[1:]).send
    assert pacing.decide(pacing.Pacing(burst_count=None), "normal", now, quick).send


def _runtime(config_dir: Path, redis_url: str, **subscriber: object) -> Runtime:
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": ["json://127.0.0.1:9/hook"], **subscriber}],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))


def _alert(n: int, priority: str = "normal") -> Alert:
    return Alert(
        subscriber="desk",
        story=f"s{n}",
        item=f"i{n}",
        feed="wire",
        title=f"Story {n}",
        link=f"http://news.test/{n}",
        fetched_at=time.time() + n,
        priority=priority,
    )


def test_a_burst_is_folded_into_one_digest_sent_once(config_dir: Path, redis_url: str, store: Store) -> None:
    """Eight alerts at once: five go out, three wait and come back as one digest listing them, once."""
    runtime = _runtime(config_dir, redis_url)
    snapshot = runtime.live.current()
    now = time.time()
    instant = digests.route(
        runtime.store.pacing, snapshot.config.subscribers, [_alert(n) for n in range(8)], now
    )
    assert [a.story for a in instant] == ["s0", "s1", "s2", "s3", "s4"]
    assert digests.due_digests(runtime.store.pacing, now + 30) == [], "not before the burst window ends"
    jobs: list[tuple[Alert, str]] = []
    assert pipeline.send_digests(runtime, jobs.extend, now + 61) == 1
    [(digest, _)] = jobs
    assert digest.subscriber == "desk" and digest.title == "3 alerts: Story 5"
    assert [(a.title, a.link) for a in digest.held] == [
        (f"Story {n}", f"http://news.test/{n}") for n in (5, 6, 7)
    ]
    assert pipeline.send_digests(runtime, jobs.extend, now + 120) == 0, "taken once"


def test_quiet_hours_hold_until_morning_and_flash_goes_through(
    config_dir: Path, redis_url: str, store: Store
) -> None:
    """At 02:00 Madrid time a normal alert waits for 07:00 and a flash one is sent."""
    runtime = _runtime(config_dir, redis_url, timezone="Europe/Madrid", quiet_hours="23:00-07:00")
    night = at("2026-12-01 02:00", "Europe/Madrid")
    instant = digests.route(
        runtime.store.pacing,
        runtime.live.current().config.subscribers,
        [_alert(1), _alert(2, "flash")],
        night,
    )
    assert [a.story for a in instant] == ["s2"]
    assert digests.due_digests(runtime.store.pacing, at("2026-12-01 06:59", "Europe/Madrid")) == []
    [morning] = digests.due_digests(runtime.store.pacing, at("2026-12-01 07:00", "Europe/Madrid"))
    assert morning.title == "Story 1" and json.loads(json.dumps(morning.to_json()))["item"] == "digest"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "unknown timezone"),
        ("quiet_hours", "23h-7h", "malformed"),
        ("digest", "weekly", "malformed digest"),
        ("max_per_hour", 0, "greater than or equal to 1"),
    ],
)
def test_pacing_config_errors_name_the_line(config_dir: Path, key: str, value: object, message: str) -> None:
    """Bad timezones, quiet hours, digest schedules and caps are config errors on their line."""
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": ["json://127.0.0.1:9/hook"], key: value}],
        [{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, env={})
    [problem] = caught.value.problems
    assert message in problem.message and problem.file.endswith("subscriptions.yaml") and problem.line == 5


def test_utc_helper() -> None:
    """The clock helper reads wall-clock times in a zone (guards the tests' own arithmetic)."""
    assert at("2026-06-01 12:00", "Europe/Madrid") == datetime(2026, 6, 1, 10, 0, tzinfo=UTC).timestamp()
