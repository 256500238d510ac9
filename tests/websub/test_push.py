"""WebSub in the service: a polled feed advertising a hub is subscribed, verified, and pushes alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.models import Alert
from alerts.polling import policy
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from alerts.state.schedule import FIRST_POLL_WINDOW
from alerts.state.store import Store
from alerts.websub import subscriptions
from alerts.websub.protocol import Subscription, is_token
from alerts.websub.server import make_app
from alerts.websub.signature import sign
from tests.harness.configs import write_config
from tests.harness.servers import ThreadedServer
from tests.harness.worker import wait_for

UNREACHABLE = "json://127.0.0.1:9/hook"


def rss(hub: str, self_url: str, titles: list[str]) -> bytes:
    """An RSS feed advertising ``hub``."""
    items = "".join(
        f"<item><title>{t}</title><link>http://news.test/{t.lower().replace(' ', '-')}</link></item>"
        for t in titles
    )
    return (
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>wire</title>'
        f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>{items}</channel></rss>'
    ).encode()


class Publisher:
    """A feed on 127.0.0.1 that advertises a WebSub hub, and the hub itself (a test double)."""

    def __init__(self) -> None:
        self.titles = ["Old story one", "Old story two"]
        self.subscriptions: list[dict[str, str]] = []
        self.verified: list[str] = []
        app = web.Application()
        app.router.add_get("/feed.xml", self._feed)
        app.router.add_post("/hub", self._hub)
        self.server = ThreadedServer(app).start()

    @property
    def topic(self) -> str:
        return f"{self.server.base}/feed.xml"

    def body(self) -> bytes:
        return rss(f"{self.server.base}/hub", self.topic, self.titles)

    async def _feed(self, _: web.Request) -> web.Response:
        return web.Response(body=self.body(), content_type="application/rss+xml")

    async def _hub(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.subscriptions.append({k: str(v) for k, v in form.items()})
        asyncio.get_running_loop().create_task(self._verify({k: str(v) for k, v in form.items()}))
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        params = {
            "hub.mode": "subscribe",
            "hub.topic": form["hub.topic"],
            "hub.challenge": "c-42",
            "hub.lease_seconds": "3600",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.get(form["hub.callback"], params=params) as resp,
        ):
            if resp.status == 200 and await resp.text() == "c-42":
                self.verified.append(form["hub.callback"])

    def push(self, secret: str, callback: str) -> int:
        """POST the current feed, signed, to the subscriber's callback (as a hub does)."""

        async def send() -> int:
            body = self.body()
            headers = {
                "Content-Type": "application/rss+xml",
                "X-Hub-Signature-256": sign(secret.encode(), body),
            }
            async with (
                aiohttp.ClientSession() as session,
                session.post(callback, data=body, headers=headers) as r,
            ):
                return r.status

        return asyncio.run(send())


class Recorder:
    """A dispatch that records jobs."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []
        self.arrived: list[float] = []

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        self.jobs.extend(jobs)
        self.arrived.extend(time.time() for _ in jobs)


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    """The publisher with its hub."""
    served = Publisher()
    yield served
    served.server.stop()


def test_polled_feed_with_a_hub_is_subscribed_and_pushes_alert_once(
    publisher: Publisher, config_dir: Path, redis_url: str, store: Store
) -> None:
    """Discovery, subscription, verification of intent, a signed push alerting within a second,
    no second alert when the poll sees the same item, and polling slowed to the safety rate."""
    recorder = Recorder()
    holder: dict[str, Any] = {}

    def on_content(feed: str, body: bytes, headers: Any) -> None:
        pipeline.process_push(holder["runtime"], feed, body, headers.get("Content-Type"), recorder)

    callback_server = ThreadedServer(make_app(subscriptions.RedisRegistry(store), on_content)).start()
    try:
        write_config(
            config_dir,
            [{"name": "wire", "url": publisher.topic, "every": "10s", "allow_insecure_hub": True}],
            [{"name": "desk", "notify": [UNREACHABLE]}],
            [{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
        )
        runtime = Runtime(
            Settings(
                config_dir=config_dir,
                redis_url=redis_url,
                dedupe_window=3600,
                websub_url=callback_server.base,
                allow_private_addresses=True,
            )
        )
        holder["runtime"] = runtime
        pipeline.schedule(runtime, now=time.time() + FIRST_POLL_WINDOW)
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
        [request] = publisher.subscriptions
        assert request["hub.topic"] == publisher.topic and request["hub.mode"] == "subscribe"
        prefix = f"{callback_server.base}/websub/wire/"
        assert request["hub.callback"].startswith(prefix)
        assert is_token(request["hub.callback"].removeprefix(prefix))
        wait_for(lambda: publisher.verified, timeout=5, what="verification of intent")
        subscription = subscriptions.RedisRegistry(store).get("wire")
        assert (
            subscription is not None and subscription.state == "active" and subscriptions.live(store, "wire")
        )

        publisher.titles.insert(0, "Earthquake hits Lima")
        sent = time.time()
        assert publisher.push(request["hub.secret"], request["hub.callback"]) in (200, 202)
        wait_for(lambda: recorder.jobs, timeout=2, what="alert from the push")
        assert recorder.arrived[0] - sent < 1.0
        assert [alert.title for alert, _ in recorder.jobs] == ["Earthquake hits Lima"]

        assert publisher.push("wrong-secret", request["hub.callback"]) in (200, 202)
        assert pipeline.poll_feed(runtime, "wire", recorder).new == 0
        assert len(recorder.jobs) == 1
        next_poll, _ = store.schedule.of(["wire"])["wire"]
        assert next_poll is not None and next_poll >= time.time() + policy.PUSHED_SAFETY_INTERVAL - 5
    finally:
        callback_server.stop()


def test_renewal_asks_the_hub_again_near_expiry(publisher: Publisher, store: Store) -> None:
    """A subscription close to its expiry is renewed with a new callback token and the same secret;
    a fresh one is left alone."""
    registry = subscriptions.RedisRegistry(store)
    old = "a" * 32
    soon = Subscription(
        feed="a",
        hub=f"{publisher.server.base}/hub",
        topic=publisher.topic,
        callback=f"http://127.0.0.1:9/websub/a/{old}",
        secret="s3cret",
        lease_seconds=3600,
        expires_at=time.time() + 30,
        state="active",
        token=old,
        allow_insecure_hub=True,  # the publisher's hub is plain http on loopback
    )
    registry.put(soon)
    registry.put(
        replace(soon, feed="b", callback=f"http://127.0.0.1:9/websub/b/{old}", expires_at=time.time() + 3000)
    )
    assert subscriptions.renew(store) == 1
    [request] = publisher.subscriptions
    assert request["hub.secret"] == "s3cret" and request["hub.lease_seconds"] == "3600"
    token = request["hub.callback"].removeprefix("http://127.0.0.1:9/websub/a/")
    assert is_token(token) and token != old
    pending = registry.pending("a", token)
    assert pending is not None and pending.mode == "subscribe" and pending.secret == "s3cret"
    assert subscriptions.renew(store) == 0, "attempts are throttled"


def test_a_plain_http_hub_is_refused_and_polling_goes_on(
    publisher: Publisher, config_dir: Path, redis_url: str, store: Store
) -> None:
    """A feed advertising an http:// hub, without allow_insecure_hub: no request reaches the hub
    (hub.secret would travel in the clear), one websub.refused line over several polls, and the
    feed is polled at its own interval, alerting as usual."""
    recorder = Recorder()
    write_config(
        config_dir,
        [{"name": "wire", "url": publisher.topic, "every": "10s"}],
        [{"name": "desk", "notify": [UNREACHABLE]}],
        [{"name": "quake", "subscribers": ["desk"], "keywords": ["earthquake"]}],
    )
    runtime = Runtime(
        Settings(
            config_dir=config_dir,
            redis_url=redis_url,
            dedupe_window=3600,
            websub_url="http://127.0.0.1:9",
            allow_private_addresses=True,
        )
    )
    pipeline.schedule(runtime, now=time.time() + FIRST_POLL_WINDOW)
    with capture_logs() as logs:
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
        publisher.titles.insert(0, "Earthquake hits Lima")
        assert pipeline.poll_feed(runtime, "wire", recorder).new == 1
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"
    assert publisher.subscriptions == []
    assert subscriptions.RedisRegistry(store).get("wire") is None and not subscriptions.live(store, "wire")
    [refused] = [entry for entry in logs if entry["event"] == "websub.refused"]
    assert refused["feed"] == "wire" and "plain-http" in refused["reason"]
    assert [alert.title for alert, _ in recorder.jobs] == ["Earthquake hits Lima"]
    next_poll, _ = store.schedule.of(["wire"])["wire"]
    assert next_poll is not None and next_poll <= time.time() + FIRST_POLL_WINDOW + 11  # not 15 min
