/* test_gw_out.c: the server frame encoder (gw_out.c). Every frame is parsed back with jansson
 * and its fields compared; non-ASCII text, quotes and backslashes must survive the trip. */
#include <jansson.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gw_out.h"

/* Parses a buffer's payload (which must be exactly one compact JSON object, NUL-terminated
 * after len bytes) and drops the buffer. */
static json_t *parse(gw_buf *b)
{
    CHECK(b != NULL);
    if (!b)
        return NULL;
    CHECK(b->refs == 1);
    const char *p = (const char *)gw_buf_payload(b);
    CHECK(p[b->len] == '\0');
    CHECK(strlen(p) == b->len);
    CHECK(strchr(p, '\n') == NULL); /* compact */
    json_error_t jerr;
    json_t *j = json_loadb(p, b->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fprintf(stderr, "   not JSON: %s: %s\n", jerr.text, p);
    CHECK(json_is_object(j));
    gw_buf_unref(b);
    return j;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void test_simple_frames(void)
{
    json_t *j = parse(gw_out_welcome("alice", "gw-1", 1700000000, "abcd.12"));
    CHECK_STR(str(j, "type"), "welcome");
    CHECK_STR(str(j, "user"), "alice");
    CHECK_STR(str(j, "gateway"), "gw-1");
    CHECK(json_integer_value(json_object_get(j, "protocol")) == 2);
    CHECK(json_integer_value(json_object_get(j, "exp")) == 1700000000);
    CHECK_STR(str(j, "epoch"), "abcd.12");
    CHECK(json_object_size(j) == 6);
    json_decref(j);

    j = parse(
        gw_out_error("invalid_room", "field \"room\" must match [A-Za-z0-9._:-]{1,64}", "c1"));
    CHECK_STR(str(j, "type"), "error");
    CHECK_STR(str(j, "code"), "invalid_room");
    CHECK_STR(str(j, "message"), "field \"room\" must match [A-Za-z0-9._:-]{1,64}");
    CHECK_STR(str(j, "cid"), "c1");
    json_decref(j);

    /* cid left out when NULL or "" */
    j = parse(gw_out_error("rate_limited", "slow down", NULL));
    CHECK(json_object_get(j, "cid") == NULL);
    CHECK(json_object_size(j) == 3);
    json_decref(j);
    j = parse(gw_out_error("rate_limited", "slow down", ""));
    CHECK(json_object_get(j, "cid") == NULL);
    json_decref(j);

    j = parse(gw_out_ack("c1", "0001-00000000000000000007"));
    CHECK_STR(str(j, "type"), "ack");
    CHECK_STR(str(j, "cid"), "c1");
    CHECK_STR(str(j, "id"), "0001-00000000000000000007");
    json_decref(j);
    j = parse(gw_out_ack(NULL, "0001-00000000000000000007"));
    CHECK(json_object_get(j, "cid") == NULL);
    CHECK_STR(str(j, "id"), "0001-00000000000000000007");
    json_decref(j);

    gw_buf *b = gw_out_pong();
    CHECK(b != NULL);
    if (b)
        CHECK_STR((const char *)gw_buf_payload(b), "{\"type\":\"pong\"}");
    j = parse(b);
    json_decref(j);

    j = parse(gw_out_left("general"));
    CHECK_STR(str(j, "type"), "left");
    CHECK_STR(str(j, "room"), "general");
    json_decref(j);
}

static chat_message make_msg(const char *id, const char *room, const char *from, const char *text,
                             long long ts, const char *cid)
{
    chat_message m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    m.env.version = 1;
    m.env.room = (char *)room;
    m.env.from = (char *)from;
    m.env.name = (char *)"";
    m.env.text = (char *)text;
    m.env.text_len = strlen(text);
    m.env.ts_ms = ts;
    m.env.cid = (char *)cid;
    return m;
}

/* Checks a message object against m. */
static void check_msg(const json_t *o, const chat_message *m)
{
    CHECK(json_is_object(o));
    CHECK_STR(str(o, "type"), "message");
    CHECK_STR(str(o, "id"), m->id);
    CHECK_STR(str(o, "room"), m->env.room);
    CHECK_STR(str(o, "from"), m->env.from);
    json_t *t = json_object_get(o, "text");
    CHECK(json_is_string(t));
    CHECK(json_string_length(t) == m->env.text_len);
    CHECK(t && memcmp(json_string_value(t), m->env.text, m->env.text_len) == 0);
    json_t *ts = json_object_get(o, "ts");
    CHECK(json_is_integer(ts));
    CHECK(json_integer_value(ts) == m->env.ts_ms);
    if (m->env.cid && *m->env.cid)
        CHECK_STR(str(o, "cid"), m->env.cid);
    else
        CHECK(json_object_get(o, "cid") == NULL);
    /* the gateway is internal: never sent to clients */
    CHECK(json_object_get(o, "gateway") == NULL);
}

/* gw_out_message's one-pass writer writes exactly what jansson writes for the same message. */
static bool same_as_jansson(const chat_message *m)
{
    gw_buf *a = gw_out_message(m), *b = gw_out_message_jansson(m);
    bool same =
        a && b && a->len == b->len && memcmp(gw_buf_payload(a), gw_buf_payload(b), a->len) == 0;
    if (!same)
        fprintf(stderr, "one-pass: %s\njansson:  %s\n", a ? (char *)gw_buf_payload(a) : "(null)",
                b ? (char *)gw_buf_payload(b) : "(null)");
    gw_buf_unref(a);
    gw_buf_unref(b);
    return same;
}

static void test_message_writer(void)
{
    char all[160];
    size_t k = 0;
    for (int c = 1; c < 0x80; c++) /* every ASCII character but NUL, DEL included */
        all[k++] = (char)c;
    all[k] = 0;
    const char *texts[] = {"x", "say \"hi\" \\o/ </script>", all,
                           "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf",
                           "\xe2\x80\xa8 line and paragraph separators \xe2\x80\xa9"};
    const char *cids[] = {"", "c-7", "q\"uo\\te/"};
    const char *froms[] = {"alice", "o'neil \"the\" \xc3\xb8\x01", "a@b.c"};
    int64_t tss[] = {0, 1, 1764072000123LL, INT64_MAX};
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++)
        for (size_t c = 0; c < 3; c++)
            for (size_t f = 0; f < 3; f++)
                for (size_t i = 0; i < 4; i++) {
                    chat_message m = make_msg("0002-00000000000000001234", "dm:a@b.c:bob", froms[f],
                                              texts[t], tss[i], cids[c]);
                    CHECK(same_as_jansson(&m));
                }
    /* pseudo-random ASCII and 2-byte UTF-8 texts */
    unsigned x = 12345;
    char text[300];
    for (int r = 0; r < 2000; r++) {
        size_t n = 0, want = (size_t)(r % 290);
        while (n < want) {
            x = x * 1103515245u + 12345u;
            unsigned c = (x >> 16) & 0xff;
            if (c >= 0xc2 && c <= 0xdf && n + 2 <= want) {
                text[n++] = (char)c;
                text[n++] = (char)(0x80 | ((x >> 8) & 0x3f));
            } else if (c >= 1 && c < 0x80) {
                text[n++] = (char)c;
            }
        }
        text[n] = 0;
        chat_message m = make_msg("0000-00000000000000000001", "general", "u", n ? text : "x", r,
                                  r % 3 ? "cid" : "");
        CHECK(same_as_jansson(&m));
    }
}

static void test_message(void)
{
    /* quotes, backslashes, control characters, non-ASCII and astral characters */
    const char *text =
        "say \"hi\" \\o/\n\t\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 </script>";
    chat_message m =
        make_msg("0002-00000000000000001234", "general", "alice", text, 1764072000123LL, "c-7");
    gw_buf *b = gw_out_message(&m);
    CHECK(b != NULL);
    /* non-ASCII is written as UTF-8, not escaped */
    if (b)
        CHECK(strstr((const char *)gw_buf_payload(b), "\xc3\xa9t\xc3\xa9") != NULL);
    json_t *j = parse(b);
    check_msg(j, &m);
    CHECK(json_object_get(j, "name") == NULL); /* protocol v1 messages carry no name */
    json_decref(j);

    /* no cid: left out; a display name: still not part of a v1 message */
    m = make_msg("0002-00000000000000001235", "general", "bob", "x", 1, "");
    m.env.name = (char *)"Bob \xc3\x98";
    j = parse(gw_out_message(&m));
    check_msg(j, &m);
    CHECK(json_object_get(j, "name") == NULL);
    json_decref(j);
    m.env.cid = NULL;
    m.env.name = NULL;
    j = parse(gw_out_message(&m));
    check_msg(j, &m);
    json_decref(j);

    /* invalid UTF-8 is never written out as JSON */
    m = make_msg("0002-00000000000000001236", "general", "bob", "bad \xff", 1, "");
    CHECK(gw_out_message(&m) == NULL);
}

static void test_lists(void)
{
    chat_message msgs[3] = {
        make_msg("0000-00000000000000000001", "r", "a", "one", 10, "x1"),
        make_msg("0000-00000000000000000002", "r", "b", "two \"2\"", 20, ""),
        make_msg("0000-00000000000000000003", "r", "a", "\xe4\xb8\x89", 30, "x3"),
    };
    gw_buf *frames[3];
    for (size_t i = 0; i < 3; i++)
        CHECK((frames[i] = gw_out_message(&msgs[i])) != NULL);

    /* the list is made of the frames as they are, each a message object */
    json_t *j = parse(gw_out_list("joined", "history", "r", frames, 3, NULL));
    CHECK_STR(str(j, "type"), "joined");
    CHECK_STR(str(j, "room"), "r");
    CHECK(json_object_size(j) == 3);
    json_t *h = json_object_get(j, "history");
    CHECK(json_is_array(h));
    CHECK(json_array_size(h) == 3);
    for (size_t i = 0; i < 3 && i < json_array_size(h); i++)
        check_msg(json_array_get(h, i), &msgs[i]);
    json_decref(j);

    j = parse(gw_out_list("joined", "history", "r", NULL, 0,
                          "\"recovered\":false,\"gap\":{\"after\":\"a\",\"before\":\"b\"}"));
    CHECK(json_is_array(json_object_get(j, "history")));
    CHECK(json_array_size(json_object_get(j, "history")) == 0);
    CHECK(json_is_false(json_object_get(j, "recovered")));
    CHECK_STR(str(json_object_get(j, "gap"), "after"), "a");
    CHECK_STR(str(json_object_get(j, "gap"), "before"), "b");
    json_decref(j);

    j = parse(gw_out_list("history", "messages", "r", frames + 1, 2, NULL));
    CHECK_STR(str(j, "type"), "history");
    CHECK_STR(str(j, "room"), "r");
    json_t *ms = json_object_get(j, "messages");
    CHECK(json_array_size(ms) == 2);
    for (size_t i = 0; i < 2 && i < json_array_size(ms); i++)
        check_msg(json_array_get(ms, i), &msgs[i + 1]);
    json_decref(j);
    for (size_t i = 0; i < 3; i++)
        gw_buf_unref(frames[i]);
}

/* gw_buf_frame: the WebSocket header for each length class, written once, in the headroom. */
static void test_frames(void)
{
    const size_t sizes[] = {0, 5, 125, 126, 200, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i], len = 0;
        gw_buf *b = gw_buf_new(n);
        CHECK(b != NULL);
        memset(gw_buf_payload(b), 'x', n);
        const unsigned char *f = gw_buf_frame(b, &len);
        size_t hl = n < 126 ? 2 : n <= 65535 ? 4 : 10;
        CHECK(len == hl + n);
        CHECK(f + hl == gw_buf_payload(b));
        CHECK(f[0] == 0x81);
        if (hl == 2)
            CHECK(f[1] == n);
        else if (hl == 4)
            CHECK(f[1] == 126 && ((size_t)f[2] << 8 | f[3]) == n);
        else
            CHECK(f[1] == 127 && f[2] == 0 && f[5] == 0 && f[6] == 0 && f[7] == (n >> 16) &&
                  f[8] == ((n >> 8) & 0xff) && f[9] == (n & 0xff));
        size_t again = 0;
        CHECK(gw_buf_frame(b, &again) == f && again == len);
        gw_buf_unref(b);
    }
}

/* typing, read, receipt and rooms (protocol v2). */
static void test_v2_frames(void)
{
    json_t *j = parse(gw_out_typing("general", "ällice", true));
    CHECK_STR(str(j, "type"), "typing");
    CHECK_STR(str(j, "room"), "general");
    CHECK_STR(str(j, "user"), "ällice");
    CHECK(json_is_true(json_object_get(j, "on")));
    CHECK(json_object_size(j) == 4);
    json_decref(j);
    j = parse(gw_out_typing("general", "bob", false));
    CHECK(json_is_false(json_object_get(j, "on")));
    json_decref(j);

    j = parse(gw_out_read("dm:alice:bob", "0003-00000000000000000042", 17));
    CHECK_STR(str(j, "type"), "read");
    CHECK_STR(str(j, "room"), "dm:alice:bob");
    CHECK_STR(str(j, "upto"), "0003-00000000000000000042");
    CHECK(json_integer_value(json_object_get(j, "unread")) == 17);
    CHECK(json_object_size(j) == 4);
    json_decref(j);

    j = parse(gw_out_receipt("dm:alice:bob", "alice", "0003-00000000000000000042"));
    CHECK_STR(str(j, "type"), "receipt");
    CHECK_STR(str(j, "user"), "alice");
    CHECK_STR(str(j, "upto"), "0003-00000000000000000042");
    CHECK(json_object_size(j) == 4);
    json_decref(j);

    gw_out_room rooms[2] = {
        {.room = "general",
         .read_upto = "0003-00000000000000000042",
         .last = "0003-00000000000000000050",
         .unread = 8},
        {.room = "dm:alice:bob", .read_upto = "", .last = NULL, .unread = 0},
    };
    j = parse(gw_out_rooms(rooms, 2));
    CHECK_STR(str(j, "type"), "rooms");
    json_t *a = json_object_get(j, "rooms");
    CHECK(json_array_size(a) == 2);
    json_t *r = json_array_get(a, 0);
    CHECK_STR(str(r, "room"), "general");
    CHECK_STR(str(r, "read_upto"), "0003-00000000000000000042");
    CHECK_STR(str(r, "last"), "0003-00000000000000000050");
    CHECK(json_integer_value(json_object_get(r, "unread")) == 8);
    r = json_array_get(a, 1);
    CHECK(json_is_null(json_object_get(r, "read_upto")));
    CHECK(json_is_null(json_object_get(r, "last")));
    CHECK(json_integer_value(json_object_get(r, "unread")) == 0);
    json_decref(j);
    j = parse(gw_out_rooms(NULL, 0));
    CHECK(json_array_size(json_object_get(j, "rooms")) == 0);
    json_decref(j);
}

int main(void)
{
    RUN(test_v2_frames);
    RUN(test_frames);
    RUN(test_simple_frames);
    RUN(test_message);
    RUN(test_message_writer);
    RUN(test_lists);
    return check_summary();
}
