"""The HTTP client: the only module of breaking-alerts that imports aiohttp's client.

Every request goes through :func:`get_one`, :func:`get_many`, :func:`post_each`/:func:`post_many`
(webhook deliveries) or :func:`post_form` (WebSub hubs). Every aiohttp or OS failure leaves as
:class:`~alerts.errors.FetchError` (worth retrying) or :class:`~alerts.errors.FeedRejected` (will
not change), or for a webhook POST as a :class:`PostOutcome` that says what went wrong; no aiohttp
type escapes. Only http and https URLs with a host are requested, refused before any I/O.

Addresses (see :mod:`alerts.ingest.addresses`): a URL from feed content (an item link, a hub) and
every redirect hop of any GET is refused (:class:`~alerts.errors.AddressRefused`, one
``fetch.refused`` log line) when its host is, or resolves to, a loopback, private, link-local, CGNAT,
multicast, reserved or unspecified address. A checked request connects through a session whose
resolver refuses such answers, so aiohttp connects to exactly the addresses that were checked (no
second lookup, no DNS rebinding window); IP literals, which aiohttp does not resolve, are checked
before the request. Redirects are followed here, hop by hop (at most ``Limits.max_redirects``),
each hop's scheme and address checked; POSTs never follow them. URLs the admin wrote are requested
as written (:attr:`AddressPolicy.trusted_url`); :func:`allow_private_addresses` (the deployment's
``ALERTS_ALLOW_PRIVATE_ADDRESSES``) or a feed's ``allow_private`` lifts the rule.

The calls are synchronous (Celery workers are not async). They share two sessions (unchecked and
checked) on the process's background loop (:mod:`alerts.ingest.loop`), so polling a feed every
second reuses keep-alive connections instead of paying for a new loop, session and TCP/TLS
handshake each time.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from alerts import log
from alerts.errors import AddressRefused, FeedRejected, FetchError
from alerts.ingest import addresses
from alerts.ingest import loop as background
from alerts.ingest.addresses import AddressPolicy

USER_AGENT = "breaking-alerts/0.1 (+https://github.com/breaking-alerts)"
_CHUNK = 64 * 1024
_MANY_CONCURRENCY = 32  # simultaneous requests per get_many call
_POOL_LIMIT = 100  # connections per session
_GRACE = 5.0  # extra seconds a caller waits beyond the request's own total timeout
_POST_TIMEOUT = aiohttp.ClientTimeout(total=15.0, sock_connect=5.0)
_POST_ANSWER_CAP = 64 * 1024  # bytes of a webhook's answer that are read (and ignored)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
CONTENT = AddressPolicy()  # a URL from content: checked, as are its redirects
HUB = AddressPolicy(source="hub")  # a WebSub hub found in a feed: content too
_allow_private = False  # ALERTS_ALLOW_PRIVATE_ADDRESSES, set by alerts.service.runtime.Runtime


def allow_private_addresses(allowed: bool) -> None:
    """Let every request of this process reach private and reserved addresses, or not (the default):
    ``ALERTS_ALLOW_PRIVATE_ADDRESSES``, which :class:`alerts.service.runtime.Runtime` applies."""
    global _allow_private
    _allow_private = allowed


def private_addresses_allowed() -> bool:
    """Whether :func:`allow_private_addresses` lifted the rule for this process."""
    return _allow_private


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


class _Refused(OSError):
    """What :class:`GuardedResolver` raises; aiohttp wraps it in a ClientConnectorError."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")
        self.host, self.address, self.reason = host, address, reason


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and refuses a host when any address it resolves to is restricted
    (:func:`alerts.ingest.addresses.restriction`). The connector connects only to what this returns,
    so what was checked is what is connected to: a name that answers a public address to a check and
    a private one to the connection (DNS rebinding) cannot slip through."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = addresses.parse_ip(result["host"])
            reason = "not an IP address" if ip is None else addresses.restriction(ip)
            if reason is not None:
                raise _Refused(host, result["host"], reason)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _base_resolver() -> AbstractResolver:
    """The resolver every session starts from (aiohttp's default: getaddrinfo in a thread)."""
    return DefaultResolver()


class _Client:
    """A session and its resolver: a ``guarded`` one connects only to addresses that were checked."""

    def __init__(self, guarded: bool) -> None:
        base = _base_resolver()
        self.resolver: AbstractResolver = GuardedResolver(base) if guarded else base
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_POOL_LIMIT, ttl_dns_cache=300, resolver=self.resolver),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            read_bufsize=_CHUNK,
            raise_for_status=False,
        )

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()
        await self.resolver.close()


def _new_session(guarded: bool = False) -> _Client:
    """A session: pooled keep-alive, no cookies, no proxy from the environment."""
    return _Client(guarded)


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


def _checked(url: URL, policy: AddressPolicy, redirected_from: URL | None) -> bool:
    """Whether this request (or redirect hop) must be checked: it then connects through the guarded
    session. An IP literal (which aiohttp never resolves) is judged here: AddressRefused if refused."""
    if policy.allow_private or _allow_private or (redirected_from is None and policy.trusted_url):
        return False
    host = url.host or ""
    ip = addresses.parse_ip(host)
    if ip is not None:
        reason = addresses.restriction(ip)
        if reason is not None:
            raise _refusal(policy, url, str(ip), reason, redirected_from)
    elif ":" in host or host.replace(".", "").isdigit():  # what aiohttp takes for an IP literal
        raise _refusal(policy, url, host, "not a canonical IP address", redirected_from)
    return True


def _refusal(
    policy: AddressPolicy, url: URL, address: str, reason: str, redirected_from: URL | None
) -> AddressRefused:
    """The error for a refused address, logged once as ``fetch.refused`` (host and address class
    only: never a path or query, which may hold a key)."""
    host = url.host or "?"
    port = f":{url.explicit_port}" if url.explicit_port else ""
    target = f"{host}{port} ({reason})" if address == host else f"{host}{port} ({address}: {reason})"
    hint = "allowed only by the feed's allow_private: true or ALERTS_ALLOW_PRIVATE_ADDRESSES=true"
    if policy.feed is None:
        hint = "allowed only by ALERTS_ALLOW_PRIVATE_ADDRESSES=true"
    if redirected_from is not None:
        source, message = "redirect", f"{redirected_from.origin()} redirected to {target}: refused, {hint}"
    elif policy.source == "hub":
        source, message = "hub", f"refused to post to hub {target}: {hint}"
    else:
        source, message = policy.source, f"refused to fetch {target}: {hint}"
    log.get("alerts.http").warning(
        "fetch.refused", feed=policy.feed, source=source, host=host, address=address, reason=reason
    )
    return AddressRefused(message, host, address, reason)


def _refused_by_resolver(exc: BaseException) -> _Refused | None:
    """The guarded resolver's refusal inside an aiohttp connection error, if that is what it is."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, _Refused):
        return exc.os_error
    return None


def _redirect_target(current: URL, location: str, where: str) -> URL:
    """Where a redirect leads (relative to ``current``); FeedRejected unless http(s) with a host."""
    try:
        target = current.join(URL(location))
    except (ValueError, TypeError) as exc:
        raise FeedRejected(f"{where} redirected to an unusable URL: {exc}") from None
    if target.scheme.lower() not in ("http", "https") or not target.host:
        shown = f"{target.scheme}:" if target.scheme else repr(location[:100])
        raise FeedRejected(f"{where} redirected to an unusable URL ({shown}): only http and https")
    return target.with_fragment(None)


async def _get(
    runner: background.BackgroundLoop,
    url: str,
    headers: Mapping[str, str],
    limits: Limits,
    policy: AddressPolicy,
) -> Response:
    """One GET, redirects followed hop by hop, each hop's URL and address checked against ``policy``;
    raises only FetchError or FeedRejected (AddressRefused for a refused address)."""
    target = check_url(url)
    where = display(target)
    started = time.monotonic()
    ends = started + limits.total_timeout
    current, previous, hops = target, None, 0
    try:
        while True:
            session = _session(runner, _checked(current, policy, previous))
            left = ends - time.monotonic()
            if left <= 0:
                raise TimeoutError
            timeout = aiohttp.ClientTimeout(
                total=left, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
            )
            try:
                async with session.get(
                    current,
                    headers={"User-Agent": limits.user_agent, **headers},
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location and limits.max_redirects > 0:
                        if hops >= limits.max_redirects:
                            raise FeedRejected(
                                f"too many redirects (limit {limits.max_redirects}) from {where}"
                            )
                        previous, current = current, _redirect_target(current, location, where)
                        hops += 1
                        continue  # a 0-redirect Limits gets the 3xx itself (fetch says what it means)
                    final, body = display(resp.url), b""
                    if 200 <= resp.status < 300:
                        try:
                            body = await _read_capped(resp, limits.max_bytes, final)
                        except FeedRejected:
                            resp.close()  # drop the connection rather than drain the rest
                            raise
                    return Response(
                        final,
                        resp.status,
                        resp.reason,
                        _headers(resp.headers),
                        body,
                        time.monotonic() - started,
                    )
            except aiohttp.ClientConnectorError as exc:
                refused = _refused_by_resolver(exc)
                if refused is None:
                    raise
                raise _refusal(policy, current, refused.address, refused.reason, previous) from None
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


def _session(runner: background.BackgroundLoop, checked: bool = False) -> aiohttp.ClientSession:
    """The loop's session (made on first use, on the loop thread); ``checked``: the one whose
    resolver refuses restricted addresses."""
    name = "http-checked" if checked else "http"
    return runner.resource(name, lambda: _new_session(checked), _Client.close).session


def get_one(
    url: str, headers: Mapping[str, str], limits: Limits = Limits(), policy: AddressPolicy = CONTENT
) -> Response:
    """One GET; raises FetchError or FeedRejected (AddressRefused when ``policy`` refuses the URL or a
    redirect). Safe from any thread, even one running a loop."""
    check_url(url)
    runner = background.current()

    async def get() -> Response:
        return await _get(runner, url, headers, limits, policy)

    return runner.run(get(), limits.total_timeout + _GRACE)


def get_many(
    requests: Sequence[tuple[str, Mapping[str, str]]],
    limits: Limits = Limits(),
    policy: AddressPolicy = CONTENT,
    budget: float | None = None,
) -> list[Response | FetchError | FeedRejected]:
    """Every GET at once (at most 32 at a time): one response or error per request, in order. With
    a ``budget`` (seconds) the call ends by then: a request still running is cancelled and comes back
    as a FetchError."""
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
                    return await _get(runner, url, headers, limits, policy)
                except (FetchError, FeedRejected) as exc:
                    return exc

        async def every() -> list[Response | FetchError | FeedRejected]:
            if budget is None:
                return list(await asyncio.gather(*(one(*requests[i]) for i in todo)))
            tasks = [asyncio.ensure_future(one(*requests[i])) for i in todo]
            _, late = await asyncio.wait(tasks, timeout=max(0.0, budget))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            over = FetchError(f"not done within the budget of {budget:g}s")
            return [over if task in late else task.result() for task in tasks]

        wait = math.ceil(len(todo) / _MANY_CONCURRENCY) * limits.total_timeout + _GRACE
        if budget is not None:
            wait = min(wait, max(0.0, budget) + _GRACE)
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
    url: str,
    form: Mapping[str, str],
    timeout: float,
    answer_cap: int = 200,
    policy: AddressPolicy = HUB,
) -> tuple[int, str | None, str]:
    """POST a form without following redirects (a WebSub hub request): (status, reason, the first
    characters of the answer when it is not 2xx). A hub URL comes from feed content, so by default
    its address is checked: AddressRefused (before any connection) when it is restricted. Raises
    FetchError for a timeout or network error."""
    target = check_url(url)
    where = display(target)
    checked = _checked(target, policy, None)
    runner = background.current()

    async def post() -> tuple[int, str | None, str]:
        try:
            return await _post_form(_session(runner, checked), target, form, timeout, answer_cap)
        except TimeoutError:
            raise FetchError(f"timeout after {timeout:g}s posting to {where}") from None
        except _CLIENT_ERRORS as exc:
            refused = _refused_by_resolver(exc)
            if refused is not None:
                raise _refusal(policy, target, refused.address, refused.reason, None) from None
            raise _fetch_error(exc, "post to", where) from None

    return runner.run(post(), timeout + _GRACE)
