-- charge: ARGV[A..A+P-1] the amount per part, consumed now without any check (debt).
-- Reply: {now}.
local tat, hold = load()
for i = 1, P do
    local units = tonumber(ARGV[A + i - 1])
    if units > 0 then
        local line = tat[i] or now
        if line < now then
            line = now
        end
        tat[i] = line + units * T[i]
        redis.call('HSET', key, 't' .. i, fmt(tat[i]))
    end
end
expire(tat, hold)
return { fmt(now) }
