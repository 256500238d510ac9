"""Subscription state and the subscriber's rules (W3C WebSub §5): pure, no I/O.

Every request we make to a hub carries a callback of its own, ``{base}/websub/{feed}/{token}``,
``token`` fresh from :func:`secrets.token_urlsafe` (:func:`new_token`), and is remembered as a
:class:`PendingRequest` (in Redis, for an hour) until the hub verifies or denies it. A verification
of intent (``GET`` on the callback) is confirmed only when it names a pending request of ours
(feed and token) of the same mode and topic; ``hub.mode=denied`` only when it names a pending
request too. Whoever knows the public feed URL therefore cannot activate, extend, cancel or deny
anything: they do not know the token. A confirmed request is consumed (a replay is refused).

Life of a subscription, one per feed:

* ``pending``: we asked the hub and wait for its verification of intent.
* ``active``: the hub verified it; ``expires_at`` = verification time + the hub's lease, capped at
  :data:`MAX_LEASE` (10 days) so the lease is always renewed. Renewals are new requests (a new
  token, the same secret) asked for while ``active``, which stays ``active``: content keeps
  flowing on the old token's callback until the hub verifies the new one; pushes on an older
  token are then answered 410 Gone (the spec lets the hub drop that subscription).
* ``unsubscribing``: we asked the hub to unsubscribe (same callback as the subscription).
* ``denied``: the hub refused or cancelled a request of ours (``hub.mode=denied``); never renewed.

A subscription record without a token (made before callbacks carried one) is not live and is
renewed at once; so is one whose expiry lies beyond the cap.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "MAX_LEASE",
    "STATES",
    "PendingRequest",
    "Subscription",
    "accepts_content",
    "activated",
    "callback_base",
    "callback_url",
    "denial_problem",
    "denied",
    "hub_problem",
    "is_live",
    "is_token",
    "lease_from",
    "needs_renewal",
    "new_secret",
    "new_token",
    "renewal",
    "unsubscription",
    "verification_problem",
    "verify_intent",
]

PENDING: Final = "pending"
ACTIVE: Final = "active"
UNSUBSCRIBING: Final = "unsubscribing"
DENIED: Final = "denied"
STATES = frozenset({PENDING, ACTIVE, UNSUBSCRIBING, DENIED})
MODES = frozenset({"subscribe", "unsubscribe"})

MIN_RENEWAL_MARGIN = 60.0  # seconds
MAX_LEASE: Final = 10 * 86400  # a longer lease granted by a hub is recorded as this
DEFAULT_LEASE: Final = 86400  # asked when nothing else is known
TOKEN_BYTES = 24  # secrets.token_urlsafe(24): 32 characters
TOKEN_PATTERN = r"[A-Za-z0-9_-]{16,128}"
_FEED_NAME = re.compile(r"[a-z0-9-]+")
_TOKEN = re.compile(TOKEN_PATTERN)
_LEASE = re.compile(r"[0-9]{1,30}")  # more digits than any lease; capped below


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed's subscription at one hub. ``secret`` signs pushed content; never log it.

    ``token`` is the one in ``callback``: pushes are accepted on that callback only.
    ``allow_insecure_hub`` is the feed's setting when last seen (renewals through a plain-http hub
    need it)."""

    feed: str
    hub: str
    topic: str
    callback: str
    secret: str
    lease_seconds: int | None  # asked for while pending; granted by the hub (capped) once active
    expires_at: float | None  # unix seconds; None until verified
    state: str  # "pending" | "active" | "unsubscribing" | "denied"
    token: str = ""
    allow_insecure_hub: bool = False

    def __repr__(self) -> str:  # keep the secret and the token out of tracebacks and logs
        return (
            f"Subscription(feed={self.feed!r}, hub={self.hub!r}, topic={self.topic!r}, "
            f"callback='***', secret='***', lease_seconds={self.lease_seconds!r}, "
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
            "token": self.token,
            "allow_insecure_hub": "1" if self.allow_insecure_hub else "",
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
            token=fields.get("token", ""),
            allow_insecure_hub=bool(fields.get("allow_insecure_hub")),
        )


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A (un)subscription we asked a hub for, waiting for its verification: the callback's token,
    and what the subscription will be once the hub confirms it."""

    feed: str
    token: str
    mode: str  # "subscribe" | "unsubscribe"
    hub: str
    topic: str
    callback: str
    secret: str  # the subscription's secret ('' for an unsubscription)
    lease_seconds: int | None  # the lease asked for
    allow_insecure_hub: bool = False

    def __repr__(self) -> str:
        return (
            f"PendingRequest(feed={self.feed!r}, mode={self.mode!r}, hub={self.hub!r}, "
            f"topic={self.topic!r}, token='***', secret='***', lease_seconds={self.lease_seconds!r})"
        )

    def to_mapping(self) -> dict[str, str]:
        """Flat string fields (e.g. for a Redis hash)."""
        return {
            "feed": self.feed,
            "token": self.token,
            "mode": self.mode,
            "hub": self.hub,
            "topic": self.topic,
            "callback": self.callback,
            "secret": self.secret,
            "lease_seconds": "" if self.lease_seconds is None else str(self.lease_seconds),
            "allow_insecure_hub": "1" if self.allow_insecure_hub else "",
        }

    @classmethod
    def from_mapping(cls, fields: Mapping[str, str]) -> PendingRequest:
        """Inverse of :meth:`to_mapping`; raises ValueError (or KeyError) on a damaged record."""
        mode = fields["mode"]
        if mode not in MODES:
            raise ValueError(f"unknown request mode {mode!r}")
        lease = fields.get("lease_seconds", "")
        return cls(
            feed=fields["feed"],
            token=fields["token"],
            mode=mode,
            hub=fields["hub"],
            topic=fields["topic"],
            callback=fields["callback"],
            secret=fields.get("secret", ""),
            lease_seconds=int(lease) if lease else None,
            allow_insecure_hub=bool(fields.get("allow_insecure_hub")),
        )

    def subscription(self, state: str = PENDING) -> Subscription:
        """The subscription this request asks for, in ``state`` (not yet verified)."""
        return Subscription(
            feed=self.feed,
            hub=self.hub,
            topic=self.topic,
            callback=self.callback,
            secret=self.secret,
            lease_seconds=self.lease_seconds,
            expires_at=None,
            state=state,
            token=self.token,
            allow_insecure_hub=self.allow_insecure_hub,
        )


def new_secret() -> str:
    """A fresh random secret for ``hub.secret``: 64 hex characters (the spec's limit is 200 bytes)."""
    return secrets.token_hex(32)


def new_token() -> str:
    """A fresh random callback token: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: str) -> bool:
    """True if ``value`` has the shape of a callback token."""
    return bool(_TOKEN.fullmatch(value))


def callback_url(public_base: str, feed: str, token: str) -> str:
    """Our callback for one request of ``feed``: ``{public_base}/websub/{feed}/{token}``."""
    if not _FEED_NAME.fullmatch(feed):
        raise ValueError(f"feed name {feed!r} is not [a-z0-9-]+")
    if not is_token(token):
        raise ValueError("callback token must be 16-128 URL-safe characters")
    return f"{public_base.rstrip('/')}/websub/{feed}/{token}"


def callback_base(callback: str, feed: str) -> str | None:
    """The public base URL a callback of ours for ``feed`` was made from (a tokenless callback of
    older versions too), or None if ``callback`` is not one of ours."""
    head, sep, tail = callback.rpartition(f"/websub/{feed}/")
    if sep and is_token(tail):
        return head
    legacy = f"/websub/{feed}"
    return callback[: -len(legacy)] if callback.endswith(legacy) else None


def lease_from(params: Mapping[str, str]) -> int | None:
    """``hub.lease_seconds`` as a positive int, at most :data:`MAX_LEASE`; None when absent, empty,
    or not a positive decimal integer (negative, fractional, exponent, zero, garbage)."""
    raw = params.get("hub.lease_seconds")
    if raw is None or not _LEASE.fullmatch(raw.strip()):
        return None
    lease = int(raw.strip())
    return min(lease, MAX_LEASE) if lease > 0 else None


def _cap(lease: int | None) -> int | None:
    return None if lease is None else max(1, min(lease, MAX_LEASE))


def verification_problem(request: PendingRequest | None, params: Mapping[str, str]) -> str | None:
    """Why this verification of intent is refused (404), or None when it confirms ``request``.

    Confirmed: a ``hub.mode`` equal to the request's (subscribe or unsubscribe), ``hub.topic``
    equal to its topic exactly, a non-empty ``hub.challenge``, and for a subscribe a
    ``hub.lease_seconds`` that is a positive integer when present (one above :data:`MAX_LEASE` is
    taken as the cap; when a hub leaves it out the lease we asked for stands).
    """
    if request is None:
        return "no pending request"
    mode = params.get("hub.mode")
    if mode not in MODES:
        return "unknown mode"
    if mode != request.mode:
        return "mode not requested"
    if params.get("hub.topic") != request.topic:
        return "wrong topic"
    if not params.get("hub.challenge"):
        return "no challenge"
    if mode == "subscribe" and "hub.lease_seconds" in params and lease_from(params) is None:
        return "bad lease"
    return None


def verify_intent(request: PendingRequest | None, params: Mapping[str, str]) -> str | None:
    """The ``hub.challenge`` to echo if this verification confirms ``request``, else None (404)."""
    if verification_problem(request, params) is not None:
        return None
    return params.get("hub.challenge")


def activated(request: PendingRequest, params: Mapping[str, str], now: float) -> Subscription:
    """The subscription after a confirmed subscribe of ``request``: active on its token's callback,
    with the hub's lease (capped; else the one asked for) from ``now``."""
    lease = lease_from(params) or _cap(request.lease_seconds)
    return replace(
        request.subscription(ACTIVE),
        lease_seconds=lease,
        expires_at=None if lease is None else now + lease,
    )


def denial_problem(request: PendingRequest | None, params: Mapping[str, str]) -> str | None:
    """Why a ``hub.mode=denied`` is ignored (404), or None when it names our pending subscribe
    ``request`` and its topic."""
    if request is None:
        return "no pending request"
    if request.mode != "subscribe":
        return "mode not requested"
    if params.get("hub.topic") != request.topic:
        return "wrong topic"
    return None


def denied(current: Subscription | None, request: PendingRequest) -> Subscription:
    """The feed's subscription once the hub denied ``request``: denied, no expiry (not renewed)."""
    base = current if current is not None else request.subscription()
    return replace(base, state=DENIED, expires_at=None)


def renewal(sub: Subscription, token: str, public_base: str | None = None) -> PendingRequest:
    """A new subscribe request renewing ``sub``: a new token (callback), the same hub, topic and
    secret, its lease (capped) asked again. ``public_base`` defaults to the one of its callback."""
    base = public_base or callback_base(sub.callback, sub.feed)
    if base is None:
        raise ValueError(f"cannot renew {sub.feed!r}: its callback is not one of ours")
    return PendingRequest(
        feed=sub.feed,
        token=token,
        mode="subscribe",
        hub=sub.hub,
        topic=sub.topic,
        callback=callback_url(base, sub.feed, token),
        secret=sub.secret,
        lease_seconds=_cap(sub.lease_seconds) or DEFAULT_LEASE,
        allow_insecure_hub=sub.allow_insecure_hub,
    )


def unsubscription(sub: Subscription) -> PendingRequest:
    """The unsubscribe request for ``sub`` (the spec: same callback, hence same token)."""
    return PendingRequest(
        feed=sub.feed,
        token=sub.token,
        mode="unsubscribe",
        hub=sub.hub,
        topic=sub.topic,
        callback=sub.callback,
        secret="",
        lease_seconds=None,
        allow_insecure_hub=sub.allow_insecure_hub,
    )


def hub_problem(hub_url: str, allow_insecure: bool) -> str | None:
    """Why we must not subscribe through ``hub_url`` (None: fine): a plain-http hub would get
    ``hub.secret`` in the clear, unless the feed says ``allow_insecure_hub: true``."""
    try:
        scheme = urlsplit(hub_url).scheme.lower()
    except ValueError:
        return "unusable hub URL"
    if scheme == "https":
        return None
    if scheme == "http":
        return None if allow_insecure else "plain-http hub: hub.secret would travel in the clear"
    return "hub URL is not http(s)"


def accepts_content(sub: Subscription | None, token: str) -> bool:
    """True if content pushed on the callback with ``token`` belongs to ``sub`` (its current token;
    active, or unsubscribing and not yet confirmed)."""
    if sub is None or not sub.token or sub.state not in (ACTIVE, UNSUBSCRIBING):
        return False
    return hmac.compare_digest(sub.token.encode(), token.encode())


def needs_renewal(sub: Subscription, now: float, margin: float = 0.1) -> bool:
    """True when the subscription should be (re)requested now.

    Active or pending: when less than ``max(60 s, margin * lease)`` of the lease remains, or no
    expiry is known yet (never verified), or the record predates callback tokens, or its expiry
    lies beyond the lease cap. Unsubscribing and denied: never (the caller decides).
    A pending subscription with no expiry is always due: throttle repeated attempts outside.
    """
    if sub.state not in (ACTIVE, PENDING):
        return False
    if sub.expires_at is None or not sub.token or sub.expires_at - now > MAX_LEASE:
        return True
    lease = sub.lease_seconds or 0
    return sub.expires_at - now < max(MIN_RENEWAL_MARGIN, margin * lease)


def is_live(sub: Subscription | None, now: float) -> bool:
    """True while pushes are expected: active on a tokened callback and not expired (the poller may
    then slow down)."""
    return (
        sub is not None
        and sub.state == ACTIVE
        and bool(sub.token)
        and sub.expires_at is not None
        and now < sub.expires_at <= now + MAX_LEASE
    )
