-- Claim items of a feed: the first sighting of each wins.
-- KEYS[1]: the workers zset, then one key per item. ARGV: ttl of a confirmed claim, hold of a new
-- one, this process (the owner), STALE (see _liveness.lua).
-- Returns 1 per newly claimed key (held as 'p:<owner>' for the hold, until confirmed), 0 per key
-- already claimed. A confirmed key's ttl is refreshed, so an item that stays in a feed never
-- expires and comes back as new. A held key whose owner is dead is taken over at once, so the
-- items of a killed worker are processed again by the next poll (the outbox dedupes deliveries).
local held = 'p:' .. ARGV[3]
local stale = tonumber(ARGV[4])
local out = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local won = 0
  if redis.call('SET', key, held, 'EX', ARGV[2], 'NX') then
    won = 1
  else
    local value = redis.call('GET', key)
    if string.sub(value, 1, 2) == 'p:' then
      local owner = string.sub(value, 3)
      if owner ~= ARGV[3] and not alive(KEYS[1], owner, stale) then
        redis.call('SET', key, held, 'EX', ARGV[2])
        won = 1
      end
    elseif value ~= 'p' then
      redis.call('EXPIRE', key, ARGV[1])
    end
  end
  out[i - 1] = won
end
return out
