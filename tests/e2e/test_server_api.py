"""The server API through HAProxy and on each gateway: POST /api/v1/publish with a
"role":"server" token delivers an ordinary message (to members on both gateways, to both users'
connections of a direct room, stored, in history, deduplicated by cid) and answers its id;
GET /api/v1/rooms/<room>/history pages like the history frame; GET /api/v1/rooms/<room>/members
answers the members frame's fields; POST /api/v1/kick closes every connection of a user on both
gateways with 4004 within a second; a client token gets 403, none or
a bad one 401, malformed input 400, unknown paths 404, wrong methods 405, oversized bodies 413;
errors are JSON {"error","message"}."""

from __future__ import annotations

import asyncio
import http.client
import json
from urllib.parse import quote

import pytest

from chat_e2e import connect_on, run, unique, wait_persisted


def api(port: int, method: str, path: str, body=None, token: str | None = None,
        raw: bytes | None = None, headers: dict | None = None):
    """One HTTP request; returns (status, parsed JSON body or None, raw body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return resp.status, parsed, text


def check_error(status, body, want_status, want_code=None):
    assert status == want_status, (status, body)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body.get("message"), body
    if want_code:
        assert body["error"] == want_code, body


def server_token(cluster, **claims):
    return cluster.token(unique("backend"), role="server", **claims)


def test_publish_reaches_members_and_history(cluster):
    room = unique("api")
    token = server_token(cluster)

    async def main(net):
        a = await connect_on(net, "gw-1", unique("alice"))
        b = await connect_on(net, "gw-2", unique("bob"))
        for c in (a, b):
            await c.join(room)
        ids = []
        for i, port in enumerate([cluster.public_port] + cluster.gateway_ports):
            status, body, raw = await asyncio.to_thread(
                api, port, "POST", "/api/v1/publish",
                {"room": room, "text": f"from the backend {i} ✓", "from": "system", "cid": f"c{i}"},
                token)
            assert status == 200, (status, raw)
            assert set(body) == {"id"} and isinstance(body["id"], str), body
            ids.append(body["id"])
        for c in (a, b):
            msgs = await c.wait_messages(room, len(ids))
            assert [m["id"] for m in msgs] == ids
            assert all(m["from"] == "system" and m["cid"] == f"c{i}" for i, m in enumerate(msgs))
            assert msgs[0]["text"] == "from the backend 0 ✓"
        # a retry with the same cid gets the original id and sends nothing
        status, body, _ = await asyncio.to_thread(
            api, cluster.gateway_ports[1], "POST", "/api/v1/publish",
            {"room": room, "text": "again", "from": "system", "cid": "c0"}, token)
        assert status == 200 and body["id"] == ids[0], body
        # from defaults to the token's sub
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", "/api/v1/publish", {"room": room, "text": "plain"},
            token)
        assert status == 200, body
        last = await a.wait_messages(room, len(ids) + 1)
        assert last[-1]["id"] == body["id"] and last[-1]["from"].startswith("backend-")
        ids.append(body["id"])
        await asyncio.sleep(0.5)
        assert len(a.by_room[room]) == len(ids), "the cid retry was delivered again"

        stored = wait_persisted(cluster, room, len(ids))
        assert [d["_id"] for d in stored] == ids
        for port in [cluster.public_port] + cluster.gateway_ports:
            status, body, _ = await asyncio.to_thread(
                api, port, "GET", f"/api/v1/rooms/{room}/history", token=token)
            assert status == 200, body
            assert body["room"] == room and "type" not in body
            assert [m["id"] for m in body["messages"]] == ids
            assert body["messages"][0]["type"] == "message"
            status, body, _ = await asyncio.to_thread(
                api, port, "GET", f"/api/v1/rooms/{room}/history?before={ids[2]}&limit=1",
                token=token)
            assert status == 200 and [m["id"] for m in body["messages"]] == [ids[1]], body
            status, body, _ = await asyncio.to_thread(
                api, port, "GET", f"/api/v1/rooms/{room}/history?after={ids[0]}&limit=2",
                token=token)
            assert status == 200 and [m["id"] for m in body["messages"]] == ids[1:3], body
        # the same answer a client's history frame gets
        assert [m["id"] for m in await a.history(room)] == ids

    run(main, cluster, timeout=90)


def test_publish_to_a_direct_room(cluster):
    alice, bob = unique("alice"), unique("bob")
    x, y = sorted([alice, bob], key=lambda s: s.encode())
    room = f"dm:{x}:{y}"
    token = server_token(cluster)

    async def main(net):
        a = await connect_on(net, "gw-1", alice)
        b = await connect_on(net, "gw-2", bob)
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", "/api/v1/publish",
            {"room": room, "text": "your order shipped", "from": alice}, token)
        assert status == 200, body
        for c in (a, b):
            msgs = await c.wait_messages(room, 1)
            assert msgs[0]["id"] == body["id"]
        # a direct room's messages come from one of its users
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", "/api/v1/publish",
            {"room": room, "text": "x", "from": "mallory"}, token)
        check_error(status, body, 403, "forbidden")

    run(main, cluster, timeout=60)


def test_auth_and_errors(cluster):
    room = unique("apierr")
    good = server_token(cluster)
    port = cluster.public_port
    pub = "/api/v1/publish"

    # no token, a bad token: 401; a client token: 403
    check_error(*api(port, "POST", pub, {"room": room, "text": "x"})[:2], 401, "unauthorized")
    check_error(*api(port, "POST", pub, {"room": room, "text": "x"}, token="garbage")[:2], 401)
    check_error(*api(port, "GET", f"/api/v1/rooms/{room}/history", token="a.b.c")[:2], 401)
    expired = cluster.token("svc", role="server", exp=1)
    check_error(*api(port, "POST", pub, {"room": room, "text": "x"}, token=expired)[:2], 401)
    client = cluster.token(unique("user"))
    check_error(*api(port, "POST", pub, {"room": room, "text": "x"}, token=client)[:2], 403,
                "forbidden")
    check_error(*api(port, "GET", f"/api/v1/rooms/{room}/history", token=client)[:2], 403)
    check_error(*api(port, "POST", pub, {"room": room, "text": "x"},
                     token=cluster.token("u", role="admin"))[:2], 403)

    # malformed input: 400 with the client frame's code
    cases = [
        (b"not json", "invalid_json"),
        (b"[1,2]", "invalid_json"),
        (json.dumps({"text": "x"}).encode(), "missing_field"),
        (json.dumps({"room": room}).encode(), "missing_field"),
        (json.dumps({"room": "bad room", "text": "x"}).encode(), "invalid_room"),
        (json.dumps({"room": room, "text": ""}).encode(), "invalid_text"),
        (json.dumps({"room": room, "text": 5}).encode(), "invalid_field"),
        (json.dumps({"room": room, "text": "x" * 5000}).encode(), "text_too_long"),
        (json.dumps({"room": room, "text": "x", "from": ""}).encode(), "invalid_field"),
        (json.dumps({"room": room, "text": "x", "from": 7}).encode(), "invalid_field"),
        (json.dumps({"room": room, "text": "x", "cid": "\u0001"}).encode(), "invalid_field"),
    ]
    for raw, code in cases:
        status, body, text = api(port, "POST", pub, raw=raw, token=good)
        check_error(status, body, 400)
        assert body["error"] == code, (raw[:40], body)
    for q, code in [("limit=0", "invalid_field"), ("limit=abc", "invalid_field"),
                    ("limit=201", "invalid_field"), ("before=nope", "invalid_field")]:
        status, body, _ = api(port, "GET", f"/api/v1/rooms/{room}/history?{q}", token=good)
        check_error(status, body, 400)
    status, body, _ = api(port, "GET", f"/api/v1/rooms/{quote('bad room')}/history", token=good)
    check_error(status, body, 400, "invalid_room")

    # paths and methods
    check_error(*api(port, "GET", "/api/v1/nothing", token=good)[:2], 404)
    check_error(*api(port, "GET", "/api/v2/publish", token=good)[:2], 404)
    check_error(*api(port, "GET", pub, token=good)[:2], 405)
    check_error(*api(port, "POST", f"/api/v1/rooms/{room}/history", {"x": 1}, token=good)[:2], 405)

    # an oversized body: 413, by its declared length or as it arrives
    big = json.dumps({"room": room, "text": "x" * 70000}).encode()
    check_error(*api(port, "POST", pub, raw=big, token=good)[:2], 413)
    check_error(*api(cluster.gateway_ports[0], "POST", pub, raw=big, token=good)[:2], 413)

    # a long query argument before the one that counts does not hide it
    status, body, _ = api(port, "GET", f"/api/v1/rooms/{room}/history?x={'y' * 3000}&limit=0",
                          token=good)
    check_error(status, body, 400, "invalid_field")

    # nothing of the above reached the room
    status, body, _ = api(port, "GET", f"/api/v1/rooms/{room}/history", token=good)
    assert status == 200 and body == {"room": room, "messages": []}, body


def test_rooms_claim_limits_a_server_token(cluster):
    allowed, other = unique("svc-room"), unique("elsewhere")
    token = server_token(cluster, rooms=[allowed[:8] + "*"])
    port = cluster.public_port
    status, body, _ = api(port, "POST", "/api/v1/publish", {"room": allowed, "text": "ok"}, token)
    assert status == 200, body
    check_error(*api(port, "POST", "/api/v1/publish", {"room": other, "text": "no"}, token)[:2],
                403, "forbidden")
    check_error(*api(port, "GET", f"/api/v1/rooms/{other}/history", token=token)[:2], 403)
    wait_persisted(cluster, allowed, 1)
    status, body, _ = api(port, "GET", f"/api/v1/rooms/{allowed}/history", token=token)
    assert status == 200 and [m["text"] for m in body["messages"]] == ["ok"], body


def test_members(cluster):
    room = unique("members")
    token = server_token(cluster)
    alice, bob = unique("alice"), unique("bob")

    async def main(net):
        a = await connect_on(net, "gw-1", alice)
        b = await connect_on(net, "gw-2", bob)
        await a.join_frame(room, presence=True)
        await b.join_frame(room, presence=True)
        # both gateways' copies of the cluster's presence agree within a couple of seconds
        for port in cluster.gateway_ports:
            for _ in range(60):
                status, body, _ = await asyncio.to_thread(
                    api, port, "GET", f"/api/v1/rooms/{room}/members", None, token)
                assert status == 200, body
                if body["count"] == 2:
                    break
                await asyncio.sleep(0.1)
            assert body["room"] == room and body["count"] == 2 and body["truncated"] is False, body
            assert sorted(u["user"] for u in body["users"]) == sorted([alice, bob]), body
            assert "type" not in body
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "GET", f"/api/v1/rooms/{unique('empty')}/members", None,
            token)
        assert status == 200 and body["count"] == 0 and body["users"] == [], body
        # a client token, a bad room, the wrong method
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "GET", f"/api/v1/rooms/{room}/members", None,
            cluster.token(alice))
        check_error(status, body, 403, "forbidden")
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "GET", "/api/v1/rooms/bad%20room/members", None, token)
        check_error(status, body, 400, "invalid_room")
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", f"/api/v1/rooms/{room}/members", {}, token)
        check_error(status, body, 405, "method_not_allowed")

    run(main, cluster, timeout=60)


def test_kick_closes_every_connection_with_4004(cluster):
    token = server_token(cluster)
    mallory, bystander = unique("mallory"), unique("bystander")
    room = unique("kick")

    async def main(net):
        m1 = await connect_on(net, "gw-1", mallory)
        m2 = await connect_on(net, "gw-2", mallory)
        by = await connect_on(net, "gw-2", bystander)
        for c in (m1, m2, by):
            await c.join(room)
        t0 = asyncio.get_running_loop().time()
        # through one gateway: the other learns it from the events topic
        status, body, _ = await asyncio.to_thread(
            api, cluster.gateway_ports[0], "POST", "/api/v1/kick", {"user": mallory}, token)
        assert status == 200, body
        assert body == {"user": mallory, "closed_here": 1}, body
        for c in (m1, m2):
            code, reason = await c.wait_closed(timeout=5)
            took = asyncio.get_running_loop().time() - t0
            assert code == 4004, f"{c.name} closed with {code} {reason!r}, expected 4004"
            assert took < 1.0, f"{c.name} was closed {took:.2f}s after the kick"
        await by.ping(after="another user's kick")
        assert not by.closed
        # errors: no user, a client token, GET
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", "/api/v1/kick", {"who": mallory}, token)
        check_error(status, body, 400, "invalid_field")
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "POST", "/api/v1/kick", {"user": bystander},
            cluster.token(mallory))
        check_error(status, body, 403, "forbidden")
        status, body, _ = await asyncio.to_thread(
            api, cluster.public_port, "GET", "/api/v1/kick", None, token)
        check_error(status, body, 405, "method_not_allowed")

    run(main, cluster, timeout=60)
