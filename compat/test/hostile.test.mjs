// Hostile payloads (new): deeply nested arguments, an ack answered twice,
// and bytes that are not UTF-8 where the peer's websocket or polling
// client reads text. The offender gets its code (or nothing more than it
// asked for), its peer and everyone else carry on.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { WAIT_MS } from '../lib/sio.mjs';
import { assertQuiet, assertRelaying, bystanders, CLIENTS, expectAckError, expectServerError, fleet, kindName, RELAY_URL, uid } from './helpers.mjs';

// ws is the websocket library the 4.x client uses in node: the attacker
// writes raw frames with it.
const WebSocket = createRequire(import.meta.url)('ws');

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

/**
 * RawDevice is a generation-2 device played by hand over a raw Engine.IO 4
 * websocket, so that it can write what no socket.io client would: bytes
 * that are not UTF-8 in a text frame.
 */
class RawDevice {
  static async connect(id) {
    const q = new URLSearchParams({ EIO: '4', transport: 'websocket', clientId: id });
    const ws = new WebSocket(`${RELAY_URL.replace(/^http/, 'ws')}/socket.io/?${q}`);
    const dev = new RawDevice(id, ws);
    await dev.next((f) => f.startsWith('0'));
    dev.send('40');
    await dev.next((f) => f.startsWith('40'));
    return dev;
  }

  constructor(id, ws) {
    this.id = id;
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    ws.on('message', (data) => {
      const f = data.toString();
      if (f === '2') {
        ws.send('3');
        return;
      }
      this.frames.push(f);
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** send writes a text frame: a string, or raw bytes as they are. */
  send(frame) {
    this.ws.send(frame, { binary: false });
  }

  /** next resolves with the first frame that match accepts, taking it. */
  next(match) {
    const deadline = Date.now() + WAIT_MS;
    return new Promise((resolve, reject) => {
      const look = () => {
        const i = this.frames.findIndex(match);
        if (i >= 0) return resolve(this.frames.splice(i, 1)[0]);
        if (Date.now() > deadline) return reject(new Error(`${this.id}: no matching frame within ${WAIT_MS} ms`));
        this.waiters.push(look);
        setTimeout(() => this.waiters.splice(0).forEach((w) => w()), 50);
      };
      look();
    });
  }

  close() {
    this.ws.close();
  }
}

/** bytes joins strings and byte values into one Buffer. */
const bytes = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('bytes that are not UTF-8 never reach the peer', { concurrency: 4 }, () => {
  for (const c of CLIENTS) {
    const kind = { gen: 2, ...c };
    test(`${kindName(kind)} keeps its connection and reads U+FFFD`, async (t) => {
      const f = fleet(t);
      const victim = await f.connect(kind);
      const attacker = await RawDevice.connect(uid('raw'));
      t.after(() => attacker.close());
      attacker.send(`420["P2P_REGISTER","${victim.id}"]`);
      assert.equal(await attacker.next((fr) => fr.startsWith('430')), '430[true]');
      victim.asked.take();
      victim.answered.take();

      const bad = victim.inbox('bad');
      attacker.send(bytes(`42["P2P_EMIT",{"targetClientId":"${victim.id}","event":"bad","args":["a`, [0xff], 'b",{"k":"', [0xc3], '"}]}]'));
      assert.deepEqual((await bad.next()).args, ['a\ufffdb', { k: '\ufffd' }]);

      // An answer with bad bytes, back to the victim's ack.
      const answer = victim.emitWithAck('q', 1);
      const m = /^42(\d+)\["q",1\]$/.exec(await attacker.next((fr) => /^42\d+\["q"/.test(fr)));
      attacker.send(bytes(`43${m[1]}["`, [0xed, 0xa0, 0xbd], '"]'));
      assert.deepEqual(await answer, ['\ufffd\ufffd\ufffd']);

      // Valid text, a lone surrogate escape included, arrives unchanged.
      const good = victim.inbox('good');
      attacker.send(`42["P2P_EMIT",{"targetClientId":"${victim.id}","event":"good","args":["\\ud83d","é"]}]`);
      assert.deepEqual((await good.next()).args, ['\ud83d', 'é']);
      await assertQuiet(victim);
    });
  }
});
