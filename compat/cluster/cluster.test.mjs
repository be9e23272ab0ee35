// p2pd on several nodes sharing Redis, with the original JavaScript
// clients spread over the nodes, directly (P2P_NODES) and through HAProxy
// (P2P_LB). P2P_CLUSTER_CONTROL is the harness (compat/cluster_test.go):
// it kills, stops and starts nodes and Redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectDevice } from '../lib/device.mjs';
import { assertConnectRefused, assertQuiet, assertRelaying, pairUp, uid } from '../test/helpers.mjs';

const NODES = (process.env.P2P_NODES || '').split(',').filter(Boolean);
const LB = process.env.P2P_LB;
const CONTROL = process.env.P2P_CLUSTER_CONTROL;
if (NODES.length < 3 || !LB || !CONTROL) throw new Error('P2P_NODES (3), P2P_LB and P2P_CLUSTER_CONTROL must be set: run through `go test ./compat/` (see compat/README.md)');

const KINDS = [
  { gen: 1, version: 2, transport: 'websocket' },
  { gen: 2, version: 2, transport: 'polling' },
  { gen: 2, version: 4, transport: 'websocket' },
];
const name = (k) => `gen${k.gen}/sio${k.version}/${k.transport}`;

async function control(path) {
  const res = await fetch(`${CONTROL}${path}`, { method: 'POST' });
  const body = await res.json();
  assert.ok(body.ok, `control ${path}: ${body.error}`);
  return body;
}

/** devices connects devices and closes them when the test ends. */
function devices(t) {
  const all = [];
  t.after(() => all.forEach((d) => d.close()));
  return async (url, kind, opts = {}) => {
    const d = await connectDevice(url, { ...kind, id: opts.id ?? uid('c'), ...opts });
    all.push(d);
    return d;
  };
}

for (const ka of KINDS) {
  for (const kb of KINDS) {
    test(`${name(ka)} on node 1 and ${name(kb)} on node 2 pair and relay both ways`, async (t) => {
      const connect = devices(t);
      const a = await connect(NODES[0], ka);
      const b = await connect(NODES[1], kb);
      await pairUp(a, b);
      await assertRelaying(a, b);
      await assertRelaying(b, a);
      // Several values in an ack, and binary, cross unchanged.
      const box = b.inbox('multi');
      const answer = a.emitWithAck('multi', Buffer.from([0, 1, 254, 255]), { k: [1, 'two'] });
      const got = await box.next();
      assert.deepEqual([...got.args[0]], [0, 1, 254, 255]);
      assert.deepEqual(got.args[1], { k: [1, 'two'] });
      got.ack('one', 2, { three: [3] }, null);
      assert.deepEqual(await answer, ['one', 2, { three: [3] }, null]);
      await assertQuiet(a, b);
      if (a.gen === 2) {
        assert.deepEqual(await a.unregister(), [true]);
        if (b.gen === 2) {
          assert.equal(b.target, null, 'the peer still has its target when the unregister resolved');
          await b.unregistered.next();
        } else {
          await b.peerGone.next(); // generation 1 cannot answer: told, not awaited
        }
      }
    });
  }
}

test('requests crossed across nodes pair at once', async (t) => {
  const connect = devices(t);
  const a = await connect(NODES[0], KINDS[2]);
  const b = await connect(NODES[2], KINDS[2]);
  const [ra, rb] = await Promise.all([a.register(b.id), b.register(a.id)]);
  assert.deepEqual([ra, rb, a.serverErrors.take(), b.serverErrors.take()], [true, true, [], []]);
  await assertRelaying(a, b);
});

test('an id is unique across the cluster, and listed by every node', async (t) => {
  const connect = devices(t);
  const a = await connect(NODES[0], KINDS[2]);
  for (const url of [NODES[1], NODES[2]]) {
    await assert.rejects(connectDevice(url, { ...KINDS[2], id: a.id }), (err) => assertConnectRefused(err, 4, 'ID_IN_USE'));
  }
  const b = await connect(NODES[2], KINDS[1]);
  for (const d of [a, b]) {
    const ids = await d.listClients();
    assert.ok(ids.includes(a.id) && ids.includes(b.id), `${d.id} listed ${ids}`);
  }
});

test('through the load balancer, polling then upgrade', async (t) => {
  const connect = devices(t);
  const a = await connect(LB, { gen: 2, version: 2, transport: 'auto' });
  const b = await connect(LB, { gen: 1, version: 2, transport: 'auto' });
  const c = await connect(LB, { gen: 2, version: 4, transport: 'auto' });
  await pairUp(a, b);
  await assertRelaying(a, b);
  await assertRelaying(b, a);
  await assertRelaying(a, b); // after the upgrade, surely
  assert.deepEqual(await a.unregister(), [true]);
  await pairUp(c, a);
  await assertRelaying(c, a);
});

test('a node killed under traffic: peers told, acks answered, ids free', async (t) => {
  const connect = devices(t);
  const a = await connect(NODES[0], KINDS[2]);
  const b = await connect(NODES[2], KINDS[2]);
  const c = await connect(NODES[2], KINDS[1]);
  await pairUp(a, b);
  const box = b.inbox('owed');
  const answer = a.emitWithAck('owed');
  await box.next(); // b holds the ack, and its node dies
  const start = Date.now();
  await control('/node/kill?n=3');
  t.after(() => control('/node/start?n=3'));
  const [answered] = await answer;
  assert.equal(answered?.error?.code, 'OFFLINE', `the ack owed by a device of the dead node answered ${JSON.stringify(answered)}`);
  assert.deepEqual(await a.peerGone.next(), []);
  assert.ok(Date.now() - start < 8000, `the peer was told after ${Date.now() - start} ms`);
  // Their ids are free on the other nodes.
  await connect(NODES[1], KINDS[2], { id: b.id });
  await connect(NODES[0], KINDS[1], { id: c.id });
});

test('a node stopped with SIGTERM: its devices come back through the balancer, their pairs intact', async (t) => {
  const connect = devices(t);
  const peers = [];
  const movers = [];
  for (let i = 0; i < 6; i++) {
    const id = uid('mv');
    const m = await connect(LB, { gen: 2, version: 4, transport: 'websocket' }, { id, reconnection: true });
    movers.push(m);
  }
  // Pair each with a device on node 1, directly.
  for (const m of movers) {
    const p = await connect(NODES[0], KINDS[2]);
    await pairUp(p, m);
    peers.push(p);
  }
  const where = await control('/devices');
  const onNode2 = movers.filter((m) => where.nodes[m.id] === 'n2');
  assert.ok(onNode2.length > 0, 'no device landed on node 2: the balancer does not spread them');
  const back = onNode2.map((m) => m.reconnected());
  await control('/node/term?n=2');
  t.after(() => control('/node/start?n=2'));
  await Promise.all(back);
  for (const [i, m] of movers.entries()) {
    await assertRelaying(peers[i], m);
    await assertRelaying(m, peers[i]);
  }
  for (const p of peers) assert.deepEqual(p.peerGone.take(), [], `${p.id} was told its peer left`);
});

test('Redis stopped: the nodes fence themselves; started again: they serve again', async (t) => {
  const connect = devices(t);
  await control('/redis/stop');
  t.after(() => control('/redis/start'));
  const health = async (url) => (await fetch(`${url}/healthz`)).status;
  for (let deadline = Date.now() + 10000; ; ) {
    const codes = await Promise.all(NODES.map(health));
    if (codes.every((c) => c === 503)) break;
    assert.ok(Date.now() < deadline, `healthz said ${codes} with Redis down`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await control('/redis/start');
  for (let deadline = Date.now() + 10000; ; ) {
    const codes = await Promise.all(NODES.map(health));
    if (codes.every((c) => c === 200)) break;
    assert.ok(Date.now() < deadline, `healthz said ${codes} with Redis back`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const a = await connect(NODES[0], KINDS[2]);
  const b = await connect(NODES[1], KINDS[0]);
  await pairUp(a, b);
  await assertRelaying(a, b);
});
