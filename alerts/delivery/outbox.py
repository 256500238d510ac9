"""A durable outbox: every (subscriber, story, URL) delivery is a Redis record before any task runs.

States: ``pending`` -> ``sending`` (claimed under a lease) -> ``sent`` | ``retrying`` -> ... ->
``dead`` (after ``max_age``; ``alerts dlq`` lists, retries or drops it). Tasks only carry record
ids; a sweep (beat, every second) hands out what is due: new records whose task was lost, retries
whose time has come, and claims whose worker died (lease expired). So a worker killed at any point
loses nothing, and nothing is sent twice, except in one window: killed after the channel accepted
a message and before the record says ``sent``; that message is sent again when the lease expires.

Deliveries of one batch are sent concurrently, each on its own: a slow or failing URL never
blocks or repeats the others. Failures retry with exponential backoff and jitter; a subscriber's
``fallback:`` URL receives alerts whose primary channel is dead.
"""

from __future__ import annotations

import contextvars
import functools
import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from alerts import log
from alerts.delivery import channels, ratelimit, render, webhook
from alerts.delivery.templates import Template, compile_template
from alerts.errors import DeliveryError
from alerts.ingest import fetch
from alerts.models import Alert, Subscriber
from alerts.service.runtime import Runtime
from alerts.state import keys
from alerts.state.store import Finish, Store

BATCH = 50  # deliveries per task: a 10,000-subscriber fan-out is 200 broker messages, not 10,000
LEASE = 120.0  # a claim older than this belonged to a dead worker
SWEEP_LEASE = 30.0  # a record handed to a task is not handed out again before this
SEND_THREADS = 4
_logger = log.get("alerts.outbox")


@dataclass(frozen=True, slots=True)
class Policy:
    """How long to keep trying, and how long to remember."""

    max_age: float = 6 * 3600.0
    retention: int = 7 * 86400
    backoff_base: float = 5.0
    backoff_cap: float = 15 * 60.0

    def retry_delay(self, attempts: int) -> float:
        """Exponential backoff with full jitter after ``attempts`` failed sends."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


def delivery_id(subscriber: str, story: str, target: str) -> str:
    """The id of one (subscriber, story, URL) delivery."""
    return keys.digest(f"{subscriber}\x1f{story}\x1f{target}")


def record(
    store: Store,
    jobs: Sequence[tuple[Alert, str]],
    now: float | None = None,
    sweep_lease: float = SWEEP_LEASE,
) -> list[str]:
    """Write a pending record per (alert, URL digest); the ids of the new ones, grouped by URL."""
    now = time.time() if now is None else now
    records = []
    for alert, target in jobs:
        fields = {
            "alert": json.dumps(alert.to_json(), ensure_ascii=False),
            "subscriber": alert.subscriber,
            "target": target,
            "feed": alert.feed,
            "title": alert.title[:300],
        }
        records.append((delivery_id(alert.subscriber, alert.story, target), fields))
    created = store.outbox_create(records, due_at=now + sweep_lease, now=now)
    new = [
        (fields["target"], delivery) for (delivery, fields), ok in zip(records, created, strict=True) if ok
    ]
    return [delivery for _, delivery in sorted(new)]  # one URL's deliveries together in batches


def batches(ids: Sequence[str], size: int = BATCH) -> list[list[str]]:
    """``ids`` cut into batches."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def sweep(
    store: Store, now: float | None = None, limit: int = 2000, sweep_lease: float = SWEEP_LEASE
) -> list[str]:
    """Deliveries to hand out again: lost tasks, due retries, claims of dead workers."""
    return store.outbox_due(time.time() if now is None else now, limit, sweep_lease)


def deliver_batch(runtime: Runtime, ids: Sequence[str], policy: Policy | None = None) -> dict[str, int]:
    """Claim the batch in one step, then send each claimed delivery; outcome -> count.

    Native webhooks of the batch are posted all at once (one event loop, pooled connections); Apprise
    deliveries are sent concurrently on this process's send threads, each on its own.
    """
    policy = policy or Policy(
        max_age=runtime.settings.delivery_max_age, retention=runtime.settings.history_retention
    )
    counts: dict[str, int] = defaultdict(int)
    claimed_at = time.time()
    claims = runtime.store.outbox_claim_many(ids, claimed_at, runtime.settings.delivery_lease)
    hooks: list[_Attempt] = []
    work = []
    for delivery, fields in zip(ids, claims, strict=True):
        if fields is None:
            counts[_not_claimed(runtime.store, delivery)] += 1
        elif _is_native(runtime, fields):
            prepared = _prepare(runtime, delivery, fields, claimed_at)
            if isinstance(prepared, str):
                counts[prepared] += 1
            else:
                hooks.append(prepared)
        else:
            work.append((delivery, fields))
    pool = _senders()
    # each send runs in a copy of this context, so its log lines keep the task id; the webhooks are
    # posted meanwhile, so neither kind of channel waits for the other
    futures = [
        pool.submit(contextvars.copy_context().run, _send_claimed, runtime, d, f, claimed_at, policy)
        for d, f in work
    ]
    for outcome in _post_webhooks(runtime, hooks, policy):
        counts[outcome] += 1
    for future in futures:
        counts[future.result()] += 1
    return dict(counts)


@functools.cache
def _senders() -> ThreadPoolExecutor:
    """This process's send threads, kept for its lifetime (their HTTP connections stay alive)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send")


def deliver(runtime: Runtime, delivery: str, policy: Policy) -> str:
    """Claim, send and record one delivery: ``sent``, ``retrying``, ``dead``, ``dropped`` or ``skipped``."""
    claimed_at = time.time()
    fields = runtime.store.outbox_claim(delivery, claimed_at, runtime.settings.delivery_lease)
    if fields is None:
        return _not_claimed(runtime.store, delivery)
    if _is_native(runtime, fields):
        prepared = _prepare(runtime, delivery, fields, claimed_at)
        return prepared if isinstance(prepared, str) else _post_webhooks(runtime, [prepared], policy)[0]
    return _send_claimed(runtime, delivery, fields, claimed_at, policy)


def _not_claimed(store: Store, delivery: str) -> str:
    """A delivery that was not ours to send (sent already, or another worker holds it)."""
    if store.outbox_get(delivery).get("state") == "sent":
        _logger.info("alert.duplicate", delivery=delivery)
    return "skipped"


@dataclass(slots=True)
class _Attempt:
    """A claimed delivery, rendered and given its turn: ready to send."""

    delivery: str
    fields: dict[str, str]
    alert: Alert
    url: str
    message: render.Message
    channel: channels.Channel | None  # None for a native webhook
    where: str
    events: Any
    limits: list[ratelimit.Bucket]
    claimed_at: float
    started: float


def _is_native(runtime: Runtime, fields: dict[str, str]) -> bool:
    """True when the delivery's URL is a native webhook (posted without Apprise)."""
    subscriber = runtime.live.current().config.subscribers.get(fields.get("subscriber", ""))
    url = _url(subscriber, fields.get("target", ""))
    return url is not None and webhook.is_webhook(url)


def _prepare(runtime: Runtime, delivery: str, fields: dict[str, str], claimed_at: float) -> _Attempt | str:
    """Decode and render a claimed delivery and take its rate-limit turn; or the outcome that ends it
    here (``dropped``: no longer configured; ``deferred``: its turn is later, booked in the outbox)."""
    store, started = runtime.store, time.time()
    alert = Alert.from_json(json.loads(fields["alert"]))
    subscriber = runtime.live.current().config.subscribers.get(alert.subscriber)
    url = _url(subscriber, fields["target"])
    if url is None:
        store.outbox_drop(delivery)
        _logger.warning(
            "alert.dropped",
            delivery=delivery,
            subscriber=alert.subscriber,
            error="subscriber or URL no longer configured",
        )
        return "dropped"
    message = render.render(alert, url, _priority(alert.priority), time.time(), _template(subscriber, url))
    channel = None if webhook.is_webhook(url) else channels.Channel(message.url)
    where = channel.target if channel is not None else webhook.private(url)
    events = _logger.bind(
        delivery=delivery, subscriber=alert.subscriber, feed=alert.feed, item=alert.item, target=where
    )
    limits = ratelimit.buckets(url)
    wait = _take_turn(store, limits)
    if wait > 0:
        retry_at = time.time() + wait
        attempts = max(0, int(fields.get("attempts") or 1) - 1)  # waiting for a turn is not a failure
        store.outbox_finish(delivery, {"state": "retrying", "attempts": attempts}, retry_at=retry_at)
        events.info("alert.deferred", wait=round(wait, 2))
        return "deferred"
    if message.template_error:
        events.warning("alert.template_failed", error=message.template_error)
    return _Attempt(
        delivery, fields, alert, url, message, channel, where, events, limits, claimed_at, started
    )


def _send_claimed(
    runtime: Runtime, delivery: str, fields: dict[str, str], claimed_at: float, policy: Policy
) -> str:
    """Send a delivery this worker has claimed through Apprise, and record the outcome."""
    attempt = _prepare(runtime, delivery, fields, claimed_at)
    if isinstance(attempt, str):
        return attempt
    message, channel = attempt.message, attempt.channel
    assert channel is not None, "an Apprise delivery"
    try:
        channel.send(message.title, message.body, "html" if message.body_format == "html" else None)
    except DeliveryError as exc:
        return _refused(runtime, attempt, str(exc), ratelimit.retry_after(str(exc)), policy)
    return _sent(runtime, [attempt], policy)[0]


def _post_webhooks(runtime: Runtime, attempts: Sequence[_Attempt], policy: Policy) -> list[str]:
    """POST every native webhook at once; record each outcome as soon as it is known."""
    posts = [webhook.request(a.url, a.message.body, a.delivery) for a in attempts]
    results = []
    for ended in fetch.post_each(posts):  # those that ended together are recorded together
        results += _sent(runtime, [attempts[i] for i, outcome in ended if outcome.ok], policy)
        for index, outcome in ended:
            if not outcome.ok:
                attempt = attempts[index]
                error = f"{attempt.where}: {outcome.error}"
                results.append(_refused(runtime, attempt, error, outcome.retry_after, policy))
    return results


def _refused(runtime: Runtime, attempt: _Attempt, error: str, asked: float | None, policy: Policy) -> str:
    """The channel did not take the message; when it said when to come back, that destination waits."""
    if asked is not None and attempt.limits:
        runtime.store.rate_block(attempt.limits[-1].key, time.time() + asked)
    return _failed(
        runtime,
        attempt.delivery,
        attempt.fields,
        attempt.alert,
        attempt.where,
        error,
        policy,
        attempt.events,
        asked,
    )


def _sent(runtime: Runtime, attempts: Sequence[_Attempt], policy: Policy) -> list[str]:
    """Record deliveries the channel accepted (in one round trip) and log each."""
    sent_at = time.time()
    finishes = []
    for attempt in attempts:
        alert = attempt.alert
        latency = sent_at - alert.fetched_at if alert.fetched_at else None
        finishes.append(
            Finish(
                attempt.delivery,
                {"state": "sent", "sent_at": sent_at, "updated": sent_at, "last_error": ""},
                ttl=policy.retention,
                history=_history(alert, attempt.where, "sent", sent_at, latency),
                history_retention=policy.retention,
            )
        )
    runtime.store.outbox_finish_many(finishes)
    for attempt in attempts:
        alert = attempt.alert
        attempt.events.info(
            "alert.sent",
            title=alert.title,
            attempt=int(attempt.fields.get("attempts") or 1),
            pipeline_ms=round((attempt.claimed_at - alert.fetched_at) * 1000, 1)
            if alert.fetched_at
            else None,
            send_ms=round((sent_at - attempt.started) * 1000, 1),
        )
    return ["sent"] * len(attempts)


def _failed(
    runtime: Runtime,
    delivery: str,
    fields: dict[str, str],
    alert: Alert,
    where: str,
    error: str,
    policy: Policy,
    events: Any,
    asked: float | None = None,
) -> str:
    store, now = runtime.store, time.time()
    attempts = int(fields.get("attempts") or 1)
    age = now - float(fields.get("created") or now)
    delay = asked if asked is not None else policy.retry_delay(attempts)
    if age + delay <= policy.max_age:
        retry_at = now + delay
        store.outbox_finish(
            delivery, {"state": "retrying", "last_error": error[:500], "updated": now}, retry_at=retry_at
        )
        events.warning("alert.failed", error=error, attempt=attempts, retry_in=round(retry_at - now, 1))
        return "retrying"
    store.outbox_finish(
        delivery,
        {"state": "dead", "last_error": error[:500], "updated": now},
        dead_at=now,
        history=_history(alert, where, "dead", now, None),
        history_retention=policy.retention,
    )
    events.error("alert.failed", error=error, attempt=attempts, final=True)
    _fall_back(runtime, alert, fields)
    return "dead"


def _fall_back(runtime: Runtime, alert: Alert, fields: dict[str, str]) -> None:
    """Queue the alert for the subscriber's fallback URL (picked up by the next sweep)."""
    subscriber = runtime.live.current().config.subscribers.get(alert.subscriber)
    if subscriber is None or not subscriber.fallback or fields.get("fallback"):
        return
    target = keys.digest(subscriber.fallback)
    records = [
        (
            delivery_id(alert.subscriber, alert.story, target),
            {
                "alert": fields["alert"],
                "subscriber": alert.subscriber,
                "target": target,
                "feed": alert.feed,
                "title": alert.title[:300],
                "fallback": "1",
            },
        )
    ]
    now = time.time()
    if runtime.store.outbox_create(records, due_at=now, now=now) == [True]:
        _logger.info(
            "alert.fallback",
            subscriber=alert.subscriber,
            item=alert.item,
            target=channels.private(subscriber.fallback),
        )


MAX_INLINE_WAIT = 1.0  # shorter waits for a rate limit are slept here; longer ones are booked


def _take_turn(store: Store, limits: list[ratelimit.Bucket]) -> float:
    """Take a send slot on every limit of the destination, sleeping a short wait; 0 or the wait left."""
    spec = [(b.key, b.interval, b.period - b.interval) for b in limits]
    wait = store.rate_take(spec, time.time())
    if 0 < wait <= MAX_INLINE_WAIT:
        time.sleep(wait)
        wait = store.rate_take(spec, time.time())
    return wait


def _priority(value: str) -> render.Priority:
    try:
        return render.Priority(value)
    except ValueError:
        return render.Priority.NORMAL


def _template(subscriber: Subscriber | None, url: str) -> Template | None:
    """The subscriber's template for this URL's channel kind, compiled once."""
    if subscriber is None or not subscriber.templates:
        return None
    kind = render.channel_kind(url)
    for template_kind, title, body in subscriber.templates:
        if template_kind == kind:
            return _compiled(kind, title, body)
    return None


@functools.lru_cache(maxsize=1024)
def _compiled(kind: str, title: str | None, body: str | None) -> Template:
    return compile_template(kind, title, body)


def _url(subscriber: Subscriber | None, target: str) -> str | None:
    if subscriber is None:
        return None
    candidates = [*subscriber.notify, *([subscriber.fallback] if subscriber.fallback else [])]
    return next((url for url in candidates if keys.digest(url) == target), None)


def _history(alert: Alert, where: str, state: str, at: float, latency: float | None) -> dict[str, str]:
    return {
        "at": f"{at:.3f}",
        "state": state,
        "subscriber": alert.subscriber,
        "feed": alert.feed,
        "item": alert.item,
        "title": alert.title[:300],
        "link": alert.link or "",
        "target": where,
        "latency": f"{latency:.3f}" if latency is not None else "",
    }
