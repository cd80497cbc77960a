-- bans.lua: adds or lifts a ban (SPEC §8) and bumps the version every node polls, in one step, so a node that
-- sees the new version reads the new list.
--
-- KEYS: 1 pg:{bans}, 2 pg:{bans}:v
-- ARGV: 1 `set` or `del`, 2 ban id, 3 the ban as JSON (`set` only)
-- Reply: `set`: the new version; `del`: the new version when the ban was there and is lifted, 0 when there was no
-- such ban (nothing written).

local bans, version, op, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if id == nil or id == '' then
    return redis.error_reply(arg_error('bans', 2, 'id', 'a non-empty string'))
end
if op == 'set' then
    local ban = ARGV[3]
    if ban == nil or string.sub(ban, 1, 1) ~= '{' then
        return redis.error_reply(arg_error('bans', 3, 'ban', 'a JSON object'))
    end
    redis.call('HSET', bans, id, ban)
    return redis.call('INCR', version)
elseif op == 'del' then
    if redis.call('HDEL', bans, id) == 0 then return 0 end
    return redis.call('INCR', version)
end
return redis.error_reply(arg_error('bans', 1, 'op', 'set or del, got ' .. tostring(op)))
