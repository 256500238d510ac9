-- Record an attempt's outcome in one step: its fields, a retry booked or not, dead or not, a
-- lifetime, an entry in the history stream, and this process no longer responsible for it.
-- KEYS: record, due zset, dead zset, history stream, created zset. ARGV: id, retry at ('' = none:
-- sent or dead), dead at ('' = none), ttl ('' = none), history min id ('' = no entry), this process
-- (the owner), number of field pairs, the pairs, then the history entry's pairs.
local n = tonumber(ARGV[7])
for j = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[8 + 2 * j], ARGV[9 + 2 * j]) end
redis.call('HDEL', KEYS[1], 'lease_until')
let_go(ARGV[1], ARGV[6])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])  -- sent or dead: no longer waiting
end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) end
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
if ARGV[5] ~= '' then
  local entry = {}
  for i = 8 + 2 * n, #ARGV do table.insert(entry, ARGV[i]) end
  redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[5], '*', unpack(entry))
end
return 1
