-- Create delivery records that do not exist yet: pending, due at ARGV[1].
-- KEYS[1]: the due zset, then one record key per delivery. ARGV[1]: due at, ARGV[2]: created at,
-- then per delivery: its id, its number of field pairs, and the pairs. Returns 1 per new record.
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
