-- Take deliveries to send them: each that is pending, retrying, or sending under an expired lease
-- (its worker died) becomes 'sending' under a new lease, and is due again when the lease ends.
-- KEYS[1]: the due zset, then one record key per delivery. ARGV: now, lease, then the ids.
-- Returns per delivery its fields, or 0 when it is not ours to send.
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
