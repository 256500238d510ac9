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
from dataclasses import dataclass
from typing import Any

import redis

from alerts.errors import StoreUnavailable
from alerts.state import keys

DEFAULT_URL = "redis://localhost:6379/0"
FIRST_POLL_WINDOW = 5.0  # new feeds are first polled within this many seconds (more for many feeds)

# KEYS: the keys to claim. ARGV[1]: ttl, ARGV[2]: hold. Returns 1 per newly claimed key (held as
# 'p' for ``hold`` seconds until :meth:`Store.confirm`), 0 per key already held. A confirmed key's
# ttl is refreshed, so an item that stays in a feed never expires and comes back as new; a held one
# of a worker that died expires, so its items are processed again.
_CLAIM_EACH = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 'p', 'EX', ARGV[2], 'NX') then
    out[i] = 1
  else
    if redis.call('GET', key) ~= 'p' then redis.call('EXPIRE', key, ARGV[1]) end
    out[i] = 0
  end
end
return out
"""

# KEYS: the keys of every group, flattened. ARGV[1]: hold, ARGV[2..]: size of each group.
# Keys are held ('p') for ``hold`` seconds until :meth:`Store.confirm`.
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
  for i = k, k + size - 1 do redis.call('SET', KEYS[i], 'p', 'EX', ARGV[1], 'NX') end
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


# KEYS[1]: due zset; then one record key per delivery. ARGV[1]: due at, ARGV[2]: created at,
# then per delivery: id, number of field pairs, field, value, ... Creates absent records only.
_OUTBOX_CREATE = """
local out = {}
local a = 3
for i = 2, #KEYS do
  local id = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  if redis.call('EXISTS', KEYS[i]) == 0 then
    for j = 0, n - 1 do redis.call('HSET', KEYS[i], ARGV[a + 2 + 2 * j], ARGV[a + 3 + 2 * j]) end
    redis.call('HSET', KEYS[i], 'state', 'pending', 'attempts', 0, 'created', ARGV[2], 'updated', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
  a = a + 2 + 2 * n
end
return out
"""

# KEYS[1]: record, KEYS[2]: due zset. ARGV: id, now, lease. Takes a delivery that is pending,
# retrying, or sending under an expired lease (its worker died); returns its fields, or nil.
_OUTBOX_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return nil end
local now = tonumber(ARGV[2])
if state == 'sending' then
  if tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > now then return nil end
elseif state ~= 'pending' and state ~= 'retrying' then
  return nil
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'lease_until', now + tonumber(ARGV[3]), 'updated', now)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS[1]: due zset; then one record key per delivery. ARGV: now, lease, then the ids. Claims each
# delivery like _OUTBOX_CLAIM; returns per delivery its fields, or 0 when it is not ours to send.
_OUTBOX_CLAIM_MANY = """
local out = {}
local now = tonumber(ARGV[1])
local lease_until = now + tonumber(ARGV[2])
for i = 2, #KEYS do
  local key = KEYS[i]
  local state = redis.call('HGET', key, 'state')
  local ok = state == 'pending' or state == 'retrying'
  if state == 'sending' then ok = tonumber(redis.call('HGET', key, 'lease_until') or '0') <= now end
  if ok then
    redis.call('HSET', key, 'state', 'sending', 'lease_until', lease_until, 'updated', now)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', KEYS[1], lease_until, ARGV[i + 1])
    out[i - 1] = redis.call('HGETALL', key)
  else
    out[i - 1] = 0
  end
end
return out
"""

# KEYS: record, due zset, dead zset, history stream. ARGV: id, retry at ('' = none), dead at ('' =
# none), ttl ('' = none), history min id ('' = no entry), number of field pairs, the pairs, then
# the history entry's pairs. Records an attempt's outcome in one step.
_OUTBOX_FINISH = """
local n = tonumber(ARGV[6])
for j = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[7 + 2 * j], ARGV[8 + 2 * j]) end
redis.call('HDEL', KEYS[1], 'lease_until')
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
if ARGV[5] ~= '' then
  local entry = {}
  for i = 7 + 2 * n, #ARGV do table.insert(entry, ARGV[i]) end
  redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[5], '*', unpack(entry))
end
return 1
"""

# KEYS: the keys to set. ARGV[1]: value, ARGV[2]: ttl. One round trip, however many keys.
_SET_ALL = """
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end
return #KEYS
"""

# KEYS: one sorted set per subscriber. ARGV[1]: since. Returns, per key, its scores since then.
_RECENT = """
local out = {}
for i, key in ipairs(KEYS) do
  local found = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf', 'WITHSCORES')
  local scores = {}
  for j = 2, #found, 2 do table.insert(scores, found[j]) end
  out[i] = scores
end
return out
"""

# KEYS: one sorted set per subscriber. ARGV[1]: drop scores below, ARGV[2]: ttl, then per key the
# number of (score, member) pairs and the pairs. Adds them and trims what is older.
_NOTE = """
local a = 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  for j = 0, n - 1 do redis.call('ZADD', key, ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j]) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
  a = a + 1 + 2 * n
end
return #KEYS
"""

# KEYS[1]: due zset. ARGV: now, limit, lease. Deliveries due now, each booked lease seconds later
# (so a sweep hands each to one worker; if that worker dies, a later sweep hands it out again).
_OUTBOX_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id) end
return due
"""


# KEYS: one bucket per limit. ARGV[1]: now, then interval and tolerance per bucket. GCRA: a send
# may go if every bucket allows it; then each bucket is advanced. Returns 0, or seconds to wait.
_RATE_TAKE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local early = tat - now - tonumber(ARGV[2 * i + 1])
  if early > wait then wait = early end
end
if wait > 0.001 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new = tat + tonumber(ARGV[2 * i])
  redis.call('SET', key, tostring(new), 'PX', math.ceil((new - now) * 1000) + 1000)
end
return '0'
"""


# KEYS[1]: held-due zset. ARGV: now, limit. Pops every subscriber whose held alerts are due, and
# their alerts, atomically: two flushers never send one digest twice. Returns [sub, n, k, v...]*.
_HELD_POP = """
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, sub in ipairs(due) do
  local key = ARGV[3] .. sub
  local fields = redis.call('HGETALL', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], sub)
  table.insert(out, sub)
  table.insert(out, #fields)
  for _, f in ipairs(fields) do table.insert(out, f) end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Finish:
    """The outcome of one delivery attempt, as :meth:`Store.outbox_finish` records it."""

    delivery: str
    fields: Mapping[str, str | int | float]
    retry_at: float | None = None
    dead_at: float | None = None
    ttl: int | None = None
    history: Mapping[str, str] | None = None
    history_retention: int = 7 * 86400

    def keys(self) -> list[str]:
        return [keys.outbox(self.delivery), keys.OUTBOX_DUE, keys.OUTBOX_DEAD, keys.HISTORY]

    def args(self) -> list[str | int]:
        pairs = [str(part) for name, value in self.fields.items() for part in (name, value)]
        entry = [part for name, value in (self.history or {}).items() for part in (name, value)]
        oldest = f"{int((time.time() - self.history_retention) * 1000)}-0" if self.history is not None else ""
        args: list[str | int] = [
            self.delivery,
            _opt(self.retry_at),
            _opt(self.dead_at),
            _opt(self.ttl),
            oldest,
        ]
        return [*args, len(self.fields), *pairs, *entry]


class Store:
    """State shared by every worker on every machine."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._claim_each = client.register_script(_CLAIM_EACH)
        self._claim_groups = client.register_script(_CLAIM_GROUPS)
        self._due = client.register_script(_DUE)
        self._acquire_slot = client.register_script(_ACQUIRE_SLOT)
        self._outbox_create = client.register_script(_OUTBOX_CREATE)
        self._rate_take = client.register_script(_RATE_TAKE)
        self._held_pop = client.register_script(_HELD_POP)
        self._outbox_claim = client.register_script(_OUTBOX_CLAIM)
        self._outbox_due = client.register_script(_OUTBOX_DUE)
        self._outbox_claim_many = client.register_script(_OUTBOX_CLAIM_MANY)
        self._outbox_finish = client.register_script(_OUTBOX_FINISH)
        self._set_all = client.register_script(_SET_ALL)
        self._recent = client.register_script(_RECENT)
        self._note = client.register_script(_NOTE)

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

    def claim_items(
        self, feed: str, item_ids: Sequence[str], ttl: int, hold: int | None = None
    ) -> list[bool]:
        """For each item id, True if this call is the first to see it in ``ttl`` seconds.

        New claims are held for ``hold`` seconds (default: ``ttl``) until :meth:`confirm`; a worker
        that dies before confirming leaves its items to be processed again.
        """
        if not item_ids:
            return []
        with _translate():
            result = self._claim_each(
                keys=[keys.item_seen(feed, item_id) for item_id in item_ids], args=[ttl, hold or ttl]
            )
        return [bool(flag) for flag in result]

    def claim_stories(self, groups: Sequence[Sequence[str]], hold: int) -> list[bool]:
        """For each group of story keys, True if none was claimed before; all its keys are then held."""
        if not groups:
            return []
        flat = [key for group in groups for key in group]
        with _translate():
            result = self._claim_groups(keys=flat, args=[hold, *(len(group) for group in groups)])
        return [bool(flag) for flag in result]

    def confirm(self, claimed: Sequence[str], ttl: int) -> None:
        """Make held claims final for ``ttl`` seconds (their work is recorded)."""
        if not claimed:
            return
        with _translate():
            self._set_all(keys=list(claimed), args=["d", ttl])

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

    def outbox_create(
        self, records: Sequence[tuple[str, Mapping[str, str]]], due_at: float, now: float
    ) -> list[bool]:
        """Create delivery records that do not exist yet (pending, due at ``due_at``); True per new one."""
        if not records:
            return []
        args: list[str | float] = [due_at, now]
        for delivery, fields in records:
            args += [delivery, len(fields)]
            for name, value in fields.items():
                args += [name, value]
        record_keys = [keys.outbox(delivery) for delivery, _ in records]
        with _translate():
            result = self._outbox_create(keys=[keys.OUTBOX_DUE, *record_keys], args=args)
        return [bool(flag) for flag in result]

    def outbox_claim(self, delivery: str, now: float, lease: float) -> dict[str, str] | None:
        """Take a delivery to send it (see _OUTBOX_CLAIM); its fields, or None if not ours to send."""
        with _translate():
            raw = self._outbox_claim(
                keys=[keys.outbox(delivery), keys.OUTBOX_DUE], args=[delivery, now, lease]
            )
        if not raw:
            return None
        return {str(raw[i]): str(raw[i + 1]) for i in range(0, len(raw), 2)}

    def outbox_claim_many(
        self, deliveries: Sequence[str], now: float, lease: float
    ) -> list[dict[str, str] | None]:
        """:meth:`outbox_claim` for each delivery, in one round trip."""
        if not deliveries:
            return []
        with _translate():
            raw = self._outbox_claim_many(
                keys=[keys.OUTBOX_DUE, *(keys.outbox(d) for d in deliveries)], args=[now, lease, *deliveries]
            )
        return [
            {str(f[i]): str(f[i + 1]) for i in range(0, len(f), 2)} if isinstance(f, list) else None
            for f in raw
        ]

    def outbox_finish(
        self,
        delivery: str,
        fields: Mapping[str, str | int | float],
        *,
        retry_at: float | None = None,
        dead_at: float | None = None,
        ttl: int | None = None,
        history: Mapping[str, str] | None = None,
        history_retention: int = 7 * 86400,
    ) -> None:
        """Record an attempt's outcome: book a retry, or give up (dead), or finish; log it to history."""
        finish = Finish(delivery, fields, retry_at, dead_at, ttl, history, history_retention)
        with _translate():
            self._outbox_finish(keys=finish.keys(), args=finish.args())

    def outbox_finish_many(self, finishes: Sequence[Finish]) -> None:
        """:meth:`outbox_finish` for each, in one round trip."""
        if not finishes:
            return
        with _translate():
            pipe = self._redis.pipeline(transaction=False)
            for finish in finishes:
                self._outbox_finish(keys=finish.keys(), args=finish.args(), client=pipe)
            pipe.execute()

    def outbox_due(self, now: float, limit: int, lease: float) -> list[str]:
        """Deliveries due now (new, retries, or abandoned by a dead worker), each booked ``lease`` later."""
        with _translate():
            return [str(d) for d in self._outbox_due(keys=[keys.OUTBOX_DUE], args=[now, limit, lease])]

    def outbox_get(self, delivery: str) -> dict[str, str]:
        """A delivery's record ({} when unknown)."""
        with _translate():
            return {str(k): str(v) for k, v in self._redis.hgetall(keys.outbox(delivery)).items()}

    def outbox_dead(self, limit: int = 1000) -> list[str]:
        """Dead deliveries, oldest first."""
        with _translate():
            return [str(d) for d in self._redis.zrange(keys.OUTBOX_DEAD, 0, limit - 1)]

    def outbox_revive(self, delivery: str, now: float) -> bool:
        """Move a dead delivery back to retrying, due now; False if it is not dead."""
        with _translate():
            if self._redis.zrem(keys.OUTBOX_DEAD, delivery) == 0:
                return False
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(keys.outbox(delivery), mapping={"state": "retrying", "created": now, "updated": now})
            pipe.persist(keys.outbox(delivery))
            pipe.zadd(keys.OUTBOX_DUE, {delivery: now})
            pipe.execute()
            return True

    def outbox_drop(self, delivery: str) -> bool:
        """Forget a delivery (dead or not); False if unknown."""
        with _translate():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(keys.outbox(delivery))
            pipe.zrem(keys.OUTBOX_DEAD, delivery)
            pipe.zrem(keys.OUTBOX_DUE, delivery)
            return bool(pipe.execute()[0])

    def history(self, since: float, count: int = 10_000) -> list[dict[str, str]]:
        """History entries since ``since`` (unix seconds), oldest first."""
        with _translate():
            entries = self._redis.xrange(keys.HISTORY, min=f"{int(since * 1000)}-0", count=count)
        return [{str(k): str(v) for k, v in (fields or {}).items()} for _, fields in entries or []]

    def rate_take(self, limits: Sequence[tuple[str, float, float]], now: float) -> float:
        """Take a send slot from every (bucket key, interval, tolerance): 0, or seconds to wait first."""
        if not limits:
            return 0.0
        args: list[float] = [now]
        for _, interval, tolerance in limits:
            args += [interval, tolerance]
        with _translate():
            return float(self._rate_take(keys=[key for key, _, _ in limits], args=args))

    def rate_block(self, key: str, until: float) -> None:
        """No send to this bucket before ``until`` (a channel said "retry after")."""
        with _translate():
            self._redis.set(key, str(until), px=max(1000, int((until - time.time()) * 1000) + 1000))

    def recent_sends(self, subscribers: Sequence[str], now: float) -> dict[str, list[float]]:
        """Times of each subscriber's instant alerts in the last hour (one round trip for all)."""
        if not subscribers:
            return {}
        with _translate():
            raw = self._recent(keys=[keys.recent(s) for s in subscribers], args=[now - 3600])
        return {s: [float(score) for score in scores] for s, scores in zip(subscribers, raw, strict=True)}

    def note_sends(
        self,
        sends: Mapping[str, Mapping[str, float]],
        holds: Mapping[str, tuple[Mapping[str, str], float]],
        now: float,
    ) -> None:
        """In one round trip: remember instant alerts (subscriber -> story -> time) for caps and
        bursts, and keep held ones (subscriber -> (story -> JSON, release time)) for a digest."""
        if not any(sends.values()) and not holds:
            return
        noted = {subscriber: stamps for subscriber, stamps in sends.items() if stamps}
        args: list[str | float | int] = [now - 3600, 3700]
        for stamps in noted.values():
            args.append(len(stamps))
            for story, at in stamps.items():
                args += [at, story]
        with _translate():
            if noted:
                self._note(keys=[keys.recent(subscriber) for subscriber in noted], args=args)
            if holds:
                pipe = self._redis.pipeline(transaction=False)
                for subscriber, (alerts, release_at) in holds.items():
                    pipe.hset(keys.held(subscriber), mapping=dict(alerts))  # type: ignore[arg-type]
                    pipe.zadd(keys.HELD_DUE, {subscriber: release_at}, nx=True)
                    pipe.zadd(keys.HELD_DUE, {subscriber: release_at}, lt=True)
                pipe.execute()

    def pop_held(self, now: float, limit: int = 500) -> dict[str, dict[str, str]]:
        """Subscriber -> its held alerts (story -> JSON), for every subscriber whose digest is due."""
        with _translate():
            raw = self._held_pop(keys=[keys.HELD_DUE], args=[now, limit, keys.held("")])
        result: dict[str, dict[str, str]] = {}
        i = 0
        while i < len(raw):
            subscriber, count = str(raw[i]), int(raw[i + 1])
            fields = raw[i + 2 : i + 2 + count]
            result[subscriber] = {str(fields[j]): str(fields[j + 1]) for j in range(0, count, 2)}
            i += 2 + count
        return result

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


def _opt(value: float | int | None) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


@contextmanager
def _translate() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"redis unavailable: {exc}") from exc
