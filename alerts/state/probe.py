"""Does a Redis answer at a URL, and how to name that URL without its password.

The command line asks before it starts workers or reads state, so a wrong ``REDIS_URL`` costs one
line and exit 1 instead of a retry storm.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from alerts.state import redis_url


def masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (every one, in a sentinel URL)."""
    return redis_url.masked(url)


def reachable(url: str, timeout: float = 3.0) -> str | None:
    """None when the Redis at ``url`` answers PING within ``timeout`` seconds, else why not (one line)."""
    try:
        client = redis_url.client(url, socket_timeout=timeout, socket_connect_timeout=timeout)
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
    reason = redis_url.described(exc)
    for part in url.split(";"):
        password = urlsplit(part).password
        if password:
            reason = reason.replace(password, "***")
    return reason
