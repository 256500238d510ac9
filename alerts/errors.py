"""Exceptions of breaking-alerts.

AlertsError
├── ConfigError              the YAML configuration is invalid (carries file:line problems)
├── TransientError           worth retrying later
│   ├── FetchError           a feed could not be fetched (network, timeout, HTTP 5xx/429)
│   ├── StoreUnavailable     Redis could not be reached
│   └── DeliveryError        a channel refused or could not be reached
└── PermanentError           retrying will not help: log and drop
    ├── FeedRejected         the server answered in a way that will not change (4xx, too big)
    │   └── AddressRefused   a URL from content (or a redirect) leads to a private or reserved address
    ├── FeedParseError       the body is not a feed any parser can read
    └── UnknownTarget        a task named a subscriber, URL or feed that the config lacks
"""

from __future__ import annotations

from dataclasses import dataclass


class AlertsError(Exception):
    """Root of every error raised by breaking-alerts."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem at a place in a file."""

    file: str
    line: int
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}" if self.column else str(self.line)
        return f"{self.file}:{where}: {self.message}"


class ConfigError(AlertsError):
    """Raised when the configuration is invalid; ``problems`` lists each one with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class TransientError(AlertsError):
    """Raised when an operation failed but may succeed if retried later."""


class FetchError(TransientError):
    """Raised when a feed could not be fetched for a reason that may pass."""


class StoreUnavailable(TransientError):
    """Raised when the state store (Redis) cannot be reached."""


class DeliveryError(TransientError):
    """Raised when a channel did not accept an alert."""


class PermanentError(AlertsError):
    """Raised when retrying cannot help; the caller logs and drops."""


class FeedRejected(PermanentError):
    """Raised when a feed server answers with a client error or a body over the size cap."""


class AddressRefused(FeedRejected):
    """Raised, before any connection, when a URL from feed content or a redirect would reach a
    loopback, private, link-local, CGNAT, multicast, reserved or unspecified address."""

    def __init__(self, message: str, host: str, address: str, reason: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.host, self.address, self.reason))


class FeedParseError(PermanentError):
    """Raised when a body is not a feed that any parser can read."""


class UnknownTarget(PermanentError):
    """Raised when a task names a feed, subscriber or URL that the current config lacks."""
