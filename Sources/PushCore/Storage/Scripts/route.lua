-- route.lua: sends a transient push or a kick to every other node holding a session of one user (SPEC §5:
-- "transient pushes route the same way using the sessions hash"). One round trip per user.
--
-- KEYS: 1 pg:{u:<uid>}:sess
-- ARGV: 1 this node's id, 2 the message to publish on pg:node:<node>, 3 a device key ("" for every device)
-- Reply: {devices, published}: sessions that matched (on any node), distinct other nodes published to.
-- Session values are `<node>|<platform>|<since>`.
--
-- session_node and teller come from prelude.lua, which Script.swift puts before this text.

local node, message, device = ARGV[1] or '', ARGV[2] or '', ARGV[3] or ''
local sessions = redis.call('HGETALL', KEYS[1])
local tell, published = teller(node, message)
local devices = 0
for i = 1, #sessions, 2 do
    if device == '' or sessions[i] == device then
        devices = devices + 1
        tell(session_node(sessions[i + 1]))
    end
end
return {devices, published()}
