-- Claim (subscriber, story) groups: a group wins only if none of its keys is claimed.
-- KEYS: the keys of every group, flattened. ARGV[1]: hold, ARGV[2..]: the size of each group.
-- Either way all keys of a group are then held ('p', until confirmed), so "same story" is
-- transitive (a later item sharing only the loser's link is the same story too). Groups are
-- handled in order, so two groups of one batch that share a key yield one winner.
local out = {}
local k = 1
for g = 2, #ARGV do
  local size = tonumber(ARGV[g])
  local held = false
  for i = k, k + size - 1 do
    if redis.call('EXISTS', KEYS[i]) == 1 then held = true end
  end
  for i = k, k + size - 1 do redis.call('SET', KEYS[i], 'p', 'EX', ARGV[1], 'NX') end
  out[g - 1] = held and 0 or 1
  k = k + size
end
return out
