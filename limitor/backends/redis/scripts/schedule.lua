-- schedule: limitor/engines/schedule.py transliterated line by line (keep the two in step).
--
-- A part's line is its TAT (the end of its schedule) and `holes`, the sorted, disjoint free
-- pieces {start, end} before it. Python's 0-based indices become 1-based here; `len(x)`
-- is `#x`; `del holes[i]` is `table.remove(holes, i)`.
--
-- Precision. Times here are microseconds after this call's time (`now` is 0, see the
-- frame in common.lua), so the schedule's sums keep their fractions; but the tickets'
-- pieces travel as microseconds since EPOCH (about 2^46.5 in 2026), doubles 1/64 us
-- apart. The Python module compares times within `interval * REL` (a billionth of a
-- unit), below one such double, so the scripts compare within
--     tol = max(interval * REL, NEAR)        (NEAR = 0.05 us, a few doubles)
-- which is NEAR for every interval under 50 s (every rate above 0.02 units per second):
-- a difference smaller than that is rounding, not time. The client keeps each interval at
-- least 0.25 us (RedisStore: MIN_INTERVAL), so NEAR is at most a fifth of a unit and two
-- whole units are never taken for one. Memory and Redis thus decide alike to within
-- 0.05 us, far below the server clock's own resolution (1 us).

local REL = 1e-9
local CAP = tonumber(a[A - 1]) -- free pieces kept per part at most (the client sends it)

local function tolerance_of(T)
    local t = T * REL
    if t < NEAR then
        t = NEAR
    end
    return t
end

-- The index of the first hole that ends after t (binary search; sorted holes).
local function first_after(holes, t)
    local low = 1
    local high = #holes + 1
    while low < high do
        local middle = math.floor((low + high) / 2)
        if holes[middle][2] <= t then
            low = middle + 1
        else
            high = middle
        end
    end
    return low
end

-- Microseconds of free line within [low, high) (low is at least now).
local function free_in(holes, tat, low, high)
    local total = 0
    local i = first_after(holes, low)
    while i <= #holes and holes[i][1] < high do
        local s = math.max(holes[i][1], low)
        local e = math.min(holes[i][2], high)
        if e > s then
            total = total + (e - s)
        end
        i = i + 1
    end
    local s = math.max(tat, low)
    if high > s then
        total = total + (high - s)
    end
    return total
end

-- The point by which the free line from low on holds need (a piece short of it by no
-- more than tol holds it: float rounding).
local function reach(holes, tat, low, need, tol)
    local i = first_after(holes, low)
    while i <= #holes do
        local s = math.max(holes[i][1], low)
        local length = holes[i][2] - s
        if length >= need - tol then
            return s + need
        end
        need = need - length
        i = i + 1
    end
    return math.max(tat, low) + need
end

-- The earliest a >= start at which the free line in [a, a + tau) holds need. One pass:
-- acc is the free line of whole pieces k..j-1, and reach of candidate k is where piece j
-- (or the tail) completes need.
local function earliest(holes, tat, tau, need, start, T)
    local tol = tolerance_of(T)
    if reach(holes, tat, start, need, tol) <= start + tau + tol then
        return start
    end
    local n = #holes
    local k = first_after(holes, start)
    if k <= n and holes[k][1] <= start then
        k = k + 1 -- the piece that holds start was the first candidate
    end
    local j = k
    local acc = 0 -- the free line of holes k..j-1, whole pieces
    while k <= n do
        local s = holes[k][1]
        while j <= n and acc + (holes[j][2] - holes[j][1]) < need - tol do
            acc = acc + (holes[j][2] - holes[j][1])
            j = j + 1
        end
        local x = tat + (need - acc) -- the tail completes it
        if j <= n then
            x = holes[j][1] + (need - acc)
        end
        if x - tau <= s + tol then
            return math.max(x - tau, start)
        end
        acc = acc - (holes[k][2] - holes[k][1]) -- j > k here: hole k alone would have fit
        k = k + 1
    end
    return math.max(tat + need - tau, start)
end

-- The earliest a >= start at which every part with a need fits at once.
local function earliest_all(holes, tats, taus, needs, start, intervals)
    local rounds = 2
    local only = 0 -- the one part with a need, if only one has (-1: several)
    for p = 1, #needs do
        rounds = rounds + #holes[p] + 1
        if needs[p] > 0 then
            if only == 0 then
                only = p
            else
                only = -1
            end
        end
    end
    if only > 0 then
        return earliest(holes[only], tats[only], taus[only], needs[only], start, intervals[only])
    end
    local a = start
    while rounds > 0 do
        local best = a
        for p = 1, #needs do
            if needs[p] > 0 then
                local fit = earliest(holes[p], tats[p], taus[p], needs[p], a, intervals[p])
                if fit > best then
                    best = fit
                end
            end
        end
        if best == a then
            return a
        end
        a = best
        rounds = rounds - 1
    end
    for p = 1, #needs do
        if needs[p] > 0 then
            a = math.max(a, tats[p] + needs[p] - taus[p])
        end
    end
    return a
end

-- Insert the free piece {s, e} (before tat), coalescing with neighbours.
local function add_hole(holes, s, e, tol)
    local i = first_after(holes, s - tol)
    while i <= #holes and holes[i][1] <= e + tol do
        s = math.min(s, holes[i][1])
        e = math.max(e, holes[i][2])
        table.remove(holes, i)
    end
    table.insert(holes, i, { s, e })
end

-- Sorted pieces with touching neighbours joined.
local function merge(pieces, tol)
    local out = {}
    for _, piece in ipairs(pieces) do
        local s, e = piece[1], piece[2]
        if #out > 0 and s <= out[#out][2] + tol then
            out[#out] = { out[#out][1], math.max(out[#out][2], e) }
        else
            out[#out + 1] = { s, e }
        end
    end
    return out
end

-- Take up to need seconds of hole i from x (inside it) on; what is left of the hole
-- before x and after the piece taken stays free, unless a sliver within tol. Returns the
-- index of the next hole and the length taken.
local function cut(holes, i, x, need, tol)
    local s, e = holes[i][1], holes[i][2]
    local take = math.min(need, e - x)
    local rest = {}
    if x - s > tol then
        rest[#rest + 1] = { s, x }
    end
    if e - (x + take) > tol then
        rest[#rest + 1] = { x + take, e }
    end
    table.remove(holes, i)
    for j = #rest, 1, -1 do
        table.insert(holes, i, rest[j])
    end
    return i + #rest, take
end

-- Take the earliest free need of [a, a + tau); holes change. Returns the new tat and
-- the pieces taken, in order.
local function occupy(holes, tat, a, tau, need, start, T)
    local tol = tolerance_of(T)
    local taken = {}
    local i = first_after(holes, a)
    while need > tol and i <= #holes and holes[i][1] < a + tau do
        local s, e = holes[i][1], holes[i][2]
        local x = math.max(s, a)
        local take
        i, take = cut(holes, i, x, need, tol)
        if x > s and x - s <= tol then -- a sliver before it: taken with it
            x = s
        end
        if x + take > e - tol then
            take = e - x
        end
        taken[#taken + 1] = { x, x + take }
        need = need - take
    end
    if need > tol then
        local x = math.max(tat, a)
        local gap = math.max(tat, start)
        if a - gap > tol then
            add_hole(holes, gap, a, tol)
        end
        taken[#taken + 1] = { x, x + need }
        tat = x + need
    end
    return tat, merge(taken, tol)
end

-- Split length off the latest of pieces (a refund): returns kept, freed (each sorted).
local function split_latest(pieces, length, tol)
    local kept = {}
    for j = 1, #pieces do
        kept[j] = pieces[j]
    end
    local freed = {}
    while length > tol and #kept > 0 do
        local s, e = kept[#kept][1], kept[#kept][2]
        if e - s <= length + tol then
            table.insert(freed, 1, { s, e })
            kept[#kept] = nil
            length = length - (e - s)
        else
            table.insert(freed, 1, { e - length, e })
            kept[#kept] = { s, e - length }
            length = 0
        end
    end
    return kept, freed
end

-- Free pieces (line a grant held); holes change. Returns the new tat.
local function release(holes, tat, pieces, now, T)
    local tol = tolerance_of(T)
    local i = #pieces
    while i >= 1 do -- latest first, so each roll-back meets the next piece
        local s, e = pieces[i][1], pieces[i][2]
        if s < now then
            s = now
        end
        if e - s > tol then
            if e >= tat - tol then
                tat = s
                while #holes > 0 and holes[#holes][2] >= tat - tol do
                    tat = math.min(tat, holes[#holes][1])
                    holes[#holes] = nil
                end
            else
                add_hole(holes, s, e, tol)
            end
        end
        i = i - 1
    end
    return tat
end

-- Occupy need without any check (debt): the earliest free line from now on, or from start
-- (a grant's time, nil: none) when later; free line before start stays free. Returns the
-- new tat; holes change.
local function charge(holes, tat, now, need, T, start)
    local tol = tolerance_of(T)
    if start ~= nil and start > now then
        if need > tol and start - math.max(tat, now) > tol then
            add_hole(holes, math.max(tat, now), start, tol)
            tat = start
        end
        now = start
    end
    local i = first_after(holes, now)
    while need > tol and i <= #holes do
        local take
        i, take = cut(holes, i, math.max(holes[i][1], now), need, tol)
        need = need - take
    end
    if need > tol then
        tat = math.max(tat, now) + need
    end
    return tat
end

-- Drop the first k holes.
local function drop_first(holes, k)
    local n = #holes
    for j = 1, n - k do
        holes[j] = holes[j + k]
    end
    for j = math.max(n - k + 1, 1), n do
        holes[j] = nil
    end
end

-- Bound the holes; returns the new tat; holes change.
local function tidy(holes, tat, now, cap, T)
    local tol = tolerance_of(T)
    local i = first_after(holes, now + tol)
    if i > 1 then
        drop_first(holes, i - 1)
    end
    while #holes > 0 and holes[#holes][2] >= tat - tol do
        tat = math.min(tat, holes[#holes][1])
        holes[#holes] = nil
    end
    if #holes > cap then
        drop_first(holes, #holes - cap)
    end
    return tat
end

-- The holes key (KEYS[2]): "@anchor", then for each part that has free pieces
-- "part count s1 e1 ..." in microseconds after the anchor (the time of the call that
-- wrote it; see rel in common.lua); absent when no part has any (the common case:
-- nothing more is read or written).
-- Under totals KEYS[4] holds the totals' in the same form (part i is line K + i).
-- Every line gets a list, empty when it has none; had[1] (had[2]) is true when KEYS[2]
-- (KEYS[4]) existed.
local function parse_holes(k, offset, holes)
    local raw = redis.call('GET', k)
    if not raw then
        return false
    end
    local list = {}
    local shift = -base -- pieces without an anchor are microseconds since the epoch
    for x in string.gmatch(raw, '%S+') do
        if string.sub(x, 1, 1) == '@' then
            shift = tonumber(string.sub(x, 2)) - base
        else
            list[#list + 1] = tonumber(x)
        end
    end
    local j = 1
    while j <= #list do
        local part, count = list[j], list[j + 1]
        local into = holes[offset + part] or {}
        for k2 = 1, count do
            into[k2] = { shift + list[j + 2 * k2], shift + list[j + 2 * k2 + 1] }
        end
        j = j + 2 + 2 * count
    end
    return true
end

local function load_holes()
    local holes = {}
    for i = 1, P do
        holes[i] = {}
    end
    local had = { parse_holes(KEYS[2], 0, holes), false }
    if K < P then
        had[2] = parse_holes(KEYS[4], K, holes)
    end
    return holes, had
end

-- Every part's TAT as a number (now for a TAT in the past: the same to every function).
local function lines(tat)
    local out = {}
    for i = 1, P do
        local v = tat[i]
        if v == nil or v < now then
            v = now
        end
        out[i] = v
    end
    return out
end

-- Tidy every part (memory's MemoryStore._tidy): the TATs a hole was absorbed into change.
local function tidy_all(holes, tat, tokens)
    for i = 1, P do
        if #holes[i] > 0 then
            local line = tat[i] or now
            local after = tidy(holes[i], line, now, CAP, interval(i))
            if after ~= line then
                tat[i], tokens[i] = after, nil
            end
        end
    end
end

-- Write the holes of lines first..last back to key k, expiring with their state (`ms`:
-- what store() set; 0: deleted).
local function store_holes_to(k, first, last, holes, had, ms)
    local out = { '@' .. fmt(base) }
    for i = first, last do
        local part = holes[i]
        if #part > 0 then
            out[#out + 1] = (i - first + 1) .. ' ' .. #part
            for _, hole in ipairs(part) do
                out[#out + 1] = fmt(hole[1]) .. ' ' .. fmt(hole[2])
            end
        end
    end
    if #out > 1 and ms > 0 then
        redis.call('SET', k, table.concat(out, ' '), 'PX', ms)
    elseif had then
        redis.call('DEL', k)
    end
end

-- Write the holes back (`ms`, `ms2`: the expiries store() returned).
local function store_holes(holes, had, ms, ms2)
    store_holes_to(KEYS[2], 1, K, holes, had[1], ms)
    if K < P then
        store_holes_to(KEYS[4], K + 1, P, holes, had[2], ms2)
    end
end

-- Pieces as reply tokens: "#count s1 e1 ...".
local function pieces_reply(reply, pieces)
    reply[#reply + 1] = '#' .. #pieces
    for _, piece in ipairs(pieces) do
        reply[#reply + 1] = absolute(piece[1])
        reply[#reply + 1] = absolute(piece[2])
    end
end
