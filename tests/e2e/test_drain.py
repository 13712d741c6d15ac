"""Stopping a gateway (SIGTERM) drains it: new upgrades get 503 and /healthz and /readyz answer
503 "draining" (so HAProxy and Kubernetes send people elsewhere), every message its clients
sent before the signal gets its ack, they are written what they are owed and closed with 1001,
and the process exits within CHAT_DRAIN_MS + 4 s. Nothing acked is lost: a member on another
gateway receives every acked message, once.

Also: an HAProxy reload (scripts/cluster.sh reload haproxy: a new process with -sf, the old one
finishing its connections) keeps established WebSocket connections working."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time

from chat_e2e import http_get, run, spawn_gateway, unique
from raw_ws import OP_TEXT, RawWs

DRAIN_MS = 4000
SENDS = 100


def test_sigterm_drains_the_gateway(cluster):
    gw = spawn_gateway(cluster, "gw-drain", port_index=9, CHAT_DRAIN_MS=str(DRAIN_MS))
    url = f"ws://127.0.0.1:{gw.port}/ws"
    room = unique("drain")
    user, other = unique("leaving"), unique("staying")
    try:
        # a member that stops reading, with a tiny receive window: what it is owed does not
        # fit, so it keeps the drain's last phase open (the gateway cuts it after 2 s) long
        # enough for the checks below
        silent = RawWs.connect(gw.port, rcvbuf=1024)
        resp = silent.upgrade("/ws", headers=[("Authorization", "Bearer " + cluster.token(unique("mute")))])
        assert resp.status == 101, resp
        silent.send_frame(OP_TEXT, json.dumps({"type": "join", "room": room}).encode())

        async def main(net):
            a = await net.connect(user, url=url, name="on-draining-gateway")
            b = await net.connect(other, name="elsewhere")  # through HAProxy: gw1 or gw2
            assert b.gateway != "gw-drain"
            await a.join(room)
            await b.join(room)
            for i in range(SENDS):
                await a.say(room, f"m{i} " + "x" * 4000, f"c{i}")
            t0 = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)

            # unready at once, and new upgrades refused with 503
            seen = set()
            for _ in range(40):
                try:
                    h = http_get(gw.port, "/healthz", timeout=1)
                    r = http_get(gw.port, "/readyz", timeout=1)
                except OSError:
                    break
                if h.status == 503 and r.status == 503 and r.json().get("status") == "draining":
                    seen.add("unready")
                    with RawWs.connect(gw.port) as c:
                        ans = c.upgrade("/ws", headers=[("Authorization",
                                                         "Bearer " + cluster.token(user))])
                    assert ans.status == 503, f"an upgrade while draining got {ans.status}"
                    seen.add("refused")
                    break
                await asyncio.sleep(0.05)
            assert seen == {"unready", "refused"}, f"while draining saw only {seen}"

            # every send before the signal is acked, then the connection closes with 1001
            acks = await a.wait_acks([f"c{i}" for i in range(SENDS)], timeout=DRAIN_MS / 1000 + 5)
            code, reason = await a.wait_closed(timeout=DRAIN_MS / 1000 + 5)
            assert code == 1001, f"closed with {code} {reason!r}, expected 1001"
            ids = [acks[f"c{i}"]["id"] for i in range(SENDS)]
            # the member elsewhere gets every acked message once, in order
            got = await b.wait_messages(room, SENDS, timeout=20)
            assert [m["id"] for m in got] == ids, "the other gateway's member missed or repeated"
            return t0

        t0 = run(main, cluster, timeout=60)
        rc = gw.proc.wait(timeout=DRAIN_MS / 1000 + 4 + 10)
        took = time.monotonic() - t0
        assert rc == 0, f"the drained gateway exited {rc}"
        assert took <= DRAIN_MS / 1000 + 4, f"the gateway took {took:.1f}s to exit after SIGTERM"
        m = re.search(r"drained in (\d+) ms", gw.log_text())
        assert m, "no 'drained in' line in the gateway's log"
        print(f"drain: SIGTERM to exit {took:.2f}s; the gateway's drain took {m.group(1)} ms")
        silent.close()
    finally:
        gw.stop()


def test_haproxy_reload_keeps_connections(cluster):
    room = unique("reload")
    u1, u2 = unique("before"), unique("after")

    async def main(net):
        a = await net.connect(u1, name="connected-before")
        await a.join(room)
        await asyncio.to_thread(cluster.script, "reload", "haproxy", timeout=60)
        # the old process keeps the tunnel; a new connection goes through the new process
        b = await net.connect(u2, name="connected-after")
        await b.join(room)
        await a.say(room, "through the old haproxy", "r1")
        await b.say(room, "through the new haproxy", "r2")
        for c in (a, b):
            got = await c.wait_messages(room, 2)
            assert sorted(m["cid"] for m in got) == ["r1", "r2"], got
        assert not a.closed

    run(main, cluster, timeout=90)
