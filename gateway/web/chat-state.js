/* chat-state.js: the client-side state of the chat's v2 features (docs/protocol.md: presence,
 * direct messages, typing, read state), as small pieces without I/O and without the DOM.
 * chat-client.js feeds them the frames it receives; a page may use the helpers directly
 * (direct-room names, mentions, the typing line). Timers are injected, so everything here runs
 * under a fake clock in tests/web.
 *
 *   dmUserOk(id), dmRoom(a, b), dmUsers(room), dmPeer(room, me), isDmRoom(room)
 *   Members        a room's member list: the snapshot of `joined.members` / `members`, then the
 *                  diffs of `presence` frames
 *   TypingSet      who is typing in each room; an `on` is over after TYPING_EXPIRE_MS
 *   TypingSender   turns keystrokes into `typing` frames: `on:true` at most once per
 *                  TYPING_SEND_MS, `on:false` after TYPING_IDLE_MS without a keystroke or on stop
 *   ReadState      per room: read_upto, the unread count, the newest id and the read marker
 *   mentions(text, names), typingText(names) */

export const TYPING_EXPIRE_MS = 6000;  /* a receiver treats `on` as over after this */
export const TYPING_SEND_MS = 2000;    /* at most one `on:true` per room this often */
export const TYPING_IDLE_MS = 3000;    /* no keystroke this long: `on:false` */
export const MAX_NAMES = 5000;         /* user -> display name entries kept by a NameBook */

/* ---- direct rooms --------------------------------------------------------------------------- */

const DM_USER_RE = /^[A-Za-z0-9._@-]{1,64}$/;

/* A user id that can have direct rooms: [A-Za-z0-9._@-]{1,64} (no ':'). */
export function dmUserOk(id) {
  return typeof id === 'string' && DM_USER_RE.test(id);
}

/* The direct room of two users: dm:<a>:<b> with the ids in byte order. The server compares
 * bytes; JavaScript's < compares UTF-16 code units, which differs from UTF-8 byte order only
 * for characters outside ASCII. Direct-room ids are ASCII ([A-Za-z0-9._@-]), so plain string
 * comparison is byte order here. Null when either id cannot have direct rooms, or a === b. */
export function dmRoom(a, b) {
  if (!dmUserOk(a) || !dmUserOk(b) || a === b) return null;
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/* [a, b] of a well-formed direct room name, else null. */
export function dmUsers(room) {
  if (typeof room !== 'string' || !room.startsWith('dm:')) return null;
  const parts = room.slice(3).split(':');
  if (parts.length !== 2) return null;
  const [a, b] = parts;
  if (!dmUserOk(a) || !dmUserOk(b) || !(a < b)) return null;  /* ASCII: < is byte order */
  return [a, b];
}

export function isDmRoom(room) {
  return dmUsers(room) !== null;
}

/* The other user of a direct room that names `me`, else null. */
export function dmPeer(room, me) {
  const u = dmUsers(room);
  if (!u) return null;
  if (u[0] === me) return u[1];
  if (u[1] === me) return u[0];
  return null;
}

/* ---- names ---------------------------------------------------------------------------------- */

/* user id -> display name, learnt from member lists; bounded (oldest learnt dropped first). */
export class NameBook {
  constructor(max = MAX_NAMES) {
    this.max = max;
    this.map = new Map();
  }

  learn(user, name) {
    if (typeof user !== 'string' || !user) return;
    const n = typeof name === 'string' && name ? name : user;
    this.map.delete(user);
    this.map.set(user, n);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
  }

  name(user) {
    return this.map.get(user) || user;
  }
}

/* ---- members -------------------------------------------------------------------------------- */

const userOf = (u) => (u && typeof u === 'object' && typeof u.user === 'string' && u.user
  ? { user: u.user, name: typeof u.name === 'string' && u.name ? u.name : u.user } : null);

/* A room's members: { count, truncated, users: Map(user -> name) }. `count` is the server's
 * (every member, once per user); `users` lists at most what the server listed (100) plus the
 * joins seen since, so with `truncated` it may hold fewer than `count`. */
export class Members {
  constructor() {
    this.users = new Map();
    this.count = 0;
    this.truncated = false;
    this.known = false;  /* a snapshot arrived */
  }

  /* joined.members or a members frame: { count, users: [{ user, name }], truncated } */
  snapshot(m) {
    if (!m || typeof m !== 'object') return false;
    this.users = new Map();
    for (const raw of Array.isArray(m.users) ? m.users : []) {
      const u = userOf(raw);
      if (u) this.users.set(u.user, u.name);
    }
    this.count = Number.isInteger(m.count) && m.count >= 0 ? m.count : this.users.size;
    this.truncated = m.truncated === true;
    this.known = true;
    return true;
  }

  /* A presence frame: { joined: [{ user, name }], left: [user], count }. Returns the users
   * that joined and left, as applied. */
  apply(p) {
    const joined = [];
    const left = [];
    for (const user of Array.isArray(p.left) ? p.left : []) {
      if (typeof user !== 'string') continue;
      this.users.delete(user);
      left.push(user);
    }
    for (const raw of Array.isArray(p.joined) ? p.joined : []) {
      const u = userOf(raw);
      if (!u) continue;
      this.users.set(u.user, u.name);
      joined.push(u);
    }
    if (Number.isInteger(p.count) && p.count >= 0) {
      this.count = p.count;
    } else if (!this.truncated) {
      this.count = this.users.size;
    }
    return { joined, left };
  }

  has(user) {
    return this.users.has(user);
  }

  /* [{ user, name }] sorted by name (case-insensitive), then id. */
  list() {
    return [...this.users].map(([user, name]) => ({ user, name }))
      .sort((x, y) => x.name.localeCompare(y.name, undefined, { sensitivity: 'base' }) ||
        (x.user < y.user ? -1 : x.user > y.user ? 1 : 0));
  }

  view() {
    return { count: this.count, truncated: this.truncated, users: this.list() };
  }
}

/* ---- typing --------------------------------------------------------------------------------- */

/* Who is typing, per room. set() with on:true (re)starts the user's expiry; onChange(room) is
 * called when an expiry ends someone's typing (set() and clear*() report changes by their
 * result instead). */
export class TypingSet {
  constructor({ setTimeout, clearTimeout, onChange, expireMs = TYPING_EXPIRE_MS }) {
    this.setTimer = setTimeout;
    this.clearTimer = clearTimeout;
    this.onChange = onChange || (() => {});
    this.expireMs = expireMs;
    this.rooms = new Map();  /* room -> Map(user -> timer), in the order they started */
  }

  /* Returns true when the room's list of typing users changed. */
  set(room, user, on) {
    let m = this.rooms.get(room);
    const had = !!m && m.has(user);
    if (had) this.clearTimer(m.get(user));
    if (!on) {
      if (!had) return false;
      m.delete(user);
      if (!m.size) this.rooms.delete(room);
      return true;
    }
    if (!m) {
      m = new Map();
      this.rooms.set(room, m);
    }
    m.set(user, this.setTimer(() => {
      const cur = this.rooms.get(room);
      if (!cur || !cur.has(user)) return;
      cur.delete(user);
      if (!cur.size) this.rooms.delete(room);
      this.onChange(room);
    }, this.expireMs));
    return !had;
  }

  clearRoom(room) {
    const m = this.rooms.get(room);
    if (!m) return false;
    for (const t of m.values()) this.clearTimer(t);
    this.rooms.delete(room);
    return true;
  }

  /* Clears every room; returns the rooms that had someone typing. */
  clearAll() {
    const rooms = [...this.rooms.keys()];
    for (const r of rooms) this.clearRoom(r);
    return rooms;
  }

  users(room) {
    const m = this.rooms.get(room);
    return m ? [...m.keys()] : [];
  }
}

/* Keystrokes to typing frames. send(room, on) is called with the frames to send. */
export class TypingSender {
  constructor({ now, setTimeout, clearTimeout, send, sendMs = TYPING_SEND_MS,
                idleMs = TYPING_IDLE_MS }) {
    this.now = now;
    this.setTimer = setTimeout;
    this.clearTimer = clearTimeout;
    this.sendFrame = send;
    this.sendMs = sendMs;
    this.idleMs = idleMs;
    this.rooms = new Map();  /* room -> { lastOn, timer } while `on` */
  }

  /* The person typed in the room. */
  input(room) {
    let s = this.rooms.get(room);
    const t = this.now();
    if (!s) {
      s = { lastOn: -Infinity, timer: null };
      this.rooms.set(room, s);
    }
    if (t - s.lastOn >= this.sendMs) {
      s.lastOn = t;
      this.sendFrame(room, true);
    }
    if (s.timer !== null) this.clearTimer(s.timer);
    s.timer = this.setTimer(() => {
      s.timer = null;
      this.stop(room);
    }, this.idleMs);
  }

  /* The person stopped (sent the message, emptied the box, left the room): on:false if on. */
  stop(room) {
    const s = this.rooms.get(room);
    if (!s) return;
    if (s.timer !== null) this.clearTimer(s.timer);
    this.rooms.delete(room);
    this.sendFrame(room, false);
  }

  /* The room is closed here: nothing to send. */
  forget(room) {
    const s = this.rooms.get(room);
    if (s && s.timer !== null) this.clearTimer(s.timer);
    this.rooms.delete(room);
  }

  /* The connection is gone: the server forgot our typing with it; nothing to send. */
  reset() {
    for (const s of this.rooms.values()) if (s.timer !== null) this.clearTimer(s.timer);
    this.rooms.clear();
  }

  typing(room) {
    return this.rooms.has(room);
  }
}

/* ---- read state ----------------------------------------------------------------------------- */

const idOf = (v) => (typeof v === 'string' && v ? v : null);
const newer = (a, b) => (a && (!b || a > b) ? a : b);  /* the later of two ids of one room */

/* Per room: readUpto (the newest id the user has read, null: never read), unread (messages
 * after it: from the server, then counted live), last (the newest id known) and marker (where
 * the "new messages" line goes: after this id, or null for no line).
 *
 * The marker is set to readUpto when a room's unread count goes from 0 to more (a room with
 * no read state gets none: all of it is new) and stays while the room is shown, so the line
 * does not jump away while the person reads; it goes when the room is no longer shown and has
 * nothing unread, or when it is read elsewhere while not shown. */
export class ReadState {
  constructor() {
    this.rooms = new Map();
    this.shown = null;  /* the room on screen */
  }

  get(room) {
    let r = this.rooms.get(room);
    if (!r) {
      r = { readUpto: null, unread: 0, last: null, marker: null };
      this.rooms.set(room, r);
    }
    return r;
  }

  peek(room) {
    return this.rooms.get(room) || null;
  }

  forget(room) {
    this.rooms.delete(room);
  }

  setUnread(r, n) {
    if (r.unread === 0 && n > 0 && r.marker === null && r.readUpto) r.marker = r.readUpto;
    r.unread = n;
    if (n === 0 && r !== this.rooms.get(this.shown)) r.marker = null;
  }

  /* What the server says (joined: read_upto, unread and the newest history id; rooms:
   * read_upto, unread, last). A local read that went further wins (it may not have reached
   * the server yet): returns true when that is the case, so the caller sends it again. */
  server(room, { readUpto, unread, last }) {
    const r = this.get(room);
    r.last = newer(idOf(last), r.last);
    const given = idOf(readUpto);
    if (r.readUpto && (!given || given < r.readUpto)) {
      if (r.last && r.last <= r.readUpto) this.setUnread(r, 0);
      return true;
    }
    r.readUpto = given;
    if (Number.isInteger(unread) && unread >= 0) this.setUnread(r, unread);
    else if (r.last && r.readUpto && r.last <= r.readUpto) this.setUnread(r, 0);
    return false;
  }

  /* A new message (live): counts when it is newer than everything known, not the user's own
   * and after readUpto. Returns true when the unread count changed. */
  message(room, m, me) {
    const r = this.get(room);
    if (r.last && m.id <= r.last) return false;
    r.last = m.id;
    if (m.from === me || (r.readUpto && m.id <= r.readUpto)) return false;
    this.setUnread(r, r.unread + 1);
    return true;
  }

  /* The user has read up to `upto` (default: the newest known). Returns the id to send in a
   * read frame, or null when it does not move forward. */
  markRead(room, upto) {
    const r = this.get(room);
    const to = idOf(upto) || r.last;
    if (!to || (r.readUpto && to <= r.readUpto)) {
      if (r.unread && r.last && r.readUpto && r.last <= r.readUpto) this.setUnread(r, 0);
      return null;
    }
    r.readUpto = to;
    r.last = newer(to, r.last);
    if (to >= r.last) this.setUnread(r, 0);
    return to;
  }

  /* A read frame from the user's other devices: { upto, unread }. Returns true on a change. */
  remote(room, upto, unread) {
    const r = this.get(room);
    const to = idOf(upto);
    if (!to || (r.readUpto && to <= r.readUpto)) return false;
    r.readUpto = to;
    r.last = newer(to, r.last);
    if (Number.isInteger(unread) && unread >= 0) this.setUnread(r, unread);
    else if (to >= r.last) this.setUnread(r, 0);
    return true;
  }

  /* The room on screen (null: none). Leaving a room with nothing unread drops its marker. */
  show(room) {
    const prev = this.shown;
    this.shown = room;
    const p = prev !== room ? this.rooms.get(prev) : null;
    if (p && p.unread === 0) p.marker = null;
  }

  unread(room) {
    const r = this.rooms.get(room);
    return r ? r.unread : 0;
  }

  total() {
    let n = 0;
    for (const r of this.rooms.values()) n += r.unread;
    return n;
  }
}

/* ---- text helpers --------------------------------------------------------------------------- */

const ID_CHAR = /[A-Za-z0-9_@-]/;
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/* Whether text mentions one of `names` (the person's name and user id) as @name: not inside a
 * word or an address before the @, and not followed by more of an id (a trailing '.' that ends
 * a sentence is fine). Case-insensitive. */
export function mentions(text, names) {
  if (typeof text !== 'string' || !text.includes('@')) return false;
  for (const n of names || []) {
    if (typeof n !== 'string' || !n) continue;
    const re = new RegExp(`@${escapeRe(n)}`, 'gi');
    let m;
    while ((m = re.exec(text)) !== null) {
      const before = m.index > 0 ? text[m.index - 1] : '';
      const end = m.index + m[0].length;
      const after = text[end] || '';
      const next = text[end + 1] || '';
      const glued = ID_CHAR.test(after) || (after === '.' && ID_CHAR.test(next));
      if (!(before && (ID_CHAR.test(before) || before === '.')) && !glued) return true;
    }
  }
  return false;
}

/* The typing line for a list of display names. */
export function typingText(names) {
  const n = names.length;
  if (n === 0) return '';
  if (n === 1) return `${names[0]} is typing\u2026`;
  if (n === 2) return `${names[0]} and ${names[1]} are typing\u2026`;
  if (n === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing\u2026`;
  return 'Several people are typing\u2026';
}
