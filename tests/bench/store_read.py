#!/usr/bin/env python3
"""Store benchmark: a room's history reads against a store holding many messages.

Fills a collection (default chat_bench.messages, so the cluster's own chat.messages is left
alone) with --messages documents shaped like the persister's ({_id: "PPPP-OOOOOOOOOOOOOOOOOOOO",
room, from, text, ts: date, cid}) spread over --rooms rooms plus one hot room that gets
--hot-share of them, with insert_many batches, after creating the index chat-admin creates
({room: 1, _id: -1}). Then times the gateway's reads, --reads of each kind, on various rooms:

  latest   find({room}).sort({_id: -1}).limit(50)                 (join)
  before   find({room, _id: {$lt: X}}).sort({_id: -1}).limit(50)  (history paging back)
  after    find({room, _id: {$gt: X}}).sort({_id: 1}).limit(50)   (a forward page)
  hot      latest, on the hot room

and prints the insert rate and p50/p99/max of each, and the store's plan for each query (its
explain command; FerretDB answers with PostgreSQL's plan and whether it pushed the filter, sort
and limit down). An existing collection with the asked-for count is reused (--fresh drops it).
It measures; it asserts nothing.

  tests/bench/store_read.py [--uri mongodb://127.0.0.1:27017/] [--messages 1000000]
                            [--rooms 1000] [--hot-share 0.05] [--reads 200] [--fresh]

Needs a running store (make run, or scripts/cluster.sh services) and pymongo (the project
venv: scripts/deps.sh). `make bench-store BENCH_STORE_ARGS="..."` runs it.
"""
import argparse
import datetime
import os
import random
import time
import zlib

import pymongo

PARTITIONS = 12
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua").split()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def room_name(i):
    return "hot" if i < 0 else f"room-{i:04d}"


def fill(coll, n, rooms, hot_share, batch, seed):
    """Inserts n messages in stream order; returns seconds taken."""
    rnd = random.Random(seed)
    offsets = [0] * PARTITIONS
    t0_ms = int(time.time() * 1000) - n * 10
    docs, done, t_start, next_report = [], 0, time.monotonic(), n // 10
    for i in range(n):
        r = room_name(-1 if rnd.random() < hot_share else rnd.randrange(rooms))
        p = zlib.crc32(r.encode()) % PARTITIONS  # a room is one partition, as with Kafka
        off = offsets[p]
        offsets[p] += 1
        docs.append({
            "_id": f"{p:04d}-{off:020d}",
            "room": r,
            "from": f"user-{rnd.randrange(5000)}",
            "text": " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(3, 20))),
            "ts": datetime.datetime.fromtimestamp((t0_ms + i * 10) / 1000, datetime.timezone.utc),
            "cid": f"c{i}",
        })
        if len(docs) == batch or i == n - 1:
            coll.insert_many(docs, ordered=True)
            done += len(docs)
            docs = []
            if done >= next_report:
                el = time.monotonic() - t_start
                print(f"  {done:>9} inserted, {done / el:8.0f} msg/s", flush=True)
                next_report += n // 10
    return time.monotonic() - t_start


def sample_ids(coll, room, k, rnd):
    """k ids of room, for the paging reads' bounds (taken once, untimed)."""
    ids = [d["_id"] for d in coll.find({"room": room}, {"_id": 1})]
    return rnd.sample(ids, min(k, len(ids))) if ids else []


def plan_summary(qp):
    """One line from an explain's queryPlanner: FerretDB on PostgreSQL gives PostgreSQL's plan
    tree (nodes, index, filter), on SQLite the rows of EXPLAIN QUERY PLAN; MongoDB its stages."""
    plan = qp.get("Plan", qp.get("winningPlan"))
    if isinstance(plan, list):
        return " / ".join(str(x).split("detail=", 1)[-1] for x in plan)
    if not isinstance(plan, dict):
        return str(qp)[:200]
    nodes, cond = [], ""
    while plan:
        n = plan.get("Node Type") or plan.get("stage") or "?"
        if plan.get("Index Name") or plan.get("indexName"):
            n += f" using {plan.get('Index Name') or plan.get('indexName')}"
        nodes.append(n)
        cond = plan.get("Index Cond") or plan.get("Filter") or plan.get("Recheck Cond") or cond
        sub = plan.get("Plans") or ([plan["inputStage"]] if "inputStage" in plan else [])
        plan = sub[0] if sub else None
    return " > ".join(nodes) + (f" ({cond})" if cond else "")


def timed(fn):
    t = time.perf_counter()
    n = fn()
    return (time.perf_counter() - t) * 1000, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", default=f"mongodb://127.0.0.1:{os.environ.get('CHAT_MONGO_PORT', '27017')}/")
    ap.add_argument("--db", default="chat_bench")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rooms", type=int, default=1000, help="ordinary rooms (plus one hot room)")
    ap.add_argument("--hot-share", type=float, default=0.05, help="share of messages in room 'hot'")
    ap.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    ap.add_argument("--reads", type=int, default=200, help="reads of each kind")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--fresh", action="store_true", help="drop the collection and fill it again")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    client = pymongo.MongoClient(args.uri, directConnection=True, serverSelectionTimeoutMS=10000,
                                 socketTimeoutMS=600000)
    db = client[args.db]
    coll = db["messages"]
    have = 0
    if not args.fresh and "messages" in db.list_collection_names():
        have = coll.estimated_document_count()  # FerretDB counts by reading them all
    print(f"store: {args.uri} {args.db}.messages, {client.server_info().get('version')}; "
          f"{have} documents there", flush=True)

    if args.fresh or have != args.messages:
        coll.drop()
        coll.create_index([("room", 1), ("_id", -1)], name="room_id_desc")
        print(f"filling {args.messages} messages over {args.rooms} rooms + 'hot' "
              f"({args.hot_share:.0%}), insert_many of {args.batch} ...", flush=True)
        secs = fill(coll, args.messages, args.rooms, args.hot_share, args.batch, args.seed)
        print(f"insert: {args.messages} messages in {secs:.1f} s = {args.messages / secs:.0f} msg/s",
              flush=True)
    else:
        print("reusing them (--fresh fills again)")
        coll.create_index([("room", 1), ("_id", -1)], name="room_id_desc")

    rnd = random.Random(args.seed + 1)
    hot_n = coll.count_documents({"room": "hot"})
    print(f"room 'hot' holds {hot_n} messages; an ordinary room about "
          f"{(args.messages - hot_n) // max(1, args.rooms)}", flush=True)

    lim = args.limit
    rooms = [room_name(rnd.randrange(args.rooms)) for _ in range(args.reads)]
    # bounds for the paging reads: an id of the same room, taken before the clock runs
    bounds = []
    for r in rooms[: max(1, args.reads // 10)]:
        bounds += [(r, x) for x in sample_ids(coll, r, 10, rnd)]
    rnd.shuffle(bounds)
    bounds = (bounds * (args.reads // max(1, len(bounds)) + 1))[: args.reads]

    def latest(r):
        return lambda: len(list(coll.find({"room": r}).sort("_id", -1).limit(lim)))

    def before(r, x):
        return lambda: len(list(coll.find({"room": r, "_id": {"$lt": x}}).sort("_id", -1).limit(lim)))

    def after(r, x):
        return lambda: len(list(coll.find({"room": r, "_id": {"$gt": x}}).sort("_id", 1).limit(lim)))

    kinds = {
        "latest": [latest(r) for r in rooms],
        "before": [before(r, x) for r, x in bounds],
        "after": [after(r, x) for r, x in bounds],
        "hot": [latest("hot")] * max(1, args.reads // 4),
    }
    # plans first (also warms the caches)
    r0, x0 = bounds[0]
    plans = {
        "latest": ({"room": r0}, {"_id": -1}),
        "before": ({"room": r0, "_id": {"$lt": x0}}, {"_id": -1}),
        "after": ({"room": r0, "_id": {"$gt": x0}}, {"_id": 1}),
    }
    for name, (flt, sort) in plans.items():
        try:
            e = db.command({"explain": {"find": "messages", "filter": flt, "sort": sort, "limit": lim}})
        except pymongo.errors.PyMongoError as ex:
            print(f"plan {name}: explain failed: {ex}")
            continue
        detail = plan_summary(e.get("queryPlanner", {}))
        push = " ".join(f"{k}={e[k]}" for k in ("filterPushdown", "sortPushdown", "limitPushdown") if k in e)
        print(f"plan {name}: {detail}; {push}", flush=True)

    print(f"{'read':8} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  docs")
    for name, fns in kinds.items():
        times, got = [], 0
        for fn in fns:
            ms, n = timed(fn)
            times.append(ms)
            got += n
        print(f"{name:8} {len(times):>5} {pct(times, 50):9.1f} {pct(times, 99):9.1f} "
              f"{max(times):9.1f}  {got / len(times):.0f} per read", flush=True)


if __name__ == "__main__":
    main()
