"""The WebSub callback server (W3C WebSub §5.3, §7, §8): an aiohttp.web application factory.

Routes (``{feed}`` is a feed name, ``[a-z0-9-]+``):

* ``GET /websub/{feed}``: the hub's verification of intent. The ``hub.challenge`` is echoed
  (200, text/plain) only for a subscription we asked for (:func:`~alerts.websub.protocol.verify_intent`),
  which then becomes active until now + the hub's lease; anything else is 404, so nobody but
  us can subscribe or unsubscribe our callback. ``hub.mode=denied`` marks the subscription denied.
* ``POST /websub/{feed}``: content distribution. At most 10 MB is read (413 beyond); the body
  must carry a valid ``X-Hub-Signature-256`` or ``X-Hub-Signature`` HMAC under the
  subscription's secret. Valid content is handed to ``on_content(feed, body, headers)`` and
  acknowledged 202; content with a bad or missing signature is acknowledged 202 too, as the
  spec requires, but dropped and logged (``websub.rejected``). If ``on_content`` raises, the
  answer is 503 so the hub retries. Unknown feed: 404.
* ``GET /healthz``: 200 ``ok``.

Registry calls and a plain-function ``on_content`` run in worker threads (a Redis registry or a
Celery ``.delay()`` may block); a coroutine-function ``on_content`` runs on the server's loop.
Log events: ``websub.verified``, ``websub.denied``, ``websub.received``, ``websub.rejected``
(plus ``websub.refused`` for an unconfirmed verification and ``websub.failed`` when
``on_content`` raises), each with ``feed`` and ``hub``; the secret is never logged.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from aiohttp import web

from alerts import log as alerts_log
from alerts.websub import protocol
from alerts.websub.protocol import Subscription
from alerts.websub.signature import verify

__all__ = ["MAX_BODY", "InMemoryRegistry", "OnContent", "SubscriptionRegistry", "make_app"]

MAX_BODY = 10 * 1024 * 1024
OnContent = Callable[[str, bytes, Mapping[str, str]], Awaitable[None] | None]


def _log() -> Any:
    """The logger, looked up per use so reconfiguration (and structlog's capture_logs) applies."""
    return alerts_log.get("alerts.websub")


class SubscriptionRegistry(Protocol):
    """Where subscriptions live, one per feed; must be safe to call from several threads."""

    def get(self, feed: str) -> Subscription | None:
        """The subscription of ``feed``, or None."""

    def put(self, sub: Subscription) -> None:
        """Store ``sub`` (replacing the feed's previous one)."""

    def delete(self, feed: str) -> None:
        """Forget the subscription of ``feed`` (after a confirmed unsubscription)."""


class InMemoryRegistry:
    """A :class:`SubscriptionRegistry` in a dict, for tests and single-process use."""

    def __init__(self, subs: Mapping[str, Subscription] | None = None) -> None:
        self._subs: dict[str, Subscription] = dict(subs or {})
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


def make_app(
    registry: SubscriptionRegistry,
    on_content: OnContent,
    *,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY,
) -> web.Application:
    """The callback application; serve it behind the public base URL given to ``callback_url``."""

    async def verification(request: web.Request) -> web.Response:
        feed = request.match_info["feed"]
        params: dict[str, str] = {}
        for name, value in request.query.items():
            params.setdefault(name, value)  # the first of repeated parameters
        sub = await asyncio.to_thread(registry.get, feed)
        if sub is None:
            return _not_found()
        mode = params.get("hub.mode")
        if mode == "denied":
            if params.get("hub.topic") != sub.topic:
                return _not_found()
            if sub.state in (protocol.PENDING, protocol.ACTIVE):
                await asyncio.to_thread(registry.put, replace(sub, state=protocol.DENIED, expires_at=None))
            _log().warning("websub.denied", feed=feed, hub=sub.hub, reason=params.get("hub.reason", ""))
            return web.Response(text="ok", content_type="text/plain")
        challenge = protocol.verify_intent(sub, params)
        if challenge is None:
            _log().warning("websub.refused", feed=feed, hub=sub.hub, mode=mode, state=sub.state)
            return _not_found()
        if mode == "subscribe":
            active = protocol.activated(sub, params, clock())
            await asyncio.to_thread(registry.put, active)
            _log().info(
                "websub.verified",
                feed=feed,
                hub=sub.hub,
                mode=mode,
                lease_seconds=active.lease_seconds,
                expires_at=active.expires_at,
            )
        else:
            await asyncio.to_thread(registry.delete, feed)
            _log().info("websub.verified", feed=feed, hub=sub.hub, mode=mode)
        return web.Response(text=challenge, content_type="text/plain")

    async def content(request: web.Request) -> web.Response:
        started = time.monotonic()
        feed = request.match_info["feed"]
        sub = await asyncio.to_thread(registry.get, feed)
        if sub is None:
            return _not_found()
        if request.content_length is not None and request.content_length > max_body:
            size = request.content_length
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="too large", size=size)
            return web.Response(status=413, text="too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="too large")
            return web.Response(status=413, text="too large")
        problem = _signature_problem(sub.secret.encode("utf-8"), body, request.headers)
        if problem is not None:
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason=problem, size=len(body))
            return web.Response(status=202, text="accepted")
        try:
            await _deliver(on_content, feed, body, request.headers)
        except Exception as exc:
            _log().error("websub.failed", feed=feed, hub=sub.hub, error=f"{type(exc).__name__}: {exc}")
            return web.Response(status=503, text="try again")
        _log().info(
            "websub.received",
            feed=feed,
            hub=sub.hub,
            size=len(body),
            content_type=request.headers.get("Content-Type", ""),
            handed_in_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return web.Response(status=202, text="accepted")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    app = web.Application(client_max_size=max_body)
    route = "/websub/{feed:[a-z0-9-]+}"
    app.router.add_get(route, verification, allow_head=False)  # a HEAD must not activate anything
    app.router.add_post(route, content)
    app.router.add_get("/healthz", healthz)
    return app


def _not_found() -> web.Response:
    return web.Response(status=404, text="not found")


def _signature_problem(secret: bytes, body: bytes, headers: Mapping[str, str]) -> str | None:
    """None if the body is signed with ``secret``, else why not.

    ``X-Hub-Signature-256`` (``sha256=…``) is checked when present, and then alone: a stronger
    signature that fails is not excused by a weaker one. Otherwise ``X-Hub-Signature``
    (``sha1``/``sha256``/``sha384``/``sha512``).
    """
    strong = headers.get("X-Hub-Signature-256")
    if strong is not None:
        if not strong.strip().lower().startswith("sha256="):
            return "garbled X-Hub-Signature-256"
        return None if verify(secret, body, strong) else "bad signature"
    plain = headers.get("X-Hub-Signature")
    if plain is None:
        return "missing signature"
    return None if verify(secret, body, plain) else "bad signature"


async def _deliver(on_content: OnContent, feed: str, body: bytes, headers: Mapping[str, str]) -> None:
    if inspect.iscoroutinefunction(on_content):
        await on_content(feed, body, headers)
        return
    result = await asyncio.to_thread(on_content, feed, body, headers)
    if inspect.isawaitable(result):
        await result


def serve(registry: SubscriptionRegistry, on_content: OnContent, listen: str) -> None:
    """Serve the callback application on ``listen`` (``host:port``) until interrupted."""
    host, _, port = listen.rpartition(":")
    web.run_app(make_app(registry, on_content), host=host, port=int(port), print=None, access_log=None)
