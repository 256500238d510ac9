"""Untrusted content stays untrusted: item links, hubs and redirects never reach an internal address.

An "internal" listener on 127.0.0.2 (loopback, but not the feeds' address) counts every connection;
the feeds the admin wrote are on 127.0.0.1 and trusted as written. The HTTP layer is tested directly,
then the pipeline (``poll_feed`` with a Runtime built from Settings): the healthy alert still goes
out, the feed is failed only when its own URL's redirect is refused.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.errors import AddressRefused, FeedRejected, FetchError
from alerts.ingest import http
from alerts.ingest import loop as loop_module
from alerts.ingest.addresses import AddressPolicy
from alerts.ingest.fetch import FetchResult, Validators, fetch_many, fetch_one
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from tests.harness.configs import write_config
from tests.harness.servers import Entry
from tests.ingest.listeners import (
    INTERNAL_TITLE,
    Listener,
    Newsroom,
    ScriptedResolver,
    listener_pair,
    simulate_internet,
)

UNREACHABLE = "json://127.0.0.1:9/unused"  # a valid Apprise URL these tests never send to


class Recorder:
    """A dispatch that records every (alert, target) job."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        self.jobs.extend(jobs)

    def alerts(self) -> list[Alert]:
        return [alert for alert, _ in self.jobs]


@pytest.fixture(autouse=True)
def strict() -> Iterator[None]:
    """The deployment's default: private addresses refused for content (whatever ran before)."""
    before = http.private_addresses_allowed()
    http.allow_private_addresses(False)
    yield
    http.allow_private_addresses(before)


@pytest.fixture
def internal() -> Iterator[Listener]:
    listener = Listener("127.0.0.2").start()
    yield listener
    listener.stop()


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    site = Newsroom().start()
    yield site
    site.stop()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedResolver]:
    """Names resolved by a script; 127.0.0.1 stands for a public address (see simulate_internet)."""
    resolver = ScriptedResolver({})
    simulate_internet(monkeypatch, resolver)
    yield resolver
    loop_module.shutdown()  # drop the sessions (and DNS caches) that used the script


def _refused(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [event for event in logs if event["event"] == "fetch.refused"]


# --------------------------------------------------------------------------- the HTTP layer


def test_a_content_link_to_an_internal_address_is_refused_before_any_connection(internal: Listener) -> None:
    """A link from content to 127.0.0.2 raises AddressRefused and logs one fetch.refused line (host
    and address class, never the path or query); nothing reaches the listener."""
    policy = AddressPolicy(feed="wire")
    with capture_logs() as logs, pytest.raises(AddressRefused, match="loopback") as info:
        http.get_one(f"{internal.base}/admin?token=s3cret", {}, policy=policy)
    assert (info.value.host, info.value.address, info.value.reason) == ("127.0.0.2", "127.0.0.2", "loopback")
    assert isinstance(info.value, FeedRejected)
    [line] = _refused(logs)
    assert line["feed"] == "wire" and line["reason"] == "loopback" and line["host"] == "127.0.0.2"
    assert "s3cret" not in repr(line) and "/admin" not in repr(line) and "s3cret" not in str(info.value)
    [result] = fetch_many([(f"{internal.base}/x", Validators())])
    assert isinstance(result, AddressRefused)
    assert internal.touched == 0
    back = pickle.loads(pickle.dumps(info.value))
    assert (type(back), str(back), back.reason) == (AddressRefused, str(info.value), "loopback")


@pytest.mark.parametrize(
    "host", ["127.0.0.2", "[::ffff:127.0.0.2]", "[::1]", "0.0.0.0", "2130706433", "127.1", "localhost"]
)
def test_every_spelling_of_a_local_address_is_refused(host: str, internal: Listener) -> None:
    """IP literals in any form (mapped, IPv6, unspecified, legacy numeric) and names resolving to
    loopback are refused; nothing reaches the listener."""
    with pytest.raises(AddressRefused):
        http.get_one(f"http://{host}:{internal.port}/", {})
    assert internal.touched == 0


def test_a_feed_url_is_trusted_but_its_redirect_to_an_internal_address_is_not(
    internal: Listener, newsroom: Newsroom
) -> None:
    """The admin's feed URL on 127.0.0.1 is fetched as written; its 302 to 127.0.0.2 is refused
    (AddressRefused naming the redirect), unless the feed or the deployment allows private addresses."""
    newsroom.publish(Entry("Gaza", "http://news.test/1"))
    assert fetch_one(f"{newsroom.base}/feed.xml").status == 200  # trusted as written
    newsroom.moved_to = f"{internal.base}/feed.xml?key=abc"
    with capture_logs() as logs, pytest.raises(AddressRefused, match=r"redirected to 127\.0\.0\.2") as info:
        fetch_one(f"{newsroom.base}/moved.xml")
    assert "key=abc" not in str(info.value)
    [line] = _refused(logs)
    assert line["source"] == "redirect" and line["reason"] == "loopback"
    assert internal.touched == 0

    allowed = AddressPolicy(trusted_url=True, allow_private=True, feed="wire", source="feed")
    result = fetch_one(f"{newsroom.base}/moved.xml", policy=allowed)
    assert result.url == f"{internal.base}/feed.xml?key=abc" and INTERNAL_TITLE.encode() in result.body
    assert len(internal.requests) == 1
    http.allow_private_addresses(True)
    assert fetch_one(f"{newsroom.base}/moved.xml").status == 200
    assert len(internal.requests) == 2


def test_an_article_redirect_to_an_internal_address_is_refused(
    internal: Listener, newsroom: Newsroom, dns: ScriptedResolver
) -> None:
    """A link to a (simulated) public site is fetched; its redirect to 127.0.0.2, as a literal or as a
    name resolving there, is refused; only the public hop was made."""
    dns.script = {"news.test": [["127.0.0.1"]], "intranet.test": [["127.0.0.2"]]}
    newsroom.bounce_to = f"{internal.base}/"
    with pytest.raises(AddressRefused, match=r"redirected to 127\.0\.0\.2"):
        http.get_one(f"http://news.test:{newsroom.port}/bounce/a", {})
    newsroom.bounce_to = f"http://intranet.test:{internal.port}/"
    with pytest.raises(AddressRefused, match=r"redirected to intranet\.test.*127\.0\.0\.2: loopback"):
        http.get_one(f"http://news.test:{newsroom.port}/bounce/b", {})
    assert newsroom.bounces == 2 and internal.touched == 0
    newsroom.bounce_to = f"{newsroom.base.replace('127.0.0.1', 'news.test')}/article/"
    assert http.get_one(f"http://news.test:{newsroom.port}/bounce/c", {}).status == 200  # public hops pass


def test_redirects_are_followed_hop_by_hop_and_only_to_http(newsroom: Newsroom) -> None:
    """Every hop's scheme is checked (a redirect to file: or ftp: is refused)."""
    for target in ("file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:6379/_INFO"):
        newsroom.moved_to = target
        with pytest.raises(FeedRejected, match="unusable URL"):
            fetch_one(f"{newsroom.base}/moved.xml")


def test_a_hub_from_content_is_never_posted_to_an_internal_address(internal: Listener) -> None:
    """post_form (what the WebSub code calls with a discovered hub) refuses an internal hub before any
    connection; with ALERTS_ALLOW_PRIVATE_ADDRESSES it posts."""
    with capture_logs() as logs, pytest.raises(AddressRefused, match="hub"):
        http.post_form(f"{internal.base}/hub", {"hub.mode": "subscribe"}, timeout=2)
    [line] = _refused(logs)
    assert line["source"] == "hub" and line["address"] == "127.0.0.2"
    assert internal.touched == 0
    http.allow_private_addresses(True)
    assert http.post_form(f"{internal.base}/hub", {"hub.mode": "subscribe"}, timeout=2)[0] == 202
    assert internal.requests == ["POST /hub HTTP/1.1"]


# --------------------------------------------------------------------------- DNS rebinding


def test_the_guarded_resolver_returns_only_what_it_checked() -> None:
    """Every answer is checked: a public answer is returned as is; the next answer of the same name
    (rebound to a private address) is refused, and so is an answer mixing public and private."""
    inner = ScriptedResolver(
        {"rebind.test": [["93.184.216.34"], ["10.0.0.1"]], "mixed.test": [["93.184.216.34", "10.0.0.1"]]}
    )
    guarded = http.GuardedResolver(inner)

    async def lookups() -> None:
        [first] = await guarded.resolve("rebind.test", 80)
        assert first["host"] == "93.184.216.34"
        with pytest.raises(OSError, match="private"):
            await guarded.resolve("rebind.test", 80)
        with pytest.raises(OSError, match=r"10\.0\.0\.1"):
            await guarded.resolve("mixed.test", 80)

    asyncio.run(lookups())


def test_dns_rebinding_connects_only_to_the_checked_address(dns: ScriptedResolver) -> None:
    """A name answering a (simulated) public address, then a private one: the request connects to
    the address that was checked, with one lookup per connection (no check-then-resolve window),
    and once the name points inside it is refused; nothing reaches 127.0.0.2. With the deployment
    allowing private addresses the same name reaches it."""
    internal, public = listener_pair()
    try:
        dns.script = {
            "rebind.test": [["127.0.0.1"], ["127.0.0.2"]],
            "mixed.test": [["127.0.0.1", "127.0.0.2"]],
        }
        assert http.get_one(f"http://rebind.test:{internal.port}/a", {}).status == 200
        assert len(public.requests) == 1 and internal.touched == 0
        assert dns.lookups == ["rebind.test"]
        loop_module.shutdown()  # a fresh session: the name is looked up again
        with pytest.raises(AddressRefused, match=r"127\.0\.0\.2: loopback"):
            http.get_one(f"http://rebind.test:{internal.port}/b", {})
        with pytest.raises(AddressRefused):
            http.get_one(f"http://mixed.test:{internal.port}/c", {})
        assert dns.lookups == ["rebind.test", "rebind.test", "mixed.test"]
        assert internal.touched == 0 and public.connections == 1
        http.allow_private_addresses(True)
        assert http.get_one(f"http://rebind.test:{internal.port}/d", {}).status == 200
        assert len(internal.requests) == 1
    finally:
        internal.stop()
        public.stop()


# --------------------------------------------------------------------------- through the pipeline


def _runtime(config_dir: Path, redis_url: str, feeds: list[dict[str, Any]], **settings: Any) -> Runtime:
    write_config(
        config_dir,
        feeds=feeds,
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}],
        subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    return Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, **settings))


def _seed(runtime: Runtime, *feeds: str) -> None:
    for name in feeds:
        assert pipeline.poll_feed(runtime, name, Recorder()).status in ("ok", "failed")


@pytest.mark.parametrize("allow", ["none", "feed", "deployment"])
def test_an_enriched_item_linking_inside_alerts_unenriched_and_the_feed_stays_healthy(
    allow: str, internal: Listener, newsroom: Newsroom, config_dir: Path, redis_url: str
) -> None:
    """With enrich on, an item link to 127.0.0.2 is not fetched (one fetch.refused line naming the
    feed); the alert goes out without enrichment and the poll is not failed. A feed's allow_private
    or ALERTS_ALLOW_PRIVATE_ADDRESSES lets enrichment fetch it."""
    feed: dict[str, Any] = {"name": "wire", "url": f"{newsroom.base}/feed.xml", "enrich": True}
    if allow == "feed":
        feed["allow_private"] = True
    runtime = _runtime(config_dir, redis_url, [feed], allow_private_addresses=allow == "deployment")
    _seed(runtime, "wire")
    newsroom.publish(Entry("Gaza crossing reopens", f"{internal.base}/story?key=k1"))
    recorder = Recorder()
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert (report.status, report.alerts) == ("ok", 1)
    [alert] = recorder.alerts()
    assert not [event for event in logs if event["event"] == "feed.failed"]
    assert runtime.store.feeds.get("wire").get("failures") in (None, "0")
    if allow == "none":
        assert internal.touched == 0
        [line] = _refused(logs)
        assert line["feed"] == "wire" and line["reason"] == "loopback" and "k1" not in repr(line)
        assert alert.summary == ""  # not enriched (the article page would give its description)
    else:
        assert internal.requests == ["GET /story?key=k1 HTTP/1.1"]
        assert not _refused(logs) and alert.summary  # enriched from the page


@pytest.mark.parametrize("allow", ["none", "feed", "deployment"])
def test_a_feed_redirected_inside_fails_clearly_while_other_feeds_alert(
    allow: str, internal: Listener, newsroom: Newsroom, config_dir: Path, redis_url: str
) -> None:
    """A feed whose own URL redirects to 127.0.0.2 fails with an error saying so (nothing reaches it);
    a healthy feed of the same config alerts. allow_private on that feed, or the deployment setting,
    lets the redirect through (and its item alerts)."""
    newsroom.moved_to = f"{internal.base}/feed.xml"
    moved: dict[str, Any] = {"name": "moved", "url": f"{newsroom.base}/moved.xml"}
    if allow == "feed":
        moved["allow_private"] = True
    healthy = {"name": "wire", "url": f"{newsroom.base}/feed.xml"}
    runtime = _runtime(config_dir, redis_url, [moved, healthy], allow_private_addresses=allow == "deployment")
    _seed(runtime, "wire")
    newsroom.publish(Entry("Gaza talks resume", "http://news.test/talks"))
    recorder = Recorder()
    assert pipeline.poll_feed(runtime, "wire", recorder).alerts == 1
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "moved", recorder)
    if allow == "none":
        assert report.status == "failed"
        assert report.error and "redirected to 127.0.0.2" in report.error and "loopback" in report.error
        assert "allow_private" in report.error
        assert len(_refused(logs)) == 1 and internal.touched == 0
        [failed] = [event for event in logs if event["event"] == "feed.failed"]
        assert failed["error_type"] == "AddressRefused"
    else:
        assert report.status == "ok" and len(internal.requests) == 1
    assert [alert.title for alert in recorder.alerts()] == ["Gaza talks resume"]


def test_an_article_redirect_inside_is_not_followed_through_the_pipeline(
    internal: Listener, newsroom: Newsroom, config_dir: Path, redis_url: str, dns: ScriptedResolver
) -> None:
    """An item linking to a (simulated) public article that redirects to 127.0.0.2: the public hop is
    made, the redirect refused, the alert goes out unenriched."""
    dns.script = {"news.test": [["127.0.0.1"]]}
    newsroom.bounce_to = f"{internal.base}/story/"
    feed = {"name": "wire", "url": f"{newsroom.base}/feed.xml", "enrich": True}
    runtime = _runtime(config_dir, redis_url, [feed])
    _seed(runtime, "wire")
    newsroom.publish(Entry("Gaza hospital hit", f"http://news.test:{newsroom.port}/bounce/x"))
    recorder = Recorder()
    with capture_logs() as logs:
        assert pipeline.poll_feed(runtime, "wire", recorder).alerts == 1
    [line] = _refused(logs)
    assert line["source"] == "redirect" and line["feed"] == "wire"
    assert newsroom.bounces == 1 and internal.touched == 0


def test_a_hub_advertised_inside_is_not_posted_to_and_the_alert_goes_out(
    internal: Listener, newsroom: Newsroom, config_dir: Path, redis_url: str
) -> None:
    """A feed advertising a hub on 127.0.0.2 (allow_insecure_hub, so only the address stands in the
    way): no subscription request reaches it, the poll is fine and its alert goes out."""
    newsroom.hub = f"{internal.base}/hub"
    feed = {"name": "wire", "url": f"{newsroom.base}/feed.xml", "allow_insecure_hub": True}
    runtime = _runtime(config_dir, redis_url, [feed], websub_url="http://127.0.0.1:9")
    recorder = Recorder()
    with capture_logs() as logs:
        assert pipeline.poll_feed(runtime, "wire", recorder).status == "ok"  # first poll: subscribes
        newsroom.publish(Entry("Gaza ceasefire announced", "http://news.test/ceasefire"))
        report = pipeline.poll_feed(runtime, "wire", recorder)
    assert (report.status, report.alerts) == ("ok", 1)
    assert internal.touched == 0
    [line] = _refused(logs)
    assert (line["source"], line["address"], line["feed"]) == ("hub", "127.0.0.2", "wire")
    assert [event for event in logs if event["event"] == "websub.subscribe_failed"]


def test_enrichment_fetches_at_most_20_pages_within_the_budget(
    newsroom: Newsroom, config_dir: Path, redis_url: str
) -> None:
    """128 new linked items: at most 20 article GETs (counted at the server), the rest unenriched and
    counted in one line, and the poll's whole enrichment ends within enrich_budget."""
    newsroom.delay = 0.5
    feed = {"name": "wire", "url": f"{newsroom.base}/feed.xml", "enrich": True, "enrich_budget": "2s"}
    runtime = _runtime(config_dir, redis_url, [feed], allow_private_addresses=True)
    _seed(runtime, "wire")
    newsroom.publish(*(Entry(f"Gaza report {n}", f"{newsroom.base}/article/{n}") for n in range(128)))
    recorder = Recorder()
    with capture_logs() as logs:
        started = time.monotonic()
        report = pipeline.poll_feed(runtime, "wire", recorder)
        elapsed = time.monotonic() - started
    assert report.alerts == 128
    assert newsroom.articles <= 20
    [capped] = [event for event in logs if event["event"] == "feed.enrich_capped"]
    assert (capped["fetched"], capped["unenriched"]) == (20, 108)
    assert elapsed < 2.5 + 1.0  # the enrichment within 2.5 s, plus the poll's own work
    enriched = [alert for alert in recorder.alerts() if alert.summary]  # from the article page
    assert 0 < len(enriched) <= 20


def test_fetch_results_are_not_leaked_between_policies(newsroom: Newsroom) -> None:
    """A URL fetched as a trusted feed URL does not make the same URL pass as content later."""
    assert isinstance(fetch_one(f"{newsroom.base}/feed.xml"), FetchResult)
    with pytest.raises(AddressRefused):
        http.get_one(f"{newsroom.base}/feed.xml", {})


def test_a_name_that_does_not_resolve_is_said_in_plain_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine offline (or a wrong name): the poll's error says so, naming the host, not the URL."""
    simulate_internet(monkeypatch, ScriptedResolver({}))
    try:
        with pytest.raises(FetchError) as raised:
            fetch_one("https://feeds.example.org/rss?key=secret")
    finally:
        loop_module.shutdown()
    message = str(raised.value)
    assert message == "cannot find feeds.example.org (DNS): is this machine offline, or is the name wrong?"
