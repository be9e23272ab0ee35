// Devices of the two protocol generations, written from the protocol text
// (PROTOCOL.md): what the original JavaScript client plugin did on the wire,
// on top of a real socket.io-client 2.x or 4.x socket.
//
// Generation 1 connects with ?deviceId=ID, answers a pairing request by
// emitting P2P_REGISTER_SUCCESS or P2P_REGISTER_FAILED (it ignores the
// callback the relay passes), names its peer targetDeviceId, and only
// learns that a pair ended from P2P_DISCONNECT; its unregister is local.
//
// Generation 2 connects with ?clientId=ID, answers a pairing request
// through the callback, names its peer targetClientId, unpairs with
// P2P_UNREGISTER, clears its target on P2P_UNREGISTER (calling the
// callback) or P2P_DISCONNECT, and lists devices with LIST_CLIENTS.
import { Inbox } from './inbox.mjs';
import { awaitConnect, openSocket, WAIT_MS } from './sio.mjs';

/** Protocol event names (PROTOCOL.md). */
export const EV = Object.freeze({
  REGISTER: 'P2P_REGISTER',
  REGISTER_SUCCESS: 'P2P_REGISTER_SUCCESS',
  REGISTER_FAILED: 'P2P_REGISTER_FAILED',
  DISCONNECT: 'P2P_DISCONNECT',
  UNREGISTER: 'P2P_UNREGISTER',
  EMIT: 'P2P_EMIT',
  EMIT_ACK: 'P2P_EMIT_ACKNOWLEDGE',
  LIST_CLIENTS: 'LIST_CLIENTS',
  LIST_DEVICES: 'P2P_LIST_DEVICES',
  SERVER_ERROR: 'SERVER_ERROR',
});

const acceptAll = () => true;

/**
 * Device is what both generations share: a socket, an id, the current
 * target, and queues of what the relay told the device, for tests to
 * wait on.
 *
 * - serverErrors: the argument lists of every SERVER_ERROR;
 * - peerGone: the argument lists of every P2P_DISCONNECT;
 * - asked: {src, callback, rest} for every pairing request the relay sent;
 * - answered: {src, yes} for every pairing request the device answered;
 * - closed: the reason, when the connection ended;
 * - violations: things the relay did that the original client could not
 *   have coped with (it would have thrown); tests expect none.
 */
export class Device {
  constructor(socket, { id, version, transport }, { consent = acceptAll } = {}) {
    this.socket = socket;
    this.id = id;
    this.version = version;
    this.transport = transport;
    this.target = null;
    this.consent = consent;
    this.waitMs = WAIT_MS; // how long request waits for the relay's answer
    this.serverErrors = new Inbox(`${id}: SERVER_ERROR`);
    this.peerGone = new Inbox(`${id}: P2P_DISCONNECT`);
    this.asked = new Inbox(`${id}: P2P_REGISTER`);
    this.answered = new Inbox(`${id}: pairing answers`);
    this.closed = new Inbox(`${id}: disconnect`);
    this.violations = [];
    this.inboxes = new Map();
    socket.on(EV.SERVER_ERROR, (...args) => this.serverErrors.push(args));
    socket.on(EV.DISCONNECT, (...args) => {
      this.target = null;
      this.peerGone.push(args);
    });
    socket.on(EV.REGISTER, (src, callback, ...rest) => {
      this.asked.push({ src, callback, rest });
      this.onAsked(src, callback);
    });
    this.pending = new Set();
    socket.on('disconnect', (reason) => {
      this.closed.push(reason);
      for (const fail of this.pending) fail(new Error(`${this.id} (${this.kind}) disconnected (${reason}) before the relay answered`));
    });
  }

  /** gen is the protocol generation, 1 or 2. */
  get gen() {
    return this.constructor.gen;
  }

  /** kind names generation, client version and transport, e.g. "gen1/sio2/polling". */
  get kind() {
    return `gen${this.gen}/sio${this.version}/${this.transport}`;
  }

  /** connected reports whether the socket is connected. */
  get connected() {
    return this.socket.connected;
  }

  /** on listens for an event the peer sends through the relay. */
  on(event, handler) {
    this.socket.on(event, handler);
    return this;
  }

  /**
   * inbox queues every `event` from now on as {args, ack}, where ack is the
   * callback when the sender asked for one, else null. Subscribe before
   * the event can arrive.
   */
  inbox(event) {
    let box = this.inboxes.get(event);
    if (box) return box;
    box = new Inbox(`${this.id}: ${event}`);
    this.inboxes.set(event, box);
    this.socket.on(event, (...args) => {
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args.pop() : null;
      box.push({ args, ack });
    });
    return box;
  }

  /** relayRequest is the payload of P2P_EMIT / P2P_EMIT_ACKNOWLEDGE. */
  relayRequest(event, args) {
    return { [this.constructor.targetKey]: this.target, event, args };
  }

  /** emit sends event with args to the target (P2P_EMIT). */
  emit(event, ...args) {
    this.socket.emit(EV.EMIT, this.relayRequest(event, args));
  }

  /**
   * emitWithAck sends event with args to the target and resolves with the
   * values the target passed to its callback (P2P_EMIT_ACKNOWLEDGE).
   */
  emitWithAck(event, ...args) {
    return this.request(EV.EMIT_ACK, this.relayRequest(event, args));
  }

  /** register asks the relay to pair with targetId; it resolves with the answer. */
  async register(targetId) {
    const answer = await this.request(EV.REGISTER, targetId);
    if (answer[0] === true) this.target = targetId;
    return answer[0];
  }

  /** send emits a raw event, without an ack. */
  send(event, ...args) {
    this.socket.emit(event, ...args);
  }

  /**
   * request emits a raw event with an ack callback and resolves with the
   * values the relay answered; it rejects after waitMs (default WAIT_MS),
   * or when the connection ends first.
   */
  request(event, ...args) {
    return new Promise((resolve, reject) => {
      const settle = (fn, v) => {
        clearTimeout(timer);
        this.pending.delete(fail);
        fn(v);
      };
      const fail = (err) => settle(reject, err);
      const timer = setTimeout(
        () => fail(new Error(`${this.id} (${this.kind}): no ack for ${event} within ${this.waitMs} ms`)),
        this.waitMs,
      );
      this.pending.add(fail);
      this.socket.emit(event, ...args, (...answer) => settle(resolve, answer));
    });
  }

  /**
   * barrier makes a round trip to the relay. The relay answers a device's
   * requests in order and writes to a socket in order, so everything the
   * relay sent this device before it saw the barrier has arrived when it
   * resolves.
   */
  async barrier() {
    await this.request(EV.LIST_CLIENTS);
  }

  /** close disconnects the device. */
  close() {
    this.socket.close();
  }

  /**
   * drop closes the device's transport without a word, as a network that
   * fails does; a device made with reconnection comes back by itself.
   * It resolves once the socket has seen the connection end.
   */
  async drop() {
    const gone = new Promise((resolve) => this.socket.once('disconnect', resolve));
    this.socket.io.engine.close();
    return gone;
  }

  /**
   * dropAndHold drops the connection as drop does, and holds the client's
   * reconnection until comeBack: a test can then act while the relay sees
   * the device gone, however late the relay or the client run.
   */
  async dropAndHold() {
    this.socket.io.reconnection(false);
    return this.drop();
  }

  /** comeBack reconnects a device held by dropAndHold, as its client's reconnection would. */
  comeBack() {
    this.socket.io.reconnection(true);
    this.socket.connect();
  }

  /** reconnected resolves the next time the socket connects. */
  reconnected() {
    return new Promise((resolve) => this.socket.once('connect', resolve));
  }
}

/** Gen1Device behaves as a generation-1 device of the original plugin. */
export class Gen1Device extends Device {
  static gen = 1;
  static queryKey = 'deviceId';
  static targetKey = 'targetDeviceId';

  // A generation-1 device ignores the callback and answers with an event;
  // it refuses when it already has a target.
  async onAsked(src) {
    const yes = !this.target && (await this.consent(src)) === true && !this.target;
    if (yes) this.target = src;
    this.socket.emit(yes ? EV.REGISTER_SUCCESS : EV.REGISTER_FAILED);
    this.answered.push({ src, yes });
  }

  /** unregister forgets the target; generation 1 has no unregister on the wire. */
  unregister() {
    this.target = null;
  }
}

/** Gen2Device behaves as a generation-2 device of the original plugin. */
export class Gen2Device extends Device {
  static gen = 2;
  static queryKey = 'clientId';
  static targetKey = 'targetClientId';

  constructor(socket, info, opts) {
    super(socket, info, opts);
    this.unregistered = new Inbox(`${info.id}: P2P_UNREGISTER`);
    socket.on(EV.UNREGISTER, (callback, ...rest) => {
      this.target = null;
      this.unregistered.push({ callback, rest });
      if (typeof callback !== 'function') {
        // The original client calls it unconditionally, and throws.
        this.violations.push('P2P_UNREGISTER arrived without a callback');
        return;
      }
      callback();
    });
  }

  // A generation-2 device answers through the callback: yes when it has no
  // target or the source already is its target.
  async onAsked(src, callback) {
    if (typeof callback !== 'function') {
      this.violations.push(`P2P_REGISTER from ${src} arrived without a callback`);
      return;
    }
    const free = !this.target || this.target === src;
    const yes = free && (await this.consent(src)) === true;
    if (yes) this.target = src;
    callback(yes);
    this.answered.push({ src, yes });
  }

  /** unregister ends the pair (P2P_UNREGISTER) and resolves with the relay's answer. */
  async unregister() {
    const answer = await this.request(EV.UNREGISTER);
    this.target = null;
    return answer;
  }

  /** listClients resolves with the ids of the connected devices (LIST_CLIENTS). */
  async listClients() {
    const [ids] = await this.request(EV.LIST_CLIENTS);
    return ids;
  }
}

/**
 * connectDevice connects a device of generation `gen` (1 or 2) with id `id`
 * on socket.io-client `version` over `transport`. consent(src) decides
 * whether to accept a pairing request the device is free to accept
 * (default: yes); it may return a promise. query adds or overrides
 * handshake query keys; auth is the handshake auth (4.x only); with
 * reconnection, the client reconnects by itself as its defaults say. It rejects
 * with ConnectRefused when the relay refuses the connection. The caller
 * must close the device.
 */
export async function connectDevice(url, { gen = 2, id, version = 4, transport = 'websocket', consent, query = {}, auth, reconnection = false }) {
  const Cls = gen === 1 ? Gen1Device : Gen2Device;
  const socket = openSocket(url, { version, transport, auth, reconnection, query: { [Cls.queryKey]: id, ...query } });
  const dev = new Cls(socket, { id, version, transport }, { consent });
  await awaitConnect(socket, version);
  return dev;
}
