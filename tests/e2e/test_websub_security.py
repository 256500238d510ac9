"""End to end: ``alerts run`` with its WebSub callback server, a publisher and its hub on 127.0.0.1,
and a stranger who knows the public callback base and the feed URL.

The stranger cannot activate a subscription with a lease to the year 2343, cannot deny it, cannot
flood the server, cannot send it oversized bodies; the hub that was asked (its verification naming
the callback token) can, and its pushes alert. A feed whose hub is plain http is not subscribed
(``websub.refused``) unless it says ``allow_insecure_hub: true``, and is polled as usual.

Everything here speaks HTTP to the running service (and reads its log and Redis), nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from alerts.state.store import Store
from tests.harness.configs import write_config
from tests.harness.servers import ThreadedServer, WebhookSink
from tests.harness.worker import WorkerProcess, wait_for

StartWorker = Callable[..., WorkerProcess]
ATOM = "http://www.w3.org/2005/Atom"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=10) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss(hub: str, topic: str, titles: list[str]) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>http://news.test/{t.lower().replace(' ', '-')}</link></item>"
        for t in titles
    )
    return (
        f'<rss version="2.0" xmlns:atom="{ATOM}"><channel><title>wire</title>'
        f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{topic}"/>{items}</channel></rss>'
    ).encode()


class Publisher:
    """Two feeds advertising one plain-http hub (this double) that verifies with a lease of 10^10 s."""

    def __init__(self) -> None:
        self.titles = ["Old story one", "Old story two"]
        self.requests: list[dict[str, str]] = []
        self.verifications: list[tuple[str, int, str]] = []  # (callback, status, echoed)
        self.polls: dict[str, int] = {"wire": 0, "plain": 0}
        app = web.Application()
        app.router.add_get("/{name}.xml", self._feed)
        app.router.add_post("/hub", self._hub)
        self._tasks: set[asyncio.Task[None]] = set()
        self.server = ThreadedServer(app).start()

    def topic(self, name: str) -> str:
        return f"{self.server.base}/{name}.xml"

    @property
    def hub(self) -> str:
        return f"{self.server.base}/hub"

    def body(self, name: str, titles: list[str] | None = None) -> bytes:
        return _rss(self.hub, self.topic(name), titles or self.titles)

    async def _feed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.polls:
            raise web.HTTPNotFound()
        self.polls[name] += 1
        return web.Response(body=self.body(name), content_type="application/rss+xml")

    async def _hub(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        task = asyncio.get_running_loop().create_task(self._verify(form))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_urlsafe(12)
        params = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": str(10**10),
        }
        async with aiohttp.ClientSession() as session, session.get(form["hub.callback"], params=params) as r:
            self.verifications.append((form["hub.callback"], r.status, await r.text()))

    def verified(self) -> list[str]:
        return [callback for callback, status, echoed in self.verifications if status == 200 and echoed]


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    served = Publisher()
    yield served
    served.server.stop()


async def _statuses(url: str, count: int, source: str) -> list[int]:
    """``count`` GETs of ``url`` from the loopback address ``source``, one after another."""
    out: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as session:
        for _ in range(count):
            async with session.get(url) as resp:
                out.append(resp.status)
    return out


def _subscription(store: Store, feed: str) -> dict[str, Any]:
    return {str(k): str(v) for k, v in store.client.hgetall(f"alerts:websub:feed:{feed}").items()}


def test_strangers_cannot_steer_websub_but_the_hub_can(
    publisher: Publisher, webhook: WebhookSink, start_worker: StartWorker, config_dir: Path, store: Store
) -> None:
    """Forged verification (the year-2343 lease) and forged denial: 404, nothing changes; the hub's
    verification on the token callback activates a lease capped at 10 days; its signed push alerts;
    5 MB+ bodies 413; a flood 429 while another client is served; the plain-http hub of a feed that
    does not allow it is refused once and that feed is polled as usual."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    write_config(
        config_dir,
        feeds=[
            {"name": "wire", "url": publisher.topic("wire"), "every": "1s", "allow_insecure_hub": True},
            {"name": "plain", "url": publisher.topic("plain"), "every": "1s"},
        ],
        subscribers=[{"name": "desk", "notify": [webhook.apprise_url]}],
        subscriptions=[{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    worker = start_worker(
        via_cli=True,
        ALERTS_WEBSUB_URL=base,
        ALERTS_WEBSUB_LISTEN=f"127.0.0.1:{port}",
        ALERTS_ALLOW_PRIVATE_ADDRESSES="true",
    )
    wait_for(lambda: publisher.verified(), timeout=30, what="the hub's verification of intent")
    [form] = publisher.requests  # only "wire" was subscribed
    assert form["hub.topic"] == publisher.topic("wire") and form["hub.mode"] == "subscribe"
    callback = form["hub.callback"]
    assert callback.startswith(f"{base}/websub/wire/") and len(callback) > len(f"{base}/websub/wire/") + 16
    assert publisher.verified() == [callback]
    sub = _subscription(store, "wire")
    assert sub["state"] == "active" and sub["lease_seconds"] == str(10 * 86400)
    assert time.time() + 10 * 86400 - 60 < float(sub["expires_at"]) <= time.time() + 10 * 86400

    # a stranger who knows the callback base and the topic
    topic = publisher.topic("wire")
    stranger = {"hub.topic": topic, "hub.challenge": "gotcha", "hub.lease_seconds": "9999999999"}
    subscribe = urlencode({"hub.mode": "subscribe", **stranger})
    deny = urlencode({"hub.mode": "denied", "hub.topic": topic})
    plain = urlencode({"hub.mode": "subscribe", **stranger, "hub.topic": publisher.topic("plain")})
    forged = [
        f"{base}/websub/wire?{subscribe}",
        f"{base}/websub/wire/{secrets.token_urlsafe(24)}?{subscribe}",
        f"{base}/websub/wire?{deny}",
        f"{base}/websub/wire/{secrets.token_urlsafe(24)}?{deny}",
        f"{callback}?{deny}",  # the live callback itself
        f"{callback}?{subscribe}",  # nothing pending on it
        f"{base}/websub/plain?{plain}",
    ]
    for url in forged:
        status, body = _http("GET", url)
        assert status == 404 and body != b"gotcha", url
    assert _subscription(store, "wire") == sub
    assert _subscription(store, "plain") == {}

    # the hub pushes a new item, signed with the secret it was given
    pushed = publisher.body("wire", ["Earthquake hits Lima", *publisher.titles])
    signature = "sha256=" + hmac.new(form["hub.secret"].encode(), pushed, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/rss+xml", "X-Hub-Signature-256": signature}
    assert _http("POST", callback, pushed, headers)[0] == 202
    wait_for(lambda: webhook.titles(), timeout=15, what="the alert from the push")
    assert webhook.titles() == ["Earthquake hits Lima"]

    # oversized bodies
    big = b"<" * (5 * 1024 * 1024 + 1)
    assert _http("POST", callback, big, {"X-Hub-Signature-256": "sha256=" + "0" * 64})[0] == 413
    assert _http("GET", f"{callback}?hub.mode=subscribe", b"x" * 4096)[0] == 413

    # a flood from one client, another client still served
    probe = f"{base}/websub/wire/{secrets.token_urlsafe(24)}?hub.mode=subscribe"
    flood = asyncio.run(_statuses(probe, 400, "127.0.0.3"))
    assert 429 in flood and flood[0] == 404
    assert asyncio.run(_statuses(probe, 5, "127.0.0.4")) == [404] * 5

    # the plain-http hub of "plain" was never asked, and "plain" kept its 1 s polls
    polls = publisher.polls["plain"]
    wait_for(lambda: publisher.polls["plain"] >= polls + 3, timeout=20, what="3 more polls of plain")
    assert [f["hub.topic"] for f in publisher.requests] == [topic]
    refused = [e for e in worker.events("websub.refused") if e.get("feed") == "plain"]
    assert len(refused) == 1 and "plain-http" in refused[0]["reason"]
    assert _subscription(store, "wire")["state"] == "active"
    assert form["hub.secret"] not in worker.text()
