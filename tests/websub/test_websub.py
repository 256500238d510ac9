"""WebSub subscriber: discovery, signatures, protocol rules, hub requests and the callback server."""

from __future__ import annotations

import asyncio
import queue
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from alerts.errors import FeedRejected, FetchError
from alerts.websub.discovery import Hub, discover, parse_link_header
from alerts.websub.hub import HubError, subscribe_sync
from alerts.websub.protocol import (
    MAX_LEASE,
    PendingRequest,
    Subscription,
    activated,
    callback_base,
    callback_url,
    is_live,
    lease_from,
    needs_renewal,
    new_secret,
    new_token,
    renewal,
    unsubscription,
    verify_intent,
)
from alerts.websub.server import InMemoryRegistry, OnContent, make_app
from alerts.websub.signature import METHODS, sign, verify
from tests.harness.servers import ThreadedServer

TOPIC = "https://news.example/feed.atom"
HUB = "https://hub.example/"
ATOM_NS = "http://www.w3.org/2005/Atom"
PUSHED = (
    f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="{ATOM_NS}"><title>Wire</title>'
    f'<link rel="self" href="{TOPIC}"/><entry><title>Quake hits the coast</title>'
    "<id>urn:1</id><link href='https://news.example/1'/></entry></feed>"
).encode()

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """One request without proxies; returns (status, body) for error statuses too."""
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    try:
        with _OPENER.open(request, timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


TOKEN = "tok-" + "A" * 28  # the callback token of the tests' requests


def request(
    feed: str = "wire", token: str = TOKEN, secret: str = "s3cret-value", lease: int | None = 600,
    **changes: Any,
) -> PendingRequest:  # fmt: skip
    """A pending subscribe request for tests."""
    made = PendingRequest(
        feed=feed,
        token=token,
        mode="subscribe",
        hub=HUB,
        topic=TOPIC,
        callback=f"http://127.0.0.1:1/websub/{feed}/{token}",
        secret=secret,
        lease_seconds=lease,
    )
    return replace(made, **changes)


def pending(
    feed: str = "wire", secret: str = "s3cret-value", lease: int | None = 600, **changes: Any
) -> Subscription:
    """A pending subscription for tests (the one :func:`request` asks for)."""
    return replace(request(feed, secret=secret, lease=lease).subscription(), **changes)


def asked(sub: Subscription, registry: InMemoryRegistry | None = None) -> InMemoryRegistry:
    """A registry holding ``sub`` and the pending request that asked for it."""
    registry = registry or InMemoryRegistry()
    registry.put(sub)
    registry.add_pending(
        PendingRequest(sub.feed, sub.token, "subscribe", sub.hub, sub.topic, sub.callback, sub.secret,
                       sub.lease_seconds)
    )  # fmt: skip
    return registry


# --------------------------------------------------------------------------- doubles


class Inbox:
    """An on_content callback recording (feed, body, headers, monotonic arrival)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes, dict[str, str], float]] = []
        self.arrived = threading.Event()

    def __call__(self, feed: str, body: bytes, headers: Mapping[str, str]) -> None:
        self.items.append((feed, body, dict(headers), time.monotonic()))
        self.arrived.set()


@dataclass
class Verification:
    """What the hub double saw when it verified intent at the callback."""

    mode: str
    status: int
    challenge: str
    echoed: str


class HubDouble:
    """A WebSub hub on 127.0.0.1: takes (un)subscription requests, verifies them at the callback, pushes."""

    def __init__(
        self,
        *,
        status: int = 202,
        deny: bool = False,
        lease: int = 600,
        push: bytes | None = None,
        sign_with: str | None = None,
        method: str = "sha256",
        header: str = "X-Hub-Signature",
        delay: float = 0.0,
        verify: bool = True,
    ) -> None:
        self.status = status
        self.verify = verify
        self.deny = deny
        self.lease = lease
        self.push = push
        self.sign_with = sign_with
        self.method = method
        self.header = header
        self.delay = delay
        self.requests: list[dict[str, str]] = []
        self.verifications: list[Verification] = []
        self.pushes: list[tuple[int, float]] = []  # (callback's status, monotonic time sent)
        self.errors: list[str] = []
        self.finished: queue.Queue[None] = queue.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        app = web.Application()
        app.router.add_post("/hub", self._handle)
        self._server = ThreadedServer(app)

    def start(self) -> HubDouble:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """The hub URL."""
        return f"{self._server.base}/hub"

    def wait(self, timeout: float = 5.0) -> None:
        """Block until one request's verification (and push) is over."""
        self.finished.get(timeout=timeout)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        form = {name: str(value) for name, value in (await request.post()).items()}
        self.requests.append(form)
        if self.status != 202:
            return web.Response(status=self.status, text="hub says no")
        if not self.verify:
            self.finished.put(None)
            return web.Response(status=202, text="accepted")
        task = asyncio.get_running_loop().create_task(self._verify_and_push(form))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202, text="accepted")

    async def _verify_and_push(self, form: dict[str, str]) -> None:
        try:
            async with aiohttp.ClientSession() as session:
                callback, topic, mode = form["hub.callback"], form["hub.topic"], form["hub.mode"]
                if self.deny:
                    params = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": "not on the list"}
                    async with session.get(callback, params=params) as resp:
                        self.verifications.append(Verification("denied", resp.status, "", await resp.text()))
                    return
                challenge = secrets.token_urlsafe(16)
                params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
                if mode == "subscribe":
                    params["hub.lease_seconds"] = str(self.lease)
                async with session.get(callback, params=params) as resp:
                    verification = Verification(mode, resp.status, challenge, await resp.text())
                self.verifications.append(verification)
                if verification.status != 200 or verification.echoed != challenge:
                    return
                if mode != "subscribe" or self.push is None:
                    return
                secret = self.sign_with if self.sign_with is not None else form.get("hub.secret", "")
                headers = {
                    "Content-Type": "application/atom+xml",
                    "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"',
                    self.header: sign(secret.encode(), self.push, self.method),
                }
                sent = time.monotonic()
                async with session.post(callback, data=self.push, headers=headers) as resp:
                    self.pushes.append((resp.status, sent))
        except aiohttp.ClientError as exc:
            self.errors.append(repr(exc))
        finally:
            self.finished.put(None)


@pytest.fixture
def make_hub() -> Iterator[Callable[..., HubDouble]]:
    """Starts hub doubles; all are stopped after the test."""
    started: list[HubDouble] = []

    def make(**options: Any) -> HubDouble:
        hub = HubDouble(**options).start()
        started.append(hub)
        return hub

    yield make
    for hub in started:
        hub.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadedServer]]:
    """Serves make_app(...) on 127.0.0.1 from a thread; stopped after the test."""
    started: list[ThreadedServer] = []

    def start(registry: InMemoryRegistry, on_content: OnContent, **options: Any) -> ThreadedServer:
        server = ThreadedServer(make_app(registry, on_content, **options)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- discovery


def test_discover_from_link_header() -> None:
    """Hub and self come from an RFC 8288 Link header with several links and quoted parameters."""
    header = (
        '<https://other.example/x>; rel="alternate"; title="a, b; c", '
        f'<{HUB}>; rel="hub", <{TOPIC}>; rel=self'
    )
    assert discover(b"", header) == Hub(HUB, TOPIC)


def test_link_header_parsing_details() -> None:
    """Rel lists, escapes, valueless params, first-rel-wins and garbage between links are handled."""
    links = parse_link_header(
        'junk, <https://h.example/>; REL="hub self"; title="say \\"hi\\""; crossorigin, '
        "<https://t.example/>; rel=self; rel=hub"
    )
    assert links == [
        ("https://h.example/", {"rel": "hub self", "title": 'say "hi"', "crossorigin": ""}),
        ("https://t.example/", {"rel": "self"}),
    ]
    assert discover(b"", '<https://h.example/>; rel="hub self"') == Hub(
        "https://h.example/", "https://h.example/"
    )


def test_link_header_relative_anchor_and_scheme() -> None:
    """Relative targets resolve against base_url; anchored and non-http links are ignored."""
    header = '<mailto:x@example.org>; rel=hub, <https://a.example/>; rel=hub; anchor="#x", </hub>; rel=hub'
    assert discover(b"", header, base_url=TOPIC) == Hub("https://news.example/hub", TOPIC)
    assert discover(b"", header) is None  # "/hub" cannot be resolved without a base


def test_discover_from_atom() -> None:
    """Feed-level Atom links are found; entry links are not."""
    body = (
        f'<feed xmlns="{ATOM_NS}"><entry><link rel="hub" href="https://wrong.example/"/></entry>'
        f'<link rel="self" href="{TOPIC}"/><link rel="hub" href="{HUB}"/>'
        f'<link rel="hub" href="https://second.example/"/></feed>'
    ).encode()
    assert discover(body, None) == Hub(HUB, TOPIC)


def test_discover_from_rss_atom_link() -> None:
    """RSS 2.0 <atom:link rel="hub"> inside <channel> is found."""
    body = (
        f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="{ATOM_NS}"><channel><title>t</title>'
        "<link>https://news.example/</link>"
        f'<atom:link rel="hub" href="{HUB}"/>'
        f'<atom:link rel="self" href="{TOPIC}" type="application/rss+xml"/>'
        "<item><title>x</title></item></channel></rss>"
    ).encode()
    assert discover(body, None) == Hub(HUB, TOPIC)


def test_header_wins_and_fills_from_document() -> None:
    """The header's hub wins over the document's; a self missing from the header comes from the document."""
    body = (
        f'<feed xmlns="{ATOM_NS}"><link rel="hub" href="https://doc-hub.example/"/>'
        f'<link rel="self" href="{TOPIC}"/></feed>'
    ).encode()
    assert discover(body, f"<{HUB}>; rel=hub") == Hub(HUB, TOPIC)
    assert discover(body, None) == Hub("https://doc-hub.example/", TOPIC)


def test_missing_self_falls_back_to_base_url() -> None:
    """Without rel=self the topic is the fetched URL when given, else there is no usable hub."""
    body = f'<feed xmlns="{ATOM_NS}"><link rel="hub" href="{HUB}"/></feed>'.encode()
    assert discover(body, None) is None
    assert discover(body, None, base_url=TOPIC) == Hub(HUB, TOPIC)


def test_discover_none() -> None:
    """A feed without hub links, or an empty body, yields None."""
    body = f'<feed xmlns="{ATOM_NS}"><link rel="self" href="{TOPIC}"/></feed>'.encode()
    assert discover(body, None) is None
    assert discover(b"", None) is None
    assert discover(b"", '<https://x.example/>; rel="alternate"') is None
    assert discover(b"<html><head><title>x</title></head></html>", None) is None


def test_discover_malformed() -> None:
    """Malformed XML, garbage bytes and a garbled Link header yield None, never an exception."""
    assert discover(f'<feed xmlns="{ATOM_NS}"><link rel="hub" href="{HUB}">'.encode(), None) is None
    assert discover(b"\x00\xff\xfe not xml at all", None) is None
    assert discover(b"", '<unterminated; rel="hub') is None
    assert discover(b"", ';;;,,,<>; rel=hub; "x') is None


def test_discover_refuses_entities() -> None:
    """External entities are never loaded and an entity-expansion bomb is refused quickly."""
    external = (
        '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        f'<feed xmlns="{ATOM_NS}"><title>&x;</title><link rel="hub" href="{HUB}"/>'
        f'<link rel="self" href="{TOPIC}"/></feed>'
    ).encode()
    assert discover(external, None) == Hub(HUB, TOPIC)
    laughs = '<!ENTITY a0 "xxxxxxxxxx">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE feed [{laughs}]><feed xmlns="{ATOM_NS}">'
        '<link rel="hub" href="&a9;"/><title>&a9;</title></feed>'
    ).encode()
    started = time.monotonic()
    assert discover(bomb, None, base_url=TOPIC) is None
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize("method", sorted(METHODS))
def test_sign_and_verify_every_method(method: str) -> None:
    """Each spec method signs as "<method>=<hex>" and verifies; tampering or a wrong secret fails."""
    body = PUSHED
    header = sign(b"secret", body, method)
    assert header.startswith(f"{method}=")
    assert verify(b"secret", body, header)
    assert verify(b"secret", body, header.upper().replace(method.upper() + "=", method + "="))
    assert verify(b"secret", body, f"  {method.upper()}={header.split('=', 1)[1]} ")
    assert not verify(b"secret", body + b" ", header)
    assert not verify(b"secret", body.replace(b"Quake", b"Quack"), header)
    assert not verify(b"other", body, header)


def test_verify_garbled_headers() -> None:
    """Missing, garbled, truncated, non-hex, non-ASCII and unknown-method headers are False."""
    good = sign(b"secret", b"body")
    digest = good.split("=", 1)[1]
    for header in (None, "", "sha256", "sha256=", "=" + digest, digest, good[:-1], "sha256=" + "z" * 64,
                   "sha256=" + "é" * 64, "md5=" + digest, "sha256:" + digest, good + "00"):  # fmt: skip
        assert not verify(b"secret", b"body", header), header
    assert not verify(b"", b"body", good)


def test_sign_refuses_unknown_method_and_empty_secret() -> None:
    """sign() raises ValueError for md5 or an empty secret."""
    with pytest.raises(ValueError):
        sign(b"secret", b"body", "md5")
    with pytest.raises(ValueError):
        sign(b"", b"body")


# --------------------------------------------------------------------------- protocol


def test_verify_intent_cases() -> None:
    """Only a verification naming a pending request of ours, of its mode and topic, is confirmed."""
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c1", "hub.lease_seconds": "600"}
    req = request()
    assert verify_intent(req, params) == "c1"
    assert verify_intent(None, params) is None
    assert verify_intent(req, {**params, "hub.topic": TOPIC + "?x"}) is None
    assert verify_intent(req, {**params, "hub.challenge": ""}) is None
    assert verify_intent(req, {k: v for k, v in params.items() if k != "hub.challenge"}) is None
    for lease in ("abc", "-5", "0", "1e3", "", "+5", "1.5", "-99999999999"):
        assert verify_intent(req, {**params, "hub.lease_seconds": lease}) is None, lease
    assert verify_intent(req, {**params, "hub.lease_seconds": "99999999999"}) == "c1"  # capped, not refused
    assert verify_intent(req, {k: v for k, v in params.items() if k != "hub.lease_seconds"}) == "c1"
    assert verify_intent(req, {**params, "hub.mode": "denied"}) is None
    assert verify_intent(req, {**params, "hub.mode": "publish"}) is None
    unsubscribe = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "c2"}
    assert verify_intent(req, unsubscribe) is None  # we asked to subscribe, not to unsubscribe
    assert verify_intent(replace(req, mode="unsubscribe"), unsubscribe) == "c2"
    assert verify_intent(replace(req, mode="unsubscribe"), params) is None


def test_activated_and_lease() -> None:
    """Activation takes the hub's lease from now (capped at 10 days), or the requested one when the
    hub gives none."""
    req = request(lease=600)
    assert activated(req, {"hub.lease_seconds": "900"}, 1000.0) == replace(
        req.subscription(), state="active", lease_seconds=900, expires_at=1900.0
    )
    assert activated(req, {}, 1000.0).expires_at == 1600.0
    assert activated(req, {"hub.lease_seconds": str(10**10)}, 1000.0).lease_seconds == MAX_LEASE == 864000
    assert activated(request(lease=10**9), {}, 0.0).expires_at == MAX_LEASE
    assert lease_from({"hub.lease_seconds": " 86400 "}) == 86400
    assert lease_from({"hub.lease_seconds": "9999999999"}) == MAX_LEASE
    assert lease_from({"hub.lease_seconds": "9" * 40}) is None
    assert lease_from({}) is None


def test_needs_renewal() -> None:
    """Renew when less than max(60 s, 10% of the lease) remains; never-verified is due; denied is not;
    a record without a callback token, or expiring beyond the cap, is due at once and not live."""
    day = replace(pending(lease=86400), state="active", expires_at=100_000.0)
    assert not needs_renewal(day, 100_000.0 - 8641)
    assert needs_renewal(day, 100_000.0 - 8639)
    assert needs_renewal(day, 200_000.0)  # expired
    assert needs_renewal(day, 100_000.0 - 20_000, margin=0.25)
    short = replace(day, lease_seconds=300)
    assert not needs_renewal(short, 100_000.0 - 61)
    assert needs_renewal(short, 100_000.0 - 59)  # the 60 s floor beats 10% of 300 s
    assert needs_renewal(pending(), 0.0)
    assert not needs_renewal(replace(day, state="denied"), 200_000.0)
    assert not needs_renewal(replace(day, state="unsubscribing"), 200_000.0)
    assert is_live(day, 99_999.0) and not is_live(day, 100_000.0) and not is_live(None, 0.0)
    legacy = replace(day, token="", callback="https://alerts.example/websub/wire")
    assert needs_renewal(legacy, 50_000.0) and not is_live(legacy, 50_000.0)
    year_2343 = replace(day, lease_seconds=9_999_999_999, expires_at=10_000_000_000.0)
    assert needs_renewal(year_2343, 50_000.0) and not is_live(year_2343, 50_000.0)


def test_callback_url_secret_and_storage() -> None:
    """Callback URLs carry a fresh token; secrets; the flat mapping round trip; a repr without secrets."""
    token = new_token()
    assert len(token) == 32 and token != new_token()
    assert (
        callback_url("https://alerts.example/", "bbc-world", token)
        == f"https://alerts.example/websub/bbc-world/{token}"
    )
    assert (
        callback_url("https://alerts.example/push", "x1", token)
        == f"https://alerts.example/push/websub/x1/{token}"
    )
    for bad in ("BBC", "a/b", "", "a b", "../x"):
        with pytest.raises(ValueError):
            callback_url("https://alerts.example", bad, token)
    for bad in ("", "short", "a/b" * 10, "x" * 200, "é" * 20):
        with pytest.raises(ValueError):
            callback_url("https://alerts.example", "x1", bad)
    assert (
        callback_base(f"https://alerts.example/push/websub/x1/{token}", "x1") == "https://alerts.example/push"
    )
    assert callback_base("https://alerts.example/websub/x1", "x1") == "https://alerts.example"  # legacy
    assert callback_base("https://alerts.example/other", "x1") is None
    one, two = new_secret(), new_secret()
    assert len(one) == 64 and int(one, 16) >= 0 and one != two
    sub = replace(pending(secret=one), state="active", expires_at=1234.5, allow_insecure_hub=True)
    assert Subscription.from_mapping(sub.to_mapping()) == sub
    assert Subscription.from_mapping(pending(lease=None).to_mapping()) == pending(lease=None)
    legacy = {k: v for k, v in sub.to_mapping().items() if k not in ("token", "allow_insecure_hub")}
    assert Subscription.from_mapping(legacy) == replace(sub, token="", allow_insecure_hub=False)
    assert one not in repr(sub) and TOKEN not in repr(sub)
    with pytest.raises(ValueError):
        Subscription.from_mapping({**sub.to_mapping(), "state": "zombie"})
    req = request(secret=one)
    assert PendingRequest.from_mapping(req.to_mapping()) == req
    assert one not in repr(req) and TOKEN not in repr(req)
    with pytest.raises(ValueError):
        PendingRequest.from_mapping({**req.to_mapping(), "mode": "denied"})
    renewed = renewal(sub, token)
    assert (renewed.mode, renewed.secret, renewed.hub, renewed.topic) == ("subscribe", one, HUB, TOPIC)
    assert renewed.callback == f"http://127.0.0.1:1/websub/wire/{token}" and renewed.allow_insecure_hub
    leaving = unsubscription(sub)
    assert (leaving.mode, leaving.token, leaving.callback, leaving.secret) == (
        "unsubscribe", sub.token, sub.callback, ""
    )  # fmt: skip


# --------------------------------------------------------------------------- hub requests


def test_subscribe_posts_the_form(make_hub: Callable[..., HubDouble]) -> None:
    """The form carries mode, topic, callback, secret and lease; an unsubscribe carries no secret."""
    hub = make_hub(verify=False)
    callback = f"http://127.0.0.1:9/websub/w/{TOKEN}"
    subscribe_sync(hub.url, TOPIC, callback, "sec", lease_seconds=3600, allow_insecure=True)
    subscribe_sync(hub.url, TOPIC, callback, "sec", mode="unsubscribe")
    hub.wait()
    hub.wait()
    assert hub.requests == [
        {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback,
         "hub.secret": "sec", "hub.lease_seconds": "3600"},
        {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.callback": callback},
    ]  # fmt: skip


def test_secret_never_sent_to_a_plain_http_hub(make_hub: Callable[..., HubDouble]) -> None:
    """Without allow_insecure a subscribe carrying a secret to an http:// hub is refused before any
    request (the secret would travel in the clear); an https:// hub and an unsubscribe are not."""
    hub = make_hub(verify=False)
    with pytest.raises(FeedRejected, match="plain-http hub") as info:
        subscribe_sync(hub.url, TOPIC, "http://127.0.0.1:9/websub/w/" + TOKEN, "TOPSECRET-2")
    assert "TOPSECRET-2" not in str(info.value)
    subscribe_sync(hub.url, TOPIC, "http://127.0.0.1:9/websub/w/" + TOKEN, None, mode="unsubscribe")
    hub.wait()
    assert [form["hub.mode"] for form in hub.requests] == ["unsubscribe"]
    with pytest.raises(FetchError, match="cannot connect"):  # https passes the check (and then fails)
        subscribe_sync(f"https://127.0.0.1:{free_port()}/hub", TOPIC, "http://x/websub/w", "s")


def test_subscribe_errors(make_hub: Callable[..., HubDouble]) -> None:
    """Non-2xx, refused connections and timeouts raise HubError (a FetchError); bad input fails early."""
    refusing = make_hub(status=400)
    slow = make_hub(delay=1.0)
    with pytest.raises(HubError) as info:
        subscribe_sync(refusing.url, TOPIC, "http://127.0.0.1:9/websub/w", "TOPSECRET-1", allow_insecure=True)
    assert info.value.status == 400 and "hub says no" in str(info.value)
    assert "TOPSECRET-1" not in str(info.value)
    with pytest.raises(FetchError, match="cannot connect"):
        subscribe_sync(
            f"http://127.0.0.1:{free_port()}/hub", TOPIC, "http://x/websub/w", "s", allow_insecure=True
        )
    with pytest.raises(HubError, match="timeout"):
        subscribe_sync(slow.url, TOPIC, "http://x/websub/w", "s", timeout=0.2, allow_insecure=True)
    with pytest.raises(FeedRejected):
        subscribe_sync("ftp://hub.example/", TOPIC, "http://x/websub/w", "s")
    with pytest.raises(ValueError):
        subscribe_sync(HUB, TOPIC, "http://x/websub/w", "s", mode="publish")
    with pytest.raises(ValueError):
        subscribe_sync(HUB, TOPIC, "http://x/websub/w", "x" * 200)
    with pytest.raises(FeedRejected):
        subscribe_sync("not a url", TOPIC, "http://127.0.0.1:9/websub/w", "sec")


# --------------------------------------------------------------------------- callback server


def test_healthz_unknown_feed_and_head(serve: Callable[..., ThreadedServer]) -> None:
    """/healthz answers ok; unknown feeds, old tokenless paths and bad names are 404; HEAD never
    verifies anything."""
    registry = asked(pending())
    server = serve(registry, Inbox())
    assert http("GET", f"{server.base}/healthz") == (200, b"ok")
    query = f"hub.mode=subscribe&hub.topic={TOPIC}&hub.challenge=abc&hub.lease_seconds=60"
    assert http("GET", f"{server.base}/websub/nope/{TOKEN}?{query}")[0] == 404
    assert (
        http("POST", f"{server.base}/websub/nope/{TOKEN}", b"x", {"X-Hub-Signature": sign(b"s", b"x")})[0]
        == 404
    )
    assert http("GET", f"{server.base}/websub/Bad_Name/{TOKEN}?{query}")[0] == 404
    assert http("GET", f"{server.base}/websub/wire?{query}")[0] == 404  # the old shape
    assert http("HEAD", f"{server.base}/websub/wire/{TOKEN}?{query}")[0] == 405
    assert registry.get("wire") == pending()
    assert registry.pending("wire", TOKEN) == request()


def test_verification_wrong_topic_is_404(serve: Callable[..., ThreadedServer]) -> None:
    """A challenge for another topic is refused and changes nothing (the request stays pending)."""
    registry = asked(pending())
    server = serve(registry, Inbox())
    url = f"{server.base}/websub/wire/{TOKEN}?hub.mode=subscribe&hub.topic=https://evil.example/&hub.challenge=abc"
    assert http("GET", url)[0] == 404
    assert registry.get("wire") == pending()
    assert registry.pending("wire", TOKEN) == request()


def test_push_signatures_and_size(serve: Callable[..., ThreadedServer]) -> None:
    """All methods pass in X-Hub-Signature; a failing X-Hub-Signature-256 is not excused; 413 over the cap."""
    secret = "s3cret-value"
    registry = InMemoryRegistry(
        {"wire": replace(pending(secret=secret), state="active", expires_at=time.time() + 600)}
    )
    inbox = Inbox()
    server = serve(registry, inbox, max_body=4096)
    url = f"{server.base}/websub/wire/{TOKEN}"
    for method in sorted(METHODS):
        assert http("POST", url, PUSHED, {"X-Hub-Signature": sign(secret.encode(), PUSHED, method)})[0] == 202
    assert http("POST", url, PUSHED, {"X-Hub-Signature-256": sign(secret.encode(), PUSHED)})[0] == 202
    assert len(inbox.items) == len(METHODS) + 1
    with capture_logs() as logs:
        both = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-Hub-Signature": sign(secret.encode(), PUSHED)}
        assert http("POST", url, PUSHED, both)[0] == 202
        assert (
            http("POST", url, PUSHED, {"X-Hub-Signature-256": sign(secret.encode(), PUSHED, "sha1")})[0]
            == 202
        )
        assert http("POST", url, PUSHED)[0] == 202
        big = b"x" * 5000
        assert http("POST", url, big, {"X-Hub-Signature": sign(secret.encode(), big)})[0] == 413
    assert len(inbox.items) == len(METHODS) + 1
    reasons = [entry.get("reason") for entry in logs if entry["event"] == "websub.rejected"]
    assert reasons == ["bad signature", "garbled X-Hub-Signature-256", "missing signature", "too large"]

    async def chunked() -> int:
        async def body() -> AsyncIterator[bytes]:
            yield b"y" * 3000
            yield b"y" * 3000

        async with aiohttp.ClientSession() as session, session.post(url, data=body()) as resp:
            return resp.status

    assert asyncio.run(chunked()) == 413


def test_on_content_async_and_failing(serve: Callable[..., ThreadedServer]) -> None:
    """A coroutine on_content is awaited; an on_content that raises makes the answer 503 (the hub retries)."""
    secret = "s3cret-value"
    got: list[tuple[str, bytes, str]] = []

    async def on_content(feed: str, body: bytes, headers: Mapping[str, str]) -> None:
        got.append((feed, body, headers.get("content-type", "")))

    def broken(feed: str, body: bytes, headers: Mapping[str, str]) -> None:
        raise RuntimeError("broker down")

    active = replace(pending(secret=secret), state="active", expires_at=time.time() + 600)
    ok = serve(InMemoryRegistry({"wire": active}), on_content)
    failing = serve(InMemoryRegistry({"wire": active}), broken)
    headers = {"X-Hub-Signature": sign(secret.encode(), PUSHED), "Content-Type": "application/atom+xml"}
    assert http("POST", f"{ok.base}/websub/wire/{TOKEN}", PUSHED, headers)[0] == 202
    assert got == [("wire", PUSHED, "application/atom+xml")]
    with capture_logs() as logs:
        assert http("POST", f"{failing.base}/websub/wire/{TOKEN}", PUSHED, headers)[0] == 503
    assert [entry["event"] for entry in logs] == ["websub.failed"]


# --------------------------------------------------------------------------- round trips with a hub double


def _ask(registry: InMemoryRegistry, req: PendingRequest) -> None:
    """Remember ``req`` as pending and send it to its hub (a loopback http:// hub double)."""
    registry.add_pending(req)
    secret = req.secret if req.mode == "subscribe" else None
    lease = req.lease_seconds if req.mode == "subscribe" else None
    subscribe_sync(
        req.hub, req.topic, req.callback, secret, mode=req.mode, lease_seconds=lease, allow_insecure=True
    )


def _subscribe(
    registry: InMemoryRegistry, hub: HubDouble, server: ThreadedServer, lease: int = 600
) -> Subscription:
    """Register a pending subscription for feed "wire" and ask the hub double for it (synchronously)."""
    token = new_token()
    req = PendingRequest(
        feed="wire",
        token=token,
        mode="subscribe",
        hub=hub.url,
        topic=TOPIC,
        callback=callback_url(server.base, "wire", token),
        secret=new_secret(),
        lease_seconds=lease,
    )
    registry.put(req.subscription())
    _ask(registry, req)
    return req.subscription()


def test_round_trip_subscribe_verify_push(
    make_hub: Callable[..., HubDouble], serve: Callable[..., ThreadedServer]
) -> None:
    """subscribe -> hub verifies -> active with expiry; the signed push reaches on_content within 1 s."""
    registry, inbox = InMemoryRegistry(), Inbox()
    server = serve(registry, inbox)
    hub = make_hub(push=PUSHED, lease=900)
    with capture_logs() as logs:
        before = time.time()
        sub = _subscribe(registry, hub, server)
        hub.wait()
    assert hub.requests == [
        {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": sub.callback, "hub.secret": sub.secret,
         "hub.lease_seconds": "600"},
    ]  # fmt: skip
    [verification] = hub.verifications
    assert verification.status == 200 and verification.echoed == verification.challenge
    active = registry.get("wire")
    assert active is not None and active.state == "active" and active.lease_seconds == 900
    assert active.expires_at is not None and before + 900 <= active.expires_at <= time.time() + 900
    assert inbox.arrived.wait(1.0)
    [(status, sent)] = hub.pushes
    [(feed, body, headers, arrived)] = inbox.items
    assert status == 202 and feed == "wire" and body == PUSHED
    assert headers["Content-Type"] == "application/atom+xml" and 'rel="hub"' in headers["Link"]
    assert arrived - sent < 1.0
    events = [entry["event"] for entry in logs if entry["event"].startswith("websub.")]
    assert events == ["websub.verified", "websub.received"]
    assert all(entry["feed"] == "wire" and entry["hub"] == hub.url for entry in logs)
    assert sub.secret not in repr(logs)


def test_round_trip_bad_signature_dropped(
    make_hub: Callable[..., HubDouble], serve: Callable[..., ThreadedServer]
) -> None:
    """A push signed with the wrong secret is acknowledged 2xx but dropped and logged as websub.rejected."""
    registry, inbox = InMemoryRegistry(), Inbox()
    server = serve(registry, inbox)
    hub = make_hub(push=PUSHED, sign_with="not-the-secret", header="X-Hub-Signature-256")
    with capture_logs() as logs:
        sub = _subscribe(registry, hub, server)
        hub.wait()
    assert [status for status, _ in hub.pushes] == [202]
    assert inbox.items == []
    rejected = [entry for entry in logs if entry["event"] == "websub.rejected"]
    assert len(rejected) == 1
    assert rejected[0]["feed"] == "wire" and rejected[0]["hub"] == hub.url
    assert rejected[0]["reason"] == "bad signature"
    assert sub.secret not in repr(logs)


def test_round_trip_denied(make_hub: Callable[..., HubDouble], serve: Callable[..., ThreadedServer]) -> None:
    """hub.mode=denied is acknowledged, marks the subscription denied and stops renewals."""
    registry = InMemoryRegistry()
    server = serve(registry, Inbox())
    hub = make_hub(deny=True)
    with capture_logs() as logs:
        _subscribe(registry, hub, server)
        hub.wait()
    assert [(v.mode, v.status) for v in hub.verifications] == [("denied", 200)]
    denied = registry.get("wire")
    assert denied is not None and denied.state == "denied" and denied.expires_at is None
    assert not needs_renewal(denied, time.time())
    [event] = [entry for entry in logs if entry["event"] == "websub.denied"]
    assert event["reason"] == "not on the list" and event["hub"] == hub.url


def test_round_trip_renewal_near_expiry(
    make_hub: Callable[..., HubDouble], serve: Callable[..., ThreadedServer]
) -> None:
    """An active subscription is due only near its lease's end; renewing (a new token, the same
    secret) re-verifies and extends it; pushes then go to the new callback, the old one is 410."""
    registry, inbox = InMemoryRegistry(), Inbox()
    server = serve(registry, inbox)
    hub = make_hub(lease=600)
    _subscribe(registry, hub, server)
    hub.wait()
    first = registry.get("wire")
    assert first is not None and first.state == "active" and first.expires_at is not None
    assert not needs_renewal(first, time.time())
    assert not needs_renewal(first, first.expires_at - 61)
    assert needs_renewal(first, first.expires_at - 59)
    hub.lease = 1200
    _ask(registry, renewal(first, new_token()))
    hub.wait()
    renewed = registry.get("wire")
    assert renewed is not None and renewed.state == "active" and renewed.secret == first.secret
    assert renewed.token != first.token and renewed.callback != first.callback
    assert renewed.lease_seconds == 1200 and renewed.expires_at is not None
    assert renewed.expires_at > first.expires_at + 500
    assert [v.status for v in hub.verifications] == [200, 200]
    signed = {"X-Hub-Signature": sign(first.secret.encode(), PUSHED)}
    assert http("POST", first.callback, PUSHED, signed)[0] == 410  # the stale subscription: gone
    assert http("POST", renewed.callback, PUSHED, signed)[0] == 202
    assert len(inbox.items) == 1


def test_round_trip_unsubscribe(
    make_hub: Callable[..., HubDouble], serve: Callable[..., ThreadedServer]
) -> None:
    """Another party's unsubscribe is refused (404); ours, while pending, is confirmed."""
    registry = InMemoryRegistry()
    server = serve(registry, Inbox())
    hub = make_hub()
    _subscribe(registry, hub, server)
    hub.wait()
    active = registry.get("wire")
    assert active is not None and active.state == "active"
    subscribe_sync(active.hub, active.topic, active.callback, None, mode="unsubscribe")  # not asked by us
    hub.wait()
    assert registry.get("wire") == active
    registry.put(replace(active, state="unsubscribing"))
    _ask(registry, unsubscription(active))
    hub.wait()
    assert [(v.mode, v.status) for v in hub.verifications] == [
        ("subscribe", 200), ("unsubscribe", 404), ("unsubscribe", 200)
    ]  # fmt: skip
    assert hub.verifications[-1].echoed == hub.verifications[-1].challenge
    assert registry.get("wire") is None
