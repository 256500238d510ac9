"""Stories in Redis: each open story's fingerprint and sources, the buckets that find candidates for a
new item, and who got each story's first alert. Everything expires with the dedupe window."""

from __future__ import annotations

import redis

from alerts.state import keys
from alerts.state.connection import translated


class StoryState:
    """The stories of the dedupe window."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def sources(self, story: str) -> tuple[str, ...]:
        """The feeds that reported ``story``, the first first."""
        with translated():
            return tuple(str(feed) for feed in self._client.zrange(keys.story_sources(story), 0, -1))
