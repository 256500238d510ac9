-- The open stories a report may belong to: those filed under its buckets in the last ARGV[1]
-- seconds, ranked by how many buckets they share with it (MinHash bands agree in proportion to
-- Jaccard), the best ARGV[2], each with the prints of its reports and what its sent alerts said
-- ('known', or ''). KEYS: the report's bucket keys. ARGV[3]: the story record key prefix (records
-- are named by story id, so they are not in KEYS: one Redis, no Cluster). ARGV[3 + i]: how many
-- bands KEYS[i] stands for.
-- Returns the server time first: filing passes it back, to see stories opened since (a race).
local counts, order = {}, {}
local since = server_now() - tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local weight = tonumber(ARGV[3 + i]) or 1
  for _, story in ipairs(redis.call('ZRANGEBYSCORE', key, since, '+inf')) do
    if not counts[story] then
      counts[story] = 0
      order[#order + 1] = story
    end
    counts[story] = counts[story] + weight
  end
end
table.sort(order, function(a, b) return counts[a] > counts[b] end)
local out = {tostring(server_now())}
for i = 1, math.min(#order, tonumber(ARGV[2])) do
  local record = redis.call('HMGET', ARGV[3] .. order[i], 'prints', 'known')
  if record[1] then
    out[#out + 1] = order[i]
    out[#out + 1] = record[1]
    out[#out + 1] = record[2] or ''
  end
end
return out
