"""Where the WebSub callback server finds subscriptions and pending requests; pure (no aiohttp).

:class:`SubscriptionRegistry` is the protocol the server (:mod:`alerts.websub.server`) calls;
:class:`InMemoryRegistry` implements it in dicts. The shared, Redis-backed one is
:class:`alerts.websub.subscriptions.RedisRegistry`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from alerts.websub.protocol import PendingRequest, Subscription

__all__ = ["InMemoryRegistry", "SubscriptionRegistry"]


class SubscriptionRegistry(Protocol):
    """Where subscriptions and pending requests live; must be safe to call from several threads."""

    def get(self, feed: str) -> Subscription | None:
        """The subscription of ``feed``, or None."""

    def put(self, sub: Subscription) -> None:
        """Store ``sub`` (replacing the feed's previous one)."""

    def delete(self, feed: str) -> None:
        """Forget the subscription of ``feed``."""

    def pending(self, feed: str, token: str) -> PendingRequest | None:
        """The pending request of ``feed`` whose callback has ``token``, or None."""

    def add_pending(self, request: PendingRequest) -> None:
        """Remember ``request`` until the hub verifies it (or it expires)."""

    def settle(self, request: PendingRequest, outcome: Subscription | None) -> bool:
        """Atomically consume ``request`` and, if the feed's subscription is still with its hub, make
        ``outcome`` the subscription (None: forget the subscription if it has the request's token).
        False, nothing changed but the request consumed, when it was no longer pending or the
        subscription moved to another hub."""


class InMemoryRegistry:
    """A :class:`SubscriptionRegistry` in dicts, for tests and single-process use."""

    def __init__(
        self,
        subs: Mapping[str, Subscription] | None = None,
        *,
        pending_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._subs: dict[str, Subscription] = dict(subs or {})
        self._pending: dict[tuple[str, str], tuple[PendingRequest, float]] = {}
        self._ttl = pending_ttl
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, feed: str) -> Subscription | None:
        """The subscription of ``feed``, or None."""
        with self._lock:
            return self._subs.get(feed)

    def put(self, sub: Subscription) -> None:
        """Store ``sub`` under its feed."""
        with self._lock:
            self._subs[sub.feed] = sub

    def delete(self, feed: str) -> None:
        """Forget ``feed``'s subscription."""
        with self._lock:
            self._subs.pop(feed, None)

    def all(self) -> list[Subscription]:
        """Every stored subscription."""
        with self._lock:
            return list(self._subs.values())

    def pending(self, feed: str, token: str) -> PendingRequest | None:
        """The unexpired pending request (feed, token), or None."""
        with self._lock:
            found = self._pending.get((feed, token))
            if found is None or found[1] <= self._clock():
                return None
            return found[0]

    def add_pending(self, request: PendingRequest) -> None:
        """Remember ``request`` for ``pending_ttl`` seconds."""
        with self._lock:
            self._pending[(request.feed, request.token)] = (request, self._clock() + self._ttl)

    def settle(self, request: PendingRequest, outcome: Subscription | None) -> bool:
        """See :meth:`SubscriptionRegistry.settle`."""
        with self._lock:
            found = self._pending.pop((request.feed, request.token), None)
            if found is None or found[1] <= self._clock():
                return False
            current = self._subs.get(request.feed)
            if current is None or current.hub != request.hub:
                return False
            if outcome is not None:
                self._subs[request.feed] = outcome
            elif current.token == request.token:
                del self._subs[request.feed]
            return True
