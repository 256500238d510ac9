"""Dedupe claims, feed state and the poll schedule in Redis: the only module that imports redis.

Every claim is one atomic server-side operation (SET NX EX, or a Lua script over a batch), so
two workers can never both win the same item, story or delivery, and each batch costs one round trip.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from alerts import keys
from alerts.errors import StoreUnavailable

DEFAULT_URL = "redis://localhost:6379/0"
FIRST_POLL_WINDOW = 5.0  # new feeds are first polled within this many seconds (more for many feeds)

# KEYS: the keys to claim. ARGV[1]: ttl. Returns 1 per newly claimed key, 0 per key already held
# (whose ttl is refreshed, so an item that stays in a feed never expires and comes back as new).
_CLAIM_EACH = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[2], 'EX', ARGV[1], 'NX') then
    out[i] = 1
  else
    redis.call('EXPIRE', key, ARGV[1])
    out[i] = 0
  end
end
return out
"""

# KEYS: the keys of every group, flattened. ARGV[1]: ttl, ARGV[2..]: size of each group.
# A group is won (1) only if none of its keys is held. Either way all its keys are then held, so
# "same story" is transitive (a later item sharing only the loser's link is the same story too).
# Groups are handled in order, so two groups in one batch that share a key yield one winner.
_CLAIM_GROUPS = """
local out = {}
local k = 1
for g = 2, #ARGV do
  local size = tonumber(ARGV[g])
  local held = false
  for i = k, k + size - 1 do
    if redis.call('EXISTS', KEYS[i]) == 1 then held = true end
  end
  for i = k, k + size - 1 do redis.call('SET', KEYS[i], '1', 'EX', ARGV[1], 'NX') end
  out[g - 1] = held and 0 or 1
  k = k + size
end
return out
"""

# KEYS[1]: schedule zset, KEYS[2]: intervals hash. ARGV[1]: now, ARGV[2]: max feeds.
# Pops the feeds that are due and books each one's next poll one interval later.
_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local now = tonumber(ARGV[1])
for _, feed in ipairs(due) do
  local every = tonumber(redis.call('HGET', KEYS[2], feed) or '60')
  local next_at = tonumber(redis.call('ZSCORE', KEYS[1], feed)) + every
  if next_at <= now then next_at = now + every end
  redis.call('ZADD', KEYS[1], next_at, feed)
end
return due
"""


# KEYS[1]: host slots zset. ARGV: now, expiry, limit, token. A slot is taken if fewer than limit are
# held (expired ones, left by a crashed worker, are dropped first).
_ACQUIRE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 1
end
return 0
"""


class Store:
    """State shared by every worker on every machine."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._claim_each = client.register_script(_CLAIM_EACH)
        self._claim_groups = client.register_script(_CLAIM_GROUPS)
        self._due = client.register_script(_DUE)
        self._acquire_slot = client.register_script(_ACQUIRE_SLOT)

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL) -> Store:
        """A store on the Redis at ``url``, with short timeouts so an outage fails fast."""
        client = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30, decode_responses=True
        )
        return cls(client)

    @property
    def client(self) -> redis.Redis:
        """The underlying client (for tests and the CLI)."""
        return self._redis

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def claim_items(self, feed: str, item_ids: Sequence[str], ttl: int) -> list[bool]:
        """For each item id, True if this call is the first to see it in ``ttl`` seconds."""
        if not item_ids:
            return []
        with _translate():
            result = self._claim_each(
                keys=[keys.item_seen(feed, item_id) for item_id in item_ids], args=[ttl, int(time.time())]
            )
        return [bool(flag) for flag in result]

    def claim_stories(self, groups: Sequence[Sequence[str]], ttl: int) -> list[bool]:
        """For each group of story keys, True if none was claimed before; the winner claims them all."""
        if not groups:
            return []
        flat = [key for group in groups for key in group]
        with _translate():
            result = self._claim_groups(keys=flat, args=[ttl, *(len(group) for group in groups)])
        return [bool(flag) for flag in result]

    def release(self, claimed_keys: Sequence[str]) -> None:
        """Undo claims whose work could not be handed on (so a retry can claim them again)."""
        if claimed_keys:
            with _translate():
                self._redis.delete(*claimed_keys)

    def mark_seeded(self, feed: str) -> bool:
        """True exactly once per feed: its first successful poll, whose items are recorded, not alerted."""
        with _translate():
            return bool(self._redis.hsetnx(keys.feed_state(feed), "seeded", int(time.time())))

    def feed_state(self, feed: str) -> dict[str, str]:
        """Validators and health fields stored for ``feed``."""
        with _translate():
            state = self._redis.hgetall(keys.feed_state(feed))
            return {str(name): str(value) for name, value in state.items()}

    def update_feed_state(self, feed: str, fields: Mapping[str, str | int | float | None]) -> None:
        """Set the given fields; None deletes one."""
        present = {name: value for name, value in fields.items() if value is not None}
        absent = [name for name, value in fields.items() if value is None]
        with _translate():
            pipe = self._redis.pipeline(transaction=True)
            if present:
                pipe.hset(keys.feed_state(feed), mapping=present)  # type: ignore[arg-type]
            if absent:
                pipe.hdel(keys.feed_state(feed), *absent)
            pipe.execute()

    def try_lock(self, key: str, ttl_ms: int) -> str | None:
        """A token if ``key`` was free (SET NX PX), else None."""
        token = f"{time.time_ns()}"
        with _translate():
            return token if self._redis.set(key, token, nx=True, px=ttl_ms) else None

    def unlock(self, key: str) -> None:
        """Release a lock taken with :meth:`try_lock`."""
        with _translate():
            self._redis.delete(key)

    def claim(self, key: str, ttl: int, value: str = "1") -> bool:
        """One SET NX EX."""
        with _translate():
            return bool(self._redis.set(key, value, nx=True, ex=ttl))

    def put(self, key: str, value: str, ttl: int) -> None:
        """Overwrite ``key`` with a lifetime."""
        with _translate():
            self._redis.set(key, value, ex=ttl)

    def get_many(self, names: Sequence[str]) -> list[str | None]:
        """MGET: the values of ``names`` (None where absent)."""
        if not names:
            return []
        with _translate():
            return [None if value is None else str(value) for value in self._redis.mget(names)]

    def get(self, key: str) -> str | None:
        """The value of ``key``."""
        with _translate():
            value: Any = self._redis.get(key)
            return None if value is None else str(value)

    def sync_schedule(self, intervals: Mapping[str, float], fingerprint: str) -> bool:
        """Make the schedule hold exactly these feeds; new feeds are due now. False if already in sync."""
        with _translate():
            if self._redis.get(keys.SCHEDULE_FINGERPRINT) == fingerprint:
                return False
            known = {str(name) for name in self._redis.hkeys(keys.INTERVALS)}
            pipe = self._redis.pipeline(transaction=True)
            gone = known - set(intervals)
            if gone:
                pipe.zrem(keys.SCHEDULE, *gone)
                pipe.hdel(keys.INTERVALS, *gone)
            if intervals:
                pipe.hset(keys.INTERVALS, mapping=dict(intervals))  # type: ignore[arg-type]
                now = time.time()
                # new feeds start spread over a window (100 feeds a second, within their interval)
                window = max(FIRST_POLL_WINDOW, len(intervals) / 100)
                spread = {
                    name: now + random.uniform(0, min(every, window)) for name, every in intervals.items()
                }
                pipe.zadd(keys.SCHEDULE, spread, nx=True)
                # a shortened interval takes effect now, not after the booking made with the old one
                pipe.zadd(keys.SCHEDULE, {name: now + every for name, every in intervals.items()}, lt=True)
            pipe.set(keys.SCHEDULE_FINGERPRINT, fingerprint)
            pipe.execute()
            return True

    def reschedule(self, feed: str, at: float) -> None:
        """Book ``feed``'s next poll at ``at`` (only if it is still scheduled)."""
        with _translate():
            self._redis.zadd(keys.SCHEDULE, {feed: at}, xx=True)

    def set_interval(self, feed: str, every: float) -> None:
        """The interval the schedule books after each poll of ``feed``."""
        with _translate():
            self._redis.hset(keys.INTERVALS, feed, every)

    def schedule_of(self, feeds: list[str]) -> dict[str, tuple[float | None, float | None]]:
        """feed -> (next poll time, interval) as the schedule holds them."""
        with _translate():
            pipe = self._redis.pipeline(transaction=False)
            for feed in feeds:
                pipe.zscore(keys.SCHEDULE, feed)
                pipe.hget(keys.INTERVALS, feed)
            values = pipe.execute()
        return {feed: (_float(values[2 * i]), _float(values[2 * i + 1])) for i, feed in enumerate(feeds)}

    def acquire_slot(self, host: str, limit: int, ttl: float) -> str | None:
        """A token if fewer than ``limit`` polls of ``host`` are running anywhere, else None."""
        token = f"{os.getpid()}:{time.time_ns()}"
        now = time.time()
        with _translate():
            taken = self._acquire_slot(keys=[keys.host_slots(host)], args=[now, now + ttl, limit, token])
        return token if taken else None

    def release_slot(self, host: str, token: str) -> None:
        """Give back a slot taken with :meth:`acquire_slot`."""
        with _translate():
            self._redis.zrem(keys.host_slots(host), token)

    def flag(self, feed: str, field: str, value: str) -> bool:
        """Set a state field only if unset (HSETNX): True on the transition."""
        with _translate():
            return bool(self._redis.hsetnx(keys.feed_state(feed), field, value))

    def unflag(self, feed: str, field: str) -> bool:
        """Delete a state field: True if it was set (the opposite transition)."""
        with _translate():
            return bool(self._redis.hdel(keys.feed_state(feed), field))

    def websub_get(self, feed: str) -> dict[str, str]:
        """The stored WebSub subscription fields of ``feed`` ({} when none)."""
        with _translate():
            return {str(k): str(v) for k, v in self._redis.hgetall(keys.websub(feed)).items()}

    def websub_put(self, feed: str, fields: Mapping[str, str]) -> None:
        """Store a WebSub subscription (replacing the previous one)."""
        with _translate():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.hset(keys.websub(feed), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def websub_delete(self, feed: str) -> None:
        """Forget a WebSub subscription."""
        with _translate():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(keys.websub(feed))
            pipe.srem(keys.WEBSUB_FEEDS, feed)
            pipe.execute()

    def websub_feeds(self) -> list[str]:
        """Feeds that have a WebSub subscription."""
        with _translate():
            return sorted(str(feed) for feed in self._redis.smembers(keys.WEBSUB_FEEDS))

    def due_feeds(self, now: float, limit: int = 1000) -> list[str]:
        """Pop the feeds due at ``now`` and book their next poll."""
        with _translate():
            return [str(feed) for feed in self._due(keys=[keys.SCHEDULE, keys.INTERVALS], args=[now, limit])]


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


@contextmanager
def _translate() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from exc
