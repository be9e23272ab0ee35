// Pairing and unpairing between the generations: consent through events
// (generation 1) or acks (generation 2), the refusals the relay answers at
// once, P2P_UNREGISTER (told to both sides; see also unregister.test.mjs),
// and P2P_DISCONNECT when a side drops.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertQuiet, assertRelaying, bystanders, CLIENTS, expectRefused, expectRegisterRefused, expectServerError, fleet, gate,
  kindName, pairUp, uid, WAIT_MS,
} from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders({ gen: 2, version: 2, transport: 'websocket' }, { gen: 1, version: 4, transport: 'polling' });
});
after(() => by.close());

/** GENS is every (asker, target) generation combination. */
const GENS = [[1, 1], [1, 2], [2, 1], [2, 2]];

/** kinds spreads the client versions and transports over the combinations. */
function kinds(ga, gb, i) {
  return [{ gen: ga, ...CLIENTS[i % CLIENTS.length] }, { gen: gb, ...CLIENTS[(i + 1) % CLIENTS.length] }];
}

/** each runs body for every generation combination, with varied clients. */
function each(name, body) {
  GENS.forEach(([ga, gb], i) => {
    const [ka, kb] = kinds(ga, gb, i);
    test(`${name}: ${kindName(ka)} -> ${kindName(kb)}`, (t) => body(t, ka, kb));
  });
}

describe('pairing', { concurrency: 8 }, () => {
  each('re-registering with the current peer answers true without asking it', async (t, ka, kb) => {
    const f = fleet(t);
    const [a, b] = await f.pair(ka, kb);
    assert.equal(await a.register(b.id), true);
    await assertQuiet(a, b);
    await assertRelaying(a, b);
  });

  each('the target says no: false and REFUSED, both stay free', async (t, ka, kb) => {
    const f = fleet(t);
    const a = await f.connect(ka);
    const b = await f.connect(kb, { consent: () => false });
    await expectRegisterRefused(a, b.id, 'REFUSED');
    assert.equal((await b.asked.next()).src, a.id);
    assert.deepEqual(await b.answered.next(), { src: a.id, yes: false });
    assert.equal(a.target, null);
    assert.equal(b.target, null);
    // Both are free: each pairs with someone else.
    const c = await f.connect({ gen: 2 });
    await pairUp(a, c);
    b.consent = () => true;
    const d = await f.connect({ gen: 1, version: 2, transport: 'polling' });
    await pairUp(d, b);
    await assertQuiet(a, b, c, d);
  });

  each('an offline target: false and OFFLINE', async (t, ka) => {
    const f = fleet(t);
    const a = await f.connect(ka);
    await expectRegisterRefused(a, uid('nobody'), 'OFFLINE');
    await assertQuiet(a);
  });

  each('the device itself: false and SELF', async (t, ka) => {
    const f = fleet(t);
    const a = await f.connect(ka);
    await expectRegisterRefused(a, a.id, 'SELF');
    assert.equal(a.target, null);
    await assertQuiet(a);
  });

  each('a target paired with another device: false and BUSY, without asking it', async (t, ka, kb) => {
    const f = fleet(t);
    const [b, peer] = await f.pair(kb, { gen: 2 });
    const a = await f.connect(ka);
    await expectRegisterRefused(a, b.id, 'BUSY');
    await assertQuiet(a, b, peer);
    await assertRelaying(b, peer);
  });

  each('a source paired with another device must unregister first: BUSY', async (t, ka, kb) => {
    const f = fleet(t);
    const [a, peer] = await f.pair(ka, { gen: 1 });
    const b = await f.connect(kb);
    await expectRegisterRefused(a, b.id, 'BUSY');
    await assertQuiet(a, b, peer);
    assert.equal(a.target, peer.id, 'a refused request must not change the source\'s target');
    await assertRelaying(a, peer);
  });

  each('while a request is under way, its source and its target are BUSY', async (t, ka, kb) => {
    const f = fleet(t);
    const g = gate();
    const a = await f.connect(ka);
    const b = await f.connect(kb, { consent: g.consent });
    const pending = a.register(b.id);
    assert.equal(await g.held.next(), a.id);
    // A third device asks the target, and is asked by the source... both BUSY.
    const c = await f.connect({ gen: 2, version: 2, transport: 'polling' });
    await expectRegisterRefused(c, b.id, 'BUSY');
    await expectRegisterRefused(c, a.id, 'BUSY');
    // The source may not start a second request, nor the target one of its own.
    const d = await f.connect({ gen: 1 });
    assert.equal((await a.request('P2P_REGISTER', d.id))[0], false);
    await expectServerError(a, 'BUSY');
    assert.equal((await b.request('P2P_REGISTER', d.id))[0], false);
    await expectServerError(b, 'BUSY');
    // The first request still completes.
    g.release(true);
    assert.equal(await pending, true);
    assert.equal((await b.asked.next()).src, a.id);
    assert.deepEqual(await b.answered.next(), { src: a.id, yes: true });
    await assertRelaying(a, b);
    await assertQuiet(a, b, c, d);
  });

  each('the target drops while deciding: false and OFFLINE', async (t, ka, kb) => {
    const f = fleet(t);
    const g = gate();
    const a = await f.connect(ka);
    const b = await f.connect(kb, { consent: g.consent });
    const pending = a.register(b.id);
    await g.held.next();
    b.close();
    assert.equal(await pending, false);
    await expectServerError(a, 'OFFLINE');
    await assertQuiet(a);
  });

  each('the source drops while the target decides: a target that says yes is told P2P_DISCONNECT and stays free', async (t, ka, kb) => {
    const f = fleet(t);
    const g = gate();
    const a = await f.connect(ka);
    const b = await f.connect(kb, { consent: g.consent });
    const watcher = await f.connect({ gen: 2 });
    void a.register(b.id).catch(() => {});
    await g.held.next();
    a.close();
    // Once the relay has seen a leave, LIST_CLIENTS no longer lists it.
    await waitUntilGone(watcher, a.id);
    b.consent = () => true;
    g.release(true);
    assert.deepEqual(await b.answered.next(), { src: a.id, yes: true });
    await b.barrier();
    assert.equal(b.peerGone.length, 1, `${b.kind} accepted a request whose source had left and was not told P2P_DISCONNECT`);
    assert.equal(b.target, null);
    // And the target can pair again.
    const c = await f.connect({ gen: 2 });
    assert.equal(await c.register(b.id), true, `${b.kind} refused a new request: it still believes it is paired with ${a.id}`);
  });

  each('the peer drops: P2P_DISCONNECT, and its id can come back and pair again', async (t, ka, kb) => {
    const f = fleet(t);
    const [a, b] = await f.pair(ka, kb);
    b.close();
    assert.deepEqual(await a.peerGone.next(), []);
    assert.equal(a.target, null);
    const again = await f.connect(kb, { id: b.id });
    await pairUp(a, again);
    await assertRelaying(a, again);
    await assertQuiet(a, again);
  });

  each('both ask each other at once: both true, and both stay paired', async (t, ka, kb) => {
    const f = fleet(t);
    const a = await f.connect(ka);
    const b = await f.connect(kb);
    const [ra, rb] = await Promise.all([a.register(b.id), b.register(a.id)]);
    assert.equal(ra, true);
    assert.equal(rb, true);
    // Whichever the relay asked has answered; let its answer reach the relay.
    const asked = [a, b].filter((d) => d.asked.length > 0);
    for (const d of asked) await d.answered.next();
    await Promise.all([a.barrier(), b.barrier()]);
    const told = [a, b].filter((d) => d.peerGone.length > 0).map((d) => `${d.id} (${d.kind})`);
    assert.deepEqual(told, [], 'the relay paired them, yet told a side P2P_DISCONNECT');
    assert.equal(a.target, b.id);
    assert.equal(b.target, a.id);
    await assertRelaying(a, b);
    await assertRelaying(b, a);
  });
});

describe('generation 2 answers pairing requests through the ack: only true accepts', { concurrency: 8 }, () => {
  const answers = [
    ['no answer', []], ['"true"', ['true']], ['1', [1]], ['{ok: true}', [{ ok: true }]], ['[true]', [[true]]], ['null', [null]],
  ];
  for (const [name, answer] of answers) {
    test(`answering ${name}`, async (t) => {
      const f = fleet(t);
      const a = await f.connect({ gen: 1, version: 2, transport: 'polling' });
      const id = uid('raw');
      const s = await f.tryConnectRaw({ version: 4, transport: 'websocket' }, { clientId: id });
      s.on('P2P_REGISTER', (src, cb) => cb(...answer));
      await expectRegisterRefused(a, id, 'REFUSED');
      await assertQuiet(a);
    });
  }
});

describe('unpairing', { concurrency: 8 }, () => {
  for (const [i, [ga, gb]] of [[2, 2], [2, 1], [1, 2], [2, 2]].entries()) {
    const [ka, kb] = kinds(ga, gb, i);
    // The generation-2 side unregisters; in [1, 2] the target does.
    const [uk, pk] = ga === 2 ? [ka, kb] : [kb, ka];
    test(`${kindName(uk)} unregisters from ${kindName(pk)}: both are free, the peer is told in its words`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      const [u, p] = ga === 2 ? [a, b] : [b, a];
      assert.deepEqual(await u.unregister(), [true]);
      assert.equal(u.target, null);
      // The requester is told too (its streams end on it), before its ack.
      const mine = u.unregistered.take();
      assert.equal(mine.length, 1, 'the requester must be told P2P_UNREGISTER before its ack');
      assert.equal(typeof mine[0].callback, 'function', 'P2P_UNREGISTER must come with a callback');
      if (p.gen === 2) {
        const un = await p.unregistered.next();
        assert.equal(typeof un.callback, 'function', 'P2P_UNREGISTER must come with a callback');
        assert.deepEqual(un.rest, []);
      } else {
        assert.deepEqual(await p.peerGone.next(), []);
      }
      assert.equal(p.target, null);
      await assertQuiet(u, p);
      // They no longer relay to each other...
      const answer = await u.request('P2P_EMIT_ACKNOWLEDGE', u.relayRequest('after', []));
      assert.equal(u.relayRequest('after', []).targetClientId, null, 'the library cleared its target');
      await expectRefused(u, 'BAD_REQUEST', answer);
      const direct = await u.request('P2P_EMIT_ACKNOWLEDGE', { targetClientId: p.id, event: 'after', args: [] });
      await expectRefused(u, 'NOT_PAIRED', direct);
      // ...and each pairs with someone new.
      const [c, d] = await Promise.all([f.connect({ gen: 1 }), f.connect({ gen: 2, version: 2 })]);
      await pairUp(u, c);
      await pairUp(d, p);
      await assertRelaying(u, c);
      await assertRelaying(p, d);
    });
  }

  test('unregistering without an ack still ends the pair', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'polling' }, { gen: 2 });
    a.send('P2P_UNREGISTER');
    const un = await b.unregistered.next();
    assert.equal(typeof un.callback, 'function');
    const mine = await a.unregistered.next();
    assert.equal(typeof mine.callback, 'function', 'the requester is told too, with a callback');
    const c = await f.connect({ gen: 1 });
    await pairUp(c, b);
    await assertQuiet(a, b, c);
  });

  test('a generation-1 unregister is local: the relay keeps the pair until the device drops', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 1, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'polling' });
    a.unregister();
    assert.equal(a.target, null);
    // The relay still forwards to it, and it may not pair elsewhere.
    const still = a.inbox('still');
    b.emit('still', 'paired');
    assert.deepEqual((await still.next()).args, ['paired']);
    const c = await f.connect({ gen: 2 });
    await expectRegisterRefused(a, c.id, 'BUSY');
    // Dropping frees both.
    a.close();
    assert.deepEqual(await b.peerGone.next(), []);
    await pairUp(c, b);
    await assertQuiet(b, c);
  });

  test('the relay still serves the others', () => by.check());
});

/** waitUntilGone waits until LIST_CLIENTS, asked through dev, no longer lists id. */
async function waitUntilGone(dev, id) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const ids = await dev.listClients();
    if (!ids.includes(id)) return;
    if (Date.now() > deadline) throw new Error(`${id} still listed`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
