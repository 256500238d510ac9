"""Channels through Apprise: one URL at a time, secrets only in Apprise's privacy form.

The only module that imports Apprise (and ``requests``, which its plugins use); importing it costs
about 0.3 s, so modules that may not need it (the CLI, config checks) import it when they do. It also
registers the ``console://`` schema, which prints alerts on standard output (the out-of-the-box
subscriber of ``config/``).

Sending costs are kept down for large fan-outs: each send gets a fresh plugin instance (Apprise
throttles consecutive sends of one instance, seconds apart for email) but runs in the calling
thread through a reused ``Apprise`` object, and the plugins' HTTP requests reuse one keep-alive
connection pool per thread instead of opening a connection per message.

Threading a story's updates (:mod:`alerts.delivery.threads`) reaches into the plugins in two contained
places, both keyed on the send in progress in the calling context (a ``ContextVar``: each delivery
thread, and each copy of a context Apprise may hand to its executor, sees only its own send, so
concurrent sends never see each other's ids):

- the e-mail plugin builds ``Message-ID`` with ``email.utils.make_msgid`` *after* the custom headers
  (so a ``Message-ID`` header would be a second one): its module's ``make_msgid`` is replaced by
  :func:`_make_msgid`, which returns the send's deterministic id and otherwise defers to the original.
  ``In-Reply-To`` and ``References`` are the plugin's own custom headers, set on the fresh instance.
- :class:`_KeepAliveRequests` (the plugins' ``requests``) adds an update's Telegram
  ``reply_parameters`` to the first ``sendMessage`` per chat and an ntfy publish's sequence id, and
  notes the ids the Bot API (``result.message_id``) and ntfy (``id``) give each message.
"""

from __future__ import annotations

import contextvars
import email.utils
import functools
import http.cookiejar
import json
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import apprise
import apprise.decorators
import apprise.plugins.email.base
import requests
from apprise.plugins.email import NotifyEmail
from apprise.plugins.ntfy import NotifyNtfy
from apprise.plugins.telegram import NotifyTelegram

from alerts import log
from alerts.delivery.threads import Thread
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


class _Send:
    """The send in progress in one context: its thread, and the message ids the channel answered with."""

    __slots__ = ("found", "kind", "replied", "thread")

    def __init__(self, kind: str, thread: Thread) -> None:
        self.kind = kind  # "telegram", "ntfy", "email" or "" (nothing to add or note)
        self.thread = thread
        self.found: dict[str, str] = {}  # chat or topic -> the id of the first message sent there
        self.replied: set[str] = set()  # chats whose first message already replies

    def before(self, method: str, url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The request's arguments, threaded: the update's first Telegram message per chat replies to the
        story's first, an ntfy publish joins the first's sequence."""
        replies = self.thread.replies
        if not replies or method.upper() != "POST":
            return kwargs
        payload = _payload(kwargs)
        if self.kind == "telegram" and url.endswith("/sendMessage") and payload is not None:
            chat = str(payload.get("chat_id", ""))
            first = replies.get(chat, "")
            if first.isdigit() and chat not in self.replied:
                self.replied.add(chat)
                payload["reply_parameters"] = {"message_id": int(first), "allow_sending_without_reply": True}
                return {**kwargs, "data": json.dumps(payload)}
        elif self.kind == "ntfy":
            first = replies.get(_topic(url, payload), "")
            if first:
                kwargs = {**kwargs, "headers": {**(kwargs.get("headers") or {}), "X-Sequence-ID": first}}
                if payload is not None and "topic" in payload:  # a JSON publish: the field too
                    kwargs["data"] = json.dumps({**payload, "sequence_id": first})
        return kwargs

    def after(self, url: str, kwargs: dict[str, Any], response: requests.Response) -> None:
        """Note the id the channel gave a message it accepted (the first per chat or topic)."""
        if self.kind not in ("telegram", "ntfy") or response.status_code != 200:
            return
        payload = _payload(kwargs)
        try:
            answer = response.json()
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        if self.kind == "telegram" and url.endswith("/sendMessage") and payload is not None:
            where, result = str(payload.get("chat_id", "")), answer.get("result")
            value = result.get("message_id") if isinstance(result, dict) else None
        elif self.kind == "ntfy":
            where, value = _topic(url, payload), answer.get("id")
        else:
            return
        if where and isinstance(value, int | str) and str(value):
            self.found.setdefault(where, str(value))


_sending: contextvars.ContextVar[_Send | None] = contextvars.ContextVar("alerts_channel_send", default=None)
_original_make_msgid = email.utils.make_msgid


def _make_msgid(idstring: str | None = None, domain: str | None = None) -> str:
    """The e-mail plugin's ``make_msgid``: the Message-ID of the send in progress, else a fresh one."""
    send = _sending.get()
    if send is not None and send.thread.message_id:
        return send.thread.message_id
    return _original_make_msgid(idstring=idstring, domain=domain)


def _payload(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """A request's JSON body as a dict (Apprise's plugins pass ``data=json.dumps(...)``), or None."""
    data = kwargs.get("data")
    if data is None:
        data = kwargs.get("json")
    elif isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return dict(data) if isinstance(data, dict) else None


def _topic(url: str, payload: Mapping[str, Any] | None) -> str:
    """The ntfy topic a publish goes to: its JSON ``topic``, else the URL's last path segment."""
    if payload is not None and isinstance(payload.get("topic"), str):
        return str(payload["topic"])
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


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
        send = _sending.get()
        if send is None:
            return session.request(method, url, **kwargs)
        kwargs = send.before(method, url, kwargs)
        response = session.request(method, url, **kwargs)
        send.after(url, kwargs, response)
        return response

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
    """Point Apprise's plugins at keep-alive sessions, once they are loaded (at the first URL), and the
    e-mail plugin's Message-ID at :func:`_make_msgid` (idempotent: the original is kept aside)."""
    keep_alive = _KeepAliveRequests()
    for name, module in list(sys.modules.items()):
        if name.startswith("apprise.") and getattr(module, "requests", None) is requests:
            module.requests = keep_alive  # type: ignore[attr-defined]
    apprise.plugins.email.base.make_msgid = _make_msgid  # type: ignore[attr-defined]


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

    def send(
        self, title: str, body: str, body_format: str | None = None, thread: Thread | None = None
    ) -> dict[str, str]:
        """Send the message, in its story's ``thread`` when given; the ids the channel gave it (Telegram
        chat or ntfy topic -> message id; {} for other channels). Raise DeliveryError when the channel did
        not accept it."""
        if self._plugin is None:
            raise DeliveryError(f"{self.target}: unsupported notify URL")
        messenger: apprise.Apprise | None = getattr(_local, "messenger", None)
        if messenger is None:
            messenger = _local.messenger = apprise.Apprise(asset=_ASSET)
        send = _Send(self._kind(), thread or Thread())
        if send.kind == "email" and thread is not None and thread.reply_to:
            self._plugin.headers.update({"In-Reply-To": thread.reply_to, "References": thread.reply_to})
        messenger.clear()
        messenger.add(self._plugin)
        token = _sending.set(send)
        try:
            result = messenger.notify(body=body, title=title, body_format=body_format)
        finally:
            _sending.reset(token)
            messenger.clear()
        if not result:
            reasons = [entry.message for entry in result.logs() if entry.level in {"WARNING", "ERROR"}]
            raise DeliveryError(f"{self.target}: {reasons[-1] if reasons else 'not accepted'}")
        return send.found

    def _kind(self) -> str:
        for kind, plugin in (("telegram", NotifyTelegram), ("ntfy", NotifyNtfy), ("email", NotifyEmail)):
            if isinstance(self._plugin, plugin):
                return kind
        return ""
