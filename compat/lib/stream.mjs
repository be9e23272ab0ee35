// Streams between paired generation-2 devices, as the original client
// plugin put them on the wire, written from the protocol (not from the
// plugin's code):
//
// - Opening: a device emits P2P_REGISTER_STREAM with (targetId, ack). The
//   relay asks the peer by emitting P2P_REGISTER_STREAM with an ack callback
//   and nothing else; the peer answers true when it accepts streams (it
//   creates its end then), false when it does not. The source's ack gets
//   the answer, and the source creates its end on true. Each side's end is
//   a duplex: both may write.
// - Data: an end writes a chunk by emitting P2P_EMIT_ACKNOWLEDGE with
//   ({targetClientId, event: "P2P_EMIT_STREAM", args: [chunk]}, ack); the
//   peer receives P2P_EMIT_STREAM with (chunk, ack). Binary chunks travel as
//   socket.io binary attachments.
// - Back-pressure: the receiving end answers the ack (with no values) once
//   it has room for more, that is at once unless its read buffer is at its
//   high-water mark, else when it is read from. The relay passes the answer
//   back, and a writing end sends its next chunk only when the previous
//   one's ack came back: one chunk in flight per end, and the reader's
//   buffer bounds what piles up on its side.
// - End: there is no end-of-stream on the wire. A stream ends with the pair
//   (P2P_UNREGISTER, P2P_DISCONNECT) or the connection.
import { Duplex } from 'node:stream';
import { Inbox } from './inbox.mjs';

/** Stream event names. */
export const SEV = Object.freeze({
  REGISTER_STREAM: 'P2P_REGISTER_STREAM',
  EMIT_STREAM: 'P2P_EMIT_STREAM',
});

/**
 * StreamWriteError is a chunk whose ack came back with a value: the relay
 * refused it ({error: {code, message}}) or the peer answered something.
 */
export class StreamWriteError extends Error {
  constructor(answer) {
    super(`stream chunk answered ${JSON.stringify(answer)}`);
    this.name = 'StreamWriteError';
    this.answer = answer;
    this.code = answer[0] && answer[0].error ? answer[0].error.code : undefined;
  }
}

/**
 * RelayStream is one end of a stream on a paired device (a Gen2Device). It
 * records what a test checks:
 *
 * - chunks: every chunk received, as it arrived (Buffer or JSON value);
 * - held: an Inbox that gets the buffered length each time the end holds a
 *   chunk's ack because its buffer is full;
 * - maxBuffered: the most bytes (or objects) its read buffer held;
 * - violations: chunks that came without an ack callback (the original
 *   client would have thrown).
 *
 * It is destroyed when the pair or the connection ends.
 */
export class RelayStream extends Duplex {
  constructor(dev, { highWaterMark, objectMode = false } = {}) {
    super({ objectMode, ...(highWaterMark === undefined ? {} : { highWaterMark }) });
    this.dev = dev;
    this.chunks = [];
    this.held = new Inbox(`${dev.id}: held stream acks`);
    this.maxBuffered = 0;
    this.violations = [];
    this.pendingAck = null; // the ack of the last chunk, while the buffer is full
    const socket = dev.socket;
    const onChunk = (...args) => this.onChunk(args);
    const end = () => this.destroy();
    socket.on(SEV.EMIT_STREAM, onChunk);
    socket.on('P2P_UNREGISTER', end);
    socket.on('P2P_DISCONNECT', end);
    socket.on('disconnect', end);
    this.once('close', () => {
      socket.off(SEV.EMIT_STREAM, onChunk);
      socket.off('P2P_UNREGISTER', end);
      socket.off('P2P_DISCONNECT', end);
      socket.off('disconnect', end);
    });
  }

  onChunk(args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (!ack) this.violations.push(`${SEV.EMIT_STREAM} without an ack callback`);
    if (args.length !== 1) this.violations.push(`${SEV.EMIT_STREAM} with ${args.length} arguments`);
    if (this.destroyed) return;
    const [chunk] = args;
    this.chunks.push(chunk);
    const room = this.push(chunk);
    this.maxBuffered = Math.max(this.maxBuffered, this.readableLength);
    if (!ack) return;
    if (room) {
      ack();
      return;
    }
    this.pendingAck = ack;
    this.held.push(this.readableLength);
  }

  _read() {
    const ack = this.pendingAck;
    this.pendingAck = null;
    if (ack) ack();
  }

  _write(chunk, encoding, callback) {
    const req = this.dev.relayRequest(SEV.EMIT_STREAM, [chunk]);
    this.dev.socket.emit('P2P_EMIT_ACKNOWLEDGE', req, (...answer) => {
      callback(answer.length === 0 || answer[0] == null ? null : new StreamWriteError(answer));
    });
  }
}

/**
 * openStream asks dev's peer for a stream (P2P_REGISTER_STREAM with
 * target, by default dev's target) and resolves with {answer, stream}:
 * answer is the values of the relay's ack, stream a RelayStream when the
 * answer was true, else null.
 */
export async function openStream(dev, { target = dev.target, ...opts } = {}) {
  const answer = await dev.request(SEV.REGISTER_STREAM, target);
  return { answer, stream: answer[0] === true ? new RelayStream(dev, opts) : null };
}

/**
 * acceptStreams makes dev answer the relay's P2P_REGISTER_STREAM: with
 * decide(), true by default (decide may return a promise; anything but
 * true refuses). It returns {asked, streams}: asked gets the argument list
 * of every request (the ack callback last), streams every RelayStream the
 * device accepted, with opts. A device that never calls acceptStreams does
 * not answer at all; refuseStreams answers false, as a generation-2 device
 * that has not opened streams does.
 */
export function acceptStreams(dev, { decide = () => true, ...opts } = {}) {
  const asked = new Inbox(`${dev.id}: ${SEV.REGISTER_STREAM}`);
  const streams = new Inbox(`${dev.id}: accepted streams`);
  dev.socket.on(SEV.REGISTER_STREAM, async (...args) => {
    asked.push(args);
    const callback = args[args.length - 1];
    if (typeof callback !== 'function') {
      dev.violations.push(`${SEV.REGISTER_STREAM} arrived without a callback`);
      return;
    }
    const yes = (await decide()) === true;
    if (yes) streams.push(new RelayStream(dev, opts));
    callback(yes);
  });
  return { asked, streams };
}

/** refuseStreams makes dev answer every stream request false; it returns the Inbox of requests. */
export function refuseStreams(dev) {
  return acceptStreams(dev, { decide: () => false }).asked;
}

/**
 * readBytes reads from a (non-object-mode) stream end until n bytes came,
 * and resolves with them; it rejects if the end closes first.
 */
export function readBytes(stream, n) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let got = 0;
    const onData = (b) => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        done();
        resolve(Buffer.concat(parts));
      }
    };
    const onClose = () => {
      done();
      reject(new Error(`stream of ${stream.dev.id} closed after ${got} of ${n} bytes`));
    };
    const done = () => {
      stream.off('data', onData);
      stream.off('close', onClose);
      stream.pause();
    };
    stream.on('data', onData);
    stream.on('close', onClose);
  });
}
