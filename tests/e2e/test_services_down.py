"""Outages of the backing services, each restored before the test ends (run late):
Kafka stopped -> /readyz says so, a send is answered with `unavailable` and its cid, the
connections stay up, and once Kafka is back sends and cross-gateway fan-out work again;
MongoDB (FerretDB) stopped -> /readyz says so, sends still work (Kafka holds them), join and
history answer `unavailable`, and once it is back the persister stores what was sent meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from chat_e2e import connect_on, run, unique, wait_persisted, wait_readyz


def _msg(cid):
    return lambda f: f.get("type") == "message" and f.get("cid") == cid


async def _readyz_all(cluster, code, timeout, **fields):
    for port in cluster.gateway_ports:
        await asyncio.to_thread(wait_readyz, port, code, timeout, **fields)


@pytest.mark.late(3)
def test_kafka_down_send_unavailable_then_recovers(cluster):
    room = unique("kdown")

    async def main(net):
        a = await connect_on(net, "gw-1", unique("ka"))
        b = await connect_on(net, "gw-2", unique("kb"))
        for c in (a, b):
            await c.join(room)
        await a.say(room, "before the outage", "before")
        await a.wait_acks(["before"])
        await b.expect(_msg("before"), "message 'before'")

        await asyncio.to_thread(cluster.script, "stop", "kafka", timeout=120)
        try:
            await _readyz_all(cluster, 503, 30, kafka="down", mongo="ok", status="not ready")
            await a.say(room, "during the outage", "during")
            # the loop is not blocked while the message waits for Kafka
            await a.ping(after="a send waiting for Kafka")
            await b.ping()
            err = await a.expect_error("unavailable", "during", after="send with Kafka down",
                                       timeout=45)
            assert "during" not in a.acks, f"acked and refused: {a.acks['during']} / {err}"
            # new sessions are still accepted
            c = await net.connect(unique("kc"), name="new during outage")
            await c.ping()
        finally:
            await asyncio.to_thread(cluster.script, "start", "kafka", timeout=180)

        await _readyz_all(cluster, 200, 90, kafka="ok", mongo="ok")
        # producing and the fan-out consumers recover (allow a few retries while the
        # producer reconnects: a send may still be refused right after the restart)
        for attempt in range(10):
            cid = f"after-{attempt}"
            await a.say(room, "after the outage", cid)
            f = await a.expect(lambda f: f.get("cid") == cid and f.get("type") in ("ack", "error"),
                               f"ack or error for {cid}", timeout=30)
            if f["type"] == "ack":
                break
            assert f.get("code") == "unavailable", f
            await asyncio.sleep(2)
        else:
            raise AssertionError("sends still refused 20 s after Kafka came back")
        await b.say(room, "b after the outage", "b-after")
        await b.wait_acks(["b-after"], timeout=30)
        for c in (a, b):
            await c.expect(_msg(cid), f"message {cid}", timeout=30)
            await c.expect(_msg("b-after"), "message b-after", timeout=30)
            assert not [m for m in c.by_room[room] if m["cid"] == "during"], (
                f"{c.name}: the refused message was delivered")
        assert not a.closed and not b.closed

    run(main, cluster, timeout=360)


@pytest.mark.late(4)
def test_mongo_down_join_from_memory_then_persister_catches_up(cluster):
    """With MongoDB down, sends still work (Kafka), and joins and history are answered from
    the gateways' room logs; the persister stores everything once MongoDB is back."""
    room = unique("mdown")
    n = 20

    async def main(net):
        a = await net.connect(unique("ma"), name="member")
        await a.join(room)
        await asyncio.to_thread(cluster.script, "stop", "ferretdb", timeout=120)
        try:
            await _readyz_all(cluster, 503, 30, kafka="ok", mongo="down", status="not ready")
            # sending needs only Kafka
            cids = [f"m{k:02d}" for k in range(n)]
            for cid in cids:
                await a.say(room, f"while MongoDB is down {cid}", cid)
            await a.wait_acks(cids, timeout=30)
            await a.wait_messages(room, n, timeout=30)
            # the room logs hold the room: join and history need no store
            ids = [m["id"] for m in a.by_room[room]]
            b = await net.connect(unique("mb"), name="joiner")
            assert [m["id"] for m in await b.join(room)] == ids
            assert [m["id"] for m in await a.history(room, before=ids[-1])] == ids[:-1]
            await b.ping()
        finally:
            await asyncio.to_thread(cluster.script, "start", "ferretdb", timeout=120)
        await _readyz_all(cluster, 200, 60, kafka="ok", mongo="ok")
        return [m["id"] for m in a.by_room[room]]

    ids = run(main, cluster, timeout=240)
    docs = wait_persisted(cluster, room, n, timeout=120)
    assert [d["_id"] for d in docs] == ids

    async def after(net):
        c = await net.connect(unique("mc"), name="late joiner")
        hist = await c.join(room, timeout=30)
        assert [m["id"] for m in hist] == ids, f"history after the outage: {hist[:2]}"

    run(after, cluster, timeout=60)


@pytest.mark.late(5)
def test_gateway_shutdown_closes_1001_and_clients_move_over(cluster):
    """Stopping a gateway (deploy, scale-in) closes its sessions with 1001; clients that
    reconnect through HAProxy land on the other gateway, rejoin and see what they missed."""
    room = unique("move")

    async def main(net):
        stay = await connect_on(net, "gw-1", unique("stay"))
        mover = await connect_on(net, "gw-2", unique("mover"))
        for c in (stay, mover):
            await c.join(room)
        await stay.say(room, "before", "before")
        await mover.expect(_msg("before"), "message 'before'")

        stopped = False
        try:
            await asyncio.to_thread(cluster.script, "stop", "gateway-2", timeout=60)
            stopped = True
            code, reason = await mover.wait_closed(timeout=15)
            assert code == 1001, f"gw-2 session closed with {code} {reason!r}, expected 1001"
            assert not stay.closed

            await stay.say(room, "while gw-2 is away", "away")
            await stay.wait_acks(["away"])
            # reconnecting through HAProxy works at once (redispatch) and lands on gw-1
            back = [await net.connect(mover.welcome["user"], name=f"back{i}") for i in range(3)]
            assert {b.gateway for b in back} == {"gw-1"}, [b.gateway for b in back]
            hist = await back[0].join(room, timeout=30)
            # "away" may still be on its way to MongoDB: ask again until it is there
            for _ in range(20):
                if "away" in [m.get("cid") for m in hist]:
                    break
                await asyncio.sleep(0.5)
                hist = await back[0].history(room)
            assert [m.get("cid") for m in hist][-2:] == ["before", "away"], hist[-3:]
            await back[0].say(room, "I am back", "back")
            await stay.expect(_msg("back"), "message 'back'")
        finally:
            if stopped:
                await asyncio.to_thread(cluster.script, "start", "gateway-2", timeout=120)
        await asyncio.to_thread(wait_readyz, cluster.gateway_ports[1], 200, 60)
        # HAProxy sends new connections to gw-2 again once its health checks pass
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            try:
                c = await connect_on(net, "gw-2", unique("again"), tries=6)
                break
            except AssertionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(1)
        await c.join(room, timeout=30)
        await c.say(room, "gw-2 is back", "gw2-back")
        await stay.expect(_msg("gw2-back"), "message 'gw2-back'")

    run(main, cluster, timeout=240)
