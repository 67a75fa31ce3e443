-- give_back: ARGV[A] mode (0 refund, 1 cancel, 2 revoke: cancel even if its time has come),
-- ARGV[A+1] the grant's time; then per part: amount, span start, span end.
-- The latest span (ending at the TAT) rolls the TAT back, then past every hole that now
-- ends at the TAT; any other span becomes a hole (kept until the TAT passes it).
-- A refund returns the last `amount` units of the span; a cancel or revoke the whole span.
-- Reply: {units given back now, now, start1, end1, ...} (what the grant still holds).
local mode = tonumber(ARGV[A])
local at = tonumber(ARGV[A + 1])
local spans = {}
for i = 1, P do
    local b = A + 2 + 3 * (i - 1)
    spans[i] = { tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]) }
end
if mode == 1 and now >= at then
    local reply = { '0', fmt(now) }
    for i = 1, P do
        reply[#reply + 1] = fmt(spans[i][2])
        reply[#reply + 1] = fmt(spans[i][3])
    end
    return reply
end

local tat, hold = load()
local given = 0
local reply = { '', fmt(now) }
for i = 1, P do
    local units, s, e = spans[i][1], spans[i][2], spans[i][3]
    local keep_s, keep_e = s, e
    if units > 0 and e > s and tat[i] then
        local cut = s
        if mode == 0 then
            cut = e - units * T[i]
            if cut < s then
                cut = s
            end
        end
        -- this part's holes, without those wholly in the past
        local holes = {}
        local raw = redis.call('HGET', key, 'h' .. i)
        if raw then
            local list = {}
            for x in string.gmatch(raw, '%S+') do
                list[#list + 1] = tonumber(x)
            end
            for j = 1, #list - 1, 2 do
                if list[j + 1] > now then
                    holes[#holes + 1] = { list[j], list[j + 1] }
                end
            end
        end
        local before = tat[i]
        if math.abs(tat[i] - e) <= NEAR then
            local line = cut
            local moved = true
            while moved do
                moved = false
                for j = 1, #holes do
                    if math.abs(holes[j][2] - line) <= NEAR then
                        line = holes[j][1]
                        table.remove(holes, j)
                        moved = true
                        break
                    end
                end
            end
            tat[i] = line
            if line < now then
                tat[i] = nil -- full: the same as no TAT at all
                redis.call('HDEL', key, 't' .. i)
            else
                redis.call('HSET', key, 't' .. i, fmt(line))
            end
            local after = tat[i] or now
            if before > now then
                given = given + (before - math.max(after, now)) / T[i]
            end
        elseif e < tat[i] and e > now and cut < e then
            holes[#holes + 1] = { cut, e }
            if #holes > MAX_HOLES then
                local earliest = 1
                for j = 2, #holes do
                    if holes[j][2] < holes[earliest][2] then
                        earliest = j
                    end
                end
                table.remove(holes, earliest)
            end
        end
        if #holes > 0 then
            local parts = {}
            for j = 1, #holes do
                parts[#parts + 1] = fmt(holes[j][1])
                parts[#parts + 1] = fmt(holes[j][2])
            end
            redis.call('HSET', key, 'h' .. i, table.concat(parts, ' '))
        else
            redis.call('HDEL', key, 'h' .. i)
        end
        if cut > s then
            keep_e = cut
        else
            keep_s, keep_e = 0, 0
        end
    end
    reply[#reply + 1] = fmt(keep_s)
    reply[#reply + 1] = fmt(keep_e)
end
reply[1] = fmt(given)
expire(tat, hold)
return reply
