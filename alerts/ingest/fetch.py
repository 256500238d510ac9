"""The HTTP client: fetching feeds (conditional GET, size cap, timeouts, clear errors), and posting
webhook deliveries (:func:`post_many`).

This is the only module of breaking-alerts that imports aiohttp (client side). Every
aiohttp or OS failure leaves it as :class:`~alerts.errors.FetchError` (worth retrying) or
:class:`~alerts.errors.FeedRejected` (will not change), or for a post as a :class:`PostOutcome`
that says what went wrong; no aiohttp type escapes.

Two ways in:

* :class:`Fetcher` for async code: one ``aiohttp.ClientSession`` per instance.
* :func:`fetch_one` / :func:`fetch_many` for synchronous callers (Celery prefork workers).
  They share, per process, one daemon thread running one event loop that owns one
  session, so polling a feed every second reuses keep-alive connections instead of paying
  for a new loop, session and TCP/TLS handshake on each call. Coroutines are handed over
  with :func:`asyncio.run_coroutine_threadsafe`. The thread is started lazily on first use
  and is created afresh in a forked child (``os.register_at_fork`` plus an ``os.getpid()``
  check): the parent's loop, session and sockets are abandoned in the child, never closed
  there, because closing inherited TLS connections would write to sockets the parent still
  uses. :func:`shutdown` (also registered with :mod:`atexit`) closes it cleanly.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import math
import os
import queue
import re
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from yarl import URL

from alerts.errors import FeedRejected, FetchError

__all__ = [
    "FetchLimits",
    "FetchResult",
    "Fetcher",
    "HttpStatusError",
    "Post",
    "PostOutcome",
    "Validators",
    "fetch_many",
    "fetch_one",
    "post_each",
    "post_many",
    "shutdown",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_ENCODING = "gzip, deflate"

_CHUNK = 64 * 1024
_MANY_CONCURRENCY = 32  # simultaneous requests per fetch_many call
_POOL_LIMIT = 100  # connections per session
_GRACE = 5.0  # extra seconds a sync caller waits beyond the fetch's own total timeout
_RETRY_STATUSES = frozenset({408, 429})

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Timeouts (seconds), size cap and identity used for every request."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # between chunks (sock_read)
    total_timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024  # counted after decompression
    max_redirects: int = 5
    user_agent: str = "breaking-alerts/0.1 (+https://github.com/breaking-alerts)"


@dataclass(frozen=True, slots=True)
class Validators:
    """Conditional GET state kept between polls of one feed."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one successful (200-class or 304) fetch returned."""

    url: str  # final URL after redirects
    status: int
    body: bytes  # b"" when not modified
    content_type: str | None  # raw Content-Type header, parameters included
    validators: Validators  # to store for the next poll (kept when a 304 omits them)
    not_modified: bool
    elapsed: float  # seconds
    max_age: float | None = None  # Cache-Control: max-age, seconds: do not poll again sooner
    link: str | None = None  # the Link header (WebSub hub discovery)


class HttpStatusError(FetchError):
    """A retryable HTTP status (5xx, 429, 408); ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, status: int, url: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status, self.url, self.retry_after))


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


POST_TIMEOUT = aiohttp.ClientTimeout(total=15.0, sock_connect=5.0)
_POST_ANSWER_CAP = 64 * 1024  # bytes of a webhook's answer that are read (and ignored)


# --------------------------------------------------------------------------- core


def _display(url: URL) -> str:
    """The URL for messages, without any user:password."""
    return str(url.with_user(None)) if url.user or url.password else str(url)


def _check_url(url: str) -> URL:
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


def _parse_retry_after(value: str | None) -> float | None:
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


def _status_line(status: int, reason: str | None) -> str:
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def _max_age(cache_control: str | None) -> float | None:
    """Seconds from ``Cache-Control: max-age=N`` (None without one; no-cache/no-store mean 0)."""
    if not cache_control:
        return None
    if re.search(r"\bno-(?:cache|store)\b", cache_control, re.IGNORECASE):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _request_headers(limits: FetchLimits, validators: Validators) -> dict[str, str]:
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _new_session() -> aiohttp.ClientSession:
    """A session for feeds: pooled keep-alive, no cookies, no proxy from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_POOL_LIMIT, ttl_dns_cache=300),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        read_bufsize=_CHUNK,
        raise_for_status=False,
    )


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


async def _fetch(
    session: aiohttp.ClientSession, url: str, validators: Validators, limits: FetchLimits
) -> FetchResult:
    """One conditional GET on ``session``; raises only FetchError or FeedRejected."""
    target = _check_url(url)
    where = _display(target)
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
            headers=_request_headers(limits, validators),
            timeout=timeout,
            allow_redirects=follow,
            max_redirects=limits.max_redirects + 1,
        ) as resp:
            final = _display(resp.url)
            status = resp.status
            if status == 304:
                return FetchResult(
                    url=final,
                    status=status,
                    body=b"",
                    content_type=resp.headers.get("Content-Type"),
                    validators=Validators(
                        etag=resp.headers.get("ETag") or validators.etag,
                        last_modified=resp.headers.get("Last-Modified") or validators.last_modified,
                    ),
                    not_modified=True,
                    elapsed=time.monotonic() - started,
                    max_age=_max_age(resp.headers.get("Cache-Control")),
                    link=", ".join(resp.headers.getall("Link", [])) or None,
                )
            if status >= 500 or status in _RETRY_STATUSES:
                retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
                hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
                raise HttpStatusError(
                    f"{_status_line(status, resp.reason)} from {final}{hint}",
                    status=status,
                    url=final,
                    retry_after=retry_after,
                )
            if 300 <= status < 400 and resp.headers.get("Location") and not follow:
                raise FeedRejected(f"too many redirects (limit {limits.max_redirects}) from {where}")
            if not 200 <= status < 300:
                raise FeedRejected(f"{_status_line(status, resp.reason)} from {final}")
            try:
                body = await _read_capped(resp, limits.max_bytes, final)
            except FeedRejected:
                resp.close()  # drop the connection rather than drain the rest
                raise
            return FetchResult(
                url=final,
                status=status,
                body=body,
                content_type=resp.headers.get("Content-Type"),
                validators=Validators(
                    etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified")
                ),
                not_modified=False,
                elapsed=time.monotonic() - started,
                max_age=_max_age(resp.headers.get("Cache-Control")),
                link=", ".join(resp.headers.getall("Link", [])) or None,
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
    except aiohttp.ClientConnectorError as exc:
        err = exc.os_error
        if isinstance(err, ConnectionError) and err.errno:
            reason = os.strerror(err.errno)  # "Connection refused", not asyncio's wording
        else:
            reason = err.strerror or str(err) or type(err).__name__
        raise FetchError(f"cannot connect to {where}: {reason}") from None
    except aiohttp.ServerDisconnectedError:
        raise FetchError(f"server disconnected before answering {where}") from None
    except aiohttp.ClientPayloadError as exc:
        raise FetchError(f"incomplete or corrupt body from {where}: {exc}") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"failed to fetch {where}: {exc or type(exc).__name__}") from None
    except OSError as exc:
        raise FetchError(f"failed to fetch {where}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- async API


class Fetcher:
    """Owns one aiohttp ClientSession (connection pooling, keep-alive).

    The session is created on the first :meth:`fetch`, inside the running loop, and every
    later call must come from that same loop. Use ``async with Fetcher() as f`` or call
    :meth:`close`.
    """

    def __init__(self, limits: FetchLimits = FetchLimits()) -> None:
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str, validators: Validators = Validators()) -> FetchResult:
        """GET ``url`` conditionally; raises FetchError (retry later) or FeedRejected (drop)."""
        if self._session is None or self._session.closed:
            _check_url(url)  # refuse bad URLs before creating anything
            self._session = _new_session()
        return await _fetch(self._session, url, validators, self.limits)

    async def close(self) -> None:
        """Close the session and its pooled connections; the Fetcher may be used again."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _post(session: aiohttp.ClientSession, post: Post) -> PostOutcome:
    """Make one POST (no redirects followed: a webhook that moved must be reconfigured)."""
    where = str(URL(post.url).origin())  # a webhook's path and query may hold its secret
    try:
        async with session.post(
            post.url, data=post.body, headers=post.headers, timeout=POST_TIMEOUT, allow_redirects=False
        ) as resp:
            await resp.content.read(_POST_ANSWER_CAP)
            if 200 <= resp.status < 300:
                return PostOutcome(resp.status)
            retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
            return PostOutcome(resp.status, f"{_status_line(resp.status, resp.reason)}", retry_after)
    except TimeoutError:
        return PostOutcome(0, f"no answer from {where} within {POST_TIMEOUT.total:g}s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return PostOutcome(0, f"could not post to {where}: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- sync API


class _LoopThread:
    """A daemon thread running one event loop that owns one session, for one process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession | None = None  # only touched on the loop thread
        self.thread = threading.Thread(target=self._run, name="alerts-fetch-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def usable(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    async def fetch(self, url: str, validators: Validators, limits: FetchLimits) -> FetchResult:
        if self.session is None or self.session.closed:
            self.session = _new_session()
        return await _fetch(self.session, url, validators, limits)

    async def fetch_all(
        self, items: Sequence[tuple[str, Validators]], limits: FetchLimits
    ) -> list[FetchResult | FetchError | FeedRejected]:
        gate = asyncio.Semaphore(_MANY_CONCURRENCY)

        async def one(url: str, validators: Validators) -> FetchResult | FetchError | FeedRejected:
            async with gate:
                try:
                    return await self.fetch(url, validators, limits)
                except (FetchError, FeedRejected) as exc:
                    return exc

        return list(await asyncio.gather(*(one(u, v) for u, v in items)))

    async def post_all(
        self, posts: Sequence[tuple[int, Post]], done: queue.SimpleQueue[tuple[int, PostOutcome]]
    ) -> None:
        if self.session is None or self.session.closed:
            self.session = _new_session()
        session = self.session

        async def one(index: int, post: Post) -> None:
            done.put((index, await _post(session, post)))

        await asyncio.gather(*(one(index, post) for index, post in posts))

    def run(self, coro: Coroutine[Any, Any, _T], wait: float) -> _T:
        """Run ``coro`` on the loop thread and wait at most ``wait`` seconds for it."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("the synchronous fetch helpers cannot be called from the fetch loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FetchError(f"no answer from the fetch loop within {wait:g}s") from None
        except BaseException:
            future.cancel()
            raise

    async def _aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        await self.loop.shutdown_default_executor()

    def close(self, wait: float = 10.0) -> None:
        """Close the session, stop the loop and join the thread (owner process only)."""
        if self.usable():
            try:
                asyncio.run_coroutine_threadsafe(self._aclose(), self.loop).result(wait)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(wait)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


_runner: _LoopThread | None = None
_runner_lock = threading.Lock()
_abandoned: list[_LoopThread] = []  # inherited across fork: kept referenced, never closed


def _get_runner() -> _LoopThread:
    global _runner
    runner = _runner
    if runner is not None and runner.usable():
        return runner
    with _runner_lock:
        runner = _runner
        if runner is None or not runner.usable():
            if runner is not None:
                _abandoned.append(runner)
            runner = _runner = _LoopThread()
        return runner


def _after_fork_in_child() -> None:
    global _runner, _runner_lock
    _runner_lock = threading.Lock()
    if _runner is not None:
        _abandoned.append(_runner)
        _runner = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown() -> None:
    """Close this process's background loop and session; a later sync call starts a new one."""
    global _runner
    with _runner_lock:
        runner, _runner = _runner, None
    if runner is not None and runner.pid == os.getpid():
        runner.close()


atexit.register(shutdown)


def fetch_one(
    url: str, validators: Validators = Validators(), limits: FetchLimits = FetchLimits()
) -> FetchResult:
    """Synchronous single fetch; raises FetchError/FeedRejected.

    Runs on the per-process background loop (see the module docstring); safe to call from
    any thread, including one that runs its own event loop.
    """
    _check_url(url)
    runner = _get_runner()
    return runner.run(runner.fetch(url, validators, limits), limits.total_timeout + _GRACE)


def fetch_many(
    urls_and_validators: Sequence[tuple[str, Validators]], limits: FetchLimits = FetchLimits()
) -> list[FetchResult | FetchError | FeedRejected]:
    """Synchronous helper for callers that are not async (Celery tasks): runs all fetches
    concurrently on a private event loop and returns one result or error per input, in order.

    The "private" loop is the per-process background loop; at most 32 requests run at once.
    """
    items = list(urls_and_validators)
    out: list[FetchResult | FetchError | FeedRejected | None] = [None] * len(items)
    todo: list[int] = []
    for i, (url, _) in enumerate(items):
        try:
            _check_url(url)
        except FeedRejected as exc:
            out[i] = exc  # refused before any I/O
        else:
            todo.append(i)
    if todo:
        runner = _get_runner()
        wait = math.ceil(len(todo) / _MANY_CONCURRENCY) * limits.total_timeout + _GRACE
        done = runner.run(runner.fetch_all([items[i] for i in todo], limits), wait)
        for i, result in zip(todo, done, strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def post_each(posts: Sequence[Post]) -> Iterator[list[tuple[int, PostOutcome]]]:
    """Make every POST concurrently on the per-process background loop (keep-alive connections,
    at most 100 at once); as they end, yield the (index, outcome) pairs of those that ended since
    the last yield (so a caller can record them together). Safe to call from any thread."""
    done: queue.SimpleQueue[tuple[int, PostOutcome]] = queue.SimpleQueue()
    todo, refused = [], []
    for i, post in enumerate(posts):
        try:
            _check_url(post.url)
        except FeedRejected as exc:
            refused.append((i, PostOutcome(0, str(exc))))
        else:
            todo.append(i)
    if refused:
        yield refused
    if not todo:
        return
    runner = _get_runner()
    future = asyncio.run_coroutine_threadsafe(
        runner.post_all([(i, posts[i]) for i in todo], done), runner.loop
    )
    wait = math.ceil(len(todo) / _POOL_LIMIT) * (POST_TIMEOUT.total or 15.0) + _GRACE
    deadline, left = time.monotonic() + wait, len(todo)
    try:
        while left:
            ended = [done.get(timeout=max(0.0, deadline - time.monotonic()))]
            while len(ended) < left and not done.empty():
                ended.append(done.get_nowait())
            left -= len(ended)
            yield ended
    except queue.Empty:
        raise FetchError(f"no answer from the fetch loop within {wait:g}s") from None
    finally:
        future.cancel()


def post_many(posts: Sequence[Post]) -> list[PostOutcome]:
    """:func:`post_each`, collected: one outcome per post, in order."""
    outcomes: dict[int, PostOutcome] = {i: outcome for ended in post_each(posts) for i, outcome in ended}
    return [outcomes[i] for i in range(len(posts))]
