/* test_chat_log.c: log records have the documented shape
 * "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL component: message\n", the level filter drops lower
 * levels, control characters are neutralised and an over-long message is cut to one line. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chat_log.h"
#include "check.h"
#include "log_capture.h"

static void emit_levels(void)
{
    chat_log(CHAT_LOG_DEBUG, "dbg %d", 1);
    chat_log(CHAT_LOG_INFO, "info %s", "two");
    chat_log(CHAT_LOG_WARN, "warn");
    chat_log(CHAT_LOG_ERROR, "err");
}

static void emit_evil(void)
{
    chat_log(CHAT_LOG_WARN, "user said %s", "hi\nFAKE ERROR line\r\x1b[31m");
}

static void emit_long(void)
{
    char big[10000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    chat_log(CHAT_LOG_ERROR, "%s", big);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_format_and_filter(void)
{
    CHECK(chat_log_init("persister[p-1]", "info") == 0);
    CHECK(chat_log_enabled(CHAT_LOG_INFO));
    CHECK(!chat_log_enabled(CHAT_LOG_DEBUG));
    capture(emit_levels);
    CHECK(count_lines(captured) == 3);
    CHECK(strstr(captured, "dbg") == NULL);
    CHECK(strstr(captured, "Z INFO  persister[p-1]: info two\n") != NULL);
    CHECK(strstr(captured, "Z WARN  persister[p-1]: warn\n") != NULL);
    CHECK(strstr(captured, "Z ERROR persister[p-1]: err\n") != NULL);
    /* timestamp shape */
    int y, mo, d, h, mi, s, ms;
    char z;
    CHECK(sscanf(captured, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) ==
          8);
    CHECK(z == 'Z' && y >= 2024 && mo >= 1 && mo <= 12 && ms >= 0 && ms <= 999);
    CHECK(captured[23] == 'Z' && captured[24] == ' ');

    CHECK(chat_log_init(NULL, "DEBUG") == 0);
    capture(emit_levels);
    CHECK(count_lines(captured) == 4);
    CHECK(strstr(captured, "Z DEBUG persister[p-1]: dbg 1\n") != NULL);

    CHECK(chat_log_init("x", "loud") == -EINVAL);
    CHECK(chat_log_init(NULL, "error") == 0);
    capture(emit_levels);
    CHECK(count_lines(captured) == 1);
    CHECK(strstr(captured, "persister[p-1]: err") != NULL); /* component kept */
}

static void test_sanitize_and_cut(void)
{
    CHECK(chat_log_init("gw", "debug") == 0);
    capture(emit_evil);
    CHECK(count_lines(captured) == 1);
    CHECK(strstr(captured, "user said hi FAKE ERROR line  [31m\n") != NULL);
    capture(emit_long);
    CHECK(count_lines(captured) == 1);
    CHECK(strlen(captured) < 4100 && strlen(captured) > 4000);
    CHECK(strstr(captured, "yyy...\n") != NULL);
}

int main(void)
{
    RUN(test_format_and_filter);
    RUN(test_sanitize_and_cut);
    return check_summary();
}
