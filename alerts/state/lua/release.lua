-- Undo claims this process still holds (its work could not be handed on), so a retry can claim
-- them again; a claim another process has taken over since is left alone.
-- KEYS: the claims. ARGV[1]: the held value of this process ('p:<owner>'). Returns how many.
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
