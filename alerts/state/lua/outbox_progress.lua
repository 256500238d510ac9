-- Set fields on a delivery while the claim that took it still holds (it is 'sending' under the
-- same lease); nothing is written once the lease was taken over, the delivery finished or dropped.
-- KEYS[1]: the record. ARGV[1]: the claim's lease_until, then field, value pairs. Returns 1 or 0.
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' or redis.call('HGET', KEYS[1], 'lease_until') ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
