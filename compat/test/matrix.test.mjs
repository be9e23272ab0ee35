// Every device kind (generation x socket.io-client version x transport)
// pairs with every kind, relays both ways with and without acks, binary
// included, and learns of its peer's drop.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bigUnicode, fleet, KINDS, kindName, pairUp, assertQuiet } from './helpers.mjs';

const text = bigUnicode(2048);

describe('every kind pairs with every kind', { concurrency: 8 }, () => {
  for (const ka of KINDS) {
    for (const kb of KINDS) {
      test(`${kindName(ka)} asks ${kindName(kb)}`, async (t) => {
        const f = fleet(t);
        const [a, b] = await Promise.all([f.connect(ka), f.connect(kb)]);
        await pairUp(a, b);

        // Plain relay, asker to target.
        const greet = b.inbox('greet');
        a.emit('greet', 'hello', 42, { nested: { list: [1, 'two', null, true] } });
        const g = await greet.next();
        assert.deepEqual(g.args, ['hello', 42, { nested: { list: [1, 'two', null, true] } }]);
        assert.equal(g.ack, null);

        // With an ack and binary, target to asker.
        const bin = a.inbox('bin');
        const answer = b.emitWithAck('bin', Buffer.from([0, 1, 2, 255]), { deep: [Buffer.from('abc')] });
        const q = await bin.next();
        assert.deepEqual(q.args, [Buffer.from([0, 1, 2, 255]), { deep: [Buffer.from('abc')] }]);
        q.ack(Buffer.from('ok'), 'text', { n: 1 });
        assert.deepEqual(await answer, [Buffer.from('ok'), 'text', { n: 1 }]);

        // Unicode both ways through an ack.
        const uni = b.inbox('uni');
        const echoed = a.emitWithAck('uni', text);
        const u = await uni.next();
        assert.equal(u.args[0], text);
        u.ack(u.args[0]);
        assert.deepEqual(await echoed, [text]);

        await assertQuiet(a, b);

        // The asker drops: the target hears P2P_DISCONNECT, without arguments.
        a.close();
        assert.deepEqual(await b.peerGone.next(), []);
        assert.equal(b.target, null);
      });
    }
  }
});
