-- GCRA over several buckets: a send may go if every bucket allows it; then each is advanced.
-- KEYS: one bucket per limit. ARGV[1]: now, then interval and tolerance per bucket.
-- Returns '0', or the seconds to wait first.
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local early = tat - now - tonumber(ARGV[2 * i + 1])
  if early > wait then wait = early end
end
if wait > 0.001 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new = tat + tonumber(ARGV[2 * i])
  redis.call('SET', key, tostring(new), 'PX', math.ceil((new - now) * 1000) + 1000)
end
return '0'
