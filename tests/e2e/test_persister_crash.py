"""The persister SIGKILLed while messages stream in, then restarted: MongoDB ends with every
acknowledged message exactly once (the persister commits offsets only after a batch is
stored, and a replay is a duplicate-key no-op)."""

from __future__ import annotations

import asyncio
import time

from chat_e2e import run, ts_ms, unique, wait_persisted


def test_persister_killed_mid_stream(cluster):
    room = unique("crash")
    total = 600
    interval = 1.0 / min(100.0, cluster.rate * 0.5)

    async def main(net):
        s = await net.connect(unique("steady"), name="sender")
        r = await net.connect(unique("watch"), name="receiver")
        for c in (s, r):
            await c.join(room)
        cids = [f"k{k:04d}" for k in range(total)]

        async def stream():
            t0 = time.monotonic()
            for k, cid in enumerate(cids):
                delay = t0 + k * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await s.say(room, f"crash test {k}", cid)

        async def chaos():
            await asyncio.sleep(total * interval * 0.3)
            await asyncio.to_thread(cluster.script, "kill", "persister", timeout=60)
            await asyncio.sleep(total * interval * 0.3)
            await asyncio.to_thread(cluster.script, "start", "persister", timeout=120)

        await asyncio.gather(stream(), chaos())
        acks = await s.wait_acks(cids, timeout=60)
        await r.wait_messages(room, total, timeout=60)
        return acks, list(r.by_room[room])

    acks, delivered = run(main, cluster, timeout=240)
    acked_ids = {a["id"] for a in acks.values()}
    assert len(acked_ids) == total, f"{total} acks carry only {len(acked_ids)} distinct ids"
    assert {m["id"] for m in delivered} == acked_ids

    # the restarted persister joins the group again (possibly after the dead member's session
    # times out) and replays from the last committed offset
    docs = wait_persisted(cluster, room, total, timeout=150)
    assert len(docs) == total
    assert {d["_id"] for d in docs} == acked_ids, "MongoDB ids differ from the acknowledged ids"
    cids = [d["cid"] for d in docs]
    assert len(set(cids)) == total, "a message was stored twice under different ids"
    by_id = {m["id"]: m for m in delivered}
    for d in docs:
        m = by_id[d["_id"]]
        assert (d["room"], d["from"], d["text"], d["cid"]) == (m["room"], m["from"], m["text"], m["cid"])
        assert ts_ms(d["ts"]) == m["ts"]
    # and nothing arrives late: the count stays put
    time.sleep(2)
    assert cluster.messages_collection().count_documents({"room": room}) == total
