-- peek: a[A..A+P-1] the amount per part; changes nothing.
-- Reply: "now remaining1 retry_after1 reset_after1 ..." (units, microseconds).
local tat, _, hold = load()
local held = 0
if hold and hold > now then
    held = hold - now
end
local reply = { nows }
for i = 1, P do
    local n = tonumber(a[A + i - 1])
    local T, tau = interval(i), tolerance(i)
    local backlog = 0
    if tat[i] and tat[i] > now then
        backlog = tat[i] - now
    end
    local remaining = (tau - backlog) / T
    if remaining < 0 then
        remaining = 0
    end
    local retry = held
    if n > 0 then
        local w = backlog + n * T - tau
        if w > retry then
            retry = w
        end
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
