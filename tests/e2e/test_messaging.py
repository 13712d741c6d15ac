"""Messaging through HAProxy across both gateways: fan-out and acks, ordering and exactly-once
delivery of 1,000 messages from several senders, persistence in MongoDB, history on join and
paging with `before`, leave."""

from __future__ import annotations

import asyncio
import re
import time

from chat_e2e import connect_on, run, ts_ms, unique, wait_persisted

ID_RE = re.compile(r"^\d{4}-\d{20}$")
MESSAGE_KEYS = ("id", "room", "from", "text", "ts", "cid")


def check_message(m: dict, room: str) -> None:
    assert m.get("type") == "message", m
    assert all(k in m for k in MESSAGE_KEYS), f"message lacks fields: {m}"
    assert m["room"] == room, m
    assert isinstance(m["id"], str) and ID_RE.match(m["id"]), f"bad message id: {m}"
    assert isinstance(m["ts"], int) and abs(m["ts"] / 1000 - time.time()) < 600, f"bad ts: {m}"


def pace_interval(cluster, senders_per_conn_share: float = 0.5) -> float:
    """Seconds between sends that keep one connection well below its rate limit."""
    return 1.0 / min(100.0, cluster.rate * senders_per_conn_share)


def test_two_gateways_fan_out_and_ack(cluster):
    room = unique("pair")

    async def main(net):
        a = await connect_on(net, "gw-1", unique("alice"))
        b = await connect_on(net, "gw-2", unique("bob"))
        assert a.gateway != b.gateway
        for c in (a, b):
            hist = await c.join(room)
            assert hist == [], f"fresh room {room} has history {hist}"

        sent = []  # (client, cid, text)
        for i in range(5):
            for c in (a, b):
                cid = f"{c.welcome['user']}-{i}"
                text = f"hello {i} from {c.name} ✓"
                await c.say(room, text, cid)
                sent.append((c, cid, text))
        for c in (a, b):
            await c.wait_messages(room, len(sent), timeout=20)
            await c.wait_acks([cid for (s, cid, _) in sent if s is c], timeout=20)

        ma, mb = a.by_room[room], b.by_room[room]
        assert [m["id"] for m in ma] == [m["id"] for m in mb], "the two members saw different orders"
        assert ma == mb, "the two members got different message contents"
        assert len({m["id"] for m in ma}) == len(sent), "duplicate ids"
        assert [m["id"] for m in ma] == sorted(m["id"] for m in ma), "ids do not sort in room order"
        by_cid = {m["cid"]: m for m in ma}
        assert set(by_cid) == {cid for (_, cid, _) in sent}
        for s, cid, text in sent:
            m = by_cid[cid]
            check_message(m, room)
            assert m["from"] == s.welcome["user"] and m["text"] == text, m
            ack = s.acks[cid]
            assert ack.get("id") == m["id"], f"ack {ack} does not match the delivered message {m}"
        # each sender's own messages arrive in its send order
        for c in (a, b):
            own = [m["cid"] for m in ma if m["from"] == c.welcome["user"]]
            assert own == [cid for (s, cid, _) in sent if s is c], f"{c.name} order {own}"

        # after leave, the room's messages no longer reach b; a still gets them
        await b.leave(room)
        await a.say(room, "after leave", "after-leave")
        await a.wait_acks(["after-leave"])
        await a.wait_messages(room, len(sent) + 1)
        await b.ping()
        await asyncio.sleep(0.5)
        assert len(b.by_room[room]) == len(sent), "a message reached a member that had left"

    run(main, cluster, timeout=90)


def test_thousand_messages_order_and_persistence(cluster):
    room = unique("bulk")
    n_senders, per_sender = 4, 250
    total = n_senders * per_sender
    interval = pace_interval(cluster)

    async def main(net):
        senders = []
        for i in range(n_senders):
            senders.append(await connect_on(net, f"gw-{i % 2 + 1}", f"snd{i}-{unique('u')}"[:32]))
        receivers = [await connect_on(net, f"gw-{i + 1}", f"rcv{i}-{unique('u')}"[:32])
                     for i in range(2)]
        members = senders + receivers
        for c in members:
            assert await c.join(room) == []

        plan = {s: [(f"{s.welcome['user']}:{k}", f"msg {k} from {s.welcome['user']}")
                    for k in range(per_sender)] for s in senders}

        async def blast(s):
            t0 = time.monotonic()
            for k, (cid, text) in enumerate(plan[s]):
                delay = t0 + k * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await s.say(room, text, cid)

        await asyncio.gather(*(blast(s) for s in senders))
        await asyncio.gather(*(s.wait_acks([cid for cid, _ in plan[s]], timeout=60)
                               for s in senders))
        await asyncio.gather(*(c.wait_messages(room, total, timeout=60) for c in members))
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
        for c in members:
            errors = [f for f in c.frames if f.get("type") == "error"]
            assert not errors, f"{c.name} got errors: {errors[:3]}"
        return senders, members, plan

    senders, members, plan = run(main, cluster, timeout=150)

    ref = members[0].by_room[room]
    ref_ids = [m["id"] for m in ref]
    assert len(ref_ids) == total, f"{members[0].name} got {len(ref_ids)} messages, expected {total}"
    assert len(set(ref_ids)) == total, "a message was delivered twice"
    assert ref_ids == sorted(ref_ids), "delivery order is not the order of the message ids"
    for c in members[1:]:
        got = [m["id"] for m in c.by_room[room]]
        assert len(got) == total, f"{c.name} got {len(got)} messages, expected {total}"
        assert got == ref_ids, f"{c.name} saw a different order than {members[0].name}"
        assert c.by_room[room] == ref, f"{c.name} saw different message contents"

    by_cid = {m["cid"]: m for m in ref}
    for s in senders:
        user = s.welcome["user"]
        own = [m["cid"] for m in ref if m["from"] == user]
        assert own == [cid for cid, _ in plan[s]], f"{user}'s messages not in send order"
        for cid, text in plan[s]:
            m = by_cid[cid]
            check_message(m, room)
            assert m["text"] == text and m["from"] == user, m
            assert s.acks[cid]["id"] == m["id"], f"ack {s.acks[cid]} vs message {m}"

    docs = wait_persisted(cluster, room, total, timeout=90)
    by_id = {m["id"]: m for m in ref}
    assert {d["_id"] for d in docs} == set(by_id), "MongoDB holds other ids than were delivered"
    for d in docs:
        m = by_id[d["_id"]]
        assert d["room"] == room and d["from"] == m["from"] and d["text"] == m["text"], (d, m)
        assert d.get("cid") == m["cid"], (d, m)
        assert ts_ms(d["ts"]) == m["ts"], f"ts differs: stored {d['ts']} vs delivered {m['ts']}"


def test_history_on_join_and_paging(cluster):
    room = unique("hist")
    total = 120
    interval = pace_interval(cluster)

    async def send_all(net):
        s = await net.connect(unique("writer"), name="writer")
        await s.join(room)
        cids = [f"h{k:03d}" for k in range(total)]
        t0 = time.monotonic()
        for k, cid in enumerate(cids):
            delay = t0 + k * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await s.say(room, f"history line {k} ünïcödé 🎉 \"quoted\" \\ back\nslash </script>", cid)
        await s.wait_acks(cids, timeout=60)
        await s.wait_messages(room, total, timeout=60)
        return list(s.by_room[room])

    sent = run(send_all, cluster, timeout=90)
    ids = [m["id"] for m in sent]
    assert ids == sorted(ids)
    wait_persisted(cluster, room, total, timeout=90)

    def strip(msgs):
        return [{k: m.get(k) for k in MESSAGE_KEYS} for m in msgs]

    async def read_back(net):
        r = await net.connect(unique("reader"), name="reader")
        joined = await r.join(room)
        assert strip(joined) == strip(sent[-50:]), (
            f"join history: {len(joined)} messages, first {joined[:1]}, expected the last 50")
        page2 = await r.history(room, before=joined[0]["id"])
        assert strip(page2) == strip(sent[20:70]), f"page 2: {len(page2)} messages {page2[:1]}"
        page3 = await r.history(room, before=page2[0]["id"])
        assert strip(page3) == strip(sent[:20]), f"page 3: {len(page3)} messages {page3[:1]}"
        page4 = await r.history(room, before=page3[0]["id"])
        assert page4 == [], f"page 4 should be empty: {page4[:2]}"
        # limit and the newest page without `before`
        small = await r.history(room, before=sent[100]["id"], limit=7)
        assert strip(small) == strip(sent[93:100]), f"limit 7: {small}"
        latest = await r.history(room, limit=100)
        assert strip(latest) == strip(sent[20:]), f"latest 100: {len(latest)}"
        # another room's history is not mixed in
        other = unique("hist-other")
        assert await r.join(other) == []

    run(read_back, cluster, timeout=60)


def test_join_twice_delivers_once(cluster):
    """Joining a room already joined answers joined again and does not double the delivery."""
    room = unique("twice")

    async def main(net):
        a = await net.connect(unique("twice-a"), name="a")
        b = await net.connect(unique("twice-b"), name="b")
        await a.join(room)
        await b.join(room)
        await b.say(room, "one", "one")
        await a.wait_messages(room, 1)
        assert await a.join(room) is not None  # joined again
        for k in range(3):
            await b.say(room, f"after rejoin {k}", f"re{k}")
        await b.wait_acks(["one", "re0", "re1", "re2"])
        await b.wait_messages(room, 4)
        await a.wait_messages(room, 4)
        await a.ping()
        await asyncio.sleep(0.5)
        cids = [m["cid"] for m in a.by_room[room]]
        assert cids == ["one", "re0", "re1", "re2"], f"a got {cids}"
        # one leave is enough to stop delivery
        await a.leave(room)
        await b.say(room, "after leave", "gone")
        await b.wait_messages(room, 5)
        await a.ping()
        await asyncio.sleep(0.5)
        assert len(a.by_room[room]) == 4, [m["cid"] for m in a.by_room[room]]

    run(main, cluster, timeout=60)


def test_join_during_stream_no_gap_no_repeat(cluster):
    """Joined means subscribed without gaps: a join answered while messages stream in gives
    history + live messages that are exactly a contiguous tail of the room's stream (nothing
    lost between history and live traffic, nothing repeated, no live message before joined)."""
    room = unique("stream")
    prefill, streamed = 30, 250
    interval = pace_interval(cluster)

    async def main(net):
        s = await net.connect(unique("streamer"), name="streamer")
        await s.join(room)
        for k in range(prefill):
            await s.say(room, f"before {k}", f"p{k}")
        await s.wait_acks([f"p{k}" for k in range(prefill)])
        await asyncio.to_thread(wait_persisted, cluster, room, prefill, 60)

        joiners = [await net.connect(unique(f"j{i}"), name=f"joiner{i}") for i in range(6)]

        async def stream():
            t0 = time.monotonic()
            for k in range(streamed):
                delay = t0 + k * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await s.say(room, f"live {k}", f"l{k}")

        async def join_later(j, at):
            await asyncio.sleep(at)
            await j.send({"type": "join", "room": room})
            return await j.expect(lambda f: f.get("type") == "joined", f"{j.name} joined", 30)

        span = streamed * interval
        results = await asyncio.gather(
            stream(), *(join_later(j, span * (0.1 + 0.14 * i)) for i, j in enumerate(joiners)))
        await s.wait_acks([f"l{k}" for k in range(streamed)], timeout=30)
        all_ids = [m["id"] for m in await s.wait_messages(room, prefill + streamed, timeout=30)]
        last = all_ids[-1]
        problems = []
        for j, joined in zip(joiners, results[1:]):
            await j._wait_until(lambda: j.by_room[room] and j.by_room[room][-1]["id"] == last,
                                30, f"{j.name}: the stream's last message")
            # no live message of the room before joined
            pos = next(i for i, f in enumerate(j.frames) if f.get("type") == "joined")
            early = [f for f in j.frames[:pos] if f.get("type") == "message"]
            if early:
                problems.append(f"{j.name}: live messages before joined: {early[:2]}")
            hist = [m["id"] for m in joined["history"]]
            live = [m["id"] for m in j.by_room[room]]
            combined = hist + live
            if len(set(combined)) != len(combined):
                problems.append(f"{j.name}: repeated ids between history and live "
                                f"({len(hist)} + {len(live)})")
            start = all_ids.index(combined[0])
            expected = all_ids[start:]
            if combined != expected:
                missing = sorted(set(expected) - set(combined))
                problems.append(
                    f"{j.name}: history ({len(hist)}, last {hist[-1:]}) + live ({len(live)}, "
                    f"first {live[:1]}) is not a contiguous tail of the stream: "
                    f"{len(missing)} missing: {missing[:5]}")
            if not (len(hist) <= 50 and (start == 0 or len(hist) == 50)):
                problems.append(f"{j.name}: history of {len(hist)} messages while {start} "
                                f"older ones exist")
        assert not problems, "\n".join(problems)

    run(main, cluster, timeout=120)
