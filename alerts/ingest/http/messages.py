"""What the HTTP client takes and gives: limits, responses, posts and their outcomes, and the URL
checks every request passes before any I/O (http or https, with a host)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from yarl import URL

from alerts.errors import FeedRejected

USER_AGENT = "breaking-alerts/0.1 (+https://github.com/breaking-alerts)"


@dataclass(frozen=True, slots=True)
class Limits:
    """Timeouts (seconds), size cap and identity used for a GET."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # between chunks (sock_read)
    total_timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024  # counted after decompression
    max_redirects: int = 5
    user_agent: str = USER_AGENT


@dataclass(frozen=True, slots=True)
class Response:
    """What a server answered: the body is read only for 2xx answers."""

    url: str  # final URL after redirects, without any user:password
    status: int
    reason: str | None
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    elapsed: float  # seconds

    @property
    def status_line(self) -> str:
        """``HTTP 503 Service Unavailable``."""
        return status_line(self.status, self.reason)


@dataclass(frozen=True, slots=True)
class Post:
    """One HTTP POST to make: where, what, and its headers."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """What became of a :class:`Post`: ``error`` is None when the server answered 2xx."""

    status: int  # 0 when there was no HTTP answer (refused, timed out, reset)
    error: str | None = None
    retry_after: float | None = None  # the server's Retry-After, in seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def check_url(url: str) -> URL:
    """Parse ``url`` and refuse anything but absolute http(s) URLs, before any I/O."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FeedRejected(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme.lower() not in ("http", "https"):
        raise FeedRejected(f"only http and https URLs can be fetched, not {url!r}")
    if not parsed.host:
        raise FeedRejected(f"URL has no host: {url!r}")
    return parsed


def display(url: URL) -> str:
    """The URL for messages, without any user:password."""
    return str(url.with_user(None)) if url.user or url.password else str(url)


def status_line(status: int, reason: str | None) -> str:
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
