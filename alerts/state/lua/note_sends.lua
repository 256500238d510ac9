-- Remember instant alerts and forget old ones. KEYS: one sorted set per subscriber.
-- ARGV[1]: drop scores below, ARGV[2]: ttl, then per key its number of (score, member) pairs and
-- the pairs.
local a = 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  for j = 0, n - 1 do redis.call('ZADD', key, ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j]) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
  a = a + 1 + 2 * n
end
return #KEYS
