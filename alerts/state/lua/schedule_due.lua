-- Pop the feeds that are due and book each one's next poll one interval later.
-- KEYS[1]: the schedule zset, KEYS[2]: the intervals hash. ARGV[1]: now, ARGV[2]: most feeds.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local now = tonumber(ARGV[1])
for _, feed in ipairs(due) do
  local every = tonumber(redis.call('HGET', KEYS[2], feed) or '60')
  local next_at = tonumber(redis.call('ZSCORE', KEYS[1], feed)) + every
  if next_at <= now then next_at = now + every end
  redis.call('ZADD', KEYS[1], next_at, feed)
end
return due
