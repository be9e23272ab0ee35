// Devices of the original client plugin, as they run in the field: with
// their client's own reconnection on (the socket.io-client defaults), for
// the tests that restart the relay under them. It prints one JSON object
// per line: {type: "connected", id} each time a device (re)connects,
// {type: "disconnected", id, reason} each time it loses its connection.
//
//   node reconnecting-devices.mjs --url URL ID:GEN:VERSION:TRANSPORT...
//
// e.g. A:1:2:websocket B:2:2:polling C:2:4:websocket. Runs until killed.
import { parseArgs } from 'node:util';
import { openSocket } from '../lib/sio.mjs';

const { values: o, positionals } = parseArgs({ allowPositionals: true, options: { url: { type: 'string' } } });
const print = (type, fields) => process.stdout.write(`${JSON.stringify({ type, ...fields })}\n`);

for (const spec of positionals) {
  const [id, gen, version, transport] = spec.split(':');
  const key = gen === '1' ? 'deviceId' : 'clientId';
  const socket = openSocket(o.url, { version: Number(version), transport, reconnection: true, query: { [key]: id } });
  socket.on('connect', () => print('connected', { id }));
  socket.on('disconnect', (reason) => print('disconnected', { id, reason }));
}
setInterval(() => {}, 1 << 30);
