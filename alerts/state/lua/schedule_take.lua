-- Pop the feeds due by ARGV[1], book each one's next poll one interval later, and say when the next
-- feed is due: one round trip per wake of the poller.
-- KEYS[1]: the schedule zset, KEYS[2]: the intervals hash. ARGV[1]: now, ARGV[2]: most feeds.
-- Returns {next due time as a string ('' when nothing is scheduled), feed, feed, ...}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local now = tonumber(ARGV[1])
for _, feed in ipairs(due) do
  local every = tonumber(redis.call('HGET', KEYS[2], feed) or '60')
  local next_at = tonumber(redis.call('ZSCORE', KEYS[1], feed)) + every
  if next_at <= now then next_at = now + every end
  redis.call('ZADD', KEYS[1], next_at, feed)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = {first[2] or ''}
for _, feed in ipairs(due) do out[#out + 1] = feed end
return out
