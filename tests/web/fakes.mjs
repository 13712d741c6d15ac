// Fakes for the unit tests of gateway/web (node --test tests/web/): a clock whose timers run
// only when a test advances it, and a WebSocket class driven from the server's side.
import assert from 'node:assert/strict';
import { ChatClient } from '../../gateway/web/chat-client.js';

/* ---- fakes ---------------------------------------------------------------------------------- */

/* Timers that run only when the test advances time. */
export class Clock {
  constructor() {
    this.now = 0;
    this.seq = 0;
    this.timers = new Map();
    this.setTimeout = (fn, ms) => {
      this.seq += 1;
      this.timers.set(this.seq, { at: this.now + Math.max(0, ms || 0), fn, seq: this.seq });
      return this.seq;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
  }

  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) {
        const earlier = !next || t.at < next.t.at || (t.at === next.t.at && t.seq < next.t.seq);
        if (t.at <= end && earlier) next = { id, t };
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.now = next.t.at;
      next.t.fn();
    }
    this.now = end;
  }
}

/* A WebSocket class whose instances the test drives from the server's side. */
export function fakeSockets() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedBy = null;
      sockets.push(this);
    }

    send(data) {
      assert.equal(this.readyState, 1, 'send on a socket that is not open');
      this.sent.push(JSON.parse(data));
    }

    close(code, reason) {
      this.readyState = 3;
      this.closedBy = { code, reason };
    }

    /* server side */
    accept() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }

    push(frame) {
      if (this.onmessage) this.onmessage({ data: JSON.stringify(frame) });
    }

    drop(code, reason = '') {
      this.readyState = 3;
      if (this.onclose) this.onclose({ code, reason, wasClean: code !== 1006 });
    }

    frames(type) {
      return this.sent.filter((f) => f.type === type);
    }
  }
  return { FakeWebSocket, sockets, last: () => sockets[sockets.length - 1] };
}

export const EVENTS = ['state', 'welcome', 'joined', 'message', 'gap', 'reset', 'ack', 'error',
  'left'];

export function setup(opts = {}, types = EVENTS) {
  const clock = new Clock();
  const net = fakeSockets();
  const client = new ChatClient({
    url: 'ws://chat.test/ws', token: 'tok-1', WebSocket: net.FakeWebSocket,
    setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, random: () => 0.5,
    now: () => clock.now,
    ...opts,
  });
  const events = [];
  for (const type of types) client.on(type, (ev) => events.push({ type, ...ev }));
  const of = (type) => events.filter((e) => e.type === type);
  /* lets the pending reconnect happen: exactly its delay, so no other timer fires meanwhile */
  const retry = () => {
    assert.equal(client.state, 'waiting');
    clock.advance(of('state').pop().delay);
  };
  return { client, clock, net, events, of, retry };
}

export const WELCOME_V2 = { type: 'welcome', user: 'alice', gateway: 'gw-1', protocol: 2,
  exp: 2e9, epoch: 'e1' };
export const WELCOME_V1 = { type: 'welcome', user: 'alice', gateway: 'gw-1' };

/* Opens the fake's newest socket and welcomes it. */
export function welcome(net, frame = WELCOME_V2) {
  const ws = net.last();
  ws.accept();
  ws.push(frame);
  return ws;
}

export const id = (n, p = 3) => `${String(p).padStart(4, '0')}-${String(n).padStart(20, '0')}`;
export const msg = (n, room = 'r', extra = {}) => ({
  type: 'message', id: id(n), room, from: 'bob', text: `m${n}`, ts: 1000 + n, ...extra,
});
