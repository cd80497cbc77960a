-- ack.lua: a device has every stored message up to seq (ACK). The cursor only moves forward, never past seq.
--
-- KEYS: 1 pg:{u:<uid>}:meta
-- ARGV: 1 device key, 2 seq
-- Reply: the device's cursor after the call: max(current, min(seq, meta.seq)).
--
-- is_integer and arg_error come from prelude.lua, which Script.swift puts before this text.

local text = ARGV[2]
if not is_integer(text) then
    return redis.error_reply(arg_error('ack', 2, 'seq', 'an integer, got ' .. tostring(text)))
end
local meta = KEYS[1]
local field = 'dev:' .. (ARGV[1] or '')
local fields = redis.call('HMGET', meta, 'seq', field)
local last = tonumber(fields[1]) or 0
local current = tonumber(fields[2]) or 0
local cursor = math.max(current, math.min(tonumber(text), last))
-- Unchanged (or no meta at all): no write, so an ACK never creates a meta hash without an expiry.
if cursor ~= current then redis.call('HSET', meta, field, cursor) end
return cursor
