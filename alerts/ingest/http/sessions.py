"""The client's sessions on the process's background loop, and the address guard.

Two pooled keep-alive sessions per loop: an unchecked one for URLs the admin wrote, and a checked one
whose resolver (:class:`GuardedResolver`) refuses any host that resolves to a restricted address, so
aiohttp connects to exactly the addresses that were checked. :func:`checked` decides which session a
request (or redirect hop) uses and judges IP literals itself; :func:`refusal` makes the
:class:`~alerts.errors.AddressRefused` and logs the one ``fetch.refused`` line. Network failures
become :class:`~alerts.errors.FetchError` through :func:`fetch_error`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from alerts import log
from alerts.errors import AddressRefused, FetchError
from alerts.ingest import addresses
from alerts.ingest import loop as background
from alerts.ingest.addresses import AddressPolicy

CHUNK = 64 * 1024
POOL_LIMIT = 100  # connections per session
GRACE = 5.0  # extra seconds a caller waits beyond the request's own total timeout
CONTENT = AddressPolicy()  # a URL from content: checked, as are its redirects
HUB = AddressPolicy(source="hub")  # a WebSub hub found in a feed: content too
_allow_private = False  # ALERTS_ALLOW_PRIVATE_ADDRESSES, set by alerts.service.runtime.Runtime


def allow_private_addresses(allowed: bool) -> None:
    """Let every request of this process reach private and reserved addresses, or not (the default):
    ``ALERTS_ALLOW_PRIVATE_ADDRESSES``, which :class:`alerts.service.runtime.Runtime` applies."""
    global _allow_private
    _allow_private = allowed


def private_addresses_allowed() -> bool:
    """Whether :func:`allow_private_addresses` lifted the rule for this process."""
    return _allow_private


class _Refused(OSError):
    """What :class:`GuardedResolver` raises; aiohttp wraps it in a ClientConnectorError."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")
        self.host, self.address, self.reason = host, address, reason


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and refuses a host when any address it resolves to is restricted
    (:func:`alerts.ingest.addresses.restriction`). The connector connects only to what this returns,
    so what was checked is what is connected to: a name that answers a public address to a check and
    a private one to the connection (DNS rebinding) cannot slip through."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = addresses.parse_ip(result["host"])
            reason = "not an IP address" if ip is None else addresses.restriction(ip)
            if reason is not None:
                raise _Refused(host, result["host"], reason)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _base_resolver() -> AbstractResolver:
    """The resolver every session starts from (aiohttp's default: getaddrinfo in a thread)."""
    return DefaultResolver()


class _Client:
    """A session and its resolver: a ``guarded`` one connects only to addresses that were checked."""

    def __init__(self, guarded: bool) -> None:
        base = _base_resolver()
        self.resolver: AbstractResolver = GuardedResolver(base) if guarded else base
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL_LIMIT, ttl_dns_cache=300, resolver=self.resolver),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            read_bufsize=CHUNK,
            raise_for_status=False,
        )

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()
        await self.resolver.close()


def _new_session(guarded: bool = False) -> _Client:
    """A session: pooled keep-alive, no cookies, no proxy from the environment."""
    return _Client(guarded)


def headers_of(raw: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


CLIENT_ERRORS = (aiohttp.ClientError, OSError)


def fetch_error(exc: BaseException, action: str, where: str) -> FetchError:
    """A network failure of a request, told the way a person would (never an aiohttp type)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FetchError(f"cannot find {exc.host} (DNS): is this machine offline, or is the name wrong?")
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        if isinstance(err, ConnectionError) and err.errno:
            reason = os.strerror(err.errno)  # "Connection refused", not asyncio's wording
        else:
            reason = err.strerror or str(err) or type(err).__name__
        return FetchError(f"cannot connect to {where}: {reason}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FetchError(f"server disconnected before answering {where}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError(f"incomplete or corrupt body from {where}: {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return FetchError(f"failed to {action} {where}: {exc or type(exc).__name__}")
    assert isinstance(exc, OSError)
    return FetchError(f"failed to {action} {where}: {exc.strerror or exc}")


def needs_check(url: URL, policy: AddressPolicy, redirected_from: URL | None) -> bool:
    """Whether this request (or redirect hop) must be checked: it then connects through the guarded
    session. An IP literal (which aiohttp never resolves) is judged here: AddressRefused if refused."""
    if policy.allow_private or _allow_private or (redirected_from is None and policy.trusted_url):
        return False
    host = url.host or ""
    ip = addresses.parse_ip(host)
    if ip is not None:
        reason = addresses.restriction(ip)
        if reason is not None:
            raise refusal(policy, url, str(ip), reason, redirected_from)
    elif ":" in host or host.replace(".", "").isdigit():  # what aiohttp takes for an IP literal
        raise refusal(policy, url, host, "not a canonical IP address", redirected_from)
    return True


def refusal(
    policy: AddressPolicy, url: URL, address: str, reason: str, redirected_from: URL | None
) -> AddressRefused:
    """The error for a refused address, logged once as ``fetch.refused`` (host and address class
    only: never a path or query, which may hold a key)."""
    host = url.host or "?"
    port = f":{url.explicit_port}" if url.explicit_port else ""
    target = f"{host}{port} ({reason})" if address == host else f"{host}{port} ({address}: {reason})"
    hint = "allowed only by the feed's allow_private: true or ALERTS_ALLOW_PRIVATE_ADDRESSES=true"
    if policy.feed is None:
        hint = "allowed only by ALERTS_ALLOW_PRIVATE_ADDRESSES=true"
    if redirected_from is not None:
        source, message = "redirect", f"{redirected_from.origin()} redirected to {target}: refused, {hint}"
    elif policy.source == "hub":
        source, message = "hub", f"refused to post to hub {target}: {hint}"
    else:
        source, message = policy.source, f"refused to fetch {target}: {hint}"
    log.get("alerts.http").warning(
        "fetch.refused", feed=policy.feed, source=source, host=host, address=address, reason=reason
    )
    return AddressRefused(message, host, address, reason)


def refused_by_resolver(exc: BaseException) -> _Refused | None:
    """The guarded resolver's refusal inside an aiohttp connection error, if that is what it is."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, _Refused):
        return exc.os_error
    return None


def client_session(runner: background.BackgroundLoop, checked: bool = False) -> aiohttp.ClientSession:
    """The loop's session (made on first use, on the loop thread); ``checked``: the one whose
    resolver refuses restricted addresses."""
    name = "http-checked" if checked else "http"
    return runner.resource(name, lambda: _new_session(checked), _Client.close).session
