// Timeouts (new): a target that does not answer a pairing request within
// the relay's pairing timeout counts as a refusal (TIMEOUT), and a peer
// that does not answer a relayed ack within the ack timeout resolves the
// sender's ack with a TIMEOUT error. Needs a relay with short timeouts,
// given in P2P_PAIR_TIMEOUT_MS and P2P_ACK_TIMEOUT_MS.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertQuiet, assertRelaying, bystanders, CLIENTS, envMillis, expectRefused, expectServerError, fleet, gate, kindName,
} from './helpers.mjs';

const PAIR_TIMEOUT = envMillis('P2P_PAIR_TIMEOUT_MS');
const ACK_TIMEOUT = envMillis('P2P_ACK_TIMEOUT_MS');
// Timers may fire a little early relative to the client's clock.
const EARLY = 50;

let by;
before(async () => {
  by = await bystanders({ gen: 1, version: 4, transport: 'websocket' }, { gen: 2, version: 2, transport: 'websocket' });
});
after(() => by.close());

/** TARGETS are the silent targets: each generation on each client. */
const TARGETS = CLIENTS.flatMap((c) => [1, 2].map((gen) => ({ gen, ...c })));

/**
 * unanswered connects a source of kind ks and a target of kind kt that
 * holds every pairing request, makes the source ask, and checks the relay
 * answers false with TIMEOUT, not before the timeout. The target's answer
 * is still to come: g.release(answer) gives it.
 */
async function unanswered(f, ks, kt) {
  const g = gate();
  const s = await f.connect(ks);
  const target = await f.connect(kt, { consent: g.consent });
  const start = Date.now();
  const answer = s.register(target.id);
  await g.held.next();
  assert.equal(await answer, false);
  const took = Date.now() - start;
  assert.ok(took >= PAIR_TIMEOUT - EARLY, `answered after ${took} ms, before the ${PAIR_TIMEOUT} ms timeout`);
  await expectServerError(s, 'TIMEOUT');
  assert.equal((await target.asked.next()).src, s.id);
  return { s, target, g };
}

describe('a target that does not answer in time', { concurrency: 8 }, () => {
  for (const kt of TARGETS) {
    const ks = { gen: (kt.gen % 2) + 1, version: kt.version === 2 ? 4 : 2, transport: 'websocket' };
    test(`${kindName(kt)} stays silent: false and TIMEOUT, then both are free`, async (t) => {
      const { s, target } = await unanswered(fleet(t), ks, kt);
      await assertQuiet(s, target);
      // Both are free again, for the relay and for themselves.
      const [devices] = await s.request('P2P_LIST_DEVICES');
      for (const d of [s, target]) {
        assert.equal(devices.find((e) => e.id === d.id)?.available, true, `${d.id} is not available after the timeout`);
        assert.equal(d.target, null);
      }
    });

    test(`${kindName(kt)} says yes too late: it is told P2P_DISCONNECT and can pair again`, async (t) => {
      const f = fleet(t);
      const { s, target, g } = await unanswered(f, ks, kt);
      target.consent = () => true;
      g.release(true);
      assert.deepEqual(await target.answered.next(), { src: s.id, yes: true });
      // The relay handles the answer before the barrier.
      await target.barrier();
      assert.equal(target.peerGone.length, 1, `${kindName(kt)} accepted after the timeout and was not told P2P_DISCONNECT`);
      assert.equal(target.target, null);
      target.peerGone.take();
      const c = await f.connect({ gen: 2 });
      const again = await c.register(target.id);
      assert.equal(again, true, `${kindName(kt)} refused a new request: it still believes it is paired with ${s.id}`);
      await assertQuiet(s);
    });

    test(`${kindName(kt)} says no too late: nothing more happens`, async (t) => {
      const { s, target, g } = await unanswered(fleet(t), ks, kt);
      g.release(false);
      assert.deepEqual(await target.answered.next(), { src: s.id, yes: false });
      await assertQuiet(s, target);
    });
  }
  test('the relay still serves the others', () => by.check());
});

describe('a peer that does not answer a relayed ack in time', { concurrency: 8 }, () => {
  for (const c of CLIENTS) {
    for (const gen of [1, 2]) {
      const kp = { gen, ...c };
      test(`${kindName(kp)} stays silent: the sender's ack gets TIMEOUT, the pair goes on`, async (t) => {
        const f = fleet(t);
        const [s, p] = await f.pair({ gen: 3 - gen, version: c.version === 2 ? 4 : 2 }, kp);
        const box = p.inbox('slow');
        const start = Date.now();
        const answer = s.emitWithAck('slow', 1);
        const m = await box.next();
        await expectRefused(s, 'TIMEOUT', await answer);
        assert.ok(Date.now() - start >= ACK_TIMEOUT - EARLY, `timed out after ${Date.now() - start} ms, before ${ACK_TIMEOUT} ms`);
        // The answer that comes after goes nowhere, and breaks nothing.
        m.ack('too late');
        await assertQuiet(s, p);
        await assertRelaying(s, p);
        await assertRelaying(p, s);
      });
    }
  }
  test('the relay still serves the others', () => by.check());
});
