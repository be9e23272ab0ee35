// Limits (new): payloads over the relay's payload limit are refused with
// TOO_LARGE, floods with RATE_LIMITED, and a message over the transport's
// message-size limit costs only its sender the connection. Each time the
// sender's peer and everyone else carry on. Needs a relay with small
// limits, given in P2P_MAX_MESSAGE_BYTES (Engine.IO), P2P_MAX_PAYLOAD_BYTES,
// P2P_BURST, P2P_PAIR_BURST and P2P_MAX_PENDING_ACKS.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertAckRoundTrip, assertQuiet, bystanders, CLIENTS, envMillis, expectRefused, expectServerError, fleet, kindName, uid, WAIT_MS,
} from './helpers.mjs';

const MESSAGE = envMillis('P2P_MAX_MESSAGE_BYTES');
const PAYLOAD = envMillis('P2P_MAX_PAYLOAD_BYTES');
const BURST = envMillis('P2P_BURST');
const PAIR_BURST = envMillis('P2P_PAIR_BURST');
const PENDING = envMillis('P2P_MAX_PENDING_ACKS');
assert.ok(PAYLOAD + 4096 < MESSAGE, 'the payload limit must be well under the message limit');

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

/** KINDS pairs every client with a peer on the other client and transport. */
const KINDS = CLIENTS.flatMap((c) => [1, 2].map((gen) => [
  { gen, ...c },
  { gen: 3 - gen, version: c.version === 2 ? 4 : 2, transport: c.transport === 'polling' ? 'websocket' : 'polling' },
]));

/** until retries request until it resolves without throwing, for up to WAIT_MS. */
async function until(request) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      return await request();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('payloads', { concurrency: 8 }, () => {
  for (const [k, peer] of KINDS) {
    test(`${kindName(k)}: under the payload limit, text and binary are relayed`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(k, peer);
      const text = 'ü'.repeat(Math.floor(PAYLOAD / 3));
      const bin = Buffer.alloc(Math.floor(PAYLOAD / 2), 7);
      const box = y.inbox('under');
      x.emit('under', text);
      assert.equal((await box.next()).args[0], text);
      x.emit('under', bin);
      assert.deepEqual((await box.next()).args[0], bin);
      await assertQuiet(x, y);
    });

    test(`${kindName(k)}: over the payload limit, TOO_LARGE and nothing else changes`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(k, peer);
      const box = y.inbox('too-large');
      for (const arg of ['x'.repeat(PAYLOAD + 1024), Buffer.alloc(PAYLOAD + 1024, 1), { nested: ['é'.repeat(PAYLOAD)] }]) {
        await expectRefused(x, 'TOO_LARGE', await x.emitWithAck('too-large', arg));
        x.emit('too-large', arg);
        await expectServerError(x, 'TOO_LARGE');
      }
      await assertQuiet(x, y);
      assert.equal(box.length, 0, 'an oversized payload was relayed');
      await assertAckRoundTrip(x, y);
    });

    test(`${kindName(k)}: an ack answer over the payload limit reaches the sender as TOO_LARGE`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(k, peer);
      const box = y.inbox('big-answer');
      const answer = x.emitWithAck('big-answer');
      (await box.next()).ack('a'.repeat(PAYLOAD + 1024));
      await expectRefused(x, 'TOO_LARGE', await answer);
      await assertQuiet(x, y);
      await assertAckRoundTrip(y, x);
    });

    for (const [what, arg] of [['text', () => 'x'.repeat(MESSAGE + 1024)], ['binary', () => Buffer.alloc(MESSAGE + 1024, 1)]]) {
      test(`${kindName(k)}: ${what} over the message limit closes only the sender`, async (t) => {
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
        await by.ping();
      });
    }
  }
});

describe('floods', { concurrency: 4 }, () => {
  for (const [k, peer] of KINDS.filter((_, i) => i % 2 === 0)) {
    test(`${kindName(k)}: requests beyond the burst are RATE_LIMITED, then served again`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(k, peer);
      // Twice the burst: all would be served only if the bucket refilled a
      // whole burst while they arrive.
      const n = 2 * BURST;
      const answers = await Promise.all(Array.from({ length: n }, () => x.request('LIST_CLIENTS')));
      const limited = answers.filter((a) => a[0] && a[0].error);
      assert.ok(limited.length > 0, `none of ${n} requests was limited`);
      for (const a of limited) assert.equal(a[0].error.code, 'RATE_LIMITED');
      for (let i = 0; i < limited.length; i++) await expectServerError(x, 'RATE_LIMITED');
      // Its peer is not limited, and once the bucket refills it is served again.
      await assertAckRoundTrip(y, x);
      await until(async () => {
        try {
          await assertAckRoundTrip(x, y);
        } catch (err) {
          await expectServerError(x, 'RATE_LIMITED');
          throw err;
        }
      });
      await assertQuiet(x, y);
      await by.ping();
    });

    test(`${kindName(k)}: pairing requests beyond their burst are RATE_LIMITED`, async (t) => {
      const f = fleet(t);
      const x = await f.connect(k);
      const answers = await Promise.all(Array.from({ length: PAIR_BURST + 1 }, () => x.request('P2P_REGISTER', uid('offline'))));
      assert.deepEqual(answers.map((a) => a[0]), answers.map(() => false));
      const codes = [];
      for (let i = 0; i <= PAIR_BURST; i++) codes.push((await x.serverErrors.next())[0].split(':')[0]);
      assert.deepEqual(codes.sort(), [...Array(PAIR_BURST).fill('OFFLINE'), 'RATE_LIMITED'].sort());
      await assertQuiet(x);
    });

    test(`${kindName(k)}: acks left unanswered beyond the limit are RATE_LIMITED`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(k, peer);
      const box = y.inbox('slow');
      const pending = Array.from({ length: PENDING }, (_, i) => x.emitWithAck('slow', i));
      const asked = [];
      for (let i = 0; i < PENDING; i++) asked.push(await box.next());
      await expectRefused(x, 'RATE_LIMITED', await x.emitWithAck('slow', 'one too many'));
      assert.equal(box.length, 0);
      asked.forEach((m, i) => m.ack(`answer ${m.args[0]}`, i));
      assert.deepEqual(await Promise.all(pending), asked.map((m, i) => [`answer ${i}`, i]));
      await assertAckRoundTrip(x, y);
      await assertQuiet(x, y);
    });
  }
  test('the relay still serves the others', () => by.check());
});
