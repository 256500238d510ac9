"""The state handle: one Redis client, and one object per entity kept in it.

``store.liveness`` (this process's heartbeat, the reaping of dead ones), ``store.claims`` (dedupe
claims), ``store.locks`` (poll locks, host slots), ``store.feeds`` (feed state), ``store.schedule``
(the poll schedule), ``store.deliveries`` (the outbox's records and history), ``store.pacing``
(recent sends, held alerts), ``store.rates`` (rate buckets), ``store.websub`` (WebSub
subscriptions), ``store.articles`` (article metadata cache), ``store.config`` (what the workers did
with the configuration files) and ``store.health`` (feed health, read-only).
"""

from __future__ import annotations

import redis

from alerts.state import redis_url
from alerts.state.articles import ArticleCache
from alerts.state.claims import Claims
from alerts.state.config_record import ConfigRecord
from alerts.state.connection import DEFAULT_URL, connect
from alerts.state.deliveries import Deliveries
from alerts.state.feed_health import FeedHealth
from alerts.state.feeds import FeedStates
from alerts.state.liveness import Liveness
from alerts.state.locks import Locks
from alerts.state.pacing import PacingState
from alerts.state.polls import PollBatches
from alerts.state.rates import RateBuckets
from alerts.state.schedule import Schedule
from alerts.state.stories import StoryState
from alerts.state.websub import WebSubState

__all__ = ["DEFAULT_URL", "Store"]


class Store:
    """State shared by every worker on every machine."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.liveness = Liveness(client)
        self.claims = Claims(client, self.liveness)
        self.locks = Locks(client, self.liveness)
        self.feeds = FeedStates(client)
        self.schedule = Schedule(client)
        self.polls = PollBatches(client, self.liveness)
        self.deliveries = Deliveries(client, self.liveness)
        self.pacing = PacingState(client, self.liveness)
        self.rates = RateBuckets(client)
        self.websub = WebSubState(client)
        self.articles = ArticleCache(client)
        self.config = ConfigRecord(client)
        self.health = FeedHealth(client)
        self.stories = StoryState(client)

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, timeout: float | None = None) -> Store:
        """A store on the Redis at ``url`` (short timeouts: an outage fails fast; ``timeout``, shorter
        still, for a health check)."""
        return cls(connect(url, timeout))

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def unavailable(self) -> str | None:
        """None when Redis answers PING, else why not (one line, without a password)."""
        try:
            self.client.ping()
            return None
        except redis.RedisError as exc:
            return f"redis unavailable: {redis_url.described(exc)}"
