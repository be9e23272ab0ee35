// Limits: a message over the relay's message-size limit costs only its
// sender the connection; its peer is told P2P_DISCONNECT and everyone else
// carries on. Needs a relay whose limit is given in P2P_MAX_MESSAGE_BYTES.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertQuiet, bystanders, CLIENTS, envMillis, fleet, kindName } from './helpers.mjs';

const LIMIT = envMillis('P2P_MAX_MESSAGE_BYTES');

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

describe('messages and the size limit', { concurrency: 8 }, () => {
  for (const c of CLIENTS) {
    for (const gen of [1, 2]) {
      const k = { gen, ...c };
      const peer = { gen: 3 - gen, version: c.version === 2 ? 4 : 2, transport: c.transport === 'polling' ? 'websocket' : 'polling' };
      test(`${kindName(k)}: a message under the limit is relayed`, async (t) => {
        const f = fleet(t);
        const [x, y] = await f.pair(k, peer);
        const text = 'ü'.repeat(Math.floor(LIMIT / 4));
        const bin = Buffer.alloc(Math.floor(LIMIT / 2), 7);
        const box = y.inbox('under');
        x.emit('under', text);
        assert.equal((await box.next()).args[0], text);
        x.emit('under', bin);
        assert.deepEqual((await box.next()).args[0], bin);
        await assertQuiet(x, y);
      });

      for (const [what, arg] of [['text', () => 'x'.repeat(LIMIT + 1024)], ['binary', () => Buffer.alloc(LIMIT + 1024, 1)]]) {
        test(`${kindName(k)}: ${what} over the limit closes only the sender`, async (t) => {
          const f = fleet(t);
          const [x, y] = await f.pair(k, peer);
          const box = y.inbox('over');
          x.emit('over', arg());
          await x.closed.next();
          assert.deepEqual(await y.peerGone.next(), []);
          assert.equal(box.length, 0, 'the oversized message was relayed');
          await assertQuiet(y);
          // The peer is free, and the sender's id with it.
          const again = await f.connect(k, { id: x.id });
          assert.equal(await again.register(y.id), true);
          await by.check();
        });
      }
    }
  }
});
