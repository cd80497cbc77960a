-- user.lua: one user's counters and sessions (GET /v1/users/{uid}). Read-only.
--
-- KEYS: 1 pg:{u:<uid>}:meta, 2 pg:{u:<uid>}:sess, 3 pg:{u:<uid>}:inbox
-- Reply: {seq, unread, read, kept (LLEN inbox), device key, `<node>|<platform>|<since>`, key, value, …}

local meta, sess, inbox = KEYS[1], KEYS[2], KEYS[3]
local fields = redis.call('HMGET', meta, 'seq', 'unread', 'read')
local kept = redis.call('LLEN', inbox)
-- Unread never exceeds what is kept: the inbox may have expired as a whole since the count was made.
local reply = {tonumber(fields[1]) or 0, math.min(tonumber(fields[2]) or 0, kept), tonumber(fields[3]) or 0, kept}
local sessions = redis.call('HGETALL', sess)
for i = 1, #sessions do reply[#reply + 1] = sessions[i] end
return reply
