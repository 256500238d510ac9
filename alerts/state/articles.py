"""Parsed article-page metadata, cached per URL (see :mod:`alerts.ingest.enrich`)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from alerts.state import keys
from alerts.state.connection import translated


class ArticleCache:
    """URL -> its page's metadata as JSON, for a while."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def get_many(self, urls: Sequence[str]) -> list[str | None]:
        """The cached value of each URL (None where absent), in one round trip."""
        if not urls:
            return []
        with translated():
            found = self._client.mget([keys.article(url) for url in urls])
        return [None if value is None else str(value) for value in found]

    def put(self, url: str, value: str, ttl: int) -> None:
        """Cache ``value`` for ``url`` for ``ttl`` seconds."""
        with translated():
            self._client.set(keys.article(url), value, ex=ttl)
