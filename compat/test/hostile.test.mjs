// Hostile payloads (new): deeply nested arguments, and an ack answered
// twice. The offender gets its code (or nothing more than it asked for),
// its peer and everyone else carry on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertQuiet, assertRelaying, bystanders, CLIENTS, expectAckError, expectServerError, fleet, kindName } from './helpers.mjs';

/** nest wraps leaf in depth arrays. */
function nest(depth, leaf = 'leaf') {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

describe('hostile payloads', { concurrency: 4 }, () => {
  for (const c of CLIENTS) {
    const kind = { gen: 2, ...c };
    test(`${kindName(kind)}: arguments nested 50 deep are relayed unchanged`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(kind, { gen: 1, version: c.version === 2 ? 4 : 2 });
      const box = y.inbox('deep');
      const deep = nest(50, { k: nest(20) });
      x.emit('deep', deep);
      assert.deepEqual((await box.next()).args, [deep]);
    });

    test(`${kindName(kind)}: arguments nested 150 deep are refused BAD_REQUEST, with and without an ack`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(kind, { gen: 2 });
      const box = y.inbox('too-deep');
      x.emit('too-deep', nest(150));
      await expectServerError(x, 'BAD_REQUEST');
      const answer = await x.emitWithAck('too-deep', { inner: nest(150) });
      const msg = await expectServerError(x, 'BAD_REQUEST');
      assert.equal(expectAckError(answer, 'BAD_REQUEST'), msg);
      assert.deepEqual(box.take(), [], 'a refused request reached the peer');
      await assertQuiet(y);
      await assertRelaying(x, y);
      await by.check();
    });

    test(`${kindName(kind)}: a peer that answers an ack twice: the sender gets the first answer, once`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(kind, { gen: 2, version: c.version });
      const box = y.inbox('twice');
      const answer = x.emitWithAck('twice', 1);
      const m = await box.next();
      m.ack('first');
      m.ack('second');
      assert.deepEqual(await answer, ['first']);
      await assertQuiet(x, y);
      await assertRelaying(y, x);
      await by.check();
    });
  }
});
