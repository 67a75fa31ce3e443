-- give_back: KEYS[2] the holes; a[A] mode (0 refund, 1 cancel, 2 revoke: cancel even if
-- its time has come), a[A+1] the grant's time; then per part: amount, span start, end.
-- The latest span (ending at the TAT) rolls the TAT back, then past every hole that now
-- ends at the TAT; any other span becomes a hole (kept until the TAT passes it, at most
-- MAX_HOLES per part). A refund returns the last `amount` units of the span; a cancel or
-- revoke the whole span.
-- Reply: "given now start1 end1 ..." (units given back now; what the grant still holds).
local MAX_HOLES = 64
local mode = tonumber(a[A])
local at = tonumber(a[A + 1])
local spans = {}
for i = 1, P do
    local b = A + 2 + 3 * (i - 1)
    spans[i] = { tonumber(a[b]), tonumber(a[b + 1]), tonumber(a[b + 2]) }
end
if mode == 1 and now >= at then
    local reply = { '0', nows }
    for i = 1, P do
        reply[#reply + 1] = fmt(spans[i][2])
        reply[#reply + 1] = fmt(spans[i][3])
    end
    return table.concat(reply, ' ')
end

local tat, tokens, hold = load()
for i = 1, P do -- no ticket ("-"): a refund off the end of the schedule, never below now
    if not spans[i][3] then
        local e = tat[i] or now
        spans[i][2], spans[i][3] = e - spans[i][1] * interval(i), e
    end
end
-- holes per part, without those wholly in the past
local holes = {}
for i = 1, P do
    holes[i] = {}
end
local raw = redis.call('GET', KEYS[2])
if raw then
    local list = {}
    for x in string.gmatch(raw, '%S+') do
        list[#list + 1] = tonumber(x)
    end
    for j = 1, #list - 2, 3 do
        if list[j + 2] > now and holes[list[j]] then
            local part = holes[list[j]]
            part[#part + 1] = { list[j + 1], list[j + 2] }
        end
    end
end

local given = 0
local reply = { '', nows }
for i = 1, P do
    local units, s, e = spans[i][1], spans[i][2], spans[i][3]
    local keep_s, keep_e = s, e
    local T = interval(i)
    if units > 0 and e > s then
        local cut = s
        if mode == 0 then
            cut = e - units * T
            if cut < s then
                cut = s
            end
        end
        local line = tat[i]
        if line and math.abs(line - e) <= NEAR then
            local part = holes[i]
            line = cut
            local moved = true
            while moved do
                moved = false
                for j = 1, #part do
                    if math.abs(part[j][2] - line) <= NEAR then
                        line = part[j][1]
                        table.remove(part, j)
                        moved = true
                        break
                    end
                end
            end
            local before = tat[i]
            tat[i], tokens[i] = line, nil
            if before > now then
                given = given + (before - math.max(line, now)) / T
            end
        elseif line and e < line and e > now and cut < e then
            local part = holes[i]
            part[#part + 1] = { cut, e }
            if #part > MAX_HOLES then
                local earliest = 1
                for j = 2, #part do
                    if part[j][2] < part[earliest][2] then
                        earliest = j
                    end
                end
                table.remove(part, earliest)
            end
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
store(tat, tokens, hold)

local out, last = {}, now
for i = 1, P do
    for _, hole in ipairs(holes[i]) do
        out[#out + 1] = i .. ' ' .. fmt(hole[1]) .. ' ' .. fmt(hole[2])
        if hole[2] > last then
            last = hole[2]
        end
    end
end
if #out > 0 then
    redis.call('SET', KEYS[2], table.concat(out, ' '), 'PX', math.ceil((last - now) / 1000))
else
    redis.call('DEL', KEYS[2])
end
return table.concat(reply, ' ')
