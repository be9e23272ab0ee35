// Shared helpers of the compatibility tests: the relay under test, device
// kinds, a per-test fleet of devices that is closed when the test ends, and
// assertions on the relay's answers.
import assert from 'node:assert/strict';
import { connectDevice, EV } from '../lib/device.mjs';
import { Inbox } from '../lib/inbox.mjs';
import { ConnectRefused, connectSocket, TRANSPORTS, VERSIONS, WAIT_MS } from '../lib/sio.mjs';

/** RELAY_URL is the relay under test, from P2P_URL. */
export const RELAY_URL = process.env.P2P_URL;
if (!RELAY_URL) {
  throw new Error('P2P_URL is not set: run the tests through `go test ./compat/`, or start p2pd and set P2P_URL (see compat/README.md)');
}

/** envMillis reads a duration in milliseconds that a test file needs. */
export function envMillis(name) {
  const v = Number(process.env[name]);
  if (!Number.isFinite(v) || v <= 0) {
    throw new Error(`${name} must be set to the relay's setting, in milliseconds (see compat/README.md)`);
  }
  return v;
}

/** KINDS is every device kind: generation x client version x transport. */
export const KINDS = Object.freeze(
  [1, 2].flatMap((gen) =>
    VERSIONS.flatMap((version) => TRANSPORTS.map((transport) => Object.freeze({ gen, version, transport }))),
  ),
);

/** CLIENTS is every client version x transport. */
export const CLIENTS = Object.freeze(
  VERSIONS.flatMap((version) => TRANSPORTS.map((transport) => Object.freeze({ version, transport }))),
);

/** kindName names a kind, e.g. "gen1/sio2/polling". */
export function kindName({ gen, version, transport }) {
  return gen === undefined ? `sio${version}/${transport}` : `gen${gen}/sio${version}/${transport}`;
}

let seq = 0;
/** uid returns a device id no other test (or test process) uses. */
export function uid(label = 'dev') {
  seq += 1;
  return `${label}-${process.pid}-${seq}`;
}

/**
 * Fleet connects devices for one test and closes them all when it ends.
 * Create it with fleet(t).
 */
export class Fleet {
  constructor() {
    this.devices = [];
    this.sockets = [];
  }

  /** connect connects a device of kind {gen, version, transport} (defaults: gen2, sio4, websocket). */
  async connect(kind = {}, opts = {}) {
    const dev = await connectDevice(RELAY_URL, { ...kind, id: opts.id ?? uid(opts.label ?? `g${kind.gen ?? 2}`), ...opts });
    this.devices.push(dev);
    return dev;
  }

  /** pair connects two devices of the given kinds and pairs a (asking) with b. */
  async pair(kindA = {}, kindB = {}, opts = {}) {
    const [a, b] = await Promise.all([this.connect(kindA, opts.a), this.connect(kindB, opts.b)]);
    await pairUp(a, b);
    return [a, b];
  }

  /**
   * tryConnectRaw connects a bare socket.io socket with this query and
   * resolves with it, or rejects as connectSocket does.
   */
  async tryConnectRaw({ version = 4, transport = 'websocket' }, query) {
    const s = await connectSocket(RELAY_URL, { version, transport, query });
    this.sockets.push(s);
    return s;
  }

  close() {
    for (const d of this.devices) d.close();
    for (const s of this.sockets) s.close();
  }
}

/** fleet returns a Fleet that is closed when test context t ends. */
export function fleet(t) {
  const f = new Fleet();
  t.after(() => f.close());
  return f;
}

/** pairUp makes a ask to pair with b and checks both sides agree they are paired. */
export async function pairUp(a, b) {
  const ok = await a.register(b.id);
  assert.equal(ok, true, `${a.id} (${a.kind}) could not pair with ${b.id} (${b.kind})`);
  const ask = await b.asked.next();
  assert.equal(ask.src, a.id, `${b.id} was asked by ${ask.src}, want ${a.id}`);
  assert.equal(typeof ask.callback, 'function', 'the relay must send P2P_REGISTER with an ack callback');
  assert.deepEqual(ask.rest, [], 'P2P_REGISTER carries (sourceId, ack) only');
  assert.deepEqual(await b.answered.next(), { src: a.id, yes: true });
  assert.equal(a.target, b.id);
  assert.equal(b.target, a.id);
}

/**
 * expectRegisterRefused makes dev ask to pair with targetId and checks the
 * relay answers false with a SERVER_ERROR carrying code.
 */
export async function expectRegisterRefused(dev, targetId, code) {
  assert.equal(await dev.register(targetId), false, `${dev.id} (${dev.kind}) paired with ${targetId}, want ${code}`);
  return expectServerError(dev, code);
}

/**
 * assertConnectRefused checks that err is the relay refusing a connection
 * with code, as socket.io-client `version` delivers it: 4.x a connect_error
 * whose message is "CODE: message" and data {code, message}; 2.x an
 * "error" event whose argument is {code, message}.
 */
export function assertConnectRefused(err, version, code) {
  assert.ok(err instanceof ConnectRefused, `want a refusal with ${code}, got ${err && err.stack}`);
  assert.equal(err.code, code, `refused with ${err.code}: ${err.relayMessage}, want ${code}`);
  assert.equal(typeof err.relayMessage, 'string');
  assert.ok(err.relayMessage.length > 0, 'refusal without a message');
  if (version === 4) {
    assert.ok(err.raw instanceof Error, 'socket.io-client 4.x: connect_error must carry an Error');
    assert.equal(err.raw.message, `${code}: ${err.relayMessage}`);
    assert.deepEqual(err.raw.data, { code, message: err.relayMessage });
  } else {
    assert.deepEqual(err.raw, { code, message: err.relayMessage }, 'socket.io-client 2.x: the error event carries {code, message}');
  }
  return true;
}

/**
 * expectServerError waits for dev's next SERVER_ERROR and checks it carries
 * one string "CODE: message" with the given code. It returns the message.
 */
export async function expectServerError(dev, code) {
  const args = await dev.serverErrors.next();
  assert.equal(args.length, 1, `SERVER_ERROR with ${args.length} arguments: ${JSON.stringify(args)}`);
  assert.equal(typeof args[0], 'string', `SERVER_ERROR argument is ${typeof args[0]}`);
  const m = /^([A-Z_]+): (.+)$/s.exec(args[0]);
  assert.ok(m, `SERVER_ERROR text ${JSON.stringify(args[0])} is not "CODE: message"`);
  assert.equal(m[1], code, `SERVER_ERROR ${JSON.stringify(args[0])}, want code ${code}`);
  return m[2];
}

/**
 * expectAckError checks that an ack answered a refused relay request: one
 * argument {error: {code, message}} with the given code. It returns the
 * message.
 */
export function expectAckError(answer, code) {
  assert.equal(answer.length, 1, `ack answered ${JSON.stringify(answer)}, want one {error} argument`);
  const [v] = answer;
  assert.ok(v && typeof v === 'object' && v.error && typeof v.error === 'object', `ack answered ${JSON.stringify(answer)}`);
  assert.deepEqual(Object.keys(v), ['error']);
  assert.equal(v.error.code, code, `ack error ${JSON.stringify(v.error)}, want code ${code}`);
  assert.equal(typeof v.error.message, 'string');
  assert.ok(v.error.message.length > 0, 'ack error message is empty');
  return v.error.message;
}

/**
 * expectRefused checks a refused request from both sides: the SERVER_ERROR
 * and, when the request carried one, its ack answer, which must tell the
 * same code and message.
 */
export async function expectRefused(dev, code, answer) {
  const msg = await expectServerError(dev, code);
  if (answer !== undefined) assert.equal(expectAckError(answer, code), msg, 'SERVER_ERROR and ack disagree');
  return msg;
}

/**
 * assertQuiet checks, after a round trip, that nothing unexpected reached
 * these devices: no SERVER_ERROR, no P2P_DISCONNECT, no pairing request,
 * no protocol violation, and they are still connected.
 */
export async function assertQuiet(...devs) {
  await Promise.all(devs.map((d) => d.barrier()));
  for (const d of devs) {
    assert.deepEqual(d.serverErrors.take(), [], `${d.id} (${d.kind}) got SERVER_ERROR`);
    assert.deepEqual(d.peerGone.take(), [], `${d.id} (${d.kind}) got P2P_DISCONNECT`);
    assert.deepEqual(d.asked.take().map((a) => a.src), [], `${d.id} (${d.kind}) was asked to pair`);
    assert.deepEqual(d.answered.take(), [], `${d.id} (${d.kind}) answered a pairing request`);
    if (d.unregistered) assert.deepEqual(d.unregistered.take(), [], `${d.id} (${d.kind}) got P2P_UNREGISTER`);
    assert.deepEqual(d.violations, [], `${d.id} (${d.kind}): protocol violations`);
    assert.ok(d.connected, `${d.id} (${d.kind}) is disconnected`);
  }
}

let token = 0;
/**
 * assertRelaying checks that a and b, a pair, still relay both ways: a
 * plain event from a to b, and an event with an ack from b to a.
 */
export async function assertRelaying(a, b) {
  const n = ++token;
  const ping = `ping-${n}`;
  const got = b.inbox(ping);
  a.emit(ping, n, 'via relay');
  const m = await got.next();
  assert.deepEqual(m.args, [n, 'via relay'], `${b.id} got ${ping} with wrong args`);
  assert.equal(m.ack, null);

  const pong = `pong-${n}`;
  const asked = a.inbox(pong);
  const answer = b.emitWithAck(pong, n);
  const q = await arrival(asked, answer);
  assert.deepEqual(q.args, [n]);
  assert.equal(typeof q.ack, 'function', `${a.id} got ${pong} without an ack callback`);
  q.ack('pong', n);
  assert.deepEqual(await answer, ['pong', n], 'ack values changed on the way back');
}

/**
 * arrival waits for the next event in box, failing at once, with the
 * relay's answer, if the sender's ack is answered first (a refusal).
 */
async function arrival(box, answer) {
  const refused = answer.then((v) => {
    throw new Error(`the relay answered ${JSON.stringify(v)} instead of relaying to ${box.name}`);
  });
  refused.catch(() => {});
  return Promise.race([box.next(), refused]);
}

/**
 * assertAckRoundTrip checks, in one round trip, that a and b, a pair, still
 * relay: an event with an ack from a to b, answered back to a.
 */
export async function assertAckRoundTrip(a, b) {
  const n = ++token;
  const ev = `trip-${n}`;
  const box = b.inbox(ev);
  const answer = a.emitWithAck(ev, n);
  const m = await arrival(box, answer);
  assert.deepEqual(m.args, [n]);
  m.ack(n, 'back');
  assert.deepEqual(await answer, [n, 'back'], 'ack values changed on the way back');
}

/**
 * gate returns a consent function that holds every pairing request until
 * release(answer) is called, and an inbox of the sources it holds.
 */
export function gate() {
  const held = new Inbox('held pairing requests');
  let pending = [];
  return {
    held,
    consent(src) {
      return new Promise((resolve) => {
        pending.push(resolve);
        held.push(src);
      });
    },
    release(answer) {
      const p = pending;
      pending = [];
      for (const resolve of p) resolve(answer);
    },
  };
}

/** Bystanders is a pair that every test checks keeps relaying. */
export async function bystanders(
  kindA = { gen: 1, version: 2, transport: 'polling' },
  kindB = { gen: 2, version: 4, transport: 'websocket' },
) {
  const f = new Fleet();
  const [a, b] = await f.pair(kindA, kindB, { a: { label: 'bystander' }, b: { label: 'bystander' } });
  let turn = false;
  return {
    a,
    b,
    /** check asserts the pair still relays and nothing reached it. */
    async check() {
      await assertRelaying(a, b);
      await assertQuiet(a, b);
    },
    /**
     * ping asserts, in one round trip, that the pair still relays; the
     * sides take turns, so that neither nears the relay's rate limit.
     */
    ping() {
      turn = !turn;
      return turn ? assertAckRoundTrip(a, b) : assertAckRoundTrip(b, a);
    },
    close: () => f.close(),
  };
}

/**
 * bigUnicode returns a string of about `bytes` UTF-8 bytes mixing scripts,
 * combining marks, emoji (with skin tones and joiners), astral characters
 * and JSON-significant characters.
 */
export function bigUnicode(bytes) {
  const pieces = [
    'héllo wörld ', 'Привет, мир ', '你好，世界 ', 'こんにちは世界 ', 'مرحبا بالعالم ', 'שלום עולם ',
    'नमस्ते दुनिया ', 'γειά σου κόσμε ', '😀🎉👍🏽👨‍👩‍👧‍👦🏳️‍🌈 ', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝄞 ', 'e\u0301 a\u030a ',
    '"quoted" \\back\\slash/ \n\t\r\u2028\u2029\u0000\u001f ', '{"not":"json"} [1,2] ',
  ];
  const parts = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const p = `${pieces[i % pieces.length]}${i} `;
    parts.push(p);
    n += Buffer.byteLength(p);
  }
  return parts.join('');
}

/** waitMs is the default wait for things that should happen. */
export { EV, WAIT_MS };
