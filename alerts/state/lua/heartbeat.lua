-- A worker process's heartbeat: its score in the workers zset becomes the server's time.
-- KEYS[1]: the workers zset. ARGV[1]: the owner, ARGV[2]: 'join' (register) or 'beat'.
-- Returns the server time, or 0 when a beat finds the owner gone (reaped as dead: its claims
-- belong to others now, so it must rejoin under a new name).
if ARGV[2] ~= 'join' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local now = server_now()
redis.call('ZADD', KEYS[1], now, ARGV[1])
return tostring(now)
