-- reserve: a[A..A+P-1] the amount per part, a[A+P] max_wait in microseconds (-1: none).
-- Admit at the earliest time at which every part's free line within one burst holds its
-- amount (schedule.lua: earliest_all), occupying the earliest free pieces of each part
-- (occupy), or refuse and change nothing.
-- Reply: "1 delay now part1 part2 ..." or "0 retry_after now". A part is "-" when not
-- charged, "#k s1 e1 ... sk ek" for the pieces it occupies, or (one part and no free
-- pieces: plain GCRA, the common case) one token, "=" for now or the TAT it started
-- from (microseconds since the epoch): the caller computes at = now + delay and the one
-- piece x = max(start, at), x + amount * interval (this script's piece, to within the
-- rounding of those times: far below the tolerance).
local tat, tokens, hold, hold2 = load()
local holes, had = load_holes()
local max_wait = tonumber(a[A + P])

if P == 1 and not had[1] then
    -- no free pieces: earliest() and occupy() reduce to these two expressions (GCRA)
    local wait = 0
    if hold and hold - now > wait then
        wait = hold - now
    end
    local n = tonumber(a[A])
    local T = interval(1)
    if n > 0 then
        local line = tat[1] or now
        if line < now then
            line = now
        end
        local w = line + n * T - tolerance(1) - now
        if w > wait then
            wait = w
        end
    end
    if max_wait >= 0 and wait > max_wait + tolerance_of(T) then
        return '0 ' .. fmt(wait) .. ' ' .. nows
    end
    local at = now + wait
    local reply = { '1', wait == 0 and '0' or fmt(wait), nows }
    if n > 0 then
        local old = tat[1]
        if old and old > now then
            reply[4] = absolute(old)
        else
            old = now
            reply[4] = '='
        end
        if old < at then
            old = at
        end
        tat[1], tokens[1] = old + n * T, nil
    else
        reply[4] = '-'
    end
    store(tat, tokens, hold)
    return table.concat(reply, ' ')
end

if not had[1] and not had[2] and not (hold and hold > now) and not (hold2 and hold2 > now) then
    -- No free pieces nor holds (the common case of several lines: an LLM call's parts,
    -- a key and its total): when every line fits now, earliest_all() is now and occupy()
    -- takes [max(tat, now), + need) on each; decided here without their lists.
    local fits = true
    for i = 1, P do
        local T = interval(i)
        local need = tonumber(a[A + i - 1]) * T
        if need > 0 then
            local x = tat[i] or now
            if x < now then
                x = now
            end
            if x + need > now + tolerance(i) + tolerance_of(T) then
                fits = false
                break
            end
        end
    end
    if fits then
        local reply = { '1', '0', nows }
        for i = 1, P do
            local T = interval(i)
            local need = tonumber(a[A + i - 1]) * T
            if need <= 0 then
                reply[#reply + 1] = '-'
            elseif need <= tolerance_of(T) then
                reply[#reply + 1] = '#0' -- within rounding of nothing: occupies nothing
            else
                local x = tat[i] or now
                if x < now then
                    x = now
                end
                tat[i], tokens[i] = x + need, nil
                reply[#reply + 1] = '#1 ' .. absolute(x) .. ' ' .. absolute(x + need)
            end
        end
        store(tat, tokens, hold, hold2)
        return table.concat(reply, ' ')
    end
end

tidy_all(holes, tat, tokens)
local start = now
if hold and hold > start then
    start = hold
end
if hold2 and hold2 > start then -- the totals' hold
    start = hold2
end
local tats = lines(tat)
local needs, taus, intervals = {}, {}, {}
local slack = nil
for i = 1, P do
    local T = interval(i)
    needs[i] = tonumber(a[A + i - 1]) * T
    taus[i] = tolerance(i)
    intervals[i] = T
    if slack == nil or tolerance_of(T) < slack then
        slack = tolerance_of(T)
    end
end
local at = earliest_all(holes, tats, taus, needs, start, intervals)
local wait = at - now
if max_wait >= 0 and wait > max_wait + slack then
    return '0 ' .. fmt(wait) .. ' ' .. nows
end
local reply = { '1', wait <= slack and '0' or fmt(wait), nows }
for i = 1, P do
    if needs[i] > 0 then
        local line, taken = occupy(holes[i], tats[i], at, taus[i], needs[i], start, intervals[i])
        tat[i], tokens[i] = line, nil
        pieces_reply(reply, taken)
    else
        reply[#reply + 1] = '-'
    end
end
tidy_all(holes, tat, tokens)
store_holes(holes, had, store(tat, tokens, hold, hold2))
return table.concat(reply, ' ')
