/* test_gw_direct.c: direct rooms and room access in the session policy (session_harness.h):
 * a direct message reaches every connection of both users, joined or not, exactly once and in
 * order, also after a later join; a third user is refused (forbidden, with the frame's cid) on
 * join, send, history and history by before/after, and stays connected; a user id that cannot
 * have direct rooms gets invalid_user; the rooms claim limits joins, sends, history and
 * direct-message delivery; a refresh with a narrower claim leaves the rooms it no longer
 * allows. */
#include <jansson.h>

#include "check.h"
#include "gw_token.h"
#include "session_harness.h"

#define DM "dm:alice:bob"

static json_t *next_json(h_conn *c)
{
    const char *f = h_next(c);
    return f ? json_loads(f, 0, NULL) : NULL;
}

static const char *str(json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    return v ? v : "";
}

/* Every frame of c not looked at yet, of type "message", their texts joined by ','; the other
 * frames' types in others (may be NULL). */
static void texts(h_conn *c, char *out, size_t len, char *others, size_t olen)
{
    out[0] = '\0';
    if (others)
        others[0] = '\0';
    json_t *j;
    while ((j = next_json(c))) {
        bool msg = strcmp(str(j, "type"), "message") == 0;
        char *dst = msg ? out : others;
        size_t cap = msg ? len : olen;
        if (dst) {
            size_t n = strlen(dst);
            snprintf(dst + n, cap - n, "%s%s", n ? "," : "", msg ? str(j, "text") : str(j, "type"));
        }
        json_decref(j);
    }
}

/* The next frame of c must be an error with code and cid. */
static void expect_error(h_conn *c, const char *code, const char *cid)
{
    json_t *j = next_json(c);
    CHECK_STR(str(j, "type"), "error");
    CHECK_STR(str(j, "code"), code);
    CHECK_STR(str(j, "cid"), cid);
    json_decref(j);
}

static void frame(harness *h, h_conn *c, const char *text)
{
    h_frame(h, c, text);
    h_flush(h);
    h_write_all(h);
}

static void skip_all(h_conn *c)
{
    while (h_next(c))
        ;
}

static void test_dm_reaches_every_connection(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a1 = h_open(h, 0, "alice"), *a2 = h_open(h, 1, "alice"), *b1 = h_open(h, 2, "bob"),
           *c1 = h_open(h, 3, "carol"), *o = h_open(h, 4, "a:b");
    h_write_all(h);
    for (int i = 0; i < 5; i++)
        skip_all(&h->conns[i]);
    frame(h, a1, "{\"type\":\"join\",\"room\":\"" DM "\"}");
    json_t *j = next_json(a1);
    CHECK_STR(str(j, "type"), "joined");
    json_decref(j);
    /* a2 sends without having joined: a direct room needs no join */
    frame(h, a2, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"m1\",\"cid\":\"c1\"}");
    frame(h, b1, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"m2\",\"cid\":\"c2\"}");
    frame(h, a1, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"m3\",\"cid\":\"c3\"}");
    char got[256], other[256];
    texts(a1, got, sizeof(got), other, sizeof(other));
    CHECK_STR(got, "m1,m2,m3");
    CHECK_STR(other, "ack");
    texts(a2, got, sizeof(got), other, sizeof(other));
    CHECK_STR(got, "m1,m2,m3");
    CHECK_STR(other, "ack");
    texts(b1, got, sizeof(got), other, sizeof(other));
    CHECK_STR(got, "m1,m2,m3");
    CHECK_STR(other, "ack");
    texts(c1, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "");
    CHECK(h->ctx.stats.dm_joins == 2); /* a2 and b1 */

    /* b1 joins now: a page, then every later message once */
    frame(h, b1, "{\"type\":\"join\",\"room\":\"" DM "\"}");
    j = next_json(b1);
    CHECK_STR(str(j, "type"), "joined");
    CHECK(json_array_size(json_object_get(j, "history")) == 3);
    json_decref(j);
    frame(h, a2, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"m4\"}");
    texts(b1, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "m4");
    texts(a2, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "m4");
    /* history of one's own direct room needs no join */
    h_conn *b3 = h_open(h, 6, "bob");
    h_write_all(h);
    skip_all(b3);
    frame(h, b3, "{\"type\":\"history\",\"room\":\"" DM "\",\"limit\":2}");
    j = next_json(b3);
    CHECK_STR(str(j, "type"), "history");
    CHECK(json_array_size(json_object_get(j, "messages")) == 2);
    json_decref(j);
    /* a connection opened later gets the next message too */
    h_conn *b2 = h_open(h, 5, "bob");
    h_write_all(h);
    skip_all(b2);
    frame(h, a1, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"m5\"}");
    texts(b2, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "m5");
    texts(c1, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "");
    texts(o, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "");
    h_free(h);
}

static void test_third_user_forbidden(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *c = h_open(h, 1, "carol"), *bad = h_open(h, 2, "a b");
    h_write_all(h);
    skip_all(a);
    skip_all(c);
    skip_all(bad);
    frame(h, a, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"secret\",\"cid\":\"s1\"}");
    json_t *ack = next_json(a);
    char id[CHAT_MSGID_LEN + 1];
    snprintf(id, sizeof(id), "%s", str(ack, "id"));
    json_decref(ack);
    CHECK(id[0] != '\0');

    char buf[256];
    frame(h, c, "{\"type\":\"join\",\"room\":\"" DM "\",\"cid\":\"j\"}");
    expect_error(c, "forbidden", "j");
    frame(h, c, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"x\",\"cid\":\"s\"}");
    expect_error(c, "forbidden", "s");
    frame(h, c, "{\"type\":\"history\",\"room\":\"" DM "\",\"cid\":\"h\"}");
    expect_error(c, "forbidden", "h");
    snprintf(buf, sizeof(buf),
             "{\"type\":\"history\",\"room\":\"" DM "\",\"before\":\"%s\",\"cid\":\"hb\"}", id);
    frame(h, c, buf);
    expect_error(c, "forbidden", "hb");
    snprintf(buf, sizeof(buf),
             "{\"type\":\"history\",\"room\":\"" DM "\",\"after\":\"%s\",\"cid\":\"ha\"}", id);
    frame(h, c, buf);
    expect_error(c, "forbidden", "ha");
    CHECK(h->nproduced == 0);
    frame(h, c, "{\"type\":\"ping\"}");
    json_t *p = next_json(c);
    CHECK_STR(str(p, "type"), "pong"); /* still connected */
    json_decref(p);
    CHECK(c->open && c->close_code == 0);

    frame(h, bad, "{\"type\":\"join\",\"room\":\"" DM "\",\"cid\":\"j\"}");
    expect_error(bad, "invalid_user", "j");
    frame(h, bad, "{\"type\":\"send\",\"room\":\"" DM "\",\"text\":\"x\",\"cid\":\"s\"}");
    expect_error(bad, "invalid_user", "s");
    frame(h, bad, "{\"type\":\"join\",\"room\":\"general\"}");
    p = next_json(bad);
    CHECK_STR(str(p, "type"), "joined");
    json_decref(p);
    h_free(h);
}

static void test_rooms_claim(void)
{
    harness *h = h_new(1 << 20, 0);
    static const char claim[] = "general\0team-*\0";
    h_conn *a = h_open_rooms(h, 0, "alice", claim, sizeof(claim));
    static const char none[] = "";
    h_conn *b = h_open_rooms(h, 1, "bob", none, sizeof(none)); /* rooms: [] */
    h_conn *c = h_open(h, 2, "carol");
    h_write_all(h);
    skip_all(a);
    skip_all(b);
    skip_all(c);
    frame(h, a, "{\"type\":\"join\",\"room\":\"general\"}");
    json_t *j = next_json(a);
    CHECK_STR(str(j, "type"), "joined");
    json_decref(j);
    frame(h, a, "{\"type\":\"join\",\"room\":\"team-red\"}");
    j = next_json(a);
    CHECK_STR(str(j, "type"), "joined");
    json_decref(j);
    frame(h, a, "{\"type\":\"join\",\"room\":\"random\",\"cid\":\"r\"}");
    expect_error(a, "forbidden", "r");
    frame(h, a, "{\"type\":\"send\",\"room\":\"random\",\"text\":\"x\",\"cid\":\"s\"}");
    expect_error(a, "forbidden", "s");
    frame(h, a, "{\"type\":\"history\",\"room\":\"random\",\"cid\":\"h\"}");
    expect_error(a, "forbidden", "h");
    /* the claim limits direct rooms too: neither sending to nor receiving one */
    frame(h, a, "{\"type\":\"send\",\"room\":\"dm:alice:carol\",\"text\":\"x\",\"cid\":\"d\"}");
    expect_error(a, "forbidden", "d");
    frame(h, c, "{\"type\":\"send\",\"room\":\"dm:alice:carol\",\"text\":\"hi\"}");
    char got[128];
    texts(c, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "hi");
    texts(a, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "");
    frame(h, b, "{\"type\":\"join\",\"room\":\"general\",\"cid\":\"g\"}");
    expect_error(b, "forbidden", "g");

    /* a refresh replaces the claim: rooms no longer allowed are left */
    char *tok = NULL, err[160];
    gw_token_claims tc = {.sub = "alice", .ttl_s = 600, .rooms = "general"};
    CHECK(gw_token_mint("harness-secret-0123456789", &tc, time(NULL), &tok, err, sizeof(err)) == 0);
    char buf[1024];
    snprintf(buf, sizeof(buf), "{\"type\":\"refresh\",\"token\":\"%s\"}", tok);
    free(tok);
    frame(h, a, buf);
    char other[128];
    texts(a, got, sizeof(got), other, sizeof(other));
    CHECK_STR(other, "left,refreshed");
    frame(h, a, "{\"type\":\"join\",\"room\":\"team-red\",\"cid\":\"t\"}");
    expect_error(a, "forbidden", "t");
    frame(h, a, "{\"type\":\"join\",\"room\":\"general\"}");
    j = next_json(a);
    CHECK_STR(str(j, "type"), "joined");
    json_decref(j);
    h_free(h);
}

/* The longest direct room (132 bytes): its joined, message and history frames are built. */
static void test_longest_direct_room(void)
{
    harness *h = h_new(1 << 20, 0);
    char u[65], v[65], room[CHAT_ROOM_MAX + 1], buf[512];
    memset(u, 'a', 64);
    memset(v, 'b', 64);
    u[64] = v[64] = '\0';
    CHECK(chat_dm_room(u, v, room, sizeof(room)) == CHAT_ROOM_MAX);
    h_conn *a = h_open(h, 0, u), *b = h_open(h, 1, v);
    h_write_all(h);
    skip_all(a);
    skip_all(b);
    snprintf(buf, sizeof(buf), "{\"type\":\"join\",\"room\":\"%s\"}", room);
    frame(h, a, buf);
    json_t *j = next_json(a);
    CHECK_STR(str(j, "type"), "joined");
    json_decref(j);
    snprintf(buf, sizeof(buf), "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"long\"}", room);
    frame(h, b, buf);
    char got[64];
    texts(b, got, sizeof(got), NULL, 0);
    CHECK_STR(got, "long");
    snprintf(buf, sizeof(buf), "{\"type\":\"history\",\"room\":\"%s\"}", room);
    frame(h, b, buf);
    j = next_json(b);
    CHECK_STR(str(j, "type"), "history");
    CHECK(json_array_size(json_object_get(j, "messages")) == 1);
    json_decref(j);
    CHECK(a->close_code == 0 && b->close_code == 0);
    h_free(h);
}

int main(void)
{
    RUN(test_longest_direct_room);
    RUN(test_dm_reaches_every_connection);
    RUN(test_third_user_forbidden);
    RUN(test_rooms_claim);
    return check_summary();
}
