"""The HTTP client: the only module of breaking-alerts that imports aiohttp's client.

Every request goes through :func:`get_one`, :func:`get_many`, :func:`post_each`/:func:`post_many`
(webhook deliveries) or :func:`post_form` (WebSub hubs). Every aiohttp or OS failure leaves as
:class:`~alerts.errors.FetchError` (worth retrying) or :class:`~alerts.errors.FeedRejected` (will
not change), or for a webhook POST as a :class:`PostOutcome` that says what went wrong; no aiohttp
type escapes. Only http and https URLs with a host are requested, refused before any I/O.

The calls are synchronous (Celery workers are not async). They share one session on the process's
background loop (:mod:`alerts.ingest.loop`), so polling a feed every second reuses keep-alive
connections instead of paying for a new loop, session and TCP/TLS handshake each time.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from alerts.errors import FeedRejected, FetchError
from alerts.ingest import loop as background

USER_AGENT = "breaking-alerts/0.1 (+https://github.com/breaking-alerts)"
_CHUNK = 64 * 1024
_MANY_CONCURRENCY = 32  # simultaneous requests per get_many call
_POOL_LIMIT = 100  # connections per session
_GRACE = 5.0  # extra seconds a caller waits beyond the request's own total timeout
_POST_TIMEOUT = aiohttp.ClientTimeout(total=15.0, sock_connect=5.0)
_POST_ANSWER_CAP = 64 * 1024  # bytes of a webhook's answer that are read (and ignored)


@dataclass(frozen=True, slots=True)
class Limits:
    """Timeouts (seconds), size cap and identity used for a GET."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # between chunks (sock_read)
    total_timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024  # counted after decompression
    max_redirects: int = 5
    user_agent: str = USER_AGENT


@dataclass(frozen=True, slots=True)
class Response:
    """What a server answered: the body is read only for 2xx answers."""

    url: str  # final URL after redirects, without any user:password
    status: int
    reason: str | None
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    elapsed: float  # seconds

    @property
    def status_line(self) -> str:
        """``HTTP 503 Service Unavailable``."""
        return status_line(self.status, self.reason)


@dataclass(frozen=True, slots=True)
class Post:
    """One HTTP POST to make: where, what, and its headers."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """What became of a :class:`Post`: ``error`` is None when the server answered 2xx."""

    status: int  # 0 when there was no HTTP answer (refused, timed out, reset)
    error: str | None = None
    retry_after: float | None = None  # the server's Retry-After, in seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def check_url(url: str) -> URL:
    """Parse ``url`` and refuse anything but absolute http(s) URLs, before any I/O."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FeedRejected(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme.lower() not in ("http", "https"):
        raise FeedRejected(f"only http and https URLs can be fetched, not {url!r}")
    if not parsed.host:
        raise FeedRejected(f"URL has no host: {url!r}")
    return parsed


def display(url: URL) -> str:
    """The URL for messages, without any user:password."""
    return str(url.with_user(None)) if url.user or url.password else str(url)


def status_line(status: int, reason: str | None) -> str:
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _new_session() -> aiohttp.ClientSession:
    """The session: pooled keep-alive, no cookies, no proxy from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_POOL_LIMIT, ttl_dns_cache=300),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        read_bufsize=_CHUNK,
        raise_for_status=False,
    )


def _headers(raw: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


_CLIENT_ERRORS = (aiohttp.ClientError, OSError)


def _fetch_error(exc: BaseException, action: str, where: str) -> FetchError:
    """A network failure of a request, told the way a person would (never an aiohttp type)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        if isinstance(err, ConnectionError) and err.errno:
            reason = os.strerror(err.errno)  # "Connection refused", not asyncio's wording
        else:
            reason = err.strerror or str(err) or type(err).__name__
        return FetchError(f"cannot connect to {where}: {reason}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FetchError(f"server disconnected before answering {where}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError(f"incomplete or corrupt body from {where}: {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return FetchError(f"failed to {action} {where}: {exc or type(exc).__name__}")
    assert isinstance(exc, OSError)
    return FetchError(f"failed to {action} {where}: {exc.strerror or exc}")


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int, where: str) -> bytes:
    """Read the (decompressed) body, refusing it as soon as it passes ``max_bytes``."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise FeedRejected(f"body of {where} is {resp.content_length} bytes, over the cap of {max_bytes}")
    body = bytearray()
    async for chunk in resp.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise FeedRejected(f"body of {where} exceeds the cap of {max_bytes} bytes")
    return bytes(body)


async def _get(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], limits: Limits
) -> Response:
    """One GET on ``session``; raises only FetchError or FeedRejected."""
    target = check_url(url)
    where = display(target)
    timeout = aiohttp.ClientTimeout(
        total=limits.total_timeout, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
    )
    # aiohttp refuses once it has seen max_redirects redirect answers (and 0 means no limit),
    # so allow one more to follow exactly ``limits.max_redirects`` hops.
    follow = limits.max_redirects > 0
    started = time.monotonic()
    try:
        async with session.get(
            target,
            headers={"User-Agent": limits.user_agent, **headers},
            timeout=timeout,
            allow_redirects=follow,
            max_redirects=limits.max_redirects + 1,
        ) as resp:
            final, body = display(resp.url), b""
            if 200 <= resp.status < 300:
                try:
                    body = await _read_capped(resp, limits.max_bytes, final)
                except FeedRejected:
                    resp.close()  # drop the connection rather than drain the rest
                    raise
            return Response(
                final, resp.status, resp.reason, _headers(resp.headers), body, time.monotonic() - started
            )
    except aiohttp.TooManyRedirects:
        raise FeedRejected(f"too many redirects (limit {limits.max_redirects}) from {where}") from None
    except (aiohttp.NonHttpUrlRedirectClientError, aiohttp.InvalidUrlRedirectClientError) as exc:
        raise FeedRejected(f"{where} redirected to an unusable URL: {exc}") from None
    except aiohttp.InvalidURL as exc:
        raise FeedRejected(f"invalid URL {where}: {exc}") from None
    except aiohttp.ConnectionTimeoutError:
        raise FetchError(f"timeout after {limits.connect_timeout}s connecting to {where}") from None
    except aiohttp.SocketTimeoutError:
        raise FetchError(f"timeout after {limits.read_timeout}s reading {where}") from None
    except TimeoutError:  # the total timeout (aiohttp raises the plain asyncio one)
        raise FetchError(f"timeout after {limits.total_timeout}s (total) fetching {where}") from None
    except _CLIENT_ERRORS as exc:
        raise _fetch_error(exc, "fetch", where) from None


async def _post(session: aiohttp.ClientSession, post: Post) -> PostOutcome:
    """Make one POST (no redirects followed: a webhook that moved must be reconfigured)."""
    where = str(URL(post.url).origin())  # a webhook's path and query may hold its secret
    try:
        async with session.post(
            post.url, data=post.body, headers=post.headers, timeout=_POST_TIMEOUT, allow_redirects=False
        ) as resp:
            await resp.content.read(_POST_ANSWER_CAP)
            if 200 <= resp.status < 300:
                return PostOutcome(resp.status)
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            return PostOutcome(resp.status, status_line(resp.status, resp.reason), retry_after)
    except TimeoutError:
        return PostOutcome(0, f"no answer from {where} within {_POST_TIMEOUT.total:g}s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return PostOutcome(0, f"could not post to {where}: {type(exc).__name__}: {exc}")


async def _post_form(
    session: aiohttp.ClientSession, url: URL, form: Mapping[str, str], timeout: float, answer_cap: int
) -> tuple[int, str | None, str]:
    """POST a form without following redirects: (status, reason, the answer's first characters)."""
    async with session.post(
        url,
        data=dict(form),
        headers={"User-Agent": USER_AGENT},
        timeout=aiohttp.ClientTimeout(total=timeout),
        allow_redirects=False,
    ) as resp:
        detail = ""
        if not 200 <= resp.status < 300:
            try:
                detail = (await resp.content.read(answer_cap)).decode("utf-8", "replace").strip()
            except (aiohttp.ClientError, TimeoutError):
                detail = ""
        return resp.status, resp.reason, detail


def _session(runner: background.BackgroundLoop) -> aiohttp.ClientSession:
    """The loop's session (made on first use, on the loop thread)."""
    return runner.resource("http", _new_session, aiohttp.ClientSession.close)


def get_one(url: str, headers: Mapping[str, str], limits: Limits = Limits()) -> Response:
    """One GET; raises FetchError or FeedRejected. Safe from any thread, even one running a loop."""
    check_url(url)
    runner = background.current()

    async def get() -> Response:
        return await _get(_session(runner), url, headers, limits)

    return runner.run(get(), limits.total_timeout + _GRACE)


def get_many(
    requests: Sequence[tuple[str, Mapping[str, str]]], limits: Limits = Limits()
) -> list[Response | FetchError | FeedRejected]:
    """Every GET at once (at most 32 at a time): one response or error per request, in order."""
    out: list[Response | FetchError | FeedRejected | None] = [None] * len(requests)
    todo: list[int] = []
    for i, (url, _) in enumerate(requests):
        try:
            check_url(url)
        except FeedRejected as exc:
            out[i] = exc  # refused before any I/O
        else:
            todo.append(i)
    if todo:
        runner = background.current()
        gate = asyncio.Semaphore(_MANY_CONCURRENCY)

        async def one(url: str, headers: Mapping[str, str]) -> Response | FetchError | FeedRejected:
            async with gate:
                try:
                    return await _get(_session(runner), url, headers, limits)
                except (FetchError, FeedRejected) as exc:
                    return exc

        async def every() -> list[Response | FetchError | FeedRejected]:
            return list(await asyncio.gather(*(one(*requests[i]) for i in todo)))

        wait = math.ceil(len(todo) / _MANY_CONCURRENCY) * limits.total_timeout + _GRACE
        for i, result in zip(todo, runner.run(every(), wait), strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def post_each(posts: Sequence[Post]) -> Iterator[list[tuple[int, PostOutcome]]]:
    """Make every POST at once (keep-alive connections, at most 100 at a time); as they end, yield the
    (index, outcome) pairs of those that ended since the last yield (so a caller can record them
    together). Safe to call from any thread."""
    done: queue.SimpleQueue[tuple[int, PostOutcome]] = queue.SimpleQueue()
    todo, refused = [], []
    for i, post in enumerate(posts):
        try:
            check_url(post.url)
        except FeedRejected as exc:
            refused.append((i, PostOutcome(0, str(exc))))
        else:
            todo.append(i)
    if refused:
        yield refused
    if not todo:
        return
    runner = background.current()

    async def every() -> None:
        session = _session(runner)

        async def one(index: int) -> None:
            done.put((index, await _post(session, posts[index])))

        await asyncio.gather(*(one(index) for index in todo))

    future = asyncio.run_coroutine_threadsafe(every(), runner.loop)
    wait = math.ceil(len(todo) / _POOL_LIMIT) * (_POST_TIMEOUT.total or 15.0) + _GRACE
    deadline, left = time.monotonic() + wait, len(todo)
    try:
        while left:
            ended = [done.get(timeout=max(0.0, deadline - time.monotonic()))]
            while len(ended) < left and not done.empty():
                ended.append(done.get_nowait())
            left -= len(ended)
            yield ended
    except queue.Empty:
        raise FetchError(f"no answer from the HTTP loop within {wait:g}s") from None
    finally:
        future.cancel()


def post_many(posts: Sequence[Post]) -> list[PostOutcome]:
    """:func:`post_each`, collected: one outcome per post, in order."""
    outcomes: dict[int, PostOutcome] = {i: outcome for ended in post_each(posts) for i, outcome in ended}
    return [outcomes[i] for i in range(len(posts))]


def post_form(
    url: str, form: Mapping[str, str], timeout: float, answer_cap: int = 200
) -> tuple[int, str | None, str]:
    """POST a form without following redirects (a WebSub hub request): (status, reason, the first
    characters of the answer when it is not 2xx). Raises FetchError for a timeout or network error."""
    target = check_url(url)
    where = display(target)
    runner = background.current()

    async def post() -> tuple[int, str | None, str]:
        try:
            return await _post_form(_session(runner), target, form, timeout, answer_cap)
        except TimeoutError:
            raise FetchError(f"timeout after {timeout:g}s posting to {where}") from None
        except _CLIENT_ERRORS as exc:
            raise _fetch_error(exc, "post to", where) from None

    return runner.run(post(), timeout + _GRACE)
