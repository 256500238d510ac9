-- Make claims final: every key is set to ARGV[1] for ARGV[2] seconds, in one round trip.
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end
return #KEYS
