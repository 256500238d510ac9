-- A worker received a task for these deliveries: it is responsible for them until it claims them
-- (so if it dies with the task still in its prefetch buffer, they are reaped and handed out again).
-- ARGV: this process (the owner), then the ids. Returns how many it took.
local n = 0
for i = 2, #ARGV do
  local state = redis.call('HGET', OUTBOX_RECORD .. ARGV[i], 'state')
  if state == 'pending' or state == 'retrying' then
    hand_to(ARGV[i], ARGV[1])
    n = n + 1
  end
end
return n
