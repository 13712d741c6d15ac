/* test_chat_msgid.c: message ids format and parse exactly "PPPP-OOOOOOOOOOOOOOOOOOOO", refuse
 * everything else, and sort as strings in (partition, offset) order. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_msgid.h"
#include "check.h"

static void test_format(void)
{
    char id[CHAT_MSGID_LEN + 1];

    CHECK(chat_msgid_format(id, 0, 0) == 0);
    CHECK_STR(id, "0000-00000000000000000000");
    CHECK(strlen(id) == CHAT_MSGID_LEN);
    CHECK(chat_msgid_format(id, 7, 123456) == 0);
    CHECK_STR(id, "0007-00000000000000123456");
    CHECK(chat_msgid_format(id, 9999, INT64_MAX) == 0);
    CHECK_STR(id, "9999-09223372036854775807");
    CHECK(chat_msgid_format(id, -1, 0) == -EINVAL);
    CHECK(chat_msgid_format(id, 10000, 0) == -EINVAL);
    CHECK(chat_msgid_format(id, 0, -1) == -EINVAL);
}

static void test_parse(void)
{
    int32_t p = -1;
    int64_t o = -1;

    CHECK(chat_msgid_parse("0007-00000000000000123456", &p, &o) == 0);
    CHECK(p == 7 && o == 123456);
    CHECK(chat_msgid_parse("9999-09223372036854775807", &p, &o) == 0);
    CHECK(p == 9999 && o == INT64_MAX);
    CHECK(chat_msgid_parse("0001-00000000000000000002", NULL, NULL) == 0);

    static const char *const bad[] = {
        "",
        "0007",
        "0007-0000000000000012345",   /* 19 offset digits */
        "0007-000000000000001234567", /* 21 */
        "007-000000000000000123456",  /* 3 partition digits */
        "0007_00000000000000123456",
        "000a-00000000000000123456",
        "0007-0000000000000012345x",
        "0007-00000000000000123456 ",
        " 007-00000000000000123456",
        "-007-00000000000000123456",
        "0007--0000000000000123456",
        "0000-09223372036854775808", /* INT64_MAX + 1 */
        "0000-99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = -1;
        int rc = chat_msgid_parse(bad[i], &p, &o);
        CHECK(rc == -EINVAL);
        CHECK(p == -1); /* outputs untouched on failure */
        if (rc != -EINVAL)
            fprintf(stderr, "  accepted bad id '%s'\n", bad[i]);
    }
    CHECK(chat_msgid_parse(NULL, &p, &o) == -EINVAL);
}

static void test_round_trip_and_order(void)
{
    static const int64_t offs[] = {
        0, 1, 9, 10, 99, 100, 12345, 999999999, 1000000000, INT64_MAX - 1, INT64_MAX};
    char a[CHAT_MSGID_LEN + 1], b[CHAT_MSGID_LEN + 1];
    int32_t p;
    int64_t o;

    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        CHECK(chat_msgid_format(a, 3, offs[i]) == 0);
        CHECK(chat_msgid_parse(a, &p, &o) == 0);
        CHECK(p == 3 && o == offs[i]);
        for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
            int want = offs[i] < offs[j] ? -1 : offs[i] > offs[j] ? 1 : 0;
            int got;
            CHECK(chat_msgid_format(b, 3, offs[j]) == 0);
            got = strcmp(a, b);
            got = got < 0 ? -1 : got > 0 ? 1 : 0;
            CHECK(got == want);
        }
    }
    /* partitions order before offsets */
    CHECK(chat_msgid_format(a, 1, INT64_MAX) == 0);
    CHECK(chat_msgid_format(b, 2, 0) == 0);
    CHECK(strcmp(a, b) < 0);
}

int main(void)
{
    RUN(test_format);
    RUN(test_parse);
    RUN(test_round_trip_and_order);
    return check_summary();
}
