"""Subscription state and the subscriber's rules (W3C WebSub §5): pure, no I/O.

Life of a subscription, one per feed:

* ``pending``: we asked the hub (:func:`alerts.websub.hub.request_subscription`) and wait for its
  verification of intent. Renewals are asked for while ``active`` and leave it ``active``
  (same secret), so content keeps flowing while the hub re-verifies.
* ``active``: the hub verified it; ``expires_at`` = verification time + the hub's lease.
* ``unsubscribing``: we asked the hub to unsubscribe; only in this state is an
  ``hub.mode=unsubscribe`` verification confirmed (anyone else's unsubscription is refused).
* ``denied``: the hub refused or cancelled it (``hub.mode=denied``); never renewed automatically.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

__all__ = [
    "STATES",
    "Subscription",
    "activated",
    "callback_url",
    "is_live",
    "lease_from",
    "needs_renewal",
    "new_secret",
    "verify_intent",
]

PENDING: Final = "pending"
ACTIVE: Final = "active"
UNSUBSCRIBING: Final = "unsubscribing"
DENIED: Final = "denied"
STATES = frozenset({PENDING, ACTIVE, UNSUBSCRIBING, DENIED})

MIN_RENEWAL_MARGIN = 60.0  # seconds
_FEED_NAME = re.compile(r"[a-z0-9-]+")
_LEASE = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed's subscription at one hub. ``secret`` signs pushed content; never log it."""

    feed: str
    hub: str
    topic: str
    callback: str
    secret: str
    lease_seconds: int | None  # asked for while pending; granted by the hub once active
    expires_at: float | None  # unix seconds; None until verified
    state: str  # "pending" | "active" | "unsubscribing" | "denied"

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return (
            f"Subscription(feed={self.feed!r}, hub={self.hub!r}, topic={self.topic!r}, "
            f"callback={self.callback!r}, secret='***', lease_seconds={self.lease_seconds!r}, "
            f"expires_at={self.expires_at!r}, state={self.state!r})"
        )

    def to_mapping(self) -> dict[str, str]:
        """Flat string fields (e.g. for a Redis hash); None is stored as ''."""
        return {
            "feed": self.feed,
            "hub": self.hub,
            "topic": self.topic,
            "callback": self.callback,
            "secret": self.secret,
            "lease_seconds": "" if self.lease_seconds is None else str(self.lease_seconds),
            "expires_at": "" if self.expires_at is None else repr(self.expires_at),
            "state": self.state,
        }

    @classmethod
    def from_mapping(cls, fields: Mapping[str, str]) -> Subscription:
        """Inverse of :meth:`to_mapping`; raises ValueError (or KeyError) on a damaged record."""
        state = fields["state"]
        if state not in STATES:
            raise ValueError(f"unknown subscription state {state!r}")
        lease, expires = fields.get("lease_seconds", ""), fields.get("expires_at", "")
        return cls(
            feed=fields["feed"],
            hub=fields["hub"],
            topic=fields["topic"],
            callback=fields["callback"],
            secret=fields["secret"],
            lease_seconds=int(lease) if lease else None,
            expires_at=float(expires) if expires else None,
            state=state,
        )


def new_secret() -> str:
    """A fresh random secret for ``hub.secret``: 64 hex characters (the spec's limit is 200 bytes)."""
    return secrets.token_hex(32)


def callback_url(public_base: str, feed: str) -> str:
    """Our callback for ``feed``: ``{public_base}/websub/{feed}``; feed names are ``[a-z0-9-]+``."""
    if not _FEED_NAME.fullmatch(feed):
        raise ValueError(f"feed name {feed!r} is not [a-z0-9-]+")
    return f"{public_base.rstrip('/')}/websub/{feed}"


def lease_from(params: Mapping[str, str]) -> int | None:
    """``hub.lease_seconds`` as a positive int; None when absent, empty, or not a positive integer."""
    raw = params.get("hub.lease_seconds")
    if raw is None or not _LEASE.fullmatch(raw.strip()):
        return None
    lease = int(raw)
    return lease if lease > 0 else None


def verify_intent(sub: Subscription | None, params: Mapping[str, str]) -> str | None:
    """The ``hub.challenge`` to echo if this verification request is one we asked for, else None (404).

    Confirmed: ``hub.mode=subscribe`` for a pending or active subscription, and
    ``hub.mode=unsubscribe`` only while we are unsubscribing; ``hub.topic`` must equal our
    topic exactly and the challenge must be non-empty. ``hub.lease_seconds`` (required by the
    spec for subscribe) must be a positive integer when present; when a hub leaves it out the
    lease we asked for stands (see :func:`activated`).
    """
    if sub is None:
        return None
    mode = params.get("hub.mode")
    challenge = params.get("hub.challenge")
    if not challenge or params.get("hub.topic") != sub.topic:
        return None
    if mode == "subscribe":
        if sub.state not in (PENDING, ACTIVE):
            return None
        if "hub.lease_seconds" in params and lease_from(params) is None:
            return None
        return challenge
    if mode == "unsubscribe" and sub.state == UNSUBSCRIBING:
        return challenge
    return None


def activated(sub: Subscription, params: Mapping[str, str], now: float) -> Subscription:
    """``sub`` after an accepted subscribe verification: active, with the hub's lease from ``now``."""
    lease = lease_from(params) or sub.lease_seconds
    return replace(sub, state=ACTIVE, lease_seconds=lease, expires_at=None if lease is None else now + lease)


def needs_renewal(sub: Subscription, now: float, margin: float = 0.1) -> bool:
    """True when the subscription should be (re)requested now.

    Active or pending: when less than ``max(60 s, margin * lease)`` of the lease remains, or no
    expiry is known yet (never verified). Unsubscribing and denied: never (the caller decides).
    A pending subscription with no expiry is always due: throttle repeated attempts outside.
    """
    if sub.state not in (ACTIVE, PENDING):
        return False
    if sub.expires_at is None:
        return True
    lease = sub.lease_seconds or 0
    return sub.expires_at - now < max(MIN_RENEWAL_MARGIN, margin * lease)


def is_live(sub: Subscription | None, now: float) -> bool:
    """True while pushes are expected: active and not expired (the poller may then slow down)."""
    return sub is not None and sub.state == ACTIVE and sub.expires_at is not None and sub.expires_at > now
