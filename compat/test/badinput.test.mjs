// Bad input from real clients: every malformed request answers with its
// code (SERVER_ERROR, and its ack when it carried one), changes nothing
// else, and leaves the relay serving everyone else. Malformed socket.io
// packets cost only the sender its connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeRaw } from '../lib/sio.mjs';
import {
  assertAckRoundTrip, assertQuiet, assertRelaying, bystanders, CLIENTS, expectAckError, expectServerError, Fleet, fleet, kindName, uid,
} from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders({ gen: 1, version: 4, transport: 'websocket' }, { gen: 2, version: 2, transport: 'websocket' });
});
after(() => by.close());

/** OFFENDERS are the kinds that send the bad input: every client, both generations. */
const OFFENDERS = CLIENTS.map((c, i) => ({ gen: (i % 2) + 1, ...c }));

const REGISTER_TARGETS = [
  ['a number', 42, 'BAD_REQUEST'],
  ['null', null, 'BAD_REQUEST'],
  ['an object', { id: 'x' }, 'BAD_REQUEST'],
  ['an array', ['x'], 'BAD_REQUEST'],
  ['a boolean', true, 'BAD_REQUEST'],
  ['binary', Buffer.from('x'), 'BAD_REQUEST'],
  ['an empty id', '', 'BAD_ID'],
  ['an id of 129 characters', 'i'.repeat(129), 'BAD_ID'],
  ['an id with a newline', 'a\nb', 'BAD_ID'],
  ['an id with a NUL', 'a\u0000b', 'BAD_ID'],
  ['an id with DEL', 'a\u007fb', 'BAD_ID'],
  ['an id with a C1 control character', 'a\u0085b', 'BAD_ID'],
];

const RESERVED = [
  'P2P_REGISTER', 'P2P_REGISTER_SUCCESS', 'P2P_REGISTER_FAILED', 'P2P_DISCONNECT', 'P2P_UNREGISTER', 'P2P_EMIT',
  'P2P_EMIT_ACKNOWLEDGE', 'P2P_LIST_DEVICES', 'P2P_ANYTHING_NEW', 'SERVER_ERROR', 'LIST_CLIENTS', 'connect',
  'connect_error', 'disconnect', 'disconnecting', 'error', 'newListener', 'removeListener', 'reconnect',
  'reconnect_attempt', 'reconnecting', 'reconnect_error', 'reconnect_failed', 'connect_timeout',
];

/**
 * RELAY_REQUESTS are malformed P2P_EMIT / P2P_EMIT_ACKNOWLEDGE requests.
 * payload(c, ev) builds the arguments ([] for none) from the case's
 * devices (c.x the sender, c.y its peer, c.z a free device) and the event
 * name its peer must never receive.
 */
const RELAY_REQUESTS = [
  ['no payload', () => [], 'BAD_REQUEST'],
  ['a string payload', () => ['hello'], 'BAD_REQUEST'],
  ['a number payload', () => [42], 'BAD_REQUEST'],
  ['a null payload', () => [null], 'BAD_REQUEST'],
  ['a boolean payload', () => [true], 'BAD_REQUEST'],
  ['an array payload', (c, ev) => [[c.y.id, ev, []]], 'BAD_REQUEST'],
  ['a binary payload', () => [Buffer.from('{}')], 'BAD_REQUEST'],
  ['an empty object', () => [{}], 'BAD_REQUEST'],
  ['no target', (c, ev) => [{ event: ev, args: [] }], 'BAD_REQUEST'],
  ['a null target', (c, ev) => [{ targetClientId: null, event: ev, args: [] }], 'BAD_REQUEST'],
  ['a numeric target', (c, ev) => [{ targetClientId: 7, event: ev, args: [] }], 'BAD_REQUEST'],
  ['an object target', (c, ev) => [{ targetClientId: { id: c.y.id }, event: ev, args: [] }], 'BAD_REQUEST'],
  ['an array target', (c, ev) => [{ targetDeviceId: [c.y.id], event: ev, args: [] }], 'BAD_REQUEST'],
  ['a boolean target', (c, ev) => [{ targetDeviceId: true, event: ev, args: [] }], 'BAD_REQUEST'],
  ['targetClientId and targetDeviceId that disagree',
    (c, ev) => [{ targetClientId: c.y.id, targetDeviceId: c.z.id, event: ev, args: [] }], 'BAD_REQUEST'],
  ['an empty target', (c, ev) => [{ targetClientId: '', event: ev, args: [] }], 'BAD_ID'],
  ['a target of 129 characters', (c, ev) => [{ targetClientId: 't'.repeat(129), event: ev, args: [] }], 'BAD_ID'],
  ['a target with a control character', (c, ev) => [{ targetDeviceId: `${c.y.id}\n`, event: ev, args: [] }], 'BAD_ID'],
  ['no event', (c) => [{ targetClientId: c.y.id, args: [1] }], 'BAD_REQUEST'],
  ['a numeric event', (c) => [{ targetClientId: c.y.id, event: 5, args: [1] }], 'BAD_REQUEST'],
  ['a null event', (c) => [{ targetClientId: c.y.id, event: null, args: [1] }], 'BAD_REQUEST'],
  ['an object event', (c) => [{ targetClientId: c.y.id, event: { name: 'x' }, args: [1] }], 'BAD_REQUEST'],
  ['an empty event', (c) => [{ targetClientId: c.y.id, event: '', args: [1] }], 'BAD_REQUEST'],
  ['an event name of 257 bytes', (c) => [{ targetClientId: c.y.id, event: 'e'.repeat(257), args: [1] }], 'BAD_REQUEST'],
  ['args that are a string', (c, ev) => [{ targetClientId: c.y.id, event: ev, args: 'x' }], 'BAD_REQUEST'],
  ['args that are an object', (c, ev) => [{ targetClientId: c.y.id, event: ev, args: { 0: 'x' } }], 'BAD_REQUEST'],
  ['args that are a number', (c, ev) => [{ targetClientId: c.y.id, event: ev, args: 1 }], 'BAD_REQUEST'],
  ['args that are true', (c, ev) => [{ targetClientId: c.y.id, event: ev, args: true }], 'BAD_REQUEST'],
  ['args that are binary', (c, ev) => [{ targetClientId: c.y.id, event: ev, args: Buffer.from('x') }], 'BAD_REQUEST'],
  ['a target that is not the peer', (c, ev) => [{ targetClientId: c.z.id, event: ev, args: [1] }], 'NOT_PAIRED'],
  ['an offline target', (c, ev) => [{ targetClientId: uid('offline'), event: ev, args: [1] }], 'NOT_PAIRED'],
  ['the sender itself as target', (c, ev) => [{ targetClientId: c.x.id, event: ev, args: [1] }], 'NOT_PAIRED'],
  ...RESERVED.map((name) => [
    `the reserved event ${name}`, (c) => [{ targetClientId: c.y.id, event: name, args: [1] }], 'RESERVED_EVENT', name,
  ]),
];

/** refused sends event with args (and an ack when withAck) and checks the refusal. */
async function refused(dev, code, event, args, withAck, ackShape) {
  if (!withAck) {
    dev.send(event, ...args);
    await expectServerError(dev, code);
    return;
  }
  const answer = await dev.request(event, ...args);
  const msg = await expectServerError(dev, code);
  if (ackShape === 'false') {
    assert.equal(answer[0], false, `${event} refused: the ack must answer false`);
    assert.equal(expectAckError(answer.slice(1), code), msg, `${event} refused: the error object after false disagrees with SERVER_ERROR`);
  }
  else assert.equal(expectAckError(answer, code), msg, 'SERVER_ERROR and ack disagree');
}

/**
 * badCases lists the bad requests as {name, free, send}. send(c) gets the
 * case's devices: c.x the sender, paired with c.y (or, when free, not
 * paired; c.y is then just connected), and c.z, a free device; and
 * c.never(name?), which returns an event name (a fresh one by default)
 * that c.y and c.z must not receive.
 */
function badCases(kind) {
  const cases = [];
  // One kind per client version sends every malformed relay request, with
  // and without an ack; the others send a sample, with an ack.
  const full = kind.transport === (kind.version === 2 ? 'polling' : 'websocket');
  const add = (name, opts, send) => cases.push({ name, ...opts, send });

  add('P2P_REGISTER without an ack', { free: true }, async (c) => {
    c.x.send('P2P_REGISTER', c.z.id);
    await expectServerError(c.x, 'BAD_REQUEST');
  });
  add('P2P_REGISTER without a target', { free: true }, (c) => refused(c.x, 'BAD_REQUEST', 'P2P_REGISTER', [], true, 'false'));
  for (const [what, target, code] of REGISTER_TARGETS) {
    add(`P2P_REGISTER with ${what} as target`, { free: true }, (c) => refused(c.x, code, 'P2P_REGISTER', [target], true, 'false'));
  }

  for (const ev of ['P2P_REGISTER_SUCCESS', 'P2P_REGISTER_FAILED']) {
    add(`${ev} when nobody asked is ignored`, {}, async (c) => {
      c.x.send(ev);
      c.x.send(ev, c.z.id, 1);
    });
    add(`${ev} with an ack when nobody asked: the ack is called without values`, {}, async (c) => {
      assert.deepEqual(await c.x.request(ev, c.z.id), []);
    });
  }

  add('P2P_UNREGISTER when not paired', { free: true }, (c) => refused(c.x, 'NOT_PAIRED', 'P2P_UNREGISTER', [], true, 'false'));
  add('P2P_UNREGISTER when not paired, without an ack', { free: true },
    (c) => refused(c.x, 'NOT_PAIRED', 'P2P_UNREGISTER', ['junk'], false));

  for (const [what, payload, code, reserved] of RELAY_REQUESTS.filter((_, i) => full || i % 4 === 0)) {
    for (const [event, withAck] of [['P2P_EMIT_ACKNOWLEDGE', true], ...(full ? [['P2P_EMIT', false]] : [])]) {
      add(`${event} with ${what}`, {}, (c) => refused(c.x, code, event, payload(c, c.never(reserved)), withAck, 'error'));
    }
  }
  add('P2P_EMIT with an ack and a bad payload: the ack carries the error', {},
    (c) => refused(c.x, 'BAD_REQUEST', 'P2P_EMIT', [{ targetClientId: c.y.id, args: [] }], true, 'error'));
  add('P2P_EMIT_ACKNOWLEDGE without an ack is refused and not relayed', {},
    (c) => refused(c.x, 'BAD_REQUEST', 'P2P_EMIT_ACKNOWLEDGE', [c.x.relayRequest(c.never(), [1])], false));
  add('P2P_EMIT from a device that is not paired', { free: true }, (c) => refused(
    c.x, 'NOT_PAIRED', 'P2P_EMIT_ACKNOWLEDGE', [{ targetClientId: c.y.id, event: c.never(), args: [] }], true, 'error',
  ));
  add('an event name of 256 bytes is relayed', {}, async (c) => {
    const ev = `${uid('e')}-`.padEnd(256, 'e');
    assert.equal(Buffer.byteLength(ev), 256);
    const box = c.y.inbox(ev);
    c.x.emit(ev, 'edge');
    assert.deepEqual((await box.next()).args, ['edge']);
  });

  add('LIST_CLIENTS without an ack', {}, (c) => refused(c.x, 'BAD_REQUEST', 'LIST_CLIENTS', [], false));
  add('LIST_CLIENTS with arguments still answers the list', {}, async (c) => {
    const [ids] = await c.x.request('LIST_CLIENTS', 'junk', { x: 1 });
    assert.ok(Array.isArray(ids) && ids.includes(c.x.id));
  });
  add('P2P_LIST_DEVICES without an ack', {}, (c) => refused(c.x, 'BAD_REQUEST', 'P2P_LIST_DEVICES', [], false));
  add('P2P_LIST_DEVICES with a string query', {}, (c) => refused(c.x, 'BAD_REQUEST', 'P2P_LIST_DEVICES', ['all'], true, 'error'));
  add('P2P_LIST_DEVICES with a non-boolean available', {},
    (c) => refused(c.x, 'BAD_REQUEST', 'P2P_LIST_DEVICES', [{ available: 'yes' }], true, 'error'));

  const unknown = [
    ['an unknown event', 'hello'],
    ['P2P_DISCONNECT sent by a device', 'P2P_DISCONNECT'],
    ['SERVER_ERROR sent by a device', 'SERVER_ERROR'],
    ['an unknown P2P_ event', 'P2P_UNKNOWN'],
    ['a lower-case protocol name', 'p2p_register'],
    ['an event name of 10000 characters', 'u'.repeat(10000)],
    ['a numeric event name', 123],
  ];
  for (const [what, ev] of unknown) {
    add(what, {}, (c) => refused(c.x, 'UNKNOWN_EVENT', ev, ['x'], false));
    add(`${what}, with an ack`, {}, (c) => refused(c.x, 'UNKNOWN_EVENT', ev, ['x', { y: [1] }], true, 'error'));
  }
  return cases;
}

/** GROUPS is how many device sets share one offender kind's cases. */
const GROUPS = 3;

/**
 * group runs cases one after the other on one set of devices: each case
 * must leave everything as it found it, which is what it checks.
 */
function group(kind, cases) {
  const f = new Fleet();
  const paired = {};
  const free = {};
  before(async () => {
    const peerKind = { gen: (kind.gen % 2) + 1, version: kind.version === 2 ? 4 : 2 };
    [paired.x, paired.y] = await f.pair(kind, peerKind);
    [free.x, free.y, paired.z] = await Promise.all([f.connect(kind), f.connect(peerKind), f.connect({ gen: 2, version: 2 })]);
    free.z = paired.z;
  });
  after(() => f.close());
  for (const bc of cases) {
    test(bc.name, async () => {
      const watched = [];
      const c = {
        ...(bc.free ? free : paired),
        never(name) {
          const ev = name ?? `never-${uid()}`;
          // connect and disconnect are the client's own; a stray one shows
          // as a lost connection, which assertQuiet checks.
          if (!['connect', 'disconnect'].includes(ev)) watched.push(ev, [this.y.inbox(ev), this.z.inbox(ev)]);
          return ev;
        },
      };
      await bc.send(c);
      await assertQuiet(c.x, c.y, c.z);
      for (let i = 0; i < watched.length; i += 2) {
        const [yb, zb] = watched[i + 1];
        assert.deepEqual([...yb.take(), ...zb.take()], [], `${watched[i]} was relayed`);
      }
      if (!bc.free) await assertAckRoundTrip(c.x, c.y);
      await by.ping();
    });
  }
}

describe('bad requests', { concurrency: OFFENDERS.length * GROUPS }, () => {
  for (const kind of OFFENDERS) {
    const cases = badCases(kind);
    for (let g = 0; g < GROUPS; g++) {
      const mine = cases.filter((_, i) => i % GROUPS === g);
      describe(`from ${kindName(kind)} (${g + 1}/${GROUPS})`, { concurrency: 1 }, () => group(kind, mine));
    }
  }
  for (const kind of OFFENDERS) {
    test(`${kindName(kind)}: P2P_REGISTER with extra arguments pairs as usual`, async (t) => {
      const f = fleet(t);
      const [x, z] = await Promise.all([f.connect(kind), f.connect({ gen: 2 })]);
      assert.deepEqual(await x.request('P2P_REGISTER', z.id, 'extra', { more: 1 }), [true]);
      x.target = z.id;
      assert.equal((await z.asked.next()).src, x.id);
      await z.answered.next();
      await assertRelaying(x, z);
      await assertQuiet(x, z);
    });
  }
});

/**
 * PACKETS are malformed socket.io packets written straight onto the
 * connection. The socket.io layer cannot read them, so no code can answer
 * them: the sender loses its connection, its peer is told P2P_DISCONNECT,
 * everyone else carries on.
 */
const PACKETS = [
  ['an event that is not JSON', '2garbage'],
  ['an event that is not an array', '2{"a":1}'],
  ['an event with no name', '2[]'],
  ['an event named null', '2[null,1]'],
  ['an event named by an object', '2[{"a":1},1]'],
  ['an unknown packet type', '9hello'],
  ['a binary event whose attachments never come', '51-["x",{"_placeholder":true,"num":0}]'],
];

describe('malformed socket.io packets', { concurrency: 8 }, () => {
  for (const kind of OFFENDERS) {
    for (const [what, data] of PACKETS) {
      test(`${kindName(kind)}: ${what} closes only the sender`, async (t) => {
        const f = fleet(t);
        const [x, y] = await f.pair(kind, { gen: 2 });
        writeRaw(x.socket, x.version, data);
        if (what.startsWith('a binary event')) x.send('LIST_CLIENTS');
        assert.deepEqual(await y.peerGone.next(), [], `${y.id} must hear its peer is gone`);
        await x.closed.next();
        assert.equal(y.target, null);
        await assertQuiet(y);
        await by.check();
      });
    }
    test(`${kindName(kind)}: an ack for an unknown id is ignored`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(kind, { gen: 2 });
      writeRaw(x.socket, x.version, '3999["x"]');
      await assertQuiet(x, y);
      await assertRelaying(x, y);
    });
    test(`${kindName(kind)}: a forged binary placeholder in a plain event is plain data`, async (t) => {
      const f = fleet(t);
      const [x, y] = await f.pair(kind, { gen: 2 });
      x.send('P2P_EMIT', { _placeholder: true, num: 0 });
      await expectServerError(x, 'BAD_REQUEST');
      await assertQuiet(x, y);
      await assertRelaying(x, y);
    });
  }
});

test('the relay still serves the others', () => by.check());
