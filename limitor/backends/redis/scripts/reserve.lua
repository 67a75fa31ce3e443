-- reserve: a[A..A+P-1] the amount per part, a[A+P] max_wait in microseconds (-1: none).
-- Admit at the latest time every part (and the hold) allows, committing every part at that
-- common time, or refuse and change nothing.
-- Reply: "1 delay now start1 start2 ..." (start "-" for a part not charged, "=" for now;
-- the caller computes at = now + delay and each end = max(start, at) + amount * interval,
-- the same doubles this script stores), or "0 retry_after now".
local tat, tokens, hold = load()
local wait = 0
if hold and hold - now > wait then
    wait = hold - now
end
for i = 1, P do
    local n = tonumber(a[A + i - 1])
    if n > 0 then
        local line = tat[i] or now
        if line < now then
            line = now
        end
        local w = line + n * interval(i) - tolerance(i) - now
        if w > wait then
            wait = w
        end
    end
end
local max_wait = tonumber(a[A + P])
if max_wait >= 0 and wait > max_wait + NEAR then
    return '0 ' .. fmt(wait) .. ' ' .. nows
end

local at = now + wait
local reply = { '1', wait == 0 and '0' or fmt(wait), nows }
for i = 1, P do
    local n = tonumber(a[A + i - 1])
    if n > 0 then
        local old = tat[i]
        if old and old > now then
            reply[#reply + 1] = tokens[i]
        else
            old = now
            reply[#reply + 1] = '='
        end
        if old < at then
            old = at
        end
        tat[i], tokens[i] = old + n * interval(i), nil
    else
        reply[#reply + 1] = '-'
    end
end
store(tat, tokens, hold)
return table.concat(reply, ' ')
