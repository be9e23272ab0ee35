// Shutdown: when the relay stops, every paired device is told
// P2P_DISCONNECT, every device gets SERVER_ERROR SHUTTING_DOWN and is
// disconnected, and new devices are turned away. Needs a relay of its own
// with the operator endpoints under P2P_CONTROL_URL: it stops the relay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectDevice } from '../lib/device.mjs';
import { ConnectRefused } from '../lib/sio.mjs';
import { expectServerError, fleet, KINDS, RELAY_URL, uid } from './helpers.mjs';

const CONTROL = process.env.P2P_CONTROL_URL;
if (!CONTROL) throw new Error('P2P_CONTROL_URL is not set: these tests run through `go test ./compat/` (see compat/README.md)');

test('every device of every kind hears of the shutdown', async (t) => {
  const f = fleet(t);
  const pairs = await Promise.all(KINDS.slice(0, 4).map((k, i) => f.pair(k, KINDS[7 - i])));
  const loners = await Promise.all(KINDS.map((k) => f.connect(k)));

  const res = await fetch(`${CONTROL}/shutdown`, { method: 'POST' });
  assert.equal(res.status, 200);

  await Promise.all(pairs.flat().map(async (d) => {
    assert.deepEqual(await d.peerGone.next(), [], `${d.kind} was not told P2P_DISCONNECT`);
  }));
  await Promise.all([...pairs.flat(), ...loners].map(async (d) => {
    await expectServerError(d, 'SHUTTING_DOWN');
    await d.closed.next();
  }));

  // New devices are turned away: refused, or the connection fails.
  await assert.rejects(connectDevice(RELAY_URL, { id: uid('late') }), (err) => {
    if (err instanceof ConnectRefused) assert.equal(err.code, 'SHUTTING_DOWN');
    return true;
  });
});
