"""Typing indicators across both gateways (docs/protocol.md, "Typing"): a typing frame reaches
every other connection joined to the room, the sender's other device included and the sending
connection excluded, on either gateway; on:true is throttled to one per user and room every
2 s; typing is never a message (no id, no history, nothing stored, no ack)."""

from __future__ import annotations

import asyncio
import time

from chat_e2e import connect_on, metrics, run, unique


def typing_frames(c, room):
    return [f for f in c.frames if f.get("type") == "typing" and f.get("room") == room]


async def settle(*clients, quiet=0.6):
    """Lets frames in flight arrive (events cross Kafka)."""
    await asyncio.sleep(quiet)


def test_typing_reaches_others_not_sender(cluster):
    room = unique("typing")
    alice = unique("alice")
    bob = unique("bob")

    async def main(net):
        a1 = await connect_on(net, "gw-1", alice)
        a2 = await connect_on(net, "gw-2", alice)  # alice's other device, other gateway
        b = await connect_on(net, "gw-2", bob)
        c = await connect_on(net, "gw-1", unique("carol"))
        for x in (a1, a2, b, c):
            await x.join(room)
        await a1.send({"type": "typing", "room": room, "on": True})
        want = {"type": "typing", "room": room, "user": alice, "on": True}
        for x in (a2, b, c):
            f = await x.expect(lambda f: f.get("type") == "typing", "typing", timeout=10)
            assert f == want, f
        await a1.send({"type": "typing", "room": room, "on": False})
        for x in (a2, b, c):
            f = await x.expect(lambda f: f.get("type") == "typing", "typing off", timeout=10)
            assert f == dict(want, on=False), f
        await a1.ping()
        await settle()
        assert typing_frames(a1, room) == [], "the sending connection got its own typing"
        # not joined: an error, nothing forwarded
        other = unique("elsewhere")
        await b.send({"type": "typing", "room": other, "on": True, "cid": "t1"})
        err = await b.expect_error("not_joined", "t1")
        assert err["cid"] == "t1"
        # bad fields
        await b.send({"type": "typing", "room": room, "on": "yes", "cid": "t2"})
        await b.expect_error("invalid_field", "t2")
        await b.send({"type": "typing", "room": room, "cid": "t3"})
        await b.expect_error("missing_field", "t3")

    run(main, cluster)


def test_typing_throttled_and_never_a_message(cluster):
    room = unique("typing-thr")
    dana = unique("dana")

    async def main(net):
        d = await connect_on(net, "gw-1", dana)
        e = await connect_on(net, "gw-2", unique("erin"))
        f1 = await connect_on(net, "gw-1", unique("fay"))
        for x in (d, e, f1):
            await x.join(room)
        t0 = time.monotonic()
        # ten on:true within about a second: one passes
        for _ in range(10):
            await d.send({"type": "typing", "room": room, "on": True})
            await asyncio.sleep(0.1)
        await e.expect(lambda f: f.get("type") == "typing", "first typing", timeout=10)
        await settle(quiet=max(0.2, 1.6 - (time.monotonic() - t0)))
        assert len(typing_frames(e, room)) == 1, typing_frames(e, room)
        assert len(typing_frames(f1, room)) == 1, typing_frames(f1, room)
        # on:false always goes through
        await d.send({"type": "typing", "room": room, "on": False})
        await e.expect(lambda f: f.get("type") == "typing" and f["on"] is False, "typing off")
        # after the window, on:true passes again
        await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
        await d.send({"type": "typing", "room": room, "on": True})
        await e.expect(lambda f: f.get("type") == "typing" and f["on"] is True, "second typing")
        await f1.expect(lambda f: f.get("type") == "typing" and f["on"] is True and
                        len(typing_frames(f1, room)) == 3, "second typing")
        # never a message: no ack, no message frame, not in history, not stored
        await settle()
        for x in (d, e, f1):
            assert x.by_room.get(room, []) == [], x.by_room.get(room)
            assert not any(f.get("type") == "ack" for f in x.frames)
        hist = await e.history(room)
        assert hist == [], hist
        stored = list(cluster.messages_collection().find({"room": room}))
        assert stored == [], stored
        # a joiner afterwards sees no history either
        g = await connect_on(net, "gw-2", unique("gus"))
        assert await g.join(room) == []
        # the gateways count what their gate held (nine of dana's ten on:true)
        held = sum(metrics(p).get("chat_gateway_typing_throttled_total", 0)
                   for p in cluster.gateway_ports)
        assert held >= 9, held

    run(main, cluster)
