"""Shared rate limits per destination, and a channel's own ``retry after`` (429) honoured exactly.

Each send first takes a slot from every bucket of its destination, atomically in Redis (GCRA),
so every worker on every machine keeps to the same limits. A send that must wait is not dropped:
it is booked for the moment its turn comes. Defaults follow Telegram's published limits:

| destination             | limit            | override (``N/s`` or ``N/m``)  |
|-------------------------|------------------|--------------------------------|
| a Telegram bot          | 30 messages/s    | ``ALERTS_RATE_TELEGRAM_BOT``   |
| a Telegram private chat | 1 message/s      | ``ALERTS_RATE_TELEGRAM_CHAT``  |
| a Telegram group chat   | 20 messages/min  | ``ALERTS_RATE_TELEGRAM_GROUP`` |
| an SMTP server          | 10 messages/s    | ``ALERTS_RATE_SMTP``           |
| an ntfy server          | 5 messages/s     | ``ALERTS_RATE_NTFY``           |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from alerts.text import digest

DEFAULT_RATES = {
    "TELEGRAM_BOT": "30/s",
    "TELEGRAM_CHAT": "1/s",
    "TELEGRAM_GROUP": "20/m",
    "SMTP": "10/s",
    "NTFY": "5/s",
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RETRY_AFTER = re.compile(r"retry[ _-]?after[^0-9]{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)
_PERIOD = {"s": 1.0, "m": 60.0, "h": 3600.0}

Rates = Mapping[str, tuple[float, float]]
"""Limit name (``TELEGRAM_BOT``...) -> (count, period in seconds)."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One shared limit: at most ``count`` sends per ``period`` seconds to ``destination``."""

    destination: str
    count: float
    period: float

    @property
    def interval(self) -> float:
        """Seconds between two sends at the steady rate."""
        return self.period / self.count

    @property
    def spec(self) -> tuple[str, float, float]:
        """(destination, interval, tolerance), as :meth:`alerts.state.rates.RateBuckets.take` takes it."""
        return (self.destination, self.interval, self.period - self.interval)


def parse_rate(text: str | None, default: str) -> tuple[float, float]:
    """(count, period) from ``N/s``, ``N/m`` or ``N/h``; ``default`` when ``text`` is empty or malformed."""
    match = _RATE.match(text or "") or _RATE.match(default)
    assert match is not None, default
    return float(match.group(1)), _PERIOD[match.group(2)]


DEFAULTS: dict[str, tuple[float, float]] = {
    name: parse_rate(None, text) for name, text in DEFAULT_RATES.items()
}


def buckets(url: str, rates: Rates = DEFAULTS) -> list[Bucket]:
    """The limits an Apprise URL's sends are subject to (none for other kinds of channel)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("tgram", "telegram"):
        bot = digest(unquote(parts.netloc))
        chats = [c for c in parts.path.split("/") if c]
        found = [Bucket(f"tgram:{bot}", *rates["TELEGRAM_BOT"])]
        for chat in chats[:1]:
            kind = "TELEGRAM_GROUP" if chat.startswith("-") else "TELEGRAM_CHAT"
            found.append(Bucket(f"tgram:{bot}:{chat}", *rates[kind]))
        return found
    if scheme in ("mailto", "mailtos"):
        query = dict(part.split("=", 1) for part in parts.query.split("&") if "=" in part)
        server = query.get("smtp") or parts.hostname or ""
        return [Bucket(f"smtp:{server.lower()}", *rates["SMTP"])]
    if scheme in ("ntfy", "ntfys"):
        return [Bucket(f"ntfy:{(parts.hostname or 'ntfy.sh').lower()}", *rates["NTFY"])]
    return []


def retry_after(error: str) -> float | None:
    """The wait a channel asked for in its refusal (Telegram: "Too Many Requests: retry after 5")."""
    match = _RETRY_AFTER.search(error)
    return float(match.group(1)) if match else None
