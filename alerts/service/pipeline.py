"""The service's steps, composed from the packages: schedule -> poll (fetch, parse, enrich, match,
dedupe) -> hand on to the outbox.

Each function is what one Celery task does; the tasks only decode arguments and map errors to
retries. ``dispatch`` is how a poll hands its alerts on (to the deliver queue, or inline for
``alerts once``), so this module never imports Celery.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from alerts import log, metrics
from alerts.config.load import Config
from alerts.delivery import digests, outbox
from alerts.errors import AlertsError, FeedParseError, FeedRejected, FetchError, UnknownTarget
from alerts.ingest.enrich import enrich
from alerts.ingest.feeds import EntitiesRefused
from alerts.ingest.fetch import AddressPolicy, FetchResult, Validators, fetch_one
from alerts.ingest.sources import parse_source
from alerts.matching import alerts as fanout
from alerts.matching.story import story_keys
from alerts.models import Alert, Feed, FeedItem
from alerts.polling import health
from alerts.service.live import Snapshot
from alerts.service.runtime import Runtime
from alerts.service.storyline import Placement, Storyline, story_alerts
from alerts.state.claims import Held
from alerts.text import digest
from alerts.websub import subscriptions

Dispatch = Callable[[Sequence[tuple[Alert, str]]], None]
"""Hands on (alert, target id) pairs; raises if they could not be queued."""

DISPATCH_CHUNK = 1000  # alerts routed and handed on at a time
MATCHED_DETAIL = 50  # beyond this many alerts in a poll, one summary line instead of one line each
_logger = log.get("alerts.pipeline")


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
    schedule_sync(runtime, runtime.live.current().config)
    return runtime.store.schedule.due(time.time() if now is None else now)


def schedule_sync(runtime: Runtime, config: Config) -> None:
    """Make the schedule hold exactly ``config``'s feeds (one round trip when it already does)."""
    runtime.store.schedule.sync({name: feed.every for name, feed in config.feeds.items()}, config.fingerprint)


def poll_feed(runtime: Runtime, name: str, dispatch: Dispatch) -> PollReport:
    """Fetch, parse, match and dedupe one feed; hand new alerts to ``dispatch``."""
    snapshot = runtime.live.current()
    feed = snapshot.config.feeds.get(name)
    if feed is None:
        raise UnknownTarget(f"feed {name!r} is not in the configuration")
    locks, hold = runtime.store.locks, runtime.settings.claim_hold
    lock = locks.lock_feed(name, hold)
    if lock is None:
        _logger.debug("feed.busy", feed=name)
        metrics.polled(name, "busy")
        return PollReport(name, "busy")
    try:
        host = urlsplit(feed.url).hostname or feed.url
        slot = locks.take_host_slot(host, runtime.settings.host_concurrency, hold)
        if slot is None:
            runtime.store.schedule.reschedule(feed.name, time.time() + random.uniform(0.2, 1.0))
            _logger.debug("feed.deferred", feed=feed.name, host=host)
            metrics.polled(feed.name, "deferred")
            return PollReport(feed.name, "deferred")
        try:
            return _fetch_and_process(runtime, snapshot, feed, dispatch)
        finally:
            locks.give_host_slot(host, slot)
    finally:
        locks.unlock_feed(name, lock)


def _fetch_and_process(runtime: Runtime, snapshot: Snapshot, feed: Feed, dispatch: Dispatch) -> PollReport:
    store = runtime.store
    state = store.feeds.get(feed.name)
    validators = Validators(etag=state.get("etag"), last_modified=state.get("last_modified"))
    try:
        result = fetch_one(feed.url, validators, policy=AddressPolicy.feed_url(feed))
    except (FetchError, FeedRejected) as exc:
        return failed(runtime, snapshot, feed, state, exc, dispatch)
    pushed = bool(runtime.settings.websub_url) and subscriptions.live(store, feed.name)
    return fetched(runtime, snapshot, feed, state, result, pushed, dispatch)


def fetched(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    state: dict[str, str],
    result: FetchResult,
    pushed: bool,
    dispatch: Dispatch,
) -> PollReport:
    """What a poll does once ``feed`` answered: record a 304, or parse, match and hand on the items;
    ``state`` is the feed's state as read before the fetch, ``pushed`` whether WebSub pushes it."""
    store = runtime.store
    if result.not_modified:
        notice = health.succeeded(
            store, feed, state, max_age=result.max_age, pushed=pushed, fields={"last_304": time.time()}
        )
        _notify_ops(snapshot, feed, notice, dispatch)
        metrics.polled(feed.name, 304, result.elapsed)
        _logger.debug("feed.polled", feed=feed.name, status=304, elapsed_ms=_ms(result.elapsed))
        return PollReport(feed.name, "not_modified")
    fetched_at = time.time()
    try:
        items = parse_source(feed, result.body, result.url, result.content_type)
    except FeedParseError as exc:
        return failed(runtime, snapshot, feed, state, exc, dispatch, result.elapsed)
    outcome = _process(runtime, snapshot, feed, items, fetched_at, dispatch)
    metrics.polled(feed.name, result.status, result.elapsed)
    metrics.new_items(feed.name, outcome.new)
    metrics.matched(len(outcome.alerts))
    _discover_hub(runtime, feed, result)
    notice = health.succeeded(
        store,
        feed,
        state,
        max_age=result.max_age,
        pushed=pushed,
        arrivals=outcome.arrivals,
        seen=outcome.seen,
        fields={"etag": result.validators.etag, "last_modified": result.validators.last_modified},
    )
    _notify_ops(snapshot, feed, notice, dispatch)
    (_logger.info if outcome.new else _logger.debug)(
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
    health.pushed_items(runtime.store, feed, outcome.seen)
    _logger.info(
        "feed.pushed",
        feed=name,
        items=len(items),
        new=outcome.new,
        alerts=len(outcome.alerts),
        process_ms=_ms(time.time() - received),
    )
    return len(outcome.alerts)


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


def failed(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    state: dict[str, str],
    exc: AlertsError,
    dispatch: Dispatch,
    elapsed: float | None = None,
) -> PollReport:
    """Record and log a failed poll; the feed is re-probed with backoff (or after its Retry-After).
    A document refused unread (it declares XML entities) is logged as ``feed.rejected``."""
    failures, notice = health.failed(runtime.store, feed, state, exc)
    _notify_ops(snapshot, feed, notice, dispatch)
    metrics.polled(feed.name, metrics.poll_outcome(exc), elapsed)
    event = "feed.rejected" if isinstance(exc, EntitiesRefused) else "feed.failed"
    # said once, at the first failure in a row; the rest at debug (feed.unhealthy follows after 5)
    say = _logger.warning if failures == 1 else _logger.debug
    say(event, feed=feed.name, error=str(exc), error_type=type(exc).__name__, failures=failures)
    return PollReport(feed.name, "failed", error=str(exc))


def _notify_ops(snapshot: Snapshot, feed: Feed, notice: health.Transition | None, dispatch: Dispatch) -> None:
    """One alert to each ``ops:`` subscriber of subscriptions.yaml; a failure to queue is only logged."""
    if notice is None:
        return
    config, now = snapshot.config, time.time()
    jobs = []
    for name in config.ops:
        alert = Alert(
            subscriber=name,
            story=digest(f"health:{notice.feed}:{notice.title}:{int(now)}"),
            item=f"health:{notice.feed}",
            feed=notice.feed,
            title=notice.title,
            summary=f"{notice.summary}\n{feed.url}",
            fetched_at=now,
        )
        jobs += [(alert, digest(url)) for url in config.subscribers[name].notify]
    if jobs:
        try:
            dispatch(jobs)
        except Exception as exc:
            _logger.error("ops.notify_failed", feed=notice.feed, error=str(exc))


@dataclass
class _Outcome:
    new: int
    alerts: list[Alert]
    arrivals: list[float]  # published times of the new items (their rhythm)
    seen: int  # new items seen arriving (none on a first poll: its backlog is not news)


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
    first_poll = "seeded" not in store.feeds.get(feed.name)
    claimed = store.claims.items(feed.name, [item.id for item in items], window, hold)
    new_items = fanout.first_seen(
        [item for item, new in zip(items, claimed.won, strict=True) if new], fetched_at
    )
    alertable = fanout.backfill(new_items, feed.backfill) if first_poll else new_items
    alertable = enrich(alertable, feed, store.articles)
    if first_poll:
        _logger.info("feed.seeded", feed=feed.name, recorded=len(new_items), backfill=len(alertable))
    placements = _placements(runtime, snapshot, feed, alertable, fetched_at)
    candidates: list[tuple[Alert, tuple[str, ...]]] = []
    for item, placement in zip(alertable, placements, strict=True):
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
        subscribers = snapshot.config.subscribers
        candidates += story_alerts(feed, item, regions, matches, placement, fetched_at, subscribers)
    arrived = fanout.arrivals(new_items, fetched_at)
    if not candidates:
        _confirm(runtime, feed, claimed.held, first_poll)
        return _Outcome(len(new_items), [], arrived, 0 if first_poll else len(new_items))
    stories = store.claims.stories([(alert.subscriber, keys) for alert, keys in candidates], hold)
    winners = [position for position, won in enumerate(stories.won) if won]
    for (alert, _), won in zip(candidates, stories.won, strict=True):
        if not won:
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
            routed = digests.route(
                store.pacing, snapshot.config.subscribers, [candidates[i][0] for i in chunk]
            )
            dispatch(jobs_for(snapshot, routed))
            dispatched += len(chunk)
    except Exception:
        # the item is processed again; what was handed on is a duplicate then
        store.claims.release(stories.part(winners[dispatched:]) + claimed.held)
        store.claims.confirm(stories.part(winners[:dispatched]), window)
        raise
    _confirm(runtime, feed, claimed.held + stories.held, first_poll)
    sent = [candidates[position][0] for position in winners]
    _note_recipients(runtime, sent)
    _log_matched(feed, sent)
    return _Outcome(len(new_items), sent, arrived, 0 if first_poll else len(new_items))


def _placements(
    runtime: Runtime, snapshot: Snapshot, feed: Feed, items: list[FeedItem], now: float
) -> list[Placement]:
    """Each item's story: assigned (ALERTS_STORIES on, the default) or its own (link or headline)."""
    policy = runtime.settings.stories
    if policy is None or not items:
        return [Placement(digest(story_keys(item)[0]), True) for item in items]
    storyline = Storyline(
        snapshot.classifier.geotagger, policy, runtime.store.stories, runtime.settings.dedupe_window
    )
    return storyline.place(feed, items, now)


def _note_recipients(runtime: Runtime, sent: Sequence[Alert]) -> None:
    """Who got each story's first alert: its updates go to them."""
    firsts = [(alert.story, alert.subscriber) for alert in sent if not alert.update]
    if firsts and runtime.settings.stories is not None:
        runtime.store.stories.add_recipients(firsts, runtime.settings.dedupe_window)


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
                **({"update": alert.update, "changes": list(alert.changes)} if alert.update else {}),
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
        (alert, digest(url))
        for alert in alerts
        if alert.subscriber in subscribers
        for url in subscribers[alert.subscriber].notify
    ]


def send_digests(runtime: Runtime, dispatch: Dispatch, now: float | None = None) -> int:
    """Hand on one digest per subscriber whose held alerts are due; returns how many."""
    pacing = runtime.store.pacing
    ready = digests.due_digests(pacing, now)
    if not ready:
        return 0
    subscribers = [alert.subscriber for alert in ready]
    try:
        dispatch(jobs_for(runtime.live.current(), ready))
    except Exception:  # not recorded: held again, due now (and, if this process dies, reaped)
        pacing.give_back(subscribers, time.time())
        raise
    pacing.digested(subscribers)
    return len(ready)


def sweep(runtime: Runtime, now: float | None = None) -> list[str]:
    """Reap dead worker processes (what they held is free; their deliveries are due at once), then
    take the deliveries that are due: lost tasks, retries, and those of the dead."""
    for reaped in runtime.store.liveness.reap(now):
        _logger.warning("worker.lost", owner=reaped.owner, deliveries=reaped.deliveries)
    return outbox.sweep(runtime.store.deliveries, runtime.policy, now)


def deliver_inline(runtime: Runtime) -> Dispatch:
    """A dispatch that records and sends right away in this process (``alerts once``)."""

    def dispatch(jobs: Sequence[tuple[Alert, str]]) -> None:
        ids = outbox.record(runtime.store.deliveries, jobs, runtime.policy)
        if ids:
            runtime.sender.deliver_batch(ids)

    return dispatch


def _confirm(runtime: Runtime, feed: Feed, held: Held, first_poll: bool) -> None:
    """The poll's work is recorded: its claims become final, and the feed counts as seen."""
    runtime.store.claims.confirm(held, runtime.settings.dedupe_window)
    if first_poll:
        runtime.store.feeds.mark_seeded(feed.name)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
