// Peers that are slow to answer, or never do, in the requests that ask the
// peer (new): an unregister whose peer never calls back is answered within
// a bound no longer than the pairing timeout; a stream request is answered
// false with TIMEOUT after it; a stream chunk whose ack the reader holds
// (back-pressure) is not cut off by the ack timeout. Needs a relay with
// short timeouts, given in P2P_PAIR_TIMEOUT_MS and P2P_ACK_TIMEOUT_MS.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Inbox } from '../lib/inbox.mjs';
import { openStream, SEV } from '../lib/stream.mjs';
import {
  assertQuiet, assertRelaying, bystanders, CLIENTS, envMillis, expectServerError, fleet, kindName, pairUp, uid, WAIT_MS,
} from './helpers.mjs';

const PAIR_TIMEOUT = envMillis('P2P_PAIR_TIMEOUT_MS');
const ACK_TIMEOUT = envMillis('P2P_ACK_TIMEOUT_MS');
// Timers may fire a little early relative to the client's clock, and
// answers take a round trip.
const EARLY = 50;
const SLACK = 1000;

let by;
before(async () => {
  by = await bystanders({ gen: 2, version: 4, transport: 'websocket' }, { gen: 2, version: 2, transport: 'polling' });
});
after(() => by.close());

describe('a generation-2 peer that never calls back P2P_UNREGISTER', { concurrency: 8 }, () => {
  for (const [i, kp] of CLIENTS.entries()) {
    const ku = CLIENTS[(i + 1) % CLIENTS.length];
    test(`${kindName({ gen: 2, ...kp })}: the requester's ack answers true within the pairing timeout; both are free`, async (t) => {
      const f = fleet(t);
      const u = await f.connect({ gen: 2, ...ku });
      // A bare socket that accepts pairing and ignores P2P_UNREGISTER's callback.
      const pid = uid('mute');
      const p = await f.tryConnectRaw(kp, { clientId: pid });
      const told = new Inbox(`${pid}: P2P_UNREGISTER`);
      p.on('P2P_REGISTER', (src, cb) => cb(true));
      p.on('P2P_UNREGISTER', (...args) => told.push(args));
      assert.equal(await u.register(pid), true);

      const start = Date.now();
      const answer = await u.request('P2P_UNREGISTER');
      const took = Date.now() - start;
      assert.deepEqual(answer, [true]);
      assert.ok(took <= PAIR_TIMEOUT + SLACK, `answered after ${took} ms; the pairing timeout is ${PAIR_TIMEOUT} ms`);
      const args = await told.next();
      assert.equal(typeof args[args.length - 1], 'function', 'the peer\'s P2P_UNREGISTER must come with a callback');
      assert.equal(u.target, null, 'the requester was not told P2P_UNREGISTER');
      u.unregistered.take();
      // Both are free for the relay.
      const c = await f.connect({ gen: 1, version: 2, transport: 'websocket' });
      assert.equal(await c.register(pid), true);
      await pairUp(u, await f.connect({ gen: 2 }));
      await assertQuiet(u, c);
    });
  }
});

describe('a peer that never answers P2P_REGISTER_STREAM', { concurrency: 8 }, () => {
  for (const [i, kb] of CLIENTS.entries()) {
    const ka = CLIENTS[(i + 2) % CLIENTS.length];
    test(`${kindName({ gen: 2, ...kb })}: false and TIMEOUT, not before the pairing timeout; the pair stays`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair({ gen: 2, ...ka }, { gen: 2, ...kb });
      const asked = b.inbox(SEV.REGISTER_STREAM); // queued, never answered
      const start = Date.now();
      const { answer, stream } = await openStream(a);
      const took = Date.now() - start;
      assert.equal(stream, null);
      assert.equal(answer[0], false);
      assert.ok(took >= PAIR_TIMEOUT - EARLY, `answered after ${took} ms, before the ${PAIR_TIMEOUT} ms timeout`);
      const msg = await expectServerError(a, 'TIMEOUT');
      assert.deepEqual(answer[1], { error: { code: 'TIMEOUT', message: msg } });
      assert.equal(asked.length, 1);
      // A late answer changes nothing.
      asked.take()[0].ack(true);
      await assertQuiet(a, b);
      await assertRelaying(a, b);
    });
  }
});

describe('back-pressure is not a timeout', { concurrency: 8 }, () => {
  for (const [i, kb] of CLIENTS.entries()) {
    const ka = CLIENTS[(i + 3) % CLIENTS.length];
    test(`${kindName({ gen: 2, ...kb })} holds a chunk's ack past the ack timeout: the writer's ack still comes when it reads`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair({ gen: 2, ...ka }, { gen: 2, ...kb });
      b.socket.on(SEV.REGISTER_STREAM, (cb) => cb(true));
      const chunks = b.inbox(SEV.EMIT_STREAM);
      assert.deepEqual(await a.request(SEV.REGISTER_STREAM, b.id), [true]);

      a.waitMs = ACK_TIMEOUT + WAIT_MS;
      const answer = a.request('P2P_EMIT_ACKNOWLEDGE', a.relayRequest(SEV.EMIT_STREAM, [Buffer.from('slow reader')]));
      const m = await chunks.next();
      // The reader's buffer stays full for longer than the ack timeout.
      await delay(ACK_TIMEOUT + SLACK);
      m.ack();
      assert.deepEqual(await answer, [], 'the relay cut a held stream ack off');
      await assertQuiet(a, b);
    });
  }
});
