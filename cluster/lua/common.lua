-- common.lua: the helpers every Store script starts with (store.go
-- prepends this file to each one). They mirror server/memstore.go: read
-- the two side by side.
--
-- KEYS[1] is the set of device ids, root .. 'devs': it routes the script
-- to the hash slot that every key of the store shares. ARGV[1] is root,
-- '{prefix}:'; the other keys are named from it (see the key layout in
-- store.go).
local root = ARGV[1]
local devs_key = KEYS[1]
local pairs_key = root .. 'pairs'

local function dev_key(id) return root .. 'dev:' .. id end
local function node_key(node) return root .. 'node:' .. node end
local function shake_key(h) return root .. 'hs:' .. h end

-- has reports whether device id has a record.
local function has(id)
  return redis.call('EXISTS', dev_key(id)) == 1
end

-- get returns field f of device id's record: '' when unset or when the
-- device has no record.
local function get(id, f)
  return redis.call('HGET', dev_key(id), f) or ''
end

-- cancel forgets handshake h, in which src asked dst, on both sides.
local function cancel(h, src, dst)
  redis.call('DEL', shake_key(h))
  if get(src, 'out') == h then
    redis.call('HSET', dev_key(src), 'out', '', 'pairing', '')
  end
  if get(dst, 'in') == h then
    redis.call('HSET', dev_key(dst), 'in', '', 'pairing', '')
  end
end

-- end_shakes ends the handshakes device id takes part in (the one it
-- started, then the one it is asked in) and returns them, flat:
-- {h, src, dst, h, src, dst}.
local function end_shakes(id)
  local ended = {}
  for _, h in ipairs({get(id, 'out'), get(id, 'in')}) do
    if h ~= '' then
      local s = redis.call('HMGET', shake_key(h), 'src', 'dst')
      if s[1] then
        table.insert(ended, h)
        table.insert(ended, s[1])
        table.insert(ended, s[2])
        cancel(h, s[1], s[2])
      end
    end
  end
  return ended
end

-- make_pair pairs a (the asker) with b, both free, and returns the pair:
-- {a, b, since}.
local function make_pair(a, b, since)
  redis.call('HSET', pairs_key, a, since .. ' ' .. b)
  redis.call('HSET', dev_key(a), 'peer', b)
  redis.call('HSET', dev_key(b), 'peer', a)
  return {a, b, since}
end

-- find_pair returns the pair device id is in, as a, b, since; nil when
-- it has none. The pairs hash is keyed by the asker, a.
local function find_pair(id)
  local peer = get(id, 'peer')
  if peer == '' then return nil end
  for _, side in ipairs({{id, peer}, {peer, id}}) do
    local v = redis.call('HGET', pairs_key, side[1])
    if v then
      local sp = string.find(v, ' ', 1, true)
      if string.sub(v, sp + 1) == side[2] then
        return side[1], side[2], string.sub(v, 1, sp - 1)
      end
    end
  end
  return nil
end

-- unpair ends the pair of a (the asker) and b.
local function unpair(a, b)
  redis.call('HDEL', pairs_key, a)
  if get(a, 'peer') == b then redis.call('HSET', dev_key(a), 'peer', '') end
  if get(b, 'peer') == a then redis.call('HSET', dev_key(b), 'peer', '') end
end

-- drop removes device id with its pair and handshakes, and returns the
-- teardown: {record as it was (HGETALL), pair ({} when none), handshakes}.
local function drop(id)
  local rec = redis.call('HGETALL', dev_key(id))
  local node = get(id, 'node')
  local p = {}
  local a, b, since = find_pair(id)
  if a then
    unpair(a, b)
    p = {a, b, since}
  end
  local shakes = end_shakes(id)
  redis.call('DEL', dev_key(id))
  redis.call('SREM', devs_key, id)
  redis.call('SREM', node_key(node), id)
  return {rec, p, shakes}
end
