-- charge: a[A..A+P-1] the amount per part, consumed now without any check (debt): the
-- earliest free line from now on, free pieces first, then the end (schedule.lua: charge);
-- a[A+P] a grant's time (-1: none): the debt goes no earlier than that.
-- Reply: "now".
local tat, tokens, hold, hold2 = load()
local holes, had = load_holes()
local start = tonumber(a[A + P]) - base -- -1 (none) is long past
if start <= now then
    start = nil
end
for i = 1, P do
    local n = tonumber(a[A + i - 1])
    if n > 0 then
        local T = interval(i)
        local line = tat[i] or now
        if line < now then
            line = now
        end
        if #holes[i] == 0 and (start == nil or line >= start) then
            tat[i], tokens[i] = line + n * T, nil
        else
            tat[i], tokens[i] = charge(holes[i], line, now, n * T, T, start), nil
        end
    end
end
tidy_all(holes, tat, tokens)
store_holes(holes, had, store(tat, tokens, hold, hold2))
return nows
