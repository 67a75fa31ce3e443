-- peek: a[A..A+P-1] the amount per part; changes nothing.
-- Reply: "now remaining1 retry_after1 reset_after1 ..." (units, microseconds).
-- With free pieces (or a hold) the wait is schedule.lua's earliest() from now (or the
-- hold's end) and the remaining units the free line within one burst from now; a hold
-- is not consumption: remaining is what the line holds, the wait says when. Under
-- totals a line is held by its owner's hold (the key's, or the totals').
local tat, _, hold1, hold2 = load()
local holes = load_holes()
local reply = { nows }
for i = 1, P do
    local hold = hold1
    if i > K then
        hold = hold2
    end
    local held = 0
    if hold and hold > now then
        held = hold - now
    end
    local n = tonumber(a[A + i - 1])
    local T, tau = interval(i), tolerance(i)
    local backlog = 0
    if tat[i] and tat[i] > now then
        backlog = tat[i] - now
    end
    local remaining, retry
    if held > 0 or #holes[i] > 0 then
        local line = now + backlog
        local t0 = now
        if held > 0 then
            t0 = hold
        end
        local fit = earliest(holes[i], line, tau, n * T, t0, T)
        retry = fit - now
        remaining = free_in(holes[i], line, now, now + tau) / T
    else
        remaining = (tau - backlog) / T
        retry = 0
        if n > 0 then
            retry = backlog + n * T - tau
        end
    end
    if remaining < 0 then
        remaining = 0
    end
    if retry < 0 then
        retry = 0
    end
    local reset = backlog
    if held > reset then
        reset = held
    end
    reply[#reply + 1] = fmt(remaining)
    reply[#reply + 1] = fmt(retry)
    reply[#reply + 1] = fmt(reset)
end
return table.concat(reply, ' ')
