"""Runs last: no token this run used (chat_e2e.USED_TOKENS: every token minted by make_jwt, handed
out by /dev/token or sent by a test), no token signature and not the JWT secret appears in any
log of the cluster (gateways, persister, HAProxy, Kafka, FerretDB, PostgreSQL, extra gateways
and persisters of other tests). Before looking it makes sure there is something to find: tokens
sent by header, query string (through HAProxy, whose log holds request lines), first frame and
refused ones, log files that exist and are not empty, and a scanner that finds a planted token.
(conftest.py scans the logs once more after the cluster stopped, for what shutdown wrote.)"""

from __future__ import annotations

import time

import pytest

from chat_e2e import (USED_TOKENS, expect_http_status, find_secrets, make_jwt, run,
                      secret_needles, unique)


@pytest.mark.late(100)
def test_no_token_or_secret_in_any_log(cluster, tmp_path):
    async def main(net):
        for how in ("header", "query", "frame"):
            await net.connect(unique(f"sec-{how}"), how=how)
        forged = make_jwt({"sub": "forger", "exp": int(time.time()) + 600},
                          "a-wrong-secret-0123456789")
        assert await expect_http_status(cluster.ws_url,
                                        {"Authorization": f"Bearer {forged}"}) == 401
        c = await net.raw(None, None, name="frame-forger")
        await c.send({"type": "auth", "token": forged})
        assert (await c.wait_closed())[0] == 4001
        expired = make_jwt({"sub": "late", "exp": int(time.time()) - 3600}, cluster.secret)
        assert await expect_http_status(cluster.ws_url + "?access_token=" + expired) == 401

    run(main, cluster, timeout=60)
    time.sleep(1)  # let every process write what it has

    tokens = sorted(USED_TOKENS)
    assert len(tokens) >= 5, f"only {len(tokens)} tokens recorded: the recording is broken"
    needles = secret_needles(cluster.secret)

    # the scanner finds a token when there is one
    planted = tmp_path / "planted.log"
    planted.write_bytes(b"x " + tokens[0].encode() + b" y\n")
    assert find_secrets(planted.read_bytes(), needles) != []

    logs = sorted(cluster.log_dir.glob("*.log"))
    names = {p.stem for p in logs}
    for must in ("gateway-1", "gateway-2", "persister", "haproxy", "kafka"):
        assert must in names, f"no {must}.log in {cluster.log_dir}: {sorted(names)}"
        assert (cluster.log_dir / f"{must}.log").stat().st_size > 0, f"{must}.log is empty"
    leaks = []
    for log in logs:
        found = find_secrets(log.read_bytes(), needles)
        leaks += [f"{log.name}: {n[:24]}... " for n in found]
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks)
