"""WebSub that strangers cannot steer: verifications and denials only for requests we made, capped
leases, body and rate limits on the callback server, malformed requests survived, and no
``hub.secret`` sent to a plain-http hub. The registry is the real one (Redis, its Lua script)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from structlog.testing import capture_logs

from alerts.ingest.fetch import FetchResult, Validators
from alerts.models import Feed
from alerts.state import keys
from alerts.state.store import Store
from alerts.websub import subscriptions
from alerts.websub.protocol import (
    MAX_LEASE,
    PendingRequest,
    Subscription,
    callback_url,
    is_live,
    is_token,
    needs_renewal,
    new_secret,
    new_token,
)
from alerts.websub.server import MAX_BODY, TokenBuckets, make_app
from alerts.websub.signature import sign
from tests.harness.servers import ThreadedServer
from tests.websub.test_websub import PUSHED, TOPIC, HubDouble, Inbox, http

YEAR_2343 = "9999999999"  # the lease a stranger answered with
TEN_DAYS = 10 * 86400


@pytest.fixture
def hubs() -> Iterator[Callable[..., HubDouble]]:
    """Starts hub doubles on 127.0.0.1; all are stopped after the test."""
    started: list[HubDouble] = []

    def make(**options: Any) -> HubDouble:
        hub = HubDouble(**options).start()
        started.append(hub)
        return hub

    yield make
    for hub in started:
        hub.stop()


@pytest.fixture
def callback(store: Store) -> Iterator[Callable[..., tuple[ThreadedServer, Inbox]]]:
    """Serves the callback application over the Redis registry; stopped after the test."""
    started: list[ThreadedServer] = []

    def start(**options: Any) -> tuple[ThreadedServer, Inbox]:
        inbox = Inbox()
        server = ThreadedServer(make_app(subscriptions.RedisRegistry(store), inbox, **options)).start()
        started.append(server)
        return server, inbox

    yield start
    for server in started:
        server.stop()


def websub_keys(store: Store) -> dict[str, Any]:
    """Every WebSub key in Redis with its content (to show that nothing changed)."""
    out: dict[str, Any] = {}
    for key in sorted(str(key) for key in store.client.keys(keys.WEBSUB + "*")):
        kind = store.client.type(key)
        out[key] = store.client.hgetall(key) if kind == "hash" else sorted(store.client.smembers(key))
    return out


def ask(store: Store, base: str, hub: str = "https://hub.example/", feed: str = "wire") -> PendingRequest:
    """What after_poll records before it asks a hub: the pending subscription and its request."""
    token = new_token()
    req = PendingRequest(
        feed, token, "subscribe", hub, TOPIC, callback_url(base, feed, token), new_secret(), 3600
    )
    registry = subscriptions.RedisRegistry(store)
    registry.put(req.subscription())
    registry.add_pending(req)
    return req


def active(store: Store, base: str, feed: str = "live", expires_in: float = 3600.0) -> Subscription:
    """An active subscription with no request pending."""
    token = new_token()
    sub = Subscription(
        feed=feed, hub="https://hub.example/", topic=TOPIC, callback=callback_url(base, feed, token),
        secret=new_secret(), lease_seconds=3600, expires_at=time.time() + expires_in, state="active",
        token=token,
    )  # fmt: skip
    subscriptions.RedisRegistry(store).put(sub)
    return sub


def query(mode: str = "subscribe", topic: str = TOPIC, lease: str | None = YEAR_2343, **more: str) -> str:
    params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": "forged-challenge", **more}
    if lease is not None:
        params["hub.lease_seconds"] = lease
    return "?" + urlencode(params)


def fetched(hub_url: str, topic: str = TOPIC) -> FetchResult:
    """A poll's response advertising ``hub_url`` in its Link header."""
    return FetchResult(
        url=topic, status=200, body=b"<rss/>", content_type="application/rss+xml",
        validators=Validators(), not_modified=False, elapsed=0.01,
        link=f'<{hub_url}>; rel="hub", <{topic}>; rel="self"',
    )  # fmt: skip


# --------------------------------------------------------------------------- verification of intent


def test_forged_verifications_are_refused_and_change_nothing(
    store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """Wrong, missing or another feed's token, the right token with a wrong topic or mode or a bad
    lease, and a subscribe on an active callback with nothing pending: 404, nothing recorded."""
    server, _ = callback()
    req = ask(store, server.base)
    live = active(store, server.base)
    before = websub_keys(store)
    forged = [
        f"/websub/wire/{new_token()}{query()}",  # a token we never made
        f"/websub/wire{query()}",  # no token (the old callback shape)
        f"/websub/wire/{req.token}{query(topic='https://evil.example/feed')}",  # wrong topic
        f"/websub/wire/{req.token}{query(topic=TOPIC + '/')}",
        f"/websub/wire/{req.token}{query(mode='unsubscribe')}",  # a mode we did not ask for
        f"/websub/wire/{req.token}{query(lease='-5')}",  # an unusable lease
        f"/websub/wire/{req.token}{query(lease='1e99')}",
        f"/websub/wire/{req.token}{query(mode='publish')}",
        f"/websub/live/{req.token}{query()}",  # the token of another feed
        f"/websub/live/{live.token}{query()}",  # the active callback, no request pending
        f"/websub/live/{live.token}{query(mode='unsubscribe', lease=None)}",
    ]
    with capture_logs() as logs:
        for path in forged:
            assert http("GET", server.base + path)[0] == 404, path
    assert websub_keys(store) == before
    reasons = [entry["reason"] for entry in logs if entry["event"] == "websub.refused"]
    assert reasons == [
        "no pending request",
        "wrong topic",
        "wrong topic",
        "mode not requested",
        "bad lease",
        "bad lease",
        "unknown mode",
        "no pending request",
        "no pending request",
        "no pending request",
    ]  # fmt: skip (the tokenless path is no route at all)
    assert req.token not in repr(logs) and live.token not in repr(logs)

    genuine = f"{server.base}/websub/wire/{req.token}{query(lease='600')}"
    assert http("GET", genuine) == (200, b"forged-challenge")  # the hub we asked
    assert http("GET", genuine)[0] == 404, "a request is confirmed once (no replay)"
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.state == "active" and sub.token == req.token and sub.lease_seconds == 600
    assert subscriptions.RedisRegistry(store).pending("wire", req.token) is None


def test_pending_requests_expire(store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]) -> None:
    """A request not verified within its time to live is no longer confirmed."""
    server, _ = callback()
    req = ask(store, server.base)
    assert 3500 < store.client.ttl(keys.websub_pending("wire", req.token)) <= subscriptions.PENDING_TTL
    store.client.pexpire(keys.websub_pending("wire", req.token), 1)
    time.sleep(0.05)
    assert http("GET", f"{server.base}/websub/wire/{req.token}{query(lease='600')}")[0] == 404
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.state == "pending"


@pytest.mark.parametrize("lease", [str(10**10), YEAR_2343, str(TEN_DAYS + 1)])
def test_a_huge_lease_is_capped_at_ten_days(
    lease: str, store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """A hub granting 10^10 s (or the year-2343 lease) is recorded as 10 days: renewed in time."""
    server, _ = callback()
    req = ask(store, server.base)
    before = time.time()
    assert http("GET", f"{server.base}/websub/wire/{req.token}{query(lease=lease)}")[0] == 200
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.lease_seconds == MAX_LEASE == TEN_DAYS
    assert sub.expires_at is not None and before + TEN_DAYS <= sub.expires_at <= time.time() + TEN_DAYS
    assert is_live(sub, time.time()) and needs_renewal(sub, sub.expires_at - 0.1 * TEN_DAYS + 1)


def test_lease_cap_through_a_hub(
    store: Store, hubs: Callable[..., HubDouble], callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """The whole round trip with a hub that grants 10^10 s: active for 10 days, the push arrives."""
    server, inbox = callback()
    hub = hubs(lease=10**10, push=PUSHED)
    feed = Feed(name="wire", url=TOPIC, allow_insecure_hub=True)  # the loopback hub is plain http
    subscriptions.after_poll(store, feed, fetched(hub.url), server.base, 86400)
    hub.wait()
    [verification] = hub.verifications
    assert verification.status == 200
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.state == "active" and sub.lease_seconds == TEN_DAYS
    assert inbox.arrived.wait(2) and inbox.items[0][1] == PUSHED


def test_forged_denied_is_ignored_and_a_real_one_honoured(
    store: Store, hubs: Callable[..., HubDouble], callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """hub.mode=denied on an active callback, an unknown token or with the wrong topic changes
    nothing; the denial of a request we made (its token) marks the subscription denied."""
    server, _ = callback()
    live = active(store, server.base)
    req = ask(store, server.base, feed="wire")
    before = websub_keys(store)
    denied = {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "forged"}
    with capture_logs() as logs:
        for path in (
            f"/websub/live/{live.token}?{urlencode(denied)}",
            f"/websub/live/{new_token()}?{urlencode(denied)}",
            f"/websub/wire/{req.token}?{urlencode({**denied, 'hub.topic': 'https://evil.example/'})}",
            f"/websub/wire/{new_token()}?{urlencode(denied)}",
        ):
            assert http("GET", server.base + path)[0] == 404, path
    assert websub_keys(store) == before
    assert not [entry for entry in logs if entry["event"] == "websub.denied"]
    assert subscriptions.live(store, "live")

    hub = hubs(deny=True)
    feed = Feed(name="news", url=TOPIC, allow_insecure_hub=True)
    with capture_logs() as logs:
        subscriptions.after_poll(store, feed, fetched(hub.url), server.base, 86400)
        hub.wait()
    assert [(v.mode, v.status) for v in hub.verifications] == [("denied", 200)]
    sub = subscriptions.RedisRegistry(store).get("news")
    assert sub is not None and sub.state == "denied" and sub.expires_at is None
    assert not needs_renewal(sub, time.time())
    [event] = [entry for entry in logs if entry["event"] == "websub.denied"]
    assert event["feed"] == "news" and event["reason"] == "not on the list" and event["hub"] == hub.url


def test_pushes_only_on_the_active_callback(
    store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """Content is taken on the active subscription's token only: another token of the feed is 410
    (the hub may drop it), a pending subscription takes none, an unknown feed is 404."""
    server, inbox = callback()
    live = active(store, server.base)
    req = ask(store, server.base)
    signed = {"X-Hub-Signature-256": sign(live.secret.encode(), PUSHED)}
    assert http("POST", f"{server.base}/websub/live/{new_token()}", PUSHED, signed)[0] == 410
    assert http("POST", f"{server.base}/websub/nope/{live.token}", PUSHED, signed)[0] == 404
    pending_signed = {"X-Hub-Signature-256": sign(req.secret.encode(), PUSHED)}
    assert http("POST", req.callback, PUSHED, pending_signed)[0] == 410
    assert inbox.items == []
    assert http("POST", live.callback, PUSHED, signed)[0] == 202
    assert [item[0] for item in inbox.items] == ["live"]


# --------------------------------------------------------------------------- limits of the server


def test_bodies_over_the_limit_get_413(
    store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """A push over 5 MB is 413 before it is read; a verification carrying a body over 1 KB is 413
    (declared or chunked) and changes nothing."""
    server, inbox = callback()
    live = active(store, server.base)
    req = ask(store, server.base)
    big = b"<" * (MAX_BODY + 1)
    with capture_logs() as logs:
        assert (
            http("POST", live.callback, big, {"X-Hub-Signature": sign(live.secret.encode(), big)})[0] == 413
        )
    assert inbox.items == [] and [e["reason"] for e in logs if e["event"] == "websub.rejected"] == [
        "too large"
    ]
    just = b"x" * MAX_BODY  # the limit itself is fine (its signature is not, so it is dropped)
    assert http("POST", live.callback, just, {"X-Hub-Signature": "sha256=" + "0" * 64})[0] == 202
    before = websub_keys(store)
    verify = req.callback + query(lease="600")
    assert http("GET", verify, b"x" * 2048, {"Content-Type": "text/plain"})[0] == 413

    async def chunked_get() -> int:
        async def body() -> Any:
            for _ in range(4):
                yield b"y" * 1000

        async with aiohttp.ClientSession() as session, session.get(verify, data=body()) as resp:
            return resp.status

    assert asyncio.run(chunked_get()) == 413
    assert websub_keys(store) == before
    assert http("GET", verify) == (200, b"forged-challenge")


async def _statuses(url: str, count: int, source: str) -> list[tuple[int, str | None]]:
    """``count`` GETs of ``url`` sent from the loopback address ``source``, one after another."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    out: list[tuple[int, str | None]] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(count):
            async with session.get(url) as resp:
                out.append((resp.status, resp.headers.get("Retry-After")))
    return out


def test_a_flood_from_one_client_gets_429_while_another_is_served(
    store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """Beyond its burst one client IP gets 429 with Retry-After (logged once); another IP is still
    answered, and so is /healthz."""
    server, _ = callback(rate=1.0, burst=5)
    url = f"{server.base}/websub/wire/{new_token()}{query()}"
    with capture_logs() as logs:
        flood = asyncio.run(_statuses(url, 30, "127.0.0.1"))
        other = asyncio.run(_statuses(url, 3, "127.0.0.2"))
    assert [status for status, _ in flood[:5]] == [404] * 5
    assert {status for status, _ in flood[5:]} == {429}
    assert all(after is not None and int(after) >= 1 for _, after in flood[5:])
    assert [status for status, _ in other] == [404] * 3
    assert http("GET", f"{server.base}/healthz") == (200, b"ok")
    throttled = [entry for entry in logs if entry["event"] == "websub.throttled"]
    assert [entry["client"] for entry in throttled] == ["127.0.0.1"]
    time.sleep(1.1)  # a token came back
    assert asyncio.run(_statuses(url, 1, "127.0.0.1"))[0][0] == 404


def test_token_buckets_refill_and_stay_bounded() -> None:
    """Buckets refill at their rate, report the wait, and never hold more than max_clients."""
    now = [0.0]
    buckets = TokenBuckets(2.0, 3, clock=lambda: now[0], max_clients=100)
    assert [buckets.take("a")[0] for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == (0.5, True) and buckets.take("a") == (0.5, False)
    now[0] += 0.5
    assert buckets.take("a") == (0.0, False)
    for i in range(1000):
        buckets.take(f"10.0.{i // 256}.{i % 256}")
        now[0] += 0.001
    assert len(buckets) <= 100
    with pytest.raises(ValueError):
        TokenBuckets(0, 1)


def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes to the server; what it answered until it closed (or went quiet for 1 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_malformed_requests_never_crash_the_server(
    store: Store, callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """Garbage, bad encodings, huge headers, bad lengths and broken chunking get 4xx answers (or a
    closed connection); a body that never completes is 408 after the body timeout; the server keeps
    answering and nothing is recorded."""
    server, inbox = callback(body_timeout=0.5)
    live = active(store, server.base)
    req = ask(store, server.base)
    before = websub_keys(store)
    path = f"/websub/wire/{req.token}".encode()
    push = f"/websub/live/{live.token}".encode()

    def raw(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
        return b"\r\n".join([line + b" HTTP/1.1", b"Host: x", b"Connection: close", *headers, b"", body])

    attempts = [
        b"GARBAGE\r\n\r\n",
        b"\x00\xff\xfe\r\n\r\n",
        raw(b"GET " + path + b"?hub.mode=%ZZ&hub.topic=%FF%FE%00&hub.challenge=%E2%82"),
        raw(b"GET " + path + b"?hub.mode=subscribe&hub.mode=denied&&&=&hub.topic"),
        raw(b"GET " + path + b"?" + b"a" * 20000),
        raw(b"GET /healthz", b"X-Big: " + b"b" * 100_000),
        raw(b"POST " + push, b"Content-Length: -1"),
        raw(b"POST " + push, b"Content-Length: 99999999999999999999"),
        raw(b"POST " + push, b"Content-Length: 5", b"Content-Length: 6", body=b"abcde"),
        raw(b"POST " + push, b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"),
        raw(b"POST " + push, b"Content-Length: 100", body=b"short"),  # never completed
        raw(b"GET " + path, b"Transfer-Encoding: chunked", body=b"5\r\nab"),  # never completed
        raw(b"GET /websub/wire/" + b"\xc3\x28" * 20),
        raw(b"GET /websub/../../etc/passwd"),
        raw(b"PUT " + path, b"Content-Length: 0"),
    ]
    statuses = []
    with capture_logs() as logs:
        for data in attempts:
            answer = _raw(server.port, data)
            statuses.append(int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None)
            assert http("GET", f"{server.base}/healthz") == (200, b"ok"), data[:60]
    assert statuses == [400, 400, 404, 404, 400, 400, 400, 400, 400, 400, 408, 408, 400, 404, 405], statuses
    assert not [entry for entry in logs if entry["event"] == "websub.error"]
    assert websub_keys(store) == before and inbox.items == []


# --------------------------------------------------------------------------- plain-http hubs


def test_a_plain_http_hub_is_refused_unless_the_feed_allows_it(
    store: Store, hubs: Callable[..., HubDouble], callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """No request goes to an http:// hub (one websub.refused line, however many polls) unless the
    feed says allow_insecure_hub; then it is subscribed, verified and pushes arrive."""
    server, inbox = callback()
    hub = hubs(push=PUSHED)
    strict = Feed(name="wire", url=TOPIC)
    with capture_logs() as logs:
        for _ in range(3):
            subscriptions.after_poll(store, strict, fetched(hub.url), server.base, 86400)
    assert hub.requests == [] and subscriptions.RedisRegistry(store).get("wire") is None
    [refused] = [entry for entry in logs if entry["event"] == "websub.refused"]
    assert refused["feed"] == "wire" and "plain-http" in refused["reason"] and refused["hub"] == hub.url

    subscriptions.after_poll(
        store, replace(strict, allow_insecure_hub=True), fetched(hub.url), server.base, 86400
    )
    hub.wait()
    [form] = hub.requests
    prefix = f"{server.base}/websub/wire/"
    assert form["hub.callback"].startswith(prefix) and is_token(form["hub.callback"].removeprefix(prefix))
    assert len(form["hub.secret"]) == 64 and form["hub.lease_seconds"] == "86400"
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.state == "active" and sub.allow_insecure_hub
    assert inbox.arrived.wait(2)


def test_renewal_through_a_plain_http_hub_needs_the_feed_allowing_it(
    store: Store, hubs: Callable[..., HubDouble], callback: Callable[..., tuple[ThreadedServer, Inbox]]
) -> None:
    """A record from before tokens (the stranger's year-2343 lease, a plain-http hub) is not live and
    is not renewed through that hub; once the feed allows the hub, renewal asks with a tokened
    callback, and the hub's verification makes it live for at most 10 days."""
    server, _ = callback()
    hub = hubs(lease=10**10)
    store.websub.put("wire", {
        "feed": "wire", "hub": hub.url, "topic": TOPIC, "callback": f"{server.base}/websub/wire",
        "secret": "old-secret", "lease_seconds": YEAR_2343, "expires_at": "11640000000.0", "state": "active",
    })  # fmt: skip
    assert not subscriptions.live(store, "wire")
    with capture_logs() as logs:
        assert subscriptions.renew(store) == 0
        assert subscriptions.renew(store) == 0
    assert hub.requests == []
    assert [e["feed"] for e in logs if e["event"] == "websub.refused"] == ["wire"]

    allowed = Feed(name="wire", url=TOPIC, allow_insecure_hub=True)
    subscriptions.after_poll(store, allowed, fetched(hub.url), server.base, 86400)  # notes the setting
    assert hub.requests == []
    assert subscriptions.renew(store) == 1
    hub.wait()
    [form] = hub.requests
    assert (
        form["hub.callback"].startswith(f"{server.base}/websub/wire/") and form["hub.secret"] == "old-secret"
    )
    assert form["hub.lease_seconds"] == str(TEN_DAYS)
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and sub.state == "active" and sub.lease_seconds == TEN_DAYS
    assert subscriptions.live(store, "wire")

    subscriptions.after_poll(
        store, replace(allowed, allow_insecure_hub=False), fetched(hub.url), server.base, 1
    )
    sub = subscriptions.RedisRegistry(store).get("wire")
    assert sub is not None and not sub.allow_insecure_hub
    store.client.delete(keys.websub_attempt("wire"))
    assert subscriptions.renew(store, now=time.time() + TEN_DAYS) == 0
    assert len(hub.requests) == 1
