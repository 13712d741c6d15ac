"""A raw RFC 6455 client for conformance and abuse tests (stdlib sockets only): every byte of
the upgrade request and of every frame is the caller's. Unlike the suite's websockets client it
can send unmasked frames, any opcode, RSV bits, fragments of any size, bad close codes,
malformed request lines and headers, and read the server's answer byte for byte.

    c = RawWs.connect(port)
    resp = c.upgrade("/ws", headers=[("Authorization", "Bearer " + token)])
    assert resp.status == 101
    c.send_frame(OP_TEXT, b'{"type":"ping"}')
    fin, op, payload = c.recv_frame()
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from dataclasses import dataclass, field

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
          rsv: int = 0, mask_key: bytes | None = None) -> bytes:
    """One WebSocket frame, as a client would send it (masked unless mask=False)."""
    head = bytes([(0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


@dataclass
class HttpAnswer:
    status: int
    reason: str
    headers: dict = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    raw: bytes = b""


class Eof(Exception):
    """The server closed the TCP connection (or reset it) without a close frame."""


class RawWs:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 10,
                rcvbuf: int | None = None) -> "RawWs":
        """rcvbuf: a small receive buffer (set before connecting, so the window stays small)
        makes a client that does not read choke the server's writes quickly."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- bytes ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as e:
            raise Eof("connection reset") from e
        if not chunk:
            raise Eof("end of stream")
        self.buf += chunk

    def _take(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waiting for {n} bytes, have {len(self.buf)}")
            self._more(left)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # --- the upgrade ------------------------------------------------------------------------

    def request(self, raw: bytes, timeout: float = 10) -> HttpAnswer:
        """Sends raw bytes as the request and reads one HTTP response head (and its body when
        it has a content-length)."""
        self.send(raw)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no HTTP response head: {self.buf[:200]!r}")
            self._more(left)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        n = int(headers.get("content-length", "0") or 0)
        if n:
            body = self._take(n, max(0.1, deadline - time.monotonic()))
        return HttpAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body,
                          head + b"\r\n\r\n" + body)

    def upgrade(self, path: str = "/ws", headers: list | None = None, *, upgrade: str = "websocket",
                version: str | None = "13", key: str | None = None,
                omit: tuple = (), extra_raw: bytes = b"", timeout: float = 10) -> HttpAnswer:
        """A GET upgrade request. headers: (name, value) pairs added after the standard ones;
        version None leaves Sec-WebSocket-Version out; omit drops standard headers by name;
        extra_raw is appended verbatim to the header block (malformed lines)."""
        key = key or base64.b64encode(os.urandom(16)).decode()
        std = [("Host", "127.0.0.1"), ("Upgrade", upgrade), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key)]
        if version is not None:
            std.append(("Sec-WebSocket-Version", version))
        lines = [f"GET {path} HTTP/1.1".encode()]
        for k, v in std:
            if k not in omit:
                lines.append(f"{k}: {v}".encode())
        for k, v in headers or []:
            lines.append(f"{k}: {v}".encode() if isinstance(v, str) else k.encode() + b": " + v)
        raw = b"\r\n".join(lines) + b"\r\n" + extra_raw + b"\r\n"
        return self.request(raw, timeout)

    # --- frames -----------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes = b"", **kw) -> None:
        self.send(frame(opcode, payload, **kw))

    def recv_frame(self, timeout: float = 10) -> tuple[bool, int, bytes]:
        """The next frame from the server: (fin, opcode, payload). Raises Eof when the
        connection ends first, TimeoutError when nothing comes."""
        b0, b1 = self._take(2, timeout)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, timeout))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, timeout))[0]
        key = self._take(4, timeout) if b1 & 0x80 else None
        payload = self._take(n, timeout)
        if key:
            payload = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_until_close(self, timeout: float = 10) -> tuple[int | None, bytes, list]:
        """Reads frames until a close frame: (its code or None, its reason, the data frames
        before it). Raises Eof when the connection ends without a close frame."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no close frame within {timeout}s; frames: {seen[:5]}")
            _, op, payload = self.recv_frame(left)
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:], seen
            seen.append((op, payload))
