-- File a report under a story: open it (ARGV[7] = '1') or join it (its print is kept: the first
-- report's and the latest MAX - 1 others'), note its feed as a source, and file the story under the
-- report's buckets (each keeps its newest ARGV[10] stories), all at the server's time.
-- Opening checks for a race first: if another story was filed under one of the buckets since
-- ARGV[11] (when the candidates were read) and ARGV[12] is not '1', nothing is written and the
-- reply is {'raced', story...}: the caller compares the report with those and files it again.
-- KEYS[1]: the record, KEYS[2]: its sources, KEYS[3]: the recent-stories zset, KEYS[4..]: buckets.
-- ARGV: story, feed, -, ttl, print (JSON), max prints, open, title, item, bucket cap, looked, force.
-- Returns the story's sources, the first first.
local now, ttl = server_now(), tonumber(ARGV[4])
local prints = redis.call('HGET', KEYS[1], 'prints')
if not prints and ARGV[12] ~= '1' then
  local raced, seen = {'raced'}, {}
  for i = 4, #KEYS do
    for _, story in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[11], '+inf')) do
      if story ~= ARGV[1] and not seen[story] then
        seen[story] = true
        raced[#raced + 1] = story
      end
    end
  end
  if #raced > 1 then return raced end
end
if not prints then
  redis.call('HSET', KEYS[1], 'prints', '[' .. ARGV[5] .. ']', 'known', ARGV[5], 'opened', now,
    'feed', ARGV[2], 'title', ARGV[8], 'item', ARGV[9], 'updates', 0, 'last_update', 0)
else
  local kept = cjson.decode(prints)
  if #kept >= tonumber(ARGV[6]) then table.remove(kept, 2) end
  kept[#kept + 1] = cjson.decode(ARGV[5])
  redis.call('HSET', KEYS[1], 'prints', cjson.encode(kept))
end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[1])
local cap = tonumber(ARGV[10])
for i = 4, #KEYS do
  -- a story already in the bucket moves up (nothing to trim); one new to it may push out the oldest
  if redis.call('ZADD', KEYS[i], now, ARGV[1]) > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(cap + 1))
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return redis.call('ZRANGE', KEYS[2], 0, -1)
