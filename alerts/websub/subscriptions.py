"""WebSub wired into the service: subscriptions kept in Redis, discovery after polls, lease renewal.

Polled feeds that advertise a hub are subscribed when ``ALERTS_WEBSUB_URL`` (the public base URL of
the callback server that ``alerts run`` serves) is set. While a subscription is live the feed is
still polled, at a slow safety rate (:data:`alerts.polling.policy.PUSHED_SAFETY_INTERVAL`); pushed
and polled copies of an item are one item (the same claims dedupe both).

Each request to a hub has its own callback, ``{ALERTS_WEBSUB_URL}/websub/{feed}/{token}``, and is
kept in Redis as pending for :data:`PENDING_TTL` (see :mod:`alerts.websub.protocol`). A hub that is
plain http is never sent ``hub.secret``: the feed is not subscribed (``websub.refused``, once a
day per feed and hub) and is polled as usual, unless it says ``allow_insecure_hub: true``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from alerts import log
from alerts.errors import FeedRejected, FetchError
from alerts.ingest.addresses import AddressPolicy
from alerts.ingest.fetch import FetchResult
from alerts.models import Feed
from alerts.state.store import Store
from alerts.websub import protocol
from alerts.websub.discovery import discover
from alerts.websub.hub import subscribe_sync
from alerts.websub.protocol import (
    MAX_LEASE,
    PendingRequest,
    Subscription,
    callback_url,
    hub_problem,
    is_live,
    needs_renewal,
    new_secret,
    new_token,
)

ATTEMPT_EVERY = 300  # seconds between (re)subscription attempts of one feed
PENDING_TTL = 3600  # seconds a request waits for the hub's verification
REFUSAL_NOTE_EVERY = 86400  # a refusal to subscribe a feed through a hub is logged once per this


def _log() -> Any:
    """The logger, looked up per use so reconfiguration (and structlog's capture_logs) applies."""
    return log.get("alerts.websub")


class RedisRegistry:
    """The callback server's registry of subscriptions and pending requests, in Redis (shared by
    every process). A damaged record reads as none (and is replaced by the next subscription)."""

    def __init__(self, store: Store, pending_ttl: int = PENDING_TTL) -> None:
        self._store = store
        self._ttl = pending_ttl

    def get(self, feed: str) -> Subscription | None:
        fields = self._store.websub.get(feed)
        if not fields:
            return None
        try:
            return Subscription.from_mapping(fields)
        except (KeyError, ValueError) as exc:
            _log().warning("websub.damaged", feed=feed, error=f"{type(exc).__name__}: {exc}")
            return None

    def put(self, sub: Subscription) -> None:
        self._store.websub.put(sub.feed, sub.to_mapping())

    def delete(self, feed: str) -> None:
        self._store.websub.delete(feed)

    def all(self) -> list[Subscription]:
        return [sub for sub in map(self.get, self._store.websub.feeds()) if sub is not None]

    def pending(self, feed: str, token: str) -> PendingRequest | None:
        fields = self._store.websub.pending(feed, token)
        if not fields:
            return None
        try:
            request = PendingRequest.from_mapping(fields)
        except (KeyError, ValueError):
            return None
        return request if request.feed == feed and request.token == token else None

    def add_pending(self, request: PendingRequest) -> None:
        self._store.websub.add_pending(request.feed, request.token, request.to_mapping(), self._ttl)

    def settle(self, request: PendingRequest, outcome: Subscription | None) -> bool:
        fields = None if outcome is None else outcome.to_mapping()
        return self._store.websub.settle(request.feed, request.token, request.hub, fields, request.token) == 1


def live(store: Store, feed: str, now: float | None = None) -> bool:
    """True while ``feed`` receives pushes (so polling can slow down to the safety rate)."""
    return is_live(RedisRegistry(store).get(feed), time.time() if now is None else now)


def after_poll(store: Store, feed: Feed, result: FetchResult, public_base: str | None, lease: int) -> None:
    """Subscribe ``feed`` if its response advertises a hub and it has no subscription to that hub yet
    (refused, and logged once a day, for a plain-http hub unless the feed allows it)."""
    if not public_base or result.not_modified:
        return
    hub = discover(result.body, result.link, base_url=result.url)
    if hub is None:
        return
    registry = RedisRegistry(store)
    current = registry.get(feed.name)
    if current and current.hub == hub.hub_url and current.allow_insecure_hub != feed.allow_insecure_hub:
        store.websub.set_flag(feed.name, "allow_insecure_hub", feed.allow_insecure_hub)  # for renewals
    problem = hub_problem(hub.hub_url, feed.allow_insecure_hub)
    if problem is not None:
        _refuse(store, feed.name, hub.hub_url, problem)
        return
    if current and current.hub == hub.hub_url and current.topic == hub.topic_url:
        return
    if not store.websub.attempt(feed.name, ATTEMPT_EVERY):
        return
    token = new_token()
    request = PendingRequest(
        feed=feed.name,
        token=token,
        mode="subscribe",
        hub=hub.hub_url,
        topic=hub.topic_url,
        callback=callback_url(public_base, feed.name, token),
        secret=new_secret(),
        lease_seconds=max(1, min(lease, MAX_LEASE)),
        allow_insecure_hub=feed.allow_insecure_hub,
    )
    registry.put(request.subscription())  # pending until the hub verifies this (or a later) request
    _request(registry, request, "websub.subscribing")


def renew(store: Store, now: float | None = None) -> int:
    """Renew every subscription near its expiry (a new callback token, the same secret); returns how
    many were asked for. One through a plain-http hub is renewed only while its feed allows it."""
    now = time.time() if now is None else now
    registry = RedisRegistry(store)
    asked = 0
    for sub in registry.all():
        if not needs_renewal(sub, now):
            continue
        problem = hub_problem(sub.hub, sub.allow_insecure_hub)
        if problem is not None:
            _refuse(store, sub.feed, sub.hub, problem)
            continue
        if not store.websub.attempt(sub.feed, ATTEMPT_EVERY):
            continue
        try:
            request = protocol.renewal(sub, new_token())
        except ValueError as exc:
            _log().warning("websub.subscribe_failed", feed=sub.feed, hub=sub.hub, error=str(exc))
            continue
        _request(registry, request, "websub.renewing")
        asked += 1
    return asked


def unsubscribe(store: Store, feed: str) -> bool:
    """Ask the hub to end ``feed``'s subscription (confirmed when it verifies; then forgotten).
    False when there is nothing to unsubscribe."""
    registry = RedisRegistry(store)
    sub = registry.get(feed)
    if sub is None or not sub.token:
        return False
    registry.put(replace(sub, state=protocol.UNSUBSCRIBING))
    _request(registry, protocol.unsubscription(sub), "websub.unsubscribing")
    return True


def _refuse(store: Store, feed: str, hub: str, reason: str) -> None:
    if store.websub.note(feed, hub, REFUSAL_NOTE_EVERY):
        _log().warning("websub.refused", feed=feed, hub=hub, reason=reason)


def _request(registry: RedisRegistry, request: PendingRequest, event: str) -> None:
    registry.add_pending(request)  # before asking: the hub may verify before its answer arrives
    _log().info(event, feed=request.feed, hub=request.hub)
    subscribing = request.mode == "subscribe"
    try:
        subscribe_sync(
            request.hub,
            request.topic,
            request.callback,
            request.secret if subscribing else None,
            mode=request.mode,
            lease_seconds=request.lease_seconds if subscribing else None,
            allow_insecure=request.allow_insecure_hub,
            policy=AddressPolicy(source="hub", feed=request.feed),
        )
    except (FetchError, FeedRejected) as exc:
        _log().warning("websub.subscribe_failed", feed=request.feed, hub=request.hub, error=str(exc))
