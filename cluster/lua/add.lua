-- add.lua: Store.Add. ARGV: root, id, takeover ('1' or ''), node, then
-- the new record's field/value pairs (those the caller owns).
-- Returns {'added'}, {'in_use'}, {'replaced', teardown} or
-- {'resumed', previous node, peer}.
local id, takeover, node = ARGV[2], ARGV[3] == '1', ARGV[4]
local key = dev_key(id)

local function write(peer)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, 5))
  redis.call('HSET', key, 'peer', peer, 'pairing', '', 'away', '', 'out', '', 'in', '')
  redis.call('SADD', devs_key, id)
  redis.call('SADD', node_key(node), id)
end

if not has(id) then
  write('')
  return {'added'}
end
if get(id, 'away') == '1' then
  -- Away within its resume window: the newcomer takes its place in its pair.
  local prev, peer = get(id, 'node'), get(id, 'peer')
  redis.call('SREM', node_key(prev), id)
  write(peer)
  return {'resumed', prev, peer}
end
if not takeover then
  return {'in_use'}
end
local td = drop(id)
write('')
return {'replaced', td}
