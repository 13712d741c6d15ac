"""TLS: the local cluster's HAProxy serves https:// and wss:// on CHAT_TLS_PORT with a
certificate signed by the CA scripts/cluster.sh made (tls/ca.crt in the data directory), and a
gateway can terminate TLS itself (CHAT_TLS_CERT, CHAT_TLS_KEY). Also: HAProxy's limit of new
connections per client address (CHAT_CONN_RATE_LIMIT), on a second HAProxy with a low limit.

Certificates are verified for real (Python's ssl with the CA file, host name checked); the
test without the CA proves that verification is what lets the others in."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from chat_e2e import REPO, extra_gateway, http_get, run, tls_context, unique, ws_open


def _ca(cluster):
    assert cluster.ca_file.is_file(), f"scripts/cluster.sh made no CA at {cluster.ca_file}"
    return tls_context(cluster.ca_file)


def test_wss_through_haproxy_end_to_end(cluster):
    """welcome, join, send, ack and the message, over wss:// with the CA; a plain ws:// member
    of the same room receives it too."""
    room = unique("tls")

    async def main(net):
        ctx = _ca(cluster)
        alice = await net.connect(unique("alice"), url=cluster.wss_url, ssl=ctx)
        assert alice.welcome.get("protocol") == 2, alice.welcome
        plain = await net.connect(unique("bob"))
        await alice.join(room)
        await plain.join(room)
        await alice.say(room, "over tls", "t1")
        ack = (await alice.wait_acks(["t1"]))["t1"]
        for c in (alice, plain):
            msgs = await c.wait_messages(room, 1)
            assert [m["text"] for m in msgs] == ["over tls"], msgs
            assert msgs[0]["id"] == ack["id"]
        # the query-string token works over wss as well
        q = await net.connect(unique("carol"), how="query", url=cluster.wss_url, ssl=ctx)
        await q.ping()

    run(main, cluster)


def test_wss_without_the_ca_is_refused(cluster):
    """The system's CAs do not know the local CA: certificate verification fails."""

    async def main(net):
        with pytest.raises(ssl.SSLCertVerificationError):
            await ws_open(cluster.wss_url, {"Authorization": f"Bearer {cluster.token('x')}"},
                          ssl=tls_context(None))

    run(main, cluster)


def test_certificate_names_127_0_0_1_and_localhost(cluster):
    ctx = _ca(cluster)
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", cluster.tls_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
                assert tls.selected_alpn_protocol() in (None, "http/1.1")
    # another name is not covered
    with socket.create_connection(("127.0.0.1", cluster.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="chat.example.com")


def test_https_page_with_the_ca(cluster):
    """The web client over https, with headers that let it open wss:// to the same origin."""
    r = http_get(cluster.tls_port, "/", tls_ca=cluster.ca_file)
    assert r.status == 200, f"https GET / -> {r.status}"
    assert b"<html" in r.body.lower() and b"app.js" in r.body, r.body[:300]
    csp = r.headers.get("content-security-policy", "")
    assert "connect-src 'self' ws: wss:" in csp, csp
    r = http_get(cluster.tls_port, "/app.js", tls_ca=cluster.ca_file)
    assert r.status == 200 and b"wss" in r.body
    # HAProxy's own monitor and the gateways' health over https too
    assert http_get(cluster.tls_port, "/healthz", tls_ca=cluster.ca_file).status == 200


def test_https_origin_is_the_page_origin(cluster):
    """A page loaded from https://127.0.0.1:<tls port> may open the WebSocket (same origin via
    Host); the http origin of the same host and port, or another site, may not."""

    async def main(net):
        ctx = _ca(cluster)
        token = cluster.token(unique("page"))
        own = f"https://127.0.0.1:{cluster.tls_port}"
        ws = await ws_open(cluster.wss_url, {"Authorization": f"Bearer {token}", "Origin": own},
                           ssl=ctx)
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first.get("type") == "welcome", first
        finally:
            await ws.close()
        for other in ("https://evil.example", f"https://127.0.0.1:{cluster.public_port}"):
            status = await _refused_status(cluster.wss_url, token, other, ctx)
            assert status == 403, f"Origin {other}: HTTP {status}, expected 403"

    run(main, cluster)


async def _refused_status(url, token, origin, ctx):
    from websockets.exceptions import InvalidStatus
    try:
        ws = await ws_open(url, {"Authorization": f"Bearer {token}", "Origin": origin}, ssl=ctx)
    except InvalidStatus as e:
        return e.response.status_code
    await ws.close()
    raise AssertionError(f"upgrade with Origin {origin} was accepted")


def test_gateway_terminates_tls_itself(cluster):
    """CHAT_TLS_CERT/CHAT_TLS_KEY: an extra gateway serves wss:// and https:// on its own port
    (with the local cluster's server certificate), and no longer plain ws://."""
    tls = cluster.data_dir / "tls"
    room = unique("gwtls")
    with extra_gateway(cluster, "gw-tls", port_index=3, tls_ca=cluster.ca_file,
                       CHAT_TLS_CERT=str(tls / "server.crt"),
                       CHAT_TLS_KEY=str(tls / "server.key")) as port:
        url = f"wss://127.0.0.1:{port}/ws"

        async def main(net):
            ctx = _ca(cluster)
            a = await net.connect(unique("alice"), url=url, ssl=ctx)
            assert a.welcome.get("gateway") == "gw-tls", a.welcome
            b = await net.connect(unique("bob"))  # through HAProxy, another gateway
            await a.join(room)
            await b.join(room)
            await b.say(room, "to the tls gateway", "g1")
            await b.wait_acks(["g1"])
            msgs = await a.wait_messages(room, 1)
            assert msgs[0]["text"] == "to the tls gateway"
            await a.say(room, "from the tls gateway", "g2")
            await a.wait_acks(["g2"])
            assert [m["text"] for m in await b.wait_messages(room, 2)][1] == "from the tls gateway"
            # without the CA: refused
            with pytest.raises(ssl.SSLCertVerificationError):
                await ws_open(url, ssl=tls_context(None))
            # plain ws:// on the TLS port gets no WebSocket
            with pytest.raises(Exception):
                ws = await ws_open(f"ws://127.0.0.1:{port}/ws",
                                   {"Authorization": f"Bearer {cluster.token('p')}"})
                await ws.close()

        run(main, cluster)
        r = http_get(port, "/readyz", tls_ca=cluster.ca_file)
        assert r.status == 200 and r.json().get("status") == "ready"


def _gateway_exit(cluster, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    e.update({"CHAT_JWT_SECRET": cluster.secret, "CHAT_LISTEN": "127.0.0.1:1"}, **env)
    p = subprocess.run([str(cluster.build_dir / "gateway" / "chat-gateway")], env=e,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


@pytest.mark.parametrize("case", ["cert only", "key only", "not a cert", "wrong key", "missing"])
def test_gateway_tls_bad_files_stop_it_at_start(cluster, case, tmp_path):
    tls = cluster.data_dir / "tls"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    env, want = {
        "cert only": ({"CHAT_TLS_CERT": str(tls / "server.crt")}, "CHAT_TLS_KEY"),
        "key only": ({"CHAT_TLS_KEY": str(tls / "server.key")}, "CHAT_TLS_CERT"),
        "not a cert": ({"CHAT_TLS_CERT": str(junk), "CHAT_TLS_KEY": str(tls / "server.key")},
                       "CHAT_TLS_CERT"),
        "wrong key": ({"CHAT_TLS_CERT": str(tls / "server.crt"),
                       "CHAT_TLS_KEY": str(tls / "ca.key")}, "CHAT_TLS_KEY"),
        "missing": ({"CHAT_TLS_CERT": str(tmp_path / "none.crt"),
                     "CHAT_TLS_KEY": str(tls / "server.key")}, "CHAT_TLS_CERT"),
    }[case]
    rc, err = _gateway_exit(cluster, **env)
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert want in err, f"stderr does not name {want}: {err!r}"


def test_haproxy_limits_new_connections_per_address(cluster):
    """The shipped HAProxy config with CHAT_CONN_RATE_LIMIT=5: five new connections from
    127.0.0.1 within 10 s are served, the next ones are closed unanswered."""
    base = max(cluster.gateway_ports) + 8
    env = dict(os.environ)
    env.update({"CHAT_PUBLIC_BIND": f"127.0.0.1:{base}", "CHAT_STATS_BIND": f"127.0.0.1:{base + 1}",
                "CHAT_GW1_ADDR": f"127.0.0.1:{cluster.gateway_ports[0]}",
                "CHAT_GW2_ADDR": f"127.0.0.1:{cluster.gateway_ports[1]}",
                "CHAT_CONN_RATE_LIMIT": "5"})
    env.pop("CHAT_TLS_BIND", None)
    log = open(cluster.log_dir / "haproxy-limit.log", "ab")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(REPO / "deploy/haproxy/haproxy.cfg")],
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait for the listener without opening a connection (which would count)
            with open("/proc/net/tcp") as f:
                if any(f":{base:04X} " in line and line.split()[3] == "0A" for line in f):
                    break
            assert proc.poll() is None, "haproxy exited; see logs/haproxy-limit.log"
            assert time.monotonic() < deadline, "haproxy did not listen within 10 s"
            time.sleep(0.1)
        outcomes = []
        for _ in range(8):
            try:
                r = http_get(base, "/haproxy-healthz", timeout=5)
                outcomes.append(r.status)
            except (OSError, http.client.HTTPException) as e:
                outcomes.append(type(e).__name__)
        assert outcomes[:5] == [200] * 5, outcomes
        assert all(o != 200 for o in outcomes[5:]), f"served past the limit: {outcomes}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
