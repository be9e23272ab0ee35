-- end_pair.lua: Store.EndPair. ARGV: root, h, accept ('1' or ''), since.
-- Returns {'settled', src, dst, pair ({} when refused)} or {'stale'}.
local h, accept, since = ARGV[2], ARGV[3] == '1', ARGV[4]
local s = redis.call('HMGET', shake_key(h), 'src', 'dst')
if not s[1] then return {'stale'} end
cancel(h, s[1], s[2])
local p = {}
if accept then p = make_pair(s[1], s[2], since) end
return {'settled', s[1], s[2], p}
