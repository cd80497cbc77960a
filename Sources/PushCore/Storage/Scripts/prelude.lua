-- prelude.lua: the helpers several scripts share. Not a script of its own: Script.swift puts this text before
-- each script's, and the SHA-1 that EVALSHA names a script by is taken over both (so an edit here changes every
-- script's SHA, and the gateway loads them all again at connect).

-- The error text for a bad ARGV[i] of `script`: `ERR pushgw <script>: <name> (ARGV[i]) must be <rule>`.
local function arg_error(script, i, name, rule)
    return 'ERR pushgw ' .. script .. ': ' .. name .. ' (ARGV[' .. i .. ']) must be ' .. rule
end

-- Whether `text` is a decimal integer, possibly negative. string.find rather than string.match: no capture string
-- is made (this runs for several arguments of every stored message).
local function is_integer(text)
    return text ~= nil and string.find(text, '^%-?%d+$') ~= nil
end

-- Returns int_arg(i, name, min) for `script`: ARGV[i] as an integer, at least `min`; anything else is an error
-- reply naming the argument.
local function int_args(script)
    return function(i, name, min)
        local text = ARGV[i]
        if not is_integer(text) then
            error({err = arg_error(script, i, name, 'an integer, got ' .. tostring(text))})
        end
        local value = tonumber(text)
        if min and value < min then
            error({err = arg_error(script, i, name, 'at least ' .. min .. ', got ' .. text)})
        end
        return value
    end
end

-- An inbox element's expire_at (its fourth field, unix s; 0 = never), nil when it has none.
local function expire_at(element)
    return tonumber(string.match(element, '^%d+:%d+:%d+:(%d+):'))
end

-- Whether an element's expire_at is at or before now.
local function is_expired(element, now_s)
    local at = expire_at(element)
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

-- The node holding a session: a session value is `<node>|<platform>|<since>`, and a node id holds no `|`.
local function session_node(value)
    local bar = string.find(value, '|', 1, true)
    return bar and string.sub(value, 1, bar - 1) or value
end

-- Returns tell(owner), which publishes `message` on the channel `pg:node:<owner>` (RedisKeys.nodeChannel) once per
-- distinct owner other than `node`, and published(), how many nodes it published to so far. `message` may be a
-- function returning it, called only when there is someone to tell (most stores have no other node to tell).
local function teller(node, message)
    local seen, published = {}, 0
    local function tell(owner)
        if owner ~= node and not seen[owner] then
            seen[owner] = true
            if type(message) == 'function' then message = message() end
            redis.call('PUBLISH', 'pg:node:' .. owner, message)
            published = published + 1
        end
    end
    return tell, function() return published end
end
