// Unregistering as the original generation-2 client awaits it. Its
// `await unregisterP2pTarget()` resolves with the ack of P2P_UNREGISTER, and
// its users then expect both sides to be free: the original relay sent
// P2P_UNREGISTER to both sides, each with the requester's own callback, so
// the ack came only once a client had handled the event (and the
// requester's streams ended on its own P2P_UNREGISTER). p2pd tells both
// sides, the requester at once, and answers the requester's ack when the
// peer has called back, or after a short bound for a peer that never does
// (see slowpeers.test.mjs); a generation-1 peer is told P2P_DISCONNECT.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Inbox } from '../lib/inbox.mjs';
import { assertQuiet, assertRelaying, bystanders, CLIENTS, fleet, kindName, pairUp, uid } from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders({ gen: 2, version: 4, transport: 'polling' }, { gen: 1, version: 2, transport: 'websocket' });
});
after(() => by.close());

/** COMBOS are (requester, peer) clients: each version and transport on each side. */
const COMBOS = CLIENTS.map((c, i) => [c, CLIENTS[(i + 1) % CLIENTS.length]]);

/**
 * holdingPeer connects a bare generation-2 socket that accepts every
 * pairing request and holds the callback of every P2P_UNREGISTER it gets:
 * unregs receives {args, callback} for each, to call when the test says.
 */
async function holdingPeer(f, kind) {
  const id = uid('holder');
  const socket = await f.tryConnectRaw(kind, { clientId: id });
  const unregs = new Inbox(`${id}: P2P_UNREGISTER`);
  socket.on('P2P_REGISTER', (src, cb) => cb(true));
  socket.on('P2P_UNREGISTER', (...args) => {
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    unregs.push({ args, callback });
  });
  return { id, socket, unregs };
}

/** settledFlag returns an object whose `settled` turns true once p settles. */
function settledFlag(p) {
  const flag = { settled: false };
  p.then(() => { flag.settled = true; }, () => { flag.settled = true; });
  return flag;
}

/** expectToldUnregister checks that dev got one P2P_UNREGISTER, with a callback and no arguments. */
function expectToldUnregister(dev, who) {
  const told = dev.unregistered.take();
  assert.equal(told.length, 1, `${who} ${dev.id} (${dev.kind}) got ${told.length} P2P_UNREGISTER, want 1`);
  assert.equal(typeof told[0].callback, 'function', 'P2P_UNREGISTER must come with a callback');
  assert.deepEqual(told[0].rest, [], 'P2P_UNREGISTER carries only the callback');
}

describe('the requester\'s ack waits for the peer', { concurrency: 8 }, () => {
  for (const [ku, kp] of COMBOS) {
    test(`${kindName({ gen: 2, ...ku })} unregisters from ${kindName({ gen: 2, ...kp })}: the ack comes after the peer's callback`, async (t) => {
      const f = fleet(t);
      const u = await f.connect({ gen: 2, ...ku });
      const p = await holdingPeer(f, kp);
      assert.equal(await u.register(p.id), true);

      const answer = u.request('P2P_UNREGISTER');
      const flag = settledFlag(answer);
      const held = await p.unregs.next();
      assert.deepEqual(held.args, [], 'the peer\'s P2P_UNREGISTER carries only the callback');
      assert.equal(typeof held.callback, 'function', 'the peer\'s P2P_UNREGISTER must come with a callback');
      // Everything the relay sent the requester before this round trip has
      // arrived: its own P2P_UNREGISTER, but not the ack.
      await u.barrier();
      assert.equal(flag.settled, false, 'the relay answered the requester before the peer called back');
      expectToldUnregister(u, 'the requester');

      held.callback();
      assert.deepEqual(await answer, [true]);
      await assertQuiet(u);
    });
  }

  test('a peer that drops while the requester waits: the ack answers true', async (t) => {
    const f = fleet(t);
    const u = await f.connect({ gen: 2, version: 2, transport: 'polling' });
    const p = await holdingPeer(f, { version: 4, transport: 'websocket' });
    assert.equal(await u.register(p.id), true);
    const answer = u.request('P2P_UNREGISTER');
    await p.unregs.next();
    p.socket.close();
    assert.deepEqual(await answer, [true]);
    expectToldUnregister(u, 'the requester');
    // What P2P_DISCONNECT it may get for the peer's drop is not checked:
    // the pair had already ended.
    u.peerGone.take();
    await assertQuiet(u);
  });
});

describe('when the requester\'s ack resolves, both sides are free', { concurrency: 8 }, () => {
  for (const [ku, kp] of COMBOS) {
    test(`${kindName({ gen: 2, ...ku })} and ${kindName({ gen: 2, ...kp })}`, async (t) => {
      const f = fleet(t);
      const [u, p] = await f.pair({ gen: 2, ...ku }, { gen: 2, ...kp });
      // What the original suite checks right after `await unregisterP2pTarget()`.
      assert.deepEqual(await u.request('P2P_UNREGISTER'), [true]);
      assert.equal(p.target, null, `the peer ${p.kind} still had its target when the requester's ack came`);
      expectToldUnregister(p, 'the peer');
      expectToldUnregister(u, 'the requester');
      u.target = null;
      // Both pair again at once: the peer with a newcomer (its client must
      // accept, so it must have cleared its target), the requester with
      // another device.
      const [c, d] = await Promise.all([f.connect({ gen: 2, version: 2, transport: 'websocket' }), f.connect({ gen: 2 })]);
      assert.equal(await c.register(p.id), true, 'the peer refused a newcomer right after the unregister');
      assert.equal(await u.register(d.id), true);
      await assertRelaying(c, p);
      await assertRelaying(u, d);
    });
  }

  test('the peer unregisters: the same, the other way round', async (t) => {
    const f = fleet(t);
    const [u, p] = await f.pair({ gen: 2, version: 4, transport: 'polling' }, { gen: 2, version: 2, transport: 'polling' });
    assert.deepEqual(await p.request('P2P_UNREGISTER'), [true]);
    assert.equal(u.target, null, 'the source still had its target when the peer\'s ack came');
    expectToldUnregister(u, 'the other side');
    expectToldUnregister(p, 'the requester');
    p.target = null;
    await pairUp(u, p);
    await assertRelaying(p, u);
  });
});

describe('the original suite\'s sequence', { concurrency: 8 }, () => {
  // test/mocha/client-plugin-test.js "should emit events to correct target":
  // 1 pairs with 2, sends, unregisters; 3 pairs with 1, 1 sends,
  // unregisters; 3 (the peer of that unregister) pairs with 2 at once.
  for (const [k1, k2] of COMBOS) {
    const k3 = { version: k1.version === 2 ? 4 : 2, transport: k2.transport };
    test(`${kindName({ gen: 2, ...k1 })}, ${kindName({ gen: 2, ...k2 })}, ${kindName({ gen: 2, ...k3 })}`, async (t) => {
      const f = fleet(t);
      const [c1, c2, c3] = await Promise.all([f.connect({ gen: 2, ...k1 }), f.connect({ gen: 2, ...k2 }), f.connect({ gen: 2, ...k3 })]);
      const to2 = c2.inbox('1to2');
      await pairUp(c1, c2);
      c1.emit('1to2', 'from1to2');
      assert.deepEqual((await to2.next()).args, ['from1to2']);
      assert.deepEqual(await c1.unregister(), [true]);

      const to3 = c3.inbox('1to3');
      assert.equal(c1.target, null);
      await pairUp(c3, c1);
      c1.emit('1to3', 'from1to3');
      assert.deepEqual((await to3.next()).args, ['from1to3']);
      assert.deepEqual(await c1.unregister(), [true]);

      // The original client throws here if its target is still set.
      assert.equal(c3.target, null, 'c3 still had its target when c1\'s unregister resolved');
      const from3 = c2.inbox('3to2');
      await pairUp(c3, c2);
      c3.emit('3to2', 'from3to2');
      assert.deepEqual((await from3.next()).args, ['from3to2']);
      assert.deepEqual(await c2.unregister(), [true]);
      assert.equal(c3.target, null, 'c3 still had its target when c2\'s unregister resolved');
    });
  }
});

describe('who is told', { concurrency: 8 }, () => {
  test('a generation-1 peer is told P2P_DISCONNECT, the requester P2P_UNREGISTER, and the ack answers true', async (t) => {
    const f = fleet(t);
    const [u, p] = await f.pair({ gen: 2, version: 2, transport: 'websocket' }, { gen: 1, version: 4, transport: 'polling' });
    assert.deepEqual(await u.request('P2P_UNREGISTER'), [true]);
    expectToldUnregister(u, 'the requester');
    assert.deepEqual(await p.peerGone.next(), []);
    assert.equal(p.target, null);
    u.target = null;
    const c = await f.connect({ gen: 2 });
    await pairUp(c, p);
    await pairUp(u, await f.connect({ gen: 1 }));
    await assertQuiet(u, p, c);
  });

  test('without an ack, both sides are still told', async (t) => {
    const f = fleet(t);
    const [u, p] = await f.pair({ gen: 2, version: 4, transport: 'websocket' }, { gen: 2, version: 2, transport: 'polling' });
    u.send('P2P_UNREGISTER');
    const mine = await u.unregistered.next();
    assert.equal(typeof mine.callback, 'function', 'the requester\'s P2P_UNREGISTER must come with a callback');
    const theirs = await p.unregistered.next();
    assert.equal(typeof theirs.callback, 'function');
    assert.equal(u.target, null);
    assert.equal(p.target, null);
    await assertQuiet(u, p);
  });

  test('the requester\'s P2P_UNREGISTER comes before the answers to its later requests', async (t) => {
    // The original client clears its target as it sends P2P_UNREGISTER and
    // may register with someone else before the ack: a P2P_UNREGISTER that
    // came after that answer would clear its new target.
    const f = fleet(t);
    const [u, p] = await f.pair({ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' });
    const c = await f.connect({ gen: 2, version: 4, transport: 'polling' });
    const unreg = u.request('P2P_UNREGISTER');
    u.target = null;
    assert.equal(await u.register(c.id), true);
    assert.equal((await c.asked.next()).src, u.id);
    assert.deepEqual(await c.answered.next(), { src: u.id, yes: true });
    assert.deepEqual(await unreg, [true]);
    await u.barrier();
    expectToldUnregister(u, 'the requester');
    assert.equal(u.target, c.id, 'the requester\'s P2P_UNREGISTER came after it had paired again');
    expectToldUnregister(p, 'the peer');
    await assertRelaying(u, c);
    await assertQuiet(u, p, c);
  });

  test('the relay still serves the others', () => by.check());
});
