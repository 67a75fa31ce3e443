-- peek: ARGV[A..A+P-1] the amount per part; changes nothing.
-- Reply: {now, remaining1, retry_after1, reset_after1, ...} (units, microseconds).
local tat, hold = load()
local held = 0
if hold and hold > now then
    held = hold - now
end
local reply = { fmt(now) }
for i = 1, P do
    local units = tonumber(ARGV[A + i - 1])
    local backlog = 0
    if tat[i] and tat[i] > now then
        backlog = tat[i] - now
    end
    local remaining = (TAU[i] - backlog) / T[i]
    if remaining < 0 then
        remaining = 0
    end
    local retry = held
    if units > 0 then
        local w = backlog + units * T[i] - TAU[i]
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
return reply
