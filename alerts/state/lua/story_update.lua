-- Take the story's next update, if its last was at least ARGV[2] seconds ago: returns the update's
-- number and the story's recipients, or 0 (too soon). KEYS[1]: the record, KEYS[2]: recipients.
-- ARGV: now, every, what the story's reports now say together (JSON, kept as 'known').
local last = tonumber(redis.call('HGET', KEYS[1], 'last_update') or '0')
if tonumber(ARGV[1]) - last < tonumber(ARGV[2]) then return {0} end
local number = redis.call('HINCRBY', KEYS[1], 'updates', 1)
redis.call('HSET', KEYS[1], 'last_update', ARGV[1], 'known', ARGV[3])
local out = {number}
for _, subscriber in ipairs(redis.call('SMEMBERS', KEYS[2])) do out[#out + 1] = subscriber end
return out
