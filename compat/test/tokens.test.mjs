// Device tokens (new): with a device secret set, every device proves its
// id with an HS256 JWT whose subject is the id, in the handshake query
// (?token=, the only way socket.io-client 2.x has) or the handshake auth
// {token} (4.x). A valid token reclaims an id in use. Needs a relay of its
// own with the secret given in P2P_DEVICE_SECRET.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  assertConnectRefused, assertQuiet, assertRelaying, CLIENTS, expectServerError, fleet, KINDS, kindName, pairUp, uid,
} from './helpers.mjs';

const SECRET = process.env.P2P_DEVICE_SECRET;
if (!SECRET) throw new Error('P2P_DEVICE_SECRET is not set: these tests run through `go test ./compat/` (see compat/README.md)');

/** mint returns a JWT for id; the options spoil it in one way. */
function mint(id, { secret = SECRET, ttl = 600, sub = id, exp = true, alg = 'HS256' } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg, typ: 'JWT' })}.${b64({ sub, iat: now, ...(exp ? { exp: now + ttl } : {}) })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** carry returns the connect options that present token in the auth or the query. */
function carry(token, viaAuth) {
  return viaAuth ? { auth: { token } } : { query: { token } };
}

/** WAYS is every client with each way it can present a token. */
const WAYS = CLIENTS.flatMap((c) => (c.version === 2 ? [[c, false]] : [[c, false], [c, true]]));
const way = ([c, viaAuth]) => `${kindName(c)} in the ${viaAuth ? 'auth' : 'query'}`;

describe('a valid token admits a device', { concurrency: 8 }, () => {
  for (const w of WAYS) {
    for (const gen of [1, 2]) {
      test(`generation ${gen}, ${way(w)}`, async (t) => {
        const f = fleet(t);
        const id = uid('tok');
        const a = await f.connect({ gen, ...w[0] }, { id, ...carry(mint(id), w[1]) });
        const bid = uid('tok');
        const b = await f.connect({ gen: 3 - gen }, { id: bid, auth: { token: mint(bid) } });
        await pairUp(a, b);
        await assertRelaying(a, b);
      });
    }
  }
});

const BAD = [
  ['no token', () => undefined],
  ['an empty token', () => ''],
  ['a token for another id', () => mint(uid('other'))],
  ['an expired token', (id) => mint(id, { ttl: -120 })],
  ['a token signed with another secret', (id) => mint(id, { secret: `${SECRET}-not` })],
  ['a token without expiry', (id) => mint(id, { exp: false })],
  ['a token of another algorithm', (id) => mint(id, { alg: 'HS512' })],
  ['a malformed token', () => 'not.a.jwt'],
];

describe('a missing or bad token is refused with UNAUTHORIZED', { concurrency: 8 }, () => {
  for (const w of WAYS) {
    for (const [what, make] of BAD) {
      test(`${what}, ${way(w)}`, async (t) => {
        const f = fleet(t);
        const id = uid('bad');
        const token = make(id);
        const opts = token === undefined ? {} : carry(token, w[1]);
        const refused = (err) => assertConnectRefused(err, w[0].version, 'UNAUTHORIZED');
        await assert.rejects(f.connect({ gen: 2, ...w[0] }, { id, ...opts }), refused);
      });
    }
  }
});

describe('ids in use', { concurrency: 8 }, () => {
  KINDS.forEach((k, i) => {
    const w = WAYS[i % WAYS.length];
    const name = `${kindName(k)} in use: without a token ID_IN_USE, with a bad one UNAUTHORIZED, with a valid one ${way(w)} it is reclaimed`;
    test(name, async (t) => {
      const f = fleet(t);
      const id = uid('held');
      const holder = await f.connect(k, { id, ...carry(mint(id), false) });
      const pid = uid('peer');
      const peer = await f.connect({ gen: 2 }, { id: pid, auth: { token: mint(pid) } });
      await pairUp(peer, holder);
      const claimer = { gen: 3 - k.gen, ...w[0] };
      const refused = (code) => (err) => assertConnectRefused(err, claimer.version, code);
      await assert.rejects(f.connect(claimer, { id }), refused('ID_IN_USE'));
      const forged = carry(mint(id, { secret: `${SECRET}-x` }), w[1]);
      await assert.rejects(f.connect(claimer, { id, ...forged }), refused('UNAUTHORIZED'));
      await assertRelaying(peer, holder);
      await assertQuiet(peer, holder);

      const newcomer = await f.connect(claimer, { id, ...carry(mint(id), w[1]) });
      await expectServerError(holder, 'TAKEN_OVER');
      await holder.closed.next();
      assert.deepEqual(await peer.peerGone.next(), []);
      assert.equal(peer.target, null);
      await pairUp(newcomer, peer);
      await assertRelaying(newcomer, peer);
    });
  });
});
