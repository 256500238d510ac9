-- Deliveries due now, each booked a lease later (so a sweep hands each to one worker; if that
-- worker dies, a later sweep hands it out again). KEYS[1]: the due zset. ARGV: now, limit, lease.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id) end
return due
