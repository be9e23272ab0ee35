// cluster.mjs is the reference P2P relay of relay.mjs made into a cluster the
// way a Node developer would: several processes sharing one Redis through
// socket.io's Redis adapter (@socket.io/redis-adapter, on the `redis`
// client), each device in a room named by its id, and every relayed message
// sent to the peer's room, with its ack, by io.to(peer).emitWithAck(...).
// It is the baseline of the benchmark's cluster run (bench/run.sh
// --cluster), where p2pd's nodes are measured against it.
//
//   node cluster.mjs --redis redis://127.0.0.1:6379 [--node-id n1]
//                    [--host 127.0.0.1] [--port 0] [--ping-interval 25000]
//                    [--ping-timeout 20000] [--pair-timeout 10000]
//                    [--ack-timeout 30000] [--untuned]
//
// Durations are in milliseconds. Once connected to Redis and listening it
// prints one line, "listening HOST:PORT", on stdout. SIGTERM and SIGINT stop
// it.
//
// What is shared, and how:
//
//   - Which devices are connected, cluster-wide: the Redis hash p2p:devices
//     (id -> node). A connection claims its id with HSETNX (ID_IN_USE when
//     another holds it) and gives it back with HDEL when it closes.
//   - Pairs: the Redis hash p2p:peers (id -> peer id), written by the node
//     of the device that asked; each node also keeps the peer of each of its
//     own devices in memory, told by io.serverSideEmit("paired" /
//     "unpaired") when the pair forms or ends on another node, so that
//     relaying reads no Redis.
//   - Pairing handshakes in progress: the Redis hash p2p:shakes (id -> the
//     other device), claimed with HSETNX, so that a device takes part in one
//     at a time cluster-wide (BUSY).
//   - Messages and their acks: the adapter's pub/sub. emitWithAck to the
//     peer's room answers with an array of every socket's first ack value;
//     the relay passes the first element on (a device's answer of several
//     values reaches the sender as its first value only: the adapter carries
//     one value per socket across nodes), and an empty array, no socket in
//     the room, is the peer having gone (OFFLINE).
//
// What it leaves out, next to relay.mjs and p2pd: crossed pairing requests
// (each device asking the other at once) are refused BUSY rather than taken
// as consent; an ack owed by a peer that disconnects is answered TIMEOUT
// once --ack-timeout has passed (its node does not hold the ack to answer
// OFFLINE at once); a node that dies leaves its devices' ids and pairs in
// Redis (nothing reaps them). None of this is on the benchmark's path.
//
// The adapter's option publishOnSpecificResponseChannel is on, so that each
// ack's answer goes to the node that asked rather than to every node: what
// the adapter's documentation offers to cut that traffic.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { MAX_EVENT_BYTES, RESERVED, badID, connectError, clientIdOf } from "./protocol.mjs";

const { values: opt } = parseArgs({
  options: {
    redis: { type: "string" },
    "node-id": { type: "string", default: `node-${process.pid}` },
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
    console.error(`cluster: --${name} must be a positive number of milliseconds, got ${opt[name]}`);
    process.exit(2);
  }
  return v;
}
if (!opt.redis) {
  console.error("cluster: --redis redis://HOST:PORT is required");
  process.exit(2);
}
const pairTimeout = millis("pair-timeout");
const ackTimeout = millis("ack-timeout");
const nodeID = opt["node-id"];

const DEVICES = "p2p:devices";
const PEERS = "p2p:peers";
const SHAKES = "p2p:shakes";



/** A device connected to this node; peer is its peer's id or null. */
class Device {
  constructor(id, socket) {
    this.id = id;
    this.socket = socket;
    this.peer = null;
    this.pairing = false; // it asked to pair and waits for the answer
    this.gone = false;
  }
}

/** @type {Map<string, Device>} this node's devices */
const devices = new Map();

const redis = createClient({ url: opt.redis });
const sub = redis.duplicate();
redis.on("error", (err) => console.error(`cluster: redis: ${err.message}`));
sub.on("error", (err) => console.error(`cluster: redis (subscriber): ${err.message}`));
await Promise.all([redis.connect(), sub.connect()]);

/** refuse sends SERVER_ERROR "CODE: message" and answers the request's ack, if any. */
function refuse(dev, code, message, ack, shape) {
  dev.socket.emit("SERVER_ERROR", `${code}: ${message}`);
  if (typeof ack !== "function") return;
  if (shape === "false") ack(false, { error: { code, message } });
  else ack({ error: { code, message } });
}

/** pairedHere updates this node's devices a and b after a pair formed or ended elsewhere. */
function pairedHere(a, b, paired) {
  for (const [id, other] of [[a, b], [b, a]]) {
    const dev = devices.get(id);
    if (!dev) continue;
    if (paired) dev.peer = other;
    else if (dev.peer === other) dev.peer = null;
  }
}

async function register(src, target, ack) {
  if (typeof ack !== "function") return refuse(src, "BAD_REQUEST", "P2P_REGISTER needs an ack callback");
  const problem = badID(target);
  if (problem) return refuse(src, typeof target === "string" ? "BAD_ID" : "BAD_REQUEST", problem, ack, "false");
  if (target === src.id) return refuse(src, "SELF", "you cannot pair with yourself", ack, "false");
  if (src.peer) {
    if (src.peer === target) return ack(true);
    return refuse(src, "BUSY", `you are paired with "${src.peer}"; unregister first`, ack, "false");
  }
  if (src.pairing) return refuse(src, "BUSY", "you are already pairing", ack, "false");
  const [online, theirPeer] = await Promise.all([redis.hExists(DEVICES, target), redis.hExists(PEERS, target)]);
  if (!online) return refuse(src, "OFFLINE", `device "${target}" is offline`, ack, "false");
  if (theirPeer) return refuse(src, "BUSY", `device "${target}" is busy`, ack, "false");
  if (!(await redis.hSetNX(SHAKES, target, src.id))) {
    return refuse(src, "BUSY", `device "${target}" is busy`, ack, "false");
  }
  if (!(await redis.hSetNX(SHAKES, src.id, target))) {
    await redis.hDel(SHAKES, target);
    return refuse(src, "BUSY", "you are already pairing", ack, "false");
  }
  src.pairing = true;
  let code = null;
  try {
    const answers = await io.to(target).timeout(pairTimeout).emitWithAck("P2P_REGISTER", src.id);
    if (answers.length === 0) code = "OFFLINE";
    else if (answers[0] !== true) code = "REFUSED";
  } catch {
    code = "TIMEOUT";
  }
  src.pairing = false;
  await redis.hDel(SHAKES, [src.id, target]);
  if (src.gone) return;
  if (code) {
    const why = {
      TIMEOUT: `device "${target}" did not answer within ${pairTimeout} ms`,
      REFUSED: `device "${target}" refused to pair`,
      OFFLINE: `device "${target}" disconnected during pairing`,
    }[code];
    return refuse(src, code, why, ack, "false");
  }
  await redis.hSet(PEERS, [src.id, target, target, src.id]);
  pairedHere(src.id, target, true);
  io.serverSideEmit("paired", src.id, target);
  ack(true);
}

async function unpair(dev, peer = dev.peer) {
  dev.peer = null;
  pairedHere(dev.id, peer, false);
  io.serverSideEmit("unpaired", dev.id, peer);
  await redis.hDel(PEERS, [dev.id, peer]);
  return peer;
}

async function unregister(src, ack) {
  if (!src.peer) return refuse(src, "NOT_PAIRED", "you are not paired", ack, "false");
  const peer = await unpair(src);
  io.to(peer).timeout(ackTimeout).emit("P2P_UNREGISTER", () => {});
  if (typeof ack === "function") ack(true);
}

/** relay forwards P2P_EMIT (withAck false) and P2P_EMIT_ACKNOWLEDGE to the peer's room. */
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
  const args = req.args ?? [];
  if (!Array.isArray(args)) return refuse(src, "BAD_REQUEST", "args must be an array", ack);
  if (src.peer !== target) return refuse(src, "NOT_PAIRED", `device "${target}" is not your peer`, ack);

  if (!withAck) {
    io.to(target).emit(event, ...args);
    if (typeof ack === "function") ack();
    return;
  }
  io.to(target).timeout(ackTimeout).emitWithAck(event, ...args).then(
    (answers) => {
      if (answers.length === 0) return refuse(src, "OFFLINE", `device "${target}" is offline`, ack);
      if (answers[0] === undefined) ack();
      else ack(answers[0]);
    },
    () => refuse(src, "TIMEOUT", `device "${target}" did not answer "${event}" within ${ackTimeout} ms`, ack),
  );
}

async function listClients(src, ack) {
  if (typeof ack !== "function") return refuse(src, "BAD_REQUEST", "LIST_CLIENTS needs an ack callback");
  ack((await redis.hKeys(DEVICES)).sort());
}

/**
 * leave forgets a device whose connection closed and tells its peer. The
 * peer is read from Redis when this node has not heard of the pair yet: a
 * pair formed on the peer's node is written there before the asking device
 * hears yes, but this node may hear of it (serverSideEmit) after the device
 * left.
 */
async function leave(dev) {
  dev.gone = true;
  if (devices.get(dev.id) === dev) devices.delete(dev.id);
  const peer = dev.peer ?? (await redis.hGet(PEERS, dev.id));
  if (peer) {
    await unpair(dev, peer);
    io.to(peer).emit("P2P_DISCONNECT");
  }
  await redis.hDel(DEVICES, dev.id);
}


const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: millis("ping-interval"),
  pingTimeout: millis("ping-timeout"),
  serveClient: false,
  adapter: createAdapter(redis, sub, { publishOnSpecificResponseChannel: true }),
});

io.on("paired", (a, b) => pairedHere(a, b, true));
io.on("unpaired", (a, b) => pairedHere(a, b, false));

if (!opt.untuned) {
  // socket.io's memory-usage advice, as in relay.mjs.
  io.engine.on("connection", (rawSocket) => {
    rawSocket.query = rawSocket.request._query;
    rawSocket.request = null;
  });
}

/** clientIdOf returns the id a device connected with (?clientId=). */

io.use(async (socket, next) => {
  const id = clientIdOf(socket);
  if (id === undefined) return next(connectError("BAD_ID", "no device id: connect with ?clientId=ID"));
  const problem = badID(id);
  if (problem) return next(connectError("BAD_ID", problem));
  try {
    if (!(await redis.hSetNX(DEVICES, id, nodeID))) {
      return next(connectError("ID_IN_USE", `device id "${id}" is already connected`));
    }
  } catch (err) {
    return next(connectError("UNAVAILABLE", `redis: ${err.message}`));
  }
  next();
});

io.on("connection", (socket) => {
  const id = clientIdOf(socket);
  const dev = new Device(id, socket);
  devices.set(id, dev);
  socket.join(id);
  const failed = (err) => refuse(dev, "INTERNAL", String(err?.message ?? err));
  socket.onAny((event, ...args) => {
    const last = args[args.length - 1];
    const ack = typeof last === "function" ? args.pop() : undefined;
    switch (event) {
      case "P2P_EMIT":
        return relay(dev, args[0], ack, false);
      case "P2P_EMIT_ACKNOWLEDGE":
        return relay(dev, args[0], ack, true);
      case "P2P_REGISTER":
        return register(dev, args[0], ack).catch(failed);
      case "P2P_UNREGISTER":
        return unregister(dev, ack).catch(failed);
      case "LIST_CLIENTS":
        return listClients(dev, ack).catch(failed);
      default:
        return refuse(dev, "UNKNOWN_EVENT", `unknown event "${String(event).slice(0, 64)}"`, ack);
    }
  });
  socket.on("disconnect", () => leave(dev).catch((err) => console.error(`cluster: leave ${id}: ${err.message}`)));
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
