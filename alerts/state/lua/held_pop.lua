-- Take every subscriber's held alerts whose digest is due, atomically: two makers never send one
-- digest twice. They move to the subscriber's taken hash, this process's responsibility until its
-- deliveries are recorded (held_done), or given back (held_back, or the reaper if it dies).
-- KEYS[1]: the held-due zset. ARGV: now, limit, this process (the owner).
-- Returns [subscriber, number of fields, field, value, ...] per subscriber.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, sub in ipairs(due) do
  local key = HELD .. sub
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do redis.call('HSET', HELD_TAKEN .. sub, fields[i], fields[i + 1]) end
  if #fields > 0 then redis.call('SADD', OWNED .. ARGV[3], 'held:' .. sub) end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], sub)
  table.insert(out, sub)
  table.insert(out, #fields)
  for _, f in ipairs(fields) do table.insert(out, f) end
end
return out
