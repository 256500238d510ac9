-- End the polls of a batch: release each feed's poll lock and host slot if they are still ours.
-- KEYS: per feed, its lock and its host's slots zset. ARGV: per feed, its token.
-- Returns how many locks were released.
local released = 0
for i = 1, #ARGV do
  local lock, slots, token = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i]
  if redis.call('GET', lock) == token then
    redis.call('DEL', lock)
    released = released + 1
  end
  redis.call('ZREM', slots, token)
end
return released
