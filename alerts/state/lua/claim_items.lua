-- Claim items of a feed: the first sighting of each wins.
-- KEYS: one key per item. ARGV[1]: ttl of a confirmed claim, ARGV[2]: hold of a new one.
-- Returns 1 per newly claimed key (held as 'p' for the hold, until confirmed), 0 per key already
-- claimed. A confirmed key's ttl is refreshed, so an item that stays in a feed never expires and
-- comes back as new; a held one of a worker that died expires, so its items are processed again.
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 'p', 'EX', ARGV[2], 'NX') then
    out[i] = 1
  else
    if redis.call('GET', key) ~= 'p' then redis.call('EXPIRE', key, ARGV[1]) end
    out[i] = 0
  end
end
return out
