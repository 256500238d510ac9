-- Deliveries due now, each booked a lease later and made this process's responsibility (so a sweep
-- hands each to one task; if this process dies before handing them on, they are reaped at once).
-- KEYS[1]: the due zset. ARGV: now, limit, lease, this process (the owner).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
  if redis.call('EXISTS', OUTBOX_RECORD .. id) == 1 then hand_to(id, ARGV[4]) end
end
return due
