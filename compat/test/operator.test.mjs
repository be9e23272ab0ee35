// Pairs the relay ends by itself (new): an operator breaks a pair or kicks
// a device, or a new connection takes over a live device's id. Each
// remaining side is told in words its generation understands: generation 1
// only knows P2P_DISCONNECT; generation 2 gets P2P_UNREGISTER (with a
// callback) or P2P_DISCONNECT. Needs a relay with the takeover policy for
// duplicate ids and the operator endpoints under P2P_CONTROL_URL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertQuiet, assertRelaying, bystanders, expectServerError, fleet, KINDS, kindName, pairUp } from './helpers.mjs';

const CONTROL = process.env.P2P_CONTROL_URL;
if (!CONTROL) throw new Error('P2P_CONTROL_URL is not set: these tests run through `go test ./compat/` (see compat/README.md)');

/** operate asks the relay's operator endpoint to act on device id. */
async function operate(action, id) {
  const res = await fetch(`${CONTROL}/${action}?id=${encodeURIComponent(id)}`, { method: 'POST' });
  const body = await res.json();
  assert.equal(res.status, 200, `${action} ${id}: ${JSON.stringify(body)}`);
}

/** expectTold checks that dev learned its pair ended, in its generation's words. */
async function expectTold(dev) {
  if (dev.gen === 1) {
    assert.deepEqual(await dev.peerGone.next(), []);
  } else {
    const un = await dev.unregistered.next();
    assert.equal(typeof un.callback, 'function', 'P2P_UNREGISTER must come with a callback');
  }
  assert.equal(dev.target, null);
}

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

/** PAIRS puts every kind on each side at least once, across generations. */
const PAIRS = KINDS.map((k, i) => [k, KINDS[(i + 3) % KINDS.length]]);

describe('the relay ends pairs by itself', { concurrency: 8 }, () => {
  for (const [ka, kb] of PAIRS) {
    test(`an operator breaks ${kindName(ka)} and ${kindName(kb)}`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      const strays = [a, b].filter((d) => d.gen === 1).map((d) => d.inbox('P2P_UNREGISTER'));
      await operate('unpair', a.id);
      await expectTold(a);
      await expectTold(b);
      await assertQuiet(a, b);
      for (const s of strays) assert.equal(s.length, 0, 'a generation-1 device got P2P_UNREGISTER');
      // Both are free.
      const [c, d] = await Promise.all([f.connect({ gen: 2 }), f.connect({ gen: 1 })]);
      await pairUp(a, c);
      await pairUp(d, b);
      await assertRelaying(a, c);
    });

    test(`an operator kicks ${kindName(ka)}, paired with ${kindName(kb)}`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      await operate('kick', a.id);
      await expectServerError(a, 'KICKED');
      await a.closed.next();
      assert.deepEqual(await b.peerGone.next(), []);
      assert.equal(b.target, null);
      await assertQuiet(b);
      const again = await f.connect(ka, { id: a.id });
      await pairUp(again, b);
    });

    test(`${kindName(kb)} takes over the id of ${kindName(ka)}, paired`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, { gen: 2, version: 2, transport: 'polling' });
      const newcomer = await f.connect(kb, { id: a.id });
      await expectServerError(a, 'TAKEN_OVER');
      await a.closed.next();
      assert.deepEqual(await b.peerGone.next(), []);
      assert.equal(b.target, null);
      await assertQuiet(newcomer, b);
      // The newcomer starts unpaired.
      await pairUp(b, newcomer);
      await assertRelaying(b, newcomer);
    });
  }
  test('the relay still serves the others', () => by.check());
});
