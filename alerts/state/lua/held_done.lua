-- The digests of these subscribers are recorded in the outbox (or, with ARGV[2] = 'back', could not
-- be): their taken alerts are dropped (or given back, due now). ARGV: this process (the owner),
-- 'done' or 'back', now, then the subscribers.
for i = 4, #ARGV do
  local sub = ARGV[i]
  if ARGV[2] == 'back' then give_back(sub, tonumber(ARGV[3])) else redis.call('DEL', HELD_TAKEN .. sub) end
  redis.call('SREM', OWNED .. ARGV[1], 'held:' .. sub)
end
return #ARGV - 3
