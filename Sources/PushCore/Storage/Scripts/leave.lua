-- leave.lua: a device's connection closed on this node: remove its session, unless it already reconnected to
-- another node (that node's newer value must stay).
--
-- KEYS: 1 pg:{u:<uid>}:sess
-- ARGV: 1 device key, 2 node id
-- Reply: 1 removed, 0 left alone (absent, or held by another node).

local sess, device, node = KEYS[1], ARGV[1] or '', ARGV[2] or ''
local value = redis.call('HGET', sess, device)
if value and string.sub(value, 1, #node + 1) == node .. '|' then
    redis.call('HDEL', sess, device)
    return 1
end
return 0
