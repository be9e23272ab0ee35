// A device that connects and then only holds its connection, for the tests
// that freeze a device's process (SIGSTOP) as a phone that loses its
// network would be: its TCP connection stays open, nothing answers on it.
//
//   node hold-device.mjs --url URL --id ID [--gen 1|2] [--version 2|4] [--transport websocket|polling]
//
// It prints one line, "connected", once the relay accepted it, and runs
// until killed.
import { parseArgs } from 'node:util';
import { connectDevice } from '../lib/device.mjs';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' },
    id: { type: 'string' },
    gen: { type: 'string', default: '2' },
    version: { type: 'string', default: '4' },
    transport: { type: 'string', default: 'websocket' },
  },
});

try {
  await connectDevice(o.url, { id: o.id, gen: Number(o.gen), version: Number(o.version), transport: o.transport });
  process.stdout.write('connected\n');
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
setInterval(() => {}, 1 << 30);
