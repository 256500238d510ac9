"""Sending claimed deliveries: render each for its channel, take its rate-limit turn, send it
(a native webhook, or through Apprise), and record the outcome in the outbox.

A digest may be several messages (Telegram): one delivery, each message taking its own rate-limit turn;
after each, the outbox record notes how many held alerts are delivered, so a retry (after a failure, a
wait for a turn, or a dead worker) sends only the messages that did not go.

Deliveries of one batch are sent concurrently, each on its own: a slow or failing URL never
blocks or repeats the others. Native webhooks of a batch are posted all at once (one event loop,
pooled connections); Apprise deliveries are sent on this process's send threads.

A story's first alert names every feed that reported the story by the time it is sent (one ZRANGE per
story and batch), so feeds that joined while it waited (a digest, a rate limit, a retry) are listed. An
update is threaded under its first alert (:mod:`alerts.delivery.threads`): the e-mail Message-ID is the
delivery's, and the Telegram and ntfy message ids of a first alert are kept in its record for its updates.

Each outcome is counted once it is recorded (``alerts_deliveries_total`` by channel kind; a sent
alert's first-seen-to-sent time in ``alerts_delivery_latency_seconds``).
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from alerts import log, metrics
from alerts.delivery import outbox, ratelimit, render, targets, threads, webhook
from alerts.delivery.digest_render import Part, render_digest
from alerts.delivery.ids import update_of as first_delivery
from alerts.delivery.outbox import Policy
from alerts.delivery.templates import Template, compile_template
from alerts.errors import DeliveryError
from alerts.ingest import http
from alerts.models import Alert, Subscriber
from alerts.state.store import Store
from alerts.text import digest

SEND_THREADS = 4
MAX_INLINE_WAIT = 1.0  # shorter waits for a rate limit are slept here; longer ones are booked
_logger = log.get("alerts.outbox")

Subscribers = Callable[[], Mapping[str, Subscriber]]
"""The subscribers of the current configuration (it may be reloaded between calls)."""


@dataclass(slots=True)
class _Attempt:
    """A claimed delivery, rendered and given its turn: ready to send."""

    delivery: str
    fields: dict[str, str]
    alert: Alert
    url: str
    parts: list[Part]  # the messages to send, in order: one, but for a Telegram digest
    channel: Any  # an Apprise channel ready for the first message; None for a native webhook
    where: str  # the URL with its secrets masked
    events: Any  # the delivery's bound logger
    limits: list[ratelimit.Bucket]
    claimed_at: float
    started: float
    message_ref: str | None = None  # the channel's ids of the (first) message sent, for updates to reply to

    @property
    def kind(self) -> str:
        """The channel kind (``alerts_deliveries_total``'s label)."""
        return render.channel_kind(self.url)

    @property
    def message(self) -> render.Message:
        """The first (for all but a Telegram digest, the only) message."""
        return self.parts[0].message


class Sender:
    """Sends the outbox's deliveries to the subscribers' URLs."""

    def __init__(
        self,
        store: Store,
        subscribers: Subscribers,
        policy: Policy = Policy(),
        rates: ratelimit.Rates = ratelimit.DEFAULTS,
    ) -> None:
        self._store = store
        self._subscribers = subscribers
        self.policy = policy
        self._rates = rates

    def deliver_batch(self, ids: Sequence[str], policy: Policy | None = None) -> dict[str, int]:
        """Claim the batch in one step, then send each claimed delivery; outcome -> count."""
        policy = policy or self.policy
        counts: dict[str, int] = defaultdict(int)
        claimed_at = time.time()
        hooks: list[_Attempt] = []
        work = []
        sources: dict[str, tuple[str, ...]] = {}  # story -> its feeds, read once per batch
        for delivery, fields in zip(
            ids, self._store.deliveries.claim(ids, claimed_at, policy.delivery_lease), strict=True
        ):
            if fields is None:
                counts[self._not_claimed(delivery)] += 1
            elif self._is_native(fields):
                prepared = self._prepare(delivery, fields, claimed_at, sources)
                if isinstance(prepared, str):
                    counts[prepared] += 1
                else:
                    hooks.append(prepared)
            else:
                work.append((delivery, fields))
        # each send runs in a copy of this context, so its log lines keep the task id; the webhooks are
        # posted meanwhile, so neither kind of channel waits for the other
        futures = [
            _senders().submit(
                contextvars.copy_context().run, self._send_apprise, d, f, claimed_at, policy, sources
            )
            for d, f in work
        ]
        for outcome in self._post_webhooks(hooks, policy):
            counts[outcome] += 1
        for future in futures:
            counts[future.result()] += 1
        return dict(counts)

    def deliver(self, delivery: str, policy: Policy | None = None) -> str:
        """Claim, send and record one delivery: ``sent``, ``retrying``, ``dead``, ``deferred``, ``dropped``
        or ``skipped`` (not ours to send)."""
        [outcome] = self.deliver_batch([delivery], policy).keys()
        return outcome

    def _not_claimed(self, delivery: str) -> str:
        """A delivery that was not ours to send (sent already, or another worker holds it)."""
        if self._store.deliveries.get(delivery).get("state") == "sent":
            _logger.info("alert.duplicate", delivery=delivery)
        return "skipped"

    def _url(self, subscriber: Subscriber | None, target: str) -> str | None:
        if subscriber is None:
            return None
        candidates = [*subscriber.notify, *([subscriber.fallback] if subscriber.fallback else [])]
        return next((url for url in candidates if digest(url) == target), None)

    def _is_native(self, fields: dict[str, str]) -> bool:
        """True when the delivery's URL is a native webhook (posted without Apprise)."""
        url = self._url(self._subscribers().get(fields.get("subscriber", "")), fields.get("target", ""))
        return url is not None and webhook.is_webhook(url)

    def _prepare(
        self, delivery: str, fields: dict[str, str], claimed_at: float, sources: dict[str, tuple[str, ...]]
    ) -> _Attempt | str:
        """Decode and render a claimed delivery and take its rate-limit turn; or the outcome that ends it
        here (``dropped``: no longer configured; ``deferred``: its turn is later, booked in the outbox)."""
        started = time.time()
        alert = Alert.from_json(json.loads(fields["alert"]))
        subscriber = self._subscribers().get(alert.subscriber)
        url = self._url(subscriber, fields["target"])
        if url is None:
            self._store.deliveries.drop(delivery)
            metrics.delivery(metrics.UNKNOWN_KIND, "dropped")
            _logger.warning(
                "alert.dropped",
                delivery=delivery,
                subscriber=alert.subscriber,
                error="subscriber or URL no longer configured",
            )
            return "dropped"
        parts = _parts(alert, url, subscriber, fields, self._sources(alert, sources))
        channel = None if webhook.is_webhook(url) or not parts else _channel(parts[0].message.url)
        where = channel.target if channel is not None else targets.private(url)
        events = _logger.bind(
            delivery=delivery, subscriber=alert.subscriber, feed=alert.feed, item=alert.item, target=where
        )
        limits = ratelimit.buckets(url, self._rates)
        wait = self._take_turn(limits)
        if wait > 0:
            self._store.deliveries.finish([outbox.deferred(delivery, fields, time.time() + wait)])
            metrics.delivery(render.channel_kind(url), "rate_limited")
            events.info("alert.deferred", wait=round(wait, 2))
            return "deferred"
        if parts and parts[0].message.template_error:
            events.warning("alert.template_failed", error=parts[0].message.template_error)
        return _Attempt(
            delivery, fields, alert, url, parts, channel, where, events, limits, claimed_at, started
        )

    def _sources(self, alert: Alert, known: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        """The feeds that reported the alert's story so far, the first first (``known``: read already)."""
        if alert.is_digest or not alert.story:
            return alert.sources
        found = known.get(alert.story)
        if found is None:
            found = known[alert.story] = self._store.stories.sources(alert.story)
        return tuple(dict.fromkeys((*found, *alert.sources)))

    def _thread(self, attempt: _Attempt) -> threads.Thread:
        """How the delivery's message joins its story's thread (an update: its first alert's ids)."""
        update_of = first_delivery(attempt.alert, attempt.fields["target"])
        first_ref = None
        if update_of and threads.replies_need_refs(attempt.url):
            first_ref = self._store.deliveries.get_field(update_of, outbox.MESSAGE_REF)
        return threads.thread(attempt.delivery, update_of, first_ref)

    def _take_turn(self, limits: list[ratelimit.Bucket]) -> float:
        """Take a send slot on every limit of the destination, sleeping a short wait; 0 or the wait left."""
        spec = [bucket.spec for bucket in limits]
        wait = self._store.rates.take(spec, time.time())
        if 0 < wait <= MAX_INLINE_WAIT:
            time.sleep(wait)
            wait = self._store.rates.take(spec, time.time())
        return wait

    def _send_apprise(
        self,
        delivery: str,
        fields: dict[str, str],
        claimed_at: float,
        policy: Policy,
        sources: dict[str, tuple[str, ...]],
    ) -> str:
        """Send a claimed delivery through Apprise, and record the outcome."""
        attempt = self._prepare(delivery, fields, claimed_at, sources)
        if isinstance(attempt, str):
            return attempt
        for index, part in enumerate(attempt.parts):
            if index:  # a digest's next message: its own turn, and a fresh plugin instance
                wait = self._take_turn(attempt.limits)
                if wait > 0:
                    self._store.deliveries.finish([outbox.deferred(delivery, fields, time.time() + wait)])
                    metrics.delivery(attempt.kind, "rate_limited")
                    attempt.events.info("alert.deferred", wait=round(wait, 2), part=index + 1)
                    return "deferred"
            channel = attempt.channel if index == 0 else _channel(part.message.url)
            message = part.message
            body_format = "html" if message.body_format == "html" else None
            try:  # a digest's next messages are not threaded: its first is the delivery's message
                found = channel.send(
                    message.title, message.body, body_format, None if index else self._thread(attempt)
                )
            except DeliveryError as exc:
                return self._refused(attempt, str(exc), ratelimit.retry_after(str(exc)), policy)
            if not index:
                attempt.message_ref = threads.encode(found) or None
            more = index + 1 < len(attempt.parts)
            if more and not outbox.note_progress(self._store.deliveries, delivery, fields, part.done):
                attempt.events.warning("alert.claim_lost", part=index + 1, parts=len(attempt.parts))
                return "skipped"  # its lease ran out: another worker has taken the rest
        return self._sent([attempt], policy)[0]

    def _post_webhooks(self, attempts: Sequence[_Attempt], policy: Policy) -> list[str]:
        """POST every native webhook at once; record each outcome as soon as it is known."""
        posts = [webhook.request(a.url, a.message.body, a.delivery) for a in attempts]
        results = []
        for ended in http.post_each(posts):  # those that ended together are recorded together
            results += self._sent([attempts[i] for i, outcome in ended if outcome.ok], policy)
            for index, outcome in ended:
                if not outcome.ok:
                    attempt = attempts[index]
                    error = f"{attempt.where}: {outcome.error}"
                    results.append(self._refused(attempt, error, outcome.retry_after, policy))
        return results

    def _sent(self, attempts: Sequence[_Attempt], policy: Policy) -> list[str]:
        """Record deliveries the channel accepted (in one round trip; if Redis is away, once it is back,
        within the lease, so the message is not sent again) and log each."""
        sent_at = time.time()
        self._store.deliveries.finish(
            [outbox.sent(a.delivery, a.alert, a.where, sent_at, policy, a.message_ref) for a in attempts],
            patience=policy.delivery_lease,
        )
        for attempt in attempts:
            alert = attempt.alert
            latency = sent_at - alert.fetched_at if alert.fetched_at and not alert.is_digest else None
            metrics.sent(attempt.kind, len(alert.held) or 1, latency)
            digest_fields = (
                {"alerts": len(alert.held), "messages": len(attempt.parts)} if alert.is_digest else {}
            )
            attempt.events.info(
                "alert.sent",
                title=alert.title,
                **digest_fields,
                attempt=int(attempt.fields.get("attempts") or 1),
                pipeline_ms=round((attempt.claimed_at - alert.fetched_at) * 1000, 1)
                if alert.fetched_at
                else None,
                send_ms=round((sent_at - attempt.started) * 1000, 1),
            )
        return ["sent"] * len(attempts)

    def _refused(self, attempt: _Attempt, error: str, asked: float | None, policy: Policy) -> str:
        """The channel did not take the message; when it said when to come back, that destination waits."""
        if asked is not None and attempt.limits:
            self._store.rates.block(attempt.limits[-1].destination, time.time() + asked)
        finish = outbox.failed(
            attempt.delivery, attempt.fields, attempt.alert, attempt.where, error, policy, time.time(), asked
        )
        self._store.deliveries.finish([finish])
        metrics.delivery(attempt.kind, "retrying" if finish.dead_at is None else "dead")
        number = int(attempt.fields.get("attempts") or 1)
        if finish.dead_at is None:
            retry_in = round((finish.retry_at or time.time()) - time.time(), 1)
            attempt.events.warning("alert.failed", error=error, attempt=number, retry_in=retry_in)
            return "retrying"
        attempt.events.error("alert.failed", error=error, attempt=number, final=True)
        self._fall_back(attempt.alert, attempt.fields)
        return "dead"

    def _fall_back(self, alert: Alert, fields: dict[str, str]) -> None:
        """Queue the alert for the subscriber's fallback URL (picked up by the next sweep)."""
        subscriber = self._subscribers().get(alert.subscriber)
        if subscriber is None or not subscriber.fallback or fields.get("fallback"):
            return
        now = time.time()
        record = outbox.fallback(alert, fields, subscriber.fallback)
        if self._store.deliveries.create([record], due_at=now, now=now) == [True]:
            _logger.info(
                "alert.fallback",
                subscriber=alert.subscriber,
                item=alert.item,
                target=targets.private(subscriber.fallback),
            )


def send_test(url: str, title: str, body: str) -> str:
    """Send one message to one URL right away (``alerts send-test``); the URL as logs show it.

    Raises DeliveryError when the channel did not accept it."""
    if webhook.is_webhook(url):
        [outcome] = http.post_many([webhook.request(url, body, delivery="test")])
        if not outcome.ok:
            raise DeliveryError(f"{webhook.private(url)}: {outcome.error}")
        return webhook.private(url)
    from alerts.delivery.channels import Channel

    channel = Channel(url)
    channel.send(title, body)
    return channel.target


def _channel(url: str) -> Any:
    """An Apprise channel (a fresh plugin instance) for one message."""
    from alerts.delivery.channels import Channel

    return Channel(url)


@functools.cache
def _senders() -> ThreadPoolExecutor:
    """This process's send threads, kept for its lifetime (their HTTP connections stay alive)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send")


def _parts(
    alert: Alert,
    url: str,
    subscriber: Subscriber | None,
    fields: Mapping[str, str],
    sources: tuple[str, ...],
) -> list[Part]:
    """The messages of a delivery: an alert's one, or a digest's still to send (templates shape alerts
    only: a digest gets the default rendering)."""
    priority, now, target = _priority(alert.priority), time.time(), fields.get("target")
    if alert.is_digest:
        return render_digest(alert, url, priority, now, outbox.progress(fields), target)
    template = _template(subscriber, url)
    message = render.render(alert, url, priority, now, template, sources=sources, target=target)
    return [Part(message, 1)]


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
