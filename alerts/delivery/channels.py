"""Channels through Apprise: one URL at a time, secrets only in Apprise's privacy form.

The only module that imports Apprise (and ``requests``, which its plugins use); importing it costs
about 0.3 s, so modules that may not need it (the CLI, config checks) import it when they do. It also
registers the ``console://`` schema, which prints alerts on standard output (the out-of-the-box
subscriber of ``config/``).

Sending costs are kept down for large fan-outs: each send gets a fresh plugin instance (Apprise
throttles consecutive sends of one instance, seconds apart for email) but runs in the calling
thread through a reused ``Apprise`` object, and the plugins' HTTP requests reuse one keep-alive
connection pool per thread instead of opening a connection per message.
"""

from __future__ import annotations

import functools
import http.cookiejar
import os
import sys
import threading
from typing import Any

import apprise
import apprise.decorators
import requests
from apprise.plugins.telegram import NotifyTelegram

from alerts import log
from alerts.errors import DeliveryError

TELEGRAM_API = NotifyTelegram.notify_url  # Telegram's own Bot API
# Send in the calling thread, with no extra thread to enforce an overall timeout: our batches are the
# pool, the plugins' socket timeouts bound each send, and the outbox lease covers a hung worker.
_ASSET = apprise.AppriseAsset(async_mode=False, service_timeout=0)
_local = threading.local()
_PROXY_SETTINGS = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy") for name in (base, base.upper())
)


@apprise.decorators.notify(on="console", name="Console")  # type: ignore[untyped-decorator,no-untyped-call]
def _console(body: str, title: str = "", notify_type: str = "info", *_: Any, **__: Any) -> bool:
    """Print an alert on standard output: headline, then body."""
    print(f"\n\U0001f6a8 {title}\n{body}\n", file=sys.stdout, flush=True)
    return True


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared session must not carry one subscriber's cookies to another's URL."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class _KeepAliveRequests:
    """Stands in for the ``requests`` module inside Apprise's plugins: the same calls, but each
    thread sends through its own long-lived ``Session`` (connections kept alive, cookies never kept).

    Reading the environment on every request (proxies, CA bundle) costs about 0.5 ms, as much as
    the request itself: proxies are honoured the usual way only when one is set, and the CA bundle
    (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``) is applied here. ``~/.netrc`` is not read.
    """

    def __getattr__(self, name: str) -> Any:  # exceptions, codes, auth helpers: the real module's
        return getattr(requests, name)

    @staticmethod
    def _session() -> requests.Session:
        session: requests.Session | None = getattr(_local, "session", None)
        if session is None:
            session = _local.session = requests.Session()
            session.cookies.set_policy(_NoCookies())
            session.trust_env = any(os.environ.get(name) for name in _PROXY_SETTINGS)
        return session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        session = self._session()
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle and not session.trust_env and kwargs.get("verify", True) is True:
            kwargs["verify"] = bundle
        return session.request(method, url, **kwargs)

    def get(self, url: str, params: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, params=params, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, **kwargs)


@functools.cache
def _prepare_plugins() -> None:
    """Point Apprise's plugins at keep-alive sessions, once they are loaded (at the first URL)."""
    keep_alive = _KeepAliveRequests()
    for name, module in list(sys.modules.items()):
        if name.startswith("apprise.") and getattr(module, "requests", None) is requests:
            module.requests = keep_alive  # type: ignore[attr-defined]


def use_telegram_api(api: str | None) -> None:
    """Send Telegram messages through ``api`` (a self-hosted Bot API server, ``ALERTS_TELEGRAM_API``),
    or through Telegram's own with None."""
    base = (api or "").rstrip("/")
    NotifyTelegram.notify_url = (base + ("" if base.endswith("/bot") else "/bot")) if base else TELEGRAM_API


def _instantiate(url: str) -> Any:
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET, suppress_exceptions=True)
    _prepare_plugins()
    return plugin


def _scheme_only(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else url[:12]


def _privacy(plugin: Any, url: str) -> str:
    """Apprise's privacy form of the URL, with every value that came from ``${ENV}`` masked too (a
    Telegram chat id, an ntfy user: Apprise shows those, and they end up in history)."""
    if plugin is None:
        return f"{_scheme_only(url)}://***"
    return log.redact(str(plugin.url(privacy=True)).split("?", 1)[0])


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url``, or None when it can."""
    if "://" not in url:
        return f"malformed notify URL {_scheme_only(url)!r}: expected schema://..."
    if _instantiate(url) is None:
        return f"unsupported or malformed notify URL {_scheme_only(url)}://..."
    return None


def private(url: str) -> str:
    """``url`` with its secrets masked, as Apprise prints it (safe to log and to keep in history)."""
    return log.redact(_apprise_private(url))


@functools.lru_cache(maxsize=65536)
def _apprise_private(url: str) -> str:
    return _privacy(_instantiate(url), url)


class Channel:
    """One Apprise URL, ready for one message: a fresh plugin instance and its name for logs."""

    def __init__(self, url: str) -> None:
        self._plugin = _instantiate(url)
        self.target = _privacy(self._plugin, url)
        """The URL with its secrets masked (safe to log)."""

    def send(self, title: str, body: str, body_format: str | None = None) -> None:
        """Send the message; raise DeliveryError when the channel did not accept it."""
        if self._plugin is None:
            raise DeliveryError(f"{self.target}: unsupported notify URL")
        messenger: apprise.Apprise | None = getattr(_local, "messenger", None)
        if messenger is None:
            messenger = _local.messenger = apprise.Apprise(asset=_ASSET)
        messenger.clear()
        messenger.add(self._plugin)
        try:
            result = messenger.notify(body=body, title=title, body_format=body_format)
        finally:
            messenger.clear()
        if not result:
            reasons = [entry.message for entry in result.logs() if entry.level in {"WARNING", "ERROR"}]
            raise DeliveryError(f"{self.target}: {reasons[-1] if reasons else 'not accepted'}")
