"""Room access through HAProxy: the JWT claim `rooms` (exact names, prefixes ending in `*`)
limits joins, sends and history on both gateways with `forbidden` (the connection stays open);
`"rooms":[]` allows nothing; the claim limits direct rooms too; a bad claim refuses the token
(HTTP 401 at the upgrade, 4001 by first frame); a refresh with a narrower claim leaves the rooms
it no longer allows."""

from __future__ import annotations

import pytest

from chat_e2e import connect_on, expect_http_status, run, unique


def test_rooms_claim_exact_and_prefix(cluster):
    tag = unique("acc")
    exact, team, other = f"{tag}-general", f"{tag}-team-", f"{tag}-other"
    user = unique("limited")
    token = cluster.token(user, rooms=[exact, team + "*"])

    async def main(net):
        for gw in ("gw-1", "gw-2"):
            c = await connect_on(net, gw, user, token=token)
            await c.join(exact)
            await c.join(team + "red")
            await c.join(team)  # the prefix itself matches
            for room in (other, exact + "x", exact[:-1], f"{tag}-team"):
                await c.send({"type": "join", "room": room, "cid": "j"})
                await c.expect_error("forbidden", "j", after=f"join {room}")
                await c.send({"type": "send", "room": room, "text": "x", "cid": "s"})
                await c.expect_error("forbidden", "s", after=f"send {room}")
                await c.send({"type": "history", "room": room, "cid": "h"})
                await c.expect_error("forbidden", "h", after=f"history {room}")
            await c.say(team + "red", f"allowed on {gw}", f"ok-{gw}")
            await c.wait_acks([f"ok-{gw}"])
            await c.ping(after="refusals")
        # an unlimited user may use those rooms as always
        free = await connect_on(net, "gw-2", unique("free"))
        await free.join(other)

    run(main, cluster, timeout=60)


def test_empty_claim_and_direct_rooms(cluster):
    alice, bob = unique("alice"), unique("bob")
    a, b = sorted([alice, bob], key=lambda s: s.encode())
    room = f"dm:{a}:{b}"

    async def main(net):
        nothing = await connect_on(net, "gw-1", unique("nobody"),
                                   token=cluster.token(unique("nobody"), rooms=[]))
        await nothing.send({"type": "join", "room": "general", "cid": "g"})
        await nothing.expect_error("forbidden", "g", after="join with rooms []")
        # alice may use only her direct rooms; bob only "lobby"
        ca = await connect_on(net, "gw-1", alice, token=cluster.token(alice, rooms=["dm:*"]))
        cb = await connect_on(net, "gw-2", bob, token=cluster.token(bob, rooms=["lobby"]))
        await ca.send({"type": "join", "room": "lobby", "cid": "l"})
        await ca.expect_error("forbidden", "l", after="join lobby")
        await ca.say(room, "hi bob", "d1")
        await ca.wait_acks(["d1"])
        assert len(await ca.wait_messages(room, 1)) == 1
        # bob's token does not allow the direct room: no send, and no delivery
        await cb.send({"type": "send", "room": room, "text": "x", "cid": "d2"})
        await cb.expect_error("forbidden", "d2", after="send to a direct room the claim lacks")
        await cb.ping(after="the refusal")
        assert not cb.by_room[room], cb.by_room[room]

    run(main, cluster, timeout=60)


@pytest.mark.parametrize("rooms", [["bad room"], "general", [1], [""], ["a*b"],
                                   [f"r{i}" for i in range(65)]])
def test_bad_rooms_claim_refuses_the_token(cluster, rooms):
    token = cluster.token(unique("u"), rooms=rooms)

    async def main(net):
        status = await expect_http_status(cluster.ws_url, {"Authorization": f"Bearer {token}"})
        assert status == 401
        c = await net.raw()
        await c.send({"type": "auth", "token": token})
        code, reason = await c.wait_closed()
        assert code == 4001 and "rooms" in (reason or ""), (code, reason)

    run(main, cluster, timeout=20)


def test_refresh_narrows_the_rooms(cluster):
    user = unique("narrow")
    keep, drop = unique("keep"), unique("drop")

    async def main(net):
        c = await connect_on(net, "gw-2", user, token=cluster.token(user, rooms=[keep, drop]))
        await c.join(keep)
        await c.join(drop)
        await c.send({"type": "refresh", "token": cluster.token(user, rooms=[keep])})
        left = await c.next_reply("left")
        assert left == {"type": "left", "room": drop}, left
        assert (await c.next_reply("refreshed"))["type"] == "refreshed"
        await c.send({"type": "join", "room": drop, "cid": "j"})
        await c.expect_error("forbidden", "j", after="join after refresh")
        await c.say(keep, "still here", "k1")
        await c.wait_acks(["k1"])

    run(main, cluster, timeout=30)
