-- Claim (subscriber, story) groups: a group wins only if none of its keys is claimed.
-- KEYS[1]: the workers zset, then the keys of every group, flattened. ARGV: hold, this process
-- (the owner), STALE (see _liveness.lua), then the size of each group.
-- Either way every key of a group is then held ('p:<owner>', until confirmed), so "same story" is
-- transitive (a later item sharing only the loser's link is the same story too). Groups are
-- handled in order, so two groups of one batch that share a key yield one winner. A key held by a
-- dead owner counts as free and is taken over.
local held = 'p:' .. ARGV[2]
local stale = tonumber(ARGV[3])

local function free(value)
  if not value then return true end
  if string.sub(value, 1, 2) ~= 'p:' then return false end
  local owner = string.sub(value, 3)
  return owner ~= ARGV[2] and not alive(KEYS[1], owner, stale)
end

local out = {}
local k = 2
for g = 4, #ARGV do
  local size = tonumber(ARGV[g])
  local taken = false
  for i = k, k + size - 1 do
    if not free(redis.call('GET', KEYS[i])) then taken = true end
  end
  for i = k, k + size - 1 do
    if free(redis.call('GET', KEYS[i])) then redis.call('SET', KEYS[i], held, 'EX', ARGV[1]) end
  end
  out[g - 3] = taken and 0 or 1
  k = k + size
end
return out
