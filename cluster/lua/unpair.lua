-- unpair.lua: Store.Unpair. ARGV: root, id.
-- Returns {'unpaired', a, b, since} or {'not_paired'}.
local a, b, since = find_pair(ARGV[2])
if not a then return {'not_paired'} end
unpair(a, b)
return {'unpaired', a, b, since}
