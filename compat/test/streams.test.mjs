// Streams between paired generation-2 devices (the original plugin's
// registerP2pStream / onRegisterP2pStream), with our own stream ends
// (lib/stream.mjs) on the real clients: opening and its refusals, chunks
// both ways with back-pressure, binary chunks intact, and streams ending
// with the pair.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Inbox } from '../lib/inbox.mjs';
import { acceptStreams, openStream, readBytes, refuseStreams, SEV } from '../lib/stream.mjs';
import {
  assertQuiet, assertRelaying, bystanders, expectRefused, expectServerError, fleet, gate, kindName,
} from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders({ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' });
});
after(() => by.close());

/** PAIRS are (opener, peer) generation-2 kinds covering each client on each side. */
const PAIRS = [
  [{ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' }],
  [{ gen: 2, version: 4, transport: 'polling' }, { gen: 2, version: 2, transport: 'websocket' }],
  [{ gen: 2, version: 2, transport: 'websocket' }, { gen: 2, version: 2, transport: 'polling' }],
  [{ gen: 2, version: 4, transport: 'websocket' }, { gen: 2, version: 4, transport: 'polling' }],
];

/** forPairs runs body(t, a, b, f) for every pair, a and b paired (a asked). */
function forPairs(name, body) {
  for (const [ka, kb] of PAIRS) {
    test(`${name}: ${kindName(ka)} -> ${kindName(kb)}`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      await body(t, a, b, f);
    });
  }
}

/**
 * expectStreamRefused checks a refused P2P_REGISTER_STREAM: the ack answers
 * false and {error} with code, and a SERVER_ERROR tells the same.
 */
async function expectStreamRefused(dev, answer, code) {
  assert.equal(answer[0], false, `${dev.id} (${dev.kind}): stream request answered ${JSON.stringify(answer)}, want false`);
  assert.equal(answer.length, 2, `refused stream request answered ${JSON.stringify(answer)}, want false, {error}`);
  const msg = await expectServerError(dev, code);
  assert.deepEqual(answer[1], { error: { code, message: msg } }, 'the ack\'s error and SERVER_ERROR disagree');
}

/** openPair opens a stream from a to b (b accepting with bOpts) and returns both ends. */
async function openPair(a, b, { aOpts = {}, bOpts = {} } = {}) {
  const { asked, streams } = acceptStreams(b, bOpts);
  const { answer, stream } = await openStream(a, aOpts);
  assert.deepEqual(answer, [true], `${b.kind} accepted, yet ${a.kind}'s stream request answered ${JSON.stringify(answer)}`);
  const args = await asked.next();
  assert.equal(args.length, 1, `the peer's P2P_REGISTER_STREAM carried ${args.length} arguments: only the callback is allowed`);
  return [stream, await streams.next()];
}

/** chunksOf returns random chunks of the given sizes; the first starts with bytes 0 to 255 in order. */
function chunksOf(sizes) {
  return sizes.map((n, i) => {
    const b = i === 0 ? Buffer.from(Array.from({ length: 256 }, (_, v) => v)) : randomBytes(n);
    return b.subarray(0, n);
  });
}

describe('opening a stream', { concurrency: 8 }, () => {
  forPairs('a peer that accepts: asked with only a callback, the opener\'s ack answers true', async (t, a, b) => {
    const [ea, eb] = await openPair(a, b);
    assert.ok(ea && eb);
    await assertQuiet(a, b);
  });

  forPairs('a peer that has not opened streams answers false: false and REFUSED', async (t, a, b) => {
    const asked = refuseStreams(b);
    const { answer, stream } = await openStream(a);
    assert.equal(stream, null);
    await expectStreamRefused(a, answer, 'REFUSED');
    assert.equal((await asked.next()).length, 1);
    await assertQuiet(a, b);
    await assertRelaying(a, b);
  });

  test('not paired: false and NOT_PAIRED, and nobody is asked', async (t) => {
    const f = fleet(t);
    const a = await f.connect({ gen: 2, version: 2, transport: 'polling' });
    const b = await f.connect({ gen: 2, version: 4, transport: 'websocket' });
    const { asked } = acceptStreams(b);
    // What the original client sends when it has no target, then a device
    // that is online but not its peer.
    for (const target of [null, b.id]) {
      const { answer, stream } = await openStream(a, { target });
      assert.equal(stream, null);
      await expectStreamRefused(a, answer, 'NOT_PAIRED');
    }
    await b.barrier();
    assert.equal(asked.length, 0, 'the relay asked a device that is not the opener\'s peer');
    await assertQuiet(a, b);
  });

  test('paired, naming another device: false and NOT_PAIRED, and neither is asked', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 4, transport: 'polling' }, { gen: 2, version: 2, transport: 'websocket' });
    const c = await f.connect({ gen: 2 });
    const askedB = acceptStreams(b).asked;
    const askedC = acceptStreams(c).asked;
    const { answer } = await openStream(a, { target: c.id });
    await expectStreamRefused(a, answer, 'NOT_PAIRED');
    await Promise.all([b.barrier(), c.barrier()]);
    assert.equal(askedB.length + askedC.length, 0);
    await assertQuiet(a, b, c);
    await assertRelaying(a, b);
  });

  test('without an ack: BAD_REQUEST, and the peer is not asked', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'websocket' }, { gen: 2, version: 4, transport: 'polling' });
    const { asked } = acceptStreams(b);
    a.send(SEV.REGISTER_STREAM, b.id);
    await expectServerError(a, 'BAD_REQUEST');
    await b.barrier();
    assert.equal(asked.length, 0);
    await assertQuiet(a, b);
  });

  test('a generation-1 peer has no streams: false and REFUSED, without asking it', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 4, transport: 'websocket' }, { gen: 1, version: 2, transport: 'polling' });
    const asked = b.inbox(SEV.REGISTER_STREAM);
    const { answer } = await openStream(a);
    await expectStreamRefused(a, answer, 'REFUSED');
    await b.barrier();
    assert.equal(asked.length, 0, 'the relay asked a generation-1 device for a stream');
    await assertQuiet(a, b);
    await assertRelaying(a, b);
  });

  test('the peer drops while deciding: false and OFFLINE', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 2, transport: 'websocket' });
    const g = gate();
    const { asked } = acceptStreams(b, { decide: () => g.consent(a.id) });
    const pending = openStream(a);
    await asked.next();
    await g.held.next();
    b.close();
    const { answer } = await pending;
    await expectStreamRefused(a, answer, 'OFFLINE');
    assert.deepEqual(await a.peerGone.next(), []);
  });

  test('every request asks the peer again: two requests, two streams', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 4, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' });
    const { asked, streams } = acceptStreams(b);
    assert.deepEqual((await openStream(a)).answer, [true]);
    assert.deepEqual((await openStream(a)).answer, [true]);
    await asked.next();
    await asked.next();
    assert.notEqual(await streams.next(), await streams.next());
    await assertQuiet(a, b);
  });
});

describe('stream chunks on the wire', { concurrency: 8 }, () => {
  forPairs('a chunk reaches the peer as P2P_EMIT_STREAM(chunk, ack); the writer\'s ack waits for the peer\'s', async (t, a, b) => {
    // Bare ends, to see the wire: b accepts streams and queues chunks.
    b.socket.on(SEV.REGISTER_STREAM, (cb) => cb(true));
    const chunks = b.inbox(SEV.EMIT_STREAM);
    assert.deepEqual(await a.request(SEV.REGISTER_STREAM, b.id), [true]);

    const chunk = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    let answered = false;
    const answer = a.request('P2P_EMIT_ACKNOWLEDGE', a.relayRequest(SEV.EMIT_STREAM, [chunk])).then((v) => {
      answered = true;
      return v;
    });
    const m = await chunks.next();
    assert.deepEqual(m.args, [chunk]);
    assert.equal(typeof m.ack, 'function', 'P2P_EMIT_STREAM must come with an ack callback');
    await a.barrier();
    assert.equal(answered, false, 'the relay answered the writer before the reader did');
    m.ack();
    assert.deepEqual(await answer, [], 'the reader\'s answer (no values) must reach the writer unchanged');
    await assertQuiet(a, b);
  });

  test('P2P_EMIT_STREAM without an ack is refused: the original reader calls its ack unconditionally', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' });
    const chunks = b.inbox(SEV.EMIT_STREAM);
    a.emit(SEV.EMIT_STREAM, Buffer.from('x'));
    await expectServerError(a, 'RESERVED_EVENT');
    await b.barrier();
    assert.equal(chunks.length, 0);
    await assertQuiet(a, b);
  });
});

describe('streams carry data', { concurrency: 8 }, () => {
  forPairs('both ways, in order, every byte intact', async (t, a, b) => {
    const [ea, eb] = await openPair(a, b);
    const sizes = [256, 1, 7, 1000, 4096, 16 * 1024, 64 * 1024, 3, 65535];
    const ab = chunksOf(sizes);
    const ba = chunksOf([...sizes].reverse());
    const total = (cs) => cs.reduce((n, c) => n + c.length, 0);
    const gotB = readBytes(eb, total(ab));
    const gotA = readBytes(ea, total(ba));
    for (const c of ab) ea.write(c);
    for (const c of ba) eb.write(c);
    assert.ok((await gotB).equals(Buffer.concat(ab)), `${b.kind} read other bytes than ${a.kind} wrote`);
    assert.ok((await gotA).equals(Buffer.concat(ba)), `${a.kind} read other bytes than ${b.kind} wrote`);
    // Each write is one chunk on the wire, and arrives as binary.
    assert.equal(eb.chunks.length, ab.length);
    for (const c of [...ea.chunks, ...eb.chunks]) assert.ok(Buffer.isBuffer(c), `a chunk arrived as ${typeof c}`);
    assert.deepEqual([...ea.violations, ...eb.violations], []);
    await assertQuiet(a, b);
  });

  forPairs('back-pressure: a reader that does not read stops the writer at its high-water mark', async (t, a, b) => {
    const HWM = 64;
    const CHUNK = 16;
    const N = 40;
    const [ea, eb] = await openPair(a, b, { bOpts: { highWaterMark: HWM } });
    const errors = new Inbox('writer errors');
    ea.on('error', (e) => errors.push(e));
    const data = chunksOf(Array(N).fill(CHUNK));
    for (const c of data) ea.write(c);

    // The reader's buffer fills up; it holds the ack of the chunk that
    // filled it.
    const buffered = await eb.held.next();
    assert.ok(buffered >= HWM && buffered < HWM + CHUNK, `the reader held its ack with ${buffered} bytes buffered`);
    const arrived = eb.chunks.length;
    // Nothing more comes while it holds: the writer has its next chunk
    // ready, but its ack has not come back.
    await a.barrier();
    await b.barrier();
    assert.equal(eb.chunks.length, arrived, 'chunks kept coming while the reader held its ack');
    assert.ok(ea.writableLength > 0, 'the writer has nothing left to write: its acks came back early');
    assert.equal(errors.length, 0);

    // Reading lets the rest through, in order, and the buffer never grows
    // past the mark by more than one chunk.
    const got = await readBytes(eb, N * CHUNK);
    assert.ok(got.equals(Buffer.concat(data)));
    assert.ok(eb.maxBuffered < HWM + CHUNK, `the reader buffered ${eb.maxBuffered} bytes, its mark is ${HWM}`);
    ea.end();
    await once(ea, 'finish');
    assert.equal(errors.length, 0, `the writer failed: ${errors.take().map(String)}`);
    await assertQuiet(a, b);
  });

  test('object mode: JSON values and strings arrive as written', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'websocket' }, { gen: 2, version: 4, transport: 'polling' });
    const [ea, eb] = await openPair(a, b, { aOpts: { objectMode: true }, bOpts: { objectMode: true } });
    const values = ['héllo 😀', { n: 1, list: [true, null, 'x'] }, [1, [2, [3]]], 0, 'последний'];
    const got = [];
    const done = new Promise((resolve) => {
      eb.on('data', (v) => {
        got.push(v);
        if (got.length === values.length) resolve();
      });
    });
    for (const v of values) ea.write(v);
    await done;
    assert.deepEqual(got, values);
    await assertQuiet(a, b);
  });
});

describe('streams end with the pair', { concurrency: 8 }, () => {
  forPairs('the opener unregisters: both ends are destroyed when its ack comes', async (t, a, b) => {
    const [ea, eb] = await openPair(a, b);
    assert.deepEqual(await a.request('P2P_UNREGISTER'), [true]);
    assert.equal(ea.destroyed, true, 'the requester\'s end is still open: it was not told P2P_UNREGISTER before its ack');
    assert.equal(eb.destroyed, true, 'the peer\'s end is still open when the requester\'s ack came');
  });

  test('the peer unregisters: both ends are destroyed when its ack comes', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 4, transport: 'websocket' }, { gen: 2, version: 2, transport: 'polling' });
    const [ea, eb] = await openPair(a, b);
    assert.deepEqual(await b.request('P2P_UNREGISTER'), [true]);
    assert.equal(eb.destroyed, true);
    assert.equal(ea.destroyed, true);
  });

  test('the peer drops: the other end is destroyed, and writing to the old peer is refused', async (t) => {
    const f = fleet(t);
    const [a, b] = await f.pair({ gen: 2, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'polling' });
    const [ea] = await openPair(a, b);
    b.close();
    assert.deepEqual(await a.peerGone.next(), []);
    assert.equal(ea.destroyed, true);
    const answer = await a.request('P2P_EMIT_ACKNOWLEDGE', { targetClientId: b.id, event: SEV.EMIT_STREAM, args: [Buffer.from('late')] });
    await expectRefused(a, 'NOT_PAIRED', answer);
  });

  test('the relay still serves the others', () => by.check());
});
