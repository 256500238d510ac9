"""One story, one alert, through a real worker at the defaults: four feeds carry one event in three
English phrasings and in Arabic; the subscriber gets one alert (its sources listed), then one
threaded update when the toll is revised (email In-Reply-To at the SMTP sink, a Telegram reply at
the Bot API double, `update_of` on the webhook); two events in one town stay two alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, TelegramDouble, WebhookSink
from tests.harness.smtp import SmtpSink
from tests.harness.worker import WorkerProcess, wait_for

TOKEN = "123456:story-test-token"
FEEDS = ("almayadeen", "reuters", "ap", "almayadeen-ar")


def _publish(feed_server: FeedServer, feed: str, title: str) -> None:
    feed_server.publish(feed, Entry(title, f"http://{feed}.test/{abs(hash(title))}"))


def test_one_event_from_four_feeds_is_one_alert_then_one_threaded_update_and_another_event_is_another(
    feed_server: FeedServer,
    webhook: WebhookSink,
    smtp: SmtpSink,
    telegram: TelegramDouble,
    start_worker: Callable[..., WorkerProcess],
    config_dir: Path,
) -> None:
    write_config(
        config_dir,
        [{"name": name, "url": feed_server.url(name), "every": "1s"} for name in FEEDS],
        [
            {
                "name": "desk",
                "notify": [smtp.apprise_url(), webhook.apprise_url, "tgram://${BOT_TOKEN}/-100123"],
                "burst": "off",
            }
        ],
        [{"name": "gaza", "subscribers": ["desk"], "regions": ["Palestine"]}],
    )
    for name in FEEDS:  # yesterday's backlog: recorded on the first poll, never alerted
        _publish(feed_server, name, f"{name} archive: parliament session adjourned")
    worker = start_worker(BOT_TOKEN=TOKEN, ALERTS_TELEGRAM_API=telegram.api)
    wait_for(lambda: len(worker.events("feed.seeded")) == len(FEEDS), timeout=30, what="every feed seeded")

    _publish(
        feed_server,
        "almayadeen",
        "Al Mayadeen's correspondent in Gaza: Israeli airstrike kills 8 in Khan Younis",
    )
    wait_for(lambda: webhook.titles(), timeout=20, what="the first alert")
    _publish(feed_server, "reuters", "Israeli strike kills eight in Khan Younis, Gaza health ministry says")
    _publish(feed_server, "ap", "Eight killed as Israeli airstrike hits Khan Younis")
    _publish(feed_server, "almayadeen-ar", "مراسل الميادين: 8 شهداء في غارة إسرائيلية على خان يونس")
    wait_for(lambda: len(worker.events("story.joined")) >= 3, timeout=20, what="three reports joined")
    time.sleep(3)
    assert len(webhook.received) == 1 and len(smtp.messages) == 1 and len(telegram.messages) == 1, "one alert"

    _publish(feed_server, "reuters", "Death toll from Israeli strike on Khan Younis rises to 12")
    wait_for(
        lambda: len(webhook.received) == 2 and len(smtp.messages) == 2 and len(telegram.messages) == 2,
        timeout=20,
        what="the update on every channel",
    )
    first, update = (json.loads(each["message"]) for each in webhook.received)
    assert (first["update"], update["update"]) == (False, True)
    assert update["story"] == first["story"] and update["update_of"]
    assert update["changes"] == ["toll 12 (was 8)"]
    assert set(update["sources"]) == set(FEEDS), "every feed that reported it"
    assert update["title"] == "Death toll from Israeli strike on Khan Younis rises to 12", (
        "as the publisher wrote it"
    )
    first_mail, update_mail = smtp.messages
    assert update_mail["In-Reply-To"] == first_mail["Message-ID"]
    assert first_mail["Message-ID"] in update_mail["References"]
    assert update_mail["Subject"].startswith("Update: ")
    assert telegram.replies() == [None, {"message_id": telegram.ids[0], "allow_sending_without_reply": True}]

    _publish(feed_server, "ap", "Israeli drone strikes a motorcycle in Khan Younis, 1 killed")
    wait_for(lambda: len(webhook.received) == 3, timeout=20, what="the other event's alert")
    other = json.loads(webhook.received[2]["message"])
    assert other["story"] != first["story"] and other["update"] is False
    time.sleep(3)
    assert len(webhook.received) == 3 and len(smtp.messages) == 3 and len(telegram.messages) == 3
    assert telegram.replies()[2] is None, "a story of its own"
