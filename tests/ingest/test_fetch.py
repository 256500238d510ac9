"""Tests of alerts.ingest.fetch and its HTTP client against real aiohttp servers on 127.0.0.1 (nothing beyond
loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import pickle
import select
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from alerts.errors import FeedRejected, FetchError
from alerts.ingest import http
from alerts.ingest import loop as loop_module
from alerts.ingest.fetch import ACCEPT, FetchResult, HttpStatusError, Validators, fetch_many, fetch_one
from alerts.ingest.http import Limits, sessions

ETAG = '"v1"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
FEED = b"<rss><channel><title>t</title></channel></rss>"
CAP = 1024  # max_bytes used by the size tests
BOMB_RAW = 50 * 1024 * 1024
ENDLESS_CAP = 64 * 1024 * 1024  # the endless handler gives up after this many bytes
FAST = Limits(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)


@dataclass
class ServerState:
    """What the test server saw, shared between its thread and the tests."""

    base: str = ""
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    endless_sent: int = 0
    endless_done: threading.Event = field(default_factory=threading.Event)
    release: asyncio.Event | None = None

    def seen(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers, _ in self.requests if p == path]


def _make_app(state: ServerState, bomb: bytes) -> web.Application:
    async def record(request: web.Request) -> None:
        state.requests.append(
            (
                request.path,
                dict(request.headers),
                request.transport and request.transport.get_extra_info("peername"),
            )
        )

    async def feed(request: web.Request) -> web.StreamResponse:
        await record(request)
        headers = {
            "ETag": ETAG,
            "Last-Modified": LAST_MODIFIED,
            "Content-Type": "application/rss+xml; charset=utf-8",
        }
        if (
            request.headers.get("If-None-Match") == ETAG
            and request.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(body=FEED, headers=headers)

    async def gzipped(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=gzip.compress(FEED * 100), headers={"Content-Encoding": "gzip"})

    async def sized(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=b"x" * int(request.match_info["n"]))

    async def chunked(request: web.Request) -> web.StreamResponse:
        await record(request)
        n = int(request.match_info["n"])
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, n, 100):
            await resp.write(b"y" * min(100, n - start))
        await resp.write_eof()
        return resp

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"z" * 65536
        try:
            while state.endless_sent < ENDLESS_CAP:
                await resp.write(chunk)
                state.endless_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client went away, as it should
        finally:
            state.endless_done.set()
        return resp

    async def gzip_bomb(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    async def status(request: web.Request) -> web.StreamResponse:
        await record(request)
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=int(request.match_info["code"]), headers=headers, text="nope")

    async def stall(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b"a" * 10)
        assert state.release is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.release.wait(), 10)
        return resp

    async def slow(request: web.Request) -> web.StreamResponse:
        await record(request)
        await asyncio.sleep(float(request.query.get("delay", "0.3")))
        return web.Response(text=request.query.get("tag", ""))

    async def redirect_chain(request: web.Request) -> web.StreamResponse:
        await record(request)
        n = int(request.match_info["n"])
        raise web.HTTPFound("/feed" if n == 0 else f"/redirect/{n - 1}")

    async def loop(request: web.Request) -> web.StreamResponse:
        await record(request)
        raise web.HTTPFound("/loop/b" if request.match_info["x"] == "a" else "/loop/a")

    async def to_ftp(request: web.Request) -> web.StreamResponse:
        await record(request)
        raise web.HTTPFound("ftp://127.0.0.1/feed.xml")

    async def echo(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.json_response(dict(request.headers))

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/sized/{n}", sized)
    app.router.add_get("/chunked/{n}", chunked)
    app.router.add_get("/endless", endless)
    app.router.add_get("/bomb", gzip_bomb)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/stall", stall)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect/{n}", redirect_chain)
    app.router.add_get("/loop/{x}", loop)
    app.router.add_get("/to-ftp", to_ftp)
    app.router.add_get("/echo", echo)
    return app


@pytest.fixture(autouse=True)
def loopback_allowed() -> Iterator[None]:
    """These tests exercise the HTTP mechanics against servers on 127.0.0.1, redirects and content
    URLs included: private addresses are allowed here (tests/ingest/test_ssrf.py proves the rule)."""
    before = http.private_addresses_allowed()
    http.allow_private_addresses(True)
    yield
    http.allow_private_addresses(before)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerState]:
    """An aiohttp.web server on 127.0.0.1 in a thread with its own event loop."""
    state = ServerState()
    bomb = gzip.compress(bytes(BOMB_RAW), compresslevel=9)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        state.release = asyncio.Event()
        runner = web.AppRunner(_make_app(state, bomb), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        state.base = f"http://127.0.0.1:{port}"
        return runner

    async def stop(runner: web.AppRunner) -> None:
        assert state.release is not None
        state.release.set()
        await runner.cleanup()

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield state
    finally:
        loop_module.shutdown()
        asyncio.run_coroutine_threadsafe(stop(runner), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener completes TCP handshakes but never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- conditional GET


def test_200_then_conditional_304(server: ServerState) -> None:
    """A 200 yields ETag/Last-Modified validators, and sending them back gets a 304 not_modified result."""
    first = fetch_one(f"{server.base}/feed")
    assert first.status == 200
    assert first.body == FEED
    assert not first.not_modified
    assert first.content_type == "application/rss+xml; charset=utf-8"
    assert first.validators == Validators(etag=ETAG, last_modified=LAST_MODIFIED)
    assert first.url == f"{server.base}/feed"
    assert first.elapsed >= 0

    second = fetch_one(f"{server.base}/feed", first.validators)
    sent = server.seen("/feed")[-1]
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    assert second.status == 304
    assert second.not_modified
    assert second.body == b""
    # the 304 repeats only the ETag: Last-Modified must be kept from before
    assert second.validators == Validators(etag=ETAG, last_modified=LAST_MODIFIED)


def test_no_conditional_headers_without_validators(server: ServerState) -> None:
    """Without stored validators no If-None-Match / If-Modified-Since header is sent."""
    fetch_one(f"{server.base}/feed")
    sent = server.seen("/feed")[-1]
    assert "If-None-Match" not in sent
    assert "If-Modified-Since" not in sent


def test_request_headers_sent(server: ServerState) -> None:
    """User-Agent, Accept and Accept-Encoding are sent as configured."""
    limits = Limits(user_agent="test-agent/9")
    result = fetch_one(f"{server.base}/echo", limits=limits)
    echoed = json.loads(result.body)
    assert echoed["User-Agent"] == "test-agent/9"
    assert echoed["Accept"] == ACCEPT
    assert echoed["Accept-Encoding"] == "gzip, deflate"


def test_default_user_agent(server: ServerState) -> None:
    """The default Limits user agent identifies breaking-alerts."""
    fetch_one(f"{server.base}/echo")
    assert server.seen("/echo")[-1]["User-Agent"] == Limits().user_agent


# --------------------------------------------------------------------------- bodies


def test_gzip_decompressed(server: ServerState) -> None:
    """A Content-Encoding: gzip body comes back decompressed."""
    result = fetch_one(f"{server.base}/gzip")
    assert result.body == FEED * 100


def test_body_at_cap_accepted(server: ServerState) -> None:
    """A body of exactly max_bytes is accepted, with or without Content-Length."""
    limits = Limits(max_bytes=CAP)
    assert len(fetch_one(f"{server.base}/sized/{CAP}", limits=limits).body) == CAP
    assert len(fetch_one(f"{server.base}/chunked/{CAP}", limits=limits).body) == CAP


def test_body_over_cap_with_content_length(server: ServerState) -> None:
    """A Content-Length over max_bytes is refused."""
    with pytest.raises(FeedRejected, match="over the cap"):
        fetch_one(f"{server.base}/sized/{CAP + 1}", limits=Limits(max_bytes=CAP))


def test_body_over_cap_chunked(server: ServerState) -> None:
    """A chunked body (no Content-Length) one byte over max_bytes is refused."""
    with pytest.raises(FeedRejected, match="exceeds the cap"):
        fetch_one(f"{server.base}/chunked/{CAP + 1}", limits=Limits(max_bytes=CAP))


def test_endless_body_cut_off(server: ServerState) -> None:
    """An endless chunked body is abandoned soon after max_bytes instead of being read to the end."""
    server.endless_done.clear()
    server.endless_sent = 0
    with pytest.raises(FeedRejected, match="exceeds the cap"):
        fetch_one(f"{server.base}/endless", limits=Limits(max_bytes=1024 * 1024))
    assert server.endless_done.wait(10), "server kept writing: the client did not drop the connection"
    assert server.endless_sent < ENDLESS_CAP // 2


def test_gzip_bomb_cut_off(server: ServerState) -> None:
    """A 50 MB gzip bomb is refused at 1 MB of decompressed data, quickly and without buffering it all."""
    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(FeedRejected, match="exceeds the cap"):
            fetch_one(f"{server.base}/bomb", limits=Limits(max_bytes=1024 * 1024))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 3.0
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes: the bomb was decompressed far past the cap"


# --------------------------------------------------------------------------- statuses


def test_404_rejected(server: ServerState) -> None:
    """A 404 is a permanent FeedRejected naming the status."""
    with pytest.raises(FeedRejected, match="HTTP 404"):
        fetch_one(f"{server.base}/status/404")


def test_410_rejected_not_retryable(server: ServerState) -> None:
    """Other 4xx such as 410 are FeedRejected, never the retryable FetchError."""
    with pytest.raises(FeedRejected) as info:
        fetch_one(f"{server.base}/status/410")
    assert not isinstance(info.value, FetchError)


def test_503_retry_after(server: ServerState) -> None:
    """A 503 with Retry-After: 7 is a FetchError whose retry_after is 7 seconds."""
    with pytest.raises(FetchError, match="HTTP 503") as info:
        fetch_one(f"{server.base}/status/503?retry_after=7")
    assert isinstance(info.value, HttpStatusError)
    assert info.value.retry_after == 7
    assert info.value.status == 503


def test_retry_after_http_date(server: ServerState) -> None:
    """A Retry-After given as an HTTP-date becomes seconds from now."""
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    with pytest.raises(HttpStatusError) as info:
        fetch_one(f"{server.base}/status/503?retry_after={when}")
    assert info.value.retry_after is not None
    assert 100 < info.value.retry_after <= 121


def test_429_and_408_retryable(server: ServerState) -> None:
    """429 and 408 are retryable FetchErrors; without Retry-After retry_after is None."""
    for code in (429, 408):
        with pytest.raises(FetchError, match=f"HTTP {code}") as info:
            fetch_one(f"{server.base}/status/{code}")
        assert isinstance(info.value, HttpStatusError)
        assert info.value.retry_after is None


def test_500_retryable(server: ServerState) -> None:
    """A 500 is a retryable FetchError."""
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch_one(f"{server.base}/status/500")


def test_http_status_error_pickles() -> None:
    """HttpStatusError survives pickling (Celery may serialise it) with its attributes."""
    err = HttpStatusError("HTTP 503 from x", status=503, url="http://x/", retry_after=7.0)
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, HttpStatusError)
    assert (str(back), back.status, back.url, back.retry_after) == (str(err), 503, "http://x/", 7.0)


# --------------------------------------------------------------------------- network trouble


def test_silent_server_read_timeout(silent_port: int) -> None:
    """A server that accepts but never answers gives a FetchError after about read_timeout."""
    limits = Limits(connect_timeout=2.0, read_timeout=0.5, total_timeout=10.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timeout after 0\.5s reading"):
        fetch_one(f"http://127.0.0.1:{silent_port}/feed", limits=limits)
    assert 0.4 < time.monotonic() - started < 3.0


def test_silent_server_total_timeout(silent_port: int) -> None:
    """The total timeout bounds a silent server even when the read timeout is longer."""
    limits = Limits(connect_timeout=2.0, read_timeout=10.0, total_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timeout after 0\.5s \(total\)"):
        fetch_one(f"http://127.0.0.1:{silent_port}/feed", limits=limits)
    assert 0.4 < time.monotonic() - started < 3.0


def test_stalled_body_read_timeout(server: ServerState) -> None:
    """A body that stops arriving mid-way gives a FetchError after about read_timeout."""
    limits = Limits(read_timeout=0.5, total_timeout=10.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timeout after 0\.5s reading"):
        fetch_one(f"{server.base}/stall", limits=limits)
    assert time.monotonic() - started < 3.0


def test_connection_refused() -> None:
    """A closed port on 127.0.0.1 gives a FetchError saying the connection failed."""
    with pytest.raises(FetchError, match="cannot connect"):
        fetch_one(f"http://127.0.0.1:{closed_port()}/feed", limits=FAST)


def test_errors_are_not_aiohttp_types(silent_port: int) -> None:
    """Errors carry no aiohttp exception as their cause or context."""
    for url in (f"http://127.0.0.1:{closed_port()}/", f"http://127.0.0.1:{silent_port}/"):
        with pytest.raises(FetchError) as info:
            fetch_one(url, limits=Limits(read_timeout=0.3, total_timeout=2.0))
        assert type(info.value).__module__ == "alerts.errors"
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__


# --------------------------------------------------------------------------- URLs and redirects


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "127.0.0.1/feed", "http:///x"]
)
def test_non_http_url_rejected_without_io(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-http(s) or host-less URLs are FeedRejected before any loop, session or socket is made."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("I/O attempted")

    monkeypatch.setattr(loop_module, "current", boom)
    monkeypatch.setattr(sessions, "_new_session", boom)
    with pytest.raises(FeedRejected):
        fetch_one(url)
    assert isinstance(fetch_many([(url, Validators())])[0], FeedRejected)


def test_single_redirect_followed(server: ServerState) -> None:
    """A redirect is followed and the final URL is reported."""
    result = fetch_one(f"{server.base}/redirect/0")
    assert result.status == 200
    assert result.body == FEED
    assert result.url == f"{server.base}/feed"


def test_redirects_up_to_limit(server: ServerState) -> None:
    """Exactly max_redirects hops are followed; one more is FeedRejected."""
    limits = Limits(max_redirects=3)
    assert fetch_one(f"{server.base}/redirect/2", limits=limits).url == f"{server.base}/feed"  # 3 hops
    with pytest.raises(FeedRejected, match="too many redirects"):
        fetch_one(f"{server.base}/redirect/3", limits=limits)  # 4 hops


def test_zero_redirects_allowed(server: ServerState) -> None:
    """With max_redirects=0 any redirect is FeedRejected."""
    with pytest.raises(FeedRejected, match="too many redirects"):
        fetch_one(f"{server.base}/redirect/0", limits=Limits(max_redirects=0))


def test_redirect_loop_rejected(server: ServerState) -> None:
    """A redirect loop is FeedRejected."""
    with pytest.raises(FeedRejected, match="too many redirects"):
        fetch_one(f"{server.base}/loop/a")


def test_redirect_to_ftp_rejected(server: ServerState) -> None:
    """A redirect to a non-http(s) URL is FeedRejected."""
    with pytest.raises(FeedRejected):
        fetch_one(f"{server.base}/to-ftp")


# --------------------------------------------------------------------------- APIs


def test_fetch_many_in_order(server: ServerState) -> None:
    """fetch_many returns one result or error per input, in input order."""
    items = [
        (f"{server.base}/slow?delay=0.2&tag=a", Validators()),
        (f"{server.base}/status/404", Validators()),
        (f"{server.base}/slow?delay=0.0&tag=b", Validators()),
        ("ftp://127.0.0.1/x", Validators()),
        (f"{server.base}/status/503?retry_after=7", Validators()),
        (f"{server.base}/feed", Validators(etag=ETAG, last_modified=LAST_MODIFIED)),
    ]
    out = fetch_many(items, limits=FAST)
    assert len(out) == len(items)
    assert isinstance(out[0], FetchResult) and out[0].body == b"a"
    assert isinstance(out[1], FeedRejected)
    assert isinstance(out[2], FetchResult) and out[2].body == b"b"
    assert isinstance(out[3], FeedRejected)
    assert isinstance(out[4], HttpStatusError) and out[4].retry_after == 7
    assert isinstance(out[5], FetchResult) and out[5].not_modified
    assert fetch_many([]) == []


def test_fetch_many_concurrent(server: ServerState) -> None:
    """fetch_many runs its fetches at the same time, not one after another."""
    items = [(f"{server.base}/slow?delay=0.5&tag={i}", Validators()) for i in range(8)]
    started = time.monotonic()
    out = fetch_many(items, limits=FAST)
    elapsed = time.monotonic() - started
    assert [r.body for r in out if isinstance(r, FetchResult)] == [str(i).encode() for i in range(8)]
    assert elapsed < 2.0  # 8 x 0.5 s one after another would take 4 s


def test_sync_repeated_reuses_connections(server: ServerState) -> None:
    """Repeated fetch_one calls share one loop and session, reusing keep-alive connections."""
    loop_module.shutdown()  # start from an empty connection pool
    before = len(server.requests)
    runners = set()
    for _ in range(20):
        assert fetch_one(f"{server.base}/echo").status == 200
        runners.add(id(loop_module._current))
    peers = {peer for _, _, peer in server.requests[before:]}
    assert len(runners) == 1
    assert len(peers) <= 2, f"{len(peers)} connections for 20 sequential requests"


def test_sync_from_two_threads(server: ServerState) -> None:
    """fetch_one and fetch_many work when called at the same time from two threads."""
    errors: list[BaseException] = []
    counts = [0, 0]

    def work(slot: int) -> None:
        try:
            for i in range(15):
                if i % 3 == 0:
                    res = fetch_many(
                        [(f"{server.base}/feed", Validators()), (f"{server.base}/gzip", Validators())]
                    )
                    assert all(isinstance(r, FetchResult) for r in res)
                else:
                    assert fetch_one(f"{server.base}/feed").body == FEED
                counts[slot] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert counts == [15, 15]


def test_sync_inside_running_loop(server: ServerState) -> None:
    """fetch_one works even when called from a thread that is running its own event loop."""

    async def main() -> FetchResult:
        return fetch_one(f"{server.base}/feed")

    assert asyncio.run(main()).body == FEED


def test_shutdown_then_reuse(server: ServerState) -> None:
    """After shutdown() the next synchronous call starts a fresh loop and works."""
    fetch_one(f"{server.base}/feed")
    old = loop_module._current
    loop_module.shutdown()
    assert old is not None and old.loop.is_closed() and not old.thread.is_alive()
    assert fetch_one(f"{server.base}/feed").body == FEED
    assert loop_module._current is not old


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_sync_after_fork(server: ServerState) -> None:
    """A forked child (as in Celery prefork) gets its own loop and can fetch; the parent still can."""
    fetch_one(f"{server.base}/feed")  # the parent's loop exists before the fork
    parent_runner = loop_module._current
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            result = fetch_one(f"{server.base}/feed", limits=FAST)
            fresh = loop_module._current is not parent_runner
            os.write(write_fd, f"{result.status} {fresh}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        answer = os.read(read_fd, 100).decode() if ready else "no answer"
        if not ready:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    assert answer == "200 True"
    assert os.waitstatus_to_exitcode(status) == 0
    assert fetch_one(f"{server.base}/feed").body == FEED
    assert loop_module._current is parent_runner
