"""The delivery path (docs/protocol.md, "Positions and resume"): exact join history whatever the
store's lag, resume after a disconnect on another gateway and after a gateway crash, resume from
beyond a gateway's room log, slow readers that catch up or are closed with 4008 and resume,
retries that never duplicate, and a join storm that costs one store read.

Some tests start an extra gateway with a tiny room log (CHAT_LOG_BYTES) so that its log cannot
cover what they ask and the store path runs."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from chat_e2e import (connect_on, extra_gateway, http_get, metrics, run, unique, wait_persisted,
                      wait_readyz)

SMALL_LOG = "65536"  # bytes: the smallest room log a gateway accepts


def ids_of(msgs):
    return [m["id"] for m in msgs]


async def send_all(client, room, n, prefix, size=20, rate=150):
    """Sends n messages with cids prefix-k, paced below the test cluster's rate limit (200/s);
    returns the cids."""
    cids = [f"{prefix}-{k}" for k in range(n)]
    t0 = time.monotonic()
    for k, cid in enumerate(cids):
        if rate:
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await client.say(room, f"{cid} " + "x" * size, cid)
    return cids


async def flood_small_logs(writer):
    """200 messages of 800 bytes in a room of their own: more than a SMALL_LOG gateway holds,
    so what came before is only in the store."""
    flood = unique("flood")
    await writer.join(flood)
    cids = await send_all(writer, flood, 200, "fl", size=800)
    await writer.wait_acks(cids, timeout=60)


def acked_ids(client, cids):
    return [client.acks[c]["id"] for c in cids]


def assert_stream(got, expected, what):
    """got must be exactly expected: same ids, same order, nothing twice."""
    assert len(got) == len(set(got)), f"{what}: {len(got) - len(set(got))} repeated ids"
    missing = [i for i in expected if i not in set(got)]
    extra = [i for i in got if i not in set(expected)]
    assert not missing and not extra, (f"{what}: {len(missing)} missing (first {missing[:3]}), "
                                       f"{len(extra)} unexpected (first {extra[:3]})")
    assert got == expected, f"{what}: out of order"


def test_join_after_burst_is_exact(cluster):
    """joined.history is exactly the last 50 acked messages right after a burst of 200, however
    far the persister lags; then every later message arrives once."""
    room = unique("burst")

    async def main(net):
        sender = await net.connect(unique("burster"))
        await sender.join(room)
        cids = await send_all(sender, room, 200, "b")
        await sender.wait_acks(cids, timeout=30)
        ids = sorted(acked_ids(sender, cids))
        joiner = await net.connect(unique("joiner"))
        hist = await joiner.join(room)
        assert ids_of(hist) == ids[-50:], "join right after a burst is not the last 50 acked"
        joined = await joiner.join_frame(unique("other"), limit=200)
        assert joined["history"] == []
        page = await joiner.join_frame(room, limit=120)
        assert ids_of(page["history"]) == ids[-120:]
        await sender.say(room, "after", "after")
        await joiner.expect(lambda f: f.get("type") == "message" and f.get("cid") == "after",
                            "the message after the join")
        await joiner.ping()
        later = [m for m in joiner.by_room[room] if m["cid"] == "after"]
        assert len(later) == 1, f"the message after the join came {len(later)} times"
        assert all(m["id"] > ids[-1] for m in joiner.by_room[room]), "a repeat after history"

    run(main, cluster, timeout=90)


async def _resume_during_stream(cluster, net, room, drop):
    """Two senders stream 500 messages; a reader on gw-2 reads part of them, is cut off by
    drop(reader), reconnects to gw-1 and resumes with since. Returns
    (what the reader saw overall, every acked id, the resume's joined frame)."""
    senders = [await connect_on(net, "gw-1", unique(f"snd{i}")) for i in range(2)]
    reader = await connect_on(net, "gw-2", unique("reader"))
    for c in senders + [reader]:
        await c.join(room)
    per = 250
    stream = asyncio.gather(*(send_all(s, room, per, f"s{i}", rate=100)
                              for i, s in enumerate(senders)))
    await reader.wait_messages(room, 60, timeout=30)
    await drop(reader)
    seen = ids_of(reader.by_room[room])
    user = reader.welcome["user"]
    again = await net.connect(user, url=cluster.gateway_ws_url(0), name="reader again")
    assert again.gateway == "gw-1", f"the reconnect landed on {again.gateway}"
    joined = await again.resume(room, seen[-1])
    cid_lists = await stream
    for s, cids in zip(senders, cid_lists):
        await s.wait_acks(cids, timeout=30)
    all_ids = sorted(i for s, cids in zip(senders, cid_lists) for i in acked_ids(s, cids))
    live_needed = len(all_ids) - len(seen) - len(joined["history"])
    await again.wait_messages(room, live_needed, timeout=30)
    await again.ping()
    total = seen + ids_of(joined["history"]) + ids_of(again.by_room[room])
    return total, all_ids, joined


def test_resume_on_the_other_gateway(cluster):
    room = unique("resume")

    async def main(net):
        async def drop(c):
            await c.close()

        total, all_ids, joined = await _resume_during_stream(cluster, net, room, drop)
        assert joined.get("recovered") is True, f"resume not recovered: {joined}"
        assert "gap" not in joined
        assert_stream(total, all_ids, "reader across the reconnect")

    run(main, cluster, timeout=120)


@pytest.mark.late(6)
def test_resume_after_gateway_sigkill(cluster):
    room = unique("crash")

    async def main(net):
        async def drop(c):
            await asyncio.to_thread(cluster.script, "kill", "gateway-2", timeout=60)
            await c.wait_closed(timeout=15)

        try:
            total, all_ids, joined = await _resume_during_stream(cluster, net, room, drop)
        finally:
            await asyncio.to_thread(cluster.script, "start", "gateway-2", timeout=120)
        assert joined.get("recovered") is True, f"resume not recovered: {joined}"
        assert_stream(total, all_ids, "reader across the gateway crash")

    run(main, cluster, timeout=240)


def test_resume_edge_cases(cluster):
    """A since of another epoch or another room's partition recovers nothing; the answer is
    the latest page and a gap. history pages forward with after."""
    room = unique("edges")

    async def main(net):
        c = await net.connect(unique("edge"))
        welcome = c.welcome
        assert welcome.get("protocol") == 2
        assert isinstance(welcome.get("epoch"), str) and welcome["epoch"]
        assert isinstance(welcome.get("exp"), int) and welcome["exp"] > time.time()
        await c.join(room)
        cids = await send_all(c, room, 30, "e")
        await c.wait_acks(cids)
        ids = sorted(acked_ids(c, cids))
        await c.wait_messages(room, 30)
        other = await net.connect(unique("edge2"))
        j = await other.join_frame(room, since=ids[4], epoch="not-this-one", limit=10)
        assert j["recovered"] is False
        assert ids_of(j["history"]) == ids[-10:]
        assert j["gap"] == {"after": ids[4], "before": ids[-10]}
        # a since that is newer than everything: recovered, nothing to add
        await other.leave(room)
        j = await other.resume(room, ids[-1])
        assert j["recovered"] is True and j["history"] == []
        # recovered resume: exactly what came after since
        await other.leave(room)
        j = await other.resume(room, ids[9])
        assert j["recovered"] is True and ids_of(j["history"]) == ids[10:]
        # forward and backward pages
        fwd = await other.history(room, after=ids[4], limit=5)
        assert ids_of(fwd) == ids[5:10]
        both = await other.history(room, after=ids[4], before=ids[8])
        assert ids_of(both) == ids[5:8]
        back = await other.history(room, before=ids[20], limit=5)
        assert ids_of(back) == ids[15:20]
        await other.send({"type": "history", "room": room, "after": ids[8], "before": ids[4],
                          "cid": "h"})
        await other.expect_error("invalid_field", "h", after="after >= before")
        await other.send({"type": "join", "room": room, "since": "nope", "cid": "j"})
        await other.expect_error("invalid_field", "j", after="join with a bad since")

    run(main, cluster, timeout=60)


def test_retries_never_duplicate(cluster):
    """A send whose cid the user already used in the room gets the first ack's id, on either
    gateway, and the room holds it once."""
    room = unique("retry")

    async def main(net):
        user = unique("retrier")
        a = await connect_on(net, "gw-1", user)
        await a.join(room)
        # twice at once on one gateway: the second waits for the first's ack
        await a.say(room, "once", "c1")
        await a.say(room, "once", "c1")
        await a.expect(lambda f: f.get("type") == "ack" and f.get("cid") == "c1", "first ack")
        await a.expect(lambda f: f.get("type") == "ack" and f.get("cid") == "c1", "second ack")
        acks = [f for f in a.frames if f.get("type") == "ack" and f.get("cid") == "c1"]
        assert len({f["id"] for f in acks}) == 1, f"two ids for one cid: {acks}"
        first = acks[0]["id"]
        await a.wait_messages(room, 1)
        # later, on the other gateway
        b = await connect_on(net, "gw-2", user)
        await b.join(room)
        await b.say(room, "once", "c1")
        ack = await b.expect(lambda f: f.get("type") == "ack", "the retry's ack")
        assert ack["id"] == first, f"the retry on gw-2 got {ack['id']}, the original was {first}"
        # another user's same cid is another message
        c = await net.connect(unique("other"))
        await c.join(room)
        await c.say(room, "mine", "c1")
        other = await c.expect(lambda f: f.get("type") == "ack", "another user's ack")
        assert other["id"] != first
        await a.wait_messages(room, 2)
        await a.ping()
        assert [m["cid"] for m in a.by_room[room]] == ["c1", "c1"]
        assert len({m["from"] for m in a.by_room[room]}) == 2

    run(main, cluster, timeout=60)
    docs = wait_persisted(cluster, room, 2)
    assert len(docs) == 2


@pytest.mark.late(8)
def test_resume_beyond_the_log(cluster):
    """A gateway whose room log no longer holds what a client missed answers its resume from
    the store: recovered, exactly the missed messages."""
    room = unique("beyond")

    with extra_gateway(cluster, "gw-small", CHAT_LOG_BYTES=SMALL_LOG, CHAT_LOG_WARM="0") as port:
        async def main(net):
            writer = await net.connect(unique("writer"))
            await writer.join(room)
            first = await send_all(writer, room, 10, "early")
            await writer.wait_acks(first)
            seen = sorted(acked_ids(writer, first))
            missed = await send_all(writer, room, 300, "missed", size=400)
            await writer.wait_acks(missed, timeout=60)
            missed_ids = sorted(acked_ids(writer, missed))
            await flood_small_logs(writer)
            await asyncio.to_thread(wait_persisted, cluster, room, 310, 120)
            m = await asyncio.to_thread(metrics, port)
            assert m["chat_gateway_room_log_evicted_total"] > 0
            c = await net.connect(writer.welcome["user"], url=f"ws://127.0.0.1:{port}/ws",
                                  name="resumer@small")
            reads0 = (await asyncio.to_thread(metrics, port))["chat_gateway_store_reads_total"]
            j = await c.resume(room, seen[-1], timeout=30)
            reads1 = (await asyncio.to_thread(metrics, port))["chat_gateway_store_reads_total"]
            assert reads1 - reads0 >= 1, "the resume was not served from the store"
            assert j["recovered"] is True, f"not recovered: {json.dumps(j)[:300]}"
            assert_stream(ids_of(j["history"]), missed_ids, "resume from the store")

        run(main, cluster, timeout=240)


@pytest.mark.late(8)
def test_join_storm_one_store_read(cluster):
    """Many clients join a room that the gateway's log no longer holds, at once: one store read
    answers all of them, each with the exact history."""
    room = unique("storm")
    n = int(os.environ.get("CHAT_E2E_STORM", "1000"))

    # the whole crowd shares one token: no per-user connection limit on this gateway
    with extra_gateway(cluster, "gw-storm", port_index=2, CHAT_LOG_BYTES=SMALL_LOG,
                       CHAT_LOG_WARM="0", CHAT_RATE="1000", CHAT_RATE_BURST="1000",
                       CHAT_MAX_USER_CONNS="0") as port:
        async def main(net):
            writer = await net.connect(unique("stormer"))
            await writer.join(room)
            cids = await send_all(writer, room, 30, "st")
            await writer.wait_acks(cids)
            ids = sorted(acked_ids(writer, cids))
            await flood_small_logs(writer)
            await asyncio.to_thread(wait_persisted, cluster, room, 30, 120)
            url = f"ws://127.0.0.1:{port}/ws"
            token = cluster.token(unique("crowd"))

            async def one(k):
                ws = await websockets.connect(url, additional_headers={
                    "Authorization": f"Bearer {token}"}, open_timeout=60, ping_interval=None,
                    compression=None, proxy=None, max_size=2**22)
                return ws

            sockets = []
            for chunk in range(0, n, 200):
                sockets += await asyncio.gather(*(one(k) for k in range(chunk, min(n, chunk + 200))))
            for ws in sockets:
                assert json.loads(await ws.recv())["type"] == "welcome"
            before = await asyncio.to_thread(metrics, port)
            t0 = time.monotonic()
            await asyncio.gather(*(ws.send(json.dumps({"type": "join", "room": room}))
                                   for ws in sockets))

            async def joined(ws):
                while True:
                    fr = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if fr["type"] == "joined":
                        return fr

            answers = await asyncio.gather(*(joined(ws) for ws in sockets))
            took = time.monotonic() - t0
            after = await asyncio.to_thread(metrics, port)
            reads = after["chat_gateway_store_reads_total"] - before["chat_gateway_store_reads_total"]
            print(f"join storm: {n} clients joined in {took:.2f}s with {reads:.0f} store read(s)")
            for a in answers:
                assert ids_of(a["history"]) == ids, "a joiner got another history"
            assert reads == 1, f"{reads} store reads for one room's join storm"
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

        run(main, cluster, timeout=300)


@pytest.mark.late(9)  # leaves a few MB of messages in MongoDB
def test_slow_reader_catches_up(cluster):
    """A client that stops reading while 2,000 messages flow is not dropped while the room log
    holds what it is owed: when it reads again it gets all of them, in order."""
    room = unique("slow")
    total = 2000

    async def main(net):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", cluster.gateway_ports[0]))
        sock.setblocking(False)
        token = cluster.token(unique("slowpoke"))
        ws = await websockets.connect(
            cluster.gateway_ws_url(0), sock=sock, compression=None, max_queue=1,
            ping_interval=None, close_timeout=5, open_timeout=10, proxy=None,
            additional_headers={"Authorization": f"Bearer {token}"})
        try:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
            await ws.send(json.dumps({"type": "join", "room": room}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "joined"
            senders = [await net.connect(unique(f"fast{i}")) for i in range(2)]
            for s in senders:
                await s.join(room)
            cid_lists = await asyncio.gather(*(send_all(s, room, total // 2, f"f{i}", size=1000,
                                                        rate=min(200, cluster.rate * 0.8))
                                               for i, s in enumerate(senders)))
            for s, cids in zip(senders, cid_lists):
                await s.wait_acks(cids, timeout=60)
            expected = sorted(i for s, c in zip(senders, cid_lists) for i in acked_ids(s, c))
            got = []
            while len(got) < total:
                fr = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if fr["type"] == "message":
                    got.append(fr["id"])
            assert_stream(got, expected, "the slow reader")
        finally:
            await ws.close()

    run(main, cluster, timeout=180)


@pytest.mark.late(9)
def test_slow_reader_falls_off_the_log_4008_then_resumes(cluster):
    """On a gateway with a tiny room log, a reader that stops reading falls off the log and is
    closed with 4008; it resumes with since and, paging forward over any gap, misses nothing."""
    room = unique("falloff")
    total = 1500  # 6 MB: more than the kernel's socket buffers on both sides hold

    with extra_gateway(cluster, "gw-tiny", port_index=3, CHAT_LOG_BYTES=SMALL_LOG,
                       CHAT_LOG_WARM="0") as port:
        async def main(net):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.setblocking(False)
            user = unique("falling")
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/ws", sock=sock, compression=None, max_queue=1,
                ping_interval=None, close_timeout=5, open_timeout=10, proxy=None,
                additional_headers={"Authorization": f"Bearer {cluster.token(user)}"})
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
            await ws.send(json.dumps({"type": "join", "room": room}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "joined"
            sender = await net.connect(unique("flooder"))
            await sender.join(room)
            cids = await send_all(sender, room, total, "z", size=4000)
            await sender.wait_acks(cids, timeout=60)
            expected = sorted(acked_ids(sender, cids))
            got, code = [], None
            try:
                while True:
                    fr = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if fr["type"] == "message":
                        got.append(fr["id"])
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            assert code == 4008, f"closed with {code} after {len(got)} messages, expected 4008"
            assert len(got) < total
            assert got == expected[:len(got)], "what arrived before 4008 is not a prefix"
            again = await net.connect(user, name="resumed")
            j = await again.resume(room, got[-1] if got else expected[0], limit=50)
            have = got + ids_of(j["history"])
            if not j["recovered"]:
                gap = j["gap"]
                assert gap["after"] == (got[-1] if got else expected[0])
                assert gap["before"] == j["history"][0]["id"]
                filled, after = [], gap["after"]
                while True:
                    page = await again.history(room, after=after, before=gap["before"], limit=200)
                    if not page:
                        break
                    filled += ids_of(page)
                    after = page[-1]["id"]
                have = got + filled + ids_of(j["history"])
            if not got:
                have = [expected[0]] + have
            assert_stream(have, expected, "4008 then resume")

        run(main, cluster, timeout=240)


@pytest.mark.late(8)
def test_store_flood_leaves_the_gateway_useful(cluster):
    """Clients that flood a gateway with joins that need the store get `unavailable` beyond a few
    outstanding reads each; a bystander's join meanwhile is answered, and once the flooders are
    gone the gateway answers joins at once (their queued reads were dropped, not run)."""
    flooders, joins_each = 30, 40

    async def seed(net):
        # a record in (nearly) every partition, so that a gateway started now reads none of
        # them from the beginning: every join of a new room needs the store
        w = await net.connect(unique("seeder"))
        rooms = [unique(f"seed{k}") for k in range(60)]
        for r in rooms:
            await w.join(r)
        cids = []
        for r in rooms:
            cids += await send_all(w, r, 1, r)
        await w.wait_acks(cids, timeout=30)

    run(seed, cluster, timeout=60)
    with extra_gateway(cluster, "gw-flood", port_index=4, CHAT_LOG_WARM="0") as port:
        url = f"ws://127.0.0.1:{port}/ws"

        async def main(net):
            crowd = [await net.connect(unique(f"flood{i}"), url=url, name=f"flood{i}")
                     for i in range(flooders)]
            reads0 = (await asyncio.to_thread(metrics, port))["chat_gateway_store_reads_total"]
            for i, c in enumerate(crowd):
                for k in range(joins_each):
                    await c.send({"type": "join", "room": unique(f"fl{i}-{k}")})
            bystander = await net.connect(unique("bystander"), url=url, name="bystander")
            t0 = time.monotonic()
            await bystander.join(unique("calm"), timeout=20)
            took = time.monotonic() - t0
            busy = 0
            for c in crowd:
                await c.send({"type": "ping"})
                await c.expect(lambda f: f.get("type") == "pong", "pong after the flood", 30)
                busy += sum(1 for f in c.frames
                            if f.get("type") == "error" and f.get("code") == "unavailable")
            reads = (await asyncio.to_thread(metrics, port))["chat_gateway_store_reads_total"]
            print(f"store flood: bystander joined in {took:.2f}s; flooders got {busy} "
                  f"unavailable of {flooders * joins_each} joins; {reads - reads0:.0f} store reads")
            assert reads - reads0 > 0, "the flood's joins did not need the store"
            assert busy > 0, "no join of the flood was refused: the per-connection bound is off"
            r = http_get(port, "/readyz")
            assert r.status in (200, 503), r.status
            for c in crowd:
                await c.close()
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            late = await net.connect(unique("late"), url=url, name="late")
            await late.join(unique("after"), timeout=10)
            after = time.monotonic() - t0
            assert after < 5, f"a join after the flood took {after:.1f}s"
            wait_readyz(port, 200, timeout=30)

        run(main, cluster, timeout=180)
