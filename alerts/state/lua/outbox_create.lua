-- Create delivery records that do not exist yet: pending, due at ARGV[1], this process responsible.
-- KEYS[1]: the due zset, KEYS[2]: the workers zset, KEYS[3]: the created zset (what is not yet sent
-- or dead, by age), then one record key per delivery. ARGV: due at, created at, this process (the
-- owner), STALE, then per delivery: its id, its number of field pairs, and the pairs. Returns 1 per
-- record to hand on now: a new one, or a pending one whose responsible process died before handing
-- it on (its items are being processed again).
local out = {}
local owner = ARGV[3]
local stale = tonumber(ARGV[4])
local a = 5
for i = 4, #KEYS do
  local id = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  out[i - 3] = 0
  if redis.call('EXISTS', KEYS[i]) == 0 then
    for j = 0, n - 1 do redis.call('HSET', KEYS[i], ARGV[a + 2 + 2 * j], ARGV[a + 3 + 2 * j]) end
    redis.call('HSET', KEYS[i], 'state', 'pending', 'attempts', 0, 'created', ARGV[2], 'updated', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    redis.call('ZADD', KEYS[3], ARGV[2], id)
    hand_to(id, owner)
    out[i - 3] = 1
  elseif redis.call('HGET', KEYS[i], 'state') == 'pending' then
    local previous = redis.call('HGET', KEYS[i], 'owner')
    if previous ~= owner and not alive(KEYS[2], previous, stale) then
      hand_to(id, owner)
      out[i - 3] = 1
    end
  end
  a = a + 2 + 2 * n
end
return out
