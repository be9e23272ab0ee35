// Inbox: a queue of things that arrived, with waiting and a timeout, so
// tests wait on events without sleeping.
import { WAIT_MS } from './sio.mjs';

/**
 * Inbox queues items pushed to it; next() takes the oldest one, waiting up
 * to a timeout for it to arrive. Nothing is dropped: items pushed while no
 * one waits stay queued.
 */
export class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(item);
      return;
    }
    this.items.push(item);
  }

  /** next resolves with the oldest item, rejecting after timeoutMs. */
  next(timeoutMs = WAIT_MS) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    return new Promise((resolve, reject) => {
      const w = { resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`nothing arrived in ${this.name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** take returns and removes everything queued. */
  take() {
    const out = this.items;
    this.items = [];
    return out;
  }

  get length() {
    return this.items.length;
  }
}
