"""Helpers for the end-to-end tests: the cluster handle, JWT minting, a WebSocket chat client
with bounded waits, plain HTTP and MongoDB look-ups.

Everything here talks to a real local cluster (scripts/cluster.sh) over 127.0.0.1 only. Every
wait has a deadline and fails with a message that says what was awaited and what arrived
instead, so a broken gateway makes a test fail, never hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import os
import ssl
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "scripts" / "cluster.sh"

# --------------------------------------------------------------------------------------------
# The cluster handle
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Cluster:
    """Where the cluster under test listens and how it was configured."""

    data_dir: Path
    build_dir: Path
    env: dict  # the environment scripts/cluster.sh runs with
    public_port: int
    gateway_ports: list
    stats_port: int
    kafka_port: int
    mongo_port: int
    secret: str
    rate: float
    burst: int
    auth_timeout: float
    owned: bool  # True when this test run started the cluster (and so stops it)
    pg_port: int = 0  # PostgreSQL behind FerretDB (CHAT_PG_PORT)
    tls_port: int = 0  # HAProxy's https and wss (CHAT_TLS_PORT)
    persister_metrics_port: int = 0  # the persister's GET /metrics (CHAT_PERSISTER_METRICS_PORT)
    _mongo: Any = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.public_port}/ws"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}/ws"

    @property
    def ca_file(self) -> Path:
        """The local CA scripts/cluster.sh made, which signed HAProxy's certificate."""
        return self.data_dir / "tls" / "ca.crt"

    def gateway_ws_url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.gateway_ports[i]}/ws"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def script(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """Runs scripts/cluster.sh ARGS with the cluster's environment; raises with its output
        when it fails or takes longer than timeout seconds."""
        try:
            proc = subprocess.run(
                ["bash", str(CLUSTER_SH), *args],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"scripts/cluster.sh {' '.join(args)} took more than {timeout}s; "
                f"output so far:\n{_tail(e.output)}"
            ) from None
        if proc.returncode != 0:
            raise AssertionError(
                f"scripts/cluster.sh {' '.join(args)} exited {proc.returncode}:\n"
                f"{_tail(proc.stdout)}"
            )
        return proc

    def token(self, sub: str | None, **claims: Any) -> str:
        """A valid HS256 token for sub (exp one hour ahead) signed with the cluster's secret."""
        body: dict[str, Any] = {"iat": int(time.time()), "exp": int(time.time()) + 3600}
        if sub is not None:
            body["sub"] = sub
        body.update(claims)
        return make_jwt(body, self.secret)

    def messages_collection(self):
        """The chat.messages collection (pymongo, tz-aware datetimes)."""
        if self._mongo is None:
            import pymongo

            self._mongo = pymongo.MongoClient(
                f"mongodb://127.0.0.1:{self.mongo_port}/",
                directConnection=True,
                serverSelectionTimeoutMS=5000,
                connectTimeoutMS=5000,
                socketTimeoutMS=30000,
                tz_aware=True,
            )
        return self._mongo["chat"]["messages"]

    def close(self) -> None:
        if self._mongo is not None:
            self._mongo.close()
            self._mongo = None


def _tail(text: Any, lines: int = 80) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    rows = (text or "").splitlines()
    return "\n".join(rows[-lines:])


def unique(prefix: str) -> str:
    """A short unique name usable as a room name or a user id."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# JWT minting (HS256 by hand, so that broken tokens can be crafted too)
# --------------------------------------------------------------------------------------------


# Every token this run minted or sent (make_jwt, /dev/token answers, Net.raw, auth frames):
# test_zz_secrets.py checks that none of them reached any log of the cluster.
USED_TOKENS: set[str] = set()


def note_token(token: Any) -> None:
    if isinstance(token, str) and len(token) >= 16:
        USED_TOKENS.add(token)


def secret_needles(secret: str) -> list[str]:
    """What must never be in a log: every used token, each one's signature alone (what makes a
    token usable) and the JWT secret."""
    out = set(USED_TOKENS)
    for t in USED_TOKENS:
        parts = t.split(".")
        if len(parts) == 3 and len(parts[2]) >= 20:
            out.add(parts[2])
    out.add(secret)
    return sorted(out)


def find_secrets(data: bytes, needles: list[str]) -> list[str]:
    return [n for n in needles if n.encode() in data]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def make_jwt(
    claims: dict,
    secret: str | bytes,
    alg: str = "HS256",
    *,
    sign_with: str | None = None,
    header: dict | None = None,
    signature: bytes | None = None,
) -> str:
    """Builds a JWT. alg goes in the header; the signature is HMAC with sign_with's hash (default:
    alg's), none for alg "none" unless signature is given explicitly."""
    hdr = {"alg": alg, "typ": "JWT"}
    if header:
        hdr.update(header)
    signing_input = (
        b64url(json.dumps(hdr, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    if signature is None:
        how = sign_with or alg
        if how == "none":
            signature = b""
        else:
            key = secret.encode() if isinstance(secret, str) else secret
            signature = hmac.new(key, signing_input.encode(), _HASHES[how]).digest()
    token = signing_input + "." + b64url(signature)
    note_token(token)
    return token


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class HttpResponse:
    status: int
    headers: Any  # http.client.HTTPMessage (case-insensitive get)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def tls_context(ca_file: Any = None) -> ssl.SSLContext:
    """A client TLS context that verifies certificates and host names against ca_file (None:
    the system's CAs only)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def http_get(port: int, path: str, headers: dict | None = None, timeout: float = 10,
             tls_ca: Any = None, host: str = "127.0.0.1") -> HttpResponse:
    """GET http://host:port/path without any proxy; https verified by tls_ca when given."""
    if tls_ca is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=tls_context(tls_ca))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        r = HttpResponse(resp.status, resp.headers, resp.read())
        if path.startswith("/dev/token") and r.status == 200:
            with contextlib.suppress(ValueError, AttributeError):
                note_token(r.json().get("token"))
        return r
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# WebSocket client
# --------------------------------------------------------------------------------------------


def _connect_kwargs() -> dict:
    return dict(
        compression=None,  # frame sizes must be what we send (the 1009 test)
        open_timeout=10,
        ping_interval=None,  # our own pings would be frames the gateway never asked for
        close_timeout=5,
        max_size=2**24,
        max_queue=None,  # a reader task drains every connection continuously
    )


async def ws_open(uri: str, headers: dict | None = None, ssl: Any = None):
    """Opens a raw websockets connection (no proxy, no compression); ssl: the SSLContext of a
    wss:// uri (None: the default one, which trusts the system's CAs only)."""
    kwargs = _connect_kwargs()
    if ssl is not None:
        kwargs["ssl"] = ssl
    try:
        return await websockets.connect(uri, additional_headers=headers, proxy=None, **kwargs)
    except TypeError:  # websockets 14 has no proxy argument
        return await websockets.connect(uri, additional_headers=headers, **kwargs)


def _short(obj: Any, limit: int = 300) -> str:
    s = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return s if len(s) <= limit else s[:limit] + f"...({len(s)} chars)"


# Frames a connection receives without asking: never the answer to its last request.
UNSOLICITED = ("message", "ack", "typing", "read", "receipt")


class Client:
    """One chat connection. A reader task decodes every frame into .frames (all of them, in
    order) and .pending (not yet consumed by expect*); messages are also indexed by room and
    acks by cid."""

    def __init__(self, ws, name: str):
        self.ws = ws
        self.name = name
        self.frames: list[dict] = []
        self.arrived: list[float] = []  # time.monotonic() when frames[i] was read
        self.pending: list[dict] = []
        self.by_room: dict[str, list[dict]] = defaultdict(list)
        self.acks: dict[str, dict] = {}
        self.closed = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.welcome: dict | None = None
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @property
    def gateway(self) -> str | None:
        return self.welcome.get("gateway") if self.welcome else None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    frame = {"type": "<binary>", "raw": raw[:200]}
                else:
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        frame = {"type": "<not-json>", "raw": raw[:200]}
                    if not isinstance(frame, dict):
                        frame = {"type": "<not-an-object>", "raw": raw[:200]}
                self.frames.append(frame)
                self.arrived.append(time.monotonic())
                if frame.get("type") == "message":
                    self.by_room[frame.get("room")].append(frame)
                elif frame.get("type") == "ack" and isinstance(frame.get("cid"), str):
                    self.acks[frame["cid"]] = frame
                self.pending.append(frame)
                self._notify()
        except ConnectionClosed:
            pass
        except Exception as e:  # keep the reason visible in later assertion messages
            self.close_reason = f"reader failed: {e!r}"
        finally:
            self.closed = True
            if self.close_code is None:
                self.close_code = self.ws.close_code
                if self.ws.close_reason is not None:
                    self.close_reason = self.ws.close_reason
            self._notify()

    # ---- waiting ----------------------------------------------------------------------------

    async def _wait_until(self, check: Callable[[], Any], timeout: float, what: str,
                          allow_closed: bool = False) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            if self.closed and not allow_closed:
                raise AssertionError(
                    f"{self.name}: connection closed (code {self.close_code}, reason "
                    f"{self.close_reason!r}) while waiting for {what}; unconsumed frames: "
                    f"{_short(self.pending[-5:], 1000)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: no {what} within {timeout}s; unconsumed frames: "
                    f"{_short(self.pending[-5:], 1000)}"
                )
            ev = self._changed
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def expect(self, pred: Callable[[dict], bool], what: str, timeout: float = 10) -> dict:
        """Consumes and returns the first unconsumed frame matching pred."""

        def check():
            for i, f in enumerate(self.pending):
                if pred(f):
                    return self.pending.pop(i)
            return None

        return await self._wait_until(check, timeout, what)

    async def next_reply(self, what: str = "a reply", timeout: float = 10) -> dict:
        """Consumes the next frame that is not a room message (acks and messages from other
        members can interleave; this is the answer to the last request)."""
        return await self.expect(lambda f: f.get("type") not in UNSOLICITED, what, timeout)

    async def expect_error(self, codes: str | set, cid: str | None = None, *, after: str = "",
                           timeout: float = 10) -> dict:
        codes = {codes} if isinstance(codes, str) else set(codes)
        f = await self.next_reply(f"error {sorted(codes)} after {after}", timeout)
        assert f.get("type") == "error", f"{self.name}: after {after} expected error {sorted(codes)}, got {_short(f)}"
        assert f.get("code") in codes, f"{self.name}: after {after} expected error code {sorted(codes)}, got {_short(f)}"
        assert isinstance(f.get("message"), str) and f["message"], f"error without a message: {_short(f)}"
        if cid is not None:
            assert f.get("cid") == cid, f"{self.name}: error after {after} must echo cid {cid!r}: {_short(f)}"
        return f

    async def wait_messages(self, room: str, n: int, timeout: float = 20) -> list[dict]:
        await self._wait_until(lambda: len(self.by_room[room]) >= n, timeout,
                               f"{n} messages in room {room} (have {len(self.by_room[room])})")
        return self.by_room[room]

    async def wait_acks(self, cids, timeout: float = 20) -> dict:
        cids = list(cids)
        await self._wait_until(lambda: all(c in self.acks for c in cids), timeout,
                               f"acks for {len(cids)} cids (have "
                               f"{sum(c in self.acks for c in cids)})")
        return {c: self.acks[c] for c in cids}

    async def wait_closed(self, timeout: float = 10) -> tuple:
        await self._wait_until(lambda: self.closed, timeout, "the connection to close",
                               allow_closed=True)
        return self.close_code, self.close_reason

    # ---- sending ----------------------------------------------------------------------------

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def send(self, obj: Any) -> None:
        if isinstance(obj, dict):
            note_token(obj.get("token"))
        await self.ws.send(json.dumps(obj, ensure_ascii=False))

    async def ping(self, after: str = "") -> None:
        """ping -> pong; proves the connection still works."""
        await self.send({"type": "ping"})
        f = await self.next_reply(f"pong (after {after or 'ping'})")
        assert f.get("type") == "pong", f"{self.name}: expected pong after {after}, got {_short(f)}"

    async def join(self, room: str, timeout: float = 15) -> list:
        await self.send({"type": "join", "room": room})
        f = await self.next_reply(f"joined {room}", timeout)
        assert f.get("type") == "joined" and f.get("room") == room, f"{self.name}: join {room}: got {_short(f)}"
        assert isinstance(f.get("history"), list), f"joined without a history list: {_short(f)}"
        return f["history"]

    async def join_frame(self, room: str, timeout: float = 15, **fields: Any) -> dict:
        """Sends join with extra fields (since, epoch, limit) and returns the whole joined frame."""
        await self.send({"type": "join", "room": room, **fields})
        f = await self.next_reply(f"joined {room}", timeout)
        assert f.get("type") == "joined" and f.get("room") == room, f"{self.name}: join {room}: got {_short(f)}"
        assert isinstance(f.get("history"), list), f"joined without a history list: {_short(f)}"
        return f

    async def resume(self, room: str, since: str, epoch: str | None = None,
                     timeout: float = 15, **fields: Any) -> dict:
        """join with since and the epoch of this connection's welcome."""
        return await self.join_frame(room, timeout, since=since,
                                     epoch=epoch or self.welcome["epoch"], **fields)

    async def leave(self, room: str) -> None:
        await self.send({"type": "leave", "room": room})
        f = await self.next_reply(f"left {room}")
        assert f == {"type": "left", "room": room}, f"{self.name}: leave {room}: got {_short(f)}"

    async def history(self, room: str, before: str | None = None, limit: int | None = None,
                      timeout: float = 15, after: str | None = None) -> list:
        req: dict[str, Any] = {"type": "history", "room": room}
        if before is not None:
            req["before"] = before
        if after is not None:
            req["after"] = after
        if limit is not None:
            req["limit"] = limit
        await self.send(req)
        f = await self.next_reply(f"history of {room}", timeout)
        assert f.get("type") == "history" and f.get("room") == room, f"{self.name}: history {room}: got {_short(f)}"
        assert isinstance(f.get("messages"), list), f"history without messages: {_short(f)}"
        return f["messages"]

    async def say(self, room: str, text: str, cid: str) -> None:
        await self.send({"type": "send", "room": room, "text": text, "cid": cid})

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 6)
        except Exception:
            pass
        try:
            await asyncio.wait_for(self._reader, 6)
        except Exception:
            self._reader.cancel()


class Net:
    """Opens clients for one test and closes all of them at its end."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.clients: list[Client] = []

    async def raw(self, how: str | None = None, token: str | None = None, url: str | None = None,
                  name: str = "client", ssl: Any = None) -> Client:
        """Connects (authenticating by header or query when asked) without waiting for welcome."""
        uri = url or self.cluster.ws_url
        headers = None
        note_token(token)
        if how == "header":
            headers = {"Authorization": f"Bearer {token}"}
        elif how == "query":
            uri += "?access_token=" + quote(token or "", safe="")
        ws = await ws_open(uri, headers, ssl=ssl)
        c = Client(ws, name)
        self.clients.append(c)
        return c

    async def connect(self, user: str | None = None, how: str = "header", token: str | None = None,
                      url: str | None = None, name: str | None = None, ssl: Any = None) -> Client:
        """Connects and authenticates (header, query or first frame) and waits for welcome."""
        if token is None:
            token = self.cluster.token(user)
        c = await self.raw(how if how != "frame" else None, token, url, name or user or "client",
                           ssl=ssl)
        if how == "frame":
            await c.send({"type": "auth", "token": token})
        w = await c.next_reply("welcome")
        assert w.get("type") == "welcome", f"{c.name}: expected welcome, got {_short(w)}"
        c.welcome = w
        return c

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


async def connect_on(net: Net, gateway: str, user: str, tries: int = 16, token: str | None = None):
    """Opens connections through HAProxy until one lands on the given gateway (leastconn);
    token: the token to use (default: a plain one for user)."""
    spare = []
    try:
        for i in range(tries):
            c = await net.connect(user, token=token, name=f"{user}@try{i}")
            if c.gateway == gateway:
                c.name = f"{user}@{gateway}"
                return c
            spare.append(c)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{tries} connections through HAProxy never landed on {gateway}; "
                             f"got {[s.gateway for s in spare]}")
    finally:
        for s in spare:
            await s.close()


class GatewayProcess:
    """A gateway started by spawn_gateway: its process, port and log."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, log):
        self.proc, self.port, self.log_path, self._log = proc, port, log_path, log

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def spawn_gateway(cluster: Cluster, node_id: str, port_index: int = 1, tls_ca: Any = None,
                  **settings: str) -> GatewayProcess:
    """Starts one more gateway of this cluster's build, on its own port next to the cluster's,
    with extra settings (CHAT_* variables), and waits for /readyz. The caller stops it
    (.stop()). Its log is logs/<node_id>.log. tls_ca: the CA file that verifies its certificate
    when it serves TLS (CHAT_TLS_CERT); its /readyz is then asked over https."""
    binary = cluster.build_dir / "gateway" / "chat-gateway"
    port = max(cluster.gateway_ports) + port_index
    env = dict(cluster.env)
    env.update({
        "CHAT_LISTEN": f"127.0.0.1:{port}",
        "CHAT_NODE_ID": node_id,
        "CHAT_KAFKA_BROKERS": f"127.0.0.1:{cluster.kafka_port}",
        "CHAT_MONGO_URI": f"mongodb://127.0.0.1:{cluster.mongo_port}/chat",
        "CHAT_JWT_SECRET": cluster.secret,
    })
    env.update(settings)
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = cluster.log_dir / f"{node_id}.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    gw = GatewayProcess(proc, port, log_path, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"gateway {node_id} exited {proc.returncode}; see {log_path}")
            try:
                if http_get(port, "/readyz", timeout=2, tls_ca=tls_ca).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway {node_id} not ready within 60s; see {log_path}")
            time.sleep(0.3)
    except BaseException:
        gw.stop()
        raise
    return gw


@contextlib.contextmanager
def extra_gateway(cluster: Cluster, node_id: str, port_index: int = 1, tls_ca: Any = None,
                  **settings: str):
    """spawn_gateway as a context: yields the port, stops the gateway at the end."""
    gw = spawn_gateway(cluster, node_id, port_index, tls_ca=tls_ca, **settings)
    try:
        yield gw.port
    finally:
        gw.stop()


def scrape(port: int) -> dict:
    """GET /metrics on port, parsed by prometheus_client's reference parser (which raises on
    anything that is not valid text format): {family name: Metric}."""
    from prometheus_client.parser import text_string_to_metric_families

    r = http_get(port, "/metrics")
    assert r.status == 200, f":{port}/metrics answered {r.status}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    return {f.name: f for f in text_string_to_metric_families(r.body.decode("utf-8"))}


def sample(families: dict, name: str, **labels: str) -> float:
    """The value of one sample (by its full name, e.g. x_total or x_bucket) with these labels;
    0 when the family has no such sample yet (a labelled counter never incremented)."""
    for f in families.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def metrics(port: int) -> dict[str, float]:
    """The gateway's /metrics as {name: value} (Prometheus text format, unlabelled samples)."""
    r = http_get(port, "/metrics")
    assert r.status == 200, f"/metrics answered {r.status}"
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def run(main: Callable[[Net], Awaitable[Any]], cluster: Cluster, timeout: float = 60) -> Any:
    """Runs one async test body with a Net, under an overall deadline."""

    async def outer():
        net = Net(cluster)
        try:
            return await asyncio.wait_for(main(net), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"test body exceeded its overall deadline of {timeout}s") from None
        finally:
            await net.close_all()

    return asyncio.run(outer())


async def expect_http_status(uri: str, headers: dict | None = None) -> int:
    """Attempts a WebSocket upgrade that must be refused; returns the HTTP status."""
    try:
        ws = await ws_open(uri, headers)
    except InvalidStatus as e:
        return e.response.status_code
    try:
        first = await asyncio.wait_for(ws.recv(), 3)
    except Exception as e:  # noqa: BLE001
        first = f"<{e!r}>"
    await ws.close()
    raise AssertionError(f"upgrade to {uri} succeeded (first frame {_short(first)}), expected HTTP 401")


def wait_readyz(port: int, code: int, timeout: float = 30, **fields: str) -> dict:
    """Polls GET /readyz on port until it answers HTTP code with the given body fields."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            r = http_get(port, "/readyz", timeout=3)
            body = r.json()
            last = (r.status, body)
            if r.status == code and all(body.get(k) == v for k, v in fields.items()):
                return body
        except (OSError, ValueError) as e:
            last = repr(e)
        if time.monotonic() > deadline:
            raise AssertionError(f":{port}/readyz never answered {code} {fields} within "
                                 f"{timeout}s; last: {last}")
        time.sleep(0.3)


# --------------------------------------------------------------------------------------------
# MongoDB
# --------------------------------------------------------------------------------------------


def wait_persisted(cluster: Cluster, room: str, n: int, timeout: float = 60) -> list[dict]:
    """Polls chat.messages until the room holds n documents; fails at once if it holds more."""
    coll = cluster.messages_collection()
    deadline = time.monotonic() + timeout
    count = -1
    while True:
        count = coll.count_documents({"room": room})
        if count > n:
            raise AssertionError(f"MongoDB holds {count} messages of room {room}, expected {n}")
        if count == n:
            return list(coll.find({"room": room}).sort("_id", 1))
        if time.monotonic() > deadline:
            raise AssertionError(
                f"persister did not catch up: MongoDB holds {count} of {n} messages of room "
                f"{room} after {timeout}s"
            )
        time.sleep(0.5)


def ts_ms(dt) -> int:
    """A BSON date (tz-aware datetime) as milliseconds since the epoch."""
    return int(round(dt.timestamp() * 1000))


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
