"""POSTs: webhook deliveries (many at once, outcomes as they end) and WebSub hub forms; redirects
are never followed."""

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
from alerts.ingest.http.messages import (
    USER_AGENT,
    Post,
    PostOutcome,
    check_url,
    display,
    parse_retry_after,
    status_line,
)
from alerts.ingest.http.sessions import (
    CLIENT_ERRORS,
    GRACE,
    HUB,
    POOL_LIMIT,
    client_session,
    fetch_error,
    needs_check,
    refusal,
    refused_by_resolver,
)

_POST_TIMEOUT = aiohttp.ClientTimeout(total=15.0, sock_connect=5.0)
_POST_ANSWER_CAP = 64 * 1024  # bytes of a webhook's answer that are read (and ignored)


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
        session = client_session(runner)

        async def one(index: int) -> None:
            done.put((index, await _post(session, posts[index])))

        await asyncio.gather(*(one(index) for index in todo))

    future = asyncio.run_coroutine_threadsafe(every(), runner.loop)
    wait = math.ceil(len(todo) / POOL_LIMIT) * (_POST_TIMEOUT.total or 15.0) + GRACE
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
    checked = needs_check(target, policy, None)
    runner = background.current()

    async def post() -> tuple[int, str | None, str]:
        try:
            return await _post_form(client_session(runner, checked), target, form, timeout, answer_cap)
        except TimeoutError:
            raise FetchError(f"timeout after {timeout:g}s posting to {where}") from None
        except CLIENT_ERRORS as exc:
            refused = refused_by_resolver(exc)
            if refused is not None:
                raise refusal(policy, target, refused.address, refused.reason, None) from None
            raise fetch_error(exc, "post to", where) from None

    return runner.run(post(), timeout + GRACE)
