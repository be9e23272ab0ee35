// Engine.IO 3 (socket.io-client 2.x): packets for "/" after the device left
// it. The generation-2 plugin hands apps its socket wrapped in a Proxy;
// disconnect() through the Proxy sends one DISCONNECT ("41") but passes the
// Proxy to the manager, which does not recognise it and so neither closes
// the Engine.IO connection nor stops reconnecting. The socket.io 2.x server
// ignored packets for a namespace the connection had left; a server that
// closes the connection instead makes the manager reconnect, and an
// Engine.IO 3 connection joins "/" as it opens: the device is back on the
// relay, with no one behind it (a ghost holding its id). So the relay must
// ignore them and keep the connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { awaitConnect, openSocket, TRANSPORTS } from '../lib/sio.mjs';
import { assertQuiet, bystanders, fleet, RELAY_URL, uid, WAIT_MS } from './helpers.mjs';

let by;
before(async () => {
  by = await bystanders({ gen: 2, version: 2, transport: 'polling' }, { gen: 1, version: 2, transport: 'websocket' });
});
after(() => by.close());

/**
 * leftButOpen connects a 2.x device with reconnection on (the client's
 * default), disconnects it through a Proxy as the plugin's users do, and
 * checks the library sent one DISCONNECT and kept the Engine.IO connection.
 * It returns the socket, its engine, what the engine received since, and
 * the manager's reconnection attempts.
 */
async function leftButOpen(t, transport, id) {
  const socket = openSocket(RELAY_URL, { version: 2, transport, query: { clientId: id }, reconnection: true });
  t.after(() => socket.io.close());
  await awaitConnect(socket, 2);
  const engine = socket.io.engine;
  const written = [];
  const write = engine.write.bind(engine);
  engine.write = (data, ...rest) => {
    written.push(data);
    return write(data, ...rest);
  };
  const received = [];
  engine.on('packet', (p) => {
    if (p.type === 'message') received.push(p.data);
  });
  const attempts = [];
  socket.io.on('reconnect_attempt', (n) => attempts.push(n));

  const app = new Proxy(socket, { get: (target, prop) => target[prop] });
  app.disconnect();
  app.disconnect();
  assert.deepEqual(written, ['1'], 'socket.io-client 2.x sends one DISCONNECT, however often disconnect() is called');
  assert.equal(engine.readyState, 'open', 'the Engine.IO connection should outlive a disconnect() made through a Proxy');
  return { socket, engine, received, attempts };
}

/** pingOrClose pings the relay and resolves with "pong", or "close: reason" if the connection closes first. */
function pingOrClose(engine) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(reject, new Error(`no pong within ${WAIT_MS} ms`)), WAIT_MS);
    const onPong = () => done(resolve, 'pong');
    const onClose = (reason) => done(resolve, `close: ${reason}`);
    const done = (fn, v) => {
      clearTimeout(timer);
      engine.off('pong', onPong);
      engine.off('close', onClose);
      fn(v);
    };
    engine.on('pong', onPong);
    engine.on('close', onClose);
    engine.ping();
  });
}

/** waitUntilGone waits until LIST_CLIENTS, asked through dev, no longer lists id. */
async function waitUntilGone(dev, id) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const ids = await dev.listClients();
    if (!ids.includes(id)) return;
    if (Date.now() > deadline) throw new Error(`${id} still listed ${WAIT_MS} ms after it left`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** STRAYS are packets for "/" sent after leaving it (socket.io encoding; Engine.IO adds the "4"). */
const STRAYS = [
  ['a second DISCONNECT', ['1']],
  ['an event with an ack', ['20["LIST_CLIENTS"]']],
  ['an event, then a DISCONNECT', ['2["P2P_EMIT",{"targetClientId":"x","event":"e","args":[]}]', '1']],
];

describe('Engine.IO 3: packets for "/" after leaving it are ignored', { concurrency: 8 }, () => {
  for (const transport of TRANSPORTS) {
    for (const [what, packets] of STRAYS) {
      test(`sio2/${transport}: ${what}: the connection stays, no device comes back`, async (t) => {
        const f = fleet(t);
        const watcher = await f.connect({ gen: 2 });
        const id = uid('eio3');
        const { engine, received, attempts } = await leftButOpen(t, transport, id);
        await waitUntilGone(watcher, id);

        for (const p of packets) engine.write(p);
        // The relay reads a connection's packets in order: a pong means it
        // has read the strays, and kept the connection.
        assert.equal(await pingOrClose(engine), 'pong', 'the relay closed the connection over a packet for "/"');
        assert.deepEqual(received, [], 'the relay answered a packet for a namespace the device had left');
        assert.deepEqual(attempts, [], 'the manager reconnected');
        assert.ok(!(await watcher.listClients()).includes(id), `${id} is listed again: a ghost`);

        // The id is free for the device's next connection.
        const again = await f.connect({ gen: 2, version: 2, transport }, { id });
        await assertQuiet(watcher, again);
      });
    }
  }

  test('the relay still serves the others', () => by.check());
});
