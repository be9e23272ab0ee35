// A full relay (new): beyond its device limit, a connection is refused with
// SERVER_FULL, as each client version delivers refusals, and the devices
// already there carry on. Needs a relay of its own whose device limit is
// given in P2P_MAX_DEVICES.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConnectRefused, assertQuiet, assertRelaying, CLIENTS, envMillis, fleet, uid } from './helpers.mjs';

const MAX = envMillis('P2P_MAX_DEVICES');

test('beyond the device limit every client is refused with SERVER_FULL; a freed place can be taken', async (t) => {
  assert.equal(MAX % 2, 0, 'P2P_MAX_DEVICES must be even: the relay is filled with pairs');
  const f = fleet(t);
  const pairs = [];
  for (let i = 0; i < MAX / 2; i++) {
    const c = CLIENTS[i % CLIENTS.length];
    pairs.push(await f.pair({ gen: 1, ...c }, { gen: 2, ...CLIENTS[(i + 1) % CLIENTS.length] }));
  }
  for (const c of CLIENTS) {
    for (const key of ['deviceId', 'clientId']) {
      await assert.rejects(f.tryConnectRaw(c, { [key]: uid('extra') }), (err) => assertConnectRefused(err, c.version, 'SERVER_FULL'));
    }
  }
  for (const [a, b] of pairs) {
    await assertRelaying(a, b);
    await assertQuiet(a, b);
  }

  // One leaves; once the relay has processed it (its peer is told), its
  // place can be taken, by a device of any kind.
  const [gone, left] = pairs[0];
  gone.close();
  assert.deepEqual(await left.peerGone.next(), []);
  const newcomer = await f.connect({ gen: 2, version: 2, transport: 'polling' });
  assert.equal(await newcomer.register(left.id), true, `${newcomer.kind} could not pair`);
  await assertRelaying(newcomer, left);
  await assert.rejects(f.tryConnectRaw(CLIENTS[3], { clientId: uid('extra') }), (err) => assertConnectRefused(err, 4, 'SERVER_FULL'));
});
