/* app.js: the chat web client. Signs in (development token from /dev/token, or a pasted JWT)
 * and renders rooms, direct conversations, messages, member lists, the typing line, unread
 * badges and the read marker, and shows browser notifications once the person turns them on;
 * the protocol and its state (docs/protocol.md: one WebSocket to /ws, reconnect, resume,
 * de-duplication, sends retried until acked, members, typing, read state) are chat-client.js's
 * and chat-state.js's. User-supplied text only ever reaches the page through textContent; the
 * page runs under a CSP without 'unsafe-inline', so everything is wired here with
 * addEventListener. Plain modern JavaScript (ES modules), no framework and no build step. */
import { ChatClient } from './chat-client.js';
import { dmPeer, isDmRoom, mentions, typingText } from './chat-state.js';

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
  const NOTIFY_KEY = 'chat.notify';   /* '1': the person turned notifications on */
  const LEFT_KEY = 'chat.left.';      /* + user id: rooms left in this browser (not restored) */
  const MAX_LEFT = 200;
  const MAX_RESTORE_JOIN = 20;        /* rooms from the server's list joined at once; the rest
                                         are listed and joined when opened */
  const NOTIFY_TEXT = 200;            /* characters of a message shown in a notification */

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
    dmList: $('dm-list'), dmsEmpty: $('dms-empty'), toggleBadge: $('toggle-badge'),
    notifyToggle: $('notify-toggle'), notifyHelp: $('notify-help'), announcer: $('announcer'),
    roomTitle: $('room-title'), leaveCurrent: $('leave-current'),
    membersToggle: $('members-toggle'), membersPanel: $('members-panel'),
    membersClose: $('members-close'), membersTitle: $('members-title'),
    membersNote: $('members-note'), memberList: $('member-list'),
    membersBackdrop: $('members-backdrop'), typingLine: $('typing-line'),
    roomViews: $('room-views'), noRoom: $('no-room'), jumpLatest: $('jump-latest'),
    composer: $('composer'), input: $('message-input'), send: $('send-button'),
    counter: $('byte-counter'),
    template: $('message-template'),
  };
  const encoder = new TextEncoder();
  const narrow = window.matchMedia('(max-width: 720px)');
  const wide = window.matchMedia('(min-width: 1000px)');  /* room for the member list beside */

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
    restored: false,      /* the server's list of rooms was asked for (once per session) */
    membersOpen: null,    /* the member list is open (null: as the screen width suggests) */
  };
  const baseTitle = document.title;

  /* ---- persistence (this tab only) -------------------------------------------------------- */

  function saveSession() {
    if (!state.token) {
      sessionStorage.removeItem(STORE_KEY);
      return;
    }
    const open = state.order.filter((n) => state.rooms.get(n).open);
    const listed = state.order.filter((n) => !state.rooms.get(n).open);
    sessionStorage.setItem(STORE_KEY, JSON.stringify({
      token: state.token, rooms: open, listed, current: state.current, name: state.devName,
    }));
  }

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
      if (s && typeof s.token === 'string' && Array.isArray(s.rooms)) return s;
    } catch (e) { /* ignore a damaged entry */ }
    return null;
  }

  /* Rooms the person left in this browser: a list restored from the server skips them. */
  function leftKey() {
    const user = state.user || state.sub;
    return user ? LEFT_KEY + user : null;
  }

  function leftRooms() {
    try {
      const v = JSON.parse(localStorage.getItem(leftKey()) || '[]');
      return new Set(Array.isArray(v) ? v : []);
    } catch (e) {
      return new Set();
    }
  }

  function markLeft(name, left) {
    const key = leftKey();
    if (!key) return;
    const set = leftRooms();
    if (left === set.has(name)) return;
    if (left) set.add(name);
    else set.delete(name);
    localStorage.setItem(key, JSON.stringify([...set].slice(-MAX_LEFT)));
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

  function validRoom(name) {
    return typeof name === 'string' &&
      ((ROOM_RE.test(name) && !name.startsWith('dm:')) || isDmRoom(name));
  }

  function startSession(token, rooms, current, devName, listed = []) {
    stopClient();
    state.token = token;
    state.devName = devName || null;
    state.user = null;
    const claims = jwtClaims(token) || {};
    state.sub = typeof claims.sub === 'string' ? claims.sub : null;
    state.selfName = typeof claims.name === 'string' && claims.name ? claims.name : state.sub;
    for (const name of [...state.order]) dropRoom(name);
    state.client = newClient(token);
    state.restored = false;
    const wanted = rooms.filter(validRoom);
    for (const name of wanted) ensureRoom(name, { open: true });
    for (const name of listed.filter(validRoom)) ensureRoom(name, { open: false });
    state.current = null;
    selectRoom(state.rooms.has(current) ? current : (wanted[0] || null));
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
    on('members', onMembers);
    on('typing', onTyping);
    on('read', onRead);
    on('receipt', onReceipt);
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
    renderRoomList();
    renderTitle();
    el.whoamiUser.title = state.user ? `user id: ${state.user}` : '';
    show(el.whoami, true);
    updateComposer();
    if (!state.restored && state.client) {
      state.restored = true;
      const client = state.client;
      client.requestRooms().then((list) => {
        if (state.client === client) restoreRooms(list);
      }, () => { state.restored = false; });  /* the next welcome asks again */
    }
  }

  /* A new device (or a new tab): the server's list of the user's rooms and direct rooms fills
   * the sidebar. Rooms left in this browser stay out. */
  function restoreRooms(list) {
    const left = leftRooms();
    let joins = 0;
    for (const r of list) {
      const name = r.room;
      if (state.rooms.has(name) || !validRoom(name)) continue;
      const dm = isDmRoom(name);
      if (dm && dmPeer(name, state.user) === null) continue;
      if (left.has(name) && !(dm && r.unread > 0)) continue;
      /* direct messages reach this connection unjoined: join those when opened */
      const open = !dm && joins < MAX_RESTORE_JOIN;
      if (open) joins += 1;
      ensureRoom(name, { open });
    }
    if (!state.current && state.order.length) selectRoom(state.order[0]);
    renderRoomList();
    saveSession();
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
    renderMarker(room);
    renderRoomList();
    updateComposer();
    if (room.name === state.current) {
      renderMembers();
      maybeMarkRead();
    }
  }

  function onLeft(ev) {
    if (ev.error) notice(`Could not join ${ev.room} \u2014 ${errorText(ev.error)}`);
    dropRoom(ev.room);
  }

  function onMessage(f) {
    let room = state.rooms.get(f.room);
    const peer = state.user ? dmPeer(f.room, state.user) : null;
    if (!room && peer !== null) {
      /* a direct message of a conversation this page does not show yet (the server delivers
       * them to every connection of both users): list it; it is joined when opened */
      markLeft(f.room, false);
      room = ensureRoom(f.room, { open: false });
      saveSession();
    }
    if (!room) return;
    const fresh = !room.byId.has(f.id);  /* not already loaded by a history read */
    addMessages(room, [f], 'bottom');
    if (f.cid && f.from === state.user) resolvePending(room, f.cid, f, f.id);
    if (!fresh || f.from === state.user) return;
    const away = document.hidden || room.name !== state.current;
    if (peer !== null && away) announce(`New direct message from ${displayName(f.from)}`);
    notify(f);
  }

  /* ---- members, typing, read state ------------------------------------------------------- */

  function displayName(user) {
    if (user === state.user) return state.selfName || user;
    return state.client ? state.client.nameOf(user) : user;
  }

  /* Our user id: welcome's, or the token's sub before the first welcome. */
  function me() {
    return state.user || state.sub;
  }

  function roomLabel(name) {
    const peer = me() ? dmPeer(name, me()) : null;
    return peer !== null ? displayName(peer) : name;
  }

  function renderTitle() {
    const room = state.current ? state.rooms.get(state.current) : null;
    if (!room) el.roomTitle.textContent = '\u00a0';
    else el.roomTitle.textContent = room.dm ? `@ ${roomLabel(room.name)}` : `# ${room.name}`;
  }

  function announce(text) {
    el.announcer.textContent = '';
    /* a new node, so that the same words twice are announced twice */
    const span = document.createElement('span');
    span.textContent = text;
    el.announcer.append(span);
  }

  function onMembers(ev) {
    if (ev.room === state.current) renderMembers();
    /* names learnt here label direct conversations */
    if (state.order.some((n) => isDmRoom(n))) {
      renderRoomList();
      renderTitle();
    }
  }

  function onTyping(ev) {
    if (ev.room === state.current) renderTyping();
  }

  function onRead(ev) {
    const room = state.rooms.get(ev.room);
    if (room) renderMarker(room);
    if (ev.room === state.current) maybeMarkRead();
    renderRoomList();
    updateTitle();
  }

  /* The other person of a direct room read it up to `upto`: "Seen" under our last message
   * up to there. */
  function onReceipt(ev) {
    const room = state.rooms.get(ev.room);
    if (!room || (room.seenUpto && ev.upto <= room.seenUpto)) return;
    room.seenUpto = ev.upto;
    renderSeen(room);
  }

  function renderSeen(room) {
    if (room.seenLi) {
      room.seenLi.querySelector('.msg-state').textContent = '';
      room.seenLi.classList.remove('seen');
      room.seenLi = null;
    }
    if (!room.seenUpto) return;
    const own = [...room.list.querySelectorAll(':scope > li.msg.own')]
      .filter((li) => li.dataset.id && li.dataset.id <= room.seenUpto);
    const li = own[own.length - 1];
    if (!li) return;
    li.classList.add('seen');
    li.querySelector('.msg-state').textContent = 'Seen';
    room.seenLi = li;
  }

  function unreadOf(name) {
    const r = state.client ? state.client.readState(name) : null;
    return r ? r.unread : 0;
  }

  function updateTitle() {
    let total = 0;
    for (const name of state.order) total += unreadOf(name);
    document.title = total > 0 ? `(${total > 999 ? '999+' : total}) ${baseTitle}` : baseTitle;
    el.toggleBadge.textContent = total > 99 ? '99+' : String(total);
    el.toggleBadge.hidden = total === 0;
    el.roomsToggle.setAttribute('aria-label', total ? `Rooms, ${total} unread` : 'Rooms');
  }

  /* The person has seen the newest message of the room on screen: the tab is visible, the
   * room joined and scrolled to the bottom. */
  function maybeMarkRead() {
    const room = state.current ? state.rooms.get(state.current) : null;
    if (!room || !room.joined || !state.client || document.hidden || !isAtBottom(room)) return;
    const r = state.client.readState(room.name);
    if (r && r.last && (!r.readUpto || r.last > r.readUpto || r.unread > 0)) {
      state.client.markRead(room.name);
    }
  }

  /* The "new messages" line: above the first unread message (chat-state.js keeps where). */
  function renderMarker(room) {
    const r = state.client ? state.client.readState(room.name) : null;
    const at = r ? r.marker : null;
    const after = at ? [...room.byId.keys()].some((id) => id > at) : false;
    if (!at || !after) {
      if (room.markerLi) {
        const next = room.markerLi.nextElementSibling;
        room.markerLi.remove();
        room.markerLi = null;
        if (next) regroup(next);
      }
      return;
    }
    if (!room.markerLi) {
      const li = document.createElement('li');
      li.className = 'unread-marker';
      li.setAttribute('role', 'separator');
      const span = document.createElement('span');
      span.textContent = 'New';
      li.append(span);
      li.setAttribute('aria-label', 'New messages below');
      room.markerLi = li;
    }
    if (room.markerLi.dataset.id !== `${at}~` || !room.markerLi.isConnected) {
      placeMarker(room, room.markerLi, `${at}~`);
    }
  }

  function renderTyping() {
    const names = state.current && state.client
      ? state.client.typingUsers(state.current).map(displayName) : [];
    el.typingLine.textContent = typingText(names);
  }

  function membersShown() {
    return state.membersOpen === null ? wide.matches : state.membersOpen;
  }

  function renderMembers() {
    const room = state.current ? state.rooms.get(state.current) : null;
    const m = room && state.client ? state.client.members(room.name) : null;
    show(el.membersToggle, !!room);
    const open = !!room && membersShown();
    show(el.membersPanel, open);
    show(el.membersBackdrop, open && !wide.matches);
    el.membersToggle.setAttribute('aria-expanded', String(open));
    el.membersToggle.textContent = m ? `Members (${m.count})` : 'Members';
    el.membersTitle.textContent = m ? `Members (${m.count})` : 'Members';
    if (!open) return;
    const frag = document.createDocumentFragment();
    if (!m) {
      el.membersNote.textContent = room.joined ? 'No member list from this server.'
        : 'Shown once the room is joined.';
      show(el.membersNote, true);
      el.memberList.replaceChildren();
      return;
    }
    const notListed = m.count - m.users.length;
    el.membersNote.textContent = m.truncated && notListed > 0
      ? `Showing ${m.users.length} of ${m.count}: ${notListed} more not listed.` : '';
    show(el.membersNote, m.truncated && notListed > 0);
    for (const u of m.users) {
      const li = document.createElement('li');
      li.className = 'member';
      li.dataset.user = u.user;
      const dm = u.user !== state.user && state.client.directRoom(u.user);
      if (dm && dm !== room.name) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'member-open';
        b.textContent = u.name;
        b.title = `user id: ${u.user}`;
        b.setAttribute('aria-label', `Message ${u.name} directly`);
        b.addEventListener('click', () => openDirect(u.user));
        li.append(b);
      } else {
        const span = document.createElement('span');
        span.className = 'member-name';
        span.textContent = u.user === state.user ? `${u.name} (you)` : u.name;
        span.title = `user id: ${u.user}`;
        li.append(span);
      }
      frag.append(li);
    }
    el.memberList.replaceChildren(frag);
  }

  function setMembersOpen(open) {
    state.membersOpen = open;
    renderMembers();
    if (open && !wide.matches) {
      const first = el.memberList.querySelector('button') || el.membersClose;
      first.focus();
    }
  }

  /* Opens the direct conversation with `user` (started from the member list). */
  function openDirect(user) {
    const name = state.client ? state.client.directRoom(user) : null;
    if (!name) {
      notice(`${user} cannot have direct messages (user ids of letters, digits and . _ @ - ` +
             'only).');
      return;
    }
    markLeft(name, false);
    ensureRoom(name, { open: true });
    if (!wide.matches) state.membersOpen = false;
    selectRoom(name);
    saveSession();
    el.input.focus();
  }

  /* ---- notifications --------------------------------------------------------------------- */

  function notifySupported() {
    return typeof window.Notification === 'function';
  }

  function notifyOn() {
    return notifySupported() && Notification.permission === 'granted' &&
      localStorage.getItem(NOTIFY_KEY) === '1';
  }

  function renderNotify() {
    show(el.notifyToggle, notifySupported());
    if (!notifySupported()) return;
    const perm = Notification.permission;
    let help = '';
    if (perm === 'denied') {
      el.notifyToggle.textContent = 'Notifications blocked';
      el.notifyToggle.disabled = true;
      help = 'The browser blocks notifications for this site: allow them in its settings.';
    } else {
      el.notifyToggle.disabled = false;
      el.notifyToggle.textContent = notifyOn() ? 'Turn off notifications'
        : 'Turn on notifications';
      el.notifyToggle.setAttribute('aria-pressed', String(notifyOn()));
      help = notifyOn() ? 'You are notified of direct messages and @mentions while this tab ' +
        'is in the background.' : '';
    }
    el.notifyHelp.textContent = help;
    show(el.notifyHelp, !!help);
  }

  /* The browser is asked for permission only here, when the person clicks the button. */
  function toggleNotify() {
    if (!notifySupported()) return;
    if (notifyOn()) {
      localStorage.removeItem(NOTIFY_KEY);
      renderNotify();
      return;
    }
    const done = (perm) => {
      if (perm === 'granted') localStorage.setItem(NOTIFY_KEY, '1');
      renderNotify();
    };
    if (Notification.permission === 'granted') {
      done('granted');
      return;
    }
    const asked = Notification.requestPermission(done);
    if (asked && typeof asked.then === 'function') asked.then(done, () => renderNotify());
  }

  function notify(f) {
    if (!notifyOn() || !document.hidden || f.from === state.user) return;
    const direct = state.user !== null && dmPeer(f.room, state.user) !== null;
    const names = [state.user, state.selfName].filter(Boolean);
    if (!direct && !mentions(f.text, names)) return;
    const from = displayName(f.from);
    const text = f.text.length > NOTIFY_TEXT ? `${f.text.slice(0, NOTIFY_TEXT)}…` : f.text;
    try {
      const n = new Notification(direct ? from : `${from} in # ${f.room}`,
        { body: text, tag: f.room });
      n.addEventListener('click', () => {
        window.focus();
        if (state.rooms.has(f.room)) selectRoom(f.room);
        n.close();
      });
    } catch (e) { /* a browser that allows notifications only from a service worker */ }
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
    /* a server without some v2 frame (typing, read, members): the feature is just absent */
    if (ev.code === 'unknown_type') return;
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

  /* The page's entry for a room or direct conversation. open: joined through the client now
   * (else only listed, with the unread count the server gave, until openRoom). */
  function ensureRoom(name, { open = true } = {}) {
    let room = state.rooms.get(name);
    if (room) {
      if (open) openRoom(room);
      return room;
    }
    const peer = me() ? dmPeer(name, me()) : null;
    const view = document.createElement('section');
    view.className = 'room-view';
    view.hidden = true;
    view.dataset.room = name;
    view.setAttribute('aria-label', isDmRoom(name) ? `Messages with ${peer || name}`
      : `Messages in ${name}`);
    view.tabIndex = 0;
    const older = document.createElement('button');
    older.type = 'button';
    older.className = 'secondary load-older';
    older.textContent = 'Load older messages';
    const start = document.createElement('p');
    start.className = 'muted room-start';
    start.textContent = isDmRoom(name)
      ? `This is the beginning of your conversation with ${peer || name}.`
      : `This is the beginning of ${name}.`;
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
      name, view, older, start, list, pendingList, dm: isDmRoom(name),
      byId: new Map(),       /* id -> li */
      pending: new Map(),    /* cid -> {li, text, failed}: sent, not confirmed yet */
      open: false, joined: false, loadedOnce: false, exhausted: false,
      loadingOlder: false, scrollTop: null, draft: '',
      markerLi: null,        /* the "new messages" line */
      seenUpto: null, seenLi: null,  /* the other person's receipt (direct rooms) */
    };
    older.addEventListener('click', () => loadOlder(room));
    view.addEventListener('scroll', () => {
      if (room.name === state.current && isAtBottom(room)) {
        show(el.jumpLatest, false);
        maybeMarkRead();
      }
    }, { passive: true });
    state.rooms.set(name, room);
    state.order.push(name);
    renderRoomControls(room);
    if (open) openRoom(room);
    renderRoomList();
    updateTitle();
    return room;
  }

  function openRoom(room) {
    if (room.open) return;
    room.open = true;
    if (state.client) state.client.join(room.name, { presence: true });
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
    updateTitle();
    saveSession();
  }

  function joinByName(raw) {
    const name = raw.trim();
    if (!validRoom(name) || (isDmRoom(name) && dmPeer(name, me()) === null)) {
      setFieldError(el.joinError, name.startsWith('dm:')
        ? 'Direct conversations start from a name in a room\u2019s member list.'
        : 'Room names are 1 to 64 letters, digits, or . _ : - characters.');
      el.joinInput.setAttribute('aria-invalid', 'true');
      return;
    }
    markLeft(name, false);
    el.joinInput.removeAttribute('aria-invalid');
    setFieldError(el.joinError, '');
    el.joinInput.value = '';
    ensureRoom(name, { open: true });
    selectRoom(name);
    saveSession();
    closeSidebar();
    el.input.focus();
  }

  function leaveRoom(name) {
    if (state.client) state.client.leave(name);  /* answers 'left', which drops the room */
    markLeft(name, true);
    dropRoom(name);
  }

  function selectRoom(name) {
    const prev = state.current ? state.rooms.get(state.current) : null;
    if (prev) {
      prev.scrollTop = isAtBottom(prev) ? null : prev.view.scrollTop;
      prev.view.hidden = true;
      prev.draft = el.input.value;
      if (prev.name !== name && state.client) state.client.stopTyping(prev.name);
    }
    state.current = name;
    const room = name ? state.rooms.get(name) : null;
    if (state.client) state.client.showRoom(room ? name : null);
    if (prev && prev !== room) renderMarker(prev);  /* read while shown: its line goes */
    show(el.jumpLatest, false);
    if (room) {
      openRoom(room);
      room.view.hidden = false;
      if (room.scrollTop === null) scrollToBottom(room);
      else room.view.scrollTop = room.scrollTop;
      renderTitle();
      el.leaveCurrent.textContent = room.dm ? 'Close' : 'Leave';
      if (prev !== room) el.input.value = room.draft || '';
      autoGrow();
    } else {
      el.roomTitle.textContent = '\u00a0';
    }
    show(el.noRoom, !room);
    show(el.leaveCurrent, !!room);
    renderRoomList();
    renderMembers();
    renderTyping();
    updateComposer();
    maybeMarkRead();
    updateTitle();
    saveSession();
  }

  function renderRoomList() {
    const frag = document.createDocumentFragment();
    const dms = document.createDocumentFragment();
    for (const name of state.order) {
      const room = state.rooms.get(name);
      const unread = unreadOf(name);
      const shownName = room.dm ? roomLabel(name) : name;
      const li = document.createElement('li');
      li.className = 'room-item';
      if (name === state.current) li.classList.add('current');
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'room-open';
      if (name === state.current) open.setAttribute('aria-current', 'true');
      const label = document.createElement('span');
      label.className = 'room-name';
      label.textContent = room.dm ? `@ ${shownName}` : `# ${name}`;
      label.dataset.room = name;
      label.title = room.dm ? `direct messages with ${dmPeer(name, me()) || name}` : name;
      open.append(label);
      if (unread > 0) li.classList.add('unread');
      let status = '';
      if (room.open && !room.joined && state.conn === 'connected') status = 'joining\u2026';
      if (status) {
        const s = document.createElement('span');
        s.className = 'room-status';
        s.textContent = status;
        open.append(s);
      } else if (unread > 0) {
        const badge = document.createElement('span');
        badge.className = 'badge';
        badge.textContent = unread > 99 ? '99+' : String(unread);
        open.append(badge);
      }
      open.setAttribute('aria-label', (room.dm ? `Direct messages with ${shownName}`
        : `Room ${name}`) + (unread > 0 ? `, ${unread} unread` : ''));
      open.addEventListener('click', () => {
        const drawer = el.sidebar.classList.contains('open');
        selectRoom(name);
        closeSidebar();
        if (drawer) el.input.focus();  /* the drawer is gone: to the composer, not the body */
      });
      const leave = document.createElement('button');
      leave.type = 'button';
      leave.className = 'icon-button room-leave';
      const what = room.dm ? `Close the conversation with ${shownName}` : `Leave ${name}`;
      leave.setAttribute('aria-label', what);
      leave.title = what;
      leave.textContent = '\u00d7';
      leave.addEventListener('click', () => leaveRoom(name));
      li.append(open, leave);
      (room.dm ? dms : frag).append(li);
    }
    const focused = document.activeElement;
    const refocus = focused && (el.roomList.contains(focused) || el.dmList.contains(focused))
      ? [focused.closest('li').querySelector('.room-name').dataset.room,
         focused.classList.contains('room-leave')] : null;
    el.roomList.replaceChildren(frag);
    el.dmList.replaceChildren(dms);
    show(el.roomsEmpty, el.roomList.children.length === 0);
    show(el.dmsEmpty, el.dmList.children.length === 0);
    if (refocus) {
      /* the lists are redrawn on every change: keep the keyboard where it was */
      for (const li of [...el.roomList.children, ...el.dmList.children]) {
        if (li.querySelector('.room-name').dataset.room === refocus[0]) {
          li.querySelector(refocus[1] ? '.room-leave' : '.room-open').focus();
        }
      }
    }
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
    if (!own && mentions(String(m.text), [state.user, state.selfName].filter(Boolean))) {
      li.classList.add('mention');
    }
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
    /* the live region announces single new messages, not pages of history */
    const quiet = where === 'top' || msgs.length > 1;
    if (quiet) {
      room.list.setAttribute('aria-live', 'off');
      setTimeout(() => room.list.setAttribute('aria-live', 'polite'), 0);
    }
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
    renderMarker(room);
    if (room.seenUpto) renderSeen(room);
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
    else el.input.placeholder = room.dm ? `Message @ ${roomLabel(room.name)}`
      : `Message # ${room.name}`;
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
    maybeMarkRead();
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
  el.input.addEventListener('input', () => {
    autoGrow();
    updateComposer();
    if (!state.client || !state.current) return;
    /* "X is typing" for the others: throttled by chat-client.js; off once the box is empty */
    if (el.input.value.trim() === '') state.client.stopTyping(state.current);
    else state.client.typing(state.current);
  });
  el.input.addEventListener('blur', () => {
    if (state.client && state.current) state.client.stopTyping(state.current);
  });
  el.notifyToggle.addEventListener('click', toggleNotify);
  el.membersToggle.addEventListener('click', () => setMembersOpen(!membersShown()));
  el.membersClose.addEventListener('click', () => {
    setMembersOpen(false);
    el.membersToggle.focus();
  });
  el.membersBackdrop.addEventListener('click', () => setMembersOpen(false));
  wide.addEventListener('change', () => {
    state.membersOpen = null;  /* back to what suits the new width */
    renderMembers();
  });
  el.roomsToggle.addEventListener('click', () => {
    if (el.sidebar.classList.contains('open')) closeSidebar();
    else openSidebar();
  });
  el.backdrop.addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if (!el.membersPanel.hidden && !wide.matches) {
      setMembersOpen(false);
      el.membersToggle.focus();
      return;
    }
    if (el.sidebar.classList.contains('open')) {
      closeSidebar();
      el.roomsToggle.focus();
    }
  });
  narrow.addEventListener('change', () => { if (!narrow.matches) closeSidebar(); });
  /* a tab coming back after sleep: do not sit out the rest of a long backoff */
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) maybeMarkRead();
    if (!document.hidden && state.conn === 'disconnected') {
      if (state.client) state.client.connect();
    }
  });
  window.addEventListener('online', () => {
    if (state.conn === 'disconnected') {
      if (state.client) state.client.connect();
    }
  });

  renderNotify();
  const saved = loadSession();
  if (saved && !tokenExpired(saved.token)) {
    startSession(saved.token, saved.rooms, saved.current, saved.name,
      Array.isArray(saved.listed) ? saved.listed : []);
  } else {
    sessionStorage.removeItem(STORE_KEY);
    showSignin(saved ? 'Your session expired: sign in again.' : '');
  }
})();
