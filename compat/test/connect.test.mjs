// Connecting: which ids the relay accepts, and how each client version
// sees a refusal (4.x: connect_error with err.message "CODE: ..." and
// err.data {code, message}; 2.x: an "error" event with {code, message}).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertConnectRefused, assertRelaying, bystanders, CLIENTS, fleet, KINDS, kindName, uid } from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

const badIDs = [
  ['an empty id', ''],
  ['an id of 129 characters', 'x'.repeat(129)],
  ['an id of 129 emoji', '😀'.repeat(129)],
  ['a newline', 'a\nb'],
  ['a NUL', 'a\u0000b'],
  ['a tab', 'a\tb'],
  ['DEL', 'a\u007fb'],
  ['a C1 control character', 'a\u0085b'],
  // Lookalikes: ids that display as another id (docs/PROTOCOL.md).
  ['a zero-width space', 'kiosk\u200b1'],
  ['a right-to-left override', 'kiosk\u202e1'],
  ['a no-break space', 'kiosk\u00a01'],
  ['a line separator', 'kiosk\u20281'],
  ['a combining mark on a digit', 'kiosk1\u0301'],
  ['a leading space', ' kiosk1'],
];

/** fill pads a unique id with c up to 128 characters (code points). */
const fill = (c) => () => {
  const head = `${uid('max')}-`;
  return head + c.repeat(128 - [...head].length);
};

const goodIDs = [
  ['128 characters', fill('y')],
  ['128 characters, emoji', fill('🎉')],
  ['URL-significant characters', () => `a&b=c?d#e%f+g h/i-${uid()}`],
  ['mixed scripts', () => `设备-Привет-مرحبا-${uid()}`],
];

describe('ids that break the rules are refused with BAD_ID', { concurrency: 8 }, () => {
  for (const c of CLIENTS) {
    for (const key of ['deviceId', 'clientId']) {
      for (const [name, id] of badIDs) {
        test(`${kindName(c)} ?${key}= ${name}`, async (t) => {
          const f = fleet(t);
          await assert.rejects(f.tryConnectRaw(c, { [key]: id }), (err) => {
            assertConnectRefused(err, c.version, 'BAD_ID');
            return true;
          });
        });
      }
    }
    test(`${kindName(c)} without an id`, async (t) => {
      const f = fleet(t);
      await assert.rejects(f.tryConnectRaw(c, {}), (err) => {
        assertConnectRefused(err, c.version, 'BAD_ID');
        return true;
      });
    });
    test(`${kindName(c)} with deviceId and clientId that disagree`, async (t) => {
      const f = fleet(t);
      await assert.rejects(f.tryConnectRaw(c, { deviceId: uid('d'), clientId: uid('c') }), (err) => {
        assertConnectRefused(err, c.version, 'BAD_ID');
        return true;
      });
    });
  }
  test('the relay still serves the others', () => by.check());
});

describe('ids within the rules are accepted', { concurrency: 8 }, () => {
  for (const k of KINDS) {
    for (const [name, makeID] of goodIDs) {
      test(`${kindName(k)}: ${name}`, async (t) => {
        const f = fleet(t);
        const id = makeID();
        const a = await f.connect(k, { id });
        const b = await f.connect({ gen: 2 });
        // The id survives the query string: the peer is asked by exactly it.
        await b.register(a.id);
        const ask = await a.asked.next();
        assert.equal(ask.src, b.id);
        assert.equal(b.target, a.id);
        await assertRelaying(b, a);
        const ids = await b.listClients();
        assert.ok(ids.includes(id), `LIST_CLIENTS lacks ${JSON.stringify(id)}`);
      });
    }
  }
  test('deviceId and clientId naming the same id connect as generation 2', async (t) => {
    const f = fleet(t);
    const id = uid('both');
    const s = await f.tryConnectRaw({ version: 4, transport: 'websocket' }, { deviceId: id, clientId: id });
    const asker = await f.connect({ gen: 1 });
    // A generation-2 target is asked with an ack callback and answers through it.
    s.on('P2P_REGISTER', (src, cb) => cb(src === asker.id));
    assert.equal(await asker.register(id), true);
  });
});

describe('an id in use is refused with ID_IN_USE and its holder keeps serving', { concurrency: 8 }, () => {
  for (const holderKind of [KINDS[0], KINDS[KINDS.length - 1]]) {
    for (const k of KINDS) {
      test(`${kindName(k)} claims the id of a paired ${kindName(holderKind)}`, async (t) => {
        const f = fleet(t);
        const [holder, peer] = await f.pair(holderKind, { gen: 2 });
        const key = k.gen === 1 ? 'deviceId' : 'clientId';
        await assert.rejects(f.tryConnectRaw(k, { [key]: holder.id }), (err) => {
          assertConnectRefused(err, k.version, 'ID_IN_USE');
          return true;
        });
        await assertRelaying(holder, peer);
        assert.equal(holder.target, peer.id);
      });
    }
  }
  test('the relay still serves the others', () => by.check());
});
