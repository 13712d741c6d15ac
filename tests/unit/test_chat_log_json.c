/* test_chat_log_json.c: CHAT_LOG_FORMAT=json lines are one JSON object each, with time
 * (RFC 3339 UTC, milliseconds), level, component, message and the call site's fields, and stay
 * valid JSON (checked by jansson's strict parser, which refuses invalid UTF-8) whatever bytes
 * the message or a field holds: quotes, backslashes, control characters, invalid UTF-8, and
 * over-long values, which are cut on a character boundary. The text format is unchanged by
 * fields. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chat_log.h"
#include "check.h"
#include "log_capture.h"

/* Every line of captured parsed; returns how many lines, each parsed into objs[i]. */
static size_t parse_lines(json_t **objs, size_t max)
{
    size_t k = 0;
    char *save = NULL;
    for (char *line = strtok_r(captured, "\n", &save); line && k < max;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        objs[k] = json_loads(line, JSON_REJECT_DUPLICATES, &e);
        if (!objs[k])
            fprintf(stderr, "not JSON (%s): %s\n", e.text, line);
        CHECK(objs[k] != NULL && json_is_object(objs[k]));
        k++;
    }
    return k;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void emit_plain(void)
{
    chat_log(CHAT_LOG_INFO, "hello %s", "world");
    chat_log(CHAT_LOG_DEBUG, "not shown");
    chat_log_kv(CHAT_LOG_WARN,
                CHAT_LOG_FIELDS(CHAT_LOG_STR("user", "alice"), CHAT_LOG_STR("room", "general"),
                                CHAT_LOG_INT("code", 4008), CHAT_LOG_STR("absent", NULL),
                                CHAT_LOG_STR("message", "must not replace the message")),
                "session %s: too slow", "alice");
}

static void test_shape(void)
{
    json_t *o[8] = {0};
    CHECK(chat_log_init("gateway[gw-1]", "info") == 0);
    CHECK(chat_log_set_format("JSON") == 0);
    capture(emit_plain);
    CHECK(parse_lines(o, 8) == 2);
    CHECK_STR(str(o[0], "level"), "info");
    CHECK_STR(str(o[0], "component"), "gateway[gw-1]");
    CHECK_STR(str(o[0], "message"), "hello world");
    CHECK(json_object_size(o[0]) == 4);
    const char *t = str(o[0], "time");
    int y, mo, d, h, mi, s, ms;
    char z = 0;
    CHECK(t && strlen(t) == 24 &&
          sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) == 8 &&
          z == 'Z');
    CHECK_STR(str(o[1], "level"), "warn");
    CHECK_STR(str(o[1], "message"), "session alice: too slow");
    CHECK_STR(str(o[1], "user"), "alice");
    CHECK_STR(str(o[1], "room"), "general");
    CHECK(json_integer_value(json_object_get(o[1], "code")) == 4008);
    CHECK(json_is_null(json_object_get(o[1], "absent")));
    for (int i = 0; i < 8; i++)
        json_decref(o[i]);
}

static const char evil[] = "q\"uote\\ back\nnew\r\tline \x01\x1f\x7f esc\x1b[31m "
                           "bad\xff\xfe utf8 \xc3\x28 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 "
                           "\xc0\xaf ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 end";

static void emit_evil(void)
{
    chat_log(CHAT_LOG_ERROR, "user said %s", evil);
    chat_log_kv(CHAT_LOG_INFO, CHAT_LOG_FIELDS(CHAT_LOG_STR("user", evil)), "x");
}

static void test_hostile_bytes(void)
{
    json_t *o[4] = {0};
    CHECK(chat_log_init("gw", "debug") == 0);
    CHECK(chat_log_set_format("json") == 0);
    capture(emit_evil);
    CHECK(parse_lines(o, 4) == 2); /* the newline in the message did not split the line */
    const char *m = str(o[0], "message");
    CHECK(m &&
          strncmp(m, "user said q\"uote\\ back\nnew\r\tline \x01\x1f\x7f esc\x1b[31m ", 39) == 0);
    CHECK(m && strstr(m, "bad\xef\xbf\xbd\xef\xbf\xbd utf8") != NULL);            /* U+FFFD each */
    CHECK(m && strstr(m, "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 end") != NULL); /* valid kept */
    CHECK(m && strstr(m, "\xed\xa0\x80") == NULL); /* a surrogate is not UTF-8 */
    const char *u = str(o[1], "user");
    CHECK(u && strstr(u, "q\"uote") == u && strstr(u, "\xef\xbf\xbd") != NULL);
    for (int i = 0; i < 4; i++)
        json_decref(o[i]);
}

static void emit_long(void)
{
    static char big[20000];
    /* multi-byte characters all the way, so a cut in the middle of one would show */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof(big) - 1] = '\0';
    chat_log(CHAT_LOG_ERROR, "%s", big);
    chat_log_kv(CHAT_LOG_ERROR, CHAT_LOG_FIELDS(CHAT_LOG_STR("user", big)), "short");
    /* control characters take six bytes each: the escaped message is cut to the line */
    memset(big, '\x01', sizeof(big) - 1);
    chat_log(CHAT_LOG_ERROR, "%s", big);
}

static void test_cut(void)
{
    json_t *o[4] = {0};
    capture(emit_long);
    CHECK(parse_lines(o, 4) == 3);
    const char *m = str(o[0], "message");
    CHECK(m && strlen(m) > 3000 && strlen(m) < 4100);
    CHECK(m && strcmp(m + strlen(m) - 3, "...") == 0);
    const char *u = str(o[1], "user");
    CHECK(u && strlen(u) <= 256 + 3 && strcmp(u + strlen(u) - 3, "...") == 0);
    m = str(o[2], "message");
    CHECK(m && strlen(m) > 1000 && strcmp(m + strlen(m) - 3, "...") == 0);
    for (int i = 0; i < 4; i++)
        json_decref(o[i]);
}

static void test_escape(void)
{
    char out[16];
    size_t used;
    CHECK(chat_log_json_escape(out, sizeof(out), "a\"b", 3, &used) == 4 && used == 3);
    CHECK_STR(out, "a\\\"b");
    /* stops before an escape that does not fit: 10 of 15 bytes, then \u0001 needs 6 */
    CHECK(chat_log_json_escape(out, 12, "0123456789\x01", 11, &used) == 10 && used == 10);
    /* never splits a UTF-8 sequence */
    CHECK(chat_log_json_escape(out, 4, "ab\xc3\xa9", 4, &used) == 2 && used == 2);
    CHECK(chat_log_json_escape(out, 1, "x", 1, &used) == 0 && used == 0 && out[0] == '\0');
}

static void emit_text_fields(void)
{
    chat_log_kv(CHAT_LOG_INFO, CHAT_LOG_FIELDS(CHAT_LOG_STR("user", "bob")), "joined %s", "r1");
}

static void test_text_unchanged(void)
{
    CHECK(chat_log_set_format("yaml") == -EINVAL);
    CHECK(chat_log_set_format("text") == 0);
    CHECK(chat_log_init("persister", "info") == 0);
    capture(emit_text_fields);
    CHECK(strstr(captured, "Z INFO  persister: joined r1\n") != NULL);
    CHECK(strstr(captured, "bob") == NULL && captured[0] != '{');
}

#define JWT                                                                                        \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9."                                   \
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi0xMjM0NTY3ODk"

static void emit_secrets(void)
{
    chat_log(CHAT_LOG_WARN, "auth with " JWT " failed; mongodb://app:s3cr3t@db:27017/chat down");
    chat_log_kv(CHAT_LOG_WARN, CHAT_LOG_FIELDS(CHAT_LOG_STR("token", "Bearer " JWT)), "x");
    chat_log(CHAT_LOG_INFO, "kept: mongodb://db:27017/chat, mongodb://user@db/x, a.b.c, eyJ.x");
}

static void test_redact(void)
{
    json_t *o[4] = {0};
    CHECK(chat_log_set_format("json") == 0);
    capture(emit_secrets);
    CHECK(strstr(captured, "c2lnbmF0dXJl") == NULL && strstr(captured, "s3cr3t") == NULL);
    CHECK(parse_lines(o, 4) == 3);
    CHECK_STR(str(o[0], "message"), "auth with [jwt] failed; mongodb://app:***@db:27017/chat down");
    CHECK_STR(str(o[1], "token"), "Bearer [jwt]");
    CHECK_STR(str(o[2], "message"),
              "kept: mongodb://db:27017/chat, mongodb://user@db/x, a.b.c, eyJ.x");
    for (int i = 0; i < 4; i++)
        json_decref(o[i]);
    CHECK(chat_log_set_format("text") == 0);
    capture(emit_secrets);
    CHECK(strstr(captured, "c2lnbmF0dXJl") == NULL && strstr(captured, "s3cr3t") == NULL);
    CHECK(strstr(captured, ": auth with [jwt] failed; mongodb://app:***@db:27017/chat down\n"));
}

int main(void)
{
    RUN(test_redact);
    RUN(test_shape);
    RUN(test_hostile_bytes);
    RUN(test_cut);
    RUN(test_escape);
    RUN(test_text_unchanged);
    return check_summary();
}
