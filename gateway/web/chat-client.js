/* chat-client.js: the chat protocol (docs/protocol.md, v1 and v2) as a small ES module with no
 * dependencies and no DOM, for the bundled page (app.js) and any app that embeds the chat
 * (docs/client.md). One WebSocket, signed in by a first `auth` frame (browsers cannot set
 * headers); reconnects with exponential backoff and full jitter; resumes every open room after a
 * reconnect; emits each message once and in order; retries sends with the same cid until acked.
 *
 *   const chat = new ChatClient({ url, token, getToken, ...options });
 *   chat.on(type, fn) -> off()          subscribe to an event (below)
 *   chat.connect()                      start; while waiting to reconnect: try again now
 *   chat.close()                        stop for good (close code 1000)
 *   chat.join(room, { limit, since, epoch })   open a room; it stays open, and is resumed after
 *                                       each reconnect, until leave(room)
 *   chat.leave(room)
 *   chat.send(room, text, { cid }) -> cid      queued until acked; resent with the same cid after
 *                                       a reconnect (a v2 server then acks the original id)
 *   chat.history(room, { before, after, limit }) -> Promise<message[]>   oldest first
 *   chat.older(room, { limit }) -> Promise<{ messages, done }>   the page before the oldest seen
 *   chat.fillGap(room, gap, { limit, max }) -> Promise<{ messages, gap }>   what the server still
 *                                       has inside a gap; gap: what is left to load, or null
 *   chat.state, chat.user, chat.gateway, chat.protocol, chat.epoch, chat.exp, chat.lastId(room)
 *
 * v2 features (state kept by chat-state.js):
 *   join(room, { presence: true })      also keep the room's member list (members event)
 *   chat.members(room) -> { count, truncated, users: [{ user, name }] } | null
 *   chat.requestMembers(room)           ask for a fresh snapshot (members frame)
 *   chat.typing(room) / chat.stopTyping(room)   the person types / stopped; send() stops too
 *   chat.typingUsers(room) -> [user]    who else is typing there now
 *   chat.markRead(room, upto?)          read up to upto (default: the newest known message)
 *   chat.showRoom(room | null)          the room on screen (keeps its read marker in place)
 *   chat.readState(room) -> { readUpto, unread, last, marker } | null; chat.totalUnread()
 *   chat.requestRooms() -> Promise<[{ room, unread, read_upto, last }]>   the sidebar of a new
 *                                       device; its read state is taken in as well
 *   chat.nameOf(user), chat.directRoom(user) -> 'dm:a:b' | null
 *   Direct messages of rooms not joined here are emitted as `message` events too.
 *
 * Events (each handler gets one object):
 *   state    { state, attempt, delay?, code?, reason? }; state is 'connecting', 'open',
 *            'waiting' (reconnect in `delay` ms), 'auth' (waiting for getToken) or 'stopped'
 *   welcome  the server's welcome frame
 *   joined   { room, history, resumed, recovered?, gap? }: history holds only messages not
 *            emitted before, oldest first
 *   message  a live message: each id at most once, never an older id after a newer one
 *   gap      { room, after, before, certain }: messages between the two ids are missing
 *            (certain: false when a v1 server cannot tell)
 *   reset    { room, epoch, previous }: the stream's epoch changed; ids seen before mean nothing
 *            and the room restarts from its latest history
 *   ack      { cid, id, room }: once per send
 *   refreshed { exp }: the connection now runs on the token getToken gave before expiry
 *   error    { code, message, cid?, room?, request?, text? }; request: 'send' (then the message
 *            was not sent: send again with the same cid), 'join' or undefined
 *   left     { room, error? }: the room is closed (by leave(), or a refused join)
 *   members  { room, count, truncated, users, joined?, left? }: the member list changed
 *            (joined/left: the users of a presence frame)
 *   typing   { room, users }: who else is typing in the room now
 *   read     { room, unread, readUpto, last, marker, total, remote }: a room's read state
 *            changed (remote: a read frame from another of the user's connections)
 *   receipt  { room, user, upto }: the other person of a direct room read it up to upto
 *   rooms    { rooms }: the answer of requestRooms()
 *
 * Options: url (ws:// or wss:// .../ws), token, getToken({ code, reason }) -> token or null
 * (called on close 4001/4003; without it, or when it gives nothing, the client stops),
 * backoffMs 1000, maxBackoffMs 30000, stableMs 10000 (a connection up this long resets the
 * backoff), pingMs 25000, pongTimeoutMs 10000, connectTimeoutMs 15000, refreshBeforeS 60 (on a
 * v2 server, getToken({ code: 'refresh' }) is asked for a new token that long before the
 * current one's exp, and the connection switches to it with a `refresh` frame: no drop), and
 * for tests WebSocket, setTimeout, clearTimeout, random, now. Runs in browsers and Node 18+. Members not
 * listed here are internal. */

import {
  Members, NameBook, ReadState, TypingSender, TypingSet, dmPeer, dmRoom,
} from './chat-state.js';

const DEFAULTS = {
  backoffMs: 1000, maxBackoffMs: 30000, stableMs: 10000, pingMs: 25000, pongTimeoutMs: 10000,
  connectTimeoutMs: 15000, refreshBeforeS: 60,
};
const OPEN = 1;  /* WebSocket.OPEN */
const MAX_DIRECT_IDS = 200;  /* ids remembered per direct room not joined here (dedup) */

const str = (v) => (typeof v === 'string' && v ? v : null);
const validMessage = (m) => !!m && typeof m === 'object' && !!str(m.id) &&
  typeof m.text === 'string';

/* Valid messages of a list, sorted by id (the room's order), each id once. */
function messagesOf(list) {
  const out = (Array.isArray(list) ? list : []).filter(validMessage)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out.filter((m, i) => i === 0 || m.id !== out[i - 1].id);
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}

export class ChatClient {
  constructor(opts) {
    if (!opts || !str(opts.url)) throw new TypeError('ChatClient: options.url is required');
    this.opts = { ...DEFAULTS, ...opts };
    this.token = opts.token || null;
    this.WS = opts.WebSocket || globalThis.WebSocket;
    this.setTimer = opts.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimeout || ((t) => clearTimeout(t));
    this.random = opts.random || Math.random;
    this.now = opts.now || (() => Date.now());
    this.state = 'idle';
    this.attempt = 0;          /* reconnects since the last stable connection */
    this.user = this.gateway = this.epoch = this.exp = null;
    this.protocol = 0;         /* of the last welcome: 1 or 2 */
    this.ws = null;
    this.welcomed = false;     /* the current socket got its welcome */
    this.freshToken = false;   /* the token came from getToken and has not been welcomed yet */
    this.rooms = new Map();    /* name -> room (see join) */
    this.outbox = new Map();   /* cid -> { cid, room, text }, in send order, until acked */
    this.leaving = new Set();  /* cids of leave frames, whose answers are not news */
    this.handlers = new Map();
    this.timers = new Map();
    this.seq = 0;
    this.names = new NameBook();
    this.reads = new ReadState();
    this.direct = new Map();   /* direct room not joined here -> ids emitted, oldest first */
    this.roomsRequests = [];   /* requestRooms() promises, answered in order */
    this.readCids = new Set(); /* cids of recent read frames (their errors are not news) */
    this.typingIn = new TypingSet({
      setTimeout: this.setTimer, clearTimeout: this.clearTimer,
      onChange: (room) => this.emitTyping(room),
    });
    this.typingOut = new TypingSender({
      now: this.now, setTimeout: this.setTimer, clearTimeout: this.clearTimer,
      send: (room, on) => this.raw({ type: 'typing', room, on }),
    });
  }

  /* ---- events ----------------------------------------------------------------------------- */

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, ev) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(ev);
      } catch (e) {
        /* a handler's bug must not break the protocol: report it outside this call */
        this.setTimer(() => { throw e; }, 0);
      }
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, attempt: this.attempt, ...extra });
  }

  /* ---- timers ----------------------------------------------------------------------------- */

  timer(name, ms, fn) {
    this.clear(name);
    this.timers.set(name, this.setTimer(() => { this.timers.delete(name); fn(); }, ms));
  }

  clear(name) {
    if (this.timers.has(name)) this.clearTimer(this.timers.get(name));
    this.timers.delete(name);
  }

  clearAll() {
    for (const name of [...this.timers.keys()]) this.clear(name);
  }

  /* ---- connection ------------------------------------------------------------------------- */

  connect() {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'auth') return;
    if (this.state !== 'waiting') this.attempt = 0;
    this.open();
  }

  close() {
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    this.clearAll();
    if (ws) {
      detach(ws);
      try { ws.close(1000, 'bye'); } catch (e) { /* already closed */ }
    }
    this.dropRequests('the client was closed');
    this.connectionGone();
    this.setState('stopped', { code: 1000, reason: 'closed by the client' });
  }

  open() {
    this.clearAll();
    this.setState('connecting');
    let ws;
    try {
      ws = new this.WS(this.opts.url);
    } catch (e) {
      this.lost({ code: 1006, reason: String(e && e.message ? e.message : e) });
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.raw({ type: 'auth', token: this.token });
    ws.onmessage = (ev) => this.frame(ev.data);
    ws.onerror = () => { /* a close event follows with the details */ };
    ws.onclose = (ev) => { if (ws === this.ws) this.lost(ev); };
    this.timer('connect', this.opts.connectTimeoutMs, () => this.drop('no welcome in time'));
  }

  /* Gives up on a silent socket without waiting for a close handshake that may never come. */
  drop(reason) {
    const ws = this.ws;
    if (!ws) return;
    detach(ws);
    try { ws.close(4000, reason); } catch (e) { /* ignore */ }
    this.lost({ code: 1006, reason });
  }

  lost(ev) {
    const code = ev && ev.code ? ev.code : 1006;
    const reason = (ev && ev.reason) || '';
    if (this.ws) detach(this.ws);
    this.ws = null;
    this.welcomed = false;
    this.clearAll();
    this.dropRequests('the connection closed');
    this.connectionGone();
    if (code === 4004) {
      this.setState('stopped', { code, reason });  /* kicked: do not come back by ourselves */
    } else if (code === 4001 || code === 4003) {
      this.reauth(code, reason);
    } else {
      this.retry(code, reason);
    }
  }

  retry(code, reason) {
    const o = this.opts;
    const cap = Math.min(o.maxBackoffMs, o.backoffMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.floor(this.random() * cap);  /* full jitter: anywhere in [0, cap) */
    this.attempt += 1;
    this.setState('waiting', { delay, code, reason });
    this.timer('retry', delay, () => this.open());
  }

  async reauth(code, reason) {
    /* a token fresh from getToken that fails at once would fail again: stop, do not loop */
    if (!this.opts.getToken || this.freshToken) {
      this.setState('stopped', { code, reason });
      return;
    }
    this.setState('auth', { code, reason });
    let token = null;
    try {
      token = await this.opts.getToken({ code, reason });
    } catch (e) {
      token = null;
    }
    if (this.state !== 'auth') return;  /* closed meanwhile */
    if (!str(token)) {
      this.setState('stopped', { code, reason });
      return;
    }
    this.token = token;
    this.freshToken = true;
    this.retry(code, reason);
  }

  raw(obj) {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  cid(kind) {
    this.seq += 1;
    return `${kind}-${Date.now().toString(36)}-${this.seq.toString(36)}-` +
      this.random().toString(36).slice(2, 8);
  }

  ping() {
    this.timer('ping', this.opts.pingMs, () => {
      if (this.raw({ type: 'ping' })) {
        this.timer('pong', this.opts.pongTimeoutMs, () => this.drop('no answer to ping'));
      }
      this.ping();
    });
  }

  /* ---- incoming frames -------------------------------------------------------------------- */

  frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') return;
    this.clear('pong');  /* any frame proves the connection is alive */
    switch (f.type) {
      case 'welcome': return this.onWelcome(f);
      case 'joined': return this.onJoined(f);
      case 'message': return this.onMessage(f);
      case 'ack': return this.onAck(f);
      case 'history': return this.onHistory(f);
      case 'error': return this.onError(f);
      case 'left': return this.leaving.delete(f.cid);
      case 'refreshed': return this.onRefreshed(f);
      case 'presence': return this.onPresence(f);
      case 'members': return this.onMembers(f);
      case 'typing': return this.onTyping(f);
      case 'read': return this.onRead(f);
      case 'receipt': return this.onReceipt(f);
      case 'rooms': return this.onRooms(f);
      default: return undefined;  /* pong, and frames of newer servers */
    }
  }

  onWelcome(f) {
    this.clear('connect');
    this.user = str(f.user);
    this.gateway = str(f.gateway);
    this.protocol = Number.isInteger(f.protocol) ? f.protocol : 1;
    this.epoch = str(f.epoch);
    this.exp = typeof f.exp === 'number' ? f.exp : null;
    this.welcomed = true;
    this.freshToken = false;
    this.timer('stable', this.opts.stableMs, () => { this.attempt = 0; });
    this.setState('open', { gateway: this.gateway });
    this.emit('welcome', f);
    this.ping();
    this.scheduleRefresh();
    for (const room of this.rooms.values()) this.sendJoin(room);
  }

  /* ---- token lifetime --------------------------------------------------------------------- */

  /* A v2 server closes a connection whose token expired (4003): ask for a new token a little
   * before and hand it over on the open connection. */
  scheduleRefresh() {
    if (!this.exp || !this.opts.getToken || this.protocol < 2) return;
    const at = (this.exp - this.opts.refreshBeforeS) * 1000;
    this.timer('refresh', Math.max(0, at - this.now()), () => this.refresh());
  }

  async refresh() {
    let token = null;
    try {
      token = await this.opts.getToken({ code: 'refresh', reason: 'the token expires soon' });
    } catch (e) {
      token = null;
    }
    /* no token: the server closes with 4003 at expiry and reauth() asks again */
    if (!str(token) || !this.welcomed) return;
    this.token = token;
    this.raw({ type: 'refresh', token, cid: this.cid('refresh') });
  }

  onRefreshed(f) {
    if (typeof f.exp === 'number') this.exp = f.exp;
    this.scheduleRefresh();
    this.emit('refreshed', { exp: this.exp });
  }

  sendJoin(room) {
    const f = { type: 'join', room: room.name, cid: this.cid('join') };
    if (room.limit) f.limit = room.limit;
    if (room.presence) f.presence = true;
    if (room.last && room.epoch && this.epoch && room.epoch !== this.epoch) {
      /* another epoch: the ids we hold mean nothing now */
      const previous = room.epoch;
      room.last = room.oldest = null;
      room.epoch = this.epoch;
      this.emit('reset', { room: room.name, epoch: this.epoch, previous });
    } else if (room.last && room.epoch && room.epoch === this.epoch && this.protocol >= 2) {
      f.since = room.last;
      f.epoch = room.epoch;
    }
    /* otherwise (a v1 server, or positions from before epochs were known) join afresh and
     * drop what was already emitted by id */
    room.since = f.since || null;
    room.joinCid = f.cid;
    room.joining = true;
    this.raw(f);
  }

  onJoined(f) {
    const room = this.rooms.get(f.room);
    if (!room) {
      /* left while the join was on its way: undo it on the server too */
      if (str(f.room)) this.sendLeave(f.room);
      return;
    }
    room.joined = true;
    room.joining = false;
    room.joinCid = null;
    const history = messagesOf(f.history);
    const had = room.last;
    let gap = null;
    if (f.recovered === false) {
      const g = f.gap && typeof f.gap === 'object' ? f.gap : {};
      gap = { room: room.name, after: str(g.after) || room.since,
              before: str(g.before) || (history.length ? history[0].id : null), certain: true };
    } else if (f.recovered !== true && had && history.length && history[0].id > had) {
      /* no resume (v1): a full page of only new messages may not reach back to what we had */
      gap = { room: room.name, after: had, before: history[0].id, certain: false };
    }
    let fresh = had ? history.filter((m) => m.id > had) : history;
    if (room.skip) {
      /* direct messages emitted before this room was joined here */
      fresh = fresh.filter((m) => !room.skip.has(m.id));
      room.skip = null;
    }
    this.seen(room, history, fresh);
    this.joinedState(room, f, history);
    const ev = { room: room.name, history: fresh, resumed: !!room.since };
    if (typeof f.recovered === 'boolean') ev.recovered = f.recovered;
    if (gap) ev.gap = gap;
    this.emit('joined', ev);
    if (gap) this.emit('gap', gap);
    this.flush(room, history);
  }

  /* Records what was emitted: the newest id (dedup) and the oldest (paging). */
  seen(room, all, fresh) {
    if (fresh.length) {
      room.last = fresh[fresh.length - 1].id;
      room.epoch = this.epoch;
    }
    if (all.length && (!room.oldest || all[0].id < room.oldest)) room.oldest = all[0].id;
  }

  /* After a join: sends found in the history are done; the rest go (again) with their cid. */
  flush(room, history) {
    if (this.user) {
      for (const m of history) {
        const e = m.cid && m.from === this.user && this.outbox.get(m.cid);
        if (e && e.room === room.name) this.acked(m.cid, m.id);
      }
    }
    for (const e of this.outbox.values()) if (e.room === room.name) this.transmit(e);
  }

  onMessage(f) {
    if (!validMessage(f)) return;
    const room = this.rooms.get(f.room);
    if (!room) {
      this.onDirect(f);
      return;
    }
    if (room.last && f.id <= room.last) return;  /* a repeat, or older than shown */
    this.seen(room, [f], [f]);
    this.emit('message', f);
    this.messageState(f);
    /* our own message, seen before its ack (which may never come if the socket drops now) */
    const e = f.cid && f.from === this.user ? this.outbox.get(f.cid) : null;
    if (e && e.room === f.room) this.acked(f.cid, f.id);
  }

  onAck(f) {
    if (str(f.cid) && str(f.id)) this.acked(f.cid, f.id);
  }

  acked(cid, id) {
    const e = this.outbox.get(cid);
    if (!e) return;  /* already acked (by its message, or an earlier ack) */
    this.outbox.delete(cid);
    this.emit('ack', { cid, id, room: e.room });
  }

  onHistory(f) {
    const room = this.rooms.get(f.room);
    if (!room || !room.requests.length) return;
    const req = this.nextRequest(room);
    const msgs = messagesOf(f.messages);
    this.seen(room, msgs, []);
    req.resolve(msgs);
  }

  onError(f) {
    const err = { code: str(f.code) || 'error', message: str(f.message) || '' };
    const cid = str(f.cid);
    if (cid) err.cid = cid;
    if (cid && this.leaving.delete(cid)) return;
    if (cid && this.readCids.delete(cid)) return;
    const e = cid && this.outbox.get(cid);
    if (e) {
      this.outbox.delete(cid);
      this.emit('error', { ...err, request: 'send', room: e.room, text: e.text });
      return;
    }
    const rooms = [...this.rooms.values()];
    let room = cid && rooms.find((r) => r.joinCid === cid);
    if (!room && !cid && (err.code === 'too_many_rooms' || err.code === 'invalid_room')) {
      /* a server that does not echo a join's cid: blame the newest pending join */
      room = rooms.filter((r) => r.joining).pop();
    }
    if (room) {
      this.joinFailed(room, err);
      return;
    }
    const ri = cid ? this.roomsRequests.findIndex((r) => r.cid === cid) : -1;
    if (ri >= 0) {
      this.roomsRequests.splice(ri, 1)[0].reject(Object.assign(new Error(err.message || err.code),
        err));
      return;
    }
    const hist = rooms.find((r) => r.requests.length && r.requests[0].cid === cid);
    if (hist) {
      this.nextRequest(hist).reject(Object.assign(new Error(err.message || err.code), err));
      return;
    }
    let answered = false;
    if (!cid && err.code === 'unknown_type' && /"rooms"/.test(err.message) &&
        this.roomsRequests.length) {
      /* a server without the rooms frame */
      this.roomsRequests.shift().reject(Object.assign(new Error(err.message), err));
      return;
    }
    if (!cid && err.code === 'unavailable') {
      /* storage trouble answers a join or a history read without its cid: fail the reads,
       * try the joins again */
      for (const r of rooms) {
        while (r.requests.length) {
          answered = true;
          this.nextRequest(r).reject(Object.assign(new Error(err.message || err.code), err));
        }
        if (r.joining) {
          answered = true;
          this.joinFailed(r, err);
        }
      }
      for (const r of this.roomsRequests.splice(0)) {
        answered = true;
        r.reject(Object.assign(new Error(err.message || err.code), err));
      }
    }
    if (!answered) this.emit('error', err);
  }

  joinFailed(room, err) {
    room.joining = false;
    room.joinCid = null;
    if (err.code === 'unavailable') {
      /* storage trouble: try again in a moment (a repeated join is harmless) */
      this.timer(`join:${room.name}`, 3000 + this.random() * 2000, () => {
        if (this.welcomed && this.rooms.get(room.name) === room && !room.joined) {
          this.sendJoin(room);
        }
      });
      this.emit('error', { ...err, request: 'join', room: room.name });
      return;
    }
    this.forget(room);
    this.emit('error', { ...err, request: 'join', room: room.name });
    this.emit('left', { room: room.name, error: err });
  }

  /* ---- rooms ------------------------------------------------------------------------------ */

  join(name, opts = {}) {
    if (this.rooms.has(name)) return;
    const room = {
      name, limit: opts.limit || 0, presence: !!opts.presence,
      members: opts.presence ? new Members() : null,
      skip: this.direct.has(name) ? new Set(this.direct.get(name)) : null,
      last: str(opts.since), epoch: str(opts.epoch),  /* newest id emitted, and its epoch */
      oldest: null, since: null, joined: false, joining: false, joinCid: null,
      requests: [],  /* history reads, answered in order; only the first is on the wire */
    };
    this.direct.delete(name);
    this.rooms.set(name, room);
    if (this.welcomed) this.sendJoin(room);
  }

  leave(name) {
    const room = this.rooms.get(name);
    if (!room) return;
    if (this.typingOut.typing(name)) this.typingOut.stop(name);
    if (room.joined || room.joining) this.sendLeave(name);
    this.forget(room);
    this.emit('left', { room: name });
  }

  sendLeave(name) {
    const cid = this.cid('leave');
    if (this.raw({ type: 'leave', room: name, cid })) this.leaving.add(cid);
  }

  forget(room) {
    this.rooms.delete(room.name);
    this.typingOut.forget(room.name);
    if (this.typingIn.clearRoom(room.name)) this.emitTyping(room.name);
    this.clear(`join:${room.name}`);
    for (const [cid, e] of this.outbox) if (e.room === room.name) this.outbox.delete(cid);
    while (room.requests.length) this.nextRequest(room).reject(new Error('left the room'));
  }

  lastId(name) {
    const room = this.rooms.get(name);
    return room ? room.last : null;
  }

  /* ---- presence, direct messages, typing, read state (v2) --------------------------------- */

  /* The connection is gone: typing is over everywhere (the server forgets it too), and the
   * rooms requests on their way have no answer coming. */
  connectionGone() {
    this.typingOut.reset();
    for (const room of this.typingIn.clearAll()) this.emitTyping(room);
    for (const r of this.roomsRequests.splice(0)) r.reject(new Error('the connection closed'));
  }

  joinedState(room, f, history) {
    if (room.members && f.members && room.members.snapshot(f.members)) {
      for (const u of room.members.users.entries()) this.names.learn(u[0], u[1]);
      this.emit('members', { room: room.name, ...room.members.view() });
    }
    const last = history.length ? history[history.length - 1].id : null;
    if (f.unread === undefined && f.read_upto === undefined) {
      /* no read state in this answer (a v1 server, or storage busy): only the newest id; what
       * was read here goes (again) to the server, which ignores a position it already has */
      const mine = this.reads.get(room.name).readUpto;
      if (last) this.reads.server(room.name, { last, readUpto: mine });
      if (mine) this.sendRead(room.name, mine);
      this.emitRead(room.name, false);
      return;
    }
    const ahead = this.reads.server(room.name, { readUpto: f.read_upto, unread: f.unread, last });
    const r = this.reads.get(room.name);
    if (ahead && r.readUpto) this.sendRead(room.name, r.readUpto);
    this.emitRead(room.name, false);
  }

  /* A read frame, with a cid so that its error (unavailable: not stored) is known for what it
   * is: not news for the page; the position goes again with the next read or rejoin. */
  sendRead(room, upto) {
    if (this.protocol < 2) return;
    const cid = this.cid('read');
    if (!this.raw({ type: 'read', room, upto, cid })) return;
    this.readCids.add(cid);
    if (this.readCids.size > 100) this.readCids.delete(this.readCids.values().next().value);
  }

  messageState(f) {
    if (this.typingIn.set(f.room, f.from, false)) this.emitTyping(f.room);
    this.reads.message(f.room, f, this.user);
    this.emitRead(f.room, false);
  }

  /* A message of a room not joined here: the server delivers every direct message to every
   * connection of both users. Emitted once per id, in order, like any other. */
  onDirect(f) {
    if (!this.user || dmPeer(f.room, this.user) === null) return;
    const ids = this.direct.get(f.room) || [];
    if (ids.length && f.id <= ids[ids.length - 1]) return;
    ids.push(f.id);
    if (ids.length > MAX_DIRECT_IDS) ids.shift();
    this.direct.set(f.room, ids);
    this.emit('message', f);
    this.messageState(f);
  }

  onPresence(f) {
    const room = this.rooms.get(f.room);
    if (!room || !room.members) return;
    const { joined, left } = room.members.apply(f);
    for (const u of joined) this.names.learn(u.user, u.name);
    let typing = false;
    for (const u of left) typing = this.typingIn.set(room.name, u, false) || typing;
    this.emit('members', { room: room.name, ...room.members.view(), joined, left });
    if (typing) this.emitTyping(room.name);
    this.checkMembers(room);
  }

  /* A full list that disagrees with the server's count (changes lost between the snapshot and
   * the diffs, or more than a frame holds): ask for a fresh one, a second later if it still
   * disagrees then, at most once a second per room. */
  checkMembers(room) {
    const key = `members:${room.name}`;
    const off = () => !room.members.truncated && room.members.count !== room.members.users.size;
    if (!off() || this.timers.has(key)) return;
    this.timer(key, 1000, () => {
      if (this.rooms.get(room.name) === room && room.joined && off()) this.requestMembers(room.name);
    });
  }

  onMembers(f) {
    const room = this.rooms.get(f.room);
    if (!room) return;
    if (!room.members) room.members = new Members();
    room.members.snapshot(f);
    for (const u of room.members.users.entries()) this.names.learn(u[0], u[1]);
    this.emit('members', { room: room.name, ...room.members.view() });
  }

  onTyping(f) {
    if (!str(f.room) || !str(f.user) || f.user === this.user) return;  /* ours, elsewhere */
    if (!this.rooms.has(f.room)) return;
    if (this.typingIn.set(f.room, f.user, f.on === true)) this.emitTyping(f.room);
  }

  onRead(f) {
    if (!str(f.room)) return;
    if (this.reads.remote(f.room, f.upto, f.unread)) this.emitRead(f.room, true);
  }

  onReceipt(f) {
    if (str(f.room) && str(f.user) && str(f.upto)) {
      this.emit('receipt', { room: f.room, user: f.user, upto: f.upto });
    }
  }

  onRooms(f) {
    const list = (Array.isArray(f.rooms) ? f.rooms : []).filter((r) => r && str(r.room));
    for (const r of list) {
      this.reads.server(r.room, { readUpto: r.read_upto, unread: r.unread, last: r.last });
    }
    const i = this.roomsRequests.findIndex((r) => r.cid === f.cid);
    const [req] = this.roomsRequests.splice(i >= 0 ? i : 0, 1);
    if (req) req.resolve(list);
    this.emit('rooms', { rooms: list });
  }

  emitTyping(room) {
    this.emit('typing', { room, users: this.typingIn.users(room) });
  }

  emitRead(room, remote) {
    const r = this.reads.get(room);
    this.emit('read', { room, unread: r.unread, readUpto: r.readUpto, last: r.last,
                        marker: r.marker, total: this.reads.total(), remote });
  }

  members(name) {
    const room = this.rooms.get(name);
    return room && room.members && room.members.known ? room.members.view() : null;
  }

  requestMembers(name) {
    const room = this.rooms.get(name);
    if (room && room.joined) this.raw({ type: 'members', room: name });
  }

  /* The person typed in a joined room: typing frames, throttled (chat-state.js). */
  typing(name) {
    const room = this.rooms.get(name);
    if (room && room.joined && this.protocol >= 2) this.typingOut.input(name);
  }

  stopTyping(name) {
    if (this.typingOut.typing(name)) this.typingOut.stop(name);
  }

  typingUsers(name) {
    return this.typingIn.users(name);
  }

  /* Records that the person has read `name` up to `upto` (default: its newest message) and
   * tells the server (v2), which tells the user's other connections. */
  markRead(name, upto) {
    const before = this.reads.peek(name);
    const hadUnread = before ? before.unread : 0;
    const to = this.reads.markRead(name, upto);
    if (to) this.sendRead(name, to);
    if (to || hadUnread !== this.reads.unread(name)) this.emitRead(name, false);
    return to;
  }

  showRoom(name) {
    this.reads.show(name || null);
  }

  readState(name) {
    const r = this.reads.peek(name);
    return r ? { ...r } : null;
  }

  totalUnread() {
    return this.reads.total();
  }

  /* The rooms the user has read state in and their direct rooms (v2), for a new device's
   * sidebar. Answers come in order; a v1 server has none (resolves to []). */
  requestRooms() {
    if (this.protocol < 2) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const cid = this.cid('rooms');
      if (!this.raw({ type: 'rooms', cid })) {
        reject(new Error('not connected'));
        return;
      }
      this.roomsRequests.push({ cid, resolve, reject });
    });
  }

  nameOf(user) {
    return this.names.name(user);
  }

  directRoom(user) {
    return this.user ? dmRoom(this.user, user) : null;
  }

  /* ---- sending ---------------------------------------------------------------------------- */

  send(name, text, opts = {}) {
    const room = this.rooms.get(name);
    if (!room) throw new Error(`not in room ${name}: join it first`);
    const cid = str(opts.cid) || this.cid('m');
    const e = { cid, room: name, text };
    if (this.typingOut.typing(name)) this.typingOut.stop(name);
    this.outbox.delete(cid);  /* a retry goes to the end, in send order */
    this.outbox.set(cid, e);
    if (room.joined) this.transmit(e);
    return cid;
  }

  transmit(e) {
    this.raw({ type: 'send', room: e.room, text: e.text, cid: e.cid });
  }

  /* ---- history ---------------------------------------------------------------------------- */

  history(name, q = {}) {
    const room = this.rooms.get(name);
    if (!room || !room.joined) return Promise.reject(new Error(`room ${name} is not joined`));
    return new Promise((resolve, reject) => {
      const cid = this.cid('history');
      const frame = { type: 'history', room: name, limit: q.limit || 50, cid };
      if (str(q.before)) frame.before = q.before;
      if (str(q.after)) frame.after = q.after;
      room.requests.push({ cid, frame, resolve, reject });
      if (room.requests.length === 1) this.raw(frame);
    });
  }

  /* History answers carry no cid: one read per room on the wire, answered in order. */
  nextRequest(room) {
    const req = room.requests.shift();
    if (room.requests.length) this.raw(room.requests[0].frame);
    return req;
  }

  dropRequests(why) {
    for (const room of this.rooms.values()) {
      room.joined = room.joining = false;
      room.joinCid = null;
      const reqs = room.requests.splice(0);
      for (const r of reqs) r.reject(new Error(why));
    }
    this.leaving.clear();
  }

  async older(name, { limit = 50 } = {}) {
    const room = this.rooms.get(name);
    if (room && !room.oldest) return { messages: [], done: true };
    const messages = await this.history(name, { before: room && room.oldest, limit });
    return { messages, done: messages.length < limit };
  }

  /* Loads what the server still has between gap.after and gap.before (exclusive), at most
   * about `max` messages: forward with `after` on a v2 server, backward with `before` on v1. */
  async fillGap(name, gap, { limit = 100, max = 1000 } = {}) {
    const pages = [];
    let count = 0;
    let { after, before } = gap;
    const forward = this.protocol >= 2 && !!after;
    while (count < max) {
      const page = await this.history(name, forward ? { after, limit } : { before, limit });
      const inside = page.filter((m) => (!after || m.id > after) && (!before || m.id < before));
      if (forward) pages.push(inside);
      else pages.unshift(inside);
      count += inside.length;
      if (!inside.length || inside.length < page.length || page.length < limit) {
        return { messages: pages.flat(), gap: null };
      }
      if (forward) after = inside[inside.length - 1].id;
      else before = inside[0].id;
    }
    return { messages: pages.flat(), gap: { ...gap, after, before } };
  }
}
