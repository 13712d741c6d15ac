/* test_chat_presence.c: the presence record codec (proto/chat_presence.c): round trips of both
 * kinds, keys built and parsed back, and what decode and key_parse refuse (unknown version or
 * kind, bad node, room, user, NUL inside a field, a heartbeat with a room, malformed keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_error.h"
#include "chat_presence.h"
#include "check.h"

#define US "\x1f" /* the separator of a key's parts */

static chat_presence member(void)
{
    chat_presence p = {.kind = CHAT_PRESENCE_MEMBER, .incarnation = 0x1234abcdULL, .ts_ms = 5};
    strcpy(p.node, "gw-1");
    strcpy(p.room, "general");
    strcpy(p.user, "al|ce\x1f@x"); /* a user may hold the separator: it is last in the key */
    strcpy(p.name, "Alice \xc3\xa9");
    return p;
}

static void test_round_trip(void)
{
    chat_presence p = member(), q;
    uint8_t *buf;
    size_t len;
    CHECK(chat_presence_encode(&p, &buf, &len, NULL, 0) == 0);
    CHECK(chat_presence_decode(buf, len, &q, NULL, 0) == 0);
    CHECK(memcmp(&p, &q, sizeof(p)) == 0);
    free(buf);

    char key[CHAT_PRESENCE_KEY_MAX];
    int kl = chat_presence_key(&p, key, sizeof(key));
    CHECK(kl > 0);
    chat_presence k;
    CHECK(chat_presence_key_parse(key, (size_t)kl, &k, NULL, 0) == 0);
    CHECK(k.kind == CHAT_PRESENCE_MEMBER && k.incarnation == p.incarnation);
    CHECK_STR(k.node, "gw-1");
    CHECK_STR(k.room, "general");
    CHECK_STR(k.user, p.user);

    chat_presence h = {.kind = CHAT_PRESENCE_HEARTBEAT, .incarnation = 9};
    strcpy(h.node, "gw 2");
    kl = chat_presence_key(&h, key, sizeof(key));
    CHECK(kl == 6 && memcmp(key, "h\x1fgw 2", 6) == 0);
    CHECK(chat_presence_key_parse(key, (size_t)kl, &k, NULL, 0) == 0);
    CHECK(k.kind == CHAT_PRESENCE_HEARTBEAT && strcmp(k.node, "gw 2") == 0);
    CHECK(chat_presence_encode(&h, &buf, &len, NULL, 0) == 0);
    CHECK(chat_presence_decode(buf, len, &q, NULL, 0) == 0 && q.incarnation == 9);
    free(buf);

    chat_presence cn = {.kind = CHAT_PRESENCE_CONNS, .incarnation = 3, .conns = 7};
    strcpy(cn.node, "gw-3");
    strcpy(cn.user, "bob");
    kl = chat_presence_key(&cn, key, sizeof(key));
    CHECK(kl == 1 + 1 + 4 + 1 + 16 + 1 + 3 && key[0] == 'c');
    CHECK(chat_presence_key_parse(key, (size_t)kl, &k, NULL, 0) == 0);
    CHECK(k.kind == CHAT_PRESENCE_CONNS && k.incarnation == 3 && strcmp(k.user, "bob") == 0);
    CHECK(chat_presence_encode(&cn, &buf, &len, NULL, 0) == 0);
    CHECK(chat_presence_decode(buf, len, &q, NULL, 0) == 0 && memcmp(&q, &cn, sizeof(q)) == 0);
    free(buf);
    cn.conns = 0; /* no connections is a tombstone, not a record */
    CHECK(chat_presence_encode(&cn, &buf, &len, NULL, 0) == CHAT_EINVAL);
    cn.conns = CHAT_PRESENCE_CONNS_MAX + 1;
    CHECK(chat_presence_validate(&cn, NULL, 0) == CHAT_EINVAL);
    cn.conns = 1;
    strcpy(cn.room, "r"); /* a count has no room */
    CHECK(chat_presence_validate(&cn, NULL, 0) == CHAT_EINVAL);
    h.conns = 1; /* only a count has conns */
    CHECK(chat_presence_validate(&h, NULL, 0) == CHAT_EINVAL);

    /* the longest key fits */
    memset(p.node, 'n', CHAT_NODE_MAX);
    p.node[CHAT_NODE_MAX] = '\0';
    memset(p.user, 'u', CHAT_USER_MAX);
    p.user[CHAT_USER_MAX] = '\0';
    strcpy(p.room, "dm:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:"
                   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    p.incarnation = UINT64_MAX;
    kl = chat_presence_key(&p, key, sizeof(key));
    CHECK(kl == CHAT_PRESENCE_KEY_MAX);
    char err[128] = "";
    CHECK(chat_presence_key_parse(key, (size_t)kl, &k, err, sizeof(err)) == 0);
    CHECK(k.incarnation == UINT64_MAX);
    if (err[0])
        fprintf(stderr, "  %s\n", err);
}

/* Packs a raw Presence message (the fields as given, no validation). */
static size_t pack(Chat__Presence *m, uint8_t *buf)
{
    return chat__presence__pack(m, buf);
}

static ProtobufCBinaryData b(const char *s, size_t len)
{
    ProtobufCBinaryData d = {.len = len, .data = (uint8_t *)(uintptr_t)s};
    return d;
}

static void test_decode_refuses(void)
{
    uint8_t buf[1024];
    chat_presence out;
    Chat__Presence m = CHAT__PRESENCE__INIT;
    m.version = 1;
    m.kind = CHAT__PRESENCE__KIND__MEMBER;
    m.node = b("gw", 2);
    m.incarnation = 1;
    m.room = b("r", 1);
    m.user = b("u", 1);
    size_t n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == 0);

    m.version = 2;
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EVERSION);
    m.version = 1;
    m.kind = 7;
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.kind = CHAT__PRESENCE__KIND__MEMBER;
    m.user = b("u\0v", 3); /* NUL inside */
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.user = b("u", 1);
    m.room = b("bad room", 8);
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.room = b("r", 1);
    m.node = b("gw\n", 3);
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.node = b("gw", 2);
    m.incarnation = 0;
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.incarnation = 1;
    m.kind = CHAT__PRESENCE__KIND__HEARTBEAT; /* with a room */
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    m.kind = CHAT__PRESENCE__KIND__MEMBER;
    m.ts_ms = -1;
    n = pack(&m, buf);
    CHECK(chat_presence_decode(buf, n, &out, NULL, 0) == CHAT_EINVAL);
    CHECK(chat_presence_decode((const uint8_t *)"\xff\xff\xff", 3, &out, NULL, 0) == CHAT_EDECODE);
}

static void test_key_refuses(void)
{
    chat_presence k;
    const char *bad[] = {"",
                         "h",
                         "h" US,
                         "x" US "gw",
                         "m" US "gw",
                         "m" US "gw" US,
                         "m" US "gw" US "0000000000000001",
                         "m" US "gw" US "0000000000000001" US "r",
                         "m" US "gw" US "0000000000000001" US "r" US,
                         "m" US "gw" US "00000000000000001" US "r" US "u", /* 17 digits */
                         "m" US "gw" US "0000000000000000" US "r" US "u",  /* incarnation 0 */
                         "m" US "gw" US "000000000000000G" US "r" US "u",
                         "m" US "gw" US "0000000000000001" US "bad room" US "u",
                         "c" US "gw" US "0000000000000001",
                         "c" US "gw" US "0000000000000001" US,
                         "c" US "gw" US "000000000000001" US "u",
                         "m" US US ""
                         "0000000000000001" US "r" US "u"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = chat_presence_key_parse(bad[i], strlen(bad[i]), &k, NULL, 0);
        CHECK(rc == CHAT_EINVAL);
        if (rc != CHAT_EINVAL)
            fprintf(stderr, "  accepted key #%zu\n", i);
    }
    CHECK(chat_presence_key_parse("m" US "gw" US "0000000000000001" US "r" US "u", 25, &k, NULL,
                                  0) == 0);
    /* a user with NUL in a key */
    CHECK(chat_presence_key_parse("m" US "gw" US "0000000000000001" US "r" US "u\0v", 27, &k, NULL,
                                  0) == CHAT_EINVAL);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_decode_refuses);
    RUN(test_key_refuses);
    return check_summary();
}
