"""Does a Redis answer at a URL, and how to name that URL without its password.

The command line asks before it starts workers or reads state, so a wrong ``REDIS_URL`` costs one
line and exit 1 instead of a retry storm.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis


def masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def reachable(url: str, timeout: float = 3.0) -> str | None:
    """None when the Redis at ``url`` answers PING within ``timeout`` seconds, else why not (one line)."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as exc:
        return f"not a Redis URL: {exc}"
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return _reason(exc, url)
    finally:
        client.close()


def _reason(exc: Exception, url: str) -> str:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = urlsplit(url).password
    return reason.replace(password, "***") if password else reason
