"""WebSub wired into the service: subscriptions kept in Redis, discovery after polls, lease renewal.

Polled feeds that advertise a hub are subscribed when ``ALERTS_WEBSUB_URL`` (the public base URL of
the callback server that ``alerts run`` serves) is set. While a subscription is live the feed is
still polled, at a slow safety rate (:data:`alerts.polling.policy.PUSHED_SAFETY_INTERVAL`); pushed
and polled copies of an item are one item (the same claims dedupe both).
"""

from __future__ import annotations

import time

from alerts import log
from alerts.errors import FeedRejected, FetchError
from alerts.ingest.fetch import FetchResult
from alerts.models import Feed
from alerts.state.store import Store
from alerts.websub.discovery import discover
from alerts.websub.hub import subscribe_sync
from alerts.websub.protocol import Subscription, callback_url, is_live, needs_renewal, new_secret

ATTEMPT_EVERY = 300  # seconds between (re)subscription attempts of one feed
_logger = log.get("alerts.websub")


class RedisRegistry:
    """The callback server's subscription registry, in Redis (shared by every process)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, feed: str) -> Subscription | None:
        fields = self._store.websub.get(feed)
        return Subscription.from_mapping(fields) if fields else None

    def put(self, sub: Subscription) -> None:
        self._store.websub.put(sub.feed, sub.to_mapping())

    def delete(self, feed: str) -> None:
        self._store.websub.delete(feed)

    def all(self) -> list[Subscription]:
        return [sub for sub in map(self.get, self._store.websub.feeds()) if sub is not None]


def live(store: Store, feed: str, now: float | None = None) -> bool:
    """True while ``feed`` receives pushes (so polling can slow down to the safety rate)."""
    return is_live(RedisRegistry(store).get(feed), time.time() if now is None else now)


def after_poll(store: Store, feed: Feed, result: FetchResult, public_base: str | None, lease: int) -> None:
    """Subscribe ``feed`` if its response advertises a hub and it has no subscription to that hub yet."""
    if not public_base or result.not_modified:
        return
    hub = discover(result.body, result.link, base_url=result.url)
    registry = RedisRegistry(store)
    current = registry.get(feed.name)
    if hub is None or (current and current.hub == hub.hub_url and current.topic == hub.topic_url):
        return
    if not store.websub.attempt(feed.name, ATTEMPT_EVERY):
        return
    sub = Subscription(
        feed=feed.name,
        hub=hub.hub_url,
        topic=hub.topic_url,
        callback=callback_url(public_base, feed.name),
        secret=new_secret(),
        lease_seconds=lease,
        expires_at=None,
        state="pending",
    )
    registry.put(sub)  # before asking: the hub may verify before its answer arrives
    _request(sub, lease, "websub.subscribing")


def renew(store: Store, now: float | None = None) -> int:
    """Renew every subscription near its expiry (same secret); returns how many were asked for."""
    now = time.time() if now is None else now
    asked = 0
    for sub in RedisRegistry(store).all():
        if needs_renewal(sub, now) and store.websub.attempt(sub.feed, ATTEMPT_EVERY):
            _request(sub, sub.lease_seconds or 86400, "websub.renewing")
            asked += 1
    return asked


def _request(sub: Subscription, lease: int, event: str) -> None:
    _logger.info(event, feed=sub.feed, hub=sub.hub)
    try:
        subscribe_sync(sub.hub, sub.topic, sub.callback, sub.secret, lease_seconds=lease)
    except (FetchError, FeedRejected) as exc:
        _logger.warning("websub.subscribe_failed", feed=sub.feed, hub=sub.hub, error=str(exc))
