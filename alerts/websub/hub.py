"""Ask a WebSub hub to subscribe or unsubscribe (W3C WebSub §5.1): the one aiohttp client call here.

The hub answers the request itself with 202 Accepted (any 2xx is success) and verifies our
intent later, asynchronously, with a GET on the callback (see :mod:`alerts.websub.server`).
Every failure leaves as :class:`HubError` (a :class:`~alerts.errors.FetchError`: retry later);
an unusable hub URL as :class:`~alerts.errors.FeedRejected`. The secret never appears in an
error message.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from alerts.errors import FeedRejected, FetchError
from alerts.ingest import fetch

__all__ = ["HubError", "request_subscription", "subscribe_sync"]

MODES = frozenset({"subscribe", "unsubscribe"})
MAX_SECRET_BYTES = 199  # the spec: "MUST be less than 200 bytes"
_GRACE = 5.0  # extra seconds subscribe_sync waits beyond the request's own timeout
_REASON_CHARS = 200


class HubError(FetchError):
    """The hub could not be reached or did not accept the request; ``status`` is its HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.status))


def _form(
    mode: str, topic: str, callback: str, secret: str | None, lease_seconds: int | None
) -> dict[str, str]:
    if mode not in MODES:
        raise ValueError(f"hub.mode must be one of {sorted(MODES)}, not {mode!r}")
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if mode == "subscribe":
        if secret:
            if len(secret.encode("utf-8")) > MAX_SECRET_BYTES:
                raise ValueError("hub.secret must be less than 200 bytes")
            form["hub.secret"] = secret
        if lease_seconds is not None:
            if lease_seconds <= 0:
                raise ValueError("hub.lease_seconds must be positive")
            form["hub.lease_seconds"] = str(lease_seconds)
    return form


def _hub_url(hub_url: str) -> URL:
    try:
        url = URL(hub_url)
    except (TypeError, ValueError):
        raise FeedRejected(f"invalid hub URL {hub_url!r}") from None
    if url.scheme.lower() not in ("http", "https") or not url.host:
        raise FeedRejected(f"hub URL must be absolute http(s): {hub_url!r}")
    return url


async def request_subscription(
    session: aiohttp.ClientSession | None,
    hub_url: str,
    topic: str,
    callback: str,
    secret: str | None,
    mode: str = "subscribe",
    lease_seconds: int | None = 86400,
    timeout: float = 10,
) -> None:
    """POST the (un)subscription form to ``hub_url``; returns when the hub accepted it (2xx).

    ``session`` is used as is (not closed) when given; with None a private session is opened
    and closed around the call. ``hub.secret`` and ``hub.lease_seconds`` are sent only for
    ``mode="subscribe"``. Redirects are not followed (a redirected POST would lose its form).
    Raises :class:`HubError` (FetchError) for a non-2xx answer, a timeout or a network error,
    :class:`~alerts.errors.FeedRejected` for an unusable hub URL and ValueError for bad arguments.
    """
    url = _hub_url(hub_url)
    form = _form(mode, topic, callback, secret, lease_seconds)
    where = str(url.with_user(None)) if url.user or url.password else str(url)
    headers = {"User-Agent": fetch.FetchLimits().user_agent}
    own = session is None
    client = session or aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        async with client.post(
            url,
            data=form,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            if 200 <= resp.status < 300:
                return
            try:
                detail = (await resp.content.read(_REASON_CHARS)).decode("utf-8", "replace").strip()
            except (aiohttp.ClientError, TimeoutError):
                detail = ""
            reason = f"HTTP {resp.status} {resp.reason or ''}".strip()
            raise HubError(
                f"hub {where} refused {mode} of {topic}: {reason}" + (f": {detail}" if detail else ""),
                status=resp.status,
            )
    except TimeoutError:
        raise HubError(f"timeout after {timeout:g}s asking hub {where} to {mode}") from None
    except aiohttp.ClientConnectorError as exc:
        raise HubError(f"cannot connect to hub {where}: {exc.os_error.strerror or exc}") from None
    except aiohttp.ClientError as exc:
        raise HubError(f"request to hub {where} failed: {exc or type(exc).__name__}") from None
    except OSError as exc:
        raise HubError(f"request to hub {where} failed: {exc.strerror or exc}") from None
    finally:
        if own:
            await client.close()


def subscribe_sync(
    hub_url: str,
    topic: str,
    callback: str,
    secret: str | None,
    mode: str = "subscribe",
    lease_seconds: int | None = 86400,
    timeout: float = 10,
) -> None:
    """Blocking :func:`request_subscription` for synchronous callers (Celery tasks).

    Runs on :mod:`alerts.ingest.fetch`'s per-process background event loop (fork-safe, started
    lazily), through its private ``_get_runner().run(coro, wait)``, with a private session
    per call. Safe from any thread except that loop's own; waits at most ``timeout`` + 5 s.
    """
    _hub_url(hub_url)  # refuse before any thread or loop is started
    _form(mode, topic, callback, secret, lease_seconds)
    runner = fetch._get_runner()
    runner.run(
        request_subscription(None, hub_url, topic, callback, secret, mode, lease_seconds, timeout),
        timeout + _GRACE,
    )
