// Relaying between paired devices: arguments and ack values arrive
// unchanged and in order (JSON values of every shape, binary, large unicode
// strings), across generations, client versions and transports.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { assertQuiet, bigUnicode, bystanders, expectRefused, fleet, KINDS, kindName, uid, WAIT_MS } from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders();
});
after(() => by.close());

/** PAIRS are (asker, target) kinds covering each generation and client on each side. */
const PAIRS = [
  [{ gen: 1, version: 2, transport: 'polling' }, { gen: 2, version: 4, transport: 'websocket' }],
  [{ gen: 2, version: 2, transport: 'websocket' }, { gen: 1, version: 4, transport: 'polling' }],
  [{ gen: 1, version: 4, transport: 'websocket' }, { gen: 1, version: 2, transport: 'websocket' }],
  [{ gen: 2, version: 4, transport: 'polling' }, { gen: 2, version: 2, transport: 'polling' }],
];

/**
 * forPairs runs body(t, src, dst) for every pair, the asker sending in
 * half of them and the target in the others. Each body sends both ways
 * (the ack carries values back), so every kind sends and receives.
 */
function forPairs(name, body) {
  PAIRS.forEach(([ka, kb], i) => {
    const reverse = i % 2 === 1;
    const [kf, kt] = reverse ? [kb, ka] : [ka, kb];
    test(`${name}: ${kindName(kf)} to ${kindName(kt)}`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      await (reverse ? body(t, b, a, f) : body(t, a, b, f));
      await assertQuiet(a, b);
    });
  });
}

const VALUES = [
  ['several values of every JSON type', [
    'text', 1, 2.5, -3, 0, 2 ** 53 - 1, 1e300, 0.1, true, false, null, '', [], {},
    [1, [2, [3, [4]]]], { a: { b: { c: [null, 'x', { d: false }] } } },
    { ключ: 'значение', '😀': ['🎉'], 'with space': 1, '': 'empty key' },
  ]],
  ['one null', [null]],
  ['nothing', []],
  ['an empty string and zero', ['', 0]],
  ['an array of objects', [[{ id: 1 }, { id: 2, tags: ['a', 'b'] }, {}]]],
];

describe('values arrive unchanged and in order', { concurrency: 8 }, () => {
  forPairs('arguments and ack values', async (t, src, dst) => {
    for (const [name, values] of VALUES) {
      const ev = `values-${uid()}`;
      const box = dst.inbox(ev);
      // Without an ack.
      src.emit(ev, ...values);
      const plain = await box.next();
      assert.deepEqual(plain.args, values, `${name}: arguments changed`);
      assert.equal(plain.ack, null, 'P2P_EMIT must not carry an ack callback');
      // With an ack; the answer is the same values reversed.
      const answer = src.emitWithAck(ev, ...values);
      const asked = await box.next();
      assert.deepEqual(asked.args, values, `${name}: arguments changed`);
      assert.equal(typeof asked.ack, 'function');
      asked.ack(...[...values].reverse());
      assert.deepEqual(await answer, [...values].reverse(), `${name}: ack values changed`);
    }
  });

  forPairs('events arrive in the order they were sent', async (t, src, dst) => {
    const ev = `seq-${uid()}`;
    const box = dst.inbox(ev);
    const answers = [];
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) answers.push(src.emitWithAck(ev, i));
      else src.emit(ev, i);
    }
    for (let i = 0; i < 60; i++) {
      const m = await box.next();
      assert.deepEqual(m.args, [i], 'out of order');
      if (m.ack) m.ack(i * 10);
    }
    assert.deepEqual(await Promise.all(answers), Array.from({ length: 20 }, (_, k) => [k * 30]));
  });
});

describe('args absent, null or empty deliver no arguments', { concurrency: 8 }, () => {
  for (const k of KINDS) {
    test(`to ${kindName(k)}`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair({ gen: 2, version: k.version === 2 ? 4 : 2 }, k);
      const key = 'targetClientId';
      const payloads = [{ [key]: b.id, event: 'none' }, { [key]: b.id, event: 'none', args: null }, { [key]: b.id, event: 'none', args: [] }];
      for (const payload of payloads) {
        const box = b.inbox('none');
        a.send('P2P_EMIT', payload);
        assert.deepEqual((await box.next()).args, []);
      }
      await assertQuiet(a, b);
    });
  }
});

describe('both target keys are accepted from both generations', { concurrency: 8 }, () => {
  for (const gen of [1, 2]) {
    for (const keys of [['targetDeviceId'], ['targetClientId'], ['targetDeviceId', 'targetClientId']]) {
      test(`generation ${gen} naming its peer with ${keys.join(' and ')}`, async (t) => {
        const f = fleet(t);
        const [a, b] = await f.pair({ gen, version: 2, transport: 'polling' }, { gen: 3 - gen });
        const payload = { event: 'keyed', args: ['k'] };
        for (const key of keys) payload[key] = b.id;
        const box = b.inbox('keyed');
        const answer = a.request('P2P_EMIT_ACKNOWLEDGE', payload);
        const m = await box.next();
        assert.deepEqual(m.args, ['k']);
        m.ack('ok');
        assert.deepEqual(await answer, ['ok']);
        await assertQuiet(a, b);
      });
    }
  }
});

test('a P2P_EMIT that carries an ack is relayed and its ack called without values', async (t) => {
  const f = fleet(t);
  const [a, b] = await f.pair({ gen: 1, version: 4, transport: 'polling' }, { gen: 2, version: 2, transport: 'websocket' });
  const box = b.inbox('acked-emit');
  const answer = a.request('P2P_EMIT', a.relayRequest('acked-emit', [1]));
  const m = await box.next();
  assert.deepEqual(m.args, [1]);
  assert.equal(m.ack, null, 'the target of a P2P_EMIT gets no callback');
  assert.deepEqual(await answer, []);
  await assertQuiet(a, b);
});

describe('binary arguments arrive as sent', { concurrency: 8 }, () => {
  forPairs('buffers, nested and in acks', async (t, src, dst) => {
    const big = randomBytes(96 * 1024);
    const args = [
      Buffer.from([0, 1, 2, 254, 255]),
      { file: { name: 'photo.jpg', data: big }, parts: [Buffer.from('α'), 'text', Buffer.alloc(0)] },
      [Buffer.from('one'), [Buffer.from('two')]],
      'not binary',
    ];
    const ev = `bin-${uid()}`;
    const box = dst.inbox(ev);
    src.emit(ev, ...args);
    assert.deepEqual((await box.next()).args, args);

    const answer = src.emitWithAck(ev, Buffer.from('question'));
    const m = await box.next();
    assert.deepEqual(m.args, [Buffer.from('question')]);
    const reply = [Buffer.from('answer'), { nested: { bytes: randomBytes(1024) } }, null, [Buffer.from([7])]];
    m.ack(...reply);
    assert.deepEqual(await answer, reply);
  });
});

describe('large unicode strings arrive as sent', { concurrency: 4 }, () => {
  const text = bigUnicode(200 * 1024);
  forPairs('about 200 KB of mixed scripts and emoji, both ways through an ack', async (t, src, dst) => {
    // Large payloads take their time on a loaded machine (the race
    // detector slows the relay's JSON work most): allow more than usual.
    src.waitMs = 4 * WAIT_MS;
    const ev = `uni-${uid()}`;
    const box = dst.inbox(ev);
    const answer = src.emitWithAck(ev, text);
    const m = await box.next(4 * WAIT_MS);
    assert.equal(m.args[0], text, 'the string changed on the way');
    m.ack(`${m.args[0]}✓`);
    const [back] = await answer;
    assert.equal(back, `${text}✓`, 'the ack string changed on the way back');
  });
});

describe('values arrive exactly as sent', { concurrency: 4 }, () => {
  // The relay passes relayed JSON through untouched: what one device's
  // JSON.stringify wrote is what the other's JSON.parse reads.
  forPairs('object key order, a lone surrogate and big integers, both ways through an ack', async (t, src, dst) => {
    const ev = `exact-${uid()}`;
    const box = dst.inbox(ev);
    const obj = { zeta: 1, alpha: { y: 2, b: 3 }, 10: 'ten', 2: 'two' };
    const lone = 'cut \ud83d here';
    const answer = src.emitWithAck(ev, obj, lone, 12345678901234567890);
    const m = await box.next();
    assert.deepEqual(Object.keys(m.args[0]), Object.keys(obj), 'key order changed');
    assert.deepEqual(Object.keys(m.args[0].alpha), ['y', 'b'], 'nested key order changed');
    assert.equal(m.args[1], lone, 'the lone surrogate changed');
    assert.equal(m.args[2], 12345678901234567890);
    m.ack({ last: 1, first: 2 }, lone);
    const back = await answer;
    assert.deepEqual(Object.keys(back[0]), ['last', 'first'], 'ack key order changed');
    assert.equal(back[1], lone, 'the lone surrogate changed in the ack');
  });
});

describe('a relayed ack that cannot be answered', { concurrency: 8 }, () => {
  for (const [ka, kb] of PAIRS) {
    test(`the target drops before answering: the source gets OFFLINE at once (${kindName(ka)} to ${kindName(kb)})`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      const box = b.inbox('never');
      const answer = a.emitWithAck('never', 1);
      await box.next();
      b.close();
      await expectRefused(a, 'OFFLINE', await answer);
      assert.deepEqual(await a.peerGone.next(), []);
      await assertQuiet(a);
    });

    test(`the source drops before the answer: the late answer goes nowhere (${kindName(ka)} to ${kindName(kb)})`, async (t) => {
      const f = fleet(t);
      const [a, b] = await f.pair(ka, kb);
      const box = b.inbox('late');
      void a.emitWithAck('late', 1).catch(() => {});
      const m = await box.next();
      a.close();
      assert.deepEqual(await b.peerGone.next(), []);
      m.ack('too late');
      await assertQuiet(b);
    });
  }
  test('the relay still serves the others', () => by.check());
});
