"""What `alerts status`, the scrape-time gauges and /readyz read from a real Redis: the outbox's waiting
deliveries and their age, feeds by health, workers by heartbeat, and the config record (a version
or a rejected edit counted once however many processes load it)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from alerts.delivery import outbox
from alerts.models import Alert
from alerts.service import live, status
from alerts.service.embedded_redis import free_port
from alerts.state.store import Store
from tests.harness.configs import write_config

TARGET = "target-digest"


def _alert(story: str) -> Alert:
    return Alert(
        subscriber="desk", story=story, item=f"i-{story}", feed="wire", title=f"Story {story}", fetched_at=1.0
    )


@pytest.fixture
def beating(store: Store) -> Iterator[Store]:
    """``store`` with this test process beating as a worker (released after the test)."""
    store.liveness.start()
    yield store
    store.liveness.release()


def test_the_outbox_summary_counts_what_waits_and_the_age_of_the_oldest(beating: Store) -> None:
    """Pending, being sent and retrying deliveries wait; sent and dead ones do not; a revived one waits
    again as new; a dropped one is gone."""
    store, now = beating, time.time()
    [old] = outbox.record(store.deliveries, [(_alert("old"), TARGET)], now=now - 100)
    middle, young = outbox.record(
        store.deliveries, [(_alert("mid"), TARGET), (_alert("new"), "t2")], now=now - 50
    )
    assert store.deliveries.summary() == (summary := store.deliveries.summary())
    assert (summary.pending, summary.oldest_created, summary.dead) == (3, pytest.approx(now - 100), 0)

    policy = outbox.Policy()
    [claimed] = store.deliveries.claim([old], now, policy.delivery_lease)
    assert claimed is not None
    assert store.deliveries.summary().pending == 3, "being sent still waits"
    store.deliveries.finish([outbox.sent(old, _alert("old"), "json://x", now, policy)])
    summary = store.deliveries.summary()
    assert (summary.pending, summary.oldest_created) == (2, pytest.approx(now - 50))

    [fields] = store.deliveries.claim([middle], now, policy.delivery_lease)
    assert fields is not None
    retry = outbox.failed(middle, fields, _alert("mid"), "json://x", "503", policy, now)
    store.deliveries.finish([retry])
    assert store.deliveries.summary().pending == 2, "retrying still waits"
    [fields] = store.deliveries.claim([middle], now, policy.delivery_lease)
    assert fields is not None
    store.deliveries.finish(
        [outbox.failed(middle, fields, _alert("mid"), "x", "503", outbox.Policy(max_age=0), now)]
    )
    summary = store.deliveries.summary()
    assert (summary.pending, summary.oldest_created, summary.dead) == (1, pytest.approx(now - 50), 1)

    assert store.deliveries.revive(middle, now)
    summary = store.deliveries.summary()
    assert (summary.pending, summary.oldest_created, summary.dead) == (2, pytest.approx(now - 50), 0)
    assert store.deliveries.drop(young)
    summary = store.deliveries.summary()
    assert (summary.pending, summary.oldest_created) == (1, pytest.approx(now))
    assert store.deliveries.drop(middle)
    assert store.deliveries.summary() == type(summary)(0, None, 0)


def test_the_config_record_says_which_report_is_news(store: Store) -> None:
    record = store.config
    assert record.get().state is None and record.get().valid is None
    assert record.loaded("fp1", 3, 5, 100.0) is True
    assert record.loaded("fp1", 3, 5, 101.0) is False, "the same version from another process"
    assert record.rejected(["feeds.yaml:3: unknown key 'evry'"], 102.0) is True
    assert record.rejected(["feeds.yaml:3: unknown key 'evry'"], 103.0) is False
    assert record.rejected(["feeds.yaml:4: bad"], 104.0) is True, "another bad edit"
    found = record.get()
    assert (found.state, found.valid, found.fingerprint, found.problems) == (
        "rejected",
        False,
        "fp1",
        ("feeds.yaml:4: bad",),
    )
    assert record.loaded("fp1", 3, 5, 105.0) is True, "valid again (the bad edit undone)"
    assert record.loaded("fp2", 4, 5, 106.0) is True
    found = record.get()
    assert (found.state, found.fingerprint, found.loaded_at, found.feeds, found.subscriptions) == (
        "loaded",
        "fp2",
        106.0,
        4,
        5,
    )


def _reloads(outcome: str) -> float:
    return REGISTRY.get_sample_value("alerts_config_reloads_total", {"outcome": outcome}) or 0.0


def _config(config_dir: Path, feeds: int = 1) -> None:
    write_config(
        config_dir,
        [{"name": f"wire{n}", "url": f"http://127.0.0.1:9/{n}.xml"} for n in range(feeds)],
        [{"name": "desk", "notify": ["json://127.0.0.1:9/hook"]}],
        [{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )


def test_live_configs_of_several_processes_count_each_change_once(
    config_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' live configs load the same files: one load counted; a bad edit both reject: one
    rejection, and not ready; the edit undone: one load, and ready again."""
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    _config(config_dir)
    loaded, rejected = _reloads("loaded"), _reloads("rejected")
    processes = [live.LiveConfig(config_dir, record=store.config) for _ in range(2)]
    assert (_reloads("loaded") - loaded, store.config.get().feeds) == (1, 1)

    good = (config_dir / "feeds.yaml").read_text()
    (config_dir / "feeds.yaml").write_text(good.replace("url:", "uri:"))
    for process in processes:
        process.current()
    assert _reloads("rejected") - rejected == 1
    ready, body = status.readiness(store, {})
    assert not ready and body["reason"].startswith("configuration rejected: "), body
    assert body["reason"].endswith("feeds.yaml:3: unknown key 'uri' (did you mean 'url'?)")

    (config_dir / "feeds.yaml").write_text(good)
    for process in processes:
        process.current()
    assert _reloads("loaded") - loaded == 2
    assert status.readiness(store, {}) == (
        True,
        {"ready": True, "workers": {}, "config": store.config.get().fingerprint},
    )


def test_feeds_by_health_state(store: Store) -> None:
    """Only the scheduled feeds (the running config's); each healthy, failing, unhealthy or new."""
    store.schedule.sync({"ok": 60, "failing": 60, "sick": 60, "fresh": 60}, "fp")
    store.feeds.update("ok", {"last_ok": time.time(), "failures": 0})
    store.feeds.update("failing", {"last_ok": time.time() - 60, "failures": 2, "last_error": "timeout"})
    store.feeds.update("sick", {"failures": 7, "unhealthy": "5 failures in a row"})
    store.feeds.update("unscheduled", {"failures": 3})
    gauges = status.gauges(store)
    assert gauges is not None
    assert dict(gauges.feeds) == {"healthy": 1, "failing": 1, "unhealthy": 1, "new": 1}
    found = status.gather(store)
    assert found.feeds == {"healthy": ["ok"], "failing": ["failing"], "unhealthy": ["sick"], "new": ["fresh"]}


def test_gauges_and_readiness_follow_the_workers_heartbeats(beating: Store) -> None:
    """This process beating (other tests' stores may beat too): a worker alive, its heartbeat fresh;
    ready when the workers asked for are
    this process; not when one restarts or is not beating; not when Redis does not answer."""
    store = beating
    gauges = status.gauges(store)
    assert gauges is not None
    assert gauges.workers_alive >= 1 and gauges.heartbeat_age is not None and gauges.heartbeat_age < 3
    assert gauges.outbox_pending == 0 and gauges.outbox_oldest is None and gauges.config_valid is None
    pid = os.getpid()
    ready, body = status.readiness(store, {"poll": pid, "deliver": pid})
    assert ready and body["workers"]["poll"]["pid"] == pid, body
    assert status.readiness(store, {"poll": pid, "deliver": None}) == (
        False,
        {"ready": False, "reason": "the deliver worker is not running (restarting)"},
    )
    assert status.readiness(store, {"poll": 2**22 + 7}) == (
        False,
        {"ready": False, "reason": f"the poll worker (pid {2**22 + 7}) has no live heartbeat"},
    )
    gone = Store.from_url(f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0", timeout=1)
    ready, body = status.readiness(gone, {"poll": pid})
    assert not ready and body["reason"].startswith("redis unavailable: "), body
    assert "hunter2" not in body["reason"]
    assert status.gauges(gone) is None


def test_status_json_and_text(beating: Store, config_dir: Path) -> None:
    """The last hour from the history stream, by channel kind with latency percentiles; the outbox and
    its oldest; the config; a rejected edit shown as such."""
    store, now = beating, time.time()
    policy = outbox.Policy()
    sent = []
    for n, (where, latency) in enumerate(
        [("https://hooks.test/***", 0.4), ("https://hooks.test/***", 1.6), ("tgram://1...9/", 2.0)]
    ):
        alert = _alert(f"s{n}")
        [delivery] = outbox.record(store.deliveries, [(alert, f"t{n}")], now=now - 10)
        assert store.deliveries.claim([delivery], now, policy.delivery_lease)[0] is not None
        store.deliveries.finish([outbox.sent(delivery, alert, where, alert.fetched_at + latency, policy)])
        sent.append(delivery)
    outbox.record(store.deliveries, [(_alert("waiting"), "t9")], now=now - 125)
    store.config.loaded("abc123", 2, 3, now - 30)

    data = status.to_json(status.gather(store, now))
    assert data["workers"]["alive"] >= 1 and data["workers"]["processes"][0]["alive"] is True
    assert data["outbox"] == {"pending": 1, "oldest_age": pytest.approx(125, abs=1), "dead": 0}
    hour = data["last_hour"]
    assert (hour["sent"], hour["dead"], hour["latency_p50"], hour["latency_p99"]) == (3, 0, 1.6, 2.0)
    assert hour["by_kind"] == {
        "telegram": {"sent": 1, "dead": 0, "latency_p50": 2.0, "latency_p99": 2.0},
        "webhook": {"sent": 2, "dead": 0, "latency_p50": 0.4, "latency_p99": 1.6},
    }
    assert data["config"]["state"] == "loaded" and data["config"]["fingerprint"] == "abc123"

    found = dataclasses.replace(status.gather(store, now), workers=[("vm:1:a", 0.5), ("vm:2:b", 7.0)])
    screen = status.text(found).splitlines()
    assert screen[0] == "workers    1 alive, newest heartbeat 0.5s ago"
    assert screen[1] == "feeds      0"
    assert screen[2] == "outbox     1 waiting, oldest 2m; 0 dead"
    assert screen[3] == "last hour  3 sent, 0 dead; latency p50 1.6s, p99 2.0s"
    assert screen[4] == "             telegram  1 sent, 0 dead; latency p50 2.0s, p99 2.0s"
    assert screen[5] == "             webhook   2 sent, 0 dead; latency p50 0.4s, p99 1.6s"
    assert screen[6] == "config     abc123 (2 feeds, 3 subscriptions), last loaded 30s ago"

    store.config.rejected(["feeds.yaml:2: unknown key 'evry'", "feeds.yaml:5: bad URL"], now)
    screen = status.text(status.gather(store, now)).splitlines()
    assert screen[-2] == (
        "config     REJECTED edit, running abc123 (2 feeds, 3 subscriptions), last loaded 30s ago: "
        "feeds.yaml:2: unknown key 'evry' (+1 more)"
    )


def test_status_with_no_worker_alive_or_ever(store: Store) -> None:
    found = status.gather(store)
    never = status.text(dataclasses.replace(found, workers=[]))
    assert "workers    none: no worker has run against this Redis (start `alerts run`)" in never
    assert never.endswith("config     no worker has loaded it yet")
    gone = status.text(dataclasses.replace(found, workers=[("vm:1:a", 65.0)]))
    assert "workers    none alive: the newest heartbeat is 1m old" in gone
