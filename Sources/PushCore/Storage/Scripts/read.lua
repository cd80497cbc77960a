-- read.lua: the user has read every stored message up to seq (READ, POST /v1/users/{uid}/read).
--
-- KEYS: 1 pg:{u:<uid>}:inbox, 2 pg:{u:<uid>}:meta
-- ARGV: 1 seq
-- Reply: {unread, read}: read = max(read, min(seq, meta.seq)), unread = max(0, min(meta.seq - read, LLEN inbox)).
--
-- is_integer and arg_error come from prelude.lua, which Script.swift puts before this text.

local text = ARGV[1]
if not is_integer(text) then
    return redis.error_reply(arg_error('read', 1, 'seq', 'an integer, got ' .. tostring(text)))
end
local inbox, meta = KEYS[1], KEYS[2]
-- No meta: nothing was ever stored (or it all expired); writing would leave a hash without an expiry.
if redis.call('EXISTS', meta) == 0 then return {0, 0} end
local fields = redis.call('HMGET', meta, 'seq', 'read')
local last = tonumber(fields[1]) or 0
local read = math.max(tonumber(fields[2]) or 0, math.min(tonumber(text), last))
local unread = math.max(0, math.min(last - read, redis.call('LLEN', inbox)))
redis.call('HSET', meta, 'read', read, 'unread', unread)
return {unread, read}
