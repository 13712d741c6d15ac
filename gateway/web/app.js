/* app.js: the chat web client. Signs in (development token from /dev/token, or a pasted JWT),
 * keeps one WebSocket to /ws speaking protocol v1 (docs/protocol.md), and renders rooms and
 * messages. User-supplied text only ever reaches the page through textContent; the page runs
 * under a CSP without 'unsafe-inline', so everything is wired here with addEventListener.
 * Plain modern JavaScript, no framework and no build step. */
'use strict';

(() => {
  const ROOM_RE = /^[A-Za-z0-9._:-]{1,64}$/;
  const NAME_RE = /^[A-Za-z0-9._-]{1,32}$/;
  const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
  const MAX_TEXT_BYTES = 4096;  /* the gateway's default CHAT_MAX_TEXT */
  const HISTORY_PAGE = 50;      /* messages per "load older" request (server allows 1..100) */
  const PING_EVERY_MS = 25000;
  const PONG_TIMEOUT_MS = 10000;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const DEFAULT_ROOM = 'general';
  const MAX_NOTICES = 4;
  const BOTTOM_SLACK_PX = 48;       /* "at the bottom" if within this many pixels of it */
  const GROUP_MS = 5 * 60 * 1000;   /* one sender's messages this close share one header */
  const STORE_KEY = 'chat.session.v1';
  const NAME_KEY = 'chat.lastName';

  const $ = (id) => document.getElementById(id);
  const el = {
    conn: $('conn'), connText: $('conn-text'), reconnectNow: $('reconnect-now'),
    whoami: $('whoami'), whoamiUser: $('whoami-user'), signout: $('signout'),
    notices: $('notices'),
    signin: $('signin'), signinReason: $('signin-reason'),
    nameForm: $('name-form'), nameInput: $('name-input'), nameError: $('name-error'),
    nameSubmit: $('name-submit'),
    tokenForm: $('token-form'), tokenInput: $('token-input'), tokenError: $('token-error'),
    tokenBack: $('token-back'),
    chat: $('chat'), sidebar: $('sidebar'), roomsToggle: $('rooms-toggle'),
    backdrop: $('sidebar-backdrop'),
    joinForm: $('join-form'), joinInput: $('join-input'), joinError: $('join-error'),
    roomList: $('room-list'), roomsEmpty: $('rooms-empty'),
    roomTitle: $('room-title'), leaveCurrent: $('leave-current'),
    roomViews: $('room-views'), noRoom: $('no-room'), jumpLatest: $('jump-latest'),
    composer: $('composer'), input: $('message-input'), send: $('send-button'),
    counter: $('byte-counter'),
    template: $('message-template'),
  };
  const encoder = new TextEncoder();
  const narrow = window.matchMedia('(max-width: 720px)');

  /* ---- state ------------------------------------------------------------------------------ */

  const state = {
    token: null,          /* the JWT in use */
    user: null,           /* welcome.user: our sub */
    gateway: null,        /* welcome.gateway */
    ws: null,
    conn: 'signed-out',   /* signed-out | connecting | connected | disconnected */
    attempt: 0,           /* consecutive failed connects, for the backoff */
    reconnectTimer: 0,
    countdownTimer: 0,
    pingTimer: 0,
    pongTimer: 0,
    rooms: new Map(),     /* name -> room (see newRoom) */
    order: [],            /* room names in the order they were joined */
    current: null,        /* name of the room on screen */
    requests: new Map(),  /* cid -> {kind: 'join'|'leave'|'history'|'send', room} */
    seq: 0,
    devTokens: null,      /* false once /dev/token answered 404: go straight to the JWT form */
    selfName: null,       /* our display name: the token's name claim, else its sub */
    hiddenUnread: 0,      /* messages that arrived while the tab was in the background */
  };
  const baseTitle = document.title;

  function newCid(kind) {
    state.seq += 1;
    /* printable ASCII, at most 64 bytes, unique enough for one tab */
    return `${kind}-${Date.now().toString(36)}-${state.seq.toString(36)}-` +
           Math.random().toString(36).slice(2, 8);
  }

  /* ---- persistence (this tab only) -------------------------------------------------------- */

  function saveSession() {
    if (!state.token) {
      sessionStorage.removeItem(STORE_KEY);
      return;
    }
    sessionStorage.setItem(STORE_KEY, JSON.stringify({
      token: state.token, rooms: state.order, current: state.current,
    }));
  }

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
      if (s && typeof s.token === 'string' && Array.isArray(s.rooms)) return s;
    } catch (e) { /* ignore a damaged entry */ }
    return null;
  }

  /* The token's claims, without verifying anything: only to show who it is for and to notice an
   * expired one before the server does. */
  function jwtClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === 'object' ? claims : null;
    } catch (e) {
      return null;
    }
  }

  function tokenExpired(token) {
    const c = jwtClaims(token);
    return !!(c && typeof c.exp === 'number' && c.exp * 1000 <= Date.now());
  }

  /* ---- small helpers ---------------------------------------------------------------------- */

  function show(node, on) { node.hidden = !on; }

  function setFieldError(node, text) {
    node.textContent = text || '';
    show(node, !!text);
  }

  function utf8Bytes(s) { return encoder.encode(s).length; }

  function formatTime(ts) {
    const d = new Date(ts);
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (sameDay) return time;
    return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
  }

  function notice(text, kind = 'error') {
    const box = document.createElement('div');
    box.className = `notice notice-${kind}`;
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    const p = document.createElement('p');
    p.textContent = text;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'icon-button notice-close';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '\u00d7';
    close.addEventListener('click', () => box.remove());
    box.append(p, close);
    el.notices.append(box);
    while (el.notices.children.length > MAX_NOTICES) el.notices.firstElementChild.remove();
    if (kind !== 'error') setTimeout(() => box.remove(), 6000);
  }

  function errorText(f) {
    const msg = typeof f.message === 'string' && f.message ? f.message : 'no details';
    return `${f.code || 'error'}: ${msg}`;
  }

  /* ---- connection state display ----------------------------------------------------------- */

  function setConn(conn, text) {
    state.conn = conn;
    el.conn.dataset.state = conn;
    el.connText.textContent = text;
    show(el.reconnectNow, conn === 'disconnected');
    updateComposer();
  }

  /* ---- sign-in ---------------------------------------------------------------------------- */

  function showSignin(reason) {
    show(el.signin, true);
    show(el.chat, false);
    show(el.whoami, false);
    show(el.roomsToggle, false);
    setFieldError(el.signinReason, reason);
    if (state.devTokens === false) {
      showTokenForm();
      return;
    }
    show(el.nameForm, true);
    show(el.tokenForm, false);
    el.nameInput.value = localStorage.getItem(NAME_KEY) || el.nameInput.value;
    el.nameInput.focus();
  }

  function showTokenForm() {
    show(el.nameForm, false);
    show(el.tokenForm, true);
    el.tokenInput.focus();
  }

  async function onNameSubmit(ev) {
    ev.preventDefault();
    const name = el.nameInput.value.trim();
    if (!NAME_RE.test(name)) {
      setFieldError(el.nameError,
        'Use 1 to 32 characters: letters, digits, dot, dash or underscore.');
      el.nameInput.setAttribute('aria-invalid', 'true');
      el.nameInput.focus();
      return;
    }
    el.nameInput.removeAttribute('aria-invalid');
    setFieldError(el.nameError, '');
    el.nameSubmit.disabled = true;
    try {
      const res = await fetch(`/dev/token?user=${encodeURIComponent(name)}`,
        { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (res.status === 404) {
        state.devTokens = false;
        showTokenForm();
        return;
      }
      let body = null;
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      if (!res.ok || !body || typeof body.token !== 'string') {
        const why = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
        setFieldError(el.nameError, `Sign-in refused: ${why}`);
        return;
      }
      localStorage.setItem(NAME_KEY, name);
      startSession(body.token, [DEFAULT_ROOM], DEFAULT_ROOM);
    } catch (e) {
      setFieldError(el.nameError, 'Cannot reach the server. Check your connection and try again.');
    } finally {
      el.nameSubmit.disabled = false;
    }
  }

  function onTokenSubmit(ev) {
    ev.preventDefault();
    const token = el.tokenInput.value.replace(/^\s*(Bearer\s+)?/i, '').trim();
    if (!JWT_RE.test(token) || !jwtClaims(token)) {
      setFieldError(el.tokenError, 'That does not look like a JWT (three base64url parts ' +
        'separated by dots).');
      return;
    }
    if (tokenExpired(token)) {
      setFieldError(el.tokenError, 'This token has expired: get a fresh one.');
      return;
    }
    setFieldError(el.tokenError, '');
    el.tokenInput.value = '';
    startSession(token, [DEFAULT_ROOM], DEFAULT_ROOM);
  }

  function startSession(token, rooms, current) {
    state.token = token;
    state.user = null;
    const claims = jwtClaims(token) || {};
    state.selfName = typeof claims.name === 'string' && claims.name ? claims.name
      : (typeof claims.sub === 'string' ? claims.sub : null);
    state.gateway = null;
    for (const name of [...state.order]) dropRoom(name);
    const wanted = rooms.filter((r) => typeof r === 'string' && ROOM_RE.test(r));
    for (const name of wanted) ensureRoom(name);
    state.current = null;
    selectRoom(wanted.includes(current) ? current : (wanted[0] || null));
    saveSession();
    show(el.signin, false);
    show(el.chat, true);
    show(el.roomsToggle, true);
    setFieldError(el.signinReason, '');
    state.attempt = 0;
    connect();
  }

  function signOut(reason) {
    const ws = state.ws;
    state.ws = null;
    clearTimers();
    if (ws) {
      detach(ws);
      try { ws.close(1000, 'signed out'); } catch (e) { /* already closed */ }
    }
    state.token = null;
    state.user = null;
    for (const name of [...state.order]) dropRoom(name);
    state.requests.clear();
    saveSession();
    setConn('signed-out', 'Not signed in');
    showSignin(reason);
  }

  /* ---- WebSocket -------------------------------------------------------------------------- */

  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  function clearTimers() {
    clearTimeout(state.reconnectTimer);
    clearInterval(state.countdownTimer);
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
    state.reconnectTimer = state.countdownTimer = state.pingTimer = state.pongTimer = 0;
  }

  function detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  function connect() {
    clearTimers();
    if (!state.token) return;
    if (state.ws) {
      detach(state.ws);
      try { state.ws.close(); } catch (e) { /* ignore */ }
    }
    setConn('connecting', state.attempt ? 'Reconnecting\u2026' : 'Connecting\u2026');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => sendFrame({ type: 'auth', token: state.token });
    ws.onmessage = (ev) => onFrame(ev.data);
    ws.onerror = () => { /* a close event follows with the details */ };
    ws.onclose = (ev) => onClose(ws, ev);
  }

  function sendFrame(obj) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  function onClose(ws, ev) {
    if (ws !== state.ws) return;
    state.ws = null;
    clearTimers();
    failUnacked('the connection closed before the server confirmed it');
    /* a leave on its way is done: the server forgot this connection's rooms anyway */
    for (const room of [...state.rooms.values()]) if (room.leaving) dropRoom(room.name);
    for (const room of state.rooms.values()) {
      room.joined = false;
      room.joining = false;
      room.loadingOlder = false;
      renderRoomControls(room);
    }
    state.requests.clear();
    renderRoomList();
    if (ev.code === 4001) {
      signOut(`You were signed out: ${ev.reason || 'the server refused the token'}.`);
      return;
    }
    if (ev.code === 1008) {
      notice('The server dropped this connection because it could not keep up ' +
             `(${ev.reason || 'slow consumer'}). Reconnecting.`);
    } else if (ev.code === 1009) {
      notice(`The server closed the connection: a frame was too big (${ev.reason || '1009'}).`);
    }
    /* 1001 (gateway going away) is routine: reconnect at once, HAProxy picks another gateway */
    if (ev.code === 1001 && state.attempt === 0) {
      state.attempt = 1;
      setConn('connecting', 'Gateway restarting, reconnecting\u2026');
      state.reconnectTimer = setTimeout(connect, 250 + Math.random() * 750);
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimers();
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(state.attempt, 10));
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));  /* jitter: [cap/2, cap] */
    state.attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const s = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      el.connText.textContent = `Disconnected \u2014 retrying in ${s} s`;
    };
    setConn('disconnected', '');
    tick();
    state.countdownTimer = setInterval(tick, 1000);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function startPing() {
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => {
      if (!sendFrame({ type: 'ping' })) return;
      clearTimeout(state.pongTimer);
      state.pongTimer = setTimeout(() => {
        /* no pong: the path is dead; do not wait for a close handshake that will not come */
        const ws = state.ws;
        if (!ws) return;
        detach(ws);
        try { ws.close(4000, 'pong timeout'); } catch (e) { /* ignore */ }
        onClose(ws, { code: 1006, reason: 'no answer to ping' });
      }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  /* ---- incoming frames -------------------------------------------------------------------- */

  function onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') return;
    /* any frame proves the connection is alive */
    clearTimeout(state.pongTimer);
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'joined': return onJoined(f);
      case 'left': return onLeft(f);
      case 'message': return onMessage(f);
      case 'ack': return onAck(f);
      case 'history': return onHistory(f);
      case 'error': return onError(f);
      case 'pong': return undefined;
      default: return undefined;  /* newer servers may add frames: ignore them */
    }
  }

  function onWelcome(f) {
    state.user = typeof f.user === 'string' ? f.user : null;
    state.gateway = typeof f.gateway === 'string' ? f.gateway : '?';
    state.attempt = 0;
    el.whoamiUser.textContent = state.selfName || state.user || '';
    el.whoamiUser.title = state.user ? `user id: ${state.user}` : '';
    show(el.whoami, true);
    setConn('connected', `Connected to ${state.gateway}`);
    startPing();
    for (const name of state.order) requestJoin(state.rooms.get(name));
    updateComposer();
  }

  function requestJoin(room) {
    const cid = newCid('join');
    state.requests.set(cid, { kind: 'join', room: room.name });
    room.joining = true;
    renderRoomList();
    sendFrame({ type: 'join', room: room.name, cid });
  }

  function onJoined(f) {
    const room = state.rooms.get(f.room);
    if (!room) {
      /* left (locally) while the join was on its way: undo it on the server too */
      if (typeof f.room === 'string') sendFrame({ type: 'leave', room: f.room });
      return;
    }
    forgetRequests('join', room.name);
    room.joining = false;
    room.joined = true;
    const history = Array.isArray(f.history) ? f.history : [];
    const newest = room.list.lastElementChild;
    if (newest && history.length && validMessage(history[0]) &&
        history[0].id > newest.dataset.id) {
      /* a rejoin after a long absence: messages between what we show and this history may
       * be missing, and "load older" would never fetch them; start over from the history */
      room.list.replaceChildren();
      room.byId.clear();
      room.exhausted = false;
    }
    if (!room.loadedOnce) {
      room.loadedOnce = true;
      room.exhausted = history.length === 0;
    }
    addMessages(room, history, 'bottom');
    resolveFromHistory(room, history);
    renderRoomControls(room);
    renderRoomList();
    updateComposer();
  }

  function onLeft(f) {
    forgetRequests('leave', f.room);
    if (state.rooms.has(f.room)) dropRoom(f.room);
  }

  function onMessage(f) {
    if (typeof f.room !== 'string' || typeof f.id !== 'string') return;
    const room = state.rooms.get(f.room);
    if (!room) return;
    const fresh = !room.byId.has(f.id);
    addMessages(room, [f], 'bottom');
    if (f.cid && f.from === state.user) resolvePending(room, f.cid, f);
    if (!fresh || f.from === state.user) return;
    if (room.name !== state.current) {
      room.unread += 1;
      renderRoomList();
    }
    if (document.hidden) {
      state.hiddenUnread += 1;
      document.title = `(${state.hiddenUnread}) ${baseTitle}`;
    }
  }

  function onAck(f) {
    const req = state.requests.get(f.cid);
    if (!req || req.kind !== 'send') return;
    state.requests.delete(f.cid);
    const room = state.rooms.get(req.room);
    if (!room) return;
    const p = room.pending.get(f.cid);
    if (p && typeof f.id === 'string') {
      p.id = f.id;
      p.acked = true;
      /* the broadcast copy may already be here; if not, show the message as confirmed now */
      resolvePending(room, f.cid, null);
    }
  }

  function onHistory(f) {
    const room = state.rooms.get(f.room);
    if (!room) return;
    forgetRequests('history', room.name);
    const msgs = Array.isArray(f.messages) ? f.messages : [];
    room.loadingOlder = false;
    if (msgs.length < HISTORY_PAGE) room.exhausted = true;
    addMessages(room, msgs, 'top');
    renderRoomControls(room);
  }

  function onError(f) {
    const req = typeof f.cid === 'string' ? state.requests.get(f.cid) : null;
    if (req) state.requests.delete(f.cid);
    const text = errorText(f);
    if (req && req.kind === 'send') {
      const room = state.rooms.get(req.room);
      const p = room && room.pending.get(f.cid);
      if (p) {
        markFailed(room, p, text);
        if (f.code === 'not_joined') requestJoin(room);
      }
      notice(`Message not sent \u2014 ${text}`);
      return;
    }
    if (req && req.kind === 'join') {
      const room = state.rooms.get(req.room);
      notice(`Could not join ${req.room} \u2014 ${text}`);
      if (room && !room.joined) dropRoom(req.room);
      return;
    }
    if (req && req.kind === 'history') {
      const room = state.rooms.get(req.room);
      if (room) {
        room.loadingOlder = false;
        renderRoomControls(room);
      }
      notice(`Could not load older messages of ${req.room} \u2014 ${text}`);
      return;
    }
    if (req && req.kind === 'leave') {
      notice(`Could not leave ${req.room} \u2014 ${text}`);
      if (f.code === 'not_joined' && state.rooms.has(req.room)) dropRoom(req.room);
      return;
    }
    if (!req && f.code === 'unavailable') {
      /* storage trouble answers a join or a history request without its cid: undo whatever
       * is waiting and try the joins again in a moment (a repeated join is harmless) */
      for (const room of state.rooms.values()) {
        if (room.loadingOlder) {
          room.loadingOlder = false;
          renderRoomControls(room);
        }
        if (room.joining && !room.joined) {
          room.joining = false;
          setTimeout(() => {
            if (state.conn === 'connected' && state.rooms.get(room.name) === room &&
                !room.joined && !room.joining) requestJoin(room);
          }, 3000 + Math.random() * 2000);
        }
      }
      renderRoomList();
    }
    if (!req && (f.code === 'too_many_rooms' || f.code === 'invalid_room')) {
      /* a server that does not echo the cid of a join: blame the newest pending join */
      const joining = state.order.filter((n) => state.rooms.get(n).joining);
      const name = joining[joining.length - 1];
      if (name) {
        notice(`Could not join ${name} \u2014 ${text}`);
        dropRoom(name);
        return;
      }
    }
    notice(text);
  }

  function forgetRequests(kind, roomName) {
    for (const [cid, r] of state.requests) {
      if (r.kind === kind && r.room === roomName) state.requests.delete(cid);
    }
  }

  /* ---- rooms ------------------------------------------------------------------------------ */

  function ensureRoom(name) {
    let room = state.rooms.get(name);
    if (room) return room;
    const view = document.createElement('section');
    view.className = 'room-view';
    view.hidden = true;
    view.setAttribute('aria-label', `Messages in ${name}`);
    view.tabIndex = 0;
    const older = document.createElement('button');
    older.type = 'button';
    older.className = 'secondary load-older';
    older.textContent = 'Load older messages';
    const start = document.createElement('p');
    start.className = 'muted room-start';
    start.textContent = `This is the beginning of ${name}.`;
    start.hidden = true;
    const list = document.createElement('ol');
    list.className = 'messages';
    list.setAttribute('role', 'log');
    list.setAttribute('aria-live', 'polite');
    list.setAttribute('aria-relevant', 'additions');
    list.setAttribute('aria-label', `Messages in ${name}`);
    const pendingList = document.createElement('ol');
    pendingList.className = 'messages pending-list';
    pendingList.setAttribute('aria-label', 'Messages being sent');
    view.append(older, start, list, pendingList);
    el.roomViews.append(view);
    room = {
      name, view, older, start, list, pendingList,
      byId: new Map(),       /* id -> li */
      pending: new Map(),    /* cid -> {li, text, acked, id, failed} */
      joined: false, joining: false, loadedOnce: false, exhausted: false,
      loadingOlder: false, unread: 0, scrollTop: null, draft: '',
    };
    older.addEventListener('click', () => loadOlder(room));
    view.addEventListener('scroll', () => {
      if (room.name === state.current && isAtBottom(room)) show(el.jumpLatest, false);
    }, { passive: true });
    state.rooms.set(name, room);
    state.order.push(name);
    renderRoomControls(room);
    renderRoomList();
    return room;
  }

  function dropRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    for (const cid of room.pending.keys()) state.requests.delete(cid);
    room.view.remove();
    state.rooms.delete(name);
    state.order = state.order.filter((n) => n !== name);
    if (state.current === name) {
      state.current = null;
      selectRoom(state.order[state.order.length - 1] || null);
    }
    renderRoomList();
    saveSession();
  }

  function joinByName(raw) {
    const name = raw.trim();
    if (!ROOM_RE.test(name)) {
      setFieldError(el.joinError,
        'Room names are 1 to 64 letters, digits, or . _ : - characters.');
      el.joinInput.setAttribute('aria-invalid', 'true');
      return;
    }
    el.joinInput.removeAttribute('aria-invalid');
    setFieldError(el.joinError, '');
    el.joinInput.value = '';
    const known = state.rooms.get(name);
    if (!known) {
      const room = ensureRoom(name);
      if (state.conn === 'connected') requestJoin(room);
    }
    selectRoom(name);
    saveSession();
    closeSidebar();
    el.input.focus();
  }

  function leaveRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    if ((room.joined || room.joining) && state.conn === 'connected') {
      const cid = newCid('leave');
      state.requests.set(cid, { kind: 'leave', room: name });
      sendFrame({ type: 'leave', room: name, cid });
      room.leaving = true;
      renderRoomList();
    } else {
      dropRoom(name);
    }
  }

  function selectRoom(name) {
    const prev = state.current ? state.rooms.get(state.current) : null;
    if (prev) {
      prev.scrollTop = isAtBottom(prev) ? null : prev.view.scrollTop;
      prev.view.hidden = true;
      prev.draft = el.input.value;
    }
    state.current = name;
    const room = name ? state.rooms.get(name) : null;
    show(el.jumpLatest, false);
    if (room) {
      room.view.hidden = false;
      room.unread = 0;
      if (room.scrollTop === null) scrollToBottom(room);
      else room.view.scrollTop = room.scrollTop;
      el.roomTitle.textContent = `# ${name}`;
      if (prev !== room) el.input.value = room.draft || '';
      autoGrow();
    } else {
      el.roomTitle.textContent = '\u00a0';
    }
    show(el.noRoom, !room);
    show(el.leaveCurrent, !!room);
    renderRoomList();
    updateComposer();
    saveSession();
  }

  function renderRoomList() {
    const frag = document.createDocumentFragment();
    for (const name of state.order) {
      const room = state.rooms.get(name);
      const li = document.createElement('li');
      li.className = 'room-item';
      if (name === state.current) li.classList.add('current');
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'room-open';
      if (name === state.current) open.setAttribute('aria-current', 'true');
      const label = document.createElement('span');
      label.className = 'room-name';
      label.textContent = `# ${name}`;
      open.append(label);
      let status = '';
      if (room.leaving) status = 'leaving\u2026';
      else if (room.joining || (!room.joined && state.conn === 'connected')) status = 'joining\u2026';
      if (status) {
        const s = document.createElement('span');
        s.className = 'room-status';
        s.textContent = status;
        open.append(s);
      } else if (room.unread > 0) {
        const badge = document.createElement('span');
        badge.className = 'badge';
        badge.textContent = room.unread > 99 ? '99+' : String(room.unread);
        badge.setAttribute('aria-label', `${room.unread} unread`);
        open.append(badge);
      }
      open.addEventListener('click', () => { selectRoom(name); closeSidebar(); });
      const leave = document.createElement('button');
      leave.type = 'button';
      leave.className = 'icon-button room-leave';
      leave.setAttribute('aria-label', `Leave ${name}`);
      leave.title = `Leave ${name}`;
      leave.textContent = '\u00d7';
      leave.addEventListener('click', () => leaveRoom(name));
      li.append(open, leave);
      frag.append(li);
    }
    el.roomList.replaceChildren(frag);
    show(el.roomsEmpty, state.order.length === 0);
  }

  function renderRoomControls(room) {
    const canLoad = room.joined && !room.exhausted && room.byId.size > 0;
    room.older.hidden = !canLoad;
    room.older.disabled = room.loadingOlder;
    room.older.textContent = room.loadingOlder ? 'Loading\u2026' : 'Load older messages';
    room.start.hidden = !(room.loadedOnce && room.exhausted);
  }

  function loadOlder(room) {
    if (room.loadingOlder || room.exhausted || state.conn !== 'connected') return;
    const first = room.list.querySelector('li[data-id]');
    if (!first) return;
    const cid = newCid('history');
    state.requests.set(cid, { kind: 'history', room: room.name });
    room.loadingOlder = true;
    renderRoomControls(room);
    sendFrame({ type: 'history', room: room.name, before: first.dataset.id,
                limit: HISTORY_PAGE, cid });
  }

  /* ---- messages --------------------------------------------------------------------------- */

  function isAtBottom(room) {
    const v = room.view;
    return v.scrollHeight - v.scrollTop - v.clientHeight <= BOTTOM_SLACK_PX;
  }

  function scrollToBottom(room) {
    room.view.scrollTop = room.view.scrollHeight;
  }

  function buildMessage(m, own) {
    const li = el.template.content.firstElementChild.cloneNode(true);
    if (own) li.classList.add('own');
    const from = String(m.from || '?');
    let display = (typeof m.name === 'string' && m.name) ? m.name : from;
    if (own) display = `${state.selfName || display} (you)`;
    li.querySelector('.msg-from').textContent = display;
    li.dataset.from = from;
    setTime(li, m.ts);
    li.querySelector('.msg-text').textContent = String(m.text);
    return li;
  }

  function setTime(li, ts) {
    const t = li.querySelector('.msg-time');
    if (typeof ts !== 'number' || !Number.isFinite(ts)) {
      t.textContent = '';
      return;
    }
    li.dataset.ts = String(ts);
    const d = new Date(ts);
    t.dateTime = d.toISOString();
    t.title = d.toLocaleString();
    li.title = t.title;
    t.textContent = formatTime(ts);
  }

  function validMessage(m) {
    return m && typeof m === 'object' && typeof m.id === 'string' && m.id &&
           typeof m.text === 'string';
  }

  /* Inserts messages (any order, duplicates skipped) keeping the list sorted by id, which is
   * the room's order. where = 'bottom' follows the newest if the reader was at the bottom;
   * 'top' keeps the reader's place while older messages appear above. */
  function addMessages(room, msgs, where) {
    const visible = room.name === state.current && !room.view.hidden;
    const atBottom = visible && isAtBottom(room);
    const oldHeight = room.view.scrollHeight;
    const oldTop = room.view.scrollTop;
    let added = 0;
    for (const m of msgs) {
      if (!validMessage(m)) continue;
      if (room.byId.has(m.id)) {
        setTime(room.byId.get(m.id), m.ts);  /* e.g. our own, first shown from its ack */
        continue;
      }
      const li = buildMessage(m, state.user !== null && m.from === state.user);
      li.dataset.id = m.id;
      room.byId.set(m.id, li);
      insertSorted(room, li, m.id);
      added += 1;
    }
    if (!added) return;
    renderRoomControls(room);
    if (!visible) return;
    if (where === 'top') {
      room.view.scrollTop = oldTop + (room.view.scrollHeight - oldHeight);
    } else if (atBottom) {
      scrollToBottom(room);
    } else {
      show(el.jumpLatest, true);
    }
  }

  function insertSorted(room, li, id) {
    placeSorted(room, li, id);
    regroup(li);
    if (li.nextElementSibling) regroup(li.nextElementSibling);
  }

  function placeSorted(room, li, id) {
    /* usually the newest (append) or older than everything (prepend): check those first */
    const last = room.list.lastElementChild;
    if (!last || last.dataset.id < id) {
      room.list.append(li);
      return;
    }
    const first = room.list.firstElementChild;
    if (first.dataset.id > id) {
      room.list.prepend(li);
      return;
    }
    for (let n = last; n; n = n.previousElementSibling) {
      if (n.dataset.id < id) {
        n.after(li);
        return;
      }
    }
    room.list.prepend(li);
  }

  /* A message right after one from the same sender (within GROUP_MS) drops its header. */
  function regroup(li) {
    const prev = li.previousElementSibling;
    const cont = !!prev && prev.dataset.from === li.dataset.from &&
      Math.abs(Number(li.dataset.ts) - Number(prev.dataset.ts)) < GROUP_MS;
    li.classList.toggle('cont', cont);
  }

  function updateComposer() {
    const text = el.input.value;
    const bytes = utf8Bytes(text);
    el.counter.textContent = `${bytes} / ${MAX_TEXT_BYTES} bytes`;
    const over = bytes > MAX_TEXT_BYTES;
    el.counter.classList.toggle('over', over);
    el.counter.classList.toggle('near', !over && bytes > MAX_TEXT_BYTES * 0.9);
    const room = state.current ? state.rooms.get(state.current) : null;
    const ready = state.conn === 'connected' && room && room.joined;
    el.send.disabled = !ready || over || text.trim() === '';
    el.input.disabled = !room;
    if (!room) el.input.placeholder = 'Join a room to write';
    else if (state.conn !== 'connected') el.input.placeholder = 'Offline: waiting for the connection';
    else el.input.placeholder = `Message # ${room.name}`;
  }

  function autoGrow() {
    el.input.rows = Math.min(8, Math.max(1, el.input.value.split('\n').length));
  }

  function sendMessage() {
    const room = state.current ? state.rooms.get(state.current) : null;
    let text = el.input.value.replace(/\u0000/g, '');
    if (typeof text.toWellFormed === 'function') text = text.toWellFormed();
    if (!room || !room.joined || state.conn !== 'connected') return;
    if (text.trim() === '' || utf8Bytes(text) > MAX_TEXT_BYTES) return;
    const cid = newCid('m');
    const li = buildMessage({ from: state.user, text, ts: Date.now() }, true);
    li.classList.add('pending');
    li.querySelector('.msg-state').textContent = 'sending\u2026';
    const p = { li, text, acked: false, id: null, failed: false };
    wirePendingActions(room, cid, p);
    room.pending.set(cid, p);
    room.pendingList.append(li);
    state.requests.set(cid, { kind: 'send', room: room.name });
    sendFrame({ type: 'send', room: room.name, text, cid });
    el.input.value = '';
    autoGrow();
    updateComposer();
    scrollToBottom(room);
  }

  function wirePendingActions(room, cid, p) {
    p.li.querySelector('.msg-retry').addEventListener('click', () => {
      if (state.conn !== 'connected' || !room.joined) {
        notice('Not connected: try again once the connection is back.', 'info');
        return;
      }
      p.failed = false;
      p.li.classList.remove('failed');
      p.li.querySelector('.msg-actions').hidden = true;
      p.li.querySelector('.msg-state').textContent = 'sending\u2026';
      state.requests.set(cid, { kind: 'send', room: room.name });
      sendFrame({ type: 'send', room: room.name, text: p.text, cid });
    });
    p.li.querySelector('.msg-discard').addEventListener('click', () => {
      room.pending.delete(cid);
      state.requests.delete(cid);
      p.li.remove();
    });
  }

  function markFailed(room, p, why) {
    p.failed = true;
    p.li.classList.add('failed');
    p.li.querySelector('.msg-state').textContent = `not sent (${why})`;
    p.li.querySelector('.msg-actions').hidden = false;
  }

  /* Our own message with this cid is confirmed: by an ack (msg null) or by the message itself. */
  function resolvePending(room, cid, msg) {
    const p = room.pending.get(cid);
    if (!p) return;
    const id = msg ? msg.id : p.id;
    room.pending.delete(cid);
    state.requests.delete(cid);
    const atBottom = room.name === state.current && isAtBottom(room);
    p.li.remove();
    if (id && !room.byId.has(id)) {
      const li = buildMessage({ from: state.user, text: p.text, ts: msg ? msg.ts : Date.now() },
        true);
      li.dataset.id = id;
      room.byId.set(id, li);
      insertSorted(room, li, id);
    } else if (msg && room.byId.has(id)) {
      setTime(room.byId.get(id), msg.ts);
    }
    renderRoomControls(room);
    if (atBottom) scrollToBottom(room);
  }

  /* After a reconnect, history may show that a message whose ack we never saw did arrive. */
  function resolveFromHistory(room, history) {
    if (!room.pending.size || !state.user) return;
    for (const m of history) {
      if (validMessage(m) && m.cid && m.from === state.user && room.pending.has(m.cid)) {
        resolvePending(room, m.cid, m);
      }
    }
  }

  function failUnacked(why) {
    for (const room of state.rooms.values()) {
      for (const [cid, p] of room.pending) {
        if (p.acked) {
          resolvePending(room, cid, null);
        } else if (!p.failed) {
          markFailed(room, p, why);
        }
      }
    }
  }

  /* ---- sidebar on narrow screens ---------------------------------------------------------- */

  function openSidebar() {
    el.sidebar.classList.add('open');
    el.roomsToggle.setAttribute('aria-expanded', 'true');
    show(el.backdrop, true);
    el.joinInput.focus();
  }

  function closeSidebar() {
    if (!el.sidebar.classList.contains('open')) return;
    el.sidebar.classList.remove('open');
    el.roomsToggle.setAttribute('aria-expanded', 'false');
    show(el.backdrop, false);
  }

  /* ---- wiring ----------------------------------------------------------------------------- */

  el.nameForm.addEventListener('submit', onNameSubmit);
  el.tokenForm.addEventListener('submit', onTokenSubmit);
  el.tokenBack.addEventListener('click', () => {
    show(el.tokenForm, false);
    show(el.nameForm, true);
    el.nameInput.focus();
  });
  el.signout.addEventListener('click', () => signOut(''));
  el.reconnectNow.addEventListener('click', () => { state.attempt = 0; connect(); });
  el.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    joinByName(el.joinInput.value);
  });
  el.joinInput.addEventListener('input', () => {
    if (el.joinInput.getAttribute('aria-invalid')) {
      const v = el.joinInput.value.trim();
      if (v === '' || ROOM_RE.test(v)) {
        el.joinInput.removeAttribute('aria-invalid');
        setFieldError(el.joinError, '');
      }
    }
  });
  el.leaveCurrent.addEventListener('click', () => { if (state.current) leaveRoom(state.current); });
  el.jumpLatest.addEventListener('click', () => {
    const room = state.current && state.rooms.get(state.current);
    if (room) scrollToBottom(room);
    show(el.jumpLatest, false);
  });
  el.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendMessage();
  });
  el.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey &&
        !ev.metaKey) {
      ev.preventDefault();
      sendMessage();
    }
  });
  el.input.addEventListener('input', () => { autoGrow(); updateComposer(); });
  el.roomsToggle.addEventListener('click', () => {
    if (el.sidebar.classList.contains('open')) closeSidebar();
    else openSidebar();
  });
  el.backdrop.addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') closeSidebar(); });
  narrow.addEventListener('change', () => { if (!narrow.matches) closeSidebar(); });
  /* a tab coming back after sleep: do not sit out the rest of a long backoff */
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      state.hiddenUnread = 0;
      document.title = baseTitle;
    }
    if (!document.hidden && state.conn === 'disconnected') {
      state.attempt = 0;
      connect();
    }
  });
  window.addEventListener('online', () => {
    if (state.conn === 'disconnected') {
      state.attempt = 0;
      connect();
    }
  });

  const saved = loadSession();
  if (saved && !tokenExpired(saved.token)) {
    startSession(saved.token, saved.rooms.length ? saved.rooms : [], saved.current);
  } else {
    sessionStorage.removeItem(STORE_KEY);
    showSignin(saved ? 'Your session expired: sign in again.' : '');
  }
})();
