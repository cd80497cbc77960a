-- sync.lua: the stored messages after a seq (SYNC, GET /v1/users/{uid}/messages, gap fill). Read-only.
--
-- KEYS: 1 pg:{u:<uid>}:inbox, 2 pg:{u:<uid>}:meta
-- ARGV: 1 after (N), 2 limit (L), 3 now (unix s)
-- Reply: {seq, element…}: unexpired elements with seq > N, at most L, oldest first. N at or beyond seq gives none;
--        N below the oldest kept starts at the oldest kept.
--
-- int_args and append_range come from prelude.lua, which Script.swift puts before this text.

local int_arg = int_args('sync')

local inbox, meta = KEYS[1], KEYS[2]
local after = int_arg(1, 'after')
local limit = int_arg(2, 'limit', 0)
local now_s = int_arg(3, 'now', 0)

local seq = tonumber(redis.call('HGET', meta, 'seq')) or 0
local reply = {seq}
append_range(reply, inbox, seq, after, limit, now_s)
return reply
