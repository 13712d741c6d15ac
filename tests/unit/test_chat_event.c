/* test_chat_event.c: the events topic's record codec (chat_event.c): typing and read events
 * round-trip, and kicks (a user, no room); the decoder refuses what a gateway would not produce
 * (not protobuf, unknown version, kind 0, bad room, user, origin or upto, NUL, over-long fields,
 * fields of another kind) and reports an unknown kind as CHAT_EVERSION so that it is skipped.
 * Invalid records are built with the generated protobuf-c code, bypassing our encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_error.h"
#include "chat_event.h"
#include "check.h"

static chat_event typing(void)
{
    chat_event e = {.version = CHAT_EVENT_VERSION,
                    .kind = CHAT_EVENT_TYPING,
                    .on = true,
                    .ts_ms = 1764072000123LL};
    strcpy(e.room, "general");
    strcpy(e.user, "alice Ä");
    strcpy(e.origin, "0123456789abcdef");
    return e;
}

static chat_event read_ev(void)
{
    chat_event e = typing();
    e.kind = CHAT_EVENT_READ;
    e.on = false;
    strcpy(e.room, "dm:alice:bob");
    strcpy(e.user, "alice");
    strcpy(e.upto, "0003-00000000000000000042");
    e.unread = 7;
    return e;
}

static chat_event kick_ev(void)
{
    chat_event e = typing();
    e.kind = CHAT_EVENT_KICK;
    e.on = false;
    e.room[0] = '\0'; /* a kick names the user only */
    strcpy(e.user, "mallory");
    return e;
}

static void test_round_trip(void)
{
    chat_event evs[3] = {typing(), read_ev(), kick_ev()};
    for (int i = 0; i < 3; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        chat_event out;
        char err[128];
        CHECK(chat_event_encode(&evs[i], &buf, &len, err, sizeof(err)) == 0);
        CHECK(chat_event_decode(buf, len, &out, err, sizeof(err)) == 0);
        CHECK(memcmp(&out, &evs[i], sizeof(out)) == 0 ||
              (out.kind == evs[i].kind && !strcmp(out.room, evs[i].room) &&
               !strcmp(out.user, evs[i].user) && out.on == evs[i].on &&
               !strcmp(out.upto, evs[i].upto) && out.unread == evs[i].unread &&
               !strcmp(out.origin, evs[i].origin) && out.ts_ms == evs[i].ts_ms));
        CHECK_STR(out.room, evs[i].room);
        CHECK_STR(out.user, evs[i].user);
        CHECK_STR(out.upto, evs[i].upto);
        CHECK(out.on == evs[i].on && out.unread == evs[i].unread && out.ts_ms == evs[i].ts_ms);
        free(buf);
    }
}

static void test_encode_refuses(void)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[128];
    chat_event e = typing();
    strcpy(e.upto, "0003-00000000000000000042"); /* a typing event carries no upto */
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = read_ev();
    e.unread = CHAT_UNREAD_MAX + 1;
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = read_ev();
    strcpy(e.upto, "42");
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = typing();
    e.user[0] = '\0';
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = typing();
    strcpy(e.origin, "XYZ");
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = typing();
    e.kind = 0;
    CHECK(chat_event_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(buf == NULL);
}

/* A record with the fields of read_ev, then changed by the caller. */
static Chat__Event raw_read(void)
{
    Chat__Event m = CHAT__EVENT__INIT;
    m.version = CHAT_EVENT_VERSION;
    m.kind = CHAT__EVENT__KIND__READ;
    m.room = (ProtobufCBinaryData){.len = 7, .data = (uint8_t *)"general"};
    m.user = (ProtobufCBinaryData){.len = 5, .data = (uint8_t *)"alice"};
    m.upto = (ProtobufCBinaryData){.len = 25, .data = (uint8_t *)"0003-00000000000000000042"};
    m.origin = (ProtobufCBinaryData){.len = 16, .data = (uint8_t *)"0123456789abcdef"};
    m.unread = 3;
    m.ts_ms = 5;
    return m;
}

static int decode_raw(const Chat__Event *m)
{
    uint8_t buf[1024];
    size_t n = chat__event__pack(m, buf);
    chat_event out;
    char err[128];
    int rc = chat_event_decode(buf, n, &out, err, sizeof(err));
    if (rc != 0)
        CHECK(out.kind == 0 && out.room[0] == '\0');
    return rc;
}

static void test_decode_refuses(void)
{
    chat_event out;
    char err[128];
    Chat__Event m = raw_read();
    CHECK(decode_raw(&m) == 0);
    CHECK(chat_event_decode((const uint8_t *)"\xff\xff\xff", 3, &out, err, sizeof(err)) ==
          CHAT_EDECODE);
    m.version = 2;
    CHECK(decode_raw(&m) == CHAT_EVERSION);
    m = raw_read();
    m.kind = 9; /* a kind of a newer gateway: skipped */
    CHECK(decode_raw(&m) == CHAT_EVERSION);
    m.kind = 0;
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.kind = CHAT__EVENT__KIND__KICK; /* a kick with a room, upto and unread: refused */
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.room.len = 0;
    m.upto.len = 0;
    m.unread = 0;
    CHECK(decode_raw(&m) == 0);
    m = raw_read();
    m.room = (ProtobufCBinaryData){.len = 4, .data = (uint8_t *)"ge\0l"};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.room = (ProtobufCBinaryData){.len = 0, .data = NULL};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.user = (ProtobufCBinaryData){.len = 3, .data = (uint8_t *)"a\0b"};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.user = (ProtobufCBinaryData){.len = 2, .data = (uint8_t *)"\xc3\x28"};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    static uint8_t longuser[200];
    memset(longuser, 'u', sizeof(longuser));
    m = raw_read();
    m.user = (ProtobufCBinaryData){.len = 129, .data = longuser};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.upto = (ProtobufCBinaryData){.len = 5, .data = (uint8_t *)"0-001"};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.unread = 1001;
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.origin = (ProtobufCBinaryData){.len = 3, .data = (uint8_t *)"abc"};
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.ts_ms = -1;
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m = raw_read();
    m.kind = CHAT__EVENT__KIND__TYPING; /* typing with an upto */
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.upto = (ProtobufCBinaryData){.len = 0, .data = NULL};
    m.unread = 0;
    CHECK(decode_raw(&m) == 0);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_encode_refuses);
    RUN(test_decode_refuses);
    return check_summary();
}
