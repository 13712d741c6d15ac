#!/usr/bin/env python3
"""Persister benchmark: how fast the persister stores a backlog, beside the store's own
bulk-insert rate measured in the same run on the same store.

1. The store alone: --messages documents shaped like the persister's ({_id: "PPPP-OOO...",
   room, from, name, text, ts: date, cid}, texts of the backlog's size) inserted with unordered
   insert_many batches of --batch documents (the persister's CHAT_BATCH_SIZE) into a fresh
   database, after creating the index chat-admin creates ({room: 1, _id: -1}). The rate is
   documents per second of wall time.
2. The persister: a fresh chat-persister (its own consumer group, so it reads the topic from
   the start, and its own fresh database with chat-admin's index) drains the topic: every
   record the run has produced so far. Its rate is the documents it stored divided by the time
   from the end of its first batch to the end of its last (from its debug log's batch lines).

Nothing else may write to the store meanwhile: scripts/bench.sh stops the cluster's own
persister for the measurement.

Prints one JSON object (to --json too): the two rates and their ratio. It measures; it
asserts nothing. scripts/bench.sh runs it as the scenario persister-100k, after producing
100,000 messages through the gateways.

  tests/bench/persister_rate.py --mongo-port P --kafka-port K --persister BIN
                                [--messages 100000] [--batch 500] [--json FILE]
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pymongo


def store_rate(client, n, batch, text_len):
    db = client["chat_bench_insert"]
    db.drop_collection("messages")
    coll = db["messages"]
    coll.create_index([("room", 1), ("_id", -1)], name="room_id_desc")
    text = "x" * max(1, text_len)
    now = datetime.datetime.now(datetime.timezone.utc)
    docs = [{"_id": f"{i % 12:04x}-{i:020d}", "room": f"room-{i % 100}", "from": f"user-{i % 997}",
             "name": "Bench User", "text": text, "ts": now, "cid": f"c{i}"} for i in range(n)]
    t0 = time.monotonic()
    for k in range(0, n, batch):
        coll.insert_many(docs[k:k + batch], ordered=False)
    dt = time.monotonic() - t0
    stored = coll.estimated_document_count()
    client.drop_database("chat_bench_insert")
    return stored / dt, stored, dt


BATCH_RE = re.compile(r"^(\S+) DEBUG persister: stored batch: (\d+) messages")


def persister_rate(client, args):
    dbname = "chat_bench_persist"
    client.drop_database(dbname)
    uri = f"mongodb://127.0.0.1:{args.mongo_port}/{dbname}"
    brokers = f"127.0.0.1:{args.kafka_port}"
    # debug: the persister logs each batch it stored, with its size; the rate comes from those
    # lines (the store's document count is an estimate on FerretDB, and an exact count costs
    # the store a scan)
    env = dict(os.environ, CHAT_MONGO_URI=uri, CHAT_KAFKA_BROKERS=brokers,
               CHAT_KAFKA_GROUP=f"bench-persister-{os.getpid()}-{int(time.time())}",
               CHAT_BATCH_SIZE=str(args.batch), CHAT_LOG_LEVEL="debug",
               CHAT_METRICS_LISTEN="off")  # the cluster's persister has the metrics port
    coll = client[dbname]["messages"]
    coll.create_index([("room", 1), ("_id", -1)], name="room_id_desc")  # chat-admin's index
    log = tempfile.NamedTemporaryFile(prefix="bench-persister-", suffix=".log", delete=False)
    proc = subprocess.Popen([args.persister], env=env, stdout=log, stderr=subprocess.STDOUT)
    batches = []  # (time, documents)
    try:
        seen = 0
        last_change = time.monotonic()
        deadline = last_change + args.timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if proc.poll() is not None:
                sys.exit(f"persister_rate: the persister exited {proc.returncode}; see {log.name}")
            with open(log.name, errors="replace") as f:
                lines = f.read().splitlines()
            if len(lines) != seen:
                seen = len(lines)
                last_change = time.monotonic()
            elif batches or any(BATCH_RE.match(x) for x in lines):
                if time.monotonic() - last_change > 3:
                    break  # nothing new for 3 s: the backlog is stored
        with open(log.name, errors="replace") as f:
            for line in f:
                m = BATCH_RE.match(line)
                if m:
                    t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
                    batches.append((t.timestamp(), int(m.group(2))))
        if len(batches) < 2:
            sys.exit(f"persister_rate: fewer than 2 batches stored; see {log.name}")
        # from the end of the first batch to the end of the last: the first is not counted
        span = batches[-1][0] - batches[0][0]
        docs = sum(n for _, n in batches)
        rate = (docs - batches[0][1]) / span if span > 0 else 0.0
        return rate, docs, span
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        client.drop_database(dbname)
        os.unlink(log.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mongo-port", type=int, required=True)
    ap.add_argument("--kafka-port", type=int, required=True)
    ap.add_argument("--persister", required=True)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--text", type=int, default=100, help="bytes of text per document")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--json")
    args = ap.parse_args()
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{args.mongo_port}/",
                                 serverSelectionTimeoutMS=10000)
    print(f"persister_rate: the store alone: {args.messages} documents in batches of "
          f"{args.batch}", flush=True)
    s_rate, s_n, s_dt = store_rate(client, args.messages, args.batch, args.text)
    print(f"persister_rate: store {s_rate:.0f} docs/s ({s_n} in {s_dt:.1f}s); now a fresh "
          f"persister drains the topic", flush=True)
    p_rate, p_n, p_dt = persister_rate(client, args)
    row = {"name": "persister", "store_docs_per_s": round(s_rate), "store_docs": s_n,
           "persister_docs_per_s": round(p_rate), "persister_docs": p_n,
           "persister_seconds": round(p_dt, 2), "batch": args.batch,
           "ratio": round(p_rate / s_rate, 3) if s_rate else None}
    print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f)


if __name__ == "__main__":
    main()
