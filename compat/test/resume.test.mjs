// Resume: a paired device whose connection drops (its transport closes
// without a word) keeps its pair for the relay's resume window
// (P2P_RESUME_WINDOW_MS). Its peer is told nothing; what is sent to it
// meanwhile is held and arrives once, in order, when the device comes back
// under its id (its reconnection is held until the relay saw it away, then
// made as the client's own would be); it has nothing to
// send to be paired again. Past the window its peer gets P2P_DISCONNECT. An
// explicit disconnect still tells the peer at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertQuiet, assertRelaying, envMillis, fleet, KINDS, kindName, pairUp } from './helpers.mjs';

const WINDOW = envMillis('P2P_RESUME_WINDOW_MS');
const CONTROL = process.env.P2P_CONTROL_URL;
if (!CONTROL) throw new Error('P2P_CONTROL_URL is not set: these tests run through `go test ./compat/` (see compat/README.md)');

/**
 * relaySeesAway waits until the relay holds id away. A message sent before
 * the relay has seen the drop goes to the dropped connection, and is lost
 * with it, as anything in flight on a network that fails.
 */
async function relaySeesAway(id) {
  for (const deadline = Date.now() + WINDOW; Date.now() < deadline; ) {
    const d = await (await fetch(`${CONTROL}/device?id=${encodeURIComponent(id)}`)).json();
    if (d.away) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the relay never held ${id} away`);
}
const STEADY = { gen: 2, version: 4, transport: 'websocket' };

for (const kind of KINDS) {
  test(`${kindName(kind)}: a dropped connection comes back to its pair, with what was sent meanwhile`, async (t) => {
    const f = fleet(t);
    const a = await f.connect(STEADY);
    const b = await f.connect(kind, { reconnection: true });
    await pairUp(a, b);
    const m1 = b.inbox('m1');
    const m2 = b.inbox('m2');
    const q = b.inbox('q');
    const order = [];
    for (const name of ['m1', 'q', 'm2']) b.on(name, () => order.push(name));

    const back = b.reconnected();
    await b.dropAndHold();
    await relaySeesAway(b.id);
    // Sent while b is away: held by the relay.
    a.emit('m1', 1, { k: 'v' });
    const answer = a.emitWithAck('q', 2);
    a.emit('m2', 3);
    b.comeBack();
    await back;

    assert.deepEqual((await m1.next()).args, [1, { k: 'v' }]);
    const asked = await q.next();
    assert.deepEqual(asked.args, [2]);
    asked.ack('answered', 2);
    assert.deepEqual((await m2.next()).args, [3]);
    assert.deepEqual(order, ['m1', 'q', 'm2'], 'held messages arrived out of order');
    assert.deepEqual(await answer, ['answered', 2], 'the ack sent meanwhile was not piped back');
    // Nobody heard of the drop, and the pair relays both ways as before.
    await assertQuiet(a, b);
    await assertRelaying(a, b);
    await assertRelaying(b, a);
    assert.equal(m1.take().length + m2.take().length + q.take().length, 0, 'a held message arrived twice');
  });

  test(`${kindName(kind)}: an explicit disconnect tells the peer at once`, async (t) => {
    const f = fleet(t);
    const a = await f.connect(STEADY);
    const b = await f.connect(kind);
    await pairUp(a, b);
    const start = Date.now();
    b.close();
    assert.deepEqual(await a.peerGone.next(), []);
    const took = Date.now() - start;
    assert.ok(took < WINDOW / 2, `P2P_DISCONNECT took ${took} ms: the relay waited as for a drop`);
  });
}

for (const version of [2, 4]) {
  test(`sio${version}: past the window, the peer is told and both are free`, async (t) => {
    const f = fleet(t);
    const a = await f.connect(STEADY);
    const b = await f.connect({ gen: 2, version, transport: 'websocket' });
    await pairUp(a, b);
    const start = Date.now();
    await b.drop(); // without reconnection: it does not come back
    assert.deepEqual(await a.peerGone.next(), []);
    const took = Date.now() - start;
    assert.ok(took >= WINDOW * 0.8, `P2P_DISCONNECT after ${took} ms, before the window of ${WINDOW} ms`);
    const c = await f.connect(STEADY);
    await pairUp(a, c);
    await assertRelaying(a, c);
  });
}
