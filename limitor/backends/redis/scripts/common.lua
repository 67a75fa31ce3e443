-- limitor: the prelude every verb's script starts with.
--
-- KEYS[1] holds a limit's state for one key, as one string (written with SET ... PX, so
-- the value and its expiry are one command): each part's theoretical arrival time (TAT),
-- in microseconds since the epoch below ("-" when it is in the past), then the hold
-- (nothing admitted before it) if one is still running. An absent key means "full".
-- A one-part limit without a hold is just its TAT: "96117155990908.5".
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

local P = tonumber(a[2])
local A = 4 + 2 * P -- index of the verb's first argument

local function fmt(x)
    return string.format('%.17g', x)
end

local function interval(i)
    return tonumber(a[1 + 2 * i])
end

local function tolerance(i)
    return tonumber(a[2 + 2 * i])
end

-- Every part's TAT (nil: in the past), the tokens they were read from, and the hold.
local function load()
    local tat, tokens, hold = {}, {}, nil
    local raw = redis.call('GET', key)
    if not raw then
        return tat, tokens, nil
    end
    local single = tonumber(raw)
    if single and P == 1 then
        tat[1], tokens[1] = single, raw
        return tat, tokens, nil
    end
    local i = 0
    for x in string.gmatch(raw, '%S+') do
        i = i + 1
        if i <= P then
            if x ~= '-' then
                tat[i], tokens[i] = tonumber(x), x
            end
        else
            hold, tokens.hold = tonumber(x), x
        end
    end
    return tat, tokens, hold
end

-- Write the state back, expiring when every part is full again and the hold is over
-- (rounded up to the millisecond); delete it when that is already so. Returns the
-- expiry set, in milliseconds (0: deleted).
local function store(tat, tokens, hold)
    local full = now
    for i = 1, P do
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
        redis.call('DEL', key)
        return 0
    end
    if P == 1 and not held then
        -- a number argument: Redis writes it exactly (shortest round trip, or %.17g)
        redis.call('SET', key, tokens[1] or tat[1], 'PX', ms)
        return ms
    end
    local values = {}
    for i = 1, P do
        local v = tat[i]
        if v and v > now then
            values[i] = tokens[i] or fmt(v)
        else
            values[i] = '-'
        end
    end
    if held then
        values[P + 1] = tokens.hold or fmt(hold)
    end
    redis.call('SET', key, table.concat(values, ' '), 'PX', ms)
    return ms
end
