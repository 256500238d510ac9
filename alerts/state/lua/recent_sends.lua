-- The times of each subscriber's instant alerts since ARGV[1], one round trip for all.
-- KEYS: one sorted set per subscriber. Returns, per key, its scores since then.
local out = {}
for i, key in ipairs(KEYS) do
  local found = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf', 'WITHSCORES')
  local scores = {}
  for j = 2, #found, 2 do table.insert(scores, found[j]) end
  out[i] = scores
end
return out
