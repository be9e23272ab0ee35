// A generation-1 device of the original client plugin (socket.io-client
// 2.x, ?deviceId=), driven from the command line, for the interoperability
// tests of p2ppeer. It prints one JSON object per line on stdout.
//
//   node gen1-device.mjs --url URL --id ID [--transport websocket|polling] listen
//        [--events a,b] [--reply JSON] [--delay MS] [--mute]
//     Wait for pairing requests (accept when free, as the original did; with
//     --mute, never answer them) and print every event named in --events;
//     answer acknowledgements with --reply, or echo the arguments, after
//     --delay milliseconds. Runs until SIGTERM or SIGINT.
//
//   node gen1-device.mjs --url URL --id ID send TARGET EVENT [ARG...] [--ack]
//     Pair with TARGET, send EVENT (each ARG is JSON when it parses, else a
//     string), with --ack wait for and print the answer, then disconnect
//     (generation 1 has no unregister on the wire). Exit 0 on success, 3
//     when pairing failed, 1 otherwise.
//
// Output lines: connected {id}, asked {peer, answer}, paired {peer},
// unpaired {} (P2P_DISCONNECT), event {event, args, ack}, sent {event},
// ack {event, args}, error {message}.
import { parseArgs } from 'node:util';
import { connectDevice } from '../lib/device.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    id: { type: 'string' },
    transport: { type: 'string', default: 'websocket' },
    events: { type: 'string', default: '' },
    reply: { type: 'string' },
    delay: { type: 'string', default: '0' },
    mute: { type: 'boolean', default: false },
    ack: { type: 'boolean', default: false },
  },
});

const print = (type, fields = {}) => process.stdout.write(`${JSON.stringify({ type, ...fields })}\n`);

function fail(message, code = 1) {
  print('error', { message });
  process.exit(code);
}

/** arg reads one argument as p2ppeer does: JSON when it parses, else a string. */
function arg(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const [mode, ...rest] = positionals;
if (!opts.url || !opts.id || !['listen', 'send'].includes(mode)) {
  fail('usage: gen1-device.mjs --url URL --id ID (listen [--events a,b] [--reply JSON] [--mute] | send TARGET EVENT [ARG...] [--ack])', 2);
}

// consent never settles with --mute: the device does not answer at all.
const consent = opts.mute ? () => new Promise(() => {}) : () => true;
let dev;
try {
  dev = await connectDevice(opts.url, { gen: 1, id: opts.id, version: 2, transport: opts.transport, consent });
} catch (err) {
  fail(`connect: ${err.message}`);
}
print('connected', { id: opts.id });
let stopping = false;
dev.socket.on('disconnect', (reason) => {
  if (mode === 'listen' && !stopping) fail(`disconnected: ${reason}`);
});
dev.socket.on('P2P_DISCONNECT', () => print('unpaired'));

if (mode === 'listen') {
  dev.socket.on('P2P_REGISTER', (src) => {
    // Device answers first (its own listener); report what it said.
    setImmediate(() => {
      if (!opts.mute) print('asked', { peer: src, answer: dev.target === src });
      if (dev.target === src) print('paired', { peer: src });
    });
  });
  for (const name of opts.events.split(',').filter(Boolean)) {
    dev.on(name, (...args) => {
      const ack = args.length > 0 && typeof args[args.length - 1] === 'function' ? args.pop() : null;
      print('event', { event: name, args, ack: ack !== null });
      if (ack) {
        const answer = () => (opts.reply !== undefined ? ack(arg(opts.reply)) : ack(...args));
        setTimeout(answer, Number(opts.delay) || 0);
      }
    });
  }
  const stop = () => {
    stopping = true;
    dev.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const [target, event, ...args] = rest;
  if (!target || !event) fail('send needs TARGET and EVENT', 2);
  let ok;
  try {
    ok = await dev.register(target);
  } catch (err) {
    fail(`pair: ${err.message}`);
  }
  if (ok !== true) {
    dev.close();
    fail(`pairing with ${target} refused`, 3);
  }
  print('paired', { peer: target });
  const values = args.map(arg);
  try {
    if (opts.ack) {
      const answer = await dev.emitWithAck(event, ...values);
      print('ack', { event, args: answer });
    } else {
      dev.emit(event, ...values);
      await dev.barrier(); // the relay has forwarded it
      print('sent', { event });
    }
  } catch (err) {
    fail(`${event}: ${err.message}`);
  }
  // Let node exit by itself once the socket has closed: exiting at once
  // could cut off the goodbye a polling connection still has to send.
  dev.close();
}
