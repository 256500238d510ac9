-- Take a poll slot on one host if fewer than the limit are held (expired ones, left by a crashed
-- worker, are dropped first). KEYS[1]: the host's slots zset. ARGV: now, expiry, limit, token.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 1
end
return 0
