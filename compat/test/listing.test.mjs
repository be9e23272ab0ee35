// Listing: LIST_CLIENTS answers an array of the connected ids (generation
// 2), and the new P2P_LIST_DEVICES answers [{id, available}].
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertQuiet, CLIENTS, fleet, gate, KINDS, kindName } from './helpers.mjs';

describe('LIST_CLIENTS', { concurrency: 4 }, () => {
  for (const c of CLIENTS) {
    test(`asked from ${kindName({ gen: 2, ...c })}: every kind is listed, once, until it leaves`, async (t) => {
      const f = fleet(t);
      const asker = await f.connect({ gen: 2, ...c });
      const devs = await Promise.all(KINDS.map((k) => f.connect(k)));
      const ids = await asker.listClients();
      assert.ok(Array.isArray(ids), `LIST_CLIENTS answered ${JSON.stringify(ids)}`);
      assert.ok(ids.every((id) => typeof id === 'string'), 'ids must be strings');
      assert.equal(new Set(ids).size, ids.length, 'an id is listed twice');
      for (const d of [asker, ...devs]) assert.ok(ids.includes(d.id), `${d.id} (${d.kind}) is not listed`);

      // A device that leaves is no longer listed once the relay has
      // processed its leave, which its peer learns from P2P_DISCONNECT.
      const [x, y] = await f.pair(KINDS[0], KINDS[KINDS.length - 1]);
      x.close();
      await y.peerGone.next();
      const after = await asker.listClients();
      assert.ok(!after.includes(x.id), `${x.id} is still listed after it left`);
      assert.ok(after.includes(y.id));
      await assertQuiet(asker, y);
    });
  }

  test('a generation-1 device may list too', async (t) => {
    const f = fleet(t);
    const g1 = await f.connect({ gen: 1, version: 2, transport: 'polling' });
    const [ids] = await g1.request('LIST_CLIENTS');
    assert.ok(ids.includes(g1.id));
  });
});

describe('P2P_LIST_DEVICES', () => {
  test('lists devices with their availability, all or only the available ones', async (t) => {
    const f = fleet(t);
    const g = gate();
    const asker = await f.connect({ gen: 2, version: 2, transport: 'websocket' });
    const [p1, p2] = await f.pair({ gen: 1 }, { gen: 2, version: 2, transport: 'polling' });
    const free = await f.connect({ gen: 1, version: 4, transport: 'polling' });
    const src = await f.connect({ gen: 2 });
    const deciding = await f.connect({ gen: 2 }, { consent: g.consent });
    const pending = src.register(deciding.id);
    await g.held.next();

    const [all] = await asker.request('P2P_LIST_DEVICES');
    const avail = (id) => all.find((e) => e.id === id)?.available;
    for (const e of all) assert.deepEqual(Object.keys(e).sort(), ['available', 'id']);
    assert.equal(avail(asker.id), true);
    assert.equal(avail(free.id), true);
    assert.equal(avail(p1.id), false, 'a paired device is not available');
    assert.equal(avail(p2.id), false);
    assert.equal(avail(src.id), false, 'a device asking to pair is not available');
    assert.equal(avail(deciding.id), false, 'a device being asked is not available');

    const [only] = await asker.request('P2P_LIST_DEVICES', { available: true });
    const ids = only.map((e) => e.id);
    assert.ok(only.every((e) => e.available === true));
    assert.ok(ids.includes(free.id) && ids.includes(asker.id));
    assert.ok(!ids.includes(p1.id) && !ids.includes(src.id) && !ids.includes(deciding.id));

    g.release(true);
    assert.equal(await pending, true);
    const [later] = await asker.request('P2P_LIST_DEVICES', { available: false });
    assert.equal(later.find((e) => e.id === src.id)?.available, false);
    assert.ok(later.some((e) => e.id === free.id), '{available: false} lists every device');
  });
});
