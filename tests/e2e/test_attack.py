"""Attacks against the running cluster while legitimate clients talk through HAProxy: oversized
and malformed upgrades, header floods, a slowloris upgrade and an incomplete one left idle,
10,000 bad-token upgrades in a burst, cross-origin upgrades, a token for a forbidden room and a
client token on the server API. The legitimate clients (two on each gateway, one room, a steady
stream of sends from one client per gateway) must lose nothing: every send acked, every message
received exactly once by all four, in the same order, no connection closed. Run with -s to see
the figures (answers by kind, the burst's time, memory before and after).

The raw attacks go straight to the gateways' ports (raw_ws.py), not through HAProxy: its stick
table closes a client address's connections past CHAT_CONN_RATE_LIMIT (1000 per 10 s) before
any response, which would hide the gateways' own answers, and the burst must reach them.

Memory. The cluster's gateways are ASan builds: AddressSanitizer keeps freed memory in its
quarantine (256 MiB by default; scripts/cluster.sh sets no ASAN_OPTIONS) to catch
use-after-free, so their RSS grows by what the attacks allocated and freed (about 19 KiB per
refused upgrade, +80 to +110 MiB each on a fresh cluster, until the quarantine is full) and does
not come back. Their bound is therefore the quarantine plus 32 MiB of slack. The real check runs
on a third gateway of the same build that the test starts with the quarantine off
(quarantine_size_mb=0): it takes the same attacks and another 10,000 bad-token upgrades, and its
RSS must end within 16 MiB of where it was (measured: about +1 MiB, and flat over 30,000 in a
row). Its log is scanned for sanitizer reports like the others.

Answers, as measured against libwebsockets 4.1.6 (docs/protocol.md, Connecting): a request
header over the gateway's 12 KiB (one long header, a long URI, 2,000 headers) or more repeated
headers than lws keeps fragments for is closed without any answer; a request line that is not
HTTP is answered 403 by lws; a GET /ws without a usable upgrade (HTTP/9.9, a NUL in a header)
426; Sec-WebSocket-Version 8 426; a foreign Origin 403 forbidden_origin; a bad token 401
unauthorized; a request that never completes is cut by lws's timeout for a connection still
sending its request (10 s), however slowly it trickles in.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import struct
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from chat_e2e import connect_on, extra_gateway, http_get, make_jwt, run, spawn_gateway, unique
from raw_ws import OP_CLOSE, OP_TEXT, Eof, RawWs

BURST = 10_000
BURST_THREADS = 32
SLOW_HOLD = 15.0  # the slowloris must be cut within this (lws cuts it at 10 s)
QUARANTINE_MIB = 256  # ASan's default quarantine_size_mb on 64-bit Linux
ASAN_SLACK_MIB = 32
CLEAN_SLACK_MIB = 16
SEND_EVERY = 0.1  # seconds between two sends of one legitimate sender


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _gateway_pids(cluster) -> list[int]:
    """The pids of gateway-1 and gateway-2 (scripts/cluster.sh's run/<name>.pid), in the order
    of cluster.gateway_ports."""
    return [int((cluster.data_dir / "run" / f"gateway-{i + 1}.pid").read_text().strip())
            for i in range(len(cluster.gateway_ports))]


def _raw(port: int, timeout: float = 10) -> RawWs:
    """A raw connection that resets at close (SO_LINGER 0), so that 10,000 of them leave no
    TIME_WAIT sockets holding this machine's ephemeral ports."""
    c = RawWs.connect(port, timeout=timeout)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return c


def _answer(port: int, send) -> object:
    """Runs send(RawWs) -> HttpAnswer on a new connection; returns the HTTP status, or "closed"
    when the gateway closed (or reset) the connection without any answer."""
    with _raw(port) as c:
        try:
            r = send(c)
        except (Eof, BrokenPipeError, ConnectionResetError):
            return "closed"
        return r.status, r


def _catalogue(port: int, token: str) -> Counter:
    """The one-off malformed and hostile upgrades against one gateway port, each with its exact
    answer; returns the answers by kind."""
    auth = [("Authorization", f"Bearer {token}")]
    seen: Counter = Counter()

    def expect(kind: str, want, send, error: str | None = None):
        got = _answer(port, send)
        status = got if got == "closed" else got[0]
        assert status == want, f":{port} {kind}: answered {status}, expected {want}: " \
                               f"{'' if got == 'closed' else got[1].raw[:300]!r}"
        if error is not None:
            assert json.loads(got[1].body)["error"] == error, got[1].body
        seen[f"{kind} -> {status}"] += 1

    expect("header of 20 KB", "closed",
           lambda c: c.upgrade("/ws", headers=auth + [("X-Pad", "a" * 20000)]))
    expect("URI of 20 KB", "closed", lambda c: c.upgrade("/ws?pad=" + "p" * 20000, headers=auth))
    expect("2,000 headers", "closed",
           lambda c: c.upgrade("/ws", headers=auth + [(f"X-Flood-{i}", "v") for i in range(2000)]))
    expect("1,000 repeated Accept headers", "closed",
           lambda c: c.upgrade("/ws", headers=auth + [("Accept", "v")] * 1000))
    expect("request line not HTTP", 403, lambda c: c.request(b"GARBAGE\r\n\r\n"))
    expect("binary junk", 403, lambda c: c.request(bytes(range(256)) * 4 + b"\r\n\r\n"))
    expect("HTTP/9.9", 426, lambda c: c.request(b"GET /ws HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n"))
    expect("NUL bytes in a header", 426,
           lambda c: c.request(b"GET /ws HTTP/1.1\r\nHost: \x00\x01\x02\r\n\r\n"))
    expect("Sec-WebSocket-Version 8", 426, lambda c: c.upgrade("/ws", headers=auth, version="8"),
           "unsupported_version")
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        expect("cross-origin", 403, lambda c: c.upgrade("/ws", headers=auth + [("Origin", origin)]),
               "forbidden_origin")
    expect("bad token", 401,
           lambda c: c.upgrade("/ws", headers=[("Authorization", "Bearer x.y.z")]),
           "unauthorized")
    # 500 small headers fit in the 12 KiB: an ordinary upgrade, served
    expect("500 headers within 12 KiB", 101,
           lambda c: c.upgrade("/ws", headers=auth + [(f"X-Many-{i}", "v") for i in range(500)]))
    return seen


def _burst(ports: list, tokens: list, n: int) -> tuple[Counter, float]:
    """n bad-token upgrades, BURST_THREADS at a time, spread over ports; (answers, seconds)."""

    def one(i: int):
        try:
            with _raw(ports[i % len(ports)]) as c:
                return c.upgrade("/ws", headers=[("Authorization",
                                                  f"Bearer {tokens[i % len(tokens)]}")]).status
        except (OSError, Eof) as e:  # TimeoutError is an OSError
            return type(e).__name__

    t0 = time.monotonic()
    with ThreadPoolExecutor(BURST_THREADS) as ex:
        answers = Counter(ex.map(one, range(n)))
    return answers, time.monotonic() - t0


def _slow(port: int, trickle: bool) -> float:
    """An upgrade request that never ends: one byte every 0.2 s (trickle) or 40 bytes and then
    nothing. Returns the seconds until the gateway cut it; fails past SLOW_HOLD."""
    req = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           + b"".join(b"X-Slow-%d: v\r\n" % i for i in range(2000)))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() - t0 < SLOW_HOLD:
            try:
                if trickle or i < 40:
                    s.send(req[i:i + 1])
                    i += 1
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    data = None
                if data == b"":
                    return time.monotonic() - t0
                assert not data, f":{port} answered a request still arriving: {data[:200]!r}"
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t0
            time.sleep(0.2)
        raise AssertionError(f":{port} still holds an unfinished request after {SLOW_HOLD}s "
                             f"({i} bytes sent {'a byte at a time' if trickle else 'then idle'})")
    finally:
        s.close()


def _api(port: int, token: str | None, body: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    h = {"Content-Type": "application/json"}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", "/api/v1/publish", body=json.dumps(body).encode(), headers=h)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _welcome(port: int, token: str) -> None:
    """A valid upgrade on port: 101 and a welcome, then a clean close."""
    with RawWs.connect(port) as c:
        r = c.upgrade("/ws", headers=[("Authorization", f"Bearer {token}")])
        assert r.status == 101, f":{port} after the attacks: {r.status} {r.raw[:300]!r}"
        _, op, payload = c.recv_frame()
        assert op == OP_TEXT and json.loads(payload)["type"] == "welcome", (op, payload[:200])
        c.send_frame(OP_CLOSE, struct.pack("!H", 1000))


def test_attacks_leave_legitimate_clients_and_memory_alone(cluster):
    room = unique("attacked")
    ports = list(cluster.gateway_ports)
    pids = _gateway_pids(cluster)
    now = int(time.time())
    bad_tokens = [
        "garbage",
        make_jwt({"sub": "mallory", "exp": now + 3600}, "not-the-secret-0123456789"),
        make_jwt({"sub": "mallory", "exp": now - 3600}, cluster.secret),
        make_jwt({"sub": "mallory", "exp": now + 3600}, cluster.secret, "none"),
    ]
    figures: dict = {}

    async def main(net):
        users = [unique(f"legit{i}") for i in range(4)]
        clients = [await connect_on(net, gw, u)
                   for gw, u in zip(("gw-1", "gw-2", "gw-1", "gw-2"), users)]
        for c in clients:
            await c.join(room)
        senders = clients[:2]  # one on each gateway; the other two only listen

        clean = await asyncio.to_thread(
            spawn_gateway, cluster, "gateway-attack", 10,
            ASAN_OPTIONS="quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
        try:
            loop_ports = ports + [clean.port]
            await asyncio.sleep(1)
            rss_before = [_rss_mib(p) for p in pids] + [_rss_mib(clean.proc.pid)]

            stop = asyncio.Event()
            sent: dict[str, list[str]] = {c.name: [] for c in senders}

            async def talk(c, tag):
                i = 0
                while not stop.is_set():
                    cid = f"{tag}-{i}"
                    await c.say(room, f"{tag} says {i}", cid)
                    sent[c.name].append(cid)
                    i += 1
                    await asyncio.sleep(SEND_EVERY)

            talkers = [asyncio.create_task(talk(c, f"s{k}")) for k, c in enumerate(senders)]
            # the slow requests run meanwhile, one of each kind on each cluster gateway
            slow = [asyncio.create_task(asyncio.to_thread(_slow, p, trickle))
                    for p in ports for trickle in (True, False)]
            await asyncio.sleep(1)

            answers: Counter = Counter()
            for p in loop_ports:
                answers += await asyncio.to_thread(_catalogue, p, cluster.token(unique("probe")))

            burst, took = await asyncio.to_thread(_burst, ports, bad_tokens, BURST)
            figures["burst"] = (burst, took)
            assert burst == Counter({401: BURST}), f"{BURST} bad-token upgrades: {dict(burst)}"
            burst_clean, took_clean = await asyncio.to_thread(_burst, [clean.port], bad_tokens,
                                                              BURST)
            figures["burst_clean"] = (burst_clean, took_clean)
            assert burst_clean == Counter({401: BURST}), f"quarantine-free: {dict(burst_clean)}"

            # a token for other rooms only: forbidden, the connection stays
            who = unique("fenced")
            fenced = await connect_on(net, "gw-2", who,
                                      token=cluster.token(who, rooms=[unique("elsewhere") + "-*"]))
            for what, frame in (("join", {"type": "join", "room": room}),
                                ("send", {"type": "send", "room": room, "text": "let me in"}),
                                ("history", {"type": "history", "room": room})):
                await fenced.send({**frame, "cid": what})
                await fenced.expect_error("forbidden", what, after=f"{what} outside the claim")
                answers[f"{what} outside the token's rooms -> forbidden"] += 1
            await fenced.ping(after="three refusals")

            # a client token on the server API: 403; none at all: 401
            for p in [cluster.public_port] + ports:
                for token, want in ((cluster.token(unique("client")), (403, "forbidden")),
                                    (None, (401, "unauthorized"))):
                    status, body = await asyncio.to_thread(
                        _api, p, token, {"room": room, "text": "injected", "from": users[0]})
                    assert (status, body.get("error")) == want, (p, status, body)
                    answers[f"publish with {'a client' if token else 'no'} token -> {status}"] += 1

            slow_took = await asyncio.gather(*slow)
            figures["slow"] = slow_took
            figures["answers"] = answers
            for p in loop_ports:
                await asyncio.to_thread(_welcome, p, cluster.token(unique("after")))

            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*talkers)
            await asyncio.sleep(3)  # the burst's sockets gone, ASan's threads idle
            rss_after = [_rss_mib(p) for p in pids] + [_rss_mib(clean.proc.pid)]
            figures["rss"] = (rss_before, rss_after)
        finally:
            await asyncio.to_thread(clean.stop)

        # nothing lost, nothing doubled, nothing injected, one order for everyone
        for c in senders:
            acks = await c.wait_acks(sent[c.name], timeout=30)
            assert len({a["id"] for a in acks.values()}) == len(acks), f"{c.name}: duplicate ids"
        total = sum(len(v) for v in sent.values())
        assert total >= 20, f"only {total} legitimate sends during the attacks"
        for c in clients:
            await c.wait_messages(room, total, timeout=30)
        await asyncio.sleep(0.5)  # anything extra would arrive now
        order = [m["id"] for m in clients[0].by_room[room]]
        for c in clients:
            msgs = c.by_room[room]
            assert len(msgs) == total, f"{c.name}: {len(msgs)} messages, {total} sent"
            assert [m["id"] for m in msgs] == order, (
                f"{c.name}: another order than {clients[0].name}")
            for s in senders:
                mine = [m["cid"] for m in msgs if m["from"] == s.welcome["user"]]
                assert mine == sent[s.name], f"{c.name}: {s.name}'s messages out of order or lost"
                assert all(m["id"] == s.acks[m["cid"]]["id"] for m in msgs
                           if m["from"] == s.welcome["user"]), f"{c.name}: ids differ from the acks"
            assert not c.closed, f"{c.name} was closed: {c.close_code} {c.close_reason!r}"
            await c.ping(after="the attacks")
        figures["legit"] = {s.name: len(sent[s.name]) for s in senders}

    t0 = time.monotonic()
    run(main, cluster, timeout=120)
    wall = time.monotonic() - t0

    burst, took = figures["burst"]
    burst_clean, took_clean = figures["burst_clean"]
    rss_before, rss_after = figures["rss"]
    names = [f"gateway-{i + 1} (ASan, quarantine on)" for i in range(len(ports))] + [
        "gateway-attack (ASan, quarantine off)"]
    print(f"\n[attack] wall time {wall:.1f}s; legitimate sends {figures['legit']}, all acked "
          f"and received once by 4 clients, in order")
    for kind, n in sorted(figures["answers"].items()):
        print(f"[attack] {n:>3} x {kind}")
    print(f"[attack] {BURST} bad-token upgrades on gateway-1/2: {dict(burst)} in {took:.2f}s "
          f"({BURST / took:.0f}/s); on gateway-attack: {dict(burst_clean)} in {took_clean:.2f}s")
    print("[attack] unfinished requests cut after "
          + ", ".join(f"{t:.1f}s" for t in figures["slow"]))
    for name, b, a in zip(names, rss_before, rss_after):
        print(f"[attack] RSS {name}: {b:.1f} MiB before, {a:.1f} MiB after ({a - b:+.1f})")

    for name, b, a in zip(names[:-1], rss_before, rss_after):
        assert a - b <= QUARANTINE_MIB + ASAN_SLACK_MIB, (
            f"{name}: RSS {b:.1f} -> {a:.1f} MiB, more than ASan's quarantine and "
            f"{ASAN_SLACK_MIB} MiB")
    assert rss_after[-1] - rss_before[-1] <= CLEAN_SLACK_MIB, (
        f"gateway-attack (no quarantine): RSS {rss_before[-1]:.1f} -> {rss_after[-1]:.1f} MiB "
        f"after {BURST} bad upgrades and the attacks: more than {CLEAN_SLACK_MIB} MiB kept")


def test_requests_read_at_once_are_bounded(cluster):
    """CHAT_MAX_HANDSHAKES: with 2, two unfinished requests hold both header tables and a third
    connection is not read (no answer) until one of them goes; then it is answered at once. The
    server API may hold only half of them: past that it answers 503 at once."""
    with extra_gateway(cluster, "gw-handshakes", port_index=11, CHAT_MAX_HANDSHAKES="2") as port:
        holders = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        try:
            for h in holders:
                h.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            time.sleep(0.5)
            third = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                third.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Connection: close\r\n\r\n")
                third.settimeout(1.5)
                try:
                    early = third.recv(4096)
                except socket.timeout:
                    early = None
                assert early is None, f"a third request was read past the bound: {early[:80]!r}"
                holders.pop().close()
                third.settimeout(3)
                answer = third.recv(4096)
                assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
            finally:
                third.close()
            holders.pop().close()
            # the server API keeps half of them free: with 2, one request under way (a publish
            # whose body has not come) and the next is answered 503 at once; probes still are
            token = cluster.token(unique("backend"), role="server")
            pending = socket.create_connection(("127.0.0.1", port), timeout=5)
            holders.append(pending)
            pending.sendall(b"POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Authorization: Bearer " + token.encode() + b"\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
            time.sleep(0.5)
            status, body = _api(port, token, {"room": unique("api"), "text": "x", "from": "a"})
            assert (status, body.get("error")) == (503, "unavailable"), (status, body)
            assert "under way" in body.get("message", ""), body
            assert http_get(port, "/healthz", timeout=3).status == 200
        finally:
            for h in holders:
                h.close()
