"""Presence (docs/protocol.md, "Presence"), through HAProxy with clients on both gateways: a user
counted once over two connections on two gateways and leaving only with the last one; the
joined members snapshot truncated at 100 with the right count; presence frames at most one per
room per second; the users of a SIGKILLed gateway leaving within 15 s as seen from the others;
the members frame and its errors; CHAT_MAX_USER_CONNS counted across the gateways."""
from __future__ import annotations

import asyncio
import signal
import time

from chat_e2e import connect_on, run, spawn_gateway, unique


def users_of(entries) -> list[str]:
    return [e["user"] for e in entries]


async def members(c, room: str) -> dict:
    await c.send({"type": "members", "room": room})
    f = await c.expect(lambda f: f.get("type") in ("members", "error"), f"members of {room}")
    assert f.get("type") == "members", f"{c.name}: members {room}: {f}"
    assert f.get("room") == room and isinstance(f.get("users"), list), f
    assert isinstance(f.get("count"), int) and isinstance(f.get("truncated"), bool), f
    for u in f["users"]:
        assert set(u) == {"user", "name"}, f"a member is {{user, name}}: {u}"
    return f


async def members_until(c, room: str, pred, what: str, timeout: float = 10) -> dict:
    """Asks members until pred(answer) holds (other gateways' records take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        f = await members(c, room)
        if pred(f):
            return f
        if time.monotonic() > deadline:
            raise AssertionError(f"{c.name}: {what} not seen within {timeout}s; last: {f}")
        await asyncio.sleep(0.2)


def presence_frames(c, room: str) -> list[tuple[float, dict]]:
    return [(t, f) for t, f in zip(c.arrived, c.frames)
            if f.get("type") == "presence" and f.get("room") == room]


async def wait_left(c, room: str, users: set[str], timeout: float) -> float:
    """Waits until presence frames of room have said every one of users left; returns when."""
    want = set(users)

    def check():
        seen = set()
        for t, f in presence_frames(c, room):
            seen |= set(f.get("left", [])) & want
            if seen == want:
                return t
        return None

    return await c._wait_until(check, timeout, f"presence left {sorted(want)} in {room}")


def test_user_counted_once_across_gateways(cluster):
    room = unique("pres")

    async def main(net):
        alice = unique("alice")
        w1 = await connect_on(net, "gw-1", unique("watch"))
        w2 = await connect_on(net, "gw-2", unique("watch"))
        j = await w1.join_frame(room, presence=True)
        assert j["members"] == {"count": 1, "truncated": False,
                                "users": [{"user": w1.welcome["user"],
                                           "name": w1.welcome["user"]}]}, j
        j2 = await w2.join_frame(room, presence=True)
        assert w2.welcome["user"] == users_of(j2["members"]["users"])[0], "the joiner comes first"
        for w in (w1, w2):
            await members_until(w, room, lambda f: f["count"] == 2, "both watchers")

        a1 = await connect_on(net, "gw-1", alice)
        a2 = await connect_on(net, "gw-2", alice)
        await a1.join(room)
        await a2.join(room)
        for w in (w1, w2):
            f = await members_until(w, room, lambda f: alice in users_of(f["users"]), "alice")
            assert f["count"] == 3 and users_of(f["users"]).count(alice) == 1, f
            await w._wait_until(
                lambda: any(alice in users_of(f.get("joined", []))
                            for _, f in presence_frames(w, room)), 5, "presence joined alice")
        # alice leaves on gw-1: still there through gw-2
        await a1.leave(room)
        await asyncio.sleep(2.5)
        for w in (w1, w2):
            f = await members(w, room)
            assert f["count"] == 3 and alice in users_of(f["users"]), f
            assert not any(alice in f.get("left", []) for _, f in presence_frames(w, room)), \
                f"{w.name}: alice left with one of two connections: {presence_frames(w, room)}"
        # her last connection goes: she leaves everywhere
        await a2.close()
        for w in (w1, w2):
            await wait_left(w, room, {alice}, 5)
            f = await members(w, room)
            assert f["count"] == 2 and alice not in users_of(f["users"]), f
            last = presence_frames(w, room)[-1][1]
            assert last["count"] == 2 and set(last) == {"type", "room", "joined", "left",
                                                        "count"}, last

    run(main, cluster, timeout=90)


def test_joined_members_truncated_at_100(cluster):
    room = unique("crowd")
    n = 105

    async def main(net):
        crowd = []
        for i in range(0, n, 15):  # both gateways, through HAProxy
            crowd += await asyncio.gather(*(net.connect(unique(f"c{k}"))
                                            for k in range(i, min(n, i + 15))))
        await asyncio.gather(*(c.join(room) for c in crowd))
        assert {c.gateway for c in crowd} == {"gw-1", "gw-2"}
        probe = await net.connect(unique("probe"))
        await members_until(probe, room, lambda f: f["count"] == n, f"{n} members")
        joiner = await connect_on(net, probe.gateway, unique("joiner"))
        j = await joiner.join_frame(room, presence=True)
        m = j["members"]
        assert m["count"] == n + 1, m["count"]
        assert len(m["users"]) == 100 and m["truncated"] is True, (len(m["users"]), m["truncated"])
        listed = users_of(m["users"])
        assert listed[0] == joiner.welcome["user"], "the joiner is listed first"
        assert len(set(listed)) == 100
        everyone = {c.welcome["user"] for c in crowd} | {joiner.welcome["user"]}
        assert set(listed) <= everyone
        # the members frame says the same, from a connection that has not joined
        f = await members(probe, room)
        assert f["count"] == n + 1 and len(f["users"]) == 100 and f["truncated"] is True, f
        # a join without presence carries no members
        plain = await net.connect(unique("plain"))
        assert "members" not in await plain.join_frame(room)

    run(main, cluster, timeout=120)


def test_presence_frames_coalesced(cluster):
    room = unique("churn")

    async def main(net):
        w = await net.connect(unique("watch"))
        await w.join_frame(room, presence=True)
        people = await asyncio.gather(*(net.connect(unique(f"p{i}")) for i in range(10)))
        start = time.monotonic()
        # 10 joins and 10 leaves, one every 150 ms, over both gateways
        for c in people:
            await c.join(room)
            await asyncio.sleep(0.15)
        for c in people[:5]:
            await c.leave(room)
            await asyncio.sleep(0.15)
        for c in people[5:]:
            await c.close()
            await asyncio.sleep(0.15)
        await wait_left(w, room, {c.welcome["user"] for c in people}, 10)
        await asyncio.sleep(1.5)
        frames = presence_frames(w, room)
        span = frames[-1][0] - start
        assert 3 <= len(frames) <= span + 2, f"{len(frames)} frames over {span:.1f}s"
        gaps = [b[0] - a[0] for a, b in zip(frames, frames[1:])]
        assert min(gaps) >= 0.85, f"two presence frames {min(gaps):.3f}s apart: {gaps}"
        # the frames add up: everyone who joined also left, and the count is the watcher
        joined = [u for _, f in frames for u in users_of(f["joined"])]
        left = [u for _, f in frames for u in f["left"]]
        for c in people:
            assert c.welcome["user"] in joined and c.welcome["user"] in left
        assert frames[-1][1]["count"] == 1
        f = await members(w, room)
        assert f["count"] == 1 and users_of(f["users"]) == [w.welcome["user"]], f

    run(main, cluster, timeout=90)


def test_users_of_killed_gateway_leave(cluster):
    room = unique("kill")

    async def main(net, port):
        w1 = await connect_on(net, "gw-1", unique("watch"))
        w2 = await connect_on(net, "gw-2", unique("watch"))
        await w1.join_frame(room, presence=True)
        await w2.join_frame(room, presence=True)
        url = f"ws://127.0.0.1:{port}/ws"
        doomed = [await net.connect(unique(f"doomed{i}"), url=url) for i in range(2)]
        assert all(c.gateway == "gw-presence-kill" for c in doomed)
        for c in doomed:
            await c.join(room)
        names = {c.welcome["user"] for c in doomed}
        for w in (w1, w2):
            await members_until(w, room, lambda f: f["count"] == 4, "the doomed gateway's users")
        gw.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for w in (w1, w2):
            t = await wait_left(w, room, names, 16)
            assert t - killed < 15, f"{w.name}: they left {t - killed:.1f}s after the kill"
            f = await members(w, room)
            assert f["count"] == 2 and not names & set(users_of(f["users"])), f

    gw = spawn_gateway(cluster, "gw-presence-kill", port_index=8)
    try:
        run(lambda net: main(net, gw.port), cluster, timeout=90)
    finally:
        gw.stop()


def test_members_frame(cluster):
    room = unique("mem")

    async def main(net):
        bob = unique("bob")
        b = await net.connect(bob, token=cluster.token(bob, name="Bob B\u00e9"))
        await b.join(room)
        c = await net.connect(unique("carol"))
        # a room not joined: answered all the same
        f = await members_until(c, room, lambda f: f["count"] == 1, "bob")
        assert f == {"type": "members", "room": room, "count": 1, "truncated": False,
                     "users": [{"user": bob, "name": "Bob B\u00e9"}]}, f
        empty = unique("empty")
        f = await members(c, empty)
        assert f == {"type": "members", "room": empty, "count": 0, "users": [],
                     "truncated": False}, f
        # errors keep the connection open
        await c.send({"type": "members"})
        await c.expect_error("missing_field", after="members without room")
        await c.send({"type": "members", "room": "no spaces", "cid": "m1"})
        await c.expect_error("invalid_room", "m1", after="members of a bad room")
        await c.send({"type": "members", "room": "dm:xavier:yolanda", "cid": "m2"})
        await c.expect_error("forbidden", "m2", after="members of others' direct room")
        await c.send({"type": "join", "room": room, "presence": "yes", "cid": "m3"})
        await c.expect_error("invalid_field", "m3", after="presence not a boolean")
        await c.ping("the errors")
        # presence:false is a plain join; a later presence:true join turns it on
        j = await c.join_frame(room, presence=False)
        assert "members" not in j
        j = await c.join_frame(room, presence=True)
        assert j["members"]["count"] == 2, j["members"]
        await b.leave(room)
        await wait_left(c, room, {bob}, 5)

    run(main, cluster, timeout=60)


def test_max_user_conns_across_gateways(cluster):
    """CHAT_MAX_USER_CONNS (20 on the test cluster, the default) counts a user's connections on
    every gateway: the 21st closes with 4029 wherever it lands, and a closed one makes room."""

    async def main(net):
        user = unique("many")
        conns = [await net.connect(user, name=f"{user}#{i}") for i in range(20)]
        assert {c.gateway for c in conns} == {"gw-1", "gw-2"}, [c.gateway for c in conns]
        await asyncio.sleep(1)  # the counts reach the other gateway within a few 100 ms
        for i in range(2):  # whichever gateway it lands on
            extra = await net.raw("header", cluster.token(user), name=f"21st#{i}")
            code, reason = await extra.wait_closed(10)
            assert code == 4029, f"21st connection: closed with {code} {reason!r}"
            assert not any(f.get("type") == "welcome" for f in extra.frames), extra.frames
        other = await net.connect(unique("other"))  # another user is not affected
        await other.ping()
        await conns[0].close()
        await asyncio.sleep(1)
        again = await net.connect(user, name="again")
        await again.ping("a connection after one closed")
        assert not any(c.closed for c in conns[1:])

    run(main, cluster, timeout=90)
