-- hold: a[A] microseconds during which nothing is admitted (a longer hold wins).
-- Reply: "now".
local tat, tokens, hold = load()
local untl = now + tonumber(a[A])
if not hold or untl > hold then
    hold, tokens.hold = untl, nil
end
store(tat, tokens, hold)
return nows
