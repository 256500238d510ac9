"""A durable outbox: every (subscriber, story, URL) delivery is a Redis record before any task runs.

States: ``pending`` -> ``sending`` (claimed under a lease) -> ``sent`` | ``retrying`` -> ... ->
``dead`` (after ``max_age``; ``alerts dlq`` lists, retries or drops it). Tasks only carry record
ids; a sweep (beat, every second) hands out what is due: new records whose task was lost, retries
whose time has come, and claims whose worker died (lease expired). So a worker killed at any point
loses nothing, and nothing is sent twice, except in one window: killed after the channel accepted
a message and before the record says ``sent``; that message is sent again when the lease expires.

This module holds the state machine: the records, and the outcome of each attempt as a
:class:`~alerts.state.deliveries.Finish` to record. :mod:`alerts.delivery.send` makes the attempts.
Failures retry with exponential backoff and jitter; a subscriber's ``fallback:`` URL receives
alerts whose primary channel is dead. A digest sent as several messages (Telegram) is one delivery;
its record's ``digest_sent`` counts the held alerts its messages so far delivered, so an attempt
resumes after them. A story's update is a delivery of its own (:mod:`alerts.delivery.ids`); the record of
a first alert sent to Telegram or ntfy keeps the channel's message ids (``message_ref``) for its updates
to reply to.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.delivery.ids import delivery_id as delivery_id
from alerts.delivery.ids import delivery_of as delivery_of
from alerts.delivery.ids import update_of as update_of
from alerts.models import Alert
from alerts.state.deliveries import Deliveries, Finish
from alerts.text import digest

BATCH = 50  # deliveries per task: a 10,000-subscriber fan-out is 200 broker messages, not 10,000
PROGRESS = "digest_sent"  # record field: a digest's held alerts its earlier messages delivered
MESSAGE_REF = "message_ref"  # record field: the channel's ids of the sent message (alerts.delivery.threads)
ERROR_CHARS = 500
TITLE_CHARS = 300


@dataclass(frozen=True, slots=True)
class Policy:
    """How long to keep trying, how long a claim and a hand-out last, and how long to remember."""

    max_age: float = 6 * 3600.0  # a delivery still failing after this is dead
    retention: int = 7 * 86400  # sent records and history are kept this long
    backoff_base: float = 5.0
    backoff_cap: float = 15 * 60.0
    delivery_lease: float = 120.0  # a claimed delivery whose worker died is retried after this
    sweep_lease: float = 30.0  # a delivery handed to a task is not handed out again before this

    def retry_delay(self, attempts: int) -> float:
        """Exponential backoff with full jitter after ``attempts`` failed sends."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


def record(
    deliveries: Deliveries,
    jobs: Sequence[tuple[Alert, str]],
    policy: Policy = Policy(),
    now: float | None = None,
) -> list[str]:
    """Write a pending record per (alert, URL digest); the ids of the new ones, grouped by URL.

    Each is due for the sweep ``policy.sweep_lease`` later: sooner only if its task is lost."""
    now = time.time() if now is None else now
    records = []
    for alert, target in jobs:
        fields = {
            "alert": json.dumps(alert.to_json(), ensure_ascii=False),
            "subscriber": alert.subscriber,
            "target": target,
            "feed": alert.feed,
            "title": alert.title[:TITLE_CHARS],
        }
        records.append((delivery_of(alert, target), fields))
    created = deliveries.create(records, due_at=now + policy.sweep_lease, now=now)
    new = [
        (fields["target"], delivery) for (delivery, fields), ok in zip(records, created, strict=True) if ok
    ]
    return [delivery for _, delivery in sorted(new)]  # one URL's deliveries together in batches


def batches(ids: Sequence[str], size: int = BATCH) -> list[list[str]]:
    """``ids`` cut into batches."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def sweep(
    deliveries: Deliveries, policy: Policy = Policy(), now: float | None = None, limit: int = 2000
) -> list[str]:
    """Deliveries to hand out again: lost tasks, due retries, claims of dead workers."""
    return deliveries.due(time.time() if now is None else now, limit, policy.sweep_lease)


def progress(fields: Mapping[str, str]) -> int:
    """How many of a digest's held alerts its earlier messages delivered (0 for a fresh delivery)."""
    return int(fields.get(PROGRESS) or 0)


def note_progress(deliveries: Deliveries, delivery: str, claimed: Mapping[str, str], done: int) -> bool:
    """Record that a digest's first ``done`` held alerts are delivered, while our claim (``claimed``: the
    fields the claim returned) still holds; False when it no longer does."""
    return deliveries.update_claimed(delivery, claimed, {PROGRESS: done})


def sent(
    delivery: str, alert: Alert, where: str, at: float, policy: Policy, message_ref: str | None = None
) -> Finish:
    """The channel accepted the message (``message_ref``: the ids it gave it, kept for updates)."""
    latency = at - alert.fetched_at if alert.fetched_at else None
    fields: dict[str, str | int | float] = {"state": "sent", "sent_at": at, "updated": at, "last_error": ""}
    if message_ref:
        fields[MESSAGE_REF] = message_ref
    return Finish(
        delivery,
        fields,
        ttl=policy.retention,
        history=history_entry(alert, where, "sent", at, latency),
        history_retention=policy.retention,
    )


def deferred(delivery: str, fields: Mapping[str, str], retry_at: float) -> Finish:
    """Its rate-limit turn is later: retry then, without counting an attempt."""
    attempts = max(0, int(fields.get("attempts") or 1) - 1)  # waiting for a turn is not a failure
    return Finish(delivery, {"state": "retrying", "attempts": attempts}, retry_at=retry_at)


def failed(
    delivery: str,
    fields: Mapping[str, str],
    alert: Alert,
    where: str,
    error: str,
    policy: Policy,
    now: float,
    asked: float | None = None,
) -> Finish:
    """The channel refused or could not be reached: retry after a backoff (or the wait the channel
    ``asked`` for) while the delivery is younger than ``policy.max_age``, else it is dead."""
    attempts = int(fields.get("attempts") or 1)
    age = now - float(fields.get("created") or now)
    delay = asked if asked is not None else policy.retry_delay(attempts)
    if age + delay <= policy.max_age:
        return Finish(
            delivery,
            {"state": "retrying", "last_error": error[:ERROR_CHARS], "updated": now},
            retry_at=now + delay,
        )
    return Finish(
        delivery,
        {"state": "dead", "last_error": error[:ERROR_CHARS], "updated": now},
        dead_at=now,
        history=history_entry(alert, where, "dead", now, None),
        history_retention=policy.retention,
    )


def fallback(alert: Alert, fields: Mapping[str, str], url: str) -> tuple[str, dict[str, str]]:
    """The record that sends a dead delivery's alert to the subscriber's fallback URL."""
    target = digest(url)
    return (
        delivery_of(alert, target),
        {
            "alert": fields["alert"],
            "subscriber": alert.subscriber,
            "target": target,
            "feed": alert.feed,
            "title": alert.title[:TITLE_CHARS],
            "fallback": "1",
        },
    )


def history_entry(alert: Alert, where: str, state: str, at: float, latency: float | None) -> dict[str, str]:
    """What ``alerts history`` shows of a sent or dead delivery."""
    return {
        "at": f"{at:.3f}",
        "state": state,
        "subscriber": alert.subscriber,
        "feed": alert.feed,
        "item": alert.item,
        "title": alert.title[:TITLE_CHARS],
        "link": alert.link or "",
        "target": where,
        "latency": f"{latency:.3f}" if latency is not None else "",
    }
