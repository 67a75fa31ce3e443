-- reserve: ARGV[A..A+P-1] the amount per part, ARGV[A+P] max_wait in microseconds (-1: none).
-- Admit at the latest time every part (and the hold) allows, committing every part at that
-- common time, or refuse and change nothing.
-- Reply: {"1", delay, now, at, start1, end1, ...} or {"0", retry_after, now}.
local amount = {}
for i = 1, P do
    amount[i] = tonumber(ARGV[A + i - 1])
end
local max_wait = tonumber(ARGV[A + P])
local tat, hold = load()

local wait = 0
if hold and hold - now > wait then
    wait = hold - now
end
for i = 1, P do
    if amount[i] > 0 then
        local line = tat[i] or now
        if line < now then
            line = now
        end
        local w = line + amount[i] * T[i] - TAU[i] - now
        if w > wait then
            wait = w
        end
    end
end
if max_wait >= 0 and wait > max_wait + NEAR then
    return { '0', fmt(wait), fmt(now) }
end

local at = now + wait
local reply = { '1', fmt(wait), fmt(now), fmt(at) }
for i = 1, P do
    if amount[i] > 0 then
        local old = tat[i] or now
        local start = old
        if start < now then
            start = now
        end
        local line = old
        if line < at then
            line = at
        end
        tat[i] = line + amount[i] * T[i]
        redis.call('HSET', key, 't' .. i, fmt(tat[i]))
        reply[#reply + 1] = fmt(start)
        reply[#reply + 1] = fmt(tat[i])
    else
        reply[#reply + 1] = '0'
        reply[#reply + 1] = '0'
    end
end
expire(tat, hold)
return reply
