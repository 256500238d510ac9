"""The WebSub callback server (W3C WebSub §5.3, §7, §8): an aiohttp.web application factory.

Routes (``{feed}`` is a feed name, ``[a-z0-9-]+``; ``{token}`` the random token of one request of
ours, see :mod:`alerts.websub.protocol`):

* ``GET /websub/{feed}/{token}``: the hub's verification of intent. The ``hub.challenge`` is echoed
  (200, text/plain) only when ``token`` names a pending request of ours for ``feed``, of the same
  mode and topic (:func:`~alerts.websub.protocol.verification_problem`); the request is consumed
  and the subscription becomes active until now + the hub's lease (capped at 10 days), or is
  forgotten after a confirmed unsubscribe. ``hub.mode=denied`` marks the subscription denied,
  likewise only for a pending request. Anything else is 404 and changes nothing, so nobody but
  the hub we asked can subscribe, extend, unsubscribe or deny our callback.
* ``POST /websub/{feed}/{token}``: content distribution, on the token of the feed's active
  subscription only (another token of a known feed: 410 Gone, which lets the hub drop that stale
  subscription; unknown feed: 404). At most ``max_body`` bytes (5 MB) are read (413 beyond);
  the body must carry a valid ``X-Hub-Signature-256`` or ``X-Hub-Signature`` HMAC under the
  subscription's secret. Valid content is handed to ``on_content(feed, body, headers)`` and
  acknowledged 202; content with a bad or missing signature is acknowledged 202 too, as the
  spec requires, but dropped and logged (``websub.rejected``). If ``on_content`` raises, the
  answer is 503 so the hub retries.
* ``GET /healthz``: 200 ``ok``.

Every other request is held to a token bucket per client IP (``rate`` per second, ``burst`` at
once, in this process's memory; see :mod:`alerts.websub.throttle`): beyond it, 429 with
``Retry-After``. A verification may carry at most :data:`MAX_VERIFICATION_BODY` bytes (413);
bodies must arrive within :data:`BODY_TIMEOUT` (408). A malformed request is answered
(400/404/405/413), never a crash; an unexpected failure is logged (``websub.error``) and answered
500, a Redis outage 503. aiohttp's own report of a malformed HTTP message (answered 400 by its
parser) is demoted to debug.

The ``registry`` is a :class:`~alerts.websub.registry.SubscriptionRegistry` (the protocol, and
:class:`~alerts.websub.registry.InMemoryRegistry`, live in :mod:`alerts.websub.registry`; the
Redis one in :mod:`alerts.websub.subscriptions`). Its calls and a plain-function ``on_content``
run in worker threads (a Redis registry or a Celery ``.delay()`` may block); a coroutine-function
``on_content`` runs on the server's loop.
Log events: ``websub.verified``, ``websub.denied``, ``websub.received``, ``websub.rejected``
(plus ``websub.refused`` for an unconfirmed verification or denial, with its ``reason``,
``websub.throttled`` once when a client goes over its rate, and ``websub.failed`` when
``on_content`` raises), each with ``feed`` (and ``hub`` when known); secrets and tokens are
never logged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import http_exceptions, web

from alerts import log as alerts_log
from alerts.errors import StoreUnavailable
from alerts.websub import protocol
from alerts.websub.protocol import PendingRequest
from alerts.websub.registry import InMemoryRegistry, SubscriptionRegistry
from alerts.websub.signature import verify
from alerts.websub.throttle import BURST, RATE, TokenBuckets

# BURST, RATE, TokenBuckets (alerts.websub.throttle) and InMemoryRegistry, SubscriptionRegistry
# (alerts.websub.registry) are re-exported: callers import them from here.
__all__ = [
    "BURST",
    "MAX_BODY",
    "MAX_VERIFICATION_BODY",
    "RATE",
    "InMemoryRegistry",
    "OnContent",
    "SubscriptionRegistry",
    "TokenBuckets",
    "make_app",
]

MAX_BODY = 5 * 1024 * 1024  # a pushed document
MAX_VERIFICATION_BODY = 1024  # a verification has no body
BODY_TIMEOUT = 30.0  # seconds a body may take to arrive
_BODY_PROBLEMS = {413: "too large", 408: "too slow", 400: "unreadable body"}
OnContent = Callable[[str, bytes, Mapping[str, str]], Awaitable[None] | None]


def _log() -> Any:
    """The logger, looked up per use so reconfiguration (and structlog's capture_logs) applies."""
    return alerts_log.get("alerts.websub")


class _QuietMalformed(logging.Filter):
    """Demotes aiohttp's "Error handling request" for a malformed HTTP message (a stranger's garbage,
    answered 400 before any handler runs) from an error with a traceback to one debug line, as
    aiohttp itself does for a bad method: the rate limit cannot reach those, the log must not flood."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            record.msg = f"{record.msg}: {type(exc).__name__}"
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_QUIET = _QuietMalformed()


def make_app(
    registry: SubscriptionRegistry,
    on_content: OnContent,
    *,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY,
    max_verification_body: int = MAX_VERIFICATION_BODY,
    rate: float = RATE,
    burst: int = BURST,
    body_timeout: float = BODY_TIMEOUT,
) -> web.Application:
    """The callback application; serve it behind the public base URL given to ``callback_url``."""
    buckets = TokenBuckets(rate, burst)
    server_log = logging.getLogger("aiohttp.server")
    if _QUIET not in server_log.filters:
        server_log.addFilter(_QUIET)

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != "/healthz":
            client = request.remote or "unknown"
            wait, first = buckets.take(client)
            if wait > 0:
                if first:
                    _log().warning("websub.throttled", client=client, path=_route_of(request))
                return web.Response(
                    status=429,
                    text="too many requests",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except StoreUnavailable as exc:
            _log().warning("websub.unavailable", error=str(exc))
            return web.Response(status=503, text="try again", headers={"Retry-After": "5"})
        except Exception as exc:
            _log().error("websub.error", path=_route_of(request), error=f"{type(exc).__name__}: {exc}")
            return web.Response(status=500, text="error")

    async def body_problem(request: web.Request) -> int | None:
        """None if a verification's body (there should be none) is within its limit, else the
        status to answer: 413 too large, 408 too slow, 400 unreadable."""
        if not request.body_exists:
            return None
        if request.content_length is not None and request.content_length > max_verification_body:
            return 413

        async def read() -> int:
            size = 0
            while size <= max_verification_body:
                chunk = await request.content.readany()
                if not chunk:
                    break
                size += len(chunk)
            return size

        try:
            size = await asyncio.wait_for(read(), body_timeout)
        except TimeoutError:
            return 408
        except web.HTTPException:
            raise
        except Exception:  # a malformed chunked body, a reset connection
            return 400
        return 413 if size > max_verification_body else None

    async def verification(request: web.Request) -> web.Response:
        feed, token = request.match_info["feed"], request.match_info["token"]
        status = await body_problem(request)
        if status is not None:
            _log().warning("websub.refused", feed=feed, reason=_BODY_PROBLEMS[status])
            return web.Response(status=status, text=_BODY_PROBLEMS[status])
        params: dict[str, str] = {}
        for name, value in request.query.items():
            params.setdefault(name, value)  # the first of repeated parameters
        mode = params.get("hub.mode", "")
        pending = await asyncio.to_thread(registry.pending, feed, token)
        if mode == "denied":
            problem = protocol.denial_problem(pending, params)
            if problem is not None or pending is None:
                return _refused(feed, pending, mode, problem or "no pending request")
            current = await asyncio.to_thread(registry.get, feed)
            if not await asyncio.to_thread(registry.settle, pending, protocol.denied(current, pending)):
                return _refused(feed, pending, mode, "request no longer pending")
            _log().warning(
                "websub.denied", feed=feed, hub=pending.hub, reason=params.get("hub.reason", "")[:200]
            )
            return web.Response(text="ok", content_type="text/plain")
        problem = protocol.verification_problem(pending, params)
        if problem is not None or pending is None:
            return _refused(feed, pending, mode, problem or "no pending request")
        challenge = params["hub.challenge"]
        if mode == "subscribe":
            active = protocol.activated(pending, params, clock())
            if not await asyncio.to_thread(registry.settle, pending, active):
                return _refused(feed, pending, mode, "request no longer pending")
            _log().info(
                "websub.verified",
                feed=feed,
                hub=pending.hub,
                mode=mode,
                lease_seconds=active.lease_seconds,
                lease_asked=pending.lease_seconds,
                lease_given=params.get("hub.lease_seconds", "")[:40],
                expires_at=active.expires_at,
            )
        else:
            if not await asyncio.to_thread(registry.settle, pending, None):
                return _refused(feed, pending, mode, "request no longer pending")
            _log().info("websub.verified", feed=feed, hub=pending.hub, mode=mode)
        return web.Response(text=challenge, content_type="text/plain")

    async def content(request: web.Request) -> web.Response:
        started = time.monotonic()
        feed, token = request.match_info["feed"], request.match_info["token"]
        if request.content_length is not None and request.content_length > max_body:
            size = request.content_length
            _log().warning("websub.rejected", feed=feed, reason="too large", size=size)
            return web.Response(status=413, text="too large")
        sub = await asyncio.to_thread(registry.get, feed)
        if sub is None:
            return _not_found()
        if not protocol.accepts_content(sub, token):
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="stale callback")
            return web.Response(status=410, text="gone")
        try:
            body = await asyncio.wait_for(request.read(), body_timeout)
        except web.HTTPRequestEntityTooLarge:
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="too large")
            return web.Response(status=413, text="too large")
        except TimeoutError:
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="body too slow")
            return web.Response(status=408, text="too slow")
        except web.HTTPException:
            raise
        except Exception:  # a malformed chunked body, a reset connection
            _log().warning("websub.rejected", feed=feed, hub=sub.hub, reason="unreadable body")
            return web.Response(status=400, text="unreadable body")
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

    app = web.Application(client_max_size=max_body, middlewares=[guard])
    route = "/websub/{feed:[a-z0-9-]+}/{token:" + protocol.TOKEN_PATTERN + "}"
    app.router.add_get(route, verification, allow_head=False)  # a HEAD must not activate anything
    app.router.add_post(route, content)
    app.router.add_get("/healthz", healthz)
    return app


def _route_of(request: web.Request) -> str:
    """The request's path without the token (tokens are never logged)."""
    feed = request.match_info.get("feed")
    return f"/websub/{feed}/***" if feed else request.path[:100]


def _refused(feed: str, pending: PendingRequest | None, mode: str, reason: str) -> web.Response:
    _log().warning(
        "websub.refused", feed=feed, hub=pending.hub if pending else "", mode=mode[:40], reason=reason
    )
    return _not_found()


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


def serve(registry: SubscriptionRegistry, on_content: OnContent, listen: str, **options: Any) -> None:
    """Serve the callback application on ``listen`` (``host:port``) until interrupted; ``options``
    go to :func:`make_app` (limits)."""
    host, _, port = listen.rpartition(":")
    web.run_app(
        make_app(registry, on_content, **options), host=host, port=int(port), print=None, access_log=None
    )
