-- begin_pair.lua: Store.BeginPair, once src ~= dst is checked. ARGV:
-- root, src, dst, since (for a pair made at once).
-- Returns {'shake', h}, {'already'}, {'crossed', h, pair}, or a refusal:
-- {'src_offline'}, {'dst_offline'}, {'src_paired', its peer},
-- {'dst_paired'}, {'src_asking', whom}, {'src_asked', by whom},
-- {'dst_pairing'}.
local src, dst, since = ARGV[2], ARGV[3], ARGV[4]
if not has(src) then return {'src_offline'} end
if not has(dst) then return {'dst_offline'} end
local speer = get(src, 'peer')
-- An away device that lost its peer waits only for its end.
if get(dst, 'away') == '1' and get(dst, 'peer') == '' then return {'dst_offline'} end
if speer == dst then return {'already'} end
if speer ~= '' then return {'src_paired', speer} end
if get(dst, 'peer') ~= '' then return {'dst_paired'} end

-- Both sides asking each other at once: the earlier request stands for
-- the later one's consent, so they pair now.
local dout = get(dst, 'out')
if dout ~= '' and redis.call('HGET', shake_key(dout), 'dst') == src then
  cancel(dout, dst, src)
  return {'crossed', dout, make_pair(dst, src, since)}
end

local sout, sin = get(src, 'out'), get(src, 'in')
if sout ~= '' then
  return {'src_asking', redis.call('HGET', shake_key(sout), 'dst') or ''}
end
if sin ~= '' then
  return {'src_asked', redis.call('HGET', shake_key(sin), 'src') or ''}
end
if dout ~= '' or get(dst, 'in') ~= '' then return {'dst_pairing'} end

local h = tostring(redis.call('INCR', root .. 'shake_seq'))
redis.call('HSET', shake_key(h), 'src', src, 'dst', dst)
redis.call('HSET', dev_key(src), 'out', h, 'pairing', dst)
redis.call('HSET', dev_key(dst), 'in', h, 'pairing', src)
return {'shake', h}
