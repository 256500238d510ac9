-- Record what a process did with the configuration files: 'loaded' a version, or 'rejected' an edit.
-- KEYS[1]: the config hash. ARGV: the state, its identity (the fingerprint, or the digest of the
-- problems), then field pairs to set. Returns 1 when the state or its identity changed (news: the
-- first process to see a change counts it), else 0.
local changed = redis.call('HGET', KEYS[1], 'state') ~= ARGV[1]
  or redis.call('HGET', KEYS[1], ARGV[1] .. '_id') ~= ARGV[2]
redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[1] .. '_id', ARGV[2], unpack(ARGV, 3))
if changed then return 1 end
return 0
