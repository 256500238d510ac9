-- Take a poll slot on one host if fewer than the limit are held; slots that expired or whose owner
-- is dead (a crashed worker's) are dropped first.
-- KEYS[1]: the workers zset, KEYS[2]: the host's slots zset. ARGV: now, expiry, limit, token
-- ('<owner>|<nonce>'), STALE.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local stale = tonumber(ARGV[5])
local held = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if alive(KEYS[1], owner_of(token), stale) then held = held + 1 else redis.call('ZREM', KEYS[2], token) end
end
if held < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 1
end
return 0
