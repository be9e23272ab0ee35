// The real socket.io clients under test, and how to open a connection with
// each: socket.io-client 2.x ("sio2", Engine.IO 3, what the original plugin
// used) and 4.x ("sio4", Engine.IO 4), over one transport only.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const factories = {
  2: require('sio2'),
  4: require('sio4').io,
};

/** The socket.io-client major versions under test. */
export const VERSIONS = Object.freeze([2, 4]);

/** The transports under test; a connection uses exactly one. */
export const TRANSPORTS = Object.freeze(['polling', 'websocket']);

/** How long to wait for something that should happen, in milliseconds. */
export const WAIT_MS = Number(process.env.P2P_WAIT_MS) || 10000;

/** The version string of each client package, for test names and reports. */
export const CLIENT_VERSIONS = Object.freeze({
  2: require('sio2/package.json').version,
  4: require('sio4/package.json').version,
});

/**
 * ConnectRefused is the relay refusing a connection. code and message are
 * what the relay sent; raw is the value the client handed to the
 * application (4.x: the connect_error Error; 2.x: the "error" event's
 * argument).
 */
export class ConnectRefused extends Error {
  constructor(code, message, raw, version) {
    super(`connection refused: ${code}: ${message}`);
    this.name = 'ConnectRefused';
    this.code = code;
    this.relayMessage = message;
    this.raw = raw;
    this.version = version;
  }
}

/**
 * openSocket starts a connection with socket.io-client `version` over
 * `transport` only, with the handshake query and (4.x only) auth, and
 * without reconnection unless `reconnection` is true (the clients' own
 * default). The caller must close it.
 */
export function openSocket(url, { version = 4, transport = 'websocket', query = {}, auth, reconnection = false } = {}) {
  const io = factories[version];
  if (!io) throw new Error(`unknown socket.io-client version ${version}`);
  if (!TRANSPORTS.includes(transport)) throw new Error(`unknown transport ${transport}`);
  if (auth !== undefined && version === 2) throw new Error('socket.io-client 2.x has no handshake auth: use the query');
  return io(url, {
    query,
    ...(auth === undefined ? {} : { auth }),
    transports: [transport],
    upgrade: false,
    forceNew: true,
    reconnection,
    timeout: WAIT_MS,
  });
}

/**
 * connectSocket opens a connection and resolves with the socket once the
 * relay accepted it. It rejects with ConnectRefused when the relay refused
 * it, with another Error when the connection failed or timed out; the
 * socket is closed then.
 */
export function connectSocket(url, opts = {}) {
  return awaitConnect(openSocket(url, opts), opts.version ?? 4);
}

/**
 * awaitConnect resolves with socket, opened by openSocket with socket.io-client
 * `version`, once the relay accepted it; it rejects as connectSocket does.
 */
export function awaitConnect(socket, version) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no connect within ${WAIT_MS} ms`)), WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onConnectError);
      socket.off('error', onError);
    };
    const fail = (err) => {
      done();
      socket.close();
      reject(err);
    };
    const onConnect = () => {
      done();
      resolve(socket);
    };
    // 4.x: a middleware refusal arrives as connect_error with err.data;
    // 2.x: connect_error only means the transport failed.
    const onConnectError = (err) => {
      if (version === 4 && err && err.data && typeof err.data === 'object') {
        fail(new ConnectRefused(err.data.code, err.data.message, err, version));
        return;
      }
      fail(new Error(`connect_error: ${err && err.message ? err.message : err}`));
    };
    // 2.x: a middleware refusal arrives as an "error" event whose argument
    // is the data the server attached.
    const onError = (data) => {
      if (data && typeof data === 'object' && typeof data.code === 'string') {
        fail(new ConnectRefused(data.code, data.message, data, version));
        return;
      }
      fail(new Error(`error event before connect: ${JSON.stringify(data)}`));
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onConnectError);
    socket.on('error', onError);
  });
}

/**
 * writeRaw sends a raw Engine.IO message on the socket's connection,
 * bypassing the socket.io encoder: for malformed-packet tests only.
 */
export function writeRaw(socket, version, data) {
  const engine = socket.io.engine;
  if (version === 2) engine.write(data);
  else engine.send(data);
}
