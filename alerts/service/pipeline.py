"""The service's steps, composed from the modules: schedule -> poll (fetch, parse, match, dedupe) -> deliver.

Each function is what one Celery task does; the tasks only decode arguments and map errors to
retries. ``dispatch`` is how a poll hands its alerts on (to the deliver queue, or inline for
``alerts once``), so this module never imports Celery.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from alerts import log
from alerts.delivery import channels, digests, outbox
from alerts.errors import (
    AlertsError,
    DeliveryError,
    FeedParseError,
    FeedRejected,
    FetchError,
    TransientError,
    UnknownTarget,
)
from alerts.ingest.enrich import enrich
from alerts.ingest.fetch import FetchResult, Validators, fetch_one
from alerts.ingest.sources import parse_source
from alerts.matching.story import story_keys
from alerts.models import Alert, Delivery, Feed, FeedItem, Match
from alerts.polling import health
from alerts.service.runtime import Runtime, Snapshot
from alerts.state import keys
from alerts.websub import subscriptions

Dispatch = Callable[[Sequence[tuple[Alert, str]]], None]
"""Hands on (alert, target id) pairs; raises if they could not be queued."""

_logger = log.get("alerts.pipeline")


class DeliveryInProgress(TransientError):
    """Raised when another worker holds the claim on a delivery (it is sending, or it died sending)."""


@dataclass
class PollReport:
    """What one poll of one feed did."""

    feed: str
    status: str
    items: int = 0
    new: int = 0
    alerts: int = 0
    error: str | None = None


def schedule(runtime: Runtime, now: float | None = None) -> list[str]:
    """The feeds due for a poll now (each is booked for its next poll, so no two ticks return it)."""
    config = runtime.live.current().config
    runtime.store.sync_schedule({name: feed.every for name, feed in config.feeds.items()}, config.fingerprint)
    return runtime.store.due_feeds(time.time() if now is None else now)


def poll_feed(runtime: Runtime, name: str, dispatch: Dispatch) -> PollReport:
    """Fetch, parse, match and dedupe one feed; hand new alerts to ``dispatch``."""
    snapshot = runtime.live.current()
    feed = snapshot.config.feeds.get(name)
    if feed is None:
        raise UnknownTarget(f"feed {name!r} is not in the configuration")
    lock = keys.poll_lock(name)
    if runtime.store.try_lock(lock, runtime.settings.claim_hold * 1000) is None:
        _logger.debug("feed.busy", feed=name)
        return PollReport(name, "busy")
    try:
        return _poll_locked(runtime, snapshot, feed, dispatch)
    finally:
        runtime.store.unlock(lock)


def _poll_locked(runtime: Runtime, snapshot: Snapshot, feed: Feed, dispatch: Dispatch) -> PollReport:
    store = runtime.store
    host = urlsplit(feed.url).hostname or feed.url
    slot = store.acquire_slot(host, runtime.settings.host_concurrency, runtime.settings.claim_hold)
    if slot is None:
        store.reschedule(feed.name, time.time() + random.uniform(0.2, 1.0))
        _logger.debug("feed.deferred", feed=feed.name, host=host)
        return PollReport(feed.name, "deferred")
    try:
        return _fetch_and_process(runtime, snapshot, feed, dispatch)
    finally:
        store.release_slot(host, slot)


def _fetch_and_process(runtime: Runtime, snapshot: Snapshot, feed: Feed, dispatch: Dispatch) -> PollReport:
    store = runtime.store
    state = store.feed_state(feed.name)
    validators = Validators(etag=state.get("etag"), last_modified=state.get("last_modified"))
    try:
        result = fetch_one(feed.url, validators)
    except (FetchError, FeedRejected) as exc:
        return _failed(runtime, snapshot, feed, state, exc, dispatch)
    pushed = _pushed(runtime, feed)
    if result.not_modified:
        health.succeeded(
            runtime,
            snapshot,
            feed,
            state,
            dispatch,
            max_age=result.max_age,
            pushed=pushed,
            fields={"last_304": time.time()},
        )
        _logger.info("feed.polled", feed=feed.name, status=304, elapsed_ms=_ms(result.elapsed))
        return PollReport(feed.name, "not_modified")
    fetched_at = time.time()
    try:
        items = parse_source(feed, result.body, result.url, result.content_type)
    except FeedParseError as exc:
        return _failed(runtime, snapshot, feed, state, exc, dispatch)
    outcome = _process(runtime, snapshot, feed, items, fetched_at, dispatch)
    _discover_hub(runtime, feed, result)
    health.succeeded(
        runtime,
        snapshot,
        feed,
        state,
        dispatch,
        max_age=result.max_age,
        pushed=pushed,
        arrivals=outcome.arrivals,
        fields={"etag": result.validators.etag, "last_modified": result.validators.last_modified},
    )
    _logger.info(
        "feed.polled",
        feed=feed.name,
        status=result.status,
        items=len(items),
        new=outcome.new,
        alerts=len(outcome.alerts),
        elapsed_ms=_ms(result.elapsed),
        process_ms=_ms(time.time() - fetched_at),
    )
    return PollReport(feed.name, "ok", items=len(items), new=outcome.new, alerts=len(outcome.alerts))


def process_push(
    runtime: Runtime, name: str, body: bytes, content_type: str | None, dispatch: Dispatch
) -> int:
    """Content a WebSub hub pushed for feed ``name``: the same parse, claims and matching as a poll."""
    snapshot = runtime.live.current()
    feed = snapshot.config.feeds.get(name)
    if feed is None:
        raise UnknownTarget(f"feed {name!r} is not in the configuration")
    received = time.time()
    items = parse_source(feed, body, feed.url, content_type)
    outcome = _process(runtime, snapshot, feed, items, received, dispatch)
    _logger.info(
        "feed.pushed",
        feed=name,
        items=len(items),
        new=outcome.new,
        alerts=len(outcome.alerts),
        process_ms=_ms(time.time() - received),
    )
    return len(outcome.alerts)


def _pushed(runtime: Runtime, feed: Feed) -> bool:
    return bool(runtime.settings.websub_url) and subscriptions.live(runtime.store, feed.name)


def _discover_hub(runtime: Runtime, feed: Feed, result: FetchResult) -> None:
    """Subscribe through WebSub when the feed advertises a hub (never fails the poll)."""
    if not runtime.settings.websub_url or feed.format != "feed":
        return
    try:
        subscriptions.after_poll(
            runtime.store, feed, result, runtime.settings.websub_url, runtime.settings.websub_lease
        )
    except AlertsError as exc:
        _logger.warning("websub.subscribe_failed", feed=feed.name, error=str(exc))


def _failed(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    state: dict[str, str],
    exc: AlertsError,
    dispatch: Dispatch,
) -> PollReport:
    """Record and log a failed poll; the feed is re-probed with backoff (or after its Retry-After)."""
    failures = health.failed(runtime, snapshot, feed, state, exc, dispatch)
    _logger.warning(
        "feed.failed", feed=feed.name, error=str(exc), error_type=type(exc).__name__, failures=failures
    )
    return PollReport(feed.name, "failed", error=str(exc))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


@dataclass
class _Outcome:
    new: int
    alerts: list[Alert]
    arrivals: list[float]


def _process(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    items: list[FeedItem],
    fetched_at: float,
    dispatch: Dispatch,
) -> _Outcome:
    """Claim new items, match them, claim (subscriber, story) pairs and dispatch the winners.

    Claims are held until the deliveries are recorded, then confirmed: a worker killed in between
    leaves them to expire, and the items are processed again (the outbox dedupes the deliveries).
    """
    store, window, hold = runtime.store, runtime.settings.dedupe_window, runtime.settings.claim_hold
    first_poll = "seeded" not in store.feed_state(feed.name)
    claims = store.claim_items(feed.name, [item.id for item in items], window, hold)
    new_items = [item for item, is_new in zip(items, claims, strict=True) if is_new]
    item_keys = [keys.item_seen(feed.name, item.id) for item in new_items]
    new_items = _first_seen(new_items, fetched_at)
    alertable = _backfill(new_items, feed.backfill) if first_poll else new_items
    alertable = enrich(alertable, feed, store)
    if first_poll:
        _logger.info("feed.seeded", feed=feed.name, recorded=len(new_items), backfill=len(alertable))
    candidates: list[tuple[Alert, tuple[str, ...]]] = []
    for item in alertable:
        regions = tuple(snapshot.classifier.regions(item, feed.region))
        matches = snapshot.matcher.match(item, feed.name, regions, feed.lang)
        _logger.info(
            "item.new",
            feed=feed.name,
            item=item.id,
            title=item.title,
            regions=list(regions),
            matches=len(matches),
        )
        item_story_keys = story_keys(item)
        story_id = keys.digest(item_story_keys[0])
        for subscriber, subs in _by_subscriber(matches).items():
            alert = _alert(feed, item, regions, subscriber, subs, fetched_at, story_id)
            story = tuple(keys.story_sent(subscriber, key) for key in item_story_keys)
            candidates.append((alert, story))
    if not candidates:
        _confirm(runtime, feed, item_keys, first_poll)
        return _Outcome(len(new_items), [], _arrivals(new_items, fetched_at))
    won = store.claim_stories([story for _, story in candidates], hold)
    winners = []
    for (alert, story), ok in zip(candidates, won, strict=True):
        if ok:
            winners.append((alert, story))
        else:
            _logger.info(
                "alert.duplicate",
                feed=feed.name,
                item=alert.item,
                subscriber=alert.subscriber,
                story=alert.story,
            )
    dispatched = 0
    try:
        for start in range(0, len(winners), DISPATCH_CHUNK):  # the first deliveries start while the rest
            chunk = winners[start : start + DISPATCH_CHUNK]  # of a large fan-out are being recorded
            dispatch(jobs_for(snapshot, digests.route(runtime, snapshot, [alert for alert, _ in chunk])))
            dispatched += len(chunk)
    except Exception:
        store.release([key for _, story in winners[dispatched:] for key in story])
        store.release(item_keys)  # the item is processed again; what was handed on is a duplicate then
        store.confirm(
            [key for _, story in winners[:dispatched] for key in story], runtime.settings.dedupe_window
        )
        raise
    _confirm(runtime, feed, item_keys + [key for _, story in candidates for key in story], first_poll)
    _log_matched(feed, [alert for alert, _ in winners])
    return _Outcome(len(new_items), [alert for alert, _ in winners], _arrivals(new_items, fetched_at))


PRIORITY_ORDER = ("flash", "high", "normal", "low")
DISPATCH_CHUNK = 1000  # alerts routed and handed on at a time
MATCHED_DETAIL = 50  # beyond this many alerts in a poll, one summary line instead of one line each


def _log_matched(feed: Feed, alerts: Sequence[Alert]) -> None:
    """One ``alert.matched`` line per alert; a large fan-out gets one ``alerts.matched`` summary per
    item instead (each delivery still logs ``alert.sent`` with its subscriber)."""
    if len(alerts) <= MATCHED_DETAIL:
        for alert in alerts:
            _logger.info(
                "alert.matched",
                feed=feed.name,
                item=alert.item,
                subscriber=alert.subscriber,
                story=alert.story,
                subscriptions=list(alert.subscriptions),
                terms=list(alert.terms),
            )
        return
    by_item: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_item.setdefault(alert.item, []).append(alert)
    for item, group in by_item.items():
        _logger.info(
            "alerts.matched",
            feed=feed.name,
            item=item,
            story=group[0].story,
            subscribers=len(group),
            subscriptions=sorted({name for alert in group for name in alert.subscriptions})[:MATCHED_DETAIL],
        )


def jobs_for(snapshot: Snapshot, alerts: Sequence[Alert]) -> list[tuple[Alert, str]]:
    """(alert, URL digest) for every URL of each alert's subscriber."""
    subscribers = snapshot.config.subscribers
    return [
        (alert, keys.digest(url))
        for alert in alerts
        if alert.subscriber in subscribers
        for url in subscribers[alert.subscriber].notify
    ]


def send_digests(runtime: Runtime, dispatch: Dispatch, now: float | None = None) -> int:
    """Hand on one digest per subscriber whose held alerts are due; returns how many."""
    ready = digests.due_digests(runtime, now)
    if ready:
        dispatch(jobs_for(runtime.live.current(), ready))
    return len(ready)


def _confirm(runtime: Runtime, feed: Feed, claimed: list[str], first_poll: bool) -> None:
    """The poll's work is recorded: its claims become final, and the feed counts as seen."""
    runtime.store.confirm(claimed, runtime.settings.dedupe_window)
    if first_poll:
        runtime.store.mark_seeded(feed.name)


def _first_seen(items: list[FeedItem], fetched_at: float) -> list[FeedItem]:
    """Items without a published time (ticker lines) are stamped with when they were first seen."""
    seen = datetime.fromtimestamp(fetched_at, UTC)
    return [item if item.published else dataclasses.replace(item, published=seen) for item in items]


def _arrivals(items: list[FeedItem], fetched_at: float) -> list[float]:
    """When each new item appeared: its published time if plausible, else when it was fetched."""
    times = []
    for item in items:
        published = item.published.timestamp() if item.published else None
        times.append(published if published and published <= fetched_at else fetched_at)
    return times


def _backfill(items: list[FeedItem], count: int) -> list[FeedItem]:
    """The ``count`` newest items (by published time, undated ones last, else document order)."""
    if count <= 0:
        return []
    ranked = sorted(
        items, key=lambda item: item.published.timestamp() if item.published else float("-inf"), reverse=True
    )
    return ranked[:count]


def _by_subscriber(matches: list[Match]) -> dict[str, list[Match]]:
    grouped: dict[str, list[Match]] = {}
    for match in matches:
        for subscriber in match.subscribers:
            grouped.setdefault(subscriber, []).append(match)
    return grouped


def _alert(
    feed: Feed,
    item: FeedItem,
    regions: tuple[str, ...],
    subscriber: str,
    matches: list[Match],
    fetched_at: float,
    story: str,
) -> Alert:
    return Alert(
        subscriber=subscriber,
        story=story,
        item=item.id,
        feed=feed.name,
        title=item.title,
        summary=item.summary,
        link=item.link,
        published=item.published.isoformat() if item.published else None,
        regions=regions,
        subscriptions=tuple(match.subscription for match in matches),
        terms=tuple(sorted({term for match in matches for term in match.terms})),
        fetched_at=fetched_at,
        priority=min((match.priority for match in matches), key=PRIORITY_ORDER.index, default="normal"),
    )


def deliver(runtime: Runtime, alert: Alert, target: str) -> Delivery:
    """Record (if new) and send now the delivery of ``alert`` to the URL whose digest is ``target``."""
    subscriber = runtime.live.current().config.subscribers.get(alert.subscriber)
    if subscriber is None:
        raise UnknownTarget(f"subscriber {alert.subscriber!r} is not in the configuration")
    url = next((url for url in subscriber.notify if keys.digest(url) == target), None)
    if url is None:
        raise UnknownTarget(f"subscriber {alert.subscriber!r} no longer has target {target}")
    where = channels.private(url)
    outbox.record(runtime.store, [(alert, target)])
    delivery = outbox.delivery_id(alert.subscriber, alert.story, target)
    policy = outbox.Policy(
        max_age=runtime.settings.delivery_max_age, retention=runtime.settings.history_retention
    )
    outcome = outbox.deliver(runtime, delivery, policy)
    record = runtime.store.outbox_get(delivery)
    if outcome == "sent" or record.get("state") == "sent":
        return Delivery(alert.subscriber, where, ok=True, error=None if outcome == "sent" else "already sent")
    if outcome == "skipped":
        raise DeliveryInProgress(f"{where}: another worker is sending this alert")
    raise DeliveryError(record.get("last_error") or f"{where}: not delivered")


def deliver_inline(runtime: Runtime) -> Dispatch:
    """A dispatch that records and sends right away in this process (``alerts once``)."""

    def dispatch(jobs: Sequence[tuple[Alert, str]]) -> None:
        ids = outbox.record(runtime.store, jobs)
        if ids:
            outbox.deliver_batch(runtime, ids)

    return dispatch
