-- store.lua: stores one message for one user and tells every other node holding a session of that user.
-- One round trip per push (SPEC §5). The inbox stays contiguous in seq: trimming only removes from the head.
--
-- KEYS: 1 pg:{u:<uid>}:inbox, 2 pg:{u:<uid>}:meta, 3 pg:{u:<uid>}:sess, [4 pg:idem:<id>]
-- ARGV: 1 op, 2 payload (raw bytes), 3 now (unix ms), 4 message ttl (s, 0 = never expires), 5 inbox max,
--       6 inbox key ttl (s), 7 this node's id, 8 uid, 9 body hash ("" without KEYS[4]), 10 idempotency ttl (s)
-- Reply: {seq, 0, unread, published, devices}  stored; published = distinct other nodes sent `<uid>\n<element>`,
--                                    devices = the user's sessions on any node
--        {seq, 1, unread}             duplicate: this idempotency key already stored seq for this user
--        {-1}                         conflict: this idempotency key was used with another body
-- Element: `<seq>:<op>:<ts_ms>:<expire_at unix s>:<payload>`; expire_at 0 means it never expires.
-- Integers are Lua numbers (doubles) here: exact up to 2^53, which no seq or timestamp reaches.

-- ARGV[i] as an integer, at least `min`; anything else is an error reply naming the argument.
local function int_arg(i, name, min)
    local text = ARGV[i]
    local what = 'ERR pushgw store: ' .. name .. ' (ARGV[' .. i .. ']) must be '
    if not text or not string.match(text, '^%-?%d+$') then
        error({err = what .. 'an integer, got ' .. tostring(text)})
    end
    local value = tonumber(text)
    if min and value < min then error({err = what .. 'at least ' .. min .. ', got ' .. text}) end
    return value
end

-- Pops expired elements from the head, at most `budget` (a burst of expired messages is cleared over calls), and
-- returns the list's length after it, given its length before (so no LLEN is needed).
-- One LINDEX per element: LRANGE of a window would copy payloads that are usually not expired.
local function pop_expired(inbox, now_s, budget, length)
    for _ = 1, budget do
        if length == 0 then return 0 end
        local head = redis.call('LINDEX', inbox, 0)
        if not head then return 0 end
        local expire_at = tonumber(string.match(head, '^%d+:%d+:%d+:(%d+):'))
        if not expire_at or expire_at == 0 or expire_at > now_s then return length end
        redis.call('LPOP', inbox)
        length = length - 1
    end
    return length
end

local inbox, meta, sess, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = int_arg(1, 'op', 0)
local payload = ARGV[2] or ''
local now_ms = int_arg(3, 'now_ms', 0)
local ttl = int_arg(4, 'ttl', 0)
local inbox_max = int_arg(5, 'inbox max', 1)
local inbox_ttl = int_arg(6, 'inbox ttl', 1)
local node = ARGV[7] or ''
local uid = ARGV[8] or ''
local body_hash = ARGV[9] or ''

-- Idempotency: one record per key shared by every user of a push; `u:<uid>` so a uid can never be `h`.
local idem_field = 'u:' .. uid
local idem_ttl
if idem then
    idem_ttl = int_arg(10, 'idempotency ttl', 1)
    local recorded = redis.call('HMGET', idem, 'h', idem_field)
    if recorded[1] and recorded[1] ~= body_hash then return {-1} end
    if recorded[2] then
        local unread = tonumber(redis.call('HGET', meta, 'unread')) or 0
        return {tonumber(recorded[2]), 1, math.min(unread, redis.call('LLEN', inbox))}
    end
end

local seq = redis.call('HINCRBY', meta, 'seq', 1)
local now_s = math.floor(now_ms / 1000)
local expire_at = 0
if ttl > 0 then expire_at = now_s + ttl end
local element = string.format('%d:%d:%d:%d:', seq, op, now_ms, expire_at) .. payload
-- RPUSH answers the new length: the trim runs only when the cap is passed, and no LLEN is needed after it.
local kept = redis.call('RPUSH', inbox, element)
if kept > inbox_max then
    redis.call('LTRIM', inbox, -inbox_max, -1)
    kept = inbox_max
end
kept = pop_expired(inbox, now_s, 100, kept)

-- Unread counts stored messages not read yet; it can never exceed what the inbox still keeps.
local unread = redis.call('HINCRBY', meta, 'unread', 1)
if unread > kept then
    unread = kept
    redis.call('HSET', meta, 'unread', unread)
end
redis.call('EXPIRE', inbox, inbox_ttl)
-- meta outlives the inbox so that seq does not restart at 1 soon after a user's messages expire.
redis.call('EXPIRE', meta, 4 * inbox_ttl)
if idem then
    redis.call('HSET', idem, 'h', body_hash, idem_field, seq)
    redis.call('EXPIRE', idem, idem_ttl)
end

-- Session values are `<node>|<platform>|<since>`: publish once per distinct other node.
local sessions = redis.call('HGETALL', sess)
local message = uid .. '\n' .. element
local seen = {}
local published = 0
for i = 2, #sessions, 2 do
    local value = sessions[i]
    local bar = string.find(value, '|', 1, true)
    local owner = bar and string.sub(value, 1, bar - 1) or value
    if owner ~= node and not seen[owner] then
        seen[owner] = true
        redis.call('PUBLISH', 'pg:node:' .. owner, message)
        published = published + 1
    end
end
return {seq, 0, unread, published, #sessions / 2}
