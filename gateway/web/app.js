/* app.js: the chat web client. Signs in (development token from /dev/token, or a pasted JWT)
 * and renders rooms and messages; the protocol itself (docs/protocol.md: one WebSocket to /ws,
 * reconnect, resume, de-duplication, sends retried until acked) is chat-client.js's. User-supplied
 * text only ever reaches the page through textContent; the page runs under a CSP without
 * 'unsafe-inline', so everything is wired here with addEventListener. Plain modern JavaScript
 * (ES modules), no framework and no build step. */
import { ChatClient } from './chat-client.js';

(() => {
  const ROOM_RE = /^[A-Za-z0-9._:-]{1,64}$/;
  const NAME_RE = /^[A-Za-z0-9._-]{1,32}$/;
  const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
  const MAX_TEXT_BYTES = 4096;  /* the gateway's default CHAT_MAX_TEXT */
  const HISTORY_PAGE = 50;      /* messages per "load older" request (server allows 1..100) */
  const GAP_PAGE = 100;         /* messages per request when loading a gap */
  const GAP_MAX = 500;          /* messages loaded per click on "Load missing messages" */
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
    devName: null,        /* the name a development token was fetched for: fetch another */
    user: null,           /* welcome.user: our sub */
    client: null,         /* the ChatClient of this session */
    conn: 'signed-out',   /* signed-out | connecting | connected | disconnected */
    countdownTimer: 0,
    rooms: new Map(),     /* name -> room (see ensureRoom) */
    order: [],            /* room names in the order they were joined */
    current: null,        /* name of the room on screen */
    devTokens: null,      /* false once /dev/token answered 404: go straight to the JWT form */
    selfName: null,       /* our display name: the token's name claim, else its sub */
    hiddenUnread: 0,      /* messages that arrived while the tab was in the background */
  };
  const baseTitle = document.title;

  /* ---- persistence (this tab only) -------------------------------------------------------- */

  function saveSession() {
    if (!state.token) {
      sessionStorage.removeItem(STORE_KEY);
      return;
    }
    sessionStorage.setItem(STORE_KEY, JSON.stringify({
      token: state.token, rooms: state.order, current: state.current, name: state.devName,
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
    relabelPending();
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
      startSession(body.token, [DEFAULT_ROOM], DEFAULT_ROOM, name);
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

  function startSession(token, rooms, current, devName) {
    stopClient();
    state.token = token;
    state.devName = devName || null;
    state.user = null;
    const claims = jwtClaims(token) || {};
    state.selfName = typeof claims.name === 'string' && claims.name ? claims.name
      : (typeof claims.sub === 'string' ? claims.sub : null);
    for (const name of [...state.order]) dropRoom(name);
    state.client = newClient(token);
    const wanted = rooms.filter((r) => typeof r === 'string' && ROOM_RE.test(r));
    for (const name of wanted) ensureRoom(name);
    state.current = null;
    selectRoom(wanted.includes(current) ? current : (wanted[0] || null));
    saveSession();
    show(el.signin, false);
    show(el.chat, true);
    show(el.roomsToggle, true);
    setFieldError(el.signinReason, '');
    state.client.connect();
  }

  function signOut(reason) {
    stopClient();
    state.token = null;
    state.devName = null;
    state.user = null;
    for (const name of [...state.order]) dropRoom(name);
    saveSession();
    setConn('signed-out', 'Not signed in');
    showSignin(reason);
  }

  /* ---- the connection (chat-client.js) ---------------------------------------------------- */

  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  function newClient(token) {
    const client = new ChatClient({ url: wsUrl(), token, getToken: renewToken });
    /* events of a client this page has let go of (signed out, signed in again) are stale */
    const on = (type, fn) => client.on(type, (ev) => { if (state.client === client) fn(ev); });
    on('state', onState);
    on('welcome', onWelcome);
    on('joined', onJoined);
    on('message', onMessage);
    on('ack', onAck);
    on('gap', onGap);
    on('reset', onReset);
    on('left', onLeft);
    on('error', onError);
    return client;
  }

  function stopClient() {
    const client = state.client;
    state.client = null;
    clearInterval(state.countdownTimer);
    state.countdownTimer = 0;
    if (client) client.close();
  }

  /* The server refused or expired the token (4001, 4003): a development sign-in fetches a new
   * one for the same name; a pasted JWT cannot be renewed here (null: the client stops). */
  async function renewToken() {
    if (!state.devName) return null;
    try {
      const res = await fetch(`/dev/token?user=${encodeURIComponent(state.devName)}`,
        { headers: { Accept: 'application/json' }, cache: 'no-store' });
      const body = res.ok ? await res.json() : null;
      if (!body || typeof body.token !== 'string') return null;
      state.token = body.token;
      saveSession();
      return body.token;
    } catch (e) {
      return null;
    }
  }

  function onState(ev) {
    clearInterval(state.countdownTimer);
    state.countdownTimer = 0;
    if (ev.state !== 'open') {
      for (const room of state.rooms.values()) {
        room.joined = false;
        room.loadingOlder = false;
        renderRoomControls(room);
      }
      renderRoomList();
    }
    switch (ev.state) {
      case 'connecting':
        setConn('connecting', ev.attempt ? 'Reconnecting\u2026' : 'Connecting\u2026');
        break;
      case 'open':
        setConn('connected', `Connected to ${ev.gateway || '?'}`);
        break;
      case 'auth':
        setConn('connecting', 'Signing in again\u2026');
        break;
      case 'waiting':
        onWaiting(ev);
        break;
      case 'stopped':
        if (ev.code === 4004) {
          signOut('The server disconnected this session (kicked). Sign in again to return.');
        } else if (ev.code === 4001 || ev.code === 4003) {
          signOut(`You were signed out: ${ev.reason || 'the server refused the token'}.`);
        }
        break;
      default:
        break;
    }
  }

  function onWaiting(ev) {
    if (ev.code === 4008 || ev.code === 1008) {
      notice('The server dropped this connection because it could not keep up ' +
             `(${ev.reason || 'slow consumer'}). Reconnecting.`, 'info');
    } else if (ev.code === 1009) {
      notice(`The server closed the connection: a frame was too big (${ev.reason || '1009'}).`);
    } else if (ev.code === 4029) {
      notice('Too many connections for this user: close other chat tabs or devices.');
    }
    /* 1001 (gateway going away) is routine: HAProxy picks another gateway */
    if (ev.code === 1001 && ev.delay < 2000) {
      setConn('connecting', 'Gateway restarting, reconnecting\u2026');
      return;
    }
    const due = Date.now() + ev.delay;
    const tick = () => {
      const s = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      el.connText.textContent = `Disconnected \u2014 retrying in ${s} s`;
    };
    setConn('disconnected', '');
    tick();
    state.countdownTimer = setInterval(tick, 1000);
  }

  function onWelcome(f) {
    state.user = typeof f.user === 'string' ? f.user : null;
    el.whoamiUser.textContent = state.selfName || state.user || '';
    el.whoamiUser.title = state.user ? `user id: ${state.user}` : '';
    show(el.whoami, true);
    updateComposer();
  }

  function onJoined(ev) {
    const room = state.rooms.get(ev.room);
    if (!room) return;
    room.joined = true;
    if (!room.loadedOnce) {
      room.loadedOnce = true;
      room.exhausted = ev.history.length === 0;
    }
    addMessages(room, ev.history, 'bottom');
    renderRoomControls(room);
    renderRoomList();
    updateComposer();
  }

  function onLeft(ev) {
    if (ev.error) notice(`Could not join ${ev.room} \u2014 ${errorText(ev.error)}`);
    dropRoom(ev.room);
  }

  function onMessage(f) {
    const room = state.rooms.get(f.room);
    if (!room) return;
    const fresh = !room.byId.has(f.id);  /* not already loaded by a history read */
    addMessages(room, [f], 'bottom');
    if (f.cid && f.from === state.user) resolvePending(room, f.cid, f, f.id);
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

  function onAck(ev) {
    const room = state.rooms.get(ev.room);
    /* the broadcast copy may already be here; if not, show the message as confirmed now */
    if (room) resolvePending(room, ev.cid, null, ev.id);
  }

  function onError(ev) {
    const text = errorText(ev);
    if (ev.request === 'send') {
      const room = state.rooms.get(ev.room);
      const p = room && room.pending.get(ev.cid);
      if (p) markFailed(room, p, text);
      notice(`Message not sent \u2014 ${text}`);
      return;
    }
    if (ev.request === 'join') {
      /* a refused join also closes the room ('left', with the reason) */
      if (ev.code === 'unavailable') notice(`Cannot join ${ev.room} yet \u2014 ${text}`, 'info');
      return;
    }
    notice(text);
  }

  /* ---- gaps and resets -------------------------------------------------------------------- */

  /* A marker in the room's list, sorted with the messages: right after `after` ('' = top). */
  function marker(room, key, text) {
    const li = document.createElement('li');
    li.className = 'gap';
    li.setAttribute('role', 'note');
    const p = document.createElement('p');
    p.className = 'gap-text';
    p.textContent = text;
    li.append(p);
    placeMarker(room, li, key);
    return li;
  }

  function placeMarker(room, li, key) {
    li.remove();  /* (when it moves) */
    li.dataset.id = key;
    placeSorted(room, li, key);
    if (li.nextElementSibling) regroup(li.nextElementSibling);
  }

  function timeOf(room, id) {
    const li = id && room.byId.get(id);
    return li && li.dataset.ts ? formatTime(Number(li.dataset.ts)) : null;
  }

  function gapText(room, gap) {
    const from = timeOf(room, gap.after);
    const to = timeOf(room, gap.before);
    let span = '';
    if (from && to) span = from === to ? ` around ${from}` : ` between ${from} and ${to}`;
    return gap.certain
      ? `Some messages${span} could not be recovered after the connection was lost.`
      : `Some messages${span} may be missing after the connection was lost.`;
  }

  function onGap(gap) {
    const room = state.rooms.get(gap.room);
    if (!room) return;
    const li = marker(room, gap.after ? `${gap.after}~` : '', gapText(room, gap));
    li.dataset.after = gap.after || '';
    li.dataset.before = gap.before || '';
    li.title = `after ${gap.after || '?'}, before ${gap.before || '?'}`;
    const load = document.createElement('button');
    load.type = 'button';
    load.className = 'link-button gap-load';
    load.textContent = 'Load missing messages';
    li.append(load);
    let current = gap;
    let loaded = 0;
    load.addEventListener('click', () => {
      if (!state.client || state.conn !== 'connected') {
        notice('Not connected: try again once the connection is back.', 'info');
        return;
      }
      load.disabled = true;
      load.textContent = 'Loading\u2026';
      state.client.fillGap(room.name, current, { limit: GAP_PAGE, max: GAP_MAX }).then((r) => {
        addMessages(room, r.messages, 'top');
        loaded += r.messages.length;
        if (r.gap) {
          current = r.gap;
          placeMarker(room, li, current.after ? `${current.after}~` : '');
          load.disabled = false;
          load.textContent = 'Load more missing messages';
          return;
        }
        li.classList.add('gap-done');
        const n = loaded;
        let done = 'The missing messages are no longer on the server.';
        if (n) done = `${n} missing message${n === 1 ? '' : 's'} loaded.`;
        else if (!gap.certain) done = 'No messages were missing.';
        li.firstElementChild.textContent = done;
        load.remove();
      }, (e) => {
        load.disabled = false;
        load.textContent = 'Load missing messages';
        notice(`Could not load the missing messages \u2014 ${e.code ? errorText(e) : e.message}`);
      });
    });
  }

  /* The server's stream was recreated (another epoch): what we show has no place in it. */
  function onReset(ev) {
    const room = state.rooms.get(ev.room);
    if (!room) return;
    room.list.replaceChildren();
    room.byId.clear();
    room.loadedOnce = false;
    room.exhausted = false;
    marker(room, '', 'The server\u2019s message history was reset: earlier messages are no ' +
      'longer shown, these are its latest.');
    renderRoomControls(room);
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
      pending: new Map(),    /* cid -> {li, text, failed}: sent, not confirmed yet */
      joined: false, loadedOnce: false, exhausted: false,
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
    if (state.client) state.client.join(name);
    return room;
  }

  function dropRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
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
    if (!known) ensureRoom(name);
    selectRoom(name);
    saveSession();
    closeSidebar();
    el.input.focus();
  }

  function leaveRoom(name) {
    if (state.client) state.client.leave(name);  /* answers 'left', which drops the room */
    dropRoom(name);
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
      if (!room.joined && state.conn === 'connected') status = 'joining\u2026';
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
    if (room.loadingOlder || room.exhausted || !state.client || state.conn !== 'connected') return;
    room.loadingOlder = true;
    renderRoomControls(room);
    state.client.older(room.name, { limit: HISTORY_PAGE }).then(({ messages, done }) => {
      room.loadingOlder = false;
      if (done) room.exhausted = true;
      addMessages(room, messages, 'top');
      renderRoomControls(room);
    }, (e) => {
      room.loadingOlder = false;
      renderRoomControls(room);
      /* a read cut short by a lost connection is not news: the button is back after it */
      if (e.code) notice(`Could not load older messages of ${room.name} \u2014 ${errorText(e)}`);
    });
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
    /* once a room is joined, messages written while offline wait in chat-client's outbox */
    const ready = room && room.loadedOnce && state.client;
    el.send.disabled = !ready || over || text.trim() === '';
    el.input.disabled = !room;
    if (!room) el.input.placeholder = 'Join a room to write';
    else if (state.conn !== 'connected') el.input.placeholder = 'Offline: sent once reconnected';
    else el.input.placeholder = `Message # ${room.name}`;
  }

  function autoGrow() {
    el.input.rows = Math.min(8, Math.max(1, el.input.value.split('\n').length));
  }

  function pendingLabel() {
    return state.conn === 'connected' ? 'sending\u2026' : 'waiting for the connection\u2026';
  }

  function relabelPending() {
    for (const room of state.rooms.values()) {
      for (const p of room.pending.values()) {
        if (!p.failed) p.li.querySelector('.msg-state').textContent = pendingLabel();
      }
    }
  }

  function sendMessage() {
    const room = state.current ? state.rooms.get(state.current) : null;
    let text = el.input.value.replace(/\u0000/g, '');
    if (typeof text.toWellFormed === 'function') text = text.toWellFormed();
    if (!room || !room.loadedOnce || !state.client) return;
    if (text.trim() === '' || utf8Bytes(text) > MAX_TEXT_BYTES) return;
    const cid = state.client.send(room.name, text);
    const li = buildMessage({ from: state.user, text, ts: Date.now() }, true);
    li.classList.add('pending');
    li.querySelector('.msg-state').textContent = pendingLabel();
    const p = { li, text, failed: false };
    wirePendingActions(room, cid, p);
    room.pending.set(cid, p);
    room.pendingList.append(li);
    el.input.value = '';
    autoGrow();
    updateComposer();
    scrollToBottom(room);
  }

  function wirePendingActions(room, cid, p) {
    p.li.querySelector('.msg-retry').addEventListener('click', () => {
      if (!state.client || state.rooms.get(room.name) !== room) return;
      p.failed = false;
      p.li.classList.remove('failed');
      p.li.querySelector('.msg-actions').hidden = true;
      p.li.querySelector('.msg-state').textContent = pendingLabel();
      /* the same cid: should the first attempt have landed after all, it is not sent twice */
      state.client.send(room.name, p.text, { cid });
    });
    p.li.querySelector('.msg-discard').addEventListener('click', () => {
      room.pending.delete(cid);
      p.li.remove();
    });
  }

  function markFailed(room, p, why) {
    p.failed = true;
    p.li.classList.add('failed');
    p.li.querySelector('.msg-state').textContent = `not sent (${why})`;
    p.li.querySelector('.msg-actions').hidden = false;
  }

  /* Our own message with this cid is confirmed, as `id`: by its ack (msg null) or by the
   * message itself. */
  function resolvePending(room, cid, msg, id) {
    const p = room.pending.get(cid);
    if (!p) return;
    room.pending.delete(cid);
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
  el.reconnectNow.addEventListener('click', () => { if (state.client) state.client.connect(); });
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
      if (state.client) state.client.connect();
    }
  });
  window.addEventListener('online', () => {
    if (state.conn === 'disconnected') {
      if (state.client) state.client.connect();
    }
  });

  const saved = loadSession();
  if (saved && !tokenExpired(saved.token)) {
    startSession(saved.token, saved.rooms.length ? saved.rooms : [], saved.current, saved.name);
  } else {
    sessionStorage.removeItem(STORE_KEY);
    showSignin(saved ? 'Your session expired: sign in again.' : '');
  }
})();
