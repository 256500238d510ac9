"""``alerts demo``: the whole service on this machine, with no account and no network.

A small newsroom on 127.0.0.1 serves the reference site's BREAKING ticker shape (``.ticker__item``
lines, as ``preset: almayadeen-en`` reads them) and an RSS feed, and appends a breaking item to one
of them every few seconds. ``alerts run`` polls both every second with a fresh configuration and a
private Redis in a temporary directory, and a ``console://`` subscriber prints each alert on this
terminal within about a second of its appearing. Nothing is written outside that directory.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

HEADLINES = (
    "Al Mayadeen's correspondent in Gaza: Israeli strikes hit Khan Younis",
    "Breaking: earthquake of magnitude 6.1 shakes southern Peru",
    "Lebanon: civil defence teams search the rubble in Nabatieh",
    "Yemen's Sanaa announces a new naval operation in the Red Sea",
    "Breaking: Kyiv says air defence downed 40 drones overnight",
    "Syria: talks on the Golan reopen in Damascus",
)


class Newsroom:
    """The demo's news site: ``/`` (a ticker page) and ``/feed.xml`` (RSS, with ETags and 304)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, float]] = []  # (where, headline, when): newest first
        self.polled: set[str] = set()  # the paths asked for so far
        self._lock = threading.Lock()
        newsroom = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, kind = newsroom.page(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # the terminal shows alerts, not requests
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Newsroom:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def publish(self, where: str, headline: str) -> None:
        with self._lock:
            self.items.insert(0, (where, headline, time.time()))

    def page(self, path: str) -> tuple[bytes | None, str]:
        with self._lock:
            items = list(self.items)
            self.polled.add(path)
        if path == "/":
            lines = "".join(
                f'<div class="ticker__item"><p>{html.escape(title)}</p></div>'
                for where, title, _ in items
                if where == "ticker"
            )
            page = f"<html><body><div class='ticker'>{lines}</div></body></html>"
            return page.encode(), "text/html; charset=utf-8"
        if path == "/feed.xml":
            entries = "".join(
                f"<item><title>{html.escape(title)}</title><link>{self.base}/news/{int(at * 1000)}</link>"
                f"<guid>{self.base}/news/{int(at * 1000)}</guid><pubDate>{formatdate(at)}</pubDate></item>"
                for where, title, at in items
                if where == "wire"
            )
            channel = f"<channel><title>Demo wire</title>{entries}</channel>"
            return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode(), "application/rss+xml"
        return None, ""


def _config(directory: Path, newsroom: Newsroom) -> None:
    """feeds.yaml and subscriptions.yaml of the demo: both feeds every second, one console subscriber."""
    feeds = [
        {"name": "ticker", "url": newsroom.base + "/", "selectors": {"item": ".ticker__item"}, "every": "1s"},
        {"name": "wire", "url": newsroom.base + "/feed.xml", "every": "1s"},
    ]
    subscriptions = {
        "subscribers": [{"name": "terminal", "notify": ["console://"], "burst": "off"}],
        "subscriptions": [
            {
                "name": "breaking",
                "subscribers": ["terminal"],
                "query": "gaza OR peru OR leban* OR yemen* OR kyiv OR syria*",
            }
        ],
    }
    (directory / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}, sort_keys=False))
    (directory / "subscriptions.yaml").write_text(yaml.safe_dump(subscriptions, sort_keys=False))


def run(every: float, duration: float | None) -> int:
    """Serve the newsroom, run ``alerts run`` against it, publish an item every ``every`` seconds;
    stop after ``duration`` seconds (None: at Ctrl-C). Returns ``alerts run``'s exit status."""
    newsroom = Newsroom().start()
    with tempfile.TemporaryDirectory(prefix="alerts-demo-") as tmp:
        work = Path(tmp)
        (work / "config").mkdir()
        _config(work / "config", newsroom)
        env = {
            **os.environ,
            "ALERTS_CONFIG": str(work / "config"),
            "ALERTS_STATE_DIR": str(work / "state"),
            "REDIS_URL": "embedded",
            "ALERTS_METRICS_LISTEN": "off",
            "ALERTS_ALLOW_PRIVATE_ADDRESSES": "false",
        }
        print(f"demo: a newsroom at {newsroom.base} (ticker: /, RSS: /feed.xml); Ctrl-C stops", flush=True)
        service = subprocess.Popen([sys.executable, "-m", "alerts.service.cli", "run"], env=env)
        stop = threading.Event()
        publisher = threading.Thread(target=_publish, args=(newsroom, every, stop), daemon=True)
        publisher.start()
        try:
            service.wait(timeout=duration)
        except subprocess.TimeoutExpired:
            service.terminate()
        except KeyboardInterrupt:
            service.terminate()  # it got the Ctrl-C too; make sure
        finally:
            stop.set()
            try:
                code = service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
                code = service.wait()
            newsroom.stop()
    return code if code >= 0 else 0


def _publish(newsroom: Newsroom, every: float, stop: threading.Event) -> None:
    """After the first polls, one breaking item every ``every`` seconds, ticker and wire in turn."""
    while not {"/", "/feed.xml"} <= newsroom.polled:  # the first polls record what is there
        if stop.wait(0.2):
            return
    if stop.wait(1.5):  # only what follows them is news
        return
    for where, headline in zip(itertools.cycle(("ticker", "wire")), itertools.cycle(HEADLINES), strict=False):
        newsroom.publish(where, f"{headline} ({time.strftime('%H:%M:%S')})")
        if stop.wait(every):
            return
