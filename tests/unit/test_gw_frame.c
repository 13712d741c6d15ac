/* test_gw_frame.c: the client frame parser (gw_frame.c): a valid frame of every type, and one
 * case for each error code the parser produces, including the cid echo in errors. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "chat_error.h"
#include "gw_frame.h"

static const gw_frame_limits LIM = {.max_text = 16, .max_history = 100, .default_history = 50};

/* Parses a frame that must be valid; the caller frees f. */
static int ok_len(const char *s, size_t len, gw_frame *f)
{
    gw_frame_error e;
    int rc = gw_frame_parse(s, len, &LIM, f, &e);
    if (rc != 0)
        fprintf(stderr, "   unexpected error %s: %s (for %.*s)\n", e.code, e.message, (int)len, s);
    return rc;
}

static int ok(const char *s, gw_frame *f)
{
    return ok_len(s, strlen(s), f);
}

/* Parses a frame that must fail; returns the error. */
static gw_frame_error bad_len(const char *s, size_t len)
{
    gw_frame f;
    gw_frame_error e;
    int rc = gw_frame_parse(s, len, &LIM, &f, &e);
    CHECK(rc == CHAT_EINVAL);
    CHECK(f.json_ == NULL);
    if (rc == 0)
        gw_frame_free(&f);
    CHECK(e.code != NULL);
    CHECK(e.message[0] != '\0');
    if (!e.code)
        e.code = "(none)";
    return e;
}

static gw_frame_error bad(const char *s)
{
    return bad_len(s, strlen(s));
}

static void test_valid_frames(void)
{
    gw_frame f;

    CHECK(ok("{\"type\":\"auth\",\"token\":\"a.b.c\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_AUTH);
    CHECK_STR(f.token, "a.b.c");
    gw_frame_free(&f);
    CHECK(f.json_ == NULL);

    CHECK(ok("{\"type\":\"join\",\"room\":\"general\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_JOIN);
    CHECK_STR(f.room, "general");
    CHECK(f.cid == NULL);
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"leave\",\"room\":\"a.B_c:9-\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_LEAVE);
    CHECK_STR(f.room, "a.B_c:9-");
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"send\",\"room\":\"general\",\"text\":\"hi \\u00e9\",\"cid\":\"c1\","
             "\"extra\":[1,2]}",
             &f) == 0);
    CHECK(f.type == GW_FRAME_SEND);
    CHECK_STR(f.room, "general");
    CHECK_STR(f.text, "hi \xc3\xa9");
    CHECK(f.text_len == 5);
    CHECK_STR(f.cid, "c1");
    gw_frame_free(&f);

    /* cid is optional on send */
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"x\"}", &f) == 0);
    CHECK(f.cid == NULL);
    gw_frame_free(&f);

    /* raw UTF-8 in the frame */
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"\xe2\x82\xac\xf0\x9f\x98\x80\"}", &f) ==
          0);
    CHECK(f.text_len == 7);
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"history\",\"room\":\"general\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_HISTORY);
    CHECK(f.limit == 50);
    CHECK(f.before == NULL);
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"history\",\"room\":\"general\",\"before\":\"0003-00000000000000000042\","
             "\"limit\":100}",
             &f) == 0);
    CHECK_STR(f.before, "0003-00000000000000000042");
    CHECK(f.limit == 100);
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"history\",\"room\":\"g\",\"limit\":1,\"before\":null}", &f) == 0);
    CHECK(f.limit == 1);
    CHECK(f.before == NULL);
    gw_frame_free(&f);

    CHECK(ok("{\"type\":\"ping\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_PING);
    gw_frame_free(&f);

    /* any frame may carry a cid */
    CHECK(ok("  {\"cid\":\"p-1\",\"type\":\"ping\"}\n", &f) == 0);
    CHECK_STR(f.cid, "p-1");
    gw_frame_free(&f);

    /* freeing a zeroed or NULL frame is harmless */
    gw_frame_free(NULL);
}

static void test_invalid_json(void)
{
    gw_frame_error e = bad("not json");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("{\"type\":\"ping\"");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("[{\"type\":\"ping\"}]");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("\"ping\"");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("{\"type\":\"ping\"} {\"type\":\"ping\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    /* duplicate keys could smuggle a second value past a proxy: refused */
    e = bad("{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    /* invalid UTF-8 outside any text */
    e = bad("{\"type\":\"ping\",\"x\xff\":1}");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    e = bad("\xff{}");
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
    /* the length is honoured: a valid frame cut short is invalid */
    const char *s = "{\"type\":\"ping\"}";
    e = bad_len(s, strlen(s) - 1);
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);
}

static void test_missing_field(void)
{
    gw_frame_error e = bad("{}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    CHECK(strstr(e.message, "\"type\"") != NULL);
    e = bad("{\"type\":\"join\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    CHECK(strstr(e.message, "\"room\"") != NULL);
    e = bad("{\"type\":\"send\",\"room\":\"r\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    CHECK(strstr(e.message, "\"text\"") != NULL);
    e = bad("{\"type\":\"auth\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    CHECK(strstr(e.message, "\"token\"") != NULL);
    e = bad("{\"type\":\"history\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    e = bad("{\"type\":\"leave\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
}

static void test_invalid_field(void)
{
    gw_frame_error e = bad("{\"type\":7}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":null}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"join\",\"room\":5}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":[\"hi\"]}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    /* a send with an unusable cid */
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    CHECK_STR(e.cid, "");
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"tab\\there\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":42}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    /* 65 characters: one too many */
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":"
            "\"0123456789012345678901234567890123456789012345678901234567890123x\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    /* token: empty, not a string, not printable, too long */
    e = bad("{\"type\":\"auth\",\"token\":\"\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"auth\",\"token\":{}}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"auth\",\"token\":\"a b\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"auth\",\"token\":\"a\\u0000b\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);

    size_t n = 8193;
    char *big = malloc(n + 64);
    CHECK(big != NULL);
    if (big) {
        gw_frame f;
        int off = sprintf(big, "{\"type\":\"auth\",\"token\":\"");
        memset(big + off, 'a', n);
        strcpy(big + off + n, "\"}");
        e = bad(big);
        CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
        /* 8192 bytes is accepted */
        strcpy(big + off + n - 1, "\"}");
        CHECK(ok(big, &f) == 0);
        if (f.token)
            CHECK(strlen(f.token) == 8192);
        gw_frame_free(&f);
        free(big);
    }
}

static void test_unknown_type(void)
{
    gw_frame_error e = bad("{\"type\":\"dance\"}");
    CHECK_STR(e.code, GW_ERR_UNKNOWN_TYPE);
    CHECK(strstr(e.message, "dance") != NULL);
    /* type names are exact: no case folding, no prefix match through a NUL */
    e = bad("{\"type\":\"PING\"}");
    CHECK_STR(e.code, GW_ERR_UNKNOWN_TYPE);
    e = bad("{\"type\":\"ping\\u0000x\"}");
    CHECK_STR(e.code, GW_ERR_UNKNOWN_TYPE);
    CHECK(strchr(e.message, '\\') == NULL);
    e = bad("{\"type\":\"\"}");
    CHECK_STR(e.code, GW_ERR_UNKNOWN_TYPE);
}

static void test_invalid_room(void)
{
    gw_frame_error e = bad("{\"type\":\"join\",\"room\":\"\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    CHECK_STR(e.message, "field \"room\" must match [A-Za-z0-9._:-]{1,64} (not starting with "
                         "dm:) or be a direct room dm:<a>:<b>");
    e = bad("{\"type\":\"join\",\"room\":\"dm:bob:alice\"}"); /* not in byte order */
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    e = bad("{\"type\":\"join\",\"room\":\"has space\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    e = bad("{\"type\":\"leave\",\"room\":\"a/b\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    e = bad("{\"type\":\"send\",\"room\":\"\xc3\xa9t\xc3\xa9\",\"text\":\"hi\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    e = bad("{\"type\":\"history\",\"room\":\"r\\u0000\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    /* 64 characters pass, 65 do not */
    gw_frame f;
    CHECK(ok("{\"type\":\"join\",\"room\":"
             "\"0123456789012345678901234567890123456789012345678901234567890123\"}",
             &f) == 0);
    gw_frame_free(&f);
    e = bad("{\"type\":\"join\",\"room\":"
            "\"0123456789012345678901234567890123456789012345678901234567890123x\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
}

static void test_invalid_text(void)
{
    gw_frame_error e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_TEXT);

    /* a NUL written as an escape */
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"a\\u0000b\",\"cid\":\"n1\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_TEXT);
    CHECK_STR(e.cid, "n1");

    /* raw invalid UTF-8 bytes in the text: a lone continuation byte, an overlong '/', a
     * surrogate, a truncated sequence */
    const char *bytes[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "ab\xe2\x82"};
    for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf),
                         "{\"type\":\"send\",\"room\":\"r\",\"text\":\"%s\",\"cid\":\"u%zu\"}",
                         bytes[i], i);
        char want[8];
        snprintf(want, sizeof(want), "u%zu", i);
        e = bad_len(buf, (size_t)n);
        CHECK_STR(e.code, GW_ERR_INVALID_TEXT);
        CHECK_STR(e.cid, want);
    }

    /* a lone surrogate escape (high, low, high at the end, high before a non-surrogate) is not
     * Unicode text: invalid_text with the cid; an escaped backslash before "ud800" and a valid
     * pair are fine */
    const char *lone[] = {"a\\ud800b", "\\udc00", "x\\uD800", "\\ud800\\u0041"};
    for (size_t i = 0; i < sizeof(lone) / sizeof(lone[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"send\",\"room\":\"r\",\"text\":\"%s\",\"cid\":\"s%zu\"}", lone[i], i);
        char want[8];
        snprintf(want, sizeof(want), "s%zu", i);
        e = bad(buf);
        CHECK_STR(e.code, GW_ERR_INVALID_TEXT);
        CHECK_STR(e.cid, want);
    }
    gw_frame f;
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"a\\\\ud800\"}", &f) == 0);
    gw_frame_free(&f);
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"\\ud83d\\ude00\"}", &f) == 0);
    gw_frame_free(&f);
    /* a lone surrogate in the room is a bad room */
    e = bad("{\"type\":\"send\",\"room\":\"r\\ud800\",\"text\":\"hi\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);

    /* a raw NUL byte inside the JSON string is not JSON at all */
    const char raw_nul[] = "{\"type\":\"send\",\"room\":\"r\",\"text\":\"a\0b\"}";
    e = bad_len(raw_nul, sizeof(raw_nul) - 1);
    CHECK_STR(e.code, GW_ERR_INVALID_JSON);

    /* invalid bytes in the room are reported as a bad room, not as a bad text */
    e = bad("{\"type\":\"send\",\"room\":\"r\xff\",\"text\":\"hi\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
}

static void test_text_too_long(void)
{
    gw_frame f;
    /* LIM.max_text is 16: 16 bytes pass, 17 do not */
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"0123456789abcdef\"}", &f) == 0);
    CHECK(f.text_len == 16);
    gw_frame_free(&f);
    gw_frame_error e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"0123456789abcdefg\"}");
    CHECK_STR(e.code, GW_ERR_TEXT_TOO_LONG);
    CHECK(strstr(e.message, "16") != NULL);
    /* bytes, not characters: 6 two-byte characters (12 bytes) pass, 9 (18 bytes) do not */
    CHECK(ok("{\"type\":\"send\",\"room\":\"r\",\"text\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\"}",
             &f) == 0);
    gw_frame_free(&f);
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
            "\\u00e9\\u00e9\\u00e9\\u00e9\"}");
    CHECK_STR(e.code, GW_ERR_TEXT_TOO_LONG);
}

static void test_history_fields(void)
{
    const char *bad_limits[] = {"0",      "-1",   "101", "50.0",
                                "\"50\"", "true", "1e2", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"type\":\"history\",\"room\":\"r\",\"limit\":%s}",
                 bad_limits[i]);
        gw_frame_error e = bad(buf);
        CHECK_STR(e.code, strcmp(bad_limits[i], "99999999999999999999") == 0
                              ? GW_ERR_INVALID_JSON /* jansson: integer overflow */
                              : GW_ERR_INVALID_FIELD);
    }
    const char *bad_before[] = {"\"\"",
                                "\"abc\"",
                                "\"3-42\"",
                                "\"0003-0000000000000000004x\"",
                                "\"0003-00000000000000000042 \"",
                                "42"};
    for (size_t i = 0; i < sizeof(bad_before) / sizeof(bad_before[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"type\":\"history\",\"room\":\"r\",\"before\":%s}",
                 bad_before[i]);
        gw_frame_error e = bad(buf);
        CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
        CHECK(strstr(e.message, "before") != NULL);
    }
}

static void test_cid_echo(void)
{
    /* The cid is echoed whatever the error and whatever the type. */
    gw_frame_error e =
        bad("{\"type\":\"send\",\"room\":\"bad room\",\"text\":\"x\",\"cid\":\"c9\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);
    CHECK_STR(e.cid, "c9");
    e = bad("{\"cid\":\"c10\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    CHECK_STR(e.cid, "c10");
    e = bad("{\"type\":\"nope\",\"cid\":\"c11\"}");
    CHECK_STR(e.code, GW_ERR_UNKNOWN_TYPE);
    CHECK_STR(e.cid, "c11");
    e = bad("{\"type\":\"history\",\"room\":\"r\",\"limit\":0,\"cid\":\"c12\"}");
    CHECK_STR(e.cid, "c12");
    e = bad("{\"type\":\"send\",\"room\":\"r\",\"text\":\"0123456789abcdefg\",\"cid\":\"c13\"}");
    CHECK_STR(e.code, GW_ERR_TEXT_TOO_LONG);
    CHECK_STR(e.cid, "c13");
    /* no cid, or one that is not usable: nothing echoed */
    e = bad("{\"type\":\"nope\"}");
    CHECK_STR(e.cid, "");
    e = bad("{\"type\":\"nope\",\"cid\":17}");
    CHECK_STR(e.cid, "");
    e = bad("{\"type\":\"nope\",\"cid\":\"a\\nb\"}");
    CHECK_STR(e.cid, "");
    e = bad("not json, \"cid\":\"c1\"");
    CHECK_STR(e.cid, "");
}

/* typing, read and rooms (protocol v2): their fields and each error they can give. */
static void test_typing_read_rooms(void)
{
    gw_frame f;
    gw_frame_error e;
    CHECK(ok("{\"type\":\"typing\",\"room\":\"general\",\"on\":true}", &f) == 0);
    CHECK(f.type == GW_FRAME_TYPING);
    CHECK_STR(f.room, "general");
    CHECK(f.on == true);
    gw_frame_free(&f);
    CHECK(ok("{\"type\":\"typing\",\"room\":\"dm:alice:bob\",\"on\":false}", &f) == 0);
    CHECK(f.type == GW_FRAME_TYPING && f.on == false);
    gw_frame_free(&f);
    e = bad("{\"type\":\"typing\",\"room\":\"general\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    e = bad("{\"type\":\"typing\",\"room\":\"general\",\"on\":1,\"cid\":\"t1\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    CHECK_STR(e.cid, "t1");
    e = bad("{\"type\":\"typing\",\"room\":\"general\",\"on\":null}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"typing\",\"on\":true}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    e = bad("{\"type\":\"typing\",\"room\":\"a b\",\"on\":true}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);

    CHECK(ok("{\"type\":\"read\",\"room\":\"general\",\"upto\":\"0003-00000000000000000042\"}",
             &f) == 0);
    CHECK(f.type == GW_FRAME_READ);
    CHECK_STR(f.upto, "0003-00000000000000000042");
    gw_frame_free(&f);
    e = bad("{\"type\":\"read\",\"room\":\"general\"}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    e = bad("{\"type\":\"read\",\"room\":\"general\",\"upto\":null}");
    CHECK_STR(e.code, GW_ERR_MISSING_FIELD);
    e = bad("{\"type\":\"read\",\"room\":\"general\",\"upto\":\"42\",\"cid\":\"r1\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    CHECK_STR(e.cid, "r1");
    e = bad("{\"type\":\"read\",\"room\":\"general\",\"upto\":42}");
    CHECK_STR(e.code, GW_ERR_INVALID_FIELD);
    e = bad("{\"type\":\"read\",\"room\":\"dm:bad\",\"upto\":\"0003-00000000000000000042\"}");
    CHECK_STR(e.code, GW_ERR_INVALID_ROOM);

    CHECK(ok("{\"type\":\"rooms\"}", &f) == 0);
    CHECK(f.type == GW_FRAME_ROOMS);
    gw_frame_free(&f);
    CHECK(ok("{\"type\":\"rooms\",\"cid\":\"x\"}", &f) == 0);
    CHECK_STR(f.cid, "x");
    gw_frame_free(&f);
}

int main(void)
{
    RUN(test_typing_read_rooms);
    RUN(test_valid_frames);
    RUN(test_invalid_json);
    RUN(test_missing_field);
    RUN(test_invalid_field);
    RUN(test_unknown_type);
    RUN(test_invalid_room);
    RUN(test_invalid_text);
    RUN(test_text_too_long);
    RUN(test_history_fields);
    RUN(test_cid_echo);
    return check_summary();
}
