#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora of the libFuzzer targets (tests/fuzz/corpus/<target>/).

Each target starts from these inputs instead of from nothing, so a short run already reaches
the deep paths: every client frame type and field of docs/protocol.md, valid and subtly broken
JWTs, valid encoded protobuf records (hand-encoded here: field tags and varints, no protobuf
library), and session scripts that join, send, resume, page history, close and tick.

Regenerate (the committed seeds are exactly what this writes; it deletes nothing else):
    python3 tests/fuzz/make_seeds.py
The corpus of fuzz_jwks is written by hand and left alone. Standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Must match the targets and the harness they use.
FUZZ_JWT_SECRET = b"fuzz-secret-0123456789abcdef"  # tests/fuzz/fuzz_jwt.c
FUZZ_NOW = 1764072000  # tests/fuzz/fuzz_jwt.c
HARNESS_SECRET = b"harness-secret-0123456789"  # tests/unit/session_harness.h
US = b"\x1f"  # the presence key separator (proto/chat.proto)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 4096, (target, name)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf wire format, by hand ---------------------------------------------------------


def varint(n):
    if n < 0:
        n += 1 << 64  # int64: two's complement, ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3 | 0) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def msgid(part, offset):
    return "%04d-%020d" % (part, offset)


# --- JWTs ----------------------------------------------------------------------------------


def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, payload, secret):
    h = b64u(json.dumps(header, separators=(",", ":")))
    p = b64u(payload if isinstance(payload, (bytes, str)) else
             json.dumps(payload, separators=(",", ":")))
    sig = hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64u(sig)


HS = {"alg": "HS256", "typ": "JWT"}


def claims(**kw):
    return json.dumps(kw, separators=(",", ":"))


# --- fuzz_frame: one client text frame -----------------------------------------------------


def frame_seeds():
    t = "fuzz_frame"
    tok = jwt(HS, {"sub": "alice", "exp": FUZZ_NOW + 3600}, HARNESS_SECRET)
    mid = msgid(3, 42)
    frames = {
        "auth": {"type": "auth", "token": tok},
        "refresh": {"type": "refresh", "token": tok},
        "join": {"type": "join", "room": "general"},
        "join-cid": {"type": "join", "room": "general", "cid": "j1"},
        "join-presence": {"type": "join", "room": "general", "presence": True},
        "join-presence-false": {"type": "join", "room": "general", "presence": False},
        "join-since-epoch": {"type": "join", "room": "general", "since": mid,
                             "epoch": "9c1e04aa.12"},
        "join-since-limit": {"type": "join", "room": "general", "since": mid,
                             "epoch": "9c1e04aa.12", "limit": 200},
        "join-dm": {"type": "join", "room": "dm:alice:bob"},
        "leave": {"type": "leave", "room": "general", "cid": "l1"},
        "send": {"type": "send", "room": "general", "text": "hi", "cid": "c1"},
        "send-nocid": {"type": "send", "room": "general", "text": "hi"},
        "send-utf8": {"type": "send", "room": "room.1_x-y", "text": "h\u00e9llo \u2603 \U0001f600"},
        "send-escapes": {"type": "send", "room": "general", "text": "a\\n\"b\"\t\u0001"},
        "history-before": {"type": "history", "room": "general", "before": mid, "limit": 50},
        "history-after": {"type": "history", "room": "general", "after": mid, "limit": 1},
        "history-nolimit": {"type": "history", "room": "general"},
        "members": {"type": "members", "room": "general", "cid": "m1"},
        "typing-on": {"type": "typing", "room": "general", "on": True},
        "typing-off": {"type": "typing", "room": "general", "on": False},
        "read": {"type": "read", "room": "general", "upto": mid},
        "rooms": {"type": "rooms"},
        "ping": {"type": "ping"},
        "ping-cid": {"type": "ping", "cid": "p1"},
        # refused: each one rule of the parser
        "bad-unknown-type": {"type": "shout", "room": "general"},
        "bad-type-number": {"type": 7},
        "bad-no-type": {"room": "general"},
        "bad-room-chars": {"type": "join", "room": "gen eral"},
        "bad-room-long": {"type": "join", "room": "r" * 65},
        "bad-room-empty": {"type": "join", "room": ""},
        "bad-text-empty": {"type": "send", "room": "general", "text": ""},
        "bad-text-nul": {"type": "send", "room": "general", "text": "a\u0000b"},
        "bad-cid-long": {"type": "send", "room": "general", "text": "x", "cid": "c" * 65},
        "bad-history-limit0": {"type": "history", "room": "general", "before": mid, "limit": 0},
        "bad-history-limit-big": {"type": "history", "room": "general", "limit": 201},
        "bad-history-after-not-older": {"type": "history", "room": "general", "before": mid,
                                        "after": mid},
        "bad-msgid": {"type": "read", "room": "general", "upto": "0003-42"},
        "join-since-no-epoch": {"type": "join", "room": "general", "since": mid},
        "bad-typing-on-string": {"type": "typing", "room": "general", "on": "yes"},
        "send-presence-ignored": {"type": "send", "room": "g", "text": "x", "presence": True},
        "bad-token-empty": {"type": "auth", "token": ""},
    }
    for name, obj in frames.items():
        write(t, name + ".json", json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    write(t, "bad-duplicate-key.json", '{"type":"join","room":"a","room":"b"}')
    write(t, "bad-not-object.json", '["join","general"]')
    write(t, "bad-truncated.json", '{"type":"send","room":"general","text":"h')
    write(t, "bad-invalid-utf8.json", b'{"type":"send","room":"general","text":"\xc3\x28"}')
    write(t, "bad-trailing.json", '{"type":"ping"} {"type":"ping"}')
    write(t, "ping-unknown-nested-field.json", '{"type":"ping","x":' + "[" * 64 + "]" * 64 + "}")


# --- fuzz_jwt: a mode byte, then a token (even) or a claims payload to sign (odd) ----------


def jwt_seeds():
    t = "fuzz_jwt"
    ok_exp = FUZZ_NOW + 3600

    def signed(name, payload):
        write(t, "signed-" + name, b"\x01" + (payload.encode()
                                              if isinstance(payload, str) else payload))

    def raw(name, token):
        write(t, "token-" + name, b"\x00" + token.encode())

    signed("valid", claims(sub="alice", name="Alice", exp=ok_exp))
    signed("valid-no-name", claims(sub="bob", exp=ok_exp))
    signed("valid-rooms", claims(sub="alice", exp=ok_exp, rooms=["general", "team-*", "dm:*"]))
    signed("valid-iat-nbf", claims(sub="alice", exp=ok_exp, iat=FUZZ_NOW - 10, nbf=FUZZ_NOW - 10))
    signed("valid-utf8-sub", claims(sub="j\u00f6rg", name="J\u00f6rg \u2603", exp=ok_exp))
    signed("expired", claims(sub="alice", exp=FUZZ_NOW - 3600))
    signed("expired-within-leeway", claims(sub="alice", exp=FUZZ_NOW - 10))
    signed("not-yet-valid", claims(sub="alice", exp=ok_exp, nbf=FUZZ_NOW + 600))
    signed("no-exp", claims(sub="alice"))
    signed("exp-string", claims(sub="alice", exp=str(ok_exp)))
    signed("exp-float", '{"sub":"alice","exp":1764075600.5}')
    signed("no-sub", claims(name="Alice", exp=ok_exp))
    signed("sub-empty", claims(sub="", exp=ok_exp))
    signed("sub-number", claims(sub=42, exp=ok_exp))
    signed("sub-long", claims(sub="a" * 129, exp=ok_exp))
    signed("sub-nul", '{"sub":"a\\u0000b","exp":1764075600}')
    signed("name-object", claims(sub="alice", name={"x": 1}, exp=ok_exp))
    signed("rooms-not-array", claims(sub="alice", exp=ok_exp, rooms="general"))
    signed("rooms-bad-pattern", claims(sub="alice", exp=ok_exp, rooms=["gen eral", "*x*"]))
    signed("rooms-too-many", claims(sub="alice", exp=ok_exp, rooms=["r%d" % i for i in range(70)]))
    signed("rooms-empty", claims(sub="alice", exp=ok_exp, rooms=[]))
    signed("payload-not-json", "not json at all")
    signed("payload-array", "[1,2,3]")

    good_payload = {"sub": "alice", "name": "Alice", "exp": ok_exp}
    # Tokens as a client sends them: all must be refused, none has a valid signature.
    raw("wrong-secret", jwt(HS, good_payload, b"some-other-secret"))
    raw("wrong-secret-expired", jwt(HS, dict(good_payload, exp=FUZZ_NOW - 3600), b"other"))
    none_tok = b64u('{"alg":"none","typ":"JWT"}') + "." + b64u(json.dumps(good_payload)) + "."
    raw("alg-none", none_tok)
    raw("alg-none-upper", b64u('{"alg":"NONE"}') + "." + b64u(json.dumps(good_payload)) + ".")
    good = jwt(HS, good_payload, FUZZ_JWT_SECRET)
    h, p, s = good.split(".")
    raw("alg-rs256-hmac-sig", b64u('{"alg":"RS256","typ":"JWT"}') + "." + p + "." + s)
    raw("alg-hs512", b64u('{"alg":"HS512","typ":"JWT"}') + "." + p + "." + s)
    raw("payload-swapped", h + "." + b64u(json.dumps(dict(good_payload, sub="mallory"))) + "." + s)
    raw("sig-truncated", h + "." + p + "." + s[:-4])
    raw("sig-empty", h + "." + p + ".")
    raw("bad-base64-chars", h + "." + p[:10] + "*/+=" + p[10:] + "." + s)
    raw("bad-base64-padding", h + "==." + p + "." + s)
    raw("two-segments", h + "." + p)
    raw("four-segments", good + ".x")
    raw("header-not-json", b64u("{alg:HS256}") + "." + p + "." + s)
    raw("header-kid", b64u('{"alg":"HS256","kid":"k1","typ":"JWT"}') + "." + p + "." + s)
    raw("empty-segments", "..")
    raw("nul-inside", h + "\x00." + p + "." + s)


# --- fuzz_envelope: a chat.messages record value (proto Envelope) --------------------------


def envelope(version=1, room="general", frm="alice", name=None, text="hi", ts=1764115200123,
             cid=None, extra=b""):
    b = b""
    if version is not None:
        b += f_varint(1, version)
    if room is not None:
        b += f_bytes(2, room)
    if frm is not None:
        b += f_bytes(3, frm)
    if name is not None:
        b += f_bytes(4, name)
    if text is not None:
        b += f_bytes(5, text)
    if ts is not None:
        b += f_varint(6, ts)
    if cid is not None:
        b += f_bytes(7, cid)
    return b + extra


def envelope_seeds():
    t = "fuzz_envelope"
    write(t, "minimal.pb", envelope())
    write(t, "full.pb", envelope(name="Alice", cid="c1"))
    write(t, "dm-room-utf8.pb", envelope(room="dm:alice:bob", name="J\u00f6rg",
                                         text="h\u00e9llo \u2603 \U0001f600"))
    write(t, "ts-zero.pb", envelope(ts=0))
    write(t, "no-ts.pb", envelope(ts=None))
    write(t, "name-empty-cid-empty.pb", envelope(name="", cid=""))
    write(t, "text-1k.pb", envelope(text="x" * 1024))
    write(t, "fields-reordered.pb", f_bytes(5, "hi") + f_bytes(2, "general") + f_varint(1, 1)
          + f_bytes(3, "alice") + f_varint(6, 5))
    write(t, "unknown-field-8-and-20.pb", envelope(extra=f_bytes(8, "gw-1") + f_varint(20, 7)))
    write(t, "repeated-room.pb", envelope(extra=f_bytes(2, "other")))
    write(t, "version-2.pb", envelope(version=2))
    write(t, "version-0.pb", envelope(version=None))
    write(t, "ts-negative.pb", envelope(ts=-1))
    write(t, "room-invalid.pb", envelope(room="gen eral"))
    write(t, "text-empty.pb", envelope(text=""))
    write(t, "text-bad-utf8.pb", envelope(text=b"\xc3\x28"))
    write(t, "text-nul.pb", envelope(text=b"a\x00b"))
    write(t, "from-missing.pb", envelope(frm=None))
    write(t, "truncated.pb", envelope(name="Alice")[:-3])
    write(t, "length-overflow.pb", f_varint(1, 1) + varint(2 << 3 | 2) + varint(1 << 40) + b"g")
    write(t, "wrong-wire-type.pb", f_varint(1, 1) + f_varint(2, 5) + f_bytes(3, "alice"))


# --- fuzz_event: a chat.events record value (proto Event) ----------------------------------

ORIGIN = "0123456789abcdef"


def event(version=1, kind=1, room="general", user="alice", on=None, upto=None, unread=None,
          origin=ORIGIN, ts=1764115200123, extra=b""):
    b = b""
    if version is not None:
        b += f_varint(1, version)
    if kind is not None:
        b += f_varint(2, kind)
    if room is not None:
        b += f_bytes(3, room)
    if user is not None:
        b += f_bytes(4, user)
    if on is not None:
        b += f_varint(5, 1 if on else 0)
    if upto is not None:
        b += f_bytes(6, upto)
    if unread is not None:
        b += f_varint(7, unread)
    if origin is not None:
        b += f_bytes(8, origin)
    if ts is not None:
        b += f_varint(9, ts)
    return b + extra


def event_seeds():
    t = "fuzz_event"
    write(t, "typing-on.pb", event(on=True))
    write(t, "typing-off.pb", event(on=False))
    write(t, "typing-dm.pb", event(room="dm:alice:bob", user="bob", on=True))
    write(t, "read.pb", event(kind=2, upto=msgid(3, 42), unread=3))
    write(t, "read-unread-zero.pb", event(kind=2, upto=msgid(0, 0), unread=0))
    write(t, "read-unread-max.pb", event(kind=2, upto=msgid(9, 99999), unread=1000))
    write(t, "origin-32.pb", event(on=True, origin="f" * 32))
    write(t, "unknown-field.pb", event(on=True, extra=f_bytes(15, "future")))
    write(t, "kick.pb", event(kind=3, room=None))
    write(t, "kick-with-room.pb", event(kind=3))
    write(t, "kick-with-unread.pb", event(kind=3, room=None, unread=2))
    write(t, "kind-unknown-4.pb", event(kind=4, on=True))
    write(t, "kind-unspecified.pb", event(kind=0))
    write(t, "version-2.pb", event(version=2, on=True))
    write(t, "read-no-upto.pb", event(kind=2, unread=1))
    write(t, "read-bad-upto.pb", event(kind=2, upto="0003-42", unread=1))
    write(t, "read-unread-over.pb", event(kind=2, upto=msgid(3, 42), unread=1001))
    write(t, "origin-short.pb", event(on=True, origin="abc"))
    write(t, "origin-upper.pb", event(on=True, origin="0123456789ABCDEF"))
    write(t, "user-missing.pb", event(user=None, on=True))
    write(t, "room-invalid.pb", event(room="a b", on=True))
    write(t, "ts-negative.pb", event(ts=-5, on=True))
    write(t, "truncated.pb", event(kind=2, upto=msgid(3, 42), unread=3)[:-4])


# --- fuzz_presence: a key length byte, the record key, then the value (proto Presence) -----


def presence(kind, node="gw-1", inc=1, room=None, user=None, name=None, ts=1764115200123,
             conns=None, version=1, extra=b""):
    b = b""
    if version is not None:
        b += f_varint(1, version)
    if kind is not None:
        b += f_varint(2, kind)
    if node is not None:
        b += f_bytes(3, node)
    if inc is not None:
        b += f_varint(4, inc)
    if room is not None:
        b += f_bytes(5, room)
    if user is not None:
        b += f_bytes(6, user)
    if name is not None:
        b += f_bytes(7, name)
    if ts is not None:
        b += f_varint(8, ts)
    if conns is not None:
        b += f_varint(9, conns)
    return b + extra


def pkey(kind, node="gw-1", inc=1, room="r", user="alice"):
    n, i = node.encode(), b"%016x" % inc
    if kind == "h":
        return b"h" + US + n
    if kind == "c":
        return b"c" + US + n + US + i + US + user.encode()
    return b"m" + US + n + US + i + US + room.encode() + US + user.encode()


def record(key, value):
    assert len(key) < 256
    return bytes([len(key)]) + key + value


def presence_seeds():
    t = "fuzz_presence"
    write(t, "member.bin", record(pkey("m"), presence(2, room="r", user="alice", name="Alice")))
    write(t, "member-other-room.bin", record(pkey("m", room="s"), presence(2, room="s",
                                                                           user="alice")))
    write(t, "member-dm.bin", record(pkey("m", room="dm:alice:bob", user="bob"),
                                     presence(2, room="dm:alice:bob", user="bob", name="")))
    write(t, "member-tombstone.bin", record(pkey("m"), b""))
    write(t, "heartbeat.bin", record(pkey("h"), presence(1)))
    write(t, "heartbeat-self.bin", record(pkey("h", node="gw-fuzz"), presence(1, node="gw-fuzz")))
    write(t, "conns.bin", record(pkey("c"), presence(3, user="alice", conns=2)))
    write(t, "conns-max.bin", record(pkey("c"), presence(3, user="alice", conns=1000000)))
    write(t, "conns-tombstone.bin", record(pkey("c"), b""))
    write(t, "inc-large.bin", record(pkey("m", inc=0xFFFFFFFFFFFFFFFF),
                                     presence(2, inc=0xFFFFFFFFFFFFFFFF, room="r", user="alice")))
    write(t, "node-63.bin", record(pkey("h", node="n" * 63), presence(1, node="n" * 63)))
    # refused or contradictory
    write(t, "key-value-mismatch.bin", record(pkey("m", user="bob"),
                                              presence(2, room="r", user="alice")))
    write(t, "kind-mismatch.bin", record(pkey("h"), presence(2, room="r", user="alice")))
    write(t, "version-2.bin", record(pkey("h"), presence(1, version=2)))
    write(t, "kind-unknown.bin", record(pkey("h"), presence(9)))
    write(t, "inc-zero.bin", record(pkey("m", inc=0), presence(2, inc=0, room="r", user="a")))
    write(t, "conns-zero.bin", record(pkey("c"), presence(3, user="alice", conns=0)))
    write(t, "conns-on-member.bin", record(pkey("m"), presence(2, room="r", user="alice",
                                                               conns=1)))
    write(t, "key-short-inc.bin", record(b"m" + US + b"gw-1" + US + b"1" + US + b"r" + US + b"a",
                                         presence(2, room="r", user="a")))
    write(t, "key-extra-field.bin", record(pkey("m") + US + b"x", b""))
    write(t, "key-unknown-prefix.bin", record(b"z" + US + b"gw-1", presence(1)))
    write(t, "unknown-field.bin", record(pkey("h"), presence(1, extra=f_bytes(30, "x"))))
    write(t, "truncated.bin", record(pkey("m"), presence(2, room="r", user="alice")[:-3]))


# --- fuzz_session: flags byte, then (op, arg) steps over four connections ------------------
# tests/fuzz/fuzz_session.c: connection arg % 4 (0 "x", 1 "y" with rooms claim a and dm:*,
# 2 "bob", 3 not authenticated); op % 8: 0 raw chunk of arg bytes (0x10 first, 0x20 final,
# 0x40 binary), 1 flush Kafka, 2 store answers (0x10 store down), 3 write and check, 4 choke,
# 5 close or reopen (0x10 as "x"), 6 tick (arg % 16 * 100 ms), 7 a well-formed frame.

ROOMS = ["a", "b", "c", "dm:x:y"]
KIND = {"join": 0, "join_since": 1, "send": 2, "history_after": 3, "history_before": 4,
        "leave": 5, "ping": 6, "auth": 7, "join_presence": 8, "members": 9, "typing": 10,
        "read": 11, "rooms": 12}


class Script:
    def __init__(self, small_log=False, flag2=False, jobs=False):
        self.b = bytearray([(1 if small_log else 0) | (2 if flag2 else 0) | (4 if jobs else 0)])

    def frame(self, conn, kind, room="a", part=0, offset=None, flag=False):
        op = 7 | ROOMS.index(room) << 3 | (part % 4) << 5 | (0x80 if flag else 0)
        k = KIND[kind]
        # arg picks connection and frame kind, and with them the id offset (arg % 64): take
        # the one whose offset is nearest the one asked for
        args = [a for a in range(256) if a % 4 == conn and a % 13 == k]
        arg = min(args, key=lambda a: abs(a % 64 - (offset or 0)))
        self.b += bytes([op, arg])
        return self

    def raw(self, conn, text, first=True, final=True, binary=False):
        data = text.encode() if isinstance(text, str) else text
        while len(data) % 4 != conn:  # the chunk's length also picks the connection
            data += b" "
        assert len(data) < 256
        self.b += bytes([0 | (0x10 if first else 0) | (0x20 if final else 0) |
                         (0x40 if binary else 0), len(data)]) + data
        return self

    def send(self, conn, room, text):  # a send without cid: each one a new message
        return self.raw(conn, '{"type":"send","room":"%s","text":"%s"}' % (room, text))

    def flush(self):
        self.b += b"\x01\x00"
        return self

    def store(self, down=False):
        self.b += bytes([0x12 if down else 0x02, 0])
        return self

    def write(self, conn):
        self.b += bytes([3, conn])
        return self

    def choke(self, conn):
        self.b += bytes([4, conn])
        return self

    def close(self, conn, as_x=False):  # closes an open connection, reopens a closed one
        self.b += bytes([0x15 if as_x else 0x05, conn])
        return self

    def tick(self, steps=10):
        self.b += bytes([6, steps % 16])
        return self

    def all_write(self):
        for c in range(4):
            self.write(c)
        return self


def session_seeds():
    t = "fuzz_session"
    tok = jwt(HS, {"sub": "z", "name": "Zed", "exp": 4102444800}, HARNESS_SECRET)
    # Room "a" is on partition 1 of the harness's fake topic: ids there are 0001-<offset>.

    def put(name, s):
        write(t, name, bytes(s.b))

    s = Script().frame(0, "join").frame(0, "send").frame(0, "send").flush().store().all_write()
    put("join-send-ack-retry", s)
    s = Script().frame(0, "join").frame(2, "join")
    for i in range(5):
        s.send(0, "a", "x%d" % i).send(2, "a", "b%d" % i)
    put("two-users-fanout", s.flush().store().all_write())
    s = Script().frame(0, "join")
    for i in range(8):
        s.send(0, "a", "m%d" % i)
    s.flush().store().write(0).frame(0, "leave").write(0)
    s.frame(0, "join_since", part=1, offset=4).flush().store().write(0)
    s.frame(0, "join_since", part=1, offset=60).store().write(0)
    s.frame(0, "join_since", part=2, offset=0).store().write(0)
    put("resume-since", s)
    s = Script().frame(0, "join")
    for i in range(12):
        s.send(0, "a", "m%d" % i)
    s.flush().store()
    s.frame(0, "history_before", part=1, offset=10).store().write(0)
    s.frame(0, "history_after", part=1, offset=2).store().write(0)
    s.frame(0, "history_before", part=1, offset=6).store(down=True).write(0)
    put("history-pages", s)
    s = Script(small_log=True).frame(0, "join").frame(2, "join").choke(2)
    for i in range(40):
        s.send(0, "a", "m%02d" % i).flush()
    s.write(0).write(2).choke(2).write(2)
    put("slow-reader-evicted", s)
    s = Script().frame(0, "join_presence", flag=True).frame(1, "join_presence", flag=True)
    s.frame(2, "join_presence", flag=True).tick(5).all_write()
    s.frame(2, "members").close(1).tick(15).tick(15).all_write().close(1, as_x=True)
    s.frame(1, "join_presence", flag=True).tick(3).all_write()
    put("presence-join-members-close", s)
    s = Script(jobs=True).frame(0, "join").frame(1, "join").store()
    s.frame(0, "typing").frame(1, "typing", flag=True).send(0, "a", "one").send(0, "a", "two")
    s.flush().store().frame(1, "read", part=1, offset=1).store().frame(1, "rooms").store()
    s.tick(1).all_write()
    put("typing-read-rooms-jobs", s)
    s = Script().frame(0, "join", room="dm:x:y").frame(1, "join", room="dm:x:y")
    s.frame(2, "join", room="dm:x:y").frame(1, "join", room="b").frame(2, "send", room="dm:x:y")
    s.send(0, "dm:x:y", "hi y").flush().store()
    s.frame(2, "history_before", room="dm:x:y").store().all_write()
    put("dm-access", s)
    s = Script().raw(3, '{"type":"auth","token":"%s"}' % tok).write(3)
    s.raw(3, '{"type":"join","room":"a"}').send(3, "a", "yo")
    s.flush().store().write(3).raw(3, '{"type":"refresh","token":"%s"}' % tok).write(3)
    put("auth-frame-then-join", s)
    s = Script().raw(3, '{"type":"join","room":"a"}').write(3)  # before auth: closed
    put("join-before-auth", s)
    s = Script().raw(3, '{"type":"auth","token":"a.b.c"}').write(3)
    put("auth-bad-token", s)
    s = Script().raw(0, '{"type":"join",', first=True, final=False)
    s.raw(0, '"room":"a"}', first=False, final=True).write(0)
    s.raw(0, '{"type":"send","room":"a","text":"frag', first=True, final=False)
    s.raw(0, 'mented"}', first=False, final=True).flush().store().write(0)
    put("fragmented-frames", s)
    s = Script().raw(0, '{"type":"ping"}', binary=True).write(0)
    s.raw(0, "not json").raw(0, '{"type":"nope"}')
    s.raw(0, b'{"type":"send","room":"a","text":"\xff"}')
    put("binary-and-bad-frames", s.write(0))
    s = Script().frame(0, "join").send(0, "a", "one").send(0, "a", "two").store(down=True)
    s.close(0).flush().store().close(0, as_x=True).frame(0, "join_since", part=1, offset=0)
    s.flush().store().write(0)
    put("close-reopen-resume", s)
    s = Script(flag2=True).frame(0, "join").frame(0, "ping").frame(0, "rooms").tick(9)
    s.send(0, "a", "one").send(0, "a", "two").flush().store().write(0)
    put("flag2-sync", s)


def main():
    frame_seeds()
    jwt_seeds()
    envelope_seeds()
    event_seeds()
    presence_seeds()
    session_seeds()


if __name__ == "__main__":
    main()
