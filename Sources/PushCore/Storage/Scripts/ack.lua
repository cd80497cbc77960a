-- ack.lua: devices have every stored message up to a seq (ACK), N of them in one call (the ACKs of one loop
-- iteration of the gateway). A cursor only moves forward, never past the user's seq.
--
-- KEYS: 1…N pg:{u:<uid>}:meta, one per ACK (a user may appear more than once)
-- ARGV: 2i − 1 device key, 2i seq, for ACK i
-- Reply: one integer per ACK, in order: the device's cursor after it, max(current, min(seq, meta.seq)).
--        Every seq is checked before anything is written: a bad one is an error reply for the whole call.
--
-- is_integer and arg_error come from prelude.lua, which Script.swift puts before this text.

for i = 1, #KEYS do
    local text = ARGV[2 * i]
    if not is_integer(text) then
        return redis.error_reply(arg_error('ack', 2 * i, 'seq', 'an integer, got ' .. tostring(text)))
    end
end
local reply = {}
for i = 1, #KEYS do
    local meta = KEYS[i]
    local field = 'dev:' .. (ARGV[2 * i - 1] or '')
    local fields = redis.call('HMGET', meta, 'seq', field)
    local last = tonumber(fields[1]) or 0
    local current = tonumber(fields[2]) or 0
    local cursor = math.max(current, math.min(tonumber(ARGV[2 * i]), last))
    -- Unchanged (or no meta at all): no write, so an ACK never creates a meta hash without an expiry.
    if cursor ~= current then redis.call('HSET', meta, field, string.format('%d', cursor)) end
    reply[i] = cursor
end
return reply
