"""End to end: a real Celery worker and beat, real Redis, feeds on 127.0.0.1, Apprise to SMTP and webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path

from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, TelegramDouble, WebhookSink
from tests.harness.smtp import SmtpSink
from tests.harness.worker import WorkerProcess, wait_for

StartWorker = Callable[..., WorkerProcess]


def _polls_after(feed_server: FeedServer, name: str, count: int) -> None:
    """Wait until the worker has polled feed ``name`` ``count`` more times."""
    target = feed_server.feed(name).requests + count
    wait_for(lambda: feed_server.feed(name).requests >= target, timeout=20, what=f"{count} polls of {name}")


def test_new_item_reaches_email_and_webhook_exactly_once(
    feed_server: FeedServer, webhook: WebhookSink, smtp: SmtpSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """A matching item appended to a feed reaches email and webhook once; the first poll's backlog not."""
    feed_server.publish("wire", Entry("Old report on Gaza talks from yesterday", "http://news.test/old"))
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [smtp.apprise_url(), webhook.apprise_url]}],
        subscriptions=[
            {"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"], "exclude": ["football"]}
        ],
    )
    worker = start_worker()
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    feed_server.publish(
        "wire",
        Entry(
            "Strike hits hospital in Gaza", "http://news.test/strike", summary="Dozens hurt in <b>Gaza</b>."
        ),
        Entry("Gaza football team wins cup", "http://news.test/football"),
        Entry("Markets close higher", "http://news.test/markets"),
    )
    wait_for(lambda: smtp.subjects() and webhook.titles(), what="email and webhook")
    _polls_after(feed_server, "wire", 3)
    assert smtp.subjects() == ["Strike hits hospital in Gaza"]
    assert webhook.titles() == ["Strike hits hospital in Gaza"]
    payload = json.loads(webhook.received[0]["message"])
    assert (payload["summary"], payload["link"], payload["feed"]) == (
        "Dozens hurt in Gaza.",
        "http://news.test/strike",
        "wire",
    )
    assert "Dozens hurt in Gaza." in smtp.messages[0].get_body(("plain",)).get_content()
    assert feed_server.feed("wire").not_modified >= 2, "unchanged feed polls should cost a 304"
    sent = worker.events("alert.sent")
    assert len(sent) == 2 and all(event["subscriber"] == "desk" and event.get("task") for event in sent)
    assert not worker.events("alert.duplicate"), "each delivery task should run once"


def test_native_webhook_gets_the_signed_document_once_through_alerts_run(
    feed_server: FeedServer, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """A plain http:// URL receives the alert document, signed, once; the log hides its path."""
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [f"{webhook.url}/desk-key-123#secret=${{HOOK_SECRET}}"]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    worker = start_worker(via_cli=True, HOOK_SECRET="not-in-logs")
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    feed_server.publish("wire", Entry("Earthquake shakes Lima", "http://news.test/lima"))
    wait_for(lambda: webhook.requests, what="the webhook")
    _polls_after(feed_server, "wire", 3)
    [(path, headers, raw)] = webhook.requests
    document = json.loads(raw)
    assert path == "/hook/desk-key-123" and document["title"] == "Earthquake shakes Lima"
    assert document["link"] == "http://news.test/lima" and document["subscriptions"] == ["quake"]
    signature = hmac.new(b"not-in-logs", raw, hashlib.sha256).hexdigest()
    assert headers["X-Alerts-Signature"] == f"sha256={signature}"
    [sent] = worker.events("alert.sent")
    assert sent["target"].endswith("/***") and sent["subscriber"] == "desk"
    assert "desk-key-123" not in worker.text() and "not-in-logs" not in worker.text()


def test_restart_resends_nothing(
    feed_server: FeedServer, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """After a restart of ``alerts run`` nothing old is sent again; the next new item is sent once."""
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        subscribers=[{"name": "desk", "notify": [webhook.apprise_url]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    worker = start_worker(via_cli=True)
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    feed_server.publish("wire", Entry("Earthquake shakes Lima", "http://news.test/lima"))
    wait_for(lambda: webhook.titles(), what="first alert")
    worker.stop()
    worker = start_worker(via_cli=True)
    _polls_after(feed_server, "wire", 3)
    assert webhook.titles() == ["Earthquake shakes Lima"]
    feed_server.publish("wire", Entry("Second earthquake hits Quito", "http://news.test/quito"))
    wait_for(lambda: len(webhook.titles()) == 2, what="second alert")
    _polls_after(feed_server, "wire", 2)
    assert webhook.titles() == ["Earthquake shakes Lima", "Second earthquake hits Quito"]


def test_same_story_from_two_feeds_and_two_subscriptions_arrives_once(
    feed_server: FeedServer, webhook: WebhookSink, smtp: SmtpSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """One story carried by two feeds and matched by two subscriptions reaches each subscriber once."""
    write_config(
        config_dir,
        feeds=[
            {"name": "wire", "url": feed_server.url("wire"), "every": "1s"},
            {"name": "agency", "url": feed_server.url("agency"), "every": "1s"},
        ],
        subscribers=[
            {"name": "desk", "notify": [webhook.apprise_url]},
            {"name": "night", "notify": [smtp.apprise_url("night@example.com")]},
        ],
        subscriptions=[
            {"name": "lebanon", "subscribers": ["desk", "night"], "keywords": ["lebanon"]},
            {"name": "strikes", "subscribers": ["desk"], "keywords": ["airstrike"]},
        ],
    )
    worker = start_worker()
    wait_for(lambda: len(worker.events("feed.seeded")) == 2, what="first polls")
    feed_server.publish("wire", Entry("Airstrike in south Lebanon", "https://news.test/lb?utm_source=rss"))
    feed_server.publish("agency", Entry("AIRSTRIKE IN SOUTH LEBANON", "http://www.news.test/lb#top"))
    wait_for(lambda: webhook.titles() and smtp.subjects(), what="alerts")
    _polls_after(feed_server, "agency", 3)
    _polls_after(feed_server, "wire", 1)
    assert len(webhook.titles()) == 1
    assert len(smtp.subjects()) == 1
    assert webhook.titles()[0].lower() == "airstrike in south lebanon"


def test_failing_and_malformed_feeds_do_not_stop_the_others(
    feed_server: FeedServer, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """A 500 and a garbage feed are logged as feed.failed while a healthy feed keeps alerting."""
    feed_server.feed("down").status = 500
    feed_server.feed("garbage").raw = b"<html><body>Not a feed</body></html>"
    write_config(
        config_dir,
        feeds=[
            {"name": "down", "url": feed_server.url("down"), "every": "1s"},
            {"name": "garbage", "url": feed_server.url("garbage"), "every": "1s"},
            {"name": "wire", "url": feed_server.url("wire"), "every": "1s"},
        ],
        subscribers=[{"name": "desk", "notify": [webhook.apprise_url]}],
        subscriptions=[{"name": "all-news", "subscribers": ["desk"], "keywords": ["election"]}],
    )
    worker = start_worker()
    wait_for(lambda: worker.events("feed.seeded"), what="first poll of wire")
    feed_server.publish("wire", Entry("Election results announced", "http://news.test/vote"))
    wait_for(lambda: webhook.titles(), what="alert despite failing feeds")
    failed = {event["feed"] for event in worker.events("feed.failed")}
    assert failed == {"down", "garbage"}
    assert not any("Traceback" in line for line in worker.text().splitlines())


def test_secrets_never_reach_the_logs(
    feed_server: FeedServer, telegram: TelegramDouble, start_worker: StartWorker, config_dir: Path
) -> None:
    """A bot token and an SMTP password from ${NAME} never appear in any log line, even in errors."""
    token = "123456789:AAHsecretSECRETsecretSECRETsecret0"
    password = "pa55-w0rd-s3cret"
    smtp = SmtpSink(user="alerts", password=password).start()
    try:
        telegram.accept = False
        write_config(
            config_dir,
            feeds=[{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
            subscribers=[
                {
                    "name": "desk",
                    "notify": [
                        "tgram://${BOT_TOKEN}/-100123",
                        smtp.apprise_url(login="alerts:${SMTP_PASSWORD}"),
                    ],
                }
            ],
            subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
        )
        worker = start_worker(BOT_TOKEN=token, SMTP_PASSWORD=password, ALERTS_TELEGRAM_API=telegram.api)
        wait_for(lambda: worker.events("feed.seeded"), what="first poll")
        feed_server.publish("wire", Entry("Gaza ceasefire talks resume", "http://news.test/talks"))
        wait_for(lambda: smtp.subjects(), what="email through authenticated SMTP")
        wait_for(lambda: worker.events("alert.failed"), what="telegram failure logged")
        wait_for(lambda: worker.events("alert.sent"), what="email logged as sent")
        text = worker.text()
        assert "alert.sent" in text and "alert.failed" in text
        assert token not in text and token.split(":")[1] not in text
        assert password not in text
    finally:
        smtp.stop()


def test_subscription_edits_apply_without_restart_and_bad_edits_are_rejected(
    feed_server: FeedServer, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """A running worker picks up an edited subscriptions.yaml; an invalid edit is logged and ignored."""
    feeds = [{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}]
    subscribers = [{"name": "desk", "notify": [webhook.apprise_url]}]
    write_config(
        config_dir, feeds, subscribers, [{"name": "q", "subscribers": ["desk"], "keywords": ["quake"]}]
    )
    worker = start_worker()
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    write_config(
        config_dir, feeds, subscribers, [{"name": "q", "subscribers": ["desk"], "query": "quake OR flood*"}]
    )
    wait_for(lambda: worker.events("config.reloaded"), timeout=10, what="reload")
    feed_server.publish("wire", Entry("Floods hit Valencia", "http://news.test/floods"))
    wait_for(lambda: webhook.titles() == ["Floods hit Valencia"], what="alert under the new subscription")
    (config_dir / "subscriptions.yaml").write_text("subscribers: []\nsubscriptions:\n  - name: [broken\n")
    wait_for(lambda: worker.events("config.rejected"), timeout=10, what="rejection")
    [rejected] = worker.events("config.rejected")
    assert any(
        "subscriptions.yaml:" in problem and "invalid YAML" in problem for problem in rejected["problems"]
    )
    feed_server.publish("wire", Entry("Flooding closes roads", "http://news.test/roads"))
    wait_for(lambda: len(webhook.titles()) == 2, what="alert under the last good configuration")


def test_an_emptied_or_gutted_subscriptions_file_loses_no_alert(
    feed_server: FeedServer, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path
) -> None:
    """An emptied subscriptions.yaml is rejected; one that drops most subscriptions is held back (the
    last good config keeps alerting) until it has stayed unchanged a few seconds, then applies."""
    feeds = [{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}]
    subscribers = [{"name": "desk", "notify": [webhook.apprise_url]}]
    every = [{"name": n, "subscribers": ["desk"], "keywords": [n]} for n in ("quake", "flood", "fire")]
    write_config(config_dir, feeds, subscribers, every)
    worker = start_worker()
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    (config_dir / "subscriptions.yaml").write_text("")  # an editor truncating before it writes
    wait_for(lambda: worker.events("config.rejected"), timeout=10, what="the empty file rejected")
    assert any("empty" in problem for problem in worker.events("config.rejected")[0]["problems"])
    feed_server.publish("wire", Entry("Flood warning for Valencia", "http://news.test/flood"))
    wait_for(lambda: webhook.titles() == ["Flood warning for Valencia"], what="alert while the file is empty")

    write_config(config_dir, feeds, subscribers, every[:1])  # two of three subscriptions gone
    wait_for(lambda: worker.events("config.suspicious"), timeout=10, what="the suspicious reload held")
    feed_server.publish("wire", Entry("Fire spreads near Athens", "http://news.test/fire"))
    wait_for(lambda: len(webhook.titles()) == 2, what="alert under the last good config while held")
    wait_for(lambda: worker.events("config.reloaded"), timeout=15, what="the held config applied")
    feed_server.publish(
        "wire",
        Entry("Second fire near Athens", "http://news.test/fire2"),
        Entry("Quake shakes Lima", "http://news.test/quake"),
    )
    wait_for(lambda: len(webhook.titles()) == 3, what="alert under the new config")
    _polls_after(feed_server, "wire", 2)
    assert webhook.titles() == ["Flood warning for Valencia", "Fire spreads near Athens", "Quake shakes Lima"]
    [held] = worker.events("config.suspicious")
    assert held["reason"] == "subscriptions: 3 -> 1" and held["level"] == "warning"
