-- remove.lua: Store.Remove. ARGV: root, id, connID.
-- Returns {'removed', teardown}, or {'not_held'} when connID does not hold id.
local id, conn = ARGV[2], ARGV[3]
if not has(id) or get(id, 'conn') ~= conn then
  return {'not_held'}
end
return {'removed', drop(id)}
