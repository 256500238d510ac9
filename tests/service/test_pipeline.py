"""In-process tests of alerts.service.pipeline: real Redis, a real feed server and real sinks, no Celery."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from alerts.config.load import load_config
from alerts.config.settings import Settings
from alerts.delivery import outbox
from alerts.errors import UnknownTarget
from alerts.models import Alert, FeedItem
from alerts.service import pipeline
from alerts.service.live import CHECK_EVERY, accept
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.schedule import FIRST_POLL_WINDOW
from alerts.state.store import Store
from alerts.text import digest
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, WebhookSink

UNREACHABLE = "json://127.0.0.1:9/unused"  # a valid Apprise URL these tests never send to


class Recorder:
    """A dispatch that records every (alert, target) job it is handed."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        self.jobs.extend(jobs)

    def titles(self) -> list[str]:
        return [alert.title for alert, _ in self.jobs]


class BrokerDown(Exception):
    """What a dispatch raises when the broker cannot take the jobs."""


def _broken_dispatch(jobs: Sequence[tuple[Alert, str]]) -> None:
    raise BrokerDown("broker unreachable")


def _runtime(config_dir: Path, redis_url: str) -> Runtime:
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in logs if event["event"] == name]


def _touch_later(path: Path) -> None:
    """Give ``path`` an mtime clearly after its previous one, and wait until LiveConfig looks again."""
    later = time.time() + 5
    os.utime(path, (later, later))
    time.sleep(CHECK_EVERY)


def _one_feed_config(
    config_dir: Path,
    feed_server: FeedServer,
    notify: list[str],
    keywords: list[str],
    name: str = "wire",
    **feed: Any,
) -> None:
    write_config(
        config_dir,
        feeds=[{"name": name, "url": feed_server.url(name), **feed}],
        subscribers=[{"name": "desk", "notify": notify}],
        subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": keywords}],
    )


# --- first poll, backfill, alert contents -------------------------------------------------------


def test_first_poll_records_backlog_and_dispatches_nothing(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """The first poll records every backlog item without dispatching; those items never alert later."""
    feed_server.publish(
        "wire",
        Entry("Gaza talks stall in Cairo", "http://news.test/1"),
        Entry("Gaza aid convoy reaches north", "http://news.test/2"),
    )
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert recorder.jobs == []
    assert (report.status, report.items, report.new, report.alerts) == ("ok", 2, 2, 0)
    seeded = _events(logs, "feed.seeded")
    assert len(seeded) == 1 and seeded[0]["recorded"] == 2 and seeded[0]["backfill"] == 0
    assert "seeded" in runtime.store.feeds.get("wire")

    feed_server.publish("wire", Entry("Unrelated markets story today", "http://news.test/3"))
    report = pipeline.poll_feed(runtime, "wire", recorder)
    assert recorder.jobs == [] and report.new == 1, "old items must not come back as new"


def test_backfill_dispatches_the_newest_by_published_time(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """With backfill: 2 the first poll dispatches exactly the 2 newest items by published time."""
    now = datetime.now(UTC).replace(microsecond=0)
    # Document order (newest published first on the page) differs from published order on purpose.
    feed_server.publish(
        "wire",
        Entry("Gaza story three hours old", "http://news.test/a", published=now - timedelta(hours=3)),
        Entry("Gaza story one hour old", "http://news.test/b", published=now - timedelta(hours=1)),
        Entry("Gaza story five hours old", "http://news.test/c", published=now - timedelta(hours=5)),
        Entry("Gaza story two hours old", "http://news.test/d", published=now - timedelta(hours=2)),
    )
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"], backfill=2)
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert recorder.titles() == ["Gaza story one hour old", "Gaza story two hours old"]
    assert (report.new, report.alerts) == (4, 2)
    assert [(e["recorded"], e["backfill"]) for e in _events(logs, "feed.seeded")] == [(4, 2)]

    pipeline.poll_feed(runtime, "wire", recorder)
    assert len(recorder.jobs) == 2, "the rest of the backlog must stay recorded, not alerted"


def test_new_item_dispatches_one_job_per_subscriber_url_with_alert_fields(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """A new matching item yields one job per (subscriber, URL), each Alert carrying the item's fields."""
    desk_urls = ["json://127.0.0.1:9/desk-a", "json://127.0.0.1:9/desk-b"]
    night_url = "json://127.0.0.1:9/night"
    write_config(
        config_dir,
        feeds=[{"name": "gulf", "url": feed_server.url("gulf"), "region": "MENA"}],
        subscribers=[{"name": "desk", "notify": desk_urls}, {"name": "night", "notify": [night_url]}],
        subscriptions=[
            {"name": "gaza", "subscribers": ["desk", "night"], "keywords": ["gaza"]},
            {"name": "strikes", "subscribers": ["desk"], "keywords": ["airstrike"]},
            {"name": "quakes", "subscribers": ["night"], "keywords": ["earthquake"]},
        ],
    )
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    pipeline.poll_feed(runtime, "gulf", recorder)  # seeds an empty feed
    published = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    feed_server.publish(
        "gulf",
        Entry(
            "Airstrike hits hospital in Gaza",
            "http://news.test/strike?utm_source=rss",
            summary="Dozens hurt in <b>Gaza</b> city.",
            guid="gulf-42",
            published=published,
        ),
    )
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "gulf", recorder)
    assert (report.status, report.items, report.new, report.alerts) == ("ok", 1, 1, 2)
    targets = sorted((alert.subscriber, target) for alert, target in recorder.jobs)
    assert targets == sorted(
        [
            ("desk", digest(desk_urls[0])),
            ("desk", digest(desk_urls[1])),
            ("night", digest(night_url)),
        ]
    )
    alerts = {alert.subscriber: alert for alert, _ in recorder.jobs}
    for alert in alerts.values():
        assert alert.title == "Airstrike hits hospital in Gaza"
        assert alert.summary == "Dozens hurt in Gaza city."
        assert alert.link == "http://news.test/strike?utm_source=rss"
        assert alert.feed == "gulf" and alert.item == "gulf-42"
        assert alert.published == "2024-05-01T12:30:00+00:00"
        assert alert.regions == ("MENA", "Palestine")  # the feed's region, and Gaza geotagged
        assert alert.story == digest("link:news.test/strike")
        assert alert.fetched_at > 0
    assert alerts["desk"].subscriptions == ("gaza", "strikes")
    assert alerts["desk"].terms == ("airstrike", "gaza")
    assert alerts["night"].subscriptions == ("gaza",)
    assert alerts["night"].terms == ("gaza",)
    assert alerts["desk"] == Alert.from_json(alerts["desk"].to_json()), "alerts must survive the broker"
    matched = _events(logs, "alert.matched")
    assert sorted(event["subscriber"] for event in matched) == ["desk", "night"]
    assert [event["matches"] for event in _events(logs, "item.new")] == [2]


# --- conditional GET and failures ---------------------------------------------------------------


def test_unchanged_feed_is_answered_304(feed_server: FeedServer, config_dir: Path, redis_url: str) -> None:
    """A second poll of an unchanged feed sends the stored ETag and is answered 304 Not Modified."""
    feed_server.publish("wire", Entry("Gaza talks stall in Cairo", "http://news.test/1"))
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
    assert runtime.store.feeds.get("wire").get("etag")
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert report.status == "not_modified"
    assert feed_server.feed("wire").not_modified == 1
    assert [event["status"] for event in _events(logs, "feed.polled")] == [304]
    state = runtime.store.feeds.get("wire")
    assert "last_304" in state and state["failures"] == "0"

    feed_server.publish("wire", Entry("Gaza aid convoy reaches north", "http://news.test/2"))
    report = pipeline.poll_feed(runtime, "wire", recorder)
    assert (report.status, report.new) == ("ok", 1)
    assert recorder.titles() == ["Gaza aid convoy reaches north"]
    assert feed_server.feed("wire").not_modified == 1


@pytest.mark.parametrize(
    ("breakage", "error"),
    [("status", "HTTP 500"), ("garbage", "not a feed")],
    ids=["http-500", "garbage-body"],
)
def test_failing_feed_is_logged_recorded_and_recovers(
    feed_server: FeedServer, config_dir: Path, redis_url: str, breakage: str, error: str
) -> None:
    """A 500 or non-feed body logs one feed.failed per poll (a warning for the first in a row, then at
    debug) and counts failures; a good poll resets them."""
    served = feed_server.feed("wire")
    if breakage == "status":
        served.status = 500
    else:
        served.raw = b"<html><body>Not a feed at all</body></html>"
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    for attempt in (1, 2):
        with capture_logs() as logs:
            report = pipeline.poll_feed(runtime, "wire", recorder)
        assert report.status == "failed" and report.error and error in report.error
        failed = _events(logs, "feed.failed")
        assert len(failed) == 1 and failed[0]["feed"] == "wire" and failed[0]["failures"] == attempt
        assert failed[0]["log_level"] == ("warning" if attempt == 1 else "debug")  # said once in a row
        state = runtime.store.feeds.get("wire")
        assert state["failures"] == str(attempt)
        assert error in state["last_error"]
        assert "seeded" not in state, "a failed poll must not consume the first-poll seeding"

    served.status, served.raw = 200, None
    feed_server.publish("wire", Entry("Gaza talks stall in Cairo", "http://news.test/1"))
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert report.status == "ok" and not _events(logs, "feed.failed")
    state = runtime.store.feeds.get("wire")
    assert state["failures"] == "0" and "last_error" not in state
    assert recorder.jobs == [], "the first good poll is the seeding poll"


def test_busy_feed_is_skipped(feed_server: FeedServer, config_dir: Path, redis_url: str) -> None:
    """While another worker holds a feed's poll lock, poll_feed returns "busy" without fetching."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime = _runtime(config_dir, redis_url)
    token = runtime.store.locks.lock_feed("wire", 10)
    assert token
    assert pipeline.poll_feed(runtime, "wire", Recorder()).status == "busy"
    assert feed_server.feed("wire").requests == 0
    runtime.store.locks.unlock_feed("wire", token)
    assert pipeline.poll_feed(runtime, "wire", Recorder()).status == "ok"


def test_unknown_feed_raises(config_dir: Path, redis_url: str, feed_server: FeedServer) -> None:
    """Polling a feed that is not in the configuration raises UnknownTarget."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    with pytest.raises(UnknownTarget):
        pipeline.poll_feed(_runtime(config_dir, redis_url), "nope", Recorder())


# --- regions ------------------------------------------------------------------------------------


def test_regions_from_feed_and_categories_satisfy_region_subscriptions(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """A feed's region or a category naming a region satisfies `regions:`; an item without one does not."""
    write_config(
        config_dir,
        feeds=[
            {"name": "gulf", "url": feed_server.url("gulf"), "region": "MENA"},
            {"name": "world", "url": feed_server.url("world")},
        ],
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}],
        subscriptions=[
            {"name": "mena-strikes", "subscribers": ["desk"], "keywords": ["strike"], "regions": ["MENA"]},
            {"name": "latam", "subscribers": ["desk"], "regions": ["Latin America"]},
        ],
    )
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    for name in ("gulf", "world"):
        pipeline.poll_feed(runtime, name, recorder)
    feed_server.publish("gulf", Entry("Strike hits port city", "http://news.test/port"))
    feed_server.publish(
        "world",
        Entry("Strike closes copper mines", "http://news.test/mines", categories=("Latin America",)),
        Entry("Strike halts northern refinery", "http://news.test/refinery", categories=("mena",)),
        Entry("Strike closes factories nationwide", "http://news.test/factories", categories=("Business",)),
    )
    with capture_logs() as logs:
        for name in ("gulf", "world"):
            pipeline.poll_feed(runtime, name, recorder)
    got = {alert.title: (alert.regions, alert.subscriptions, alert.terms) for alert, _ in recorder.jobs}
    assert got == {
        "Strike hits port city": (("MENA",), ("mena-strikes",), ("region:MENA", "strike")),
        "Strike closes copper mines": (("Latin America",), ("latam",), ("region:Latin America",)),
        "Strike halts northern refinery": (("MENA",), ("mena-strikes",), ("region:MENA", "strike")),
    }
    unmatched = [e for e in _events(logs, "item.new") if e["title"] == "Strike closes factories nationwide"]
    assert len(unmatched) == 1 and unmatched[0]["regions"] == [] and unmatched[0]["matches"] == 0


# --- nothing lost, nothing twice ----------------------------------------------------------------


def test_failed_dispatch_releases_claims_so_the_next_poll_dispatches_again(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """If dispatch raises (broker down) the poll raises, and the next poll dispatches the same alert."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    pipeline.poll_feed(runtime, "wire", recorder)
    feed_server.publish("wire", Entry("Gaza ceasefire talks resume", "http://news.test/talks"))
    with capture_logs() as logs, pytest.raises(BrokerDown):
        pipeline.poll_feed(runtime, "wire", _broken_dispatch)
    assert not _events(logs, "alert.matched"), "nothing was handed on, so nothing may be logged as matched"
    token = runtime.store.locks.lock_feed("wire", 1)
    assert token, "the poll lock must be released"
    runtime.store.locks.unlock_feed("wire", token)

    report = pipeline.poll_feed(runtime, "wire", recorder)
    assert recorder.titles() == ["Gaza ceasefire talks resume"]
    assert (report.new, report.alerts) == (1, 1)
    pipeline.poll_feed(runtime, "wire", recorder)
    assert len(recorder.jobs) == 1


def test_a_fan_out_that_fails_part_way_hands_on_the_rest_once_on_the_next_poll(
    feed_server: FeedServer, config_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large fan-out is handed on in chunks; if a later chunk fails, the next poll hands on exactly
    what was not handed on yet (the chunks that went through are not repeated)."""
    names = [f"reader{n}" for n in range(5)]
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire")}],
        subscribers=[{"name": name, "notify": [UNREACHABLE]} for name in names],
        subscriptions=[{"name": "watch", "subscribers": names, "keywords": ["gaza"]}],
    )
    monkeypatch.setattr(pipeline, "DISPATCH_CHUNK", 2)
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    pipeline.poll_feed(runtime, "wire", recorder)
    feed_server.publish("wire", Entry("Gaza ceasefire talks resume", "http://news.test/talks"))
    calls = 0

    def fails_second_chunk(jobs: Sequence[tuple[Alert, str]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise BrokerDown("broker unreachable")
        recorder(jobs)

    with pytest.raises(BrokerDown):
        pipeline.poll_feed(runtime, "wire", fails_second_chunk)
    first = sorted(alert.subscriber for alert, _ in recorder.jobs)
    assert len(first) == 2
    report = pipeline.poll_feed(runtime, "wire", recorder)
    assert report.alerts == 3
    assert sorted(alert.subscriber for alert, _ in recorder.jobs) == names, "each reader exactly once"


def test_failed_dispatch_on_first_poll_keeps_the_backfill_limit(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """A first poll whose dispatch fails is retried as a first poll: only `backfill` items are dispatched."""
    now = datetime.now(UTC)
    feed_server.publish(
        "wire",
        Entry("Gaza backlog story number one", "http://news.test/1", published=now - timedelta(hours=3)),
        Entry("Gaza backlog story number two", "http://news.test/2", published=now - timedelta(hours=2)),
        Entry("Gaza backlog story number three", "http://news.test/3", published=now - timedelta(hours=1)),
    )
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"], backfill=1)
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    with pytest.raises(BrokerDown):
        pipeline.poll_feed(runtime, "wire", _broken_dispatch)
    pipeline.poll_feed(runtime, "wire", recorder)
    assert recorder.titles() == ["Gaza backlog story number three"]


@pytest.mark.parametrize(
    ("wire_entry", "agency_entry"),
    [
        (
            Entry("Airstrike in south Lebanon", "https://news.test/lb?utm_source=rss&utm_medium=feed"),
            Entry("Lebanon border village hit overnight", "http://www.news.test/lb#top"),
        ),
        (
            Entry("Airstrike in south Lebanon", "https://wire.test/story/1"),
            Entry("AIRSTRIKE IN SOUTH LEBANON!", "https://agency.test/x/99"),
        ),
    ],
    ids=["same-link", "same-headline"],
)
def test_same_story_in_two_feeds_alerts_each_subscriber_once(
    feed_server: FeedServer, config_dir: Path, redis_url: str, wire_entry: Entry, agency_entry: Entry
) -> None:
    """One story in two feeds (same link modulo tracking, or same headline) gives one alert per subscriber."""
    write_config(
        config_dir,
        feeds=[
            {"name": "wire", "url": feed_server.url("wire")},
            {"name": "agency", "url": feed_server.url("agency")},
        ],
        subscribers=[
            {"name": "desk", "notify": ["json://127.0.0.1:9/desk"]},
            {"name": "night", "notify": ["json://127.0.0.1:9/night"]},
        ],
        subscriptions=[
            {"name": "lebanon", "subscribers": ["desk", "night"], "keywords": ["lebanon"]},
            {"name": "strikes", "subscribers": ["desk"], "keywords": ["airstrike"]},
        ],
    )
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    for name in ("wire", "agency"):
        pipeline.poll_feed(runtime, name, recorder)
    feed_server.publish("wire", wire_entry)
    feed_server.publish("agency", agency_entry)
    with capture_logs() as logs:
        for name in ("wire", "agency"):
            pipeline.poll_feed(runtime, name, recorder)
    assert sorted((alert.subscriber, alert.feed) for alert, _ in recorder.jobs) == [
        ("desk", "wire"),
        ("night", "wire"),
    ]
    duplicates = _events(logs, "alert.duplicate")
    assert sorted((event["subscriber"], event["feed"]) for event in duplicates) == [
        ("desk", "agency"),
        ("night", "agency"),
    ]


def test_same_story_twice_in_one_poll_alerts_once(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """Two items of one poll that share a canonical link give a single alert per subscriber."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    pipeline.poll_feed(runtime, "wire", recorder)
    feed_server.publish(
        "wire",
        Entry("Gaza ceasefire talks resume", "https://news.test/talks?utm_campaign=x", guid="a"),
        Entry("Gaza talks: updated version", "https://news.test/talks/", guid="b"),
    )
    report = pipeline.poll_feed(runtime, "wire", recorder)
    assert (report.new, report.alerts, len(recorder.jobs)) == (2, 1, 1)


# --- deliver ------------------------------------------------------------------------------------


def _alert(subscriber: str = "desk", title: str = "Gaza ceasefire talks resume") -> Alert:
    return Alert(
        subscriber=subscriber,
        story=digest("link:news.test/talks"),
        item="http://news.test/talks",
        feed="wire",
        title=title,
        summary="Negotiators meet again in Cairo.",
        link="http://news.test/talks",
        published="2024-05-01T12:30:00+00:00",
        subscriptions=("watch",),
        terms=("gaza",),
        fetched_at=time.time(),
    )


def _deliver(runtime: Runtime, alert: Alert, target: str) -> tuple[str, str]:
    """Record (if new) and send the delivery of ``alert`` to ``target``: (its id, the outcome)."""
    outbox.record(runtime.store.deliveries, [(alert, target)], runtime.policy)
    delivery = outbox.delivery_id(alert.subscriber, alert.story, target)
    return delivery, runtime.sender.deliver(delivery)


def test_deliver_sends_once_through_apprise(
    feed_server: FeedServer, webhook: WebhookSink, config_dir: Path, redis_url: str
) -> None:
    """A delivery posts the alert to the webhook once; the same (alert, target) again sends nothing."""
    _one_feed_config(config_dir, feed_server, [webhook.apprise_url], ["gaza"])
    runtime, alert, target = _runtime(config_dir, redis_url), _alert(), digest(webhook.apprise_url)
    with capture_logs() as logs:
        delivery, outcome = _deliver(runtime, alert, target)
    assert outcome == "sent"
    assert webhook.titles() == ["Gaza ceasefire talks resume"]
    payload = json.loads(webhook.received[0]["message"])  # webhooks get every field as JSON
    assert (payload["title"], payload["summary"], payload["feed"]) == (
        "Gaza ceasefire talks resume",
        "Negotiators meet again in Cairo.",
        "wire",
    )
    assert (payload["link"], payload["published"], payload["subscriptions"], payload["terms"]) == (
        "http://news.test/talks",
        "2024-05-01T12:30:00+00:00",
        ["watch"],
        ["gaza"],
    )
    sent = _events(logs, "alert.sent")
    assert len(sent) == 1 and sent[0]["subscriber"] == "desk"
    assert runtime.store.deliveries.get(delivery)["state"] == "sent"

    with capture_logs() as logs:
        _, again = _deliver(runtime, alert, target)
    assert again == "skipped"
    assert len(_events(logs, "alert.duplicate")) == 1 and not _events(logs, "alert.sent")
    assert len(webhook.received) == 1


def test_deliver_while_another_worker_is_sending_sends_nothing(
    feed_server: FeedServer, webhook: WebhookSink, config_dir: Path, redis_url: str
) -> None:
    """While another worker holds the "sending" claim, the delivery is skipped and nothing is sent."""
    _one_feed_config(config_dir, feed_server, [webhook.apprise_url], ["gaza"])
    runtime, alert, target = _runtime(config_dir, redis_url), _alert(), digest(webhook.apprise_url)
    outbox.record(runtime.store.deliveries, [(alert, target)])
    delivery = outbox.delivery_id("desk", alert.story, target)
    assert runtime.store.deliveries.claim([delivery], time.time(), 60)[0] is not None  # another worker
    assert runtime.sender.deliver(delivery) == "skipped"
    assert webhook.received == [] and runtime.store.deliveries.get(delivery)["state"] == "sending"


def test_deliver_to_failing_sink_retries(feed_server: FeedServer, config_dir: Path, redis_url: str) -> None:
    """A refusing sink logs alert.failed and books a retry, which then sends once."""
    sink = WebhookSink(status=500).start()
    try:
        _one_feed_config(config_dir, feed_server, [sink.apprise_url], ["gaza"])
        runtime, alert, target = _runtime(config_dir, redis_url), _alert(), digest(sink.apprise_url)
        with capture_logs() as logs:
            delivery, outcome = _deliver(runtime, alert, target)
        assert outcome == "retrying"
        failed = _events(logs, "alert.failed")
        assert len(failed) == 1 and failed[0]["subscriber"] == "desk" and failed[0]["attempt"] == 1
        assert not _events(logs, "alert.sent")
        record = runtime.store.deliveries.get(delivery)
        assert record["state"] == "retrying" and "500" in record["last_error"]
        assert sink.received == []

        sink.status = 200
        assert runtime.sender.deliver(delivery) == "sent"
        assert sink.titles() == ["Gaza ceasefire talks resume"]
        assert runtime.sender.deliver(delivery) == "skipped"
        assert len(sink.received) == 1
    finally:
        sink.stop()


def test_deliver_inline_swallows_failures_and_sends_the_rest(
    feed_server: FeedServer, webhook: WebhookSink, config_dir: Path, redis_url: str
) -> None:
    """deliver_inline sends each job in turn; a failing URL does not stop the next one."""
    refusing = WebhookSink(status=503).start()
    try:
        write_config(
            config_dir,
            feeds=[{"name": "wire", "url": feed_server.url("wire")}],
            subscribers=[{"name": "desk", "notify": [refusing.apprise_url, webhook.apprise_url]}],
            subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
        )
        runtime = _runtime(config_dir, redis_url)
        pipeline.poll_feed(runtime, "wire", pipeline.deliver_inline(runtime))
        feed_server.publish("wire", Entry("Gaza ceasefire talks resume", "http://news.test/talks"))
        with capture_logs() as logs:
            report = pipeline.poll_feed(runtime, "wire", pipeline.deliver_inline(runtime))
        assert report.alerts == 1
        assert webhook.titles() == ["Gaza ceasefire talks resume"]
        assert len(_events(logs, "alert.failed")) == 1 and len(_events(logs, "alert.sent")) == 1
    finally:
        refusing.stop()


def test_deliver_to_unknown_subscriber_or_target_drops_it(
    feed_server: FeedServer, webhook: WebhookSink, config_dir: Path, redis_url: str
) -> None:
    """A delivery whose subscriber or URL is not (or no longer) in the config is dropped, never sent."""
    _one_feed_config(config_dir, feed_server, [webhook.apprise_url], ["gaza"])
    runtime, target = _runtime(config_dir, redis_url), digest(webhook.apprise_url)
    with capture_logs() as logs:
        assert _deliver(runtime, _alert(subscriber="ghost"), target)[1] == "dropped"
        assert _deliver(runtime, _alert(), digest("json://127.0.0.1:9/other"))[1] == "dropped"
    assert [event["subscriber"] for event in _events(logs, "alert.dropped")] == ["ghost", "desk"]

    _one_feed_config(config_dir, feed_server, ["json://127.0.0.1:9/replacement"], ["gaza"])
    _touch_later(config_dir / "subscriptions.yaml")
    assert _deliver(runtime, _alert(), target)[1] == "dropped"
    assert webhook.received == []


# --- schedule and live config -------------------------------------------------------------------


def test_schedule_due_at_once_then_per_interval_and_follows_config(
    feed_server: FeedServer, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Feeds are due within the first-poll window, not again before their interval; removed feeds leave."""
    feeds = [
        {"name": "wire", "url": feed_server.url("wire"), "every": "1m"},
        {"name": "agency", "url": feed_server.url("agency"), "every": "10m"},
    ]
    write_config(
        config_dir,
        feeds=feeds,
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}],
        subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    runtime = _runtime(config_dir, redis_url)
    start = time.time()
    assert sorted(pipeline.schedule(runtime, now=start + FIRST_POLL_WINDOW)) == ["agency", "wire"]
    assert pipeline.schedule(runtime, now=start + 1) == []
    assert pipeline.schedule(runtime, now=start + 30) == []
    assert pipeline.schedule(runtime, now=start + 90) == ["wire"]
    assert pipeline.schedule(runtime, now=start + 120) == []

    (config_dir / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds[:1]}, sort_keys=False))
    _touch_later(config_dir / "feeds.yaml")
    assert pipeline.schedule(runtime, now=start + 3600) == ["wire"]
    assert store.client.zrange(keys.SCHEDULE, 0, -1) == ["wire"]


def test_a_reload_that_drops_most_subscriptions_is_held_until_accepted(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """Going from 3 subscriptions to 1 logs config.suspicious once and keeps the last good config;
    `alerts check --accept` (live.accept) makes it apply at once."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza", "lebanon", "syria"])
    subscriptions = config_dir / "subscriptions.yaml"
    data = yaml.safe_load(subscriptions.read_text())
    data["subscriptions"] = [
        {"name": name, "subscribers": ["desk"], "keywords": [name]} for name in ("gaza", "lebanon", "syria")
    ]
    subscriptions.write_text(yaml.safe_dump(data))
    runtime = _runtime(config_dir, redis_url)
    good = runtime.live.current()
    assert len(good.config.subscriptions) == 3
    data["subscriptions"] = data["subscriptions"][:1]
    subscriptions.write_text(yaml.safe_dump(data))
    _touch_later(subscriptions)
    with capture_logs() as logs:
        assert runtime.live.current() is good
        time.sleep(CHECK_EVERY)
        assert runtime.live.current() is good
    [held] = _events(logs, "config.suspicious")
    assert held["reason"] == "subscriptions: 3 -> 1" and not _events(logs, "config.reloaded")
    accept(load_config(config_dir))
    time.sleep(CHECK_EVERY)
    with capture_logs() as logs:
        current = runtime.live.current()
    assert [sub.name for sub in current.config.subscriptions] == ["gaza"]
    assert len(_events(logs, "config.reloaded")) == 1


def test_live_config_rejects_a_bad_edit_and_picks_up_a_good_one(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """A bad subscriptions.yaml logs config.rejected once with file:line and keeps the last good config."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime = _runtime(config_dir, redis_url)
    good = runtime.live.current()
    subscriptions = config_dir / "subscriptions.yaml"
    subscriptions.write_text(
        "subscribers:\n"
        "  - name: desk\n"
        f"    notify: ['{UNREACHABLE}']\n"
        "subscriptions:\n"
        "  - name: watch\n"
        "    subscribers: [desk]\n"
        "    keywords: [gaza]\n"
        "  - name: broken\n"
        "    subscribers: [nobody]\n"
        "    keywords: ['!!!']\n"
    )
    _touch_later(subscriptions)
    with capture_logs() as logs:
        current = runtime.live.current()
        runtime.live.current()
    assert current is good
    rejected = _events(logs, "config.rejected")
    assert len(rejected) == 1 and rejected[0]["log_level"] == "error"
    assert rejected[0]["problems"] == [
        f"{subscriptions}:9: unknown subscriber 'nobody'",
        f"{subscriptions}:10: term '!!!' has no letters or digits",
    ]

    subscriptions.write_text(
        "subscribers:\n"
        "  - name: desk\n"
        f"    notify: ['{UNREACHABLE}']\n"
        "subscriptions:\n"
        "  - name: watch\n"
        "    subscribers: [desk]\n"
        "    keywords: [gaza]\n"
        "  - name: lebanon\n"
        "    subscribers: [desk]\n"
        "    keywords: [lebanon]\n"
    )
    _touch_later(subscriptions)
    with capture_logs() as logs:
        current = runtime.live.current()
    assert [sub.name for sub in current.config.subscriptions] == ["watch", "lebanon"]
    assert len(_events(logs, "config.reloaded")) == 1 and not _events(logs, "config.rejected")
    matches = current.matcher.match(FeedItem(id="x", title="Shelling in south Lebanon"), "wire")
    assert [match.subscription for match in matches] == ["lebanon"]


def test_regions_yaml_override_is_picked_up_and_a_bad_one_rejected(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """regions.yaml in the config dir overrides the taxonomy live; an invalid one keeps the last good."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime = _runtime(config_dir, redis_url)
    israeli = FeedItem(id="x", title="Israeli army raids a village")
    assert list(runtime.live.current().classifier.regions(israeli)) == ["MENA"]
    packaged = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "alerts/matching/geo/data/regions.yaml").read_text()
    )
    packaged["Palestine"] = {"parent": "MENA", "countries": ["PS", "IL"]}
    regions = config_dir / "regions.yaml"
    regions.write_text(yaml.safe_dump(packaged))
    _touch_later(regions)
    with capture_logs() as logs:
        snapshot = runtime.live.current()
    assert _events(logs, "config.reloaded")
    assert list(snapshot.classifier.regions(israeli)) == ["MENA", "Palestine"]
    regions.write_text("Palestine: {parent: Nowhere, countries: [PS]}\n")
    _touch_later(regions)
    with capture_logs() as logs:
        assert runtime.live.current() is snapshot
    [rejected] = _events(logs, "config.rejected")
    assert any(problem.startswith(f"{regions}:1:") for problem in rejected["problems"])


def test_a_served_feed_with_an_undeclared_entity_alerts_its_whole_title_and_link(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """A feed using ``&rsquo;`` (an HTML entity XML does not declare) and ``&amp;`` in links alerts the
    headline and link as the publisher wrote them."""
    _one_feed_config(config_dir, feed_server, [UNREACHABLE], ["gaza"])
    runtime, recorder = _runtime(config_dir, redis_url), Recorder()
    item = (
        "<item><title>Gaza&nbsp;talks: Cairo says it won&rsquo;t give up</title>"
        "<link>https://news.test/story?id=7&amp;lang=en</link><guid>g-{n}</guid></item>"
    )
    feed = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    feed_server.feed("wire").raw = feed.format(items="").encode()
    pipeline.poll_feed(runtime, "wire", recorder)  # the first poll records the (empty) backlog
    feed_server.feed("wire").raw = feed.format(items=item.format(n=1)).encode()
    pipeline.poll_feed(runtime, "wire", recorder)
    [(alert, _)] = recorder.jobs
    assert alert.title == "Gaza talks: Cairo says it won\u2019t give up"  # not cut at an entity
    assert alert.link == "https://news.test/story?id=7&lang=en"
