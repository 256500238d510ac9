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

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from alerts.state import keys

_DEFAULTS = {
    "TELEGRAM_BOT": "30/s",
    "TELEGRAM_CHAT": "1/s",
    "TELEGRAM_GROUP": "20/m",
    "SMTP": "10/s",
    "NTFY": "5/s",
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RETRY_AFTER = re.compile(r"retry[ _-]?after[^0-9]{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One shared limit: at most ``count`` sends per ``period`` seconds to ``key``."""

    key: str
    count: float
    period: float

    @property
    def interval(self) -> float:
        """Seconds between two sends at the steady rate."""
        return self.period / self.count


def rate(name: str, env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(count, period) for one of the limits above, from ``ALERTS_RATE_<NAME>`` or the default."""
    env = os.environ if env is None else env
    text = env.get(f"ALERTS_RATE_{name}") or _DEFAULTS[name]
    match = _RATE.match(text) or _RATE.match(_DEFAULTS[name])
    assert match is not None
    return float(match.group(1)), {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]


def buckets(url: str, env: Mapping[str, str] | None = None) -> list[Bucket]:
    """The limits an Apprise URL's sends are subject to (none for other kinds of channel)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("tgram", "telegram"):
        token = unquote(parts.netloc)
        chats = [c for c in parts.path.split("/") if c]
        found = [Bucket(keys.rate(f"tgram:{keys.digest(token)}"), *rate("TELEGRAM_BOT", env))]
        for chat in chats[:1]:
            kind = "TELEGRAM_GROUP" if chat.startswith("-") else "TELEGRAM_CHAT"
            found.append(Bucket(keys.rate(f"tgram:{keys.digest(token)}:{chat}"), *rate(kind, env)))
        return found
    if scheme in ("mailto", "mailtos"):
        query = dict(part.split("=", 1) for part in parts.query.split("&") if "=" in part)
        server = query.get("smtp") or parts.hostname or ""
        return [Bucket(keys.rate(f"smtp:{server.lower()}"), *rate("SMTP", env))]
    if scheme in ("ntfy", "ntfys"):
        return [Bucket(keys.rate(f"ntfy:{(parts.hostname or 'ntfy.sh').lower()}"), *rate("NTFY", env))]
    return []


def retry_after(error: str) -> float | None:
    """The wait a channel asked for in its refusal (Telegram: "Too Many Requests: retry after 5")."""
    match = _RETRY_AFTER.search(error)
    return float(match.group(1)) if match else None
