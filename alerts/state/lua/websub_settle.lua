-- Settle a pending WebSub request the hub just verified or denied: consume it, and change the
-- feed's subscription only if that still is with the request's hub (one winner among replays).
-- KEYS[1]: the pending request. KEYS[2]: the feed's subscription. KEYS[3]: the set of such feeds.
-- ARGV[1]: the feed. ARGV[2]: the hub the subscription must have. ARGV[3]: 'put' or 'drop'.
-- ARGV[4]: for 'drop', the token the subscription must have (else it is left as it is).
-- ARGV[5..]: for 'put', field, value, field, value, ... of the new subscription.
-- Returns 0 when the request is no longer pending (nothing changed), -1 when the subscription is
-- no longer with that hub (request consumed, nothing else changed), 1 when applied.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'hub') ~= ARGV[2] then return -1 end
if ARGV[3] == 'drop' then
  if redis.call('HGET', KEYS[2], 'token') == ARGV[4] then
    redis.call('DEL', KEYS[2])
    redis.call('SREM', KEYS[3], ARGV[1])
  end
  return 1
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('SADD', KEYS[3], ARGV[1])
return 1
