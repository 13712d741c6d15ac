// Unit tests of chat-client.js's v2 features (presence, direct messages, typing, read state,
// the rooms list) against the fake WebSocket and clock of fakes.mjs (node --test tests/web/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENTS, WELCOME_V1, id, msg, setup, welcome } from './fakes.mjs';

const ALL = [...EVENTS, 'members', 'typing', 'read', 'receipt', 'rooms'];
const flushPromises = () => new Promise((resolve) => setImmediate(resolve));

function connected(opts = {}) {
  const s = setup(opts, ALL);
  s.client.connect();
  s.ws = welcome(s.net);
  return s;
}

/* Joins a room on the open socket and answers it with `joined` (extra fields given). */
function joinRoom(s, room, extra = {}, joinOpts = { presence: true }) {
  s.client.join(room, joinOpts);
  s.ws.push({ type: 'joined', room, history: [], ...extra });
}

/* ---- presence ------------------------------------------------------------------------------- */

test('presence: join asks for it; the snapshot, then diffs, reach the page', () => {
  const s = connected();
  s.client.join('r', { presence: true });
  s.client.join('q');
  const joins = s.ws.frames('join');
  assert.equal(joins.find((f) => f.room === 'r').presence, true);
  assert.equal('presence' in joins.find((f) => f.room === 'q'), false);
  assert.equal(s.client.members('r'), null);  // nothing known before joined
  s.ws.push({ type: 'joined', room: 'r', history: [],
              members: { count: 2, truncated: false,
                         users: [{ user: 'alice', name: 'Alice' }, { user: 'bob', name: 'Bob' }] } });
  let ev = s.of('members').pop();
  assert.equal(ev.room, 'r');
  assert.equal(ev.count, 2);
  assert.deepEqual(ev.users.map((u) => u.user), ['alice', 'bob']);
  assert.equal(s.client.nameOf('bob'), 'Bob');

  s.ws.push({ type: 'presence', room: 'r', joined: [{ user: 'carol', name: 'Carol' }],
              left: ['bob'], count: 2 });
  ev = s.of('members').pop();
  assert.deepEqual(ev.users.map((u) => u.user), ['alice', 'carol']);
  assert.deepEqual(ev.joined, [{ user: 'carol', name: 'Carol' }]);
  assert.deepEqual(ev.left, ['bob']);
  assert.equal(s.client.members('r').count, 2);
  assert.equal(s.client.nameOf('carol'), 'Carol');

  // presence of a room without it, or not joined: ignored
  const n = s.of('members').length;
  s.ws.push({ type: 'presence', room: 'q', joined: [{ user: 'x' }], left: [], count: 1 });
  s.ws.push({ type: 'presence', room: 'nope', joined: [{ user: 'x' }], left: [], count: 1 });
  assert.equal(s.of('members').length, n);

  // an explicit members request replaces the list
  s.client.requestMembers('r');
  assert.deepEqual(s.ws.frames('members').pop(), { type: 'members', room: 'r' });
  s.ws.push({ type: 'members', room: 'r', count: 300, truncated: true,
              users: [{ user: 'alice', name: 'Alice' }] });
  ev = s.of('members').pop();
  assert.equal(ev.count, 300);
  assert.equal(ev.truncated, true);
  assert.equal(ev.users.length, 1);
});

test('presence: a list that disagrees with the count is asked for again, once a second', () => {
  const s = connected();
  joinRoom(s, 'r', { members: { count: 2, users: [{ user: 'alice' }, { user: 'bob' }] } });
  s.ws.push({ type: 'presence', room: 'r', joined: [], left: [], count: 3 });  // one missed
  s.ws.push({ type: 'presence', room: 'r', joined: [], left: [], count: 3 });
  assert.equal(s.ws.frames('members').length, 0);
  s.clock.advance(1000);
  assert.deepEqual(s.ws.frames('members'), [{ type: 'members', room: 'r' }]);
  s.ws.push({ type: 'members', room: 'r', count: 3, truncated: false,
              users: [{ user: 'alice' }, { user: 'bob' }, { user: 'carol' }] });
  s.ws.push({ type: 'presence', room: 'r', joined: [], left: ['bob'], count: 2 });  // agrees
  s.clock.advance(5000);
  assert.equal(s.ws.frames('members').length, 1);
  s.ws.push({ type: 'presence', room: 'r', joined: [], left: [], count: 1 });  // a missed leave
  assert.equal(s.client.members('r').count, 1);  // the server's count, not the list's length
  s.clock.advance(1000);
  assert.equal(s.ws.frames('members').length, 2);
  s.ws.push({ type: 'members', room: 'r', count: 1, truncated: false, users: [{ user: 'alice' }] });
  // a truncated list is expected to be shorter than the count: no request
  s.ws.push({ type: 'members', room: 'r', count: 500, truncated: true, users: [{ user: 'a' }] });
  s.ws.push({ type: 'presence', room: 'r', joined: [{ user: 'z' }], left: [], count: 501 });
  s.clock.advance(5000);
  assert.equal(s.ws.frames('members').length, 2);
  // disagreeing, then set right by the next diff before the second is over: no request
  joinRoom(s, 'q', { members: { count: 1, users: [{ user: 'alice' }] } });
  s.ws.push({ type: 'presence', room: 'q', joined: [], left: [], count: 2 });
  s.ws.push({ type: 'presence', room: 'q', joined: [{ user: 'bob' }], left: [], count: 2 });
  s.clock.advance(5000);
  assert.equal(s.ws.frames('members').length, 2);
});

test('presence: a rejoin after a reconnect brings a new snapshot', () => {
  const s = connected();
  joinRoom(s, 'r', { members: { count: 2, users: [{ user: 'alice' }, { user: 'bob' }] } });
  s.ws.drop(1006);
  s.retry();
  const ws2 = welcome(s.net);
  assert.equal(ws2.frames('join').pop().presence, true);
  ws2.push({ type: 'joined', room: 'r', history: [], members: { count: 1, users: [{ user: 'alice' }] } });
  assert.deepEqual(s.client.members('r').users.map((u) => u.user), ['alice']);
});

/* ---- direct messages ------------------------------------------------------------------------ */

test('a direct message of a room not joined here is emitted once, and counted unread', () => {
  const s = connected();
  const dm = 'dm:alice:bob';
  assert.equal(s.client.directRoom('bob'), dm);
  assert.equal(s.client.directRoom('Bob'), 'dm:Bob:alice');
  assert.equal(s.client.directRoom('alice'), null);
  s.ws.push(msg(1, dm));
  s.ws.push(msg(1, dm));  // the same id again (a second delivery): not emitted twice
  s.ws.push(msg(2, dm));
  assert.deepEqual(s.of('message').map((m) => m.id), [id(1), id(2)]);
  assert.equal(s.client.readState(dm).unread, 2);
  assert.equal(s.of('read').pop().total, 2);
  // other people's direct rooms and unjoined plain rooms are not ours
  s.ws.push(msg(3, 'dm:bob:carol'));
  s.ws.push(msg(4, 'general'));
  assert.equal(s.of('message').length, 2);

  // joining it later: the history does not repeat what was emitted
  s.client.join(dm, { presence: true });
  s.ws.push({ type: 'joined', room: dm, history: [msg(1, dm), msg(2, dm), msg(5, dm)],
              read_upto: null, unread: 3 });
  assert.deepEqual(s.of('joined').pop().history.map((m) => m.id), [id(5)]);
  assert.equal(s.client.readState(dm).unread, 3);  // the server's count now
  s.ws.push(msg(5, dm));
  s.ws.push(msg(6, dm));
  assert.deepEqual(s.of('message').map((m) => m.id), [id(1), id(2), id(6)]);
});

test('a direct message before welcome (user unknown) is not taken', () => {
  const s = setup({}, ALL);
  s.client.connect();
  s.net.last().accept();
  s.net.last().push(msg(1, 'dm:alice:bob'));
  assert.equal(s.of('message').length, 0);
});

test('forbidden join of a direct room closes it with the error', () => {
  const s = connected();
  s.client.join('dm:bob:carol');
  const join = s.ws.frames('join').pop();
  s.ws.push({ type: 'error', code: 'forbidden', message: 'not your direct room', cid: join.cid });
  assert.equal(s.of('left').pop().error.code, 'forbidden');
  assert.equal(s.of('error').pop().request, 'join');
});

/* ---- typing --------------------------------------------------------------------------------- */

test('typing out: throttled on, off when idle, and off before a send', () => {
  const s = connected();
  s.client.typing('r');  // not joined yet: nothing
  assert.equal(s.ws.frames('typing').length, 0);
  joinRoom(s, 'r');
  s.client.typing('r');
  s.clock.advance(1000);
  s.client.typing('r');
  assert.deepEqual(s.ws.frames('typing'), [{ type: 'typing', room: 'r', on: true }]);
  s.clock.advance(1000);
  s.client.typing('r');
  assert.equal(s.ws.frames('typing').length, 2);
  s.client.send('r', 'hello');
  const tail = s.ws.sent.slice(-2);
  assert.deepEqual(tail[0], { type: 'typing', room: 'r', on: false });
  assert.equal(tail[1].type, 'send');
  s.clock.advance(10000);
  assert.equal(s.ws.frames('typing').length, 3);  // no second off

  s.client.typing('r');
  s.clock.advance(3000);  // idle
  assert.deepEqual(s.ws.frames('typing').pop(), { type: 'typing', room: 'r', on: false });
  s.client.typing('r');
  s.client.stopTyping('r');
  assert.deepEqual(s.ws.frames('typing').pop(), { type: 'typing', room: 'r', on: false });
  s.client.typing('r');
  s.client.leave('r');  // leaving stops it too, before the leave
  const last2 = s.ws.sent.slice(-2);
  assert.deepEqual(last2[0], { type: 'typing', room: 'r', on: false });
  assert.equal(last2[1].type, 'leave');
});

test('typing out: nothing against a v1 server', () => {
  const s = setup({}, ALL);
  s.client.connect();
  s.ws = welcome(s.net, WELCOME_V1);
  joinRoom(s, 'r');
  s.client.typing('r');
  assert.equal(s.ws.frames('typing').length, 0);
});

test('typing in: shown until off, a message, a leave, 6 s or a lost connection', () => {
  const s = connected();
  joinRoom(s, 'r', { members: { count: 3, users: [{ user: 'alice' }, { user: 'bob' },
                                                  { user: 'carol' }] } });
  const users = () => s.of('typing').pop().users;
  s.ws.push({ type: 'typing', room: 'r', user: 'bob', on: true });
  assert.deepEqual(users(), ['bob']);
  assert.deepEqual(s.client.typingUsers('r'), ['bob']);
  s.ws.push({ type: 'typing', room: 'r', user: 'alice', on: true });  // ourselves, elsewhere
  s.ws.push({ type: 'typing', room: 'other', user: 'carol', on: true });  // not joined
  assert.equal(s.of('typing').length, 1);
  s.ws.push({ type: 'typing', room: 'r', user: 'carol', on: true });
  assert.deepEqual(users(), ['bob', 'carol']);
  s.ws.push({ type: 'typing', room: 'r', user: 'carol', on: false });
  assert.deepEqual(users(), ['bob']);
  s.ws.push(msg(1, 'r'));  // bob's message ends his typing
  assert.deepEqual(users(), []);

  s.ws.push({ type: 'typing', room: 'r', user: 'bob', on: true });
  s.clock.advance(4000);
  s.ws.push({ type: 'typing', room: 'r', user: 'bob', on: true });  // renewed
  s.clock.advance(5999);
  assert.deepEqual(s.client.typingUsers('r'), ['bob']);
  s.clock.advance(1);
  assert.deepEqual(users(), []);  // 6 s after the last on

  s.ws.push({ type: 'typing', room: 'r', user: 'carol', on: true });
  s.ws.push({ type: 'presence', room: 'r', joined: [], left: ['carol'], count: 2 });
  assert.deepEqual(users(), []);

  s.ws.push({ type: 'typing', room: 'r', user: 'bob', on: true });
  s.ws.drop(1006);
  assert.deepEqual(users(), []);
});

/* ---- read state ----------------------------------------------------------------------------- */

test('read state: joined\'s read_upto and unread, live counting, markRead sends read', () => {
  const s = connected();
  joinRoom(s, 'r', { history: [msg(1), msg(2), msg(3)], read_upto: id(1), unread: 2 });
  let ev = s.of('read').pop();
  assert.deepEqual({ unread: ev.unread, readUpto: ev.readUpto, last: ev.last, marker: ev.marker },
                   { unread: 2, readUpto: id(1), last: id(3), marker: id(1) });
  s.ws.push(msg(4));
  assert.equal(s.of('read').pop().unread, 3);
  s.ws.push(msg(5, 'r', { from: 'alice', cid: 'c' }));  // our own
  assert.equal(s.of('read').pop().unread, 3);
  assert.equal(s.client.totalUnread(), 3);

  s.client.showRoom('r');
  assert.equal(s.client.markRead('r'), id(5));
  const sent = s.ws.frames('read').pop();
  assert.deepEqual({ ...sent, cid: undefined }, { type: 'read', room: 'r', upto: id(5), cid: undefined });
  assert.match(sent.cid, /^read-/);
  // not stored: the error is not news for the page
  s.ws.push({ type: 'error', code: 'unavailable', message: 'store busy', cid: sent.cid });
  assert.equal(s.of('error').length, 0);
  ev = s.of('read').pop();
  assert.equal(ev.unread, 0);
  assert.equal(ev.marker, id(1));  // kept while shown
  const n = s.ws.frames('read').length;
  assert.equal(s.client.markRead('r'), null);  // nothing new: no frame
  assert.equal(s.ws.frames('read').length, n);
  s.client.showRoom(null);
  assert.equal(s.client.readState('r').marker, null);
});

test('read state: other devices\' reads and receipts', () => {
  const s = connected();
  joinRoom(s, 'r', { history: [msg(1), msg(2), msg(3)], read_upto: id(1), unread: 2 });
  s.ws.push({ type: 'read', room: 'r', upto: id(3), unread: 0 });
  let ev = s.of('read').pop();
  assert.equal(ev.unread, 0);
  assert.equal(ev.remote, true);
  assert.equal(ev.marker, null);  // read elsewhere while not shown: no line
  const n = s.of('read').length;
  s.ws.push({ type: 'read', room: 'r', upto: id(2), unread: 1 });  // stale
  assert.equal(s.of('read').length, n);
  // a read of a room not open here (the sidebar knows it from requestRooms)
  s.ws.push({ type: 'read', room: 'elsewhere', upto: id(9), unread: 0 });
  ev = s.of('read').pop();
  assert.equal(ev.room, 'elsewhere');
  s.ws.push({ type: 'receipt', room: 'dm:alice:bob', user: 'bob', upto: id(7) });
  assert.deepEqual(s.of('receipt').pop(), { type: 'receipt', room: 'dm:alice:bob', user: 'bob',
                                            upto: id(7) });
});

test('read state: a read that did not reach the server is sent again after the rejoin', () => {
  const s = connected();
  joinRoom(s, 'r', { history: [msg(1), msg(2)], read_upto: id(1), unread: 1 });
  s.ws.drop(1006);
  s.client.markRead('r');  // offline: kept here
  s.retry();
  const ws2 = welcome(s.net);
  assert.equal(ws2.frames('read').length, 0);
  ws2.push({ type: 'joined', room: 'r', history: [], read_upto: id(1), unread: 1 });
  assert.deepEqual(ws2.frames('read').map((f) => f.upto), [id(2)]);
  assert.equal(s.client.readState('r').unread, 0);
  // a joined without read state (storage busy): the position goes again all the same
  s.ws = ws2;
  ws2.drop(1006);
  s.retry();
  const ws3 = welcome(s.net);
  ws3.push({ type: 'joined', room: 'r', history: [] });
  assert.deepEqual(ws3.frames('read').map((f) => f.upto), [id(2)]);
  assert.equal(s.client.readState('r').unread, 0);
});

/* ---- rooms ---------------------------------------------------------------------------------- */

test('requestRooms: the sidebar of a new device, with its read state', async () => {
  const s = connected();
  const p = s.client.requestRooms();
  const req = s.ws.frames('rooms');
  assert.equal(req.length, 1);
  assert.match(req[0].cid, /^rooms-/);
  const rooms = [
    { room: 'general', unread: 3, read_upto: id(7), last: id(10) },
    { room: 'dm:alice:bob', unread: 1, last: id(2, 1) },
    { unread: 4 },  // no room: skipped
  ];
  s.ws.push({ type: 'rooms', rooms });
  const got = await p;
  assert.deepEqual(got.map((r) => r.room), ['general', 'dm:alice:bob']);
  assert.equal(s.of('rooms').pop().rooms.length, 2);
  assert.equal(s.client.readState('general').unread, 3);
  assert.equal(s.client.readState('general').marker, id(7));
  assert.equal(s.client.readState('dm:alice:bob').unread, 1);
  assert.equal(s.client.totalUnread(), 4);
  // a live message of a listed direct room counts on from there
  s.ws.push(msg(3, 'dm:alice:bob'));
  assert.equal(s.client.readState('dm:alice:bob').unread, 2);
  s.ws.push(msg(2, 'dm:alice:bob'));  // not newer than its `last`
  assert.equal(s.client.readState('dm:alice:bob').unread, 2);
});

test('requestRooms: [] from a v1 server; refused when the connection drops or on unavailable',
  async () => {
    const v1 = setup({}, ALL);
    v1.client.connect();
    welcome(v1.net, WELCOME_V1);
    assert.deepEqual(await v1.client.requestRooms(), []);
    assert.equal(v1.net.last().frames('rooms').length, 0);

    const s = connected();
    const p = s.client.requestRooms();
    s.ws.drop(1006);
    await assert.rejects(p, /connection closed/);
    await assert.rejects(s.client.requestRooms(), /not connected/);
    s.retry();
    const ws2 = welcome(s.net);
    const q = s.client.requestRooms();
    ws2.push({ type: 'error', code: 'unavailable', message: 'store down' });
    await assert.rejects(q, (e) => e.code === 'unavailable');
    // an error naming the request's cid, and answers matched by cid
    const r1 = s.client.requestRooms();
    const r2 = s.client.requestRooms();
    const [c1, c2] = ws2.frames('rooms').slice(-2).map((f) => f.cid);
    ws2.push({ type: 'rooms', cid: c2, rooms: [{ room: 'b', unread: 0 }] });
    ws2.push({ type: 'error', code: 'unavailable', message: 'busy', cid: c1 });
    assert.deepEqual((await r2).map((r) => r.room), ['b']);
    await assert.rejects(r1, (e) => e.code === 'unavailable' && e.cid === c1);
    assert.equal(s.of('error').length, 0);
    await flushPromises();
  });

test('requestRooms: a server without the rooms frame refuses it as unknown_type', async () => {
  const s = connected();
  const p = s.client.requestRooms();
  s.ws.push({ type: 'error', code: 'unknown_type', message: 'unknown frame type "rooms"' });
  await assert.rejects(p, (e) => e.code === 'unknown_type');
  assert.equal(s.of('error').length, 0);
  s.ws.push({ type: 'error', code: 'unknown_type', message: 'unknown frame type "typing"' });
  assert.equal(s.of('error').pop().code, 'unknown_type');  // not ours to swallow
});
