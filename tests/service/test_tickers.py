"""HTML tickers and article enrichment through the pipeline, with pages served on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerts.config.settings import Settings
from alerts.errors import ConfigError
from alerts.models import Alert
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from tests.harness.configs import write_config
from tests.harness.servers import ThreadedServer

FIXTURES = Path(__file__).parents[1] / "fixtures"
UNREACHABLE = "json://127.0.0.1:9/hook"


class Recorder:
    """A dispatch that records jobs."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Alert, str]] = []

    def __call__(self, jobs: Sequence[tuple[Alert, str]]) -> None:
        self.jobs.extend(jobs)

    def titles(self) -> list[str]:
        return [alert.title for alert, _ in self.jobs]


class Site:
    """A news site on 127.0.0.1: a ticker page whose lines can change, and article pages."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str | None]] = []
        self.article_delay = 0.0
        self.article_requests = 0
        app = web.Application()
        app.router.add_get("/", self._home)
        app.router.add_get("/news/{slug}", self._article)
        self.server = ThreadedServer(app).start()

    async def _home(self, _: web.Request) -> web.Response:
        items = "".join(
            f'<div class="ticker__item"><a href="{link}">{text}</a></div>'
            if link
            else f'<div class="ticker__item">{text}</div>'
            for text, link in self.lines
        )
        page = f"<html><body><nav>Africa Asia MENA</nav><div class='ticker'>{items}</div></body></html>"
        return web.Response(text=page, content_type="text/html")

    async def _article(self, _: web.Request) -> web.Response:
        import asyncio

        self.article_requests += 1
        await asyncio.sleep(self.article_delay)
        return web.Response(
            body=(FIXTURES / "almayadeen_article.html").read_bytes(), content_type="text/html"
        )


@pytest.fixture
def site() -> Iterator[Site]:
    """A ticker site on 127.0.0.1."""
    served = Site()
    yield served
    served.server.stop()


def _setup(
    config_dir: Path, redis_url: str, feed: dict[str, Any], subscriptions: list[dict[str, Any]]
) -> Runtime:
    write_config(config_dir, [feed], [{"name": "desk", "notify": [UNREACHABLE]}], subscriptions)
    # the site and its article links are on 127.0.0.1: content may reach it here (tests/ingest/test_ssrf.py)
    settings = Settings(
        config_dir=config_dir, redis_url=redis_url, dedupe_window=3600, allow_private_addresses=True
    )
    return Runtime(settings)


def test_ticker_lines_alert_once_even_when_they_rotate_back(
    site: Site, config_dir: Path, redis_url: str
) -> None:
    """Ticker lines (no id, link or time) alert once with first-seen time; a line rotating back does not."""
    site.lines = [("Lebanese Ministry of Health: one killed in Burj Qalawieh", None)]
    feed = {"name": "ticker", "preset": "almayadeen-en", "url": site.server.base + "/", "every": "5s"}
    runtime = _setup(
        config_dir, redis_url, feed, [{"name": "all", "subscribers": ["desk"], "regions": ["MENA"]}]
    )
    recorder = Recorder()
    assert pipeline.poll_feed(runtime, "ticker", recorder).status == "ok"  # first poll: recorded only
    gaza = "Al Mayadeen's correspondent in Gaza: five violent raids on the western areas of Gaza City"
    site.lines = [(gaza, None), *site.lines]
    before = time.time()
    assert pipeline.poll_feed(runtime, "ticker", recorder).alerts == 1
    [(alert, _)] = recorder.jobs
    assert alert.title == gaza and alert.regions == ("MENA", "Palestine")
    assert alert.published and before - 1 <= _timestamp(alert.published) <= time.time()
    site.lines = [("Channel 12: Airspace closed at Ramon Airport", None)]
    pipeline.poll_feed(runtime, "ticker", recorder)
    site.lines = [
        ("  al mayadeen's CORRESPONDENT in gaza: five violent raids on the western areas of Gaza City ", None)
    ]
    assert pipeline.poll_feed(runtime, "ticker", recorder).new == 0
    assert recorder.titles() == [gaza, "Channel 12: Airspace closed at Ramon Airport"]


def test_enrichment_adds_category_and_keywords_within_the_budget(
    site: Site, config_dir: Path, redis_url: str
) -> None:
    """A ticker item linking to an article is matched on the article's category; the page is cached."""
    feed = {
        "name": "ticker",
        "url": site.server.base + "/",
        "selectors": {"item": ".ticker__item", "title": "a", "link": "a@href"},
        "enrich": True,
        "every": "5s",
    }
    subs = [{"name": "politics", "subscribers": ["desk"], "query": "category:politics AND lavrov"}]
    runtime = _setup(config_dir, redis_url, feed, subs)
    recorder = Recorder()
    site.lines = [("Markets close higher", "/news/markets")]
    assert pipeline.poll_feed(runtime, "ticker", recorder).status == "ok"
    site.lines = [("Lavrov calls on Palestinian movements to re-unite", "/news/lavrov")]
    assert pipeline.poll_feed(runtime, "ticker", recorder).alerts == 1
    [(alert, _)] = recorder.jobs
    assert alert.link == site.server.base + "/news/lavrov"
    assert site.article_requests == 1


def test_late_article_metadata_is_not_waited_for(site: Site, config_dir: Path, redis_url: str) -> None:
    """An article page slower than enrich_budget does not delay the poll; the item is matched without it."""
    site.article_delay = 3.0
    feed = {
        "name": "ticker",
        "url": site.server.base + "/",
        "selectors": {"item": ".ticker__item", "title": "a", "link": "a@href"},
        "enrich": True,
        "enrich_budget": "500ms",
        "every": "5s",
    }
    subs = [
        {"name": "politics", "subscribers": ["desk"], "query": "category:politics"},
        {"name": "lavrov", "subscribers": ["desk"], "keywords": ["lavrov"]},
    ]
    runtime = _setup(config_dir, redis_url, feed, subs)
    recorder = Recorder()
    site.lines = [("Markets close higher", "/news/markets")]
    assert pipeline.poll_feed(runtime, "ticker", recorder).status == "ok"
    site.lines = [("Lavrov calls on Palestinian movements to re-unite", "/news/lavrov")]
    started = time.monotonic()
    report = pipeline.poll_feed(runtime, "ticker", recorder)
    assert time.monotonic() - started < 1.5
    assert report.alerts == 1 and recorder.jobs[0][0].subscriptions == ("lavrov",)


def test_ticker_config_errors_name_the_line(config_dir: Path, redis_url: str) -> None:
    """An unknown preset, a bad CSS selector and html without selectors are config errors with lines."""
    from alerts.config.load import load_config

    (config_dir / "feeds.yaml").write_text(
        "feeds:\n"
        "  - name: a\n    preset: almayadeen-xx\n"
        "  - name: b\n    url: https://x.test/\n    selectors: {item: 'div[', title: a}\n"
        "  - name: c\n    url: https://x.test/\n    format: html\n"
    )
    (config_dir / "subscriptions.yaml").write_text(
        f"subscribers:\n  - name: desk\n    notify: ['{UNREACHABLE}']\nsubscriptions: []\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, env={})
    found = {(p.line, p.message.split(":")[0]) for p in caught.value.problems}
    assert {line for line, _ in found} == {2, 4, 7}
    text = " ".join(p.message for p in caught.value.problems)
    assert "unknown preset 'almayadeen-xx'" in text and "selectors" in text and "needs selectors" in text


def _timestamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
