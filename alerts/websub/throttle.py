"""Per-client token buckets for the WebSub callback server's rate limit; pure (no I/O, no aiohttp).

:class:`TokenBuckets` holds one bucket per client (the server keys them by client IP): ``burst``
requests at once, refilled at ``rate`` per second, in this process's memory only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BURST", "MAX_CLIENTS", "RATE", "TokenBuckets"]

RATE = 20.0  # requests per second per client IP, sustained
BURST = 200  # requests per client IP at once
MAX_CLIENTS = 10_000  # buckets kept before idle ones are forgotten


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    over: bool = False  # refused since it last had a token (log the throttling once)


class TokenBuckets:
    """Token buckets per client: ``burst`` requests at once, refilled at ``rate`` per second.

    Kept in memory for at most ``max_clients`` clients: beyond that, full (idle) buckets are
    forgotten, then the least recently used half. Not thread-safe: used on the server's loop."""

    def __init__(
        self,
        rate: float = RATE,
        burst: int = BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> tuple[float, bool]:
        """Take one token for ``client``: (0.0, False) when it had one, else (seconds until it has
        one, whether this is its first refusal since it last had one)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._prune(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.over = False
            return 0.0, False
        first = not bucket.over
        bucket.over = True
        return (1.0 - bucket.tokens) / self.rate, first

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        full = [
            client
            for client, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst
        ]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= self._max:
            by_age = sorted(self._buckets, key=lambda client: self._buckets[client].at)
            for client in by_age[: max(1, len(by_age) // 2)]:
                del self._buckets[client]
