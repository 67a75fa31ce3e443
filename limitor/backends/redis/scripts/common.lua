-- limitor: the prelude every verb's script starts with.
--
-- KEYS[1] holds a limit's state for one key, as one string (written with SET ... PX, so
-- the value and its expiry are one command): each part's theoretical arrival time (TAT),
-- ("-" when it is in the past), then the hold (nothing admitted before it) if one is still
-- running. An absent key means "full". A time is written "anchor~offset": the call's
-- time that wrote it (microseconds since the epoch below) and the microseconds after it,
-- so a one-part limit without a hold is one token: "96117155990908~1000000.5". (A plain
-- number, microseconds since the epoch, is read too.)
-- KEYS[3] and KEYS[4], for a limit under totals (LimitSpec.totals), hold the totals'
-- state and free pieces in the same forms: a decision reads and writes both at once.
-- KEYS[2] (every verb but hold) holds the free pieces before each part's TAT ("holes",
-- see schedule.lua), in the same hash tag (so the same Cluster slot) and with the same
-- expiry; absent while there are none (the common case).
-- Numbers are written with %.17g so that no fraction is lost (Lua's own formatting keeps
-- 14 digits; a number passed to redis.call is written exactly), and every reply is one
-- string of space-separated tokens.
--
-- ARGV[1] is every argument in one string of space-separated tokens (one argument costs
-- the client less to send than several), read into `a`:
-- a[1]  "-" (read the server's TIME) or a fixed time in microseconds (tests only)
-- a[2]  P, the number of parts; then for each part: interval, tolerance (microseconds)
-- a[3 + 2P]  the cap: free pieces kept per part at most
-- a[4 + 2P]...  the verb's own arguments

local EPOCH = 1700000000 -- seconds; times are microseconds since then (about 2^46 in 2027)
local NEAR = 0.05 -- microseconds: two times this close are one time (a few ulps at 2^46)

local key = KEYS[1]
local a = {}
for token in string.gmatch(ARGV[1], '%S+') do
    a[#a + 1] = token
end
-- `nows` is how replies give the time: the two strings TIME returned (seconds, then
-- microseconds: the caller redoes the same integer arithmetic), or the override and "-".
local now, nows
if a[1] ~= '-' then
    now = tonumber(a[1])
    nows = a[1] .. ' -'
else
    if redis.replicate_commands then
        redis.replicate_commands() -- Redis < 5: replicate effects, not the script (TIME)
    end
    local t = redis.call('TIME')
    now = (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
    nows = t[1] .. ' ' .. t[2]
end

-- The frame. Every time below is microseconds after `base`, this call's time (so `now`
-- is 0), and only the reads, writes, arguments and replies translate: near 2^46.5 us
-- (the epoch's times) doubles are 1/64 us apart, and a TAT kept there rounded each sum of
-- intervals (fifteen admissions of 1/15 s at once drifted 0.08 us, past the tolerance,
-- and refused the fifteenth unit of a burst of fifteen). Here a time is a few seconds at
-- most in the common case, with a resolution far below the tolerance.
local base = now
now = 0

-- A stored time token in this frame: "anchor~offset", or microseconds since the epoch.
local function rel(x)
    local mark = string.find(x, '~', 1, true)
    if mark then
        return (tonumber(string.sub(x, 1, mark - 1)) - base) + tonumber(string.sub(x, mark + 1))
    end
    return tonumber(x) - base
end

local P = tonumber(a[2])
-- Under totals (KEYS[3] and KEYS[4]: the totals' state and free pieces, in the key's hash
-- tag) the P lines are the key's K parts, then one total per part: K = P / 2.
local K = P
if #KEYS >= 4 then
    K = P / 2
end
local A = 4 + 2 * P -- index of the verb's first argument

local function fmt(x)
    return string.format('%.17g', x)
end

-- A time of this frame as a stored token (see rel): anchored at this call's time.
local function stamp(x)
    return fmt(base) .. '~' .. fmt(x)
end

-- A time of this frame as microseconds since the epoch (replies: tickets' pieces).
local function absolute(x)
    return fmt(base + x)
end

local function interval(i)
    return tonumber(a[1 + 2 * i])
end

local function tolerance(i)
    return tonumber(a[2 + 2 * i])
end

-- Every part's TAT (nil: in the past), the tokens they were read from, and the holds.
-- Lines first..last are read from key k ("tat1 tat2 ... [hold]"); returns its hold and
-- the hold's token.
local function load_from(k, first, last, tat, tokens)
    local raw = redis.call('GET', k)
    if not raw then
        return nil, nil
    end
    if first == last and not string.find(raw, ' ', 1, true) then
        tat[first], tokens[first] = rel(raw), raw -- one part, no hold: one token
        return nil, nil
    end
    local n = last - first + 1
    local i = 0
    local hold, token = nil, nil
    for x in string.gmatch(raw, '%S+') do
        i = i + 1
        if i <= n then
            if x ~= '-' then
                tat[first + i - 1], tokens[first + i - 1] = rel(x), x
            end
        else
            hold, token = rel(x), x
        end
    end
    return hold, token
end

-- The key's lines (1..K, in KEYS[1]) and, under totals, the totals' (K+1..P, in KEYS[3]);
-- the key's hold and the totals' (nil without totals).
local function load()
    local tat, tokens = {}, {}
    local hold, hold2
    hold, tokens.hold = load_from(key, 1, K, tat, tokens)
    if K < P then
        hold2, tokens.hold2 = load_from(KEYS[3], K + 1, P, tat, tokens)
    end
    return tat, tokens, hold, hold2
end

-- Write lines first..last and `hold` back to key k, expiring when every one of them is
-- full again and the hold is over (rounded up to the millisecond); delete it when that is
-- already so. Returns the expiry set, in milliseconds (0: deleted).
local function store_to(k, first, last, tat, tokens, hold, htoken)
    local full = now
    for i = first, last do
        local v = tat[i]
        if v and v > full then
            full = v
        end
    end
    local held = hold and hold > now
    if held and hold > full then
        full = hold
    end
    local ms = math.ceil((full - now) / 1000)
    if ms <= 0 then
        redis.call('DEL', k)
        return 0
    end
    if first == last and not held then
        redis.call('SET', k, tokens[first] or stamp(tat[first]), 'PX', ms)
        return ms
    end
    local values = {}
    for i = first, last do
        local v = tat[i]
        if v and v > now then
            values[#values + 1] = tokens[i] or stamp(v)
        else
            values[#values + 1] = '-'
        end
    end
    if held then
        values[#values + 1] = htoken or stamp(hold)
    end
    redis.call('SET', k, table.concat(values, ' '), 'PX', ms)
    return ms
end

-- Write the state back (the key's, then under totals the totals'); returns the expiries.
local function store(tat, tokens, hold, hold2)
    local ms = store_to(key, 1, K, tat, tokens, hold, tokens.hold)
    if K < P then
        return ms, store_to(KEYS[3], K + 1, P, tat, tokens, hold2, tokens.hold2)
    end
    return ms
end
