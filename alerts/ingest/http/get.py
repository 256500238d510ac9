"""GETs: one, or many at once, each redirect followed hop by hop with its address checked."""

from __future__ import annotations

import asyncio
import math
import queue
import time
from collections.abc import Iterator, Mapping, Sequence

import aiohttp
from yarl import URL

from alerts.errors import FeedRejected, FetchError
from alerts.ingest import loop as background
from alerts.ingest.addresses import AddressPolicy
from alerts.ingest.http.messages import Limits, Response, check_url, display
from alerts.ingest.http.sessions import (
    CLIENT_ERRORS,
    CONTENT,
    GRACE,
    client_session,
    fetch_error,
    headers_of,
    needs_check,
    refusal,
    refused_by_resolver,
)

_MANY_CONCURRENCY = 32  # simultaneous requests per get_many call
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
            session = client_session(runner, needs_check(current, policy, previous))
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
                        headers_of(resp.headers),
                        body,
                        time.monotonic() - started,
                    )
            except aiohttp.ClientConnectorError as exc:
                refused = refused_by_resolver(exc)
                if refused is None:
                    raise
                raise refusal(policy, current, refused.address, refused.reason, previous) from None
    except aiohttp.InvalidURL as exc:
        raise FeedRejected(f"invalid URL {where}: {exc}") from None
    except aiohttp.ConnectionTimeoutError:
        raise FetchError(f"timeout after {limits.connect_timeout}s connecting to {where}") from None
    except aiohttp.SocketTimeoutError:
        raise FetchError(f"timeout after {limits.read_timeout}s reading {where}") from None
    except TimeoutError:  # the total timeout (aiohttp raises the plain asyncio one)
        raise FetchError(f"timeout after {limits.total_timeout}s (total) fetching {where}") from None
    except CLIENT_ERRORS as exc:
        raise fetch_error(exc, "fetch", where) from None


def get_one(
    url: str, headers: Mapping[str, str], limits: Limits = Limits(), policy: AddressPolicy = CONTENT
) -> Response:
    """One GET; raises FetchError or FeedRejected (AddressRefused when ``policy`` refuses the URL or a
    redirect). Safe from any thread, even one running a loop."""
    check_url(url)
    runner = background.current()

    async def get() -> Response:
        return await _get(runner, url, headers, limits, policy)

    return runner.run(get(), limits.total_timeout + GRACE)


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

        wait = math.ceil(len(todo) / _MANY_CONCURRENCY) * limits.total_timeout + GRACE
        if budget is not None:
            wait = min(wait, max(0.0, budget) + GRACE)
        for i, result in zip(todo, runner.run(every(), wait), strict=True):
            out[i] = result
    return [r for r in out if r is not None]


Answer = Response | FetchError | FeedRejected


def get_each(
    requests: Sequence[tuple[str, Mapping[str, str], AddressPolicy]],
    limits: Limits = Limits(),
    concurrency: int = _MANY_CONCURRENCY,
) -> Iterator[list[tuple[int, Answer]]]:
    """Every GET at once (at most ``concurrency`` at a time), each with its own address policy; as
    they end, yield the (index, response or error) pairs of those that ended since the last yield, so
    a caller handles the quick ones while a slow one still runs. Safe from any thread."""
    done: queue.SimpleQueue[tuple[int, Answer]] = queue.SimpleQueue()
    todo: list[int] = []
    refused: list[tuple[int, Answer]] = []
    for i, (url, _, _) in enumerate(requests):
        try:
            check_url(url)
        except FeedRejected as exc:
            refused.append((i, exc))  # refused before any I/O
        else:
            todo.append(i)
    if refused:
        yield refused
    if not todo:
        return
    runner = background.current()

    async def every() -> None:
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(index: int) -> None:
            url, headers, policy = requests[index]
            async with gate:
                try:
                    answer: Answer = await _get(runner, url, headers, limits, policy)
                except (FetchError, FeedRejected) as exc:
                    answer = exc
            done.put((index, answer))

        await asyncio.gather(*(one(index) for index in todo))

    future = asyncio.run_coroutine_threadsafe(every(), runner.loop)
    wait = math.ceil(len(todo) / max(1, concurrency)) * limits.total_timeout + GRACE
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
