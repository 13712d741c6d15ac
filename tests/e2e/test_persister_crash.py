"""The persister SIGKILLed while messages stream in, then restarted: MongoDB ends with every
acknowledged message exactly once (the persister commits offsets only after a batch is
stored, and a replay is a duplicate-key no-op); and a second persister replaying the whole
topic stores nothing twice."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

import pytest

from chat_e2e import run, ts_ms, unique, wait_persisted


@pytest.mark.late(1)
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


TOTALS_RE = re.compile(r"totals: stored (\d+), duplicates (\d+)")


@pytest.mark.late(2)
def test_replay_of_the_whole_topic_stores_nothing_twice(cluster):
    """A second persister in a fresh consumer group reads the topic from the start: every
    message it sees is already stored, so the insert is a duplicate-key no-op. (Its progress is
    read from the persister's periodic "totals: stored N, duplicates M" log line.)"""
    room = unique("replay")
    total = 50

    async def main(net):
        s = await net.connect(unique("replayer"), name="sender")
        await s.join(room)
        cids = [f"r{k:03d}" for k in range(total)]
        for k, cid in enumerate(cids):
            await s.say(room, f"replay {k}", cid)
            await asyncio.sleep(0.01)
        await s.wait_acks(cids, timeout=30)

    run(main, cluster, timeout=60)
    before_docs = wait_persisted(cluster, room, total, timeout=60)
    coll = cluster.messages_collection()
    initial = coll.count_documents({})

    binary = cluster.build_dir / "persister" / "chat-persister"
    env = dict(cluster.env)
    env.update({
        "CHAT_KAFKA_BROKERS": f"127.0.0.1:{cluster.kafka_port}",
        "CHAT_MONGO_URI": f"mongodb://127.0.0.1:{cluster.mongo_port}/chat",
        "CHAT_KAFKA_GROUP": unique("e2e-replay"),
        "CHAT_METRICS_LISTEN": "off",  # the cluster's persister has the metrics port
    })
    log_path = cluster.log_dir / "persister-replay.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            stored = dups = 0
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"replay persister exited {proc.returncode}; see {log_path}")
                found = TOTALS_RE.findall(log_path.read_text(errors="replace"))
                if found:
                    stored, dups = map(int, found[-1])
                if stored + dups >= initial:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"replay persister saw {stored + dups} of {initial} messages in 60s "
                        f"(stored {stored}, duplicates {dups}); see {log_path}")
                time.sleep(0.5)
        finally:
            proc.terminate()
            try:
                rc = proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait(5)
    assert rc == 0, f"replay persister exited {rc} after SIGTERM; see {log_path}"
    assert dups >= total, f"replay counted only {dups} duplicates"
    after_docs = list(coll.find({"room": room}).sort("_id", 1))
    assert after_docs == before_docs, "the replay changed the room's stored messages"
