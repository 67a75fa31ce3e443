-- limitor: the prelude every verb's script starts with.
--
-- One hash per key (KEYS[1]) holds the whole state of a limit for that key:
--   t<i>  the part's theoretical arrival time (TAT), microseconds since the epoch below
--   h<i>  the part's holes: "start end start end ..." (given-back spans before the TAT)
--   H     nothing is admitted before this time (a hold)
-- A missing field means "full" (a TAT at or before now). Every number is written with
-- string.format('%.17g') so that no fraction is lost (Redis formats Lua numbers with 14
-- digits), and every reply is a string for the same reason.
--
-- ARGV[1]  "" (read the server's TIME) or a fixed time in microseconds (tests only)
-- ARGV[2]  P, the number of parts; then for each part: interval, tolerance (microseconds)
-- ARGV[3 + 2P]...  the verb's own arguments

if redis.replicate_commands then
    pcall(redis.replicate_commands)
end

local EPOCH = 1700000000 -- seconds; times are microseconds since then (about 2^45 in 2027)
local NEAR = 0.05 -- microseconds: two times this close are the same time (a few ulps at 2^45)
local MAX_HOLES = 64 -- per part; beyond it the earliest hole is forgotten (admits less, never more)

local key = KEYS[1]
local now
if ARGV[1] ~= '' then
    now = tonumber(ARGV[1])
else
    local t = redis.call('TIME')
    now = (tonumber(t[1]) - EPOCH) * 1000000 + tonumber(t[2])
end

local P = tonumber(ARGV[2])
local T, TAU = {}, {}
for i = 1, P do
    T[i] = tonumber(ARGV[1 + 2 * i])
    TAU[i] = tonumber(ARGV[2 + 2 * i])
end
local A = 3 + 2 * P -- index of the verb's first argument

local function fmt(x)
    return string.format('%.17g', x)
end

-- The TAT of every part and the hold, from one HMGET (nil when missing).
local function load()
    local fields = { 'H' }
    for i = 1, P do
        fields[i + 1] = 't' .. i
    end
    local values = redis.call('HMGET', key, unpack(fields))
    local tat = {}
    for i = 1, P do
        tat[i] = tonumber(values[i + 1])
    end
    return tat, tonumber(values[1])
end

-- Expire the key when every part is full again and the hold is over; delete it when that
-- is already so (an absent key means exactly "full").
local function expire(tat, hold)
    local full = hold or now
    for i = 1, P do
        if tat[i] and tat[i] > full then
            full = tat[i]
        end
    end
    local ms = math.ceil((full - now) / 1000)
    if ms <= 0 then
        redis.call('DEL', key)
    else
        redis.call('PEXPIRE', key, ms)
    end
end
