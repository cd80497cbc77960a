-- session.lua: registers a device's session on this node at AUTH and returns what it missed.
--
-- KEYS: 1 pg:{u:<uid>}:inbox, 2 pg:{u:<uid>}:meta, 3 pg:{u:<uid>}:sess
-- ARGV: 1 device key, 2 node id, 3 platform, 4 now (unix s), 5 session ttl (s), 6 last_seq (-1: none given),
--       7 limit (most messages returned), 8 uid
-- Reply: {seq, unread, read, first_kept, remote, element…}: elements with seq > last_seq, unexpired, oldest
--        first, at most limit, only when last_seq >= 0. first_kept is the oldest kept seq (0: inbox empty), so a
--        client whose last_seq + 1 < first_kept knows it lost messages to the cap or the TTL. remote is 1 when
--        another node holds a session of the user; each such node is told (`\1S\n<uid>` on its channel) that
--        this one holds one now, so both route the user's transient pushes through Redis from then on.
--
-- int_args, expire_at, append_range, session_node and teller come from prelude.lua, which Script.swift puts
-- before this text.

local int_arg = int_args('session')

-- Pops expired elements from the head, at most `budget`, so first_kept names a message the client can still get.
-- Returns the head's expire_at when it stopped at an unexpired head (nil when the list is empty or the budget ran
-- out).
local function pop_expired(inbox, now_s, budget)
    for _ = 1, budget do
        local head = redis.call('LINDEX', inbox, 0)
        if not head then return nil end
        local at = expire_at(head) or 0
        if at == 0 or at > now_s then return at end
        redis.call('LPOP', inbox)
    end
end

local inbox, meta, sess = KEYS[1], KEYS[2], KEYS[3]
local device, node, platform, uid = ARGV[1] or '', ARGV[2] or '', ARGV[3] or '', ARGV[8] or ''
local now_s = int_arg(4, 'now', 0)
local sess_ttl = int_arg(5, 'session ttl', 1)
local last_seq = int_arg(6, 'last_seq', -1)
local limit = int_arg(7, 'limit', 0)

redis.call('HSET', sess, device, node .. '|' .. platform .. '|' .. string.format('%d', now_s))
redis.call('EXPIRE', sess, sess_ttl)

local remote = 0
local tell = teller(node, '\1S\n' .. uid)
local sessions = redis.call('HGETALL', sess)
for i = 2, #sessions, 2 do
    local owner = session_node(sessions[i])
    if owner ~= node then
        remote = 1
        tell(owner)
    end
end

local fields = redis.call('HMGET', meta, 'seq', 'unread', 'read', 'x')
local seq = tonumber(fields[1]) or 0
local unread = tonumber(fields[2]) or 0
local read = tonumber(fields[3]) or 0
-- store.lua's `x` (`<xt>:<hx>:<xl>:<xs>`): while now < hx (a lower bound of every element's expire_at; 0 none
-- expires) nothing can have expired and the head is not looked at.
local xt, low, xl, xs = string.match(fields[4] or '', '^(%d*):(%d*):(%d*):(%d*)$')
low = tonumber(low)
local head_at
if low == nil or (low ~= 0 and low <= now_s) then head_at = pop_expired(inbox, now_s, 100) end
local kept = redis.call('LLEN', inbox)
-- Ordered from the head on (xs, the start of the ordered run, at or before the oldest kept): the head's expire_at
-- is the new bound, so the next stores and AUTHs skip the check again.
if head_at and tonumber(xs) and tonumber(xs) <= seq - kept + 1 and head_at ~= low then
    redis.call('HSET', meta, 'x', xt .. ':' .. string.format('%d', head_at) .. ':' .. xl .. ':' .. xs)
end
if unread > kept then
    -- Messages expired since the count was made: it can never exceed what the inbox keeps.
    unread = kept
    redis.call('HSET', meta, 'unread', unread)
end
local first_kept = 0
if kept > 0 then first_kept = seq - kept + 1 end

local reply = {seq, unread, read, first_kept, remote}
if last_seq >= 0 then append_range(reply, inbox, seq, last_seq, limit, now_s) end
return reply
