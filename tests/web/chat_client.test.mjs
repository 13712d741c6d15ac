// Unit tests of gateway/web/chat-client.js with Node's built-in runner (node --test tests/web/),
// against a fake WebSocket and a fake clock: no server, no network, no real timers. Node 18+.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient } from '../../gateway/web/chat-client.js';
import {
  Clock, WELCOME_V1, WELCOME_V2, fakeSockets, id, msg, setup, welcome,
} from './fakes.mjs';

const ids = (list) => list.map((m) => m.id);
const lastJoin = (ws, room) => ws.frames('join').filter((f) => f.room === room).pop();
const flushPromises = () => new Promise((resolve) => setImmediate(resolve));

/* ---- connecting ----------------------------------------------------------------------------- */

test('signs in with a first auth frame and joins the open rooms after welcome', () => {
  const { client, net, of } = setup();
  client.join('r');
  client.connect();
  const ws = net.last();
  assert.equal(ws.url, 'ws://chat.test/ws');
  assert.deepEqual(of('state').map((e) => e.state), ['connecting']);
  ws.accept();
  assert.deepEqual(ws.sent, [{ type: 'auth', token: 'tok-1' }]);
  ws.push(WELCOME_V2);
  assert.equal(client.state, 'open');
  assert.equal(client.protocol, 2);
  assert.equal(client.epoch, 'e1');
  const join = lastJoin(ws, 'r');
  assert.ok(join.cid);
  assert.equal(join.since, undefined, 'a first join has no position');
  assert.equal(join.epoch, undefined);
});

test('backoff: full jitter within min(30 s, 1 s * 2^n), growing while connections fail', () => {
  const caps = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  for (const r of [0, 0.5, 0.999999]) {
    const { client, clock, net, of } = setup({ random: () => r });
    client.connect();
    for (let i = 0; i < caps.length; i += 1) {
      net.last().drop(1006);
      const w = of('state').filter((e) => e.state === 'waiting').pop();
      assert.ok(w.delay >= 0 && w.delay < caps[i], `attempt ${i}: ${w.delay} >= ${caps[i]}`);
      assert.equal(w.delay, Math.floor(r * caps[i]));
      assert.equal(w.code, 1006);
      const before = net.sockets.length;
      clock.advance(w.delay);
      assert.equal(net.sockets.length, before + 1, 'reconnects when the delay is over');
    }
  }
});

test('backoff resets after a stable connection, not after a short one', () => {
  const { client, clock, net, of } = setup({ random: () => 0.999999 });
  client.connect();
  const waits = () => of('state').filter((e) => e.state === 'waiting');
  for (let i = 0; i < 4; i += 1) {  /* four failures: the next cap is 16 s */
    net.last().drop(1006);
    clock.advance(waits().pop().delay);
  }
  welcome(net);
  clock.advance(2000);  /* up, but not for long */
  net.last().drop(1006);
  assert.ok(waits().pop().delay >= 8000, 'a short-lived connection does not reset the backoff');
  clock.advance(waits().pop().delay);
  welcome(net);
  clock.advance(10000);  /* stableMs */
  net.last().drop(1001);
  assert.ok(waits().pop().delay < 1000, `after a stable connection: ${waits().pop().delay}`);
  clock.advance(1000);
  assert.equal(net.last().readyState, 0, 'a new connection is opening');
});

test('no answer to a ping: the connection is given up and reopened', () => {
  const { client, clock, net, of } = setup();
  client.connect();
  const ws = welcome(net);
  clock.advance(25000);
  assert.equal(ws.frames('ping').length, 1);
  clock.advance(9000);
  ws.push({ type: 'pong' });
  clock.advance(25000 + 10000);  /* the next ping is never answered */
  assert.ok(ws.closedBy, 'the client closed the silent socket');
  const w = of('state').filter((e) => e.state === 'waiting').pop();
  assert.equal(w.code, 1006);
});

/* ---- resume --------------------------------------------------------------------------------- */

test('resume: each room rejoins with since = its last id and the epoch of the welcome', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.join('b');
  client.join('empty');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a'), msg(2, 'a')] });
  ws.push({ type: 'joined', room: 'b', history: [msg(5, 'b')] });
  ws.push({ type: 'joined', room: 'empty', history: [] });
  ws.push(msg(3, 'a'));
  ws.push(msg(7, 'b'));
  assert.equal(client.lastId('a'), id(3));
  for (const code of [1001, 4008, 1006]) {
    net.last().drop(code);
    retry();
    ws = welcome(net);
    assert.deepEqual({ since: lastJoin(ws, 'a').since, epoch: lastJoin(ws, 'a').epoch },
                     { since: id(3), epoch: 'e1' }, `after close ${code}`);
    assert.equal(lastJoin(ws, 'b').since, id(7));
    assert.equal(lastJoin(ws, 'empty').since, undefined);
    ws.push({ type: 'joined', room: 'a', history: [], recovered: true });
  }
  const a = of('joined').filter((e) => e.room === 'a').pop();
  assert.equal(a.resumed, true);
  assert.equal(a.recovered, true);
  assert.equal(of('gap').length, 0);
  assert.equal(of('reset').length, 0);
});

test('epoch change: rejoin without since, and the page is told history was reset', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(10, 'a'), msg(11, 'a')] });
  ws.drop(1001);
  retry();
  ws = welcome(net, { ...WELCOME_V2, epoch: 'e2' });
  const join = lastJoin(ws, 'a');
  assert.equal(join.since, undefined);
  assert.equal(join.epoch, undefined);
  assert.deepEqual(of('reset').map(({ room, epoch, previous }) => ({ room, epoch, previous })),
                   [{ room: 'a', epoch: 'e2', previous: 'e1' }]);
  /* ids of the new epoch start over: lower ids are new messages now */
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a'), msg(2, 'a')] });
  assert.deepEqual(ids(of('joined').pop().history), [id(1), id(2)]);
  assert.equal(of('gap').length, 0);
  ws.push(msg(3, 'a'));
  assert.equal(of('message').pop().id, id(3));
});

test('a v1 server (no epoch): rejoin without since and drop what was already emitted', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net, WELCOME_V1);
  assert.equal(client.protocol, 1);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a'), msg(2, 'a')] });
  ws.push(msg(3, 'a'));
  ws.drop(1006);
  retry();
  ws = welcome(net, WELCOME_V1);
  assert.equal(lastJoin(ws, 'a').since, undefined);
  ws.push({ type: 'joined', room: 'a', history: [msg(2, 'a'), msg(3, 'a'), msg(4, 'a')] });
  assert.deepEqual(ids(of('joined').pop().history), [id(4)]);
  assert.equal(of('gap').length, 0, 'the history reaches back to what we had: no gap');
  ws.push(msg(4, 'a'));
  ws.push(msg(5, 'a'));
  assert.deepEqual(ids(of('message')), [id(3), id(5)]);
});

test('a v1 rejoin whose history is all new reports a possible gap', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net, WELCOME_V1);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a')] });
  ws.drop(1006);
  retry();
  ws = welcome(net, WELCOME_V1);
  ws.push({ type: 'joined', room: 'a', history: [msg(60, 'a'), msg(61, 'a')] });
  assert.deepEqual(of('gap').map((g) => [g.room, g.after, g.before, g.certain]),
                   [['a', id(1), id(60), false]]);
});

test('recovered:false emits a gap with the server\'s bounds', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a')] });
  ws.drop(4008);
  retry();
  ws = welcome(net);
  assert.equal(lastJoin(ws, 'a').since, id(1));
  ws.push({ type: 'joined', room: 'a', recovered: false, gap: { after: id(1), before: id(5000) },
            history: [msg(5000, 'a'), msg(5001, 'a')] });
  const joined = of('joined').pop();
  assert.equal(joined.recovered, false);
  assert.deepEqual(ids(joined.history), [id(5000), id(5001)]);
  assert.deepEqual(of('gap').map((g) => [g.room, g.after, g.before, g.certain]),
                   [['a', id(1), id(5000), true]]);
  ws.push(msg(5002, 'a'));
  assert.equal(of('message').pop().id, id(5002));
});

/* ---- de-duplication ------------------------------------------------------------------------- */

test('dedup: a repeated id or an older id after a newer one is never emitted', () => {
  const { client, net, of } = setup();
  client.join('a');
  client.join('b');
  client.connect();
  const ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(2, 'a'), msg(1, 'a'), msg(2, 'a')] });
  assert.deepEqual(ids(of('joined').pop().history), [id(1), id(2)], 'sorted, each id once');
  ws.push({ type: 'joined', room: 'b', history: [] });
  ws.push(msg(2, 'a'));  /* already in history */
  ws.push(msg(3, 'a'));
  ws.push(msg(3, 'a'));  /* repeated */
  ws.push(msg(1, 'a'));  /* older */
  ws.push(msg(4, 'a'));
  ws.push(msg(1, 'b'));  /* another room has its own order */
  ws.push({ type: 'message', id: id(9), room: 'a' });  /* not a message: no text */
  ws.push(msg(5, 'nope'));  /* a room we are not in */
  assert.deepEqual(of('message').map((m) => `${m.room}:${m.id}`),
                   [`a:${id(3)}`, `a:${id(4)}`, `b:${id(1)}`]);
});

test('a resumed join that repeats messages emits only the new ones', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a'), msg(2, 'a')] });
  ws.drop(1001);
  retry();
  ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', recovered: true, history: [msg(2, 'a'), msg(3, 'a')] });
  assert.deepEqual(ids(of('joined').pop().history), [id(3)]);
});

/* ---- sending -------------------------------------------------------------------------------- */

test('send is retried with the same cid after a reconnect, and acked once', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [] });
  const cid = client.send('a', 'hello');
  assert.deepEqual(ws.frames('send'), [{ type: 'send', room: 'a', text: 'hello', cid }]);
  ws.drop(1001);  /* before the ack */
  const queued = client.send('a', 'while away');
  retry();
  ws = welcome(net);
  assert.equal(ws.frames('send').length, 0, 'nothing is sent before the room is joined again');
  ws.push({ type: 'joined', room: 'a', recovered: true, history: [] });
  assert.deepEqual(ws.frames('send').map((f) => [f.cid, f.text]),
                   [[cid, 'hello'], [queued, 'while away']], 'same cids, in send order');
  /* a v2 server answers the resend with the original id; the message itself already went out
   * on the old connection and is not delivered again */
  ws.push({ type: 'ack', cid, id: id(7) });
  ws.push({ type: 'ack', cid, id: id(7) });
  ws.push({ type: 'ack', cid: queued, id: id(8) });
  ws.push(msg(8, 'a', { from: 'alice', cid: queued }));
  assert.deepEqual(of('ack').map(({ cid: c, id: i, room }) => [c, i, room]),
                   [[cid, id(7), 'a'], [queued, id(8), 'a']]);
  ws.drop(1006);
  retry();
  ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', recovered: true, history: [] });
  assert.equal(ws.frames('send').length, 0, 'acked sends are not sent again');
});

test('own message seen before its ack counts as the ack, once', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [] });
  const cid = client.send('a', 'hi');
  ws.push(msg(4, 'a', { from: 'alice', cid }));
  ws.push({ type: 'ack', cid, id: id(4) });
  assert.deepEqual(of('ack').map((e) => e.id), [id(4)]);
  ws.drop(1006);
  retry();
  ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', recovered: true, history: [] });
  assert.equal(ws.frames('send').length, 0);
});

test('v1: a send found in the rejoin history is acked from it, not sent again', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net, WELCOME_V1);
  ws.push({ type: 'joined', room: 'a', history: [msg(1, 'a')] });
  const landed = client.send('a', 'landed');
  const lost = client.send('a', 'lost');
  ws.drop(1006);
  retry();
  ws = welcome(net, WELCOME_V1);
  ws.push({ type: 'joined', room: 'a',
            history: [msg(1, 'a'), msg(2, 'a', { from: 'alice', cid: landed, text: 'landed' })] });
  assert.deepEqual(of('ack').map((e) => [e.cid, e.id]), [[landed, id(2)]]);
  assert.deepEqual(ws.frames('send').map((f) => f.cid), [lost]);
});

test('a refused send is reported with its cid and text and not retried', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [] });
  const cid = client.send('a', 'x'.repeat(5000));
  ws.push({ type: 'error', code: 'text_too_long', message: 'too long', cid });
  const err = of('error').pop();
  assert.deepEqual([err.code, err.request, err.room, err.cid], ['text_too_long', 'send', 'a', cid]);
  ws.drop(1006);
  retry();
  ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', recovered: true, history: [] });
  assert.equal(ws.frames('send').length, 0);
});

/* ---- close codes ---------------------------------------------------------------------------- */

test('4004 (kicked) stops: no reconnect', () => {
  const { client, clock, net, of } = setup();
  client.connect();
  welcome(net).drop(4004, 'kicked');
  clock.advance(10 * 60 * 1000);
  assert.equal(net.sockets.length, 1);
  assert.equal(client.state, 'stopped');
  assert.deepEqual(of('state').map((e) => e.state), ['connecting', 'open', 'stopped']);
  assert.equal(of('state').pop().code, 4004);
});

test('4001/4003 ask getToken for a new token, then reconnect with it', async () => {
  for (const code of [4001, 4003]) {
    const asked = [];
    const { client, net, retry } = setup({
      getToken: async (info) => { asked.push(info.code); return `tok-${asked.length + 1}`; },
    });
    client.connect();
    welcome(net).drop(code, 'token expired');
    assert.equal(client.state, 'auth');
    await flushPromises();
    assert.equal(client.state, 'waiting');
    retry();
    net.last().accept();
    assert.deepEqual(net.last().sent[0], { type: 'auth', token: 'tok-2' });
    assert.deepEqual(asked, [code]);
  }
});

test('a token fresh from getToken that is refused at once stops the client (no loop)', async () => {
  let asked = 0;
  const getToken = async () => { asked += 1; return 'tok-new'; };
  const { client, clock, net, retry } = setup({ getToken });
  client.connect();
  welcome(net).drop(4001);
  await flushPromises();
  retry();
  net.last().accept();
  net.last().drop(4001, 'authentication failed');
  await flushPromises();
  assert.equal(asked, 1);
  assert.equal(client.state, 'stopped');
  clock.advance(60000);
  assert.equal(net.sockets.length, 2);
});

test('4001 without getToken, or getToken giving nothing, stops', async () => {
  const a = setup();
  a.client.connect();
  welcome(a.net).drop(4001);
  assert.equal(a.client.state, 'stopped');
  const b = setup({ getToken: async () => null });
  b.client.connect();
  welcome(b.net).drop(4003);
  await flushPromises();
  assert.equal(b.client.state, 'stopped');
  b.clock.advance(60000);
  assert.equal(b.net.sockets.length, 1);
});

test('close() stops for good', () => {
  const { client, clock, net } = setup();
  client.connect();
  const ws = welcome(net);
  client.close();
  assert.deepEqual(ws.closedBy.code, 1000);
  clock.advance(60000);
  assert.equal(net.sockets.length, 1);
  assert.equal(client.state, 'stopped');
});

/* ---- rooms and history ---------------------------------------------------------------------- */

test('leave: the room is not rejoined after a reconnect; a refused join closes the room', () => {
  const { client, net, of, retry } = setup();
  client.join('a');
  client.join('b');
  client.connect();
  let ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [] });
  client.leave('a');
  assert.deepEqual(ws.frames('leave').map((f) => f.room), ['a']);
  const joinB = lastJoin(ws, 'b');
  ws.push({ type: 'error', code: 'forbidden', message: 'no', cid: joinB.cid });
  assert.deepEqual(of('left').map((e) => e.room), ['a', 'b']);
  assert.equal(of('error').pop().request, 'join');
  ws.drop(1001);
  retry();
  ws = welcome(net);
  assert.equal(ws.frames('join').length, 0);
});

test('history reads go one at a time per room; older() and errors', async () => {
  const { client, net } = setup();
  client.join('a');
  client.connect();
  const ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(100, 'a'), msg(101, 'a')] });
  const p1 = client.older('a', { limit: 2 });
  const p2 = client.history('a', { before: id(50), limit: 10 });
  assert.deepEqual(ws.frames('history').map((f) => [f.before, f.limit]), [[id(100), 2]]);
  ws.push({ type: 'history', room: 'a', messages: [msg(98, 'a'), msg(99, 'a')] });
  assert.deepEqual(await p1.then((r) => [ids(r.messages), r.done]), [[id(98), id(99)], false]);
  const second = ws.frames('history')[1];
  assert.deepEqual([second.before, second.limit], [id(50), 10]);
  ws.push({ type: 'error', code: 'unavailable', message: 'store down', cid: second.cid });
  await assert.rejects(p2, (e) => e.code === 'unavailable');
  const p3 = client.older('a', { limit: 2 });
  assert.equal(ws.frames('history')[2].before, id(98), 'older() pages on from the oldest seen');
  ws.push({ type: 'history', room: 'a', messages: [msg(97, 'a')] });
  assert.equal((await p3).done, true);
  const p4 = client.history('a', {});
  ws.drop(1006);
  await assert.rejects(p4);
});

test('fillGap pages forward with after on v2, and stops at the gap\'s end', async () => {
  const { client, net } = setup();
  client.join('a');
  client.connect();
  const ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [msg(50, 'a')] });
  const gap = { room: 'a', after: id(10), before: id(50), certain: true };
  const p = client.fillGap('a', gap, { limit: 2 });
  await flushPromises();
  let h = ws.frames('history').pop();
  assert.deepEqual([h.after, h.before, h.limit], [id(10), undefined, 2]);
  ws.push({ type: 'history', room: 'a', messages: [msg(20, 'a'), msg(30, 'a')] });
  await flushPromises();
  h = ws.frames('history').pop();
  assert.equal(h.after, id(30));
  ws.push({ type: 'history', room: 'a', messages: [msg(40, 'a'), msg(50, 'a')] });
  const r = await p;
  assert.deepEqual(ids(r.messages), [id(20), id(30), id(40)]);
  assert.equal(r.gap, null);
});

test('fillGap pages backward with before on v1, and leaves what exceeds max', async () => {
  const { client, net } = setup();
  client.join('a');
  client.connect();
  const ws = welcome(net, WELCOME_V1);
  ws.push({ type: 'joined', room: 'a', history: [msg(50, 'a')] });
  const p = client.fillGap('a', { room: 'a', after: id(10), before: id(50) }, { limit: 2, max: 2 });
  await flushPromises();
  assert.equal(ws.frames('history').pop().before, id(50));
  ws.push({ type: 'history', room: 'a', messages: [msg(30, 'a'), msg(40, 'a')] });
  const r = await p;
  assert.deepEqual(ids(r.messages), [id(30), id(40)]);
  assert.deepEqual([r.gap.after, r.gap.before], [id(10), id(30)]);
});

test('a handler that throws does not break the client', () => {
  const { client, clock, net, of } = setup();
  client.on('message', () => { throw new Error('page bug'); });
  client.join('a');
  client.connect();
  const ws = welcome(net);
  ws.push({ type: 'joined', room: 'a', history: [] });
  ws.push(msg(1, 'a'));
  ws.push(msg(2, 'a'));
  assert.deepEqual(ids(of('message')), [id(1), id(2)]);
  assert.throws(() => clock.advance(1), /page bug/);
});

test('refreshes the token before it expires, on the open connection', async () => {
  const asked = [];
  const clock0 = { t: 0 };
  const { client, clock, net } = setup({
    refreshBeforeS: 60, pingMs: 1e9,
    now: () => clock0.t + clock.now,
    getToken: async (why) => { asked.push(why.code); return `tok-${asked.length + 1}`; },
  });
  clock0.t = 1_000_000 * 1000; /* the clock's epoch: 1,000,000 s */
  client.connect();
  const ws = welcome(net, { ...WELCOME_V2, exp: 1_000_000 + 600 });
  const refreshed = [];
  client.on('refreshed', (e) => refreshed.push(e));
  clock.advance(539 * 1000);
  assert.deepEqual(asked, []);
  clock.advance(2 * 1000);  /* 60 s before exp */
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(asked, ['refresh']);
  const [r] = ws.frames('refresh');
  assert.equal(r.token, 'tok-2');
  ws.push({ type: 'refreshed', exp: 1_000_000 + 4000 });
  assert.deepEqual(refreshed, [{ exp: 1_000_000 + 4000 }]);
  assert.equal(client.exp, 1_000_000 + 4000);
  assert.equal(ws.closedBy, null);
  /* a reconnect now signs in with the new token */
  ws.drop(1001, 'going away');
  clock.advance(60 * 1000);
  net.last().accept();
  assert.equal(net.last().frames('auth')[0].token, 'tok-2');
});

test('no refresh against a v1 server or without getToken', () => {
  const { client, clock, net } = setup({ getToken: undefined });
  client.connect();
  const ws = welcome(net, { ...WELCOME_V2, exp: 100 });
  clock.advance(200 * 1000);
  assert.deepEqual(ws.frames('refresh'), []);
});
