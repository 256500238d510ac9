-- Take deliveries to send them: each that is pending, retrying, or sending under an expired lease
-- or by a dead process becomes 'sending' by this one under a new lease, and is due again when the
-- lease ends (the bound for a sender that lives but is stuck).
-- KEYS[1]: the due zset, KEYS[2]: the workers zset, then one record key per delivery. ARGV: now,
-- lease, this process (the owner), STALE, then the ids.
-- Returns per delivery its fields, or 0 when it is not ours to send.
local out = {}
local now = tonumber(ARGV[1])
local lease_until = now + tonumber(ARGV[2])
local owner = ARGV[3]
local stale = tonumber(ARGV[4])
for i = 3, #KEYS do
  local key = KEYS[i]
  local id = ARGV[i + 2]
  local state = redis.call('HGET', key, 'state')
  local ok = state == 'pending' or state == 'retrying'
  if state == 'sending' then
    ok = tonumber(redis.call('HGET', key, 'lease_until') or '0') <= now
      or not alive(KEYS[2], redis.call('HGET', key, 'owner'), stale)
  end
  if ok then
    redis.call('HSET', key, 'state', 'sending', 'lease_until', lease_until, 'updated', now)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', KEYS[1], lease_until, id)
    hand_to(id, owner)
    out[i - 2] = redis.call('HGETALL', key)
  else
    out[i - 2] = 0
  end
end
return out
