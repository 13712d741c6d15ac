// Unit tests of gateway/web/chat-state.js (node --test tests/web/): direct-room names, member
// lists, typing (both directions) and read state, under a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Members, NameBook, ReadState, TypingSender, TypingSet, dmPeer, dmRoom, dmUserOk, dmUsers,
  isDmRoom, mentions, typingText,
} from '../../gateway/web/chat-state.js';
import { Clock, id } from './fakes.mjs';

/* ---- direct rooms --------------------------------------------------------------------------- */

test('dmRoom puts the two ids in byte order, whoever asks', () => {
  assert.equal(dmRoom('bob', 'alice'), 'dm:alice:bob');
  assert.equal(dmRoom('alice', 'bob'), 'dm:alice:bob');
  // byte order, not case-insensitive or locale order: 'B' (0x42) < 'a' (0x61), '-' < '.' < '0'
  assert.equal(dmRoom('alice', 'Bob'), 'dm:Bob:alice');
  assert.equal(dmRoom('a.b', 'a-b'), 'dm:a-b:a.b');
  assert.equal(dmRoom('a1', 'a.'), 'dm:a.:a1');
  assert.equal(dmRoom('ann', 'an'), 'dm:an:ann');  // a prefix sorts first
  assert.equal(dmRoom('x@example.com', 'bob'), 'dm:bob:x@example.com');
  assert.equal(dmRoom('b'.repeat(64), 'a'.repeat(64)), `dm:${'a'.repeat(64)}:${'b'.repeat(64)}`);
});

test('dmRoom refuses ids that cannot have direct rooms, and oneself', () => {
  for (const bad of ['', 'a:b', 'a b', 'é', 'x'.repeat(65), null, undefined, 3]) {
    assert.equal(dmUserOk(bad), false, String(bad));
    assert.equal(dmRoom('alice', bad), null, String(bad));
    assert.equal(dmRoom(bad, 'alice'), null, String(bad));
  }
  assert.equal(dmRoom('alice', 'alice'), null);
});

test('dmUsers, isDmRoom and dmPeer read a direct room name', () => {
  assert.deepEqual(dmUsers('dm:alice:bob'), ['alice', 'bob']);
  assert.equal(dmPeer('dm:alice:bob', 'alice'), 'bob');
  assert.equal(dmPeer('dm:alice:bob', 'bob'), 'alice');
  assert.equal(dmPeer('dm:alice:bob', 'carol'), null);
  for (const bad of ['general', 'dm:bob:alice', 'dm:alice:alice', 'dm:alice', 'dm:a:b:c',
                     'dm::bob', 'dm:alice:', 'xdm:alice:bob', 'dm:al ice:bob']) {
    assert.equal(isDmRoom(bad), false, bad);
    assert.equal(dmPeer(bad, 'alice'), null, bad);
  }
  assert.equal(isDmRoom(dmRoom('z', 'A')), true);
});

test('NameBook learns names and forgets the oldest beyond its bound', () => {
  const b = new NameBook(2);
  b.learn('u1', 'Ann');
  b.learn('u2', '');
  assert.equal(b.name('u1'), 'Ann');
  assert.equal(b.name('u2'), 'u2');
  b.learn('u3', 'Cy');
  assert.equal(b.name('u1'), 'u1');  // dropped: the id stands in for the name
  assert.equal(b.name('u3'), 'Cy');
});

/* ---- members -------------------------------------------------------------------------------- */

test('members: a snapshot, then presence diffs', () => {
  const m = new Members();
  assert.equal(m.known, false);
  m.snapshot({ count: 2, users: [{ user: 'bob', name: 'Bob' }, { user: 'alice', name: 'Alice' }],
               truncated: false });
  assert.equal(m.known, true);
  assert.deepEqual(m.view(), { count: 2, truncated: false,
    users: [{ user: 'alice', name: 'Alice' }, { user: 'bob', name: 'Bob' }] });
  const d = m.apply({ joined: [{ user: 'carol', name: 'carol' }], left: ['bob'], count: 2 });
  assert.deepEqual(d, { joined: [{ user: 'carol', name: 'carol' }], left: ['bob'] });
  assert.deepEqual(m.list().map((u) => u.user), ['alice', 'carol']);
  assert.equal(m.count, 2);
  // a join of someone already listed, and a leave of someone never listed: no harm
  m.apply({ joined: [{ user: 'alice', name: 'Alice' }], left: ['zed'], count: 2 });
  assert.equal(m.users.size, 2);
  // junk entries are skipped
  m.apply({ joined: [null, { name: 'x' }, { user: 7 }], left: [3], count: 2 });
  assert.equal(m.users.size, 2);
});

test('members: a truncated list keeps the server\'s count, larger than the list', () => {
  const users = Array.from({ length: 100 }, (_, i) => ({ user: `u${i}`, name: `U${i}` }));
  const m = new Members();
  m.snapshot({ count: 250, users, truncated: true });
  assert.equal(m.users.size, 100);
  assert.equal(m.count, 250);
  assert.equal(m.truncated, true);
  m.apply({ joined: [{ user: 'new', name: 'New' }], left: [], count: 251 });
  assert.equal(m.count, 251);
  assert.equal(m.users.size, 101);
  m.apply({ joined: [], left: ['somebody-unlisted'], count: 250 });
  assert.equal(m.count, 250);
});

test('members: without a count, a full list counts itself', () => {
  const m = new Members();
  m.snapshot({ users: [{ user: 'a' }] });
  assert.equal(m.count, 1);
  assert.equal(m.list()[0].name, 'a');  // no name: the id
  m.apply({ joined: [{ user: 'b' }], left: [] });
  assert.equal(m.count, 2);
});

test('members: names sort case-insensitively, ties by id', () => {
  const m = new Members();
  m.snapshot({ count: 3, users: [{ user: 'z', name: 'bob' }, { user: 'y', name: 'Bob' },
                                 { user: 'x', name: 'alice' }] });
  assert.deepEqual(m.list().map((u) => u.user), ['x', 'y', 'z']);
});

/* ---- typing --------------------------------------------------------------------------------- */

test('typing received: on is over after 6 s unless renewed; off ends it at once', () => {
  const clock = new Clock();
  const changes = [];
  const t = new TypingSet({ setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
                            onChange: (room) => changes.push([room, t.users(room)]) });
  assert.equal(t.set('r', 'bob', true), true);
  assert.equal(t.set('r', 'bob', true), false);  // renewed: no change in who is typing
  assert.equal(t.set('r', 'carol', true), true);
  assert.deepEqual(t.users('r'), ['bob', 'carol']);
  clock.advance(5999);
  assert.deepEqual(changes, []);
  assert.equal(t.set('r', 'carol', true), false);  // carol renews at 5.999 s
  clock.advance(1);
  assert.deepEqual(changes, [['r', ['carol']]]);  // bob's 6 s are over
  assert.equal(t.set('r', 'carol', false), true);
  assert.deepEqual(t.users('r'), []);
  clock.advance(10000);
  assert.equal(changes.length, 1);  // carol's timer went with her off
  assert.equal(t.set('r', 'nobody', false), false);
  t.set('r', 'bob', true);
  t.set('q', 'bob', true);
  assert.deepEqual(t.clearAll().sort(), ['q', 'r']);
  clock.advance(10000);
  assert.equal(changes.length, 1);
});

test('typing sent: on at most once per 2 s while typing, off after 3 s idle or on stop', () => {
  const clock = new Clock();
  const sent = [];
  const s = new TypingSender({ now: () => clock.now, setTimeout: clock.setTimeout,
                               clearTimeout: clock.clearTimeout,
                               send: (room, on) => sent.push([clock.now, room, on]) });
  s.input('r');
  for (let i = 0; i < 10; i += 1) {  // a keystroke every 500 ms for 5 s
    clock.advance(500);
    s.input('r');
  }
  assert.deepEqual(sent, [[0, 'r', true], [2000, 'r', true], [4000, 'r', true]]);
  clock.advance(2999);
  assert.equal(sent.length, 3);
  clock.advance(1);  // 3 s after the last keystroke
  assert.deepEqual(sent[3], [8000, 'r', false]);
  assert.equal(s.typing('r'), false);
  s.input('r');  // typing again at once: a fresh on, whatever the 2 s
  assert.deepEqual(sent[4], [8000, 'r', true]);
  s.stop('r');
  assert.deepEqual(sent[5], [8000, 'r', false]);
  s.stop('r');  // already off: nothing
  clock.advance(10000);
  assert.equal(sent.length, 6);
  s.input('r');
  s.reset();  // the connection is gone: no frame, no timer left
  s.forget('r');
  clock.advance(10000);
  assert.equal(sent.length, 7);
});

test('typingText names one, two, three, then several', () => {
  assert.equal(typingText([]), '');
  assert.equal(typingText(['Bob']), 'Bob is typing\u2026');
  assert.equal(typingText(['Bob', 'Cy']), 'Bob and Cy are typing\u2026');
  assert.equal(typingText(['A', 'B', 'C']), 'A, B and C are typing\u2026');
  assert.equal(typingText(['A', 'B', 'C', 'D']), 'Several people are typing\u2026');
});

/* ---- read state ----------------------------------------------------------------------------- */

const m = (n, from = 'bob') => ({ id: id(n), from });

test('unread: the server\'s count, then live messages of others after read_upto', () => {
  const r = new ReadState();
  r.server('room', { readUpto: id(10), unread: 2, last: id(12) });
  assert.equal(r.unread('room'), 2);
  assert.equal(r.message('room', m(13), 'alice'), true);
  assert.equal(r.unread('room'), 3);
  assert.equal(r.message('room', m(14, 'alice'), 'alice'), false);  // our own: not unread
  assert.equal(r.message('room', m(13), 'alice'), false);  // known already
  assert.equal(r.message('room', m(12), 'alice'), false);
  assert.equal(r.unread('room'), 3);
  assert.equal(r.get('room').last, id(14));
  r.server('other', { readUpto: null, unread: 5, last: id(5) });
  assert.equal(r.total(), 8);
});

test('markRead moves forward only, to the newest message by default', () => {
  const r = new ReadState();
  r.server('room', { readUpto: id(10), unread: 3, last: id(13) });
  assert.equal(r.markRead('room'), id(13));
  assert.equal(r.unread('room'), 0);
  assert.equal(r.markRead('room'), null);  // nothing new
  assert.equal(r.markRead('room', id(11)), null);  // backwards
  assert.equal(r.get('room').readUpto, id(13));
  r.message('room', m(14), 'alice');
  r.message('room', m(15), 'alice');
  assert.equal(r.markRead('room', id(14)), id(14));  // part of it: the count stays
  assert.equal(r.unread('room'), 2);
  assert.equal(r.markRead('room', id(15)), id(15));
  assert.equal(r.unread('room'), 0);
  assert.equal(new ReadState().markRead('empty'), null);  // no message known
});

test('a read from another device moves read state forward, never back', () => {
  const r = new ReadState();
  r.server('room', { readUpto: id(10), unread: 4, last: id(14) });
  assert.equal(r.remote('room', id(12), 2), true);
  assert.equal(r.unread('room'), 2);
  assert.equal(r.remote('room', id(11), 3), false);  // older: stale
  assert.equal(r.unread('room'), 2);
  assert.equal(r.remote('room', id(14)), true);  // no count: read to the newest known
  assert.equal(r.unread('room'), 0);
  assert.equal(r.remote('room', 'not-a-thing-but-newer', 0), true);
  assert.equal(r.remote('room', '', 0), false);
});

test('a local read ahead of the server\'s wins, and is reported for resending', () => {
  const r = new ReadState();
  r.server('room', { readUpto: id(5), unread: 1, last: id(6) });
  r.markRead('room');
  assert.equal(r.server('room', { readUpto: id(5), unread: 1, last: id(6) }), true);
  assert.equal(r.get('room').readUpto, id(6));
  assert.equal(r.unread('room'), 0);
  assert.equal(r.server('room', { readUpto: id(6), unread: 0, last: id(6) }), false);
});

test('read marker: above the first unread, kept while the room is shown', () => {
  const r = new ReadState();
  r.server('room', { readUpto: id(10), unread: 0, last: id(10) });
  assert.equal(r.get('room').marker, null);
  r.message('room', m(11), 'alice');  // arrives while another room is shown
  assert.equal(r.get('room').marker, id(10));
  r.message('room', m(12), 'alice');
  assert.equal(r.get('room').marker, id(10));  // stays above the first unread
  r.show('room');
  r.markRead('room');
  assert.equal(r.unread('room'), 0);
  assert.equal(r.get('room').marker, id(10));  // still there while the person reads
  r.message('room', m(13), 'alice');  // shown, but the tab is hidden: counted
  assert.equal(r.get('room').marker, id(10));  // the older line stays
  r.markRead('room');
  r.show('other');  // the person moves on: the line goes
  assert.equal(r.get('room').marker, null);
  r.message('room', m(14), 'alice');
  assert.equal(r.get('room').marker, id(13));
  r.remote('room', id(14), 0);  // read on another device while not shown: no line
  assert.equal(r.get('room').marker, null);
});

test('read marker: a room joined with unread messages gets one; a never-read room none', () => {
  const r = new ReadState();
  r.server('seen', { readUpto: id(3), unread: 4, last: id(7) });
  assert.equal(r.get('seen').marker, id(3));
  r.server('fresh', { readUpto: null, unread: 50, last: id(50) });
  assert.equal(r.get('fresh').marker, null);
  r.show('seen');
  r.show('fresh');  // 'seen' still has unread messages: its line stays
  assert.equal(r.get('seen').marker, id(3));
});

/* ---- mentions ------------------------------------------------------------------------------- */

test('mentions: @name or @id as a word, any case', () => {
  const me = ['alice', 'Alice Smith'];
  assert.equal(mentions('hi @alice', me), true);
  assert.equal(mentions('@ALICE: look', me), true);
  assert.equal(mentions('ping @alice.', me), true);  // the end of a sentence
  assert.equal(mentions('(@alice)', me), true);
  assert.equal(mentions('hey @Alice Smith!', me), true);
  assert.equal(mentions('hi alice', me), false);
  assert.equal(mentions('@alice2 and @alicex', me), false);
  assert.equal(mentions('@alice.b is someone else', me), false);
  assert.equal(mentions('mail bob@alice', me), false);  // an address, not a mention
  assert.equal(mentions('@al', me), false);
  assert.equal(mentions('@a+b', ['a+b']), true);  // the name is text, not a pattern
  assert.equal(mentions('@anything', []), false);
  assert.equal(mentions(null, me), false);
});
