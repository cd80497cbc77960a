-- leave.lua: a device's connection closed on this node: remove its session, unless it already reconnected to
-- another node (that node's newer value must stay).
--
-- KEYS: 1 pg:{u:<uid>}:sess, 2 (with presence.events) the presence stream
-- ARGV: 1 device key, 2 node id, 3 uid
-- Reply: 1 removed, 0 left alone (absent, or held by another node).
-- With a presence stream, the user's last session leaving appends {user, event offline, ts} to it (SPEC §10).

local sess, presence, device, node = KEYS[1], KEYS[2], ARGV[1] or '', ARGV[2] or ''
local value = redis.call('HGET', sess, device)
if value and string.sub(value, 1, #node + 1) == node .. '|' then
    redis.call('HDEL', sess, device)
    if presence and redis.call('HLEN', sess) == 0 then
        local now = redis.call('TIME')[1]
        redis.call('XADD', presence, 'MAXLEN', '~', 100000, '*', 'user', ARGV[3] or '', 'event', 'offline', 'ts', now)
    end
    return 1
end
return 0
