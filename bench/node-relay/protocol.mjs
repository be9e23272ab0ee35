// What the reference relays share, one process (relay.mjs) or a cluster
// (cluster.mjs): the protocol's limits and names, and how a device's id is
// read and checked.

export const MAX_ID = 128;
export const MAX_EVENT_BYTES = 256;

// Event names a device may not make the relay emit: socket.io's reserved
// names, the lifecycle events of socket.io-client 2.x, and the protocol's
// own (every P2P_* name is refused separately).
export const RESERVED = new Set([
  "SERVER_ERROR", "LIST_CLIENTS",
  "connect", "connect_error", "disconnect", "disconnecting", "error", "newListener", "removeListener",
  "connect_timeout", "reconnect", "reconnect_attempt", "reconnecting", "reconnect_error", "reconnect_failed",
]);

/** A device id's problem, or null when it is valid: 1-128 characters, no control characters. */
export function badID(id) {
  if (typeof id !== "string") return "device id must be a string";
  if (id.length === 0) return "device id is empty";
  let n = 0;
  for (const ch of id) {
    if (++n > MAX_ID) return `device id is longer than ${MAX_ID} characters`;
    const c = ch.codePointAt(0);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return "device id contains a control character";
  }
  return null;
}

/** connectError is a refused connection as the devices read it: `CODE: message`, with {code, message}. */
export function connectError(code, message) {
  const err = new Error(`${code}: ${message}`);
  err.data = { code, message };
  return err;
}

/** clientIdOf is the id a socket connected with. */
export function clientIdOf(socket) {
  return (socket.conn.query ?? socket.handshake.query).clientId;
}
