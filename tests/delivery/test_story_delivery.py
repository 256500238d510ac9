"""A story's first alert and its updates through the real sender (outbox in Redis, Apprise, local sinks):
an update is a delivery of its own, threaded under the first (e-mail headers, a Telegram reply, an ntfy
sequence, a webhook's ``update_of``), and a first alert names the feeds that reported its story."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from alerts.delivery import channels, digests, ids, outbox, threads
from alerts.delivery.digest_render import render_digest
from alerts.delivery.ratelimit import DEFAULTS
from alerts.delivery.send import Sender
from alerts.delivery.threads import Thread
from alerts.models import Alert, Pacing, Subscriber
from alerts.state import keys
from alerts.state.store import Store
from alerts.text import digest
from tests.delivery.conftest import NtfySink
from tests.harness.servers import TelegramDouble, WebhookSink
from tests.harness.smtp import SmtpSink

GROUPS = "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/-100123/-100456"
FAST = {name: (1000.0, 1.0) for name in DEFAULTS}  # no rate limit gets in the way of concurrent sends
CHANGED = "What changed: 12 killed (was 8); confirmed"


def _first(story: str = "s1", title: str = "Strike hits Tyre port", **changes: object) -> Alert:
    alert = Alert(
        subscriber="desk",
        story=story,
        item=f"{story}-first",
        feed="wire",
        title=title,
        summary="Eight people were killed, officials said.",
        link=f"https://news.test/{story}",
        published="2024-05-01T12:30:00+00:00",
        subscriptions=("watch",),
        terms=("strike",),
        fetched_at=time.time(),
        sources=("wire",),
    )
    return replace(alert, **changes)  # type: ignore[arg-type]


def _update(first: Alert, number: int = 1, title: str = "Strike on Tyre port kills 12") -> Alert:
    return replace(
        first,
        item=f"{first.story}-update-{number}",
        feed="reuters",
        title=title,
        summary="Twelve people were killed, the ministry confirmed.",
        sources=("wire", "reuters"),
        update=number,
        changes=("12 killed (was 8)", "confirmed"),
        fetched_at=time.time(),
    )


def _sender(store: Store, urls: Sequence[str], pacing: Pacing | None = None) -> Sender:
    desk = Subscriber("desk", tuple(urls), pacing=pacing or Pacing())
    return Sender(store, lambda: {"desk": desk}, rates=FAST)


def _send(store: Store, sender: Sender, alerts: Sequence[Alert], url: str) -> list[str]:
    """Record and send ``alerts`` to ``url`` in one batch; their delivery ids, in order."""
    target = digest(url)
    recorded = outbox.record(store.deliveries, [(alert, target) for alert in alerts])
    assert sender.deliver_batch(recorded) == {"sent": len(alerts)}
    return [ids.delivery_of(alert, target) for alert in alerts]


@pytest.fixture
def slow_smtp() -> Iterator[SmtpSink]:
    """An SMTP server that greets slowly: concurrent senders overlap between greeting and DATA."""
    sink = SmtpSink(ehlo_delay=0.3).start()
    yield sink
    sink.stop()


@pytest.fixture
def slow_telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelegramDouble]:
    """The Bot API double answering each request after 0.1 s, Apprise pointed at it."""
    from apprise.plugins.telegram import NotifyTelegram

    double = TelegramDouble(latency=0.1).start()
    monkeypatch.setattr(NotifyTelegram, "notify_url", NotifyTelegram.notify_url)
    channels.use_telegram_api(double.api)
    yield double
    double.stop()


def test_an_update_is_a_delivery_of_its_own_and_names_its_first(store: Store) -> None:
    """An update of a recorded story is a new record (once per update number), and names the record of
    the story's first alert to the same URL; the fallback of an update is an update too."""
    first, target = _first(), digest("https://hooks.test/a")
    update, second = _update(first), _update(first, 2)
    assert outbox.record(store.deliveries, [(first, target)]) == [outbox.delivery_id("desk", "s1", target)]
    [recorded] = outbox.record(store.deliveries, [(update, target)])
    assert recorded == outbox.delivery_id("desk", "s1/update/1", target) == ids.delivery_of(update, target)
    assert outbox.record(store.deliveries, [(update, target)]) == []  # the same update: deduped
    assert outbox.record(store.deliveries, [(second, target)]) == [ids.delivery_of(second, target)]
    assert ids.update_of(update, target) == ids.update_of(second, target) == ids.delivery_of(first, target)
    assert ids.update_of(first, target) is None
    fields = store.deliveries.get(recorded)
    delivery, _ = outbox.fallback(update, fields, "mailto://desk@example.com")
    assert delivery == ids.delivery_of(update, digest("mailto://desk@example.com")) != recorded


def test_email_update_replies_to_the_first_alerts_message(smtp: SmtpSink, store: Store) -> None:
    """Every e-mail's Message-ID is its delivery's; the update's In-Reply-To and References are the
    first's, its subject says Update, its body what changed."""
    url = smtp.apprise_url()
    sender, first = _sender(store, [url]), _first()
    [first_id] = _send(store, sender, [first], url)
    [update_id] = _send(store, sender, [_update(first)], url)
    sent_first, sent_update = smtp.threading()
    assert sent_first == {
        "Subject": "Strike hits Tyre port",
        "Message-ID": f"<{first_id}@breaking-alerts>",
        "In-Reply-To": None,
        "References": None,
    }
    assert sent_update == {
        "Subject": "Update: Strike on Tyre port kills 12",
        "Message-ID": f"<{update_id}@breaking-alerts>",
        "In-Reply-To": f"<{first_id}@breaking-alerts>",
        "References": f"<{first_id}@breaking-alerts>",
    }
    [message] = [m for m in smtp.messages if m["Message-ID"] == f"<{update_id}@breaking-alerts>"]
    assert CHANGED in str(message.get_body(preferencelist=("plain",)))


def test_concurrent_emails_each_keep_their_own_message_id(slow_smtp: SmtpSink, store: Store) -> None:
    """Eight first alerts, then their updates, each batch sent on the sender's threads at once (the slow
    greeting keeps four sends between setting their thread and building their message together): every
    message has its own delivery's Message-ID and replies to its own story's first."""
    url = slow_smtp.apprise_url()
    sender = _sender(store, [url])
    firsts = [_first(f"s{n}", f"Story {n} strike") for n in range(8)]
    first_ids = dict(zip([a.title for a in firsts], _send(store, sender, firsts, url), strict=True))
    updates = [_update(a, title=f"Story {n} strike update") for n, a in enumerate(firsts)]
    update_ids = dict(
        zip([f"Update: {a.title}" for a in updates], _send(store, sender, updates, url), strict=True)
    )
    received = {entry["Subject"]: entry for entry in slow_smtp.threading()}
    assert len(received) == 16
    for n in range(8):
        first = received[f"Story {n} strike"]
        update = received[f"Update: Story {n} strike update"]
        assert first["Message-ID"] == f"<{first_ids[f'Story {n} strike']}@breaking-alerts>"
        assert update["Message-ID"] == f"<{update_ids[f'Update: Story {n} strike update']}@breaking-alerts>"
        assert update["In-Reply-To"] == update["References"] == first["Message-ID"]


def test_telegram_update_replies_to_the_first_message_in_each_chat(
    telegram_api: TelegramDouble, store: Store
) -> None:
    """The Bot API's message id of the first alert, per chat, is kept in its outbox record; the update is
    sent to each chat as a reply to that chat's first message."""
    sender, first = _sender(store, [GROUPS]), _first()
    [first_id] = _send(store, sender, [first], GROUPS)
    by_chat = {
        str(m["chat_id"]): given for m, given in zip(telegram_api.messages, telegram_api.ids, strict=True)
    }
    assert set(by_chat) == {"-100123", "-100456"} and by_chat["-100123"] != by_chat["-100456"]
    assert threads.refs(store.deliveries.get(first_id)[outbox.MESSAGE_REF]) == {
        k: str(v) for k, v in by_chat.items()
    }
    _send(store, sender, [_update(first)], GROUPS)
    updates = telegram_api.messages[2:]
    assert len(updates) == 2 and telegram_api.replies()[:2] == [None, None]
    for message in updates:
        reply = message["reply_parameters"]
        assert reply == {"message_id": by_chat[str(message["chat_id"])], "allow_sending_without_reply": True}
        assert telegram_api.sent_in(message["chat_id"], reply["message_id"])
        assert message["text"].startswith(
            "<b>Update: Strike on Tyre port kills 12</b>\r\n" + CHANGED
        )  # Apprise: CRLF


def test_telegram_update_of_an_unknown_first_message_is_sent_unthreaded(
    telegram_api: TelegramDouble, store: Store
) -> None:
    """An update whose first alert has no record (never sent here, or expired) is still sent, as an
    update, replying to nothing."""
    sender = _sender(store, [GROUPS])
    _send(store, sender, [_update(_first())], GROUPS)
    assert telegram_api.replies() == [None, None]
    assert all(m["text"].startswith("<b>Update: ") for m in telegram_api.messages)


def test_concurrent_telegram_updates_reply_to_their_own_first(
    slow_telegram: TelegramDouble, store: Store
) -> None:
    """Six stories' first alerts, then their updates, each batch on the sender's threads at once against a
    slow Bot API: each update replies to its own story's first message."""
    url = "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr/-100123"
    sender = _sender(store, [url])
    firsts = [_first(f"s{n}", f"Story {n} strike") for n in range(6)]
    _send(store, sender, firsts, url)
    first_message = {
        m["text"].split("</b>")[0]: given
        for m, given in zip(slow_telegram.messages, slow_telegram.ids, strict=True)
    }
    _send(store, sender, [_update(a, title=f"Story {n} strike update") for n, a in enumerate(firsts)], url)
    updates = slow_telegram.messages[6:]
    assert len(updates) == 6
    for message in updates:
        story = message["text"].split("</b>")[0].removeprefix("<b>Update: ").removesuffix(" update")
        assert message["reply_parameters"]["message_id"] == first_message[f"<b>{story}"]


def test_a_split_telegram_message_replies_with_its_first_part_and_keeps_its_id(
    telegram_api: TelegramDouble,
) -> None:
    """A message Apprise sends in several parts (``overflow=split``) replies with its first part only, in
    each chat, and the ids kept are those of each chat's first part."""
    channel = channels.Channel(f"{GROUPS}?overflow=split&format=text")
    found = channel.send("", "word " * 2000, None, Thread(replies={"-100123": "7", "-100456": "9"}))
    assert len(telegram_api.messages) == 6  # three parts in each of two chats
    replies = [
        (str(m["chat_id"]), r) for m, r in zip(telegram_api.messages, telegram_api.replies(), strict=True)
    ]
    assert [(chat, r["message_id"]) for chat, r in replies if r] == [("-100123", 7), ("-100456", 9)]
    assert [chat for chat, r in replies[:2]] == ["-100123", "-100456"]  # the replies are the first parts
    assert found == {"-100123": str(telegram_api.ids[0]), "-100456": str(telegram_api.ids[1])}


def test_ntfy_update_joins_the_first_notifications_sequence(ntfy: NtfySink, store: Store) -> None:
    """ntfy's id for the first alert is kept; the update is published with it as sequence id (header and
    JSON field), so clients replace the first notification with the update."""
    sender, first = _sender(store, [ntfy.apprise_url]), _first()
    [first_id] = _send(store, sender, [first], ntfy.apprise_url)
    [published] = ntfy.published
    assert "X-Sequence-ID" not in published["headers"] and "sequence_id" not in published["body"]
    assert threads.refs(store.deliveries.get(first_id)[outbox.MESSAGE_REF]) == {"breaking": ntfy.ids[0]}
    _send(store, sender, [_update(first)], ntfy.apprise_url)
    update = ntfy.published[1]
    assert update["headers"]["X-Sequence-ID"] == update["body"]["sequence_id"] == ntfy.ids[0]
    assert update["body"]["title"] == "Update: Strike on Tyre port kills 12"
    assert update["body"]["message"].startswith(CHANGED)


def test_webhook_document_names_the_story_and_the_first_delivery(webhook: WebhookSink, store: Store) -> None:
    """The document says whether it is an update, of which first delivery (the first's X-Alerts-Delivery),
    the story's sources and what changed; through json:// too."""
    sender, first = _sender(store, [webhook.url, webhook.apprise_url]), _first()
    _send(store, sender, [first], webhook.url)
    _send(store, sender, [_update(first)], webhook.url)
    (_, first_headers, first_raw), (_, update_headers, update_raw) = webhook.requests
    before, after = json.loads(first_raw), json.loads(update_raw)
    assert (before["story"], before["update"], before["update_of"]) == ("s1", False, None)
    assert (before["sources"], before["changes"]) == (["wire"], [])
    assert (after["story"], after["update"], after["update_of"]) == (
        "s1",
        True,
        first_headers["X-Alerts-Delivery"],
    )
    assert after["sources"] == ["wire", "reuters"] and after["changes"] == ["12 killed (was 8)", "confirmed"]
    assert update_headers["X-Alerts-Delivery"] != first_headers["X-Alerts-Delivery"]
    [update_id] = _send(store, sender, [_update(first, 2)], webhook.apprise_url)
    document = json.loads(webhook.received[-1]["message"])
    assert document["update"] is True and document["update_of"] == ids.update_of(
        _update(first, 2), digest(webhook.apprise_url)
    )
    assert document["update_of"] != update_id


def test_sources_that_joined_while_the_alert_waited_are_listed(
    smtp: SmtpSink, webhook: WebhookSink, store: Store
) -> None:
    """The alert was made when only its own feed had the story; by the time it is sent two more have
    reported it: the e-mail names them, the webhook lists every source, the first first."""
    store.client.zadd(keys.story_sources("s1"), {"wire": 1.0, "reuters": 2.0, "bbc": 3.0})
    sender, first = _sender(store, [smtp.apprise_url(), webhook.url]), _first()
    _send(store, sender, [first], smtp.apprise_url())
    _send(store, sender, [first], webhook.url)
    [message] = smtp.messages
    assert "Also reported by: reuters, bbc" in str(message.get_body(preferencelist=("plain",)))
    assert webhook.received[0]["sources"] == ["wire", "reuters", "bbc"]


def test_an_update_held_for_a_digest_stays_beside_its_first_alert(store: Store) -> None:
    """A first alert and its update held for the same digest are both in it (the update titled as one)."""
    desk = Subscriber("desk", ("mailto://desk@example.com",), pacing=Pacing(digest="hourly"))
    first = _first()
    now = time.time()
    assert digests.route(store.pacing, {"desk": desk}, [first, _update(first)], now) == []
    [held] = digests.due_digests(store.pacing, now + 7200)
    assert [(a.item, a.update) for a in held.held] == [("s1-first", 0), ("s1-update-1", 1)]
    [part] = render_digest(held, "mailto://desk@example.com")
    assert (
        "Update: Strike on Tyre port kills 12" in part.message.body
        and "Strike hits Tyre port" in part.message.body
    )


def test_updates_count_towards_a_burst_on_their_own(store: Store) -> None:
    """A burst of two: the first alert and its update go, the second update (a third alert) waits."""
    desk = Subscriber("desk", ("mailto://desk@example.com",), pacing=Pacing(burst_count=2, burst_within=60.0))
    first, now = _first(), time.time()
    assert digests.route(store.pacing, {"desk": desk}, [first], now) == [first]
    update = _update(first)
    assert digests.route(store.pacing, {"desk": desk}, [update], now + 1) == [update]
    assert digests.route(store.pacing, {"desk": desk}, [_update(first, 2)], now + 2) == []
