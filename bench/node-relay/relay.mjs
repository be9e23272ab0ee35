// relay.mjs is the reference P2P relay on Node's socket.io 4: the relay a
// user would write or pick instead of p2pd, and the baseline the benchmark
// measures p2pd against. It implements the generation-2 flows of
// docs/PROTOCOL.md as a Node developer would: one Map from id to device,
// socket.io's own ack timeouts, no limits beyond socket.io's
// maxHttpBufferSize, and the two tunings socket.io's documentation
// recommends (the bufferutil add-on, installed as an optional dependency,
// and dropping the reference to each session's first HTTP request).
//
//   node relay.mjs [--host 127.0.0.1] [--port 0] [--ping-interval 25000]
//                  [--ping-timeout 20000] [--pair-timeout 10000]
//                  [--ack-timeout 30000] [--untuned]
//
// Durations are in milliseconds. Once listening it prints one line,
// "listening HOST:PORT", on stdout. SIGTERM and SIGINT stop it.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { MAX_EVENT_BYTES, RESERVED, badID, connectError, clientIdOf } from "./protocol.mjs";

const { values: opt } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "ping-interval": { type: "string", default: "25000" },
    "ping-timeout": { type: "string", default: "20000" },
    "pair-timeout": { type: "string", default: "10000" },
    "ack-timeout": { type: "string", default: "30000" },
    untuned: { type: "boolean", default: false },
  },
});

function millis(name) {
  const v = Number(opt[name]);
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`relay: --${name} must be a positive number of milliseconds, got ${opt[name]}`);
    process.exit(2);
  }
  return v;
}
const pairTimeout = millis("pair-timeout");
const ackTimeout = millis("ack-timeout");




/**
 * A connected device. peer is the paired Device or null; shake is the
 * pairing handshake it takes part in (as source or target) or null; owed
 * maps the ack callbacks of relayed requests this device has not answered
 * yet to the device that sent them.
 */
class Device {
  constructor(id, socket) {
    this.id = id;
    this.socket = socket;
    this.peer = null;
    this.shake = null;
    this.owed = new Map();
  }
}

/** @type {Map<string, Device>} */
const devices = new Map();

/** refuse sends SERVER_ERROR "CODE: message" and answers the request's ack, if any. */
function refuse(dev, code, message, ack, shape) {
  dev.socket.emit("SERVER_ERROR", `${code}: ${message}`);
  if (typeof ack !== "function") return;
  // A refused P2P_REGISTER or P2P_UNREGISTER answers false, then the reason.
  if (shape === "false") ack(false, { error: { code, message } });
  else ack({ error: { code, message } });
}

function register(src, target, ack) {
  if (typeof ack !== "function") return refuse(src, "BAD_REQUEST", "P2P_REGISTER needs an ack callback");
  const problem = badID(target);
  if (problem) return refuse(src, typeof target === "string" ? "BAD_ID" : "BAD_REQUEST", problem, ack, "false");
  if (target === src.id) return refuse(src, "SELF", "you cannot pair with yourself", ack, "false");
  if (src.peer) {
    if (src.peer.id === target) return ack(true);
    return refuse(src, "BUSY", `you are paired with "${src.peer.id}"; unregister first`, ack, "false");
  }
  const dst = devices.get(target);
  if (!dst) return refuse(src, "OFFLINE", `device "${target}" is offline`, ack, "false");
  const theirs = dst.shake;
  if (theirs && !theirs.done && theirs.src === dst && theirs.dst === src) {
    // Both ask each other at once: each request is the other's consent.
    settle(theirs, true);
    return ack(true);
  }
  if (src.shake) return refuse(src, "BUSY", "you are already pairing", ack, "false");
  if (dst.peer || dst.shake) return refuse(src, "BUSY", `device "${target}" is busy`, ack, "false");

  const hs = { src, dst, ack, done: false };
  src.shake = dst.shake = hs;
  dst.socket.timeout(pairTimeout).emit("P2P_REGISTER", src.id, (err, answer) => {
    const yes = !err && answer === true;
    if (!hs.done) {
      settle(hs, yes, err ? "TIMEOUT" : "REFUSED");
    } else if (yes && dst.peer !== src) {
      // A late yes: tell the target the pair did not form.
      dst.socket.emit("P2P_DISCONNECT");
    }
  });
}

/** settle ends a pairing handshake: paired, or refused with code. */
function settle(hs, accept, code) {
  hs.done = true;
  const { src, dst } = hs;
  if (src.shake === hs) src.shake = null;
  if (dst.shake === hs) dst.shake = null;
  if (accept) {
    src.peer = dst;
    dst.peer = src;
    hs.ack(true);
    return;
  }
  const why = {
    TIMEOUT: `device "${dst.id}" did not answer within ${pairTimeout} ms`,
    REFUSED: `device "${dst.id}" refused to pair`,
    OFFLINE: `device "${dst.id}" disconnected during pairing`,
  }[code];
  refuse(src, code, why, hs.ack, "false");
}

function unregister(src, ack) {
  const peer = src.peer;
  if (!peer) return refuse(src, "NOT_PAIRED", "you are not paired", ack, "false");
  src.peer = peer.peer = null;
  peer.socket.emit("P2P_UNREGISTER", () => {});
  if (typeof ack === "function") ack(true);
}

/** relay forwards P2P_EMIT (withAck false) and P2P_EMIT_ACKNOWLEDGE to the peer. */
function relay(src, req, ack, withAck) {
  if (withAck && typeof ack !== "function") {
    return refuse(src, "BAD_REQUEST", "P2P_EMIT_ACKNOWLEDGE needs an ack callback");
  }
  if (req === null || typeof req !== "object" || Array.isArray(req)) {
    return refuse(src, "BAD_REQUEST", "relay request must be an object {targetClientId, event, args}", ack);
  }
  const target = req.targetClientId ?? req.targetDeviceId;
  const problem = badID(target);
  if (problem) return refuse(src, target === undefined ? "BAD_REQUEST" : "BAD_ID", problem, ack);
  const { event } = req;
  if (typeof event !== "string" || event === "") return refuse(src, "BAD_REQUEST", "event must be a non-empty string", ack);
  if (Buffer.byteLength(event) > MAX_EVENT_BYTES) {
    return refuse(src, "BAD_REQUEST", `event name is longer than ${MAX_EVENT_BYTES} bytes`, ack);
  }
  if (event.startsWith("P2P_") || RESERVED.has(event)) return refuse(src, "RESERVED_EVENT", `event "${event}" is reserved`, ack);
  let args = req.args ?? [];
  if (!Array.isArray(args)) return refuse(src, "BAD_REQUEST", "args must be an array", ack);
  const dst = src.peer;
  if (!dst || dst.id !== target) return refuse(src, "NOT_PAIRED", `device "${target}" is not your peer`, ack);

  if (!withAck) {
    dst.socket.emit(event, ...args);
    if (typeof ack === "function") ack();
    return;
  }
  dst.owed.set(ack, src);
  dst.socket.timeout(ackTimeout).emit(event, ...args, (err, ...answer) => {
    if (!dst.owed.delete(ack)) return; // already answered OFFLINE
    if (err) return refuse(src, "TIMEOUT", `device "${dst.id}" did not answer "${event}" within ${ackTimeout} ms`, ack);
    ack(...answer);
  });
}

function listClients(src, ack) {
  if (typeof ack !== "function") return refuse(src, "BAD_REQUEST", "LIST_CLIENTS needs an ack callback");
  ack([...devices.keys()].sort());
}

/** leave forgets a device whose connection closed and tells whoever depended on it. */
function leave(dev) {
  if (devices.get(dev.id) === dev) devices.delete(dev.id);
  const hs = dev.shake;
  if (hs && !hs.done) {
    if (hs.dst === dev) settle(hs, false, "OFFLINE");
    else {
      hs.done = true;
      hs.dst.shake = null;
    }
  }
  if (dev.peer) {
    const peer = dev.peer;
    dev.peer = peer.peer = null;
    peer.socket.emit("P2P_DISCONNECT");
  }
  for (const [ack, src] of dev.owed) {
    refuse(src, "OFFLINE", `device "${dev.id}" disconnected before answering`, ack);
  }
  dev.owed.clear();
}


const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: millis("ping-interval"),
  pingTimeout: millis("ping-timeout"),
  serveClient: false,
});

if (!opt.untuned) {
  // socket.io's memory-usage advice: the first HTTP request of each session
  // is kept for middlewares such as express-session, which this relay has
  // none of. Keep only its query, where the device id is.
  io.engine.on("connection", (rawSocket) => {
    rawSocket.query = rawSocket.request._query;
    rawSocket.request = null;
  });
}

/** clientIdOf returns the id a device connected with (?clientId=). */

io.use((socket, next) => {
  const id = clientIdOf(socket);
  if (id === undefined) return next(connectError("BAD_ID", "no device id: connect with ?clientId=ID"));
  const problem = badID(id);
  if (problem) return next(connectError("BAD_ID", problem));
  if (devices.has(id)) return next(connectError("ID_IN_USE", `device id "${id}" is already connected`));
  next();
});

io.on("connection", (socket) => {
  const id = clientIdOf(socket);
  if (devices.has(id)) {
    // Another connection claimed the id since the middleware looked.
    socket.emit("SERVER_ERROR", `ID_IN_USE: device id "${id}" is already connected`);
    socket.disconnect(true);
    return;
  }
  const dev = new Device(id, socket);
  devices.set(id, dev);
  socket.onAny((event, ...args) => {
    const last = args[args.length - 1];
    const ack = typeof last === "function" ? args.pop() : undefined;
    switch (event) {
      case "P2P_EMIT":
        return relay(dev, args[0], ack, false);
      case "P2P_EMIT_ACKNOWLEDGE":
        return relay(dev, args[0], ack, true);
      case "P2P_REGISTER":
        return register(dev, args[0], ack);
      case "P2P_UNREGISTER":
        return unregister(dev, ack);
      case "LIST_CLIENTS":
        return listClients(dev, ack);
      default:
        return refuse(dev, "UNKNOWN_EVENT", `unknown event "${String(event).slice(0, 64)}"`, ack);
    }
  });
  socket.on("disconnect", () => leave(dev));
});

httpServer.listen(Number(opt.port), opt.host, () => {
  const { address, port } = httpServer.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});

function stop() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
