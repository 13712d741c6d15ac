"""Key rotation with a JSON Web Key Set (CHAT_JWT_JWKS): an extra gateway verifies RS256 tokens
with the keys of a JWKS file, picked by the token's kid. Keys are made with the openssl command,
their JWKs and the tokens with build/tools/chat-token (--jwk, --key, --kid), as a user would.

Rotation: tokens of key A work; the file is rewritten to hold only key B; then B works, A is
refused (401 at the upgrade, 4001 as a first frame), and connections opened with A stay open
and keep working. Once by the file watch (the file replaced), once by SIGHUP (the file rewritten
in place with its size and time kept, so that only the signal can make the gateway see it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from chat_e2e import expect_http_status, run, spawn_gateway, unique


def _tool(cluster):
    return str(cluster.build_dir / "tools" / "chat-token")


class Keys:
    """RSA key pairs (openssl genpkey) in a directory; JWKs and tokens from chat-token."""

    def __init__(self, cluster, where):
        self.cluster, self.dir = cluster, where

    def make(self, kid: str) -> str:
        path = self.dir / f"{kid}.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", str(path)], check=True,
                       capture_output=True)
        return kid

    def jwk(self, kid: str) -> dict:
        out = subprocess.run([_tool(self.cluster), "--jwk", "--key", str(self.dir / f"{kid}.pem"),
                              "--kid", kid], check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def token(self, kid: str, sub: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        return subprocess.run([_tool(self.cluster), "--sub", sub, "--key",
                               str(self.dir / f"{kid}.pem"), "--kid", kid, "--ttl", "600"],
                              check=True, capture_output=True, text=True, env=env).stdout.strip()


def _write_set(path, jwks: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": jwks}))
    os.replace(tmp, path)


async def _refused(port, token) -> None:
    status = await expect_http_status(f"ws://127.0.0.1:{port}/ws",
                                      {"Authorization": f"Bearer {token}"})
    assert status == 401, f"HTTP {status}, expected 401"


async def _wait_refused(port, token, timeout=10.0) -> None:
    """Until the gateway refuses token (it reads the file at most a second after a change)."""
    from websockets.exceptions import InvalidStatus
    from chat_e2e import ws_open
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = await ws_open(f"ws://127.0.0.1:{port}/ws", {"Authorization": f"Bearer {token}"})
        except InvalidStatus as e:
            assert e.response.status_code == 401, e.response.status_code
            return
        await ws.close()
        assert time.monotonic() < deadline, f"the old key still works {timeout}s after rotation"
        import asyncio
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("how", ["watch", "sighup"])
def test_jwks_rotation(cluster, tmp_path, how):
    keys = Keys(cluster, tmp_path)
    a, b = keys.make("key-a"), keys.make("key-b")
    jwks = tmp_path / "jwks.json"
    _write_set(jwks, [keys.jwk(a)])
    room = unique("rot")
    node = f"gw-jwks-{how}"
    gw = spawn_gateway(cluster, node, port_index=4, CHAT_JWT_ALG="RS256", CHAT_JWT_JWKS=str(jwks),
                       CHAT_JWT_SECRET="", CHAT_DEV_TOKENS="0")
    try:
        port = gw.port
        url = f"ws://127.0.0.1:{port}/ws"

        async def main(net):
            alice_a = keys.token(a, unique("alice"))
            bob_b = keys.token(b, unique("bob"))
            old = await net.connect(token=alice_a, url=url, name="alice@A")
            await old.join(room)
            await _refused(port, bob_b)  # B is not in the set yet
            # an HS256 token signed with the cluster's secret: refused, the algorithm is pinned
            await _refused(port, cluster.token(unique("hs")))

            if how == "watch":
                _write_set(jwks, [keys.jwk(b)])
            else:
                # same length (kids of equal length, 2048-bit keys), same inode, same time:
                # nothing the watch could see; the signal must make the gateway read it
                st = os.stat(jwks)
                text = json.dumps({"keys": [keys.jwk(b)]})
                with open(jwks, "r+") as f:
                    assert len(text) == st.st_size, (len(text), st.st_size)
                    f.write(text)
                os.utime(jwks, ns=(st.st_atime_ns, st.st_mtime_ns))
                time.sleep(2.5)  # more than two watch periods: A must still be in force
                fresh = await net.connect(token=keys.token(a, unique("alice2")), url=url)
                await fresh.ping("a token of A before SIGHUP")
                os.kill(gw.proc.pid, signal.SIGHUP)

            await _wait_refused(port, keys.token(a, unique("late")))
            # the first-frame path refuses it too
            late = await net.raw(url=url, name="late")
            await late.send({"type": "auth", "token": alice_a})
            code, _ = await late.wait_closed()
            assert code == 4001, code
            # B works now, and the connection opened with A is still there and working
            new = await net.connect(token=bob_b, url=url, name="bob@B")
            await new.join(room)
            await old.ping("rotation")
            await old.say(room, "still here", "r1")
            await old.wait_acks(["r1"])
            assert [m["text"] for m in await new.wait_messages(room, 1)] == ["still here"]

        run(main, cluster)
        assert "CHAT_JWT_JWKS read again" in gw.log_text(), "the gateway did not log the new key set"
    finally:
        gw.stop()
