"""Servers for the address-policy tests: an "internal" listener that counts every connection made to
it, and a newsroom (the feeds an admin configured) that can redirect, link and advertise hubs
anywhere. Everything listens on loopback (127.0.0.1 and 127.0.0.2); nothing reaches beyond it."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from alerts.ingest import addresses
from alerts.ingest import loop as loop_module
from alerts.ingest.http import sessions
from tests.harness.servers import Entry, ThreadedServer, render_rss

ARTICLE = (Path(__file__).parents[1] / "fixtures" / "almayadeen_article.html").read_bytes()
INTERNAL_TITLE = "Internal admin page"


class Listener:
    """A raw HTTP listener on ``host`` counting connections and requests; it answers every request
    (GET /feed.xml: an RSS feed; POST: 202; anything else: an article page) and closes."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        self.host = host
        self.connections = 0
        self.requests: list[str] = []  # request lines
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._wanted = port
        self.port = 0

    def start(self) -> Listener:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._wanted)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def touched(self) -> int:
        """Connections and requests seen: must stay 0 when the address is refused."""
        return self.connections + len(self.requests)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        line, *fields = head.decode("latin-1").split("\r\n")
        self.requests.append(line)
        length = next((int(f.split(":", 1)[1]) for f in fields if f.lower().startswith("content-length:")), 0)
        if length:
            await reader.readexactly(length)
        method, path = [*line.split(" "), "", ""][:2]
        if method == "POST":
            status, kind, body = "202 Accepted", "text/plain", b"accepted"
        elif path.startswith("/feed.xml"):
            entry = Entry(f"{INTERNAL_TITLE}: gaza", f"{self.base}/secret")
            status, kind, body = "200 OK", "application/rss+xml", render_rss([entry])
        else:
            status, kind, body = "200 OK", "text/html", ARTICLE
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


def listener_pair() -> tuple[Listener, Listener]:
    """An internal listener on 127.0.0.2 and a "public" one on 127.0.0.1 at the same port (a URL
    whose name resolves to either reaches one of them)."""
    for _ in range(20):
        internal = Listener("127.0.0.2").start()
        try:
            public = Listener("127.0.0.1", internal.port).start()
        except OSError:
            internal.stop()
            continue
        return internal, public
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


class Newsroom:
    """The admin's news site on 127.0.0.1: /feed.xml (its entries; ``hub`` advertised in the
    feed), /moved.xml (302 to ``moved_to``), /article/{slug} (an article page, after ``delay``) and
    /bounce/{slug} (302 to ``bounce_to`` + slug)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.hub: str | None = None
        self.moved_to = ""
        self.bounce_to = ""
        self.delay = 0.0
        self.articles = 0  # article pages served
        self.bounces = 0
        self.feed_requests = 0
        app = web.Application()
        app.router.add_get("/feed.xml", self._feed)
        app.router.add_get("/moved.xml", self._moved)
        app.router.add_get("/article/{slug}", self._article)
        app.router.add_get("/bounce/{slug}", self._bounce)
        self._server = ThreadedServer(app)

    def start(self) -> Newsroom:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def base(self) -> str:
        return self._server.base

    @property
    def port(self) -> int:
        return self._server.port

    def publish(self, *entries: Entry) -> None:
        for entry in entries:
            self.entries.insert(0, entry)

    async def _feed(self, _: web.Request) -> web.Response:
        self.feed_requests += 1
        body = render_rss(self.entries)
        if self.hub:
            link = f'<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" href="{self.hub}"/>'
            body = body.replace(b"<channel>", f"<channel>{link}".encode(), 1)
        return web.Response(body=body, content_type="application/rss+xml")

    async def _moved(self, _: web.Request) -> web.Response:
        raise web.HTTPFound(self.moved_to)

    async def _article(self, _: web.Request) -> web.Response:
        self.articles += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(body=ARTICLE, content_type="text/html")

    async def _bounce(self, request: web.Request) -> web.Response:
        self.bounces += 1
        raise web.HTTPFound(self.bounce_to + request.match_info["slug"])


def closed_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ScriptedResolver(AbstractResolver):
    """A DNS double: each name has a list of answers, one per lookup (the last one repeats); every
    lookup is counted. Unknown names fail as getaddrinfo would."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answers = self.script.get(host)
        if not answers:
            raise OSError(f"unknown name {host}")
        answer = answers[min(self.lookups.count(host), len(answers)) - 1]
        return [
            ResolveResult(hostname=host, host=ip, port=port, family=socket.AF_INET, proto=0, flags=0)
            for ip in answer
        ]

    async def close(self) -> None:
        return None


def simulate_internet(
    monkeypatch: pytest.MonkeyPatch,
    resolver: ScriptedResolver,
    public: frozenset[str] = frozenset({"127.0.0.1"}),
) -> None:
    """Make the HTTP layer resolve names with ``resolver`` and take the addresses in ``public`` for
    global ones (so a test can stand for a site on the internet without leaving loopback). Fresh
    sessions (and DNS caches) are made for the test and after it."""
    real = addresses.restriction

    def restriction(address: addresses.Address | str) -> str | None:
        return None if str(address) in public else real(address)

    loop_module.shutdown()
    monkeypatch.setattr(addresses, "restriction", restriction)
    monkeypatch.setattr(sessions, "_base_resolver", lambda: resolver)
