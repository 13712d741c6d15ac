"""Read state across both gateways (docs/protocol.md, "Read state"): a read moves forward only
and is stored (one document per room and user in MongoDB's reads collection); the user's other
connections, on either gateway, get read with the unread count; in a direct room the other user
gets a receipt; joined carries read_upto and unread; the rooms frame lists the user's rooms and
direct rooms with unread and last; the state survives a restart of both gateways."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat_e2e import connect_on, run, unique, wait_persisted


def reads_collection(cluster):
    return cluster.messages_collection().database["reads"]


def frames_of(c, kind, room):
    return [f for f in c.frames if f.get("type") == kind and f.get("room") == room]


async def post(c, room, n, tag):
    cids = [f"{tag}-{i}" for i in range(n)]
    for cid in cids:
        await c.say(room, f"message {cid}", cid)
    acks = await c.wait_acks(cids)
    return [acks[cid]["id"] for cid in cids]


async def quiet(*clients):
    """A round trip on each client, then a moment for events that cross Kafka."""
    for c in clients:
        await c.ping()
    await asyncio.sleep(0.8)


def dm_room(u, v):
    a, b = sorted([u, v])
    return f"dm:{a}:{b}"


def test_read_moves_forward_and_syncs(cluster):
    room = unique("reads")
    alice, bob = unique("alice"), unique("bob")

    async def main(net):
        a1 = await connect_on(net, "gw-1", alice)
        a2 = await connect_on(net, "gw-2", alice)  # alice's other device
        b = await connect_on(net, "gw-2", bob)
        await b.join(room)
        ids = await post(b, room, 5, "m")
        # reading needs no join
        await a1.send({"type": "read", "room": room, "upto": ids[2]})
        f = await a2.expect(lambda f: f.get("type") == "read", "read on the other device")
        assert f == {"type": "read", "room": room, "upto": ids[2], "unread": 2}, f
        # older: ignored, not answered, not forwarded, not stored
        await a1.send({"type": "read", "room": room, "upto": ids[0]})
        await a1.send({"type": "read", "room": room, "upto": ids[2]})  # the same: no move
        await quiet(a1, a2)
        assert len(frames_of(a2, "read", room)) == 1, frames_of(a2, "read", room)
        assert frames_of(a1, "read", room) == [], "the reading connection got its own read"
        doc = reads_collection(cluster).find_one({"_id": f"{room} {alice}"})
        assert doc and doc["upto"] == ids[2] and doc["room"] == room and doc["user"] == alice, doc
        # forward again, from the other gateway's connection
        await a2.send({"type": "read", "room": room, "upto": ids[4]})
        f = await a1.expect(lambda f: f.get("type") == "read", "read on the first device")
        assert f == {"type": "read", "room": room, "upto": ids[4], "unread": 0}, f
        doc = reads_collection(cluster).find_one({"_id": f"{room} {alice}"})
        assert doc["upto"] == ids[4], doc
        # bob reads too: nobody else hears of it in a plain room
        await b.send({"type": "read", "room": room, "upto": ids[1]})
        await quiet(a1, a2, b)
        assert not [f for c in (a1, a2) for f in c.frames if f.get("type") == "receipt"]
        # errors: not an id of this room, bad fields
        await a1.send({"type": "read", "room": unique("other"), "upto": "9999-00000000000000000001",
                       "cid": "r1"})
        await a1.expect_error("invalid_field", "r1")
        await a1.send({"type": "read", "room": room, "cid": "r2"})
        await a1.expect_error("missing_field", "r2")
        await a1.send({"type": "read", "room": room, "upto": "soon", "cid": "r3"})
        await a1.expect_error("invalid_field", "r3")

    run(main, cluster)


def test_joined_read_state_and_rooms(cluster):
    room = unique("unread")
    never = unique("never")
    carol, dave = unique("carol"), unique("dave")
    dm = dm_room(carol, dave)

    async def main(net):
        c1 = await connect_on(net, "gw-1", carol)
        d = await connect_on(net, "gw-2", dave)
        await d.join(room)
        ids = await post(d, room, 6, "u")
        await c1.send({"type": "read", "room": room, "upto": ids[1]})
        await c1.ping()
        await asyncio.sleep(0.5)
        # joined on the other gateway: read_upto and the messages after it
        c2 = await connect_on(net, "gw-2", carol)
        j = await c2.join_frame(room)
        assert j["read_upto"] == ids[1] and j["unread"] == 4, {k: j[k] for k in j if k != "history"}
        j = await c1.join_frame(room)
        assert j["read_upto"] == ids[1] and j["unread"] == 4
        # a room never read: null and 0
        j = await c1.join_frame(never)
        assert j["read_upto"] is None and j["unread"] == 0
        # a direct room: dave writes, carol has read nothing yet
        await d.join(dm)
        dm_ids = await post(d, dm, 3, "dm")
        await c1.join(dm)
        await c1.send({"type": "read", "room": dm, "upto": dm_ids[0]})
        # dave's connections get a receipt, carol's other device the read
        r = await d.expect(lambda f: f.get("type") == "receipt", "receipt")
        assert r == {"type": "receipt", "room": dm, "user": carol, "upto": dm_ids[0]}, r
        f = await c2.expect(lambda f: f.get("type") == "read" and f.get("room") == dm, "read")
        assert f["upto"] == dm_ids[0] and f["unread"] == 2, f
        # the rooms frame: both rooms, with unread and last
        await c2.send({"type": "rooms"})
        rooms = await c2.expect(lambda f: f.get("type") == "rooms", "rooms")
        by = {r["room"]: r for r in rooms["rooms"]}
        assert by[room] == {"room": room, "unread": 4, "read_upto": ids[1], "last": ids[-1]}, by
        assert by[dm] == {"room": dm, "unread": 2, "read_upto": dm_ids[0], "last": dm_ids[-1]}, by
        assert never not in by
        # dave never read the direct room: it is listed for him all the same (its messages
        # stored, the persister made sure both users have its read-state document)
        wait_persisted(cluster, dm, 3)
        await d.send({"type": "rooms"})
        rooms = await d.expect(lambda f: f.get("type") == "rooms", "rooms of dave")
        by = {r["room"]: r for r in rooms["rooms"]}
        assert by.get(dm) == {"room": dm, "unread": 3, "read_upto": None, "last": dm_ids[-1]}, by
        assert room not in by  # dave has no read state in the plain room
        # a token whose rooms claim allows only the plain room: rooms leaves the direct room
        # out, and a read there is forbidden
        narrow = await net.connect(carol, token=cluster.token(carol, rooms=[room]))
        await narrow.send({"type": "rooms"})
        listed = await narrow.expect(lambda f: f.get("type") == "rooms", "rooms (claim)")
        assert [r["room"] for r in listed["rooms"]] == [room], listed
        await narrow.send({"type": "read", "room": dm, "upto": dm_ids[-1], "cid": "n"})
        await narrow.expect_error("forbidden", "n")
        # someone else's direct room: forbidden
        eve = await net.connect(unique("eve"))
        await eve.send({"type": "read", "room": dm, "upto": dm_ids[0], "cid": "x"})
        await eve.expect_error("forbidden", "x")
        # a user with no read state: an empty list
        await eve.send({"type": "rooms", "cid": "y"})
        rooms = await eve.expect(lambda f: f.get("type") == "rooms", "rooms")
        assert rooms == {"type": "rooms", "rooms": []}, rooms

    run(main, cluster)


@pytest.mark.late(5)
def test_read_state_survives_gateway_restarts(cluster):
    room = unique("durable")
    fay = unique("fay")

    async def before(net):
        w = await net.connect(unique("writer"))
        await w.join(room)
        ids = await post(w, room, 4, "d")
        f = await net.connect(fay)
        await f.send({"type": "read", "room": room, "upto": ids[2]})
        await f.ping()
        return ids

    ids = run(before, cluster)
    # a read is not answered: wait until it is stored before stopping the gateways
    deadline = time.monotonic() + 20
    while not reads_collection(cluster).find_one({"_id": f"{room} {fay}", "upto": ids[2]}):
        assert time.monotonic() < deadline, "the read was not stored"
        time.sleep(0.2)
    for gw in ("gateway-1", "gateway-2"):
        cluster.script("restart", gw, timeout=180)
    doc = reads_collection(cluster).find_one({"_id": f"{room} {fay}"})
    assert doc and doc["upto"] == ids[2], doc

    async def after(net):
        for gw in ("gw-1", "gw-2"):
            f = await connect_on(net, gw, fay)
            j = await f.join_frame(room)
            assert j["read_upto"] == ids[2] and j["unread"] == 1, (gw, j)
            await f.send({"type": "rooms"})
            rooms = await f.expect(lambda x: x.get("type") == "rooms", "rooms")
            assert {"room": room, "unread": 1, "read_upto": ids[2], "last": ids[3]} in rooms["rooms"]

    run(after, cluster, timeout=120)
