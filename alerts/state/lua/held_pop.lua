-- Pop every subscriber whose held alerts are due, and their alerts, atomically: two flushers
-- never send one digest twice. KEYS[1]: the held-due zset. ARGV: now, limit, held-key prefix.
-- Returns [subscriber, number of fields, field, value, ...] per subscriber.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, sub in ipairs(due) do
  local key = ARGV[3] .. sub
  local fields = redis.call('HGETALL', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], sub)
  table.insert(out, sub)
  table.insert(out, #fields)
  for _, f in ipairs(fields) do table.insert(out, f) end
end
return out
