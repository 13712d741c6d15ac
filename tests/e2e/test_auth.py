"""Authentication through HAProxy: every bad token is refused with HTTP 401 before the upgrade
(Authorization header and ?access_token=), and with close 4001 as a first-frame auth; a
non-auth first frame or silence also closes with 4001; a valid token works by each of the three
methods. A third gateway started by hand checks issuer/audience enforcement."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import pytest

from websockets.exceptions import InvalidStatus

from chat_e2e import (expect_http_status, extra_gateway, http_get, make_jwt, run, unique,
                      ws_open)


def _now() -> int:
    return int(time.time())


# Each builder gets the cluster and returns a token that must be refused.
BAD_TOKENS = {
    "expired": lambda c: make_jwt({"sub": "u-exp", "exp": _now() - 3600}, c.secret),
    "nbf-in-future": lambda c: make_jwt(
        {"sub": "u-nbf", "exp": _now() + 7200, "nbf": _now() + 3600}, c.secret),
    "wrong-secret": lambda c: make_jwt(
        {"sub": "u-ws", "exp": _now() + 3600}, "not-the-secret-0123456789"),
    "tampered-payload": lambda c: _tamper(c),
    "alg-none": lambda c: make_jwt({"sub": "u-none", "exp": _now() + 3600}, c.secret, "none"),
    "alg-none-signed": lambda c: make_jwt(
        {"sub": "u-none2", "exp": _now() + 3600}, c.secret, "none", sign_with="HS256"),
    "hs384": lambda c: make_jwt({"sub": "u-384", "exp": _now() + 3600}, c.secret, "HS384"),
    "hs512": lambda c: make_jwt({"sub": "u-512", "exp": _now() + 3600}, c.secret, "HS512"),
    "rs256-hmac-confusion": lambda c: make_jwt(
        {"sub": "u-rs", "exp": _now() + 3600}, c.secret, "RS256", sign_with="HS256"),
    "missing-sub": lambda c: make_jwt({"exp": _now() + 3600, "name": "No Sub"}, c.secret),
    "empty-sub": lambda c: make_jwt({"sub": "", "exp": _now() + 3600}, c.secret),
    "numeric-sub": lambda c: make_jwt({"sub": 12345, "exp": _now() + 3600}, c.secret),
    "missing-exp": lambda c: make_jwt({"sub": "u-noexp"}, c.secret),
    "garbage": lambda c: "garbage",
    "garbage-3-parts": lambda c: "a.b.c",
    "empty-signature": lambda c: make_jwt(
        {"sub": "u-es", "exp": _now() + 3600}, c.secret).rsplit(".", 1)[0] + ".",
}


def _tamper(c) -> str:
    good = make_jwt({"sub": "u-tamper", "exp": _now() + 3600}, c.secret)
    evil = make_jwt({"sub": "admin", "exp": _now() + 3600}, c.secret)
    h, _, s = good.split(".")
    return ".".join([h, evil.split(".")[1], s])


@pytest.mark.parametrize("how", ["header", "query"])
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_refused_before_upgrade(cluster, case, how):
    token = BAD_TOKENS[case](cluster)

    async def main(net):
        if how == "header":
            status = await expect_http_status(cluster.ws_url, {"Authorization": f"Bearer {token}"})
        else:
            status = await expect_http_status(cluster.ws_url + "?access_token=" + quote(token, safe=""))
        assert status == 401, f"{case} via {how}: HTTP {status}, expected 401"

    run(main, cluster, timeout=20)


def test_401_response_body_and_headers(cluster):
    """The refusal is a JSON body {"error":"unauthorized","message":...} with the same security
    headers as every other response."""
    async def main(net):
        try:
            ws = await ws_open(cluster.ws_url, {"Authorization": "Bearer garbage"})
        except InvalidStatus as e:
            resp = e.response
        else:
            await ws.close()
            raise AssertionError("upgrade with a garbage token succeeded")
        assert resp.status_code == 401
        body = json.loads(resp.body.decode())
        assert body.get("error") == "unauthorized" and body.get("message"), body
        assert "script-src 'self'" in (resp.headers.get("Content-Security-Policy") or ""), resp.headers
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", resp.headers

    run(main, cluster, timeout=20)


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_first_frame_closes_4001(cluster, case):
    token = BAD_TOKENS[case](cluster)

    async def main(net):
        c = await net.raw(name=f"first-frame {case}")
        await c.send({"type": "auth", "token": token})
        code, reason = await c.wait_closed(timeout=10)
        assert code == 4001, f"{case}: closed with {code} {reason!r}, expected 4001; frames {c.frames}"
        assert reason, f"{case}: close 4001 without a reason"
        assert not any(f.get("type") == "welcome" for f in c.frames), c.frames

    run(main, cluster, timeout=20)


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"ping"}',
        '{"type":"join","room":"general"}',
        '{"type":"auth"}',
        '{"type":"auth","token":5}',
        "not json",
        '["auth"]',
    ],
    ids=["ping", "join", "auth-no-token", "auth-token-not-string", "not-json", "array"],
)
def test_non_auth_first_frame_closes_4001(cluster, frame):
    async def main(net):
        c = await net.raw(name="first-frame")
        await c.send_raw(frame)
        code, reason = await c.wait_closed(timeout=10)
        assert code == 4001, f"first frame {frame!r}: closed with {code} {reason!r}; frames {c.frames}"
        assert reason, "close 4001 without a reason"

    run(main, cluster, timeout=20)


def test_auth_timeout_closes_4001(cluster):
    async def main(net):
        t0 = time.monotonic()
        c = await net.raw(name="silent")
        code, reason = await c.wait_closed(timeout=cluster.auth_timeout + 8)
        took = time.monotonic() - t0
        assert code == 4001, f"closed with {code} {reason!r} after {took:.1f}s, expected 4001"
        assert reason, "close 4001 without a reason"
        assert took >= cluster.auth_timeout - 0.5, (
            f"closed after {took:.1f}s, before the {cluster.auth_timeout}s auth timeout")

    run(main, cluster, timeout=cluster.auth_timeout + 20)


@pytest.mark.parametrize("how", ["header", "query", "frame"])
def test_valid_token_welcome(cluster, how):
    user = unique(f"ok-{how}")

    async def main(net):
        c = await net.connect(token=cluster.token(user, name="Valid User"), how=how, name=user)
        assert c.welcome.get("user") == user, c.welcome
        assert c.welcome.get("gateway") in ("gw-1", "gw-2"), c.welcome
        await c.ping()
        # once authenticated, another auth frame is an error, not a re-login
        await c.send({"type": "auth", "token": cluster.token(unique("other"))})
        await c.expect_error("already_authenticated", after="a second auth")
        await c.ping(after="already_authenticated")

    run(main, cluster, timeout=30)


def test_exp_within_leeway_accepted(cluster):
    """exp 5 s ago is inside the default 30 s leeway."""
    user = unique("leeway")

    async def main(net):
        token = make_jwt({"sub": user, "exp": _now() - 5}, cluster.secret)
        c = await net.connect(token=token, how="header", name=user)
        assert c.welcome.get("user") == user

    run(main, cluster, timeout=20)


def test_direct_gateway_ports_authenticate(cluster):
    """The same works on each gateway port directly (no HAProxy), and reports that gateway."""
    async def main(net):
        seen = set()
        for i in range(len(cluster.gateway_ports)):
            user = unique(f"direct{i}")
            c = await net.connect(user, url=cluster.gateway_ws_url(i), name=user)
            assert c.welcome.get("user") == user
            seen.add(c.welcome.get("gateway"))
            status = await expect_http_status(cluster.gateway_ws_url(i),
                                              {"Authorization": "Bearer garbage"})
            assert status == 401
        assert len(seen) == len(cluster.gateway_ports), f"gateways report node ids {seen}"

    run(main, cluster, timeout=30)


# --------------------------------------------------------------------------------------------
# issuer / audience: a third gateway started by hand with CHAT_JWT_ISSUER and _AUDIENCE set
# --------------------------------------------------------------------------------------------

ISSUER = "https://issuer.e2e.test"
AUDIENCE = "chat-e2e"


@pytest.fixture(scope="module")
def iss_gateway(cluster):
    with extra_gateway(cluster, "gw-iss", CHAT_JWT_ISSUER=ISSUER,
                       CHAT_JWT_AUDIENCE=AUDIENCE) as port:
        yield f"ws://127.0.0.1:{port}/ws"


def test_issuer_and_audience_enforced(cluster, iss_gateway):
    def tok(**claims):
        body = {"sub": unique("iss"), "exp": _now() + 3600}
        body.update(claims)
        return make_jwt({k: v for k, v in body.items() if v is not None}, cluster.secret)

    bad = {
        "no iss, no aud": tok(),
        "no iss": tok(aud=AUDIENCE),
        "no aud": tok(iss=ISSUER),
        "wrong iss": tok(iss="https://evil.example", aud=AUDIENCE),
        "wrong aud": tok(iss=ISSUER, aud="someone-else"),
        "aud list without ours": tok(iss=ISSUER, aud=["a", "b"]),
    }

    async def main(net):
        for what, token in bad.items():
            status = await expect_http_status(iss_gateway, {"Authorization": f"Bearer {token}"})
            assert status == 401, f"{what}: HTTP {status}"
            c = await net.raw(url=iss_gateway, name=what)
            await c.send({"type": "auth", "token": token})
            code, reason = await c.wait_closed()
            assert code == 4001, f"{what} (first frame): closed {code} {reason!r}"
        user = unique("iss-ok")
        c = await net.connect(token=tok(sub=user, iss=ISSUER, aud=AUDIENCE), url=iss_gateway,
                              name="iss ok")
        assert c.welcome == {"type": "welcome", "user": user, "gateway": "gw-iss"} or (
            c.welcome.get("user") == user and c.welcome.get("gateway") == "gw-iss"), c.welcome

    run(main, cluster, timeout=60)


def test_audience_list_accepted(cluster, iss_gateway):
    """RFC 7519: aud may be an array; a token whose aud list contains ours is accepted."""
    user = unique("aud-list")
    token = make_jwt({"sub": user, "exp": _now() + 3600, "iss": ISSUER,
                      "aud": ["other", AUDIENCE]}, cluster.secret)

    async def main(net):
        c = await net.connect(token=token, url=iss_gateway, name=user)
        assert c.welcome.get("user") == user

    run(main, cluster, timeout=20)


# --------------------------------------------------------------------------------------------
# token lifetime on live connections: refresh, and 4003 at expiry (a gateway with no leeway)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_gateway(cluster):
    with extra_gateway(cluster, "gw-strict", port_index=6, CHAT_JWT_LEEWAY="0") as port:
        yield f"ws://127.0.0.1:{port}/ws"


def test_expired_token_closes_4003(cluster, strict_gateway):
    user = unique("expiring")
    exp = _now() + 2
    token = make_jwt({"sub": user, "exp": exp}, cluster.secret)

    async def main(net):
        c = await net.connect(token=token, url=strict_gateway, name=user)
        assert c.welcome["exp"] == exp, c.welcome
        code, reason = await c.wait_closed(timeout=10)
        assert code == 4003, f"closed with {code} {reason!r}, expected 4003"

    run(main, cluster, timeout=30)


def test_refresh_keeps_the_connection(cluster, strict_gateway):
    user = unique("refresher")
    token = make_jwt({"sub": user, "exp": _now() + 2}, cluster.secret)

    async def main(net):
        c = await net.connect(token=token, url=strict_gateway, name=user)
        # refused refreshes change nothing and keep the connection
        other = make_jwt({"sub": unique("someone-else"), "exp": _now() + 3600}, cluster.secret)
        await c.send({"type": "refresh", "token": other, "cid": "r1"})
        await c.expect_error("token_mismatch", "r1", after="refresh for another user")
        bad = make_jwt({"sub": user, "exp": _now() + 3600}, "not-the-secret-0123456789")
        await c.send({"type": "refresh", "token": bad, "cid": "r2"})
        await c.expect_error("invalid_token", "r2", after="refresh with a bad signature")
        later = _now() + 3600
        await c.send({"type": "refresh", "token": make_jwt({"sub": user, "exp": later},
                                                           cluster.secret)})
        f = await c.next_reply("refreshed")
        assert f == {"type": "refreshed", "exp": later}, f
        await asyncio.sleep(3.5)  # past the first token's exp
        await c.ping(after="the first token's expiry")
        assert not c.closed

    run(main, cluster, timeout=30)
