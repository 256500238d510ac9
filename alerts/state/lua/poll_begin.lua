-- Begin the polls of a batch of due feeds: for each, take its poll lock unless a live process holds
-- it, then a slot on its host unless the host's limit is reached (then give the lock back and book
-- the feed a little later), and read its state hash; one round trip for the whole batch.
-- KEYS[1]: the workers zset, KEYS[2]: the schedule zset, then per feed: its lock, its host's slots
-- zset, its state hash. ARGV[1]: now, ARGV[2]: lock ttl in ms, ARGV[3]: slot expiry (unix s),
-- ARGV[4]: slots per host, ARGV[5]: STALE, then per feed: its name, its token ('<owner>|<nonce>'),
-- when to retry it if its host is full ('': the caller books it).
-- Returns per feed {code, state as a flat field/value array}: code 1 granted, 0 busy, 2 deferred.
local now, ttl, expiry = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local limit, stale = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
local held = {}  -- slots key -> live slots held, counted once per script (many feeds share a host)
local n = (#KEYS - 2) / 3
for i = 1, n do
  local lock, slots, state = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local feed, token, retry_at = ARGV[3 * i + 3], ARGV[3 * i + 4], ARGV[3 * i + 5]
  local code = 0
  local holder = redis.call('GET', lock)
  if not holder or not alive(KEYS[1], owner_of(holder), stale) then
    if held[slots] == nil then
      redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
      local count = 0
      for _, taken in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
        if alive(KEYS[1], owner_of(taken), stale) then count = count + 1 else redis.call('ZREM', slots, taken) end
      end
      held[slots] = count
    end
    if held[slots] < limit then
      redis.call('SET', lock, token, 'PX', ttl)
      redis.call('ZADD', slots, expiry, token)
      redis.call('PEXPIRE', slots, math.ceil((tonumber(expiry) - now) * 1000))
      held[slots] = held[slots] + 1
      code = 1
    else
      if retry_at ~= '' then redis.call('ZADD', KEYS[2], 'XX', retry_at, feed) end
      code = 2
    end
  end
  if code == 1 then
    out[i] = {code, redis.call('HGETALL', state)}
  else
    out[i] = {code, {}}
  end
end
return out
