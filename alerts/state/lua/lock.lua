-- Take the poll lock of a feed unless a live process holds it (a dead one's is taken over at once).
-- KEYS[1]: the workers zset, KEYS[2]: the lock. ARGV: token ('<owner>|<nonce>'), ttl in ms, STALE.
-- Returns 1 when taken.
local holder = redis.call('GET', KEYS[2])
if holder and alive(KEYS[1], owner_of(holder), tonumber(ARGV[3])) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
