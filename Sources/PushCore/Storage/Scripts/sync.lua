-- sync.lua: the stored messages after a seq (SYNC, GET /v1/users/{uid}/messages, gap fill). Read-only.
--
-- KEYS: 1 pg:{u:<uid>}:inbox, 2 pg:{u:<uid>}:meta
-- ARGV: 1 after (N), 2 limit (L), 3 now (unix s)
-- Reply: {seq, element…}: unexpired elements with seq > N, at most L, oldest first. N at or beyond seq gives none;
--        N below the oldest kept starts at the oldest kept.

-- ARGV[i] as an integer, at least `min`; anything else is an error reply naming the argument.
local function int_arg(i, name, min)
    local text = ARGV[i]
    local what = 'ERR pushgw sync: ' .. name .. ' (ARGV[' .. i .. ']) must be '
    if not text or not string.match(text, '^%-?%d+$') then
        error({err = what .. 'an integer, got ' .. tostring(text)})
    end
    local value = tonumber(text)
    if min and value < min then error({err = what .. 'at least ' .. min .. ', got ' .. text}) end
    return value
end

-- Whether an element's expire_at (its fourth field; 0 = never) is at or before now.
local function is_expired(element, now_s)
    local at = tonumber(string.match(element, '^%d+:%d+:%d+:(%d+):'))
    return at ~= nil and at ~= 0 and at <= now_s
end

-- Appends the unexpired elements with seq > after, at most limit, oldest first. The inbox is contiguous and ends
-- at seq, so the index of a seq is computed; only when expired elements are skipped is a further window read.
local function append_range(out, inbox, seq, after, limit, now_s)
    local len = redis.call('LLEN', inbox)
    if len == 0 or after >= seq or limit <= 0 then return end
    local first = seq - len + 1
    local index = math.max(after + 1, first) - first
    local wanted = limit
    while wanted > 0 and index < len do
        local window = redis.call('LRANGE', inbox, index, index + wanted - 1)
        if #window == 0 then return end
        index = index + #window
        for _, element in ipairs(window) do
            if not is_expired(element, now_s) then
                out[#out + 1] = element
                wanted = wanted - 1
            end
        end
    end
end

local inbox, meta = KEYS[1], KEYS[2]
local after = int_arg(1, 'after')
local limit = int_arg(2, 'limit', 0)
local now_s = int_arg(3, 'now', 0)

local seq = tonumber(redis.call('HGET', meta, 'seq')) or 0
local reply = {seq}
append_range(reply, inbox, seq, after, limit, now_s)
return reply
