-- session.lua: registers devices' sessions on this node at AUTH and returns what each missed: N devices per call
-- (the AUTHs of one loop iteration of the gateway, a reconnect storm's in as few calls as it takes).
--
-- KEYS, per device i: pg:{u:<uid>}:inbox, pg:{u:<uid>}:meta, pg:{u:<uid>}:sess (3 × (i − 1) + 1 …), then (with
--       presence.events) the presence stream: a user's first session anywhere appends {user, event online, ts}
-- ARGV: 1 N (devices), then 8 fields per device i from 1 + 8 × (i − 1) + 1: device key, node id, platform, now
--       (unix s), session ttl (s), last_seq (-1: none given), limit (most messages returned), uid
-- Reply: one entry per device, in order: {seq, unread, read, first_kept, remote, element…}: elements with
--        seq > last_seq, unexpired, oldest first, at most limit, only when last_seq >= 0. first_kept is the oldest
--        kept seq (0: inbox empty), so a client whose last_seq + 1 < first_kept knows it lost messages to the cap
--        or the TTL. remote is 1 when another node holds a session of the user; each such node is told
--        (`\1S\n<uid>` on its channel) that this one holds one now, so both route the user's transient pushes
--        through Redis from then on. An entry is an error when that device's keys failed (a wrong type); the
--        others are not affected. A bad argument is an error for the whole call, before anything is written.
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

local count = int_arg(1, 'device count', 0)
if #KEYS < 3 * count then
    error({err = 'ERR pushgw session: ' .. count .. ' devices need ' .. 3 * count .. ' keys, got ' .. #KEYS})
end
-- Every argument is checked first: an error after the first write would leave sessions the gateway thinks failed.
local presence = KEYS[3 * count + 1]
local devices = {}
for i = 1, count do
    local base, key = 1 + 8 * (i - 1), 3 * (i - 1)
    devices[i] = {
        inbox = KEYS[key + 1], meta = KEYS[key + 2], sess = KEYS[key + 3],
        device = ARGV[base + 1] or '', node = ARGV[base + 2] or '', platform = ARGV[base + 3] or '',
        now_s = int_arg(base + 4, 'now', 0), sess_ttl = int_arg(base + 5, 'session ttl', 1),
        last_seq = int_arg(base + 6, 'last_seq', -1), limit = int_arg(base + 7, 'limit', 0),
        uid = ARGV[base + 8] or '',
    }
end

local function session(d)
    local inbox, meta, sess = d.inbox, d.meta, d.sess
    local device, node, platform, uid = d.device, d.node, d.platform, d.uid
    local now_s, sess_ttl, last_seq, limit = d.now_s, d.sess_ttl, d.last_seq, d.limit

    local first = presence and redis.call('HLEN', sess) == 0
    redis.call('HSET', sess, device, node .. '|' .. platform .. '|' .. string.format('%d', now_s))
    if first then
        redis.call('XADD', presence, 'MAXLEN', '~', 100000, '*', 'user', uid, 'event', 'online',
            'ts', string.format('%d', now_s))
    end
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
end

local reply = {}
for i = 1, count do
    local ok, result = pcall(session, devices[i])
    if ok then
        reply[i] = result
    elseif type(result) == 'table' and result.err then
        reply[i] = result
    else
        reply[i] = {err = tostring(result)}
    end
end
return reply
