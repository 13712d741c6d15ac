"""Direct messages through HAProxy with clients on both gateways: every message of dm:<a>:<b>
reaches every connection of both users, joined to the room or not, exactly once and in order
(also after a later join), and is stored; a third user is refused with `forbidden` on every path
(join, send, history, history around a real id) and stays connected; a user id that cannot have
direct rooms gets `invalid_user`."""

from __future__ import annotations

import asyncio

from chat_e2e import connect_on, run, unique, wait_persisted


def dm_of(u: str, v: str) -> str:
    a, b = sorted([u, v], key=lambda s: s.encode())
    return f"dm:{a}:{b}"


def test_dm_reaches_every_connection_of_both_users(cluster):
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    room = dm_of(alice, bob)

    async def main(net):
        a1 = await connect_on(net, "gw-1", alice)
        a2 = await connect_on(net, "gw-2", alice)
        b1 = await connect_on(net, "gw-1", bob)
        b2 = await connect_on(net, "gw-2", bob)
        c1 = await connect_on(net, "gw-1", carol)
        c2 = await connect_on(net, "gw-2", carol)
        assert await a1.join(room) == []
        assert await b2.join(room) == []
        # a2 and b1 never joined: they send and receive all the same
        sent = []
        for i in range(6):
            for c in (a2, b1):
                cid = f"{c.name}-{i}"
                await c.say(room, f"dm {i} from {c.name}", cid)
                sent.append((c, cid))
                await asyncio.sleep(0.02)
        for c in (a2, b1):
            await c.wait_acks([cid for (s, cid) in sent if s is c])
        everyone = (a1, a2, b1, b2)
        for c in everyone:
            await c.wait_messages(room, len(sent))
        await asyncio.sleep(0.5)  # anything extra would show up now
        ids = [m["id"] for m in a1.by_room[room]]
        assert len(ids) == len(sent) and len(set(ids)) == len(ids), f"{a1.name}: {ids}"
        assert ids == sorted(ids), "ids out of stream order"
        for c in everyone:
            got = [m["id"] for m in c.by_room[room]]
            assert got == ids, f"{c.name} got {len(got)} messages {got}, expected {ids}"
            assert {m["from"] for m in c.by_room[room]} == {alice, bob}
        for c in (c1, c2):
            assert not c.by_room[room], f"{c.name} (a third user) got {c.by_room[room]}"

        # b1 joins now: its page holds what it already got; later messages come once
        hist = await b1.join(room)
        assert [m["id"] for m in hist] == ids
        await a2.say(room, "after the join", "late-1")
        for c in everyone:
            await c.wait_messages(room, len(sent) + 1)
        await asyncio.sleep(0.5)
        for c in everyone:
            got = [m["id"] for m in c.by_room[room]]
            assert len(got) == len(sent) + 1 and len(set(got)) == len(got), f"{c.name}: {got}"
            assert got[:-1] == ids and got[-1] > ids[-1], f"{c.name}: {got}"

        # a connection opened now gets the next message without joining
        a3 = await connect_on(net, "gw-1", alice)
        await b2.say(room, "to every device", "late-2")
        msgs = await a3.wait_messages(room, 1)
        assert msgs[0]["text"] == "to every device"
        stored = wait_persisted(cluster, room, len(sent) + 2)
        assert sorted(d["_id"] for d in stored)[: len(ids)] == ids

    run(main, cluster, timeout=90)


def test_third_user_is_forbidden_everywhere(cluster):
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    room = dm_of(alice, bob)

    async def main(net):
        a = await connect_on(net, "gw-1", alice)
        await a.say(room, "private", "p1")
        acks = await a.wait_acks(["p1"])
        real_id = acks["p1"]["id"]
        for gw in ("gw-1", "gw-2"):
            c = await connect_on(net, gw, carol)
            await c.send({"type": "join", "room": room, "cid": "j"})
            await c.expect_error("forbidden", "j", after="join")
            await c.send({"type": "send", "room": room, "text": "let me in", "cid": "s"})
            await c.expect_error("forbidden", "s", after="send")
            await c.send({"type": "history", "room": room, "cid": "h"})
            await c.expect_error("forbidden", "h", after="history")
            await c.send({"type": "history", "room": room, "before": real_id, "cid": "hb"})
            await c.expect_error("forbidden", "hb", after="history before")
            await c.send({"type": "history", "room": room, "after": real_id, "cid": "ha"})
            await c.expect_error("forbidden", "ha", after="history after")
            await c.send({"type": "join", "room": room, "since": real_id,
                          "epoch": c.welcome["epoch"], "cid": "js"})
            await c.expect_error("forbidden", "js", after="resume")
            await c.ping(after="the refusals")
            assert not c.by_room[room]
        # nothing carol sent was stored: only alice's message is
        await asyncio.sleep(1)
        stored = wait_persisted(cluster, room, 1)
        assert [d["from"] for d in stored] == [alice]

        bad = await connect_on(net, "gw-2", "bad:" + unique("user"))
        await bad.send({"type": "join", "room": room, "cid": "j"})
        await bad.expect_error("invalid_user", "j", after="join")
        await bad.send({"type": "send", "room": dm_of(alice, "zzz"), "text": "x", "cid": "s"})
        await bad.expect_error("invalid_user", "s", after="send")
        await bad.ping(after="invalid_user")

    run(main, cluster, timeout=60)
