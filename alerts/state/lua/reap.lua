-- Reap dead worker processes: each one's deliveries are due at once (one that was being sent is
-- retrying: its sender is gone), held alerts it took for a digest go back (due at once), and the
-- process leaves the workers zset, so every claim, lock and slot it still holds is free. KEYS[1]: the workers zset, KEYS[2]: the due zset. ARGV: now (for
-- the due zset), then either 'stale' and STALE (every owner whose last beat is older) and a limit,
-- or 'owner' and one owner (a process releasing itself on a clean stop).
-- Returns [owner, deliveries due again, ...].
local owners
if ARGV[2] == 'owner' then
  owners = {ARGV[3]}
else
  local before = server_now() - tonumber(ARGV[3])
  owners = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. before, 'LIMIT', 0, ARGV[4])
end
local out = {}
for _, owner in ipairs(owners) do
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', OWNED .. owner)) do
    local record = OUTBOX_RECORD .. id
    if string.sub(id, 1, 5) == 'held:' then
      n = n + give_back(string.sub(id, 6), tonumber(ARGV[1]))
    elseif redis.call('HGET', record, 'owner') == owner then
      redis.call('HDEL', record, 'owner')
      if redis.call('HGET', record, 'state') == 'sending' then
        redis.call('HSET', record, 'state', 'retrying')
        redis.call('HDEL', record, 'lease_until')
      end
      redis.call('ZADD', KEYS[2], ARGV[1], id)
      n = n + 1
    end
  end
  redis.call('DEL', OWNED .. owner)
  redis.call('ZREM', KEYS[1], owner)
  table.insert(out, owner)
  table.insert(out, n)
end
return out
