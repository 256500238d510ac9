"""Polls of many due feeds at once: the fixed cost of a poll paid once per batch, not per feed.

A batch's polls begin in one Redis round trip (each feed's lock, a slot on its host, its state:
:meth:`alerts.state.polls.PollBatches.begin`), fetch concurrently on the process's HTTP loop, and
are handled as they end: a 304 that changes nothing ops are told is recorded with the others that
ended together, and their locks released, in one more round trip; a feed with new content, or a
failure, takes the path of a single poll (:func:`alerts.service.pipeline.fetched`, ``failed``). A
304 is logged at debug; the poller logs a summary of all polls once a minute.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from alerts import log, metrics
from alerts.errors import AlertsError, FeedRejected, FetchError, StoreUnavailable
from alerts.ingest.fetch import AddressPolicy, FetchResult, Validators, fetch_each
from alerts.models import Feed
from alerts.polling import health
from alerts.service import pipeline
from alerts.service.live import Snapshot
from alerts.service.pipeline import Dispatch, PollReport
from alerts.service.runtime import Runtime
from alerts.state.polls import Grant, PollWrite
from alerts.websub import subscriptions

BATCH = 50  # feeds begun in one round trip
_logger = log.get("alerts.pipeline")


def host_of(feed: Feed) -> str:
    """The host whose concurrent polls ``ALERTS_HOST_CONCURRENCY`` bounds."""
    return urlsplit(feed.url).hostname or feed.url


def poll_batch(runtime: Runtime, names: Sequence[str], dispatch: Dispatch) -> list[PollReport]:
    """Poll the feeds ``names`` (at most :data:`BATCH` is best) at once; one report per feed.

    A feed another process is polling is ``busy``; a feed no longer configured is skipped. Feeds of a
    host that has its limit of polls running wait for the batch's own polls of it to end and are
    polled in the next round, back to back, for at most half their interval; those still waiting
    then (the host is busy with other processes' polls) are ``deferred``, booked again within a
    second. Raises StoreUnavailable when Redis goes away (the polls' locks and slots are then
    released once it is back, or taken over when this process dies)."""
    snapshot = runtime.live.current()
    feeds = [snapshot.config.feeds[name] for name in names if name in snapshot.config.feeds]
    if not feeds:
        return []
    store, started = runtime.store, time.monotonic()
    patience = min(feed.every for feed in feeds) / 2
    by_name = {feed.name: feed for feed in feeds}
    pending, reports = feeds, []
    while pending:
        begun = store.polls.begin(
            [(feed.name, host_of(feed)) for feed in pending],
            runtime.settings.claim_hold,
            runtime.settings.host_concurrency,
        )
        for name in begun.busy:
            reports.append(_skipped(name, "busy"))
        if begun.granted:
            reports += _poll(runtime, snapshot, by_name, begun.granted, dispatch)
        pending = [by_name[name] for name in begun.deferred]
        if pending and (not begun.granted or time.monotonic() - started > patience):
            now = time.time()
            store.schedule.reschedule_many({feed.name: now + random.uniform(0.2, 1.0) for feed in pending})
            reports += [_skipped(feed.name, "deferred") for feed in pending]
            break
    return reports


def _skipped(name: str, status: str) -> PollReport:
    _logger.debug(f"feed.{status}", feed=name)
    metrics.polled(name, status)
    return PollReport(name, status)


def _poll(
    runtime: Runtime, snapshot: Snapshot, by_name: dict[str, Feed], grants: list[Grant], dispatch: Dispatch
) -> list[PollReport]:
    """Fetch the granted feeds at once and handle each group of answers that ended together."""
    store, reports = runtime.store, []
    watched = bool(runtime.settings.websub_url)
    requests = []
    for grant in grants:
        feed = by_name[grant.feed]
        validators = Validators(etag=grant.state.get("etag"), last_modified=grant.state.get("last_modified"))
        requests.append((feed.url, validators, AddressPolicy.feed_url(feed)))
    released: set[int] = set()
    try:
        for group in fetch_each(requests, concurrency=len(requests)):
            writes: list[PollWrite] = []
            for index, result in group:
                grant, feed = grants[index], by_name[grants[index].feed]
                pushed = watched and subscriptions.live(store, feed.name)
                reports.append(_handle(runtime, snapshot, feed, grant, result, pushed, dispatch, writes))
            indices = [index for index, _ in group]
            released.update(indices)  # even if Redis fails now: end() then releases them later
            store.polls.end([grants[index] for index in indices], writes)
    finally:
        left = [grant for index, grant in enumerate(grants) if index not in released]
        if left:  # cut short: the other polls' locks go back (once Redis is back, if it is away)
            try:
                store.polls.release(left)
            except StoreUnavailable:
                store.liveness.later(lambda: store.polls.release(left))
    return reports


def _handle(
    runtime: Runtime,
    snapshot: Snapshot,
    feed: Feed,
    grant: Grant,
    result: FetchResult | FetchError | FeedRejected,
    pushed: bool,
    dispatch: Dispatch,
    writes: list[PollWrite],
) -> PollReport:
    """One feed's answer: a quiet 304 joins ``writes``; anything else is handled as a single poll."""
    try:
        if isinstance(result, FetchResult) and result.not_modified:
            now = time.time()
            write, after = health.success(
                feed, grant.state, now, max_age=result.max_age, pushed=pushed, fields={"last_304": now}
            )
            if health.quiet(feed, after, now):
                writes.append(write)
                metrics.polled(feed.name, 304, result.elapsed)
                _logger.debug(
                    "feed.polled", feed=feed.name, status=304, elapsed_ms=round(result.elapsed * 1000, 1)
                )
                return PollReport(feed.name, "not_modified")
        if isinstance(result, FetchResult):
            return pipeline.fetched(runtime, snapshot, feed, grant.state, result, pushed, dispatch)
        return pipeline.failed(runtime, snapshot, feed, grant.state, result, dispatch)
    except StoreUnavailable:
        raise
    except AlertsError as exc:  # this feed's poll failed half-way; the batch goes on
        _logger.warning("feed.failed", feed=feed.name, error=str(exc), error_type=type(exc).__name__)
        return PollReport(feed.name, "failed", error=str(exc))
