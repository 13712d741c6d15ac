#!/usr/bin/env python3
"""End-to-end latency benchmark: send on one gateway, receive on the other.

Connects a sender and a receiver through the public address until they sit on different
gateways (welcome.gateway), joins both to a fresh room, sends at a steady rate and measures,
for each message, send -> ack at the sender and send -> delivery at the receiver. Prints
p50/p90/p99/max. It measures; it asserts nothing (exit 1 only if messages went missing).

  tests/bench/latency.py [--url http://127.0.0.1:8080] [--rate 200] [--seconds 10]

Needs a running cluster with development tokens (make run) and the websockets package
(scripts/deps.sh puts it in the project venv).
"""
import argparse
import asyncio
import json
import statistics
import time
import urllib.request

import websockets


def token(base, user):
    with urllib.request.urlopen(f"{base}/dev/token?user={user}", timeout=5) as r:
        return json.load(r)["token"]


async def connect(ws_url, tok):
    ws = await websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {tok}"},
                                  max_size=2**20)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return ws, welcome["gateway"]


async def place(base, ws_url, nsenders):
    """nsenders senders on one gateway and a receiver on another (HAProxy: leastconn)."""
    by_gw = {}
    for i in range(4 * (nsenders + 1)):
        ws, gw = await connect(ws_url, token(base, f"bench-{i}"))
        by_gw.setdefault(gw, []).append(ws)
        gws = sorted(by_gw, key=lambda g: -len(by_gw[g]))
        if len(gws) >= 2 and len(by_gw[gws[0]]) >= nsenders:
            senders = by_gw[gws[0]][:nsenders]
            receiver = by_gw[gws[1]][0]
            for ws in by_gw[gws[0]][nsenders:] + by_gw[gws[1]][1:]:
                await ws.close()
            return senders, receiver, gws[0], gws[1]
    raise SystemExit("could not place the clients on two different gateways")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="public HTTP address")
    ap.add_argument("--rate", type=float, default=100, help="messages per second, in all")
    ap.add_argument("--seconds", type=float, default=10, help="how long to send")
    ap.add_argument("--per-sender", type=float, default=15,
                    help="messages per second per connection (stay under CHAT_RATE)")
    args = ap.parse_args()
    base = args.url.rstrip("/")
    ws_url = base.replace("http", "ws", 1) + "/ws"

    nsenders = max(1, int(-(-args.rate // args.per_sender)))
    senders, receiver, gw_s, gw_r = await place(base, ws_url, nsenders)
    room = f"bench-{int(time.time() * 1000)}"
    for ws in senders + [receiver]:
        await ws.send(json.dumps({"type": "join", "room": room}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "joined":
            pass

    total = int(args.rate * args.seconds)
    sent_at, acked, delivered, errors = {}, {}, {}, []

    async def read_sender(sender):
        while True:
            f = json.loads(await sender.recv())
            if f["type"] == "ack":
                acked[f["cid"]] = time.perf_counter()
            elif f["type"] == "error":
                errors.append(f)

    async def read_receiver():
        while len(delivered) < total:
            f = json.loads(await receiver.recv())
            if f["type"] == "message" and f.get("cid") in sent_at:
                delivered[f["cid"]] = time.perf_counter()

    readers = [asyncio.create_task(read_sender(ws)) for ws in senders]
    readers.append(asyncio.create_task(read_receiver()))
    start = time.perf_counter()
    for i in range(total):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        cid = f"b{i}"
        sent_at[cid] = time.perf_counter()
        await senders[i % nsenders].send(
            json.dumps({"type": "send", "room": room, "text": f"m{i}", "cid": cid}))
    deadline = time.perf_counter() + 30
    while (len(delivered) < total or len(acked) + len(errors) < total) and \
            time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for t in readers:
        t.cancel()
    for ws in senders + [receiver]:
        await ws.close()

    def report(name, done):
        lat = [(done[c] - sent_at[c]) * 1000 for c in done]
        if not lat:
            print(f"{name}: none received")
            return
        print(f"{name}: n={len(lat)} p50={pct(lat, 50):.2f} ms p90={pct(lat, 90):.2f} ms "
              f"p99={pct(lat, 99):.2f} ms max={max(lat):.2f} ms mean={statistics.mean(lat):.2f} ms")

    print(f"latency benchmark: {total} messages at {args.rate:g}/s from {nsenders} "
          f"connection(s) on {gw_s}, receiver on {gw_r}, room {room}")
    report("send -> ack (sender)", acked)
    report("send -> delivery (other gateway)", delivered)
    missing = total - len(delivered)
    if errors:
        print(f"errors: {len(errors)}, first: {errors[0]}")
    if missing or len(acked) < total:
        print(f"MISSING: {total - len(acked)} acks, {missing} deliveries")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
