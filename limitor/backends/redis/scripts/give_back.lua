-- give_back: a[A] mode (0 refund, 1 cancel, 2 revoke: cancel even if its time has come,
-- 3 refund without a ticket: off the end of each part's schedule), a[A+1] the grant's
-- time; then per part: amount, k, and the k pieces the grant occupies "s1 e1 ... sk ek".
-- Frees exactly those pieces (schedule.lua: split_latest, release): a refund its latest
-- `amount` first, a cancel all of them (the amount is all the grant holds).
-- Reply: "given now" then per line "#k s1 e1 ..." (what the grant still holds); given
-- is the units given back, summed over the key's parts (under totals the totals' lines
-- K+1..P are freed alike but not counted again).
local mode = tonumber(a[A])
local at = tonumber(a[A + 1]) - base
local units, held = {}, {}
local j = A + 2
for i = 1, P do
    units[i] = tonumber(a[j])
    local count = tonumber(a[j + 1])
    j = j + 2
    local pieces = {}
    for k = 1, count do
        pieces[k] = { tonumber(a[j]) - base, tonumber(a[j + 1]) - base }
        j = j + 2
    end
    held[i] = pieces
end
if mode == 1 and now >= at then -- its time has come: its caller may have gone
    local reply = { '0', nows }
    for i = 1, P do
        pieces_reply(reply, held[i])
    end
    return table.concat(reply, ' ')
end

local tat, tokens, hold, hold2 = load()
local holes, had = load_holes()
local tats = lines(tat)
local given = 0
for i = 1, P do
    local n = units[i]
    local T = interval(i)
    if mode == 3 then
        if n > 0 then
            local s = tats[i] - n * T
            if s < now then
                s = now
            end
            local after = release(holes[i], tats[i], { { s, tats[i] } }, now, T)
            if after ~= tats[i] then
                tat[i], tokens[i] = after, nil
            end
            if i <= K then
                given = given + n
            end
        end
    elseif n > 0 and #held[i] > 0 then
        local tol = tolerance_of(T)
        local length = n * T
        local kept, freed = split_latest(held[i], length, tol)
        local holds = 0
        for _, piece in ipairs(held[i]) do
            holds = holds + (piece[2] - piece[1])
        end
        if i <= K then -- the units given back are the key's (a total's line: not again)
            if length <= holds + tol then
                given = given + n
            else -- a refund of more than the grant holds gives what it holds
                given = given + holds / T
            end
        end
        local after = release(holes[i], tats[i], freed, now, T)
        if after ~= tats[i] then
            tat[i], tokens[i] = after, nil
        end
        held[i] = kept
    end
end
tidy_all(holes, tat, tokens)
store_holes(holes, had, store(tat, tokens, hold, hold2))
local reply = { fmt(given), nows }
if mode ~= 3 then
    for i = 1, P do
        pieces_reply(reply, held[i])
    end
end
return table.concat(reply, ' ')
