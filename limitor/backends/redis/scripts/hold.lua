-- hold: ARGV[A] microseconds during which nothing is admitted (a longer hold wins).
-- Reply: {now}.
local tat, hold = load()
local untl = now + tonumber(ARGV[A])
if not hold or untl > hold then
    hold = untl
    redis.call('HSET', key, 'H', fmt(hold))
end
expire(tat, hold)
return { fmt(now) }
