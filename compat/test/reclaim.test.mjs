// Reclaiming an id from a dead holder: a device whose process is frozen
// (SIGSTOP: its connection stays open, nothing answers on it), as a phone
// that loses its network, comes back from a new process under its id. The
// relay checks the holder within P2P_RECLAIM_CHECK_MS and admits the
// newcomer, back in the holder's pair. A holder that answers keeps its id,
// however often others claim it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { connectDevice } from '../lib/device.mjs';
import { assertConnectRefused, assertQuiet, assertRelaying, envMillis, fleet, KINDS, kindName, pairUp, RELAY_URL, uid } from './helpers.mjs';

const CHECK = envMillis('P2P_RECLAIM_CHECK_MS');
const HOLDER = fileURLToPath(new URL('../interop/hold-device.mjs', import.meta.url));

/**
 * frozenHolder connects id from a process of its own, then freezes it
 * (unless freeze is false: the caller does, when it is ready).
 */
async function frozenHolder(t, id, { gen, version, transport }, { freeze = true } = {}) {
  const child = spawn(process.execPath, [HOLDER, '--url', RELAY_URL, '--id', id, '--gen', String(gen), '--version', String(version), '--transport', transport], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  const [line] = await once(child.stdout, 'data');
  assert.equal(String(line).trim(), 'connected', `the holder of ${id} did not connect`);
  if (freeze) child.kill('SIGSTOP');
  return child;
}

for (const kind of KINDS) {
  test(`${kindName(kind)}: a frozen device's id is reclaimed`, async (t) => {
    const f = fleet(t);
    const id = uid('frozen');
    const peer = await f.connect({ gen: 2, version: 4, transport: 'websocket' });
    await frozenHolder(t, id, kind);
    const start = Date.now();
    const back = await connectDevice(RELAY_URL, { ...kind, id });
    t.after(() => back.close());
    const took = Date.now() - start;
    assert.ok(took < CHECK + 3000, `reclaimed after ${took} ms; the check takes at most ${CHECK} ms`);
    await pairUp(peer, back);
    await assertRelaying(peer, back);
  });

  test(`${kindName(kind)}: a paired device frozen and back keeps its pair`, async (t) => {
    const f = fleet(t);
    const id = uid('paired');
    const peer = await f.connect({ gen: 2, version: 4, transport: 'websocket' });
    const child = await frozenHolder(t, id, kind, { freeze: false });
    assert.equal(await peer.register(id), true, 'the holder did not accept the pairing');
    child.kill('SIGSTOP');
    const back = await connectDevice(RELAY_URL, { ...kind, id });
    t.after(() => back.close());
    back.target = peer.id; // what the device remembers
    await assertQuiet(peer, back);
    await assertRelaying(peer, back);
    await assertRelaying(back, peer);
  });
}

test('a live holder keeps its id against every kind of claim, many times', async (t) => {
  const f = fleet(t);
  for (const holderKind of KINDS) {
    const holder = await f.connect(holderKind);
    const peer = await f.connect({ gen: 2, version: 4, transport: 'websocket' });
    await pairUp(peer, holder);
    for (const kind of KINDS) {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(connectDevice(RELAY_URL, { ...kind, id: holder.id }), (err) => {
          assertConnectRefused(err, kind.version, 'ID_IN_USE');
          return true;
        }, `${kindName(kind)} took the id of a live ${kindName(holderKind)} holder`);
      }
    }
    await assertQuiet(peer, holder);
    await assertRelaying(peer, holder);
  }
});
