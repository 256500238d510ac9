-- Prelude of the scripts that judge claims by their owner (prepended by connection.script).
-- A claim records its owner: one worker process, whose heartbeat is its score in the workers zset
-- (server time of its last beat). An owner is alive while it is in the set and, when STALE >= 0,
-- beat less than STALE seconds ago. A caller that has not itself been beating steadily passes a
-- negative STALE: then only owners gone from the set (released, or reaped as dead) count as dead,
-- so no one declares the others dead in the first seconds after Redis comes back.
local OWNED = '$OWNED'
local OUTBOX_RECORD = '$OUTBOX_RECORD'
local HELD = '$HELD'
local HELD_TAKEN = '$HELD_TAKEN'
local HELD_DUE = '$HELD_DUE'

local cached_now = nil
local function server_now()  -- read once per script: a script runs at one moment
  if not cached_now then
    local t = redis.call('TIME')
    cached_now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return cached_now
end

local function alive(workers, owner, stale)
  if not owner or owner == '' then return false end
  local beat = redis.call('ZSCORE', workers, owner)
  if not beat then return false end
  return stale < 0 or tonumber(beat) >= server_now() - stale
end

-- 'owner|nonce' -> owner (a lock or slot token names its process before the bar)
local function owner_of(token)
  return string.match(token, '^[^|]*')
end

-- Make ``owner`` responsible for delivery ``id`` (its record and the owner's set).
local function hand_to(id, owner)
  local record = OUTBOX_RECORD .. id
  local previous = redis.call('HGET', record, 'owner')
  if previous == owner then return end
  if previous then redis.call('SREM', OWNED .. previous, id) end
  redis.call('HSET', record, 'owner', owner)
  redis.call('SADD', OWNED .. owner, id)
end

-- No process is responsible for delivery ``id`` any more (it is finished, or waits for its time).
local function let_go(id, owner)
  local record = OUTBOX_RECORD .. id
  if redis.call('HGET', record, 'owner') == owner then redis.call('HDEL', record, 'owner') end
  redis.call('SREM', OWNED .. owner, id)
end

-- Held alerts taken for a subscriber's digest go back to its held alerts, due at ``now`` (their
-- digest's maker died, or could not record it).
local function give_back(subscriber, now)
  local taken = HELD_TAKEN .. subscriber
  local fields = redis.call('HGETALL', taken)
  if #fields == 0 then return 0 end
  for i = 1, #fields, 2 do redis.call('HSET', HELD .. subscriber, fields[i], fields[i + 1]) end
  redis.call('DEL', taken)
  redis.call('ZADD', HELD_DUE, now, subscriber)
  return 1
end
