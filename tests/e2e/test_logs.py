"""CHAT_LOG_FORMAT=json: a gateway and a persister started with it write one JSON object per line
(time in RFC 3339 UTC with milliseconds, level, component, message, and structured fields where
the call site has them), whatever the traffic: a session, a refused upgrade with a hostile token
header, a non-auth first frame, an oversized frame, a development token."""

from __future__ import annotations

import json
import re
import subprocess
import time

from chat_e2e import (b64url, expect_http_status, extra_gateway, http_get, make_jwt, run,
                      unique)

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SANITIZER_RE = re.compile(r"^==\d+==")


def json_lines(path) -> list[dict]:
    """Every line of a log as a JSON object; fails on the first line that is not one. A
    sanitizer report (its own format, checked by conftest) ends the scan."""
    out = []
    text = path.read_bytes().decode("utf-8")  # strict: a JSON log is UTF-8
    for n, line in enumerate(text.splitlines(), 1):
        if SANITIZER_RE.match(line):
            break
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"{path.name}:{n} is not JSON ({e}): {line[:300]!r}") from None
        assert isinstance(obj, dict), f"{path.name}:{n}: {line[:200]!r}"
        assert TIME_RE.match(obj.get("time", "")), f"{path.name}:{n}: time {obj.get('time')!r}"
        assert obj.get("level") in {"debug", "info", "warn", "error"}, f"{path.name}:{n}: {obj}"
        assert isinstance(obj.get("component"), str) and obj["component"], obj
        assert isinstance(obj.get("message"), str), obj
        out.append(obj)
    return out


def test_gateway_json_logs(cluster):
    node = unique("gwjson")
    with extra_gateway(cluster, node, port_index=1, CHAT_LOG_FORMAT="json",
                       CHAT_LOG_LEVEL="debug", CHAT_DEV_TOKENS="1", CHAT_MAX_FRAME="2048") as port:
        url = f"ws://127.0.0.1:{port}/ws"
        dev = http_get(port, "/dev/token?user=json-dev")
        assert dev.status == 200
        room = unique("jl")

        async def main(net):
            a = await net.connect(unique("alice"), url=url)
            await a.join(room)
            await a.say(room, 'quote " backslash \\ newline \n tab \t bell \x07 emoji 😀', "j1")
            await a.wait_acks(["j1"])
            await a.history(room)
            # a refused upgrade whose token header holds quotes, control characters and
            # bytes that are not UTF-8 (in its alg)
            evil = (b64url(b'{"alg":"H\\"S\\n\\u0001\\u2028\xff","typ":"JWT"}') + "."
                    + b64url(b'{"sub":"x"}') + "." + b64url(b"s" * 32))
            status = await expect_http_status(url, {"Authorization": f"Bearer {evil}"})
            assert status == 401
            bad = make_jwt({"sub": "x", "exp": int(time.time()) + 60}, "not-the-secret-0123456789")
            assert await expect_http_status(url, {"Authorization": f"Bearer {bad}"}) == 401
            # a first frame that is not auth: 4001
            r = await net.raw(None, None, url=url, name="anon")
            await r.send({"type": "ping"})
            assert (await r.wait_closed())[0] == 4001
            # a frame over CHAT_MAX_FRAME: 1009
            b = await net.connect(unique("big"), url=url)
            await b.send({"type": "send", "room": room, "text": "y" * 4000, "cid": "big"})
            assert (await b.wait_closed())[0] == 1009

        run(main, cluster, timeout=60)
        time.sleep(0.3)
    lines = json_lines(cluster.log_dir / f"{node}.log")
    assert len(lines) >= 5, lines
    assert {o["component"] for o in lines} == {f"gateway[{node}]"}
    msgs = [o["message"] for o in lines]
    assert any(o["level"] == "debug" for o in lines), "CHAT_LOG_LEVEL=debug wrote no debug line"
    assert any("upgrade refused with 401" in m for m in msgs), msgs
    assert any("closing with 1009" in m for m in msgs), msgs
    issued = [o for o in lines if "development token issued" in o["message"]]
    assert issued and issued[0].get("user") == "json-dev", issued  # a structured field
    assert not any(o["message"].startswith("{") for o in lines)  # no double encoding


def test_persister_json_logs(cluster):
    binary = cluster.build_dir / "persister" / "chat-persister"
    env = dict(cluster.env)
    env.update({
        "CHAT_KAFKA_BROKERS": f"127.0.0.1:{cluster.kafka_port}",
        "CHAT_MONGO_URI": f"mongodb://127.0.0.1:{cluster.mongo_port}/chat",
        "CHAT_KAFKA_GROUP": unique("e2e-json"),
        "CHAT_LOG_FORMAT": "json",
        "CHAT_METRICS_LISTEN": "off",
    })
    log_path = cluster.log_dir / f"{unique('persister-json')}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while b"consuming" not in log_path.read_bytes():
                assert proc.poll() is None, f"persister exited {proc.returncode}; see {log_path}"
                assert time.monotonic() < deadline, f"persister never started; see {log_path}"
                time.sleep(0.2)
        finally:
            proc.terminate()
            rc = proc.wait(30)
    assert rc == 0, f"persister exited {rc}; see {log_path}"
    lines = json_lines(log_path)
    assert {o["component"] for o in lines} == {"persister"}
    starting = [o for o in lines if o["message"].startswith("starting:")]
    assert starting and "CHAT_LOG_FORMAT=json" in starting[0]["message"], starting
    assert any(o["message"] == "stopped" for o in lines)


def test_no_counters_file_in_dev_shm(cluster):
    """libmongoc's counters stay in memory (MONGOC_DISABLE_SHM, set by scripts/cluster.sh): a
    /dev/shm/mongoc-<pid> file per process outlives a killed one, and a later process that got
    the same pid wrote libmongoc's warning about it to stderr before any log set-up, which is
    not a JSON line."""
    from pathlib import Path

    names = ["gateway-1", "gateway-2", "persister"]
    pids = {n: int((cluster.data_dir / "run" / f"{n}.pid").read_text().strip()) for n in names}
    left = [n for n, pid in pids.items() if Path(f"/dev/shm/mongoc-{pid}").exists()]
    assert not left, f"libmongoc counters files in /dev/shm for {left} ({pids})"
