-- charge: a[A..A+P-1] the amount per part, consumed now without any check (debt).
-- Reply: "now".
local tat, tokens, hold = load()
for i = 1, P do
    local n = tonumber(a[A + i - 1])
    if n > 0 then
        local line = tat[i] or now
        if line < now then
            line = now
        end
        tat[i], tokens[i] = line + n * interval(i), nil
    end
end
store(tat, tokens, hold)
return nows
