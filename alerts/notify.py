"""Alert delivery through Apprise: one URL at a time, secrets only in Apprise's privacy form.

The only module that imports Apprise. It also registers the ``console://`` schema, which prints
alerts on standard output (the out-of-the-box subscriber of ``config/``).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

import apprise
import apprise.decorators
from apprise.plugins.telegram import NotifyTelegram

from alerts.errors import DeliveryError
from alerts.models import Delivery

TELEGRAM_API_ENV = "ALERTS_TELEGRAM_API"  # e.g. a self-hosted Bot API server: http://127.0.0.1:8081/bot
_MAX_INSTANCES = 2048
_instances: dict[str, Any] = {}
_lock = threading.Lock()


@apprise.decorators.notify(on="console", name="Console")  # type: ignore[untyped-decorator,no-untyped-call]
def _console(body: str, title: str = "", notify_type: str = "info", *_: Any, **__: Any) -> bool:
    """Print an alert on standard output: headline, then body."""
    print(f"\n\U0001f6a8 {title}\n{body}\n", file=sys.stdout, flush=True)
    return True


def _configure_telegram() -> None:
    api = os.environ.get(TELEGRAM_API_ENV)
    if api:
        NotifyTelegram.notify_url = api.rstrip("/") + ("" if api.rstrip("/").endswith("/bot") else "/bot")


def _plugin(url: str) -> Any:
    with _lock:
        plugin = _instances.pop(url, None)
        if plugin is None:
            _configure_telegram()
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is not None:
            _instances[url] = plugin  # most recently used last
            while len(_instances) > _MAX_INSTANCES:  # per-message URLs (ntfy click=...) must not pile up
                _instances.pop(next(iter(_instances)))
        return plugin


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url``, or None when it can."""
    if "://" not in url:
        return f"malformed notify URL {_scheme_only(url)!r}: expected schema://..."
    if _plugin(url) is None:
        return f"unsupported or malformed notify URL {_scheme_only(url)}://..."
    return None


def _scheme_only(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else url[:12]


@functools.lru_cache(maxsize=65536)
def private(url: str) -> str:
    """``url`` with its secrets masked, as Apprise prints it (safe to log)."""
    plugin = _plugin(url)
    if plugin is None:
        return f"{_scheme_only(url)}://***"
    return str(plugin.url(privacy=True)).split("?", 1)[0]


def send(url: str, title: str, body: str, subscriber: str = "", body_format: str | None = None) -> Delivery:
    """Send one message to one Apprise URL; raise DeliveryError when the channel did not accept it.

    Each send gets a fresh plugin instance: Apprise throttles consecutive sends of one instance
    (seconds apart for email), and instances are not meant to be shared between threads.
    """
    target = private(url)
    _configure_telegram()
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return Delivery(subscriber, target, ok=False, error="unsupported notify URL")
    messenger = apprise.Apprise()
    messenger.add(plugin)
    result = messenger.notify(body=body, title=title, body_format=body_format)
    if result:
        return Delivery(subscriber, target, ok=True)
    reasons = [entry.message for entry in result.logs() if entry.level in {"WARNING", "ERROR"}]
    raise DeliveryError(f"{target}: {reasons[-1] if reasons else 'not accepted'}")
