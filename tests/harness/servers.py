"""Real HTTP servers on 127.0.0.1 for tests: feeds to poll, webhook and Telegram sinks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web


class ThreadedServer:
    """An aiohttp application served from a background thread on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0

    def start(self) -> ThreadedServer:
        """Start serving; returns once the port is bound."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop serving and end the thread."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Entry:
    """One item of a served RSS feed."""

    title: str
    link: str
    summary: str = ""
    guid: str | None = None
    categories: tuple[str, ...] = ()
    published: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class ServedFeed:
    """A feed's entries (newest first) and what the server saw of it."""

    entries: list[Entry] = field(default_factory=list)
    status: int = 200
    raw: bytes | None = None
    requests: int = 0
    not_modified: int = 0
    changed_at: dict[str, float] = field(default_factory=dict)


class FeedServer:
    """Serves RSS 2.0 feeds at /<name>.xml with ETag and Last-Modified; feeds can be edited live."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds before each answer, to emulate a distant server
        self.feeds: dict[str, ServedFeed] = {}
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_get("/{name}.xml", self._handle)
        self._server = ThreadedServer(app)

    def start(self) -> FeedServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def url(self, name: str) -> str:
        """The URL of feed ``name``."""
        return f"{self._server.base}/{name}.xml"

    def feed(self, name: str) -> ServedFeed:
        """The served feed ``name`` (created empty)."""
        with self._lock:
            return self.feeds.setdefault(name, ServedFeed())

    def publish(self, name: str, *entries: Entry) -> None:
        """Add entries at the top of feed ``name`` (as a newsroom publishes)."""
        feed = self.feed(name)
        with self._lock:
            for entry in entries:
                feed.entries.insert(0, entry)
                feed.changed_at[entry.title] = time.time()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        feed = self.feed(request.match_info["name"])
        with self._lock:
            feed.requests += 1
            if feed.status != 200:
                return web.Response(status=feed.status, text="unavailable")
            body = feed.raw if feed.raw is not None else render_rss(feed.entries)
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if request.headers.get("If-None-Match") == etag:
                feed.not_modified += 1
                return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": etag})


def render_rss(entries: list[Entry]) -> bytes:
    """An RSS 2.0 document holding ``entries``."""
    items = []
    for entry in entries:
        categories = "".join(f"<category>{escape(c)}</category>" for c in entry.categories)
        guid = f'<guid isPermaLink="false">{escape(entry.guid)}</guid>' if entry.guid else ""
        items.append(
            f"<item><title>{escape(entry.title)}</title><link>{escape(entry.link)}</link>{guid}"
            f"<description>{escape(entry.summary)}</description>{categories}"
            f"<pubDate>{format_datetime(entry.published)}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Test wire</title>'
        f"<link>http://127.0.0.1/</link><description>test</description>{''.join(items)}</channel></rss>"
    ).encode()


class WebhookSink:
    """Receives what Apprise's json:// plugin or a native webhook posts, with the time each arrived."""

    def __init__(self, status: int = 200, retry_after: str | None = None) -> None:
        self.retry_after = retry_after  # sent with a refusal (status != 200)
        self.received: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.requests: list[tuple[str, dict[str, str], bytes]] = []  # path, headers, raw body
        self.status = status
        self.on_receive: Callable[[dict[str, Any]], None] | None = None
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._server = ThreadedServer(app)

    def start(self) -> WebhookSink:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def apprise_url(self) -> str:
        """The json:// URL that posts here."""
        return f"json://127.0.0.1:{self._server.port}/hook"

    @property
    def url(self) -> str:
        """The native webhook URL that posts here."""
        return f"http://127.0.0.1:{self._server.port}/hook"

    def titles(self) -> list[str]:
        """Titles of the messages received so far."""
        return [message.get("title", "") for message in list(self.received)]

    async def _handle(self, request: web.Request) -> web.Response:
        if self.status != 200:
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return web.Response(status=self.status, text="sink refuses", headers=headers)
        raw = await request.read()
        payload = json.loads(raw)
        self.requests.append((request.path, dict(request.headers), raw))
        self.arrived.append(time.time())
        self.received.append(payload)
        if self.on_receive:
            self.on_receive(payload)
        return web.Response(text="ok")


class TelegramDouble:
    """A local Bot API: records sendMessage calls; answers 401 echoing the URL, as a careless proxy might.

    Accepted messages get ids as Telegram gives them: counted per chat (from a different base in each
    chat), answered as ``result.message_id``. A ``reply_parameters.message_id`` not sent in that chat is
    refused (400) unless ``allow_sending_without_reply``; ``latency`` seconds before each answer."""

    def __init__(self, accept: bool = True, latency: float = 0.0) -> None:
        self.accept = accept
        self.latency = latency
        self.throttle: int | None = None  # answer the next message 429 "retry after N", once
        self.refuse_after: int | None = None  # once this many messages were accepted, answer 502 to others
        self.messages: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []  # messages answered 502 by refuse_after
        self.ids: list[int] = []  # the message_id given to each accepted message, in order
        self._last: dict[str, int] = {}  # chat -> the last message id given there
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._server = ThreadedServer(app)

    def start(self) -> TelegramDouble:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def api(self) -> str:
        """The value for ALERTS_TELEGRAM_API."""
        return f"{self._server.base}/bot"

    def replies(self) -> list[dict[str, Any] | None]:
        """Each accepted message's ``reply_parameters`` (None when it replies to nothing)."""
        return [message.get("reply_parameters") for message in self.messages]

    def sent_in(self, chat: str | int, message_id: int) -> bool:
        """True when ``message_id`` was given to a message in ``chat``."""
        return any(
            str(message.get("chat_id")) == str(chat) and given == message_id
            for message, given in zip(self.messages, self.ids, strict=True)
        )

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json() if request.can_read_body else {}
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.throttle is not None:
            wait, self.throttle = self.throttle, None
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {wait}",
                "parameters": {"retry_after": wait},
            }
            return web.json_response(body, status=429)
        if not self.accept:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": f"Unauthorized: {request.path}"}, status=401
            )
        if self.refuse_after is not None and len(self.messages) >= self.refuse_after:
            self.refused.append(payload)
            return web.json_response(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
            )
        chat = str(payload.get("chat_id", ""))
        reply = payload.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else None
        if (
            reply
            and not reply.get("allow_sending_without_reply")
            and not self.sent_in(chat, reply.get("message_id", 0))
        ):
            body = {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message to be replied not found",
            }
            return web.json_response(body, status=400)
        message_id = self._last.get(chat, 1000 * (len(self._last) + 1) + 40) + 1
        self._last[chat] = message_id
        self.messages.append(payload)
        self.ids.append(message_id)
        result = {"message_id": message_id, "date": int(time.time()), "chat": {"id": payload.get("chat_id")}}
        return web.json_response({"ok": True, "result": result})
