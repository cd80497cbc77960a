-- store.lua: stores N messages (of one push for many users, or of many pushes) and tells every other node holding
-- a session of each message's user. One round trip for everything a loop iteration of the gateway stored (SPEC §5).
-- The inbox stays contiguous in seq: trimming only removes from the head. Messages are stored in ARGV order, so
-- two messages for one user get consecutive seqs in that order.
--
-- KEYS, per message i (in message order): pg:{u:<uid>}:inbox, pg:{u:<uid>}:meta, pg:{u:<uid>}:sess,
--       pg:{u:<uid>}:polls, then, only when the message has an idempotency key, the record it is written to and
--       the L records it is looked up in (pg:{u:<uid>}:idem:<ttl>:<generation>, RedisKeys.idempotency), then, only
--       when it notifies (SPEC §10), the user's push tokens pg:{u:<uid>}:push and the notification stream (in the
--       user's slot on a cluster, RedisKeys.notifyStream)
-- ARGV: 1 inbox max, 2 inbox key ttl (s), 3 this node's id, 4 N (messages), then 13 fields per message i from
--       5 + 13 × (i − 1): op, payload (raw bytes), now (unix ms), message ttl (s, 0 = never expires), uid,
--       idempotency key ("" none: the next five fields are then ignored), L (records to look the key up in), body
--       hash, the record's ttl class (s), the unix second its record expires at (the end of the generation after its
--       own), and the time (unix ms) a key of the gateway's generated form names ("" for another key): the push is
--       then also looked for in the inbox, an element of that time with the same op and payload (a push sent
--       without a key wrote no record; its stored message is the record), the push's `notify` object as JSON
--       ("" none), and "1" when it notifies online devices too ("" offline ones only)
-- Reply: one entry per message, in order:
--        {seq, 0, unread, published, devices, element}  stored; published = distinct other nodes sent
--                                    `<uid>\n<element>` (nodes holding a session or a long-poll of the user),
--                                    devices = the user's sessions on any node, element = what was stored
--        {seq, 1, unread}             duplicate: this idempotency key already stored seq for this user
--        {-1}                         conflict: this idempotency key was used for this user with another body
--        an error                     this message failed (a wrong type of key, say); the others are not affected
--        Every argument is checked before anything is written: a bad one is an error reply for the whole call,
--        and nothing was stored.
-- Element: `<seq>:<op>:<ts_ms>:<expire_at unix s>:<payload>`; expire_at 0 means it never expires.
-- Notifications: a stored (not duplicate) message that notifies appends one entry to the stream per device of the
-- user with a push token (`pg:{u:<uid>}:push`: device key → {"provider","token","topic","sandbox"}) that holds no
-- session, or every such device with "always": fields u uid, d device, p provider, t token, tp topic, sb 1|0,
-- n the notify JSON, b the unread count after this message (the badge), s seq, ts now (ms), op. The stream is
-- capped (MAXLEN ~ 1,000,000): the notifiers read it as a consumer group (`pushgw notify`). On a cluster the stream
-- is the slot's pg:notify:{<tag>}, and its name is published on pg:notify:ring once per message that queued any.
-- Integers are Lua numbers (doubles) here: exact up to 2^53, which no seq or timestamp reaches.
--
-- Meta field this script keeps besides seq, read, unread (SPEC §5), so that each store touches meta twice (one HMGET,
-- one HSET) and skips what is not due: `x` = `<xt>:<hx>:<xl>:<xs>`, where
--   xt  unix s when EXPIRE was last set on inbox and meta. They are refreshed only when more than
--       min(60, inbox ttl / 10) s passed since (or the inbox was just created): the inbox lives between
--       inbox ttl − min(60, inbox ttl / 10) and inbox ttl seconds after the last store, meta 4 × as long.
--   hx  a lower bound of the expire_at of every element of the inbox (0: none expires; empty: unknown). While
--       now < hx no element can have expired, so the expired-head check (LINDEX) is skipped. Trims only remove
--       elements, so the bound stays true through LTRIM and LPOP; an append lowers it to its own expire_at.
--   xl  the newest element's expire_at, and xs the first seq of the run at the tail whose expire_ats do not
--       decrease (0 counts as never). When the run starts at or before the head, the head holds the smallest
--       expire_at, so after popping expired heads hx becomes the head's expire_at. Messages of mixed ttls break
--       the run: hx is then not raised, and the head is checked on every store until the elements older than the
--       run are trimmed or expired (or the inbox starts again).
-- unread is min(seq − read, kept): derived, not counted, and written with seq.
--
-- Idempotency records of a backend's key live in the user's slot (SPEC §9), one hash per generation: field <key> →
-- `<seq>:<body hash>`. A generation lasts the class's ttl; the record is written into the current one and looked up
-- in the current and the previous one, so it is found for at least ttl and at most 2 × ttl seconds, and a push adds a
-- field to a hash that exists already instead of a key with an expiry of its own. Meta field `i:<ttl>` is the expiry
-- last given to the current generation's hash, so its EXPIRE runs once per generation and user. A push sent without
-- a key writes no record: its generated key names its time, and a retry finds the stored element (find_stored).
--
-- int_args, expire_at, session_node and teller come from prelude.lua, which Script.swift puts before this text.

local int_arg = int_args('store')

-- Pops expired elements from the head, at most `budget` (a burst of expired messages is cleared over calls).
-- Returns the list's length after it, given its length before (so no LLEN is needed), and the head's expire_at
-- when it stopped at an unexpired head (nil when it did not look, or the list is empty).
-- One LINDEX per element: LRANGE of a window would copy payloads that are usually not expired.
local function pop_expired(inbox, now_s, budget, length)
    for _ = 1, budget do
        if length == 0 then return 0 end
        local head = redis.call('LINDEX', inbox, 0)
        if not head then return 0 end
        local at = expire_at(head) or 0
        if at == 0 or at > now_s then return length, at end
        redis.call('LPOP', inbox)
        length = length - 1
    end
    return length
end

-- The seq of the newest element of `inbox` stored at `ts_ms` with `op` and `payload`, nil when there is none. For a
-- retry of a push sent without a key (rare: after a 503 whose outcome was unknown), so the whole inbox is read.
local function find_stored(inbox, ts_ms, op, payload)
    local elements = redis.call('LRANGE', inbox, 0, -1)
    for i = #elements, 1, -1 do
        local e = elements[i]
        local seq, e_op, ts, head = string.match(e, '^(%d+):(%d+):(%d+):%d+:()')
        if seq and tonumber(ts) == ts_ms and tonumber(e_op) == op and string.sub(e, head) == payload then
            return tonumber(seq)
        end
    end
    return nil
end

-- 0 (never expires) sorts after every time.
local function not_before(a, b)
    if b == 0 then return a == 0 end
    return a == 0 or a >= b
end

local inbox_max = int_arg(1, 'inbox max', 1)
local inbox_ttl = int_arg(2, 'inbox ttl', 1)
local node = ARGV[3] or ''
local count = int_arg(4, 'message count', 0)
local refresh_after = math.min(60, math.floor(inbox_ttl / 10))

-- Every argument is checked first: an error after the first write would leave messages stored that the gateway
-- reports as not stored.
local messages = {}
local key = 1
for i = 1, count do
    local base = 4 + 13 * (i - 1)
    local m = {
        op = int_arg(base + 1, 'op', 0), payload = ARGV[base + 2] or '', now_ms = int_arg(base + 3, 'now_ms', 0),
        ttl = int_arg(base + 4, 'ttl', 0), uid = ARGV[base + 5] or '',
        inbox = KEYS[key], meta = KEYS[key + 1], sess = KEYS[key + 2], polls = KEYS[key + 3],
    }
    key = key + 4
    local id = ARGV[base + 6] or ''
    if id ~= '' then
        local lookups = int_arg(base + 7, 'idempotency lookups', 0)
        m.id, m.body_hash = id, ARGV[base + 8] or ''
        -- Both kept as the text they are compared and stored as; only checked to be positive integers.
        for j = 9, 10 do
            local text = ARGV[base + j]
            if not (text and string.find(text, '^[1-9]%d*$')) then
                error({err = arg_error('store', base + j, 'idempotency ' .. (j == 9 and 'ttl' or 'expiry'),
                    'a positive integer, got ' .. tostring(text))})
            end
        end
        m.record_field, m.record_until = 'i:' .. ARGV[base + 9], ARGV[base + 10]
        local generated = ARGV[base + 11] or ''
        if generated ~= '' then m.generated_at = int_arg(base + 11, 'generated key time', 0) end
        m.record = KEYS[key]
        m.lookups = {}
        for j = 1, lookups do m.lookups[j] = KEYS[key + j] end
        key = key + 1 + lookups
    end
    if not m.polls or (m.id and not KEYS[key - 1]) then
        error({err = 'ERR pushgw store: ' .. count .. ' messages need more than ' .. #KEYS .. ' keys'})
    end
    local notify = ARGV[base + 12] or ''
    if notify ~= '' then
        m.notify, m.always = notify, ARGV[base + 13] == '1'
        m.push, m.stream = KEYS[key], KEYS[key + 1]
        key = key + 2
    end
    if m.notify and not m.stream then
        error({err = 'ERR pushgw store: ' .. count .. ' messages need more than ' .. #KEYS .. ' keys'})
    end
    messages[i] = m
end

-- One stream entry per device with a push token that is offline (every one with `always`); a token that is not
-- the JSON object PUT stored is skipped, not an error: the message is stored already.
local function notify(m, tokens, sessions, seq, unread)
    local added = false
    local online = {}
    for i = 1, #sessions, 2 do online[sessions[i]] = true end
    for i = 1, #tokens, 2 do
        local device = tokens[i]
        local ok, token = pcall(cjson.decode, tokens[i + 1])
        if ok and type(token) == 'table' and type(token.token) == 'string' and (m.always or not online[device]) then
            redis.call('XADD', m.stream, 'MAXLEN', '~', 1000000, '*', 'u', m.uid, 'd', device,
                'p', tostring(token.provider or ''), 't', token.token, 'tp', tostring(token.topic or ''),
                'sb', token.sandbox == true and '1' or '0', 'n', m.notify, 'b', string.format('%d', unread),
                's', string.format('%d', seq), 'ts', string.format('%d', m.now_ms), 'op', string.format('%d', m.op))
            added = true
        end
    end
    -- A cluster's per-slot stream (its name has a hash tag) rings the notifiers, which cannot block on them all.
    if added and string.find(m.stream, '{', 1, true) then redis.call('PUBLISH', 'pg:notify:ring', m.stream) end
end

local function store(m)
    local inbox, meta = m.inbox, m.meta
    local fields
    if m.id then
        fields = redis.call('HMGET', meta, 'seq', 'read', 'x', m.record_field)
        for _, record in ipairs(m.lookups) do
            local recorded = redis.call('HGET', record, m.id)
            if recorded then
                local seq, hash = string.match(recorded, '^(%d+):(.*)$')
                if hash ~= m.body_hash then return {-1} end
                local last = tonumber(fields[1]) or 0
                local unread = math.max(0, last - (tonumber(fields[2]) or 0))
                return {tonumber(seq), 1, math.min(unread, redis.call('LLEN', inbox))}
            end
        end
        if m.generated_at then
            local seq = find_stored(inbox, m.generated_at, m.op, m.payload)
            if seq then
                local unread = math.max(0, (tonumber(fields[1]) or 0) - (tonumber(fields[2]) or 0))
                return {seq, 1, math.min(unread, redis.call('LLEN', inbox))}
            end
        end
    else
        fields = redis.call('HMGET', meta, 'seq', 'read', 'x')
    end

    -- Every read before the first write, so that a key of the wrong type fails the message with nothing written.
    local sessions = redis.call('HGETALL', m.sess)
    local waiting = redis.call('HGETALL', m.polls)
    local tokens = m.notify and redis.call('HGETALL', m.push)

    local seq = (tonumber(fields[1]) or 0) + 1
    local read = tonumber(fields[2]) or 0
    local expiry_set, low, last_at, run_start = string.match(fields[3] or '', '^(%d*):(%d*):(%d*):(%d*)$')
    expiry_set, low, last_at, run_start = tonumber(expiry_set), tonumber(low), tonumber(last_at), tonumber(run_start)
    local now_s = math.floor(m.now_ms / 1000)
    local at = 0
    if m.ttl > 0 then at = now_s + m.ttl end
    local element = string.format('%d:%d:%d:%d:', seq, m.op, m.now_ms, at) .. m.payload
    -- RPUSH answers the new length: the trim runs only when the cap is passed, and no LLEN is needed after it.
    local kept = redis.call('RPUSH', inbox, element)
    if kept == 1 then
        -- A new inbox (an empty list is no key): its only element gives the bound, and it needs its expiry.
        low, run_start, expiry_set = at, seq, nil
    else
        if low and at ~= 0 and (low == 0 or at < low) then low = at end
        if not (last_at and run_start and not_before(at, last_at)) then run_start = seq end
    end
    if kept > inbox_max then
        redis.call('LTRIM', inbox, -inbox_max, -1)
        kept = inbox_max
    end
    if low == nil or (low ~= 0 and low <= now_s) then
        local head_at
        kept, head_at = pop_expired(inbox, now_s, 100, kept)
        -- Ordered from the head on: the head's expire_at is the smallest.
        if head_at and run_start <= seq - kept + 1 then low = head_at end
    end
    -- Unread counts stored messages not read yet; it can never exceed what the inbox still keeps.
    local unread = math.min(math.max(0, seq - read), kept)
    local refresh = expiry_set == nil or now_s - expiry_set > refresh_after or now_s < expiry_set
    if refresh then expiry_set = now_s end
    -- Written with %d: redis.call would write a Lua number of 15 digits or more in exponent form.
    local x = string.format('%d:', expiry_set) .. (low and string.format('%d', low) or '')
        .. string.format(':%d:%d', at, run_start)
    local written = {'seq', string.format('%d', seq), 'unread', string.format('%d', unread)}
    if x ~= fields[3] then
        written[#written + 1] = 'x'
        written[#written + 1] = x
    end
    local record_due = m.id and fields[4] ~= m.record_until
    if record_due then
        written[#written + 1] = m.record_field
        written[#written + 1] = m.record_until
    end
    redis.call('HSET', meta, unpack(written))
    if refresh then
        redis.call('EXPIRE', inbox, inbox_ttl)
        -- meta outlives the inbox so that seq does not restart at 1 soon after a user's messages expire.
        redis.call('EXPIRE', meta, 4 * inbox_ttl)
    end
    if m.id then
        redis.call('HSET', m.record, m.id, string.format('%d:', seq) .. m.body_hash)
        -- EXPIRE counted from the message's now rather than EXPIREAT: the gateway's clock, as every time here.
        if record_due then redis.call('EXPIRE', m.record, tonumber(m.record_until) - now_s) end
    end

    -- Publish once per distinct other node holding a session (or a long-poll, `GET /v1/users/{uid}/messages?wait=S`:
    -- node → unix s it waits until). The teller is made only when there is one: most users are on this node.
    local tell, published
    local function tell_other(owner)
        if owner == node then return end
        if not tell then tell, published = teller(node, m.uid .. '\n' .. element) end
        tell(owner)
    end
    for i = 2, #sessions, 2 do tell_other(session_node(sessions[i])) end
    for i = 1, #waiting, 2 do
        if (tonumber(waiting[i + 1]) or 0) < now_s then
            redis.call('HDEL', m.polls, waiting[i])
        else
            tell_other(waiting[i])
        end
    end
    if tokens and #tokens > 0 then notify(m, tokens, sessions, seq, unread) end
    return {seq, 0, unread, published and published() or 0, #sessions / 2, element}
end

local reply = {}
for i = 1, count do
    local ok, result = pcall(store, messages[i])
    if ok then
        reply[i] = result
    else
        -- redis.call raises a table {err = …}; anything else is a bug of this script.
        if type(result) == 'table' and result.err then reply[i] = result else reply[i] = {err = tostring(result)} end
    end
end
return reply
