"""WebSub subscriptions, one hash per feed; the requests waiting for a hub's verification, one hash
per callback token (with an expiry); and the pace of (re)subscription attempts and refusal notes."""

from __future__ import annotations

from collections.abc import Mapping

import redis

from alerts.state import keys
from alerts.state.connection import script, translated


class WebSubState:
    """The subscriptions every process shares (the callback server, pollers, renewal)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._settle = script(client, "websub_settle")

    def get(self, feed: str) -> dict[str, str]:
        """The stored subscription fields of ``feed`` ({} when none)."""
        with translated():
            return {str(k): str(v) for k, v in self._client.hgetall(keys.websub(feed)).items()}

    def put(self, feed: str, fields: Mapping[str, str]) -> None:
        """Store a subscription (replacing the previous one)."""
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.hset(keys.websub(feed), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def delete(self, feed: str) -> None:
        """Forget a subscription."""
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.srem(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def feeds(self) -> list[str]:
        """Feeds that have a subscription."""
        with translated():
            return sorted(str(feed) for feed in self._client.smembers(keys.WEBSUB_FEEDS))

    def attempt(self, feed: str, every: int) -> bool:
        """True at most once per ``every`` seconds per feed: the turn of one (re)subscription attempt."""
        with translated():
            return bool(self._client.set(keys.websub_attempt(feed), "1", nx=True, ex=every))

    def add_pending(self, feed: str, token: str, fields: Mapping[str, str], ttl: int) -> None:
        """Remember a request made with callback ``token`` for ``ttl`` seconds."""
        key = keys.websub_pending(feed, token)
        with translated():
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
            pipe.expire(key, max(1, ttl))
            pipe.execute()

    def pending(self, feed: str, token: str) -> dict[str, str]:
        """The fields of the pending request of ``feed`` with callback ``token`` ({} when none)."""
        with translated():
            return {str(k): str(v) for k, v in self._client.hgetall(keys.websub_pending(feed, token)).items()}

    def settle(
        self, feed: str, token: str, hub: str, fields: Mapping[str, str] | None, drop_token: str = ""
    ) -> int:
        """Atomically consume the pending request ``token`` of ``feed`` and, if the feed's
        subscription is still with ``hub``, replace it with ``fields`` (None: delete it, if its token
        is ``drop_token``). 1: done; 0: no such request pending (nothing changed); -1: the
        subscription is no longer with ``hub`` (the request is consumed, nothing else changed)."""
        args: list[str] = [feed, hub]
        if fields is None:
            args += ["drop", drop_token]
        else:
            args += ["put", ""]
            for name, value in fields.items():
                args += [name, value]
        with translated():
            result = self._settle(
                keys=[keys.websub_pending(feed, token), keys.websub(feed), keys.WEBSUB_FEEDS], args=args
            )
        return int(result)

    def note(self, feed: str, hub: str, every: int) -> bool:
        """True at most once per ``every`` seconds per (feed, hub): the turn to log a refusal."""
        with translated():
            return bool(self._client.set(keys.websub_refused(feed, hub), "1", nx=True, ex=every))

    def set_flag(self, feed: str, field: str, value: bool) -> None:
        """Set one yes/no field of ``feed``'s subscription, if it still has one (never half-creates)."""
        key = keys.websub(feed)
        with translated(), self._client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                if not pipe.exists(key):
                    return
                pipe.multi()
                pipe.hset(key, field, "1" if value else "")
                pipe.execute()
            except redis.WatchError:
                return  # changed meanwhile: the next poll sets it
