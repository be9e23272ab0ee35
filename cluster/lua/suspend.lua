-- suspend.lua: Store.Suspend. ARGV: root, id, connID.
-- Returns {'kept', teardown} (paired: kept away, its handshakes ended),
-- {'removed', teardown} (unpaired: removed as by remove.lua), or
-- {'not_held'} when connID does not hold id or it is away already.
local id, conn = ARGV[2], ARGV[3]
if not has(id) or get(id, 'conn') ~= conn or get(id, 'away') == '1' then
  return {'not_held'}
end
if get(id, 'peer') == '' then
  return {'removed', drop(id)}
end
local rec = redis.call('HGETALL', dev_key(id))
local shakes = end_shakes(id)
redis.call('HSET', dev_key(id), 'away', '1')
return {'kept', {rec, {}, shakes}}
