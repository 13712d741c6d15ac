"""Bad frames through HAProxy: each gets its error code and the connection keeps working (a ping
still gets a pong after each); rate limiting; too many rooms; an oversized frame closes with
1009; a bystander in the same room is unaffected throughout."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from chat_e2e import run, unique


async def _bystander_check(bystander, talker, room, tag):
    """The bystander still receives the room's messages (both directions work)."""
    def msg(cid):
        return lambda f: f.get("type") == "message" and f.get("cid") == cid

    await talker.say(room, f"still here {tag}", f"still-{tag}")
    await talker.wait_acks([f"still-{tag}"])
    m = await bystander.expect(msg(f"still-{tag}"), f"the talker's message still-{tag}")
    assert m["text"] == f"still here {tag}" and m["from"] == talker.welcome["user"], m
    await bystander.say(room, f"bystander {tag}", f"by-{tag}")
    await bystander.wait_acks([f"by-{tag}"])
    for c in (talker, bystander):
        await c.expect(msg(f"by-{tag}"), f"the bystander's message by-{tag}")


def test_bad_frames_get_errors_and_connection_survives(cluster):
    room = unique("errs")
    other = unique("notjoined")

    cases = [
        # (frame text, accepted error codes, cid expected in the error)
        ("not json", "invalid_json", None),
        ("{\"type\":\"ping\"", "invalid_json", None),
        ("[1,2,3]", "invalid_json", None),
        ("\"just a string\"", "invalid_json", None),
        ("42", "invalid_json", None),
        ('{"type":"ping","type":"ping"}', "invalid_json", None),  # duplicate key
        (json.dumps({"type": "dance"}), "unknown_type", None),
        (json.dumps({"type": "dance", "cid": "d1"}), "unknown_type", "d1"),
        (json.dumps({"type": "PING"}), "unknown_type", None),
        (json.dumps({"room": room}), "missing_field", None),
        (json.dumps({"type": 7}), "invalid_field", None),
        (json.dumps({"type": "join"}), "missing_field", None),
        (json.dumps({"type": "leave", "cid": "l0"}), "missing_field", "l0"),
        (json.dumps({"type": "history"}), "missing_field", None),
        (json.dumps({"type": "send", "room": room, "cid": "m1"}), "missing_field", "m1"),
        (json.dumps({"type": "send", "text": "x", "cid": "m2"}), "missing_field", "m2"),
        (json.dumps({"type": "join", "room": 5}), "invalid_field", None),
        (json.dumps({"type": "history", "room": room, "limit": 0}), "invalid_field", None),
        (json.dumps({"type": "history", "room": room, "limit": 201, "cid": "h1"}),
         "invalid_field", "h1"),
        (json.dumps({"type": "history", "room": room, "limit": "ten"}), "invalid_field", None),
        (json.dumps({"type": "history", "room": room, "limit": 2.5}), "invalid_field", None),
        (json.dumps({"type": "history", "room": room, "before": "yesterday"}), "invalid_field", None),
        (json.dumps({"type": "send", "room": room, "text": "x", "cid": 5}), "invalid_field", None),
        (json.dumps({"type": "send", "room": room, "text": "x", "cid": "c" * 65}),
         "invalid_field", None),
        (json.dumps({"type": "send", "room": room, "text": "x", "cid": "tab\there"}),
         "invalid_field", None),
        (json.dumps({"type": "send", "room": room, "text": 5, "cid": "t5"}), "invalid_field", "t5"),
        (json.dumps({"type": "join", "room": "bad room!", "cid": "j1"}), "invalid_room", "j1"),
        (json.dumps({"type": "join", "room": "a" * 65}), "invalid_room", None),
        (json.dumps({"type": "join", "room": ""}), "invalid_room", None),
        (json.dumps({"type": "join", "room": "bad/room"}), "invalid_room", None),
        (json.dumps({"type": "join", "room": "caf\u00e9"}), "invalid_room", None),
        (json.dumps({"type": "send", "room": "bad room", "text": "x", "cid": "r1"}),
         "invalid_room", "r1"),
        (json.dumps({"type": "send", "room": room, "text": "", "cid": "e1"}), "invalid_text", "e1"),
        (json.dumps({"type": "send", "room": room, "text": "a\u0000b", "cid": "e2"}),
         "invalid_text", "e2"),
        # an unpaired surrogate escape is not Unicode text
        ('{"type":"send","room":"%s","text":"a\\ud800b","cid":"e3"}' % room, "invalid_text", "e3"),
        (json.dumps({"type": "send", "room": room, "text": "x" * 4097, "cid": "long1"}),
         "text_too_long", "long1"),
        (json.dumps({"type": "send", "room": room, "text": "é" * 2049, "cid": "long2"},
                    ensure_ascii=False), "text_too_long", "long2"),
        (json.dumps({"type": "send", "room": other, "text": "x", "cid": "nj1"}), "not_joined", "nj1"),
        (json.dumps({"type": "leave", "room": other, "cid": "nj3"}), "not_joined", "nj3"),
        (json.dumps({"type": "history", "room": other, "cid": "nj4"}), "not_joined", "nj4"),
    ]

    async def main(net):
        talker = await net.connect(unique("badguy"), name="talker")
        bystander = await net.connect(unique("bystander"), name="bystander")
        for c in (talker, bystander):
            await c.join(room)

        for i, (frame, codes, cid) in enumerate(cases):
            await talker.send_raw(frame)
            await talker.expect_error(codes, cid, after=f"frame {frame[:80]!r}")
            await talker.ping(after=f"frame {frame[:80]!r}")
            if i % 8 == 7:
                await _bystander_check(bystander, talker, room, f"case{i}")

        # a binary frame
        await talker.send_raw(json.dumps({"type": "ping"}).encode())
        await talker.expect_error("invalid_json", after="a binary frame")
        await talker.ping(after="a binary frame")

        # second auth on an authenticated connection
        await talker.send({"type": "auth", "token": cluster.token(unique("x"))})
        await talker.expect_error("already_authenticated", after="second auth")
        await talker.ping(after="second auth")

        # boundaries that are fine: exactly 4096 bytes, multi-byte text, the longest room name
        ok_room = "R." + "a" * 60 + ":-"
        assert len(ok_room) == 64
        await talker.join(ok_room)
        await talker.say(ok_room, "x" * 4096, "max-ok")
        await talker.say(room, "é" * 2048, "max-ok-utf8")
        await talker.wait_acks(["max-ok", "max-ok-utf8"])
        m = (await talker.wait_messages(ok_room, 1))[0]
        assert m["text"] == "x" * 4096 and m["room"] == ok_room, m
        m = await bystander.expect(
            lambda f: f.get("type") == "message" and f.get("cid") == "max-ok-utf8",
            "the 2048 x 'é' message")
        assert m["text"] == "é" * 2048, m

        # not_joined after leaving
        await talker.leave(ok_room)
        await talker.say(ok_room, "gone", "nj2")
        await talker.expect_error("not_joined", "nj2", after="send after leave")
        await talker.ping()

        # no message from a rejected send ever reached the room
        await _bystander_check(bystander, talker, room, "end")
        bad_cids = {c for (_, _, c) in cases if c} | {"nj2"}
        leaked = [x for x in bystander.by_room[room] if x.get("cid") in bad_cids]
        assert not leaked, f"rejected sends were delivered: {leaked}"
        assert not [f for f in bystander.frames if f.get("type") == "error"], bystander.frames

    run(main, cluster, timeout=120)


def test_invalid_utf8_text_frame(cluster):
    """A text frame whose bytes are not UTF-8 fails the connection with 1007 (RFC 6455 8.1,
    docs/protocol.md "Close codes"); a bystander in the room is not disturbed and nothing is
    delivered. (Valid UTF-8 that is not an acceptable text, such as an escaped lone surrogate,
    gets the error invalid_text instead: test_bad_frames_get_errors_and_connection_survives.)"""
    room = unique("utf8")

    async def main(net):
        c = await net.connect(unique("bytes"), name="raw-bytes")
        bystander = await net.connect(unique("calm"), name="bystander")
        await c.join(room)
        await bystander.join(room)
        frame = b'{"type":"send","room":"' + room.encode() + b'","text":"a\xff\xfeb","cid":"u1"}'
        await c.ws.send(frame, text=True)
        code, reason = await c.wait_closed()
        assert code == 1007, f"closed with {code} {reason!r}, expected 1007"
        await bystander.ping(after="another member's invalid UTF-8")
        await asyncio.sleep(0.3)
        assert not bystander.by_room[room], f"invalid text delivered: {bystander.by_room[room]}"

    run(main, cluster, timeout=30)


def test_rate_limited(cluster):
    room = unique("rate")
    n = 800  # more than the burst (and than one second of refill); fewer than the send queue

    async def main(net):
        c = await net.connect(unique("flood"), name="flooder")
        bystander = await net.connect(unique("calm"), name="bystander")
        await bystander.join(room)
        await c.join(room)
        payload = json.dumps({"type": "ping"})
        for _ in range(n):
            await c.send_raw(payload)
        # every ping is answered by a pong or a rate_limited error; wait until quiet
        deadline = asyncio.get_running_loop().time() + 20
        last = -1
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            if len(c.frames) == last:
                break
            last = len(c.frames)
        assert not c.closed, f"flooder was disconnected: {c.close_code} {c.close_reason}"
        pongs = [f for f in c.frames if f.get("type") == "pong"]
        limited = [f for f in c.frames if f.get("type") == "error"]
        assert limited, f"{n} pings in a burst of {cluster.burst}: no rate_limited error ({len(pongs)} pongs)"
        assert all(f.get("code") == "rate_limited" for f in limited), limited[:3]
        assert len(pongs) < n, "every ping answered: no rate limit"
        assert len(pongs) >= min(cluster.burst, n) * 0.9, f"only {len(pongs)} pongs for a burst of {cluster.burst}"
        c.pending.clear()

        # the bucket refills and the connection works again
        await asyncio.sleep(max(1.0, cluster.burst / cluster.rate) + 0.5)
        await c.ping(after="rate limiting")
        await c.say(room, "after the flood", "after-flood")
        await c.wait_acks(["after-flood"])
        await bystander.wait_messages(room, 1)
        assert bystander.by_room[room][0]["cid"] == "after-flood"
        await bystander.ping()

    run(main, cluster, timeout=60)


def test_too_many_rooms(cluster):
    async def main(net):
        c = await net.connect(unique("roomy"), name="roomy")
        prefix = unique("many")
        for i in range(100):
            await c.join(f"{prefix}.{i}")
        await c.send({"type": "join", "room": f"{prefix}.100"})
        await c.expect_error("too_many_rooms", after="joining a 101st room")
        await c.ping()
        await c.leave(f"{prefix}.0")
        await c.join(f"{prefix}.100")

    run(main, cluster, timeout=60)


def test_oversized_frame_closes_1009(cluster):
    room = unique("big")

    async def main(net):
        big = await net.connect(unique("big"), name="big-sender")
        bystander = await net.connect(unique("watcher"), name="bystander")
        await bystander.join(room)
        await big.join(room)
        frame = json.dumps({"type": "send", "room": room, "text": "x" * 70000, "cid": "huge"})
        assert len(frame) > 65536
        try:
            await big.send_raw(frame)
        except ConnectionClosed:
            pass
        code, reason = await big.wait_closed(timeout=10)
        assert code == 1009, f"closed with {code} {reason!r}, expected 1009"
        # the bystander's connection is unaffected, and nothing of the big frame was delivered
        await bystander.ping()
        await bystander.say(room, "still fine", "fine")
        await bystander.wait_acks(["fine"])
        await bystander.wait_messages(room, 1)
        await asyncio.sleep(0.3)
        assert [m["cid"] for m in bystander.by_room[room]] == ["fine"], bystander.by_room[room]

    run(main, cluster, timeout=40)
