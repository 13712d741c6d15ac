/* test_chat_validate.c: room names, strict UTF-8 (overlongs, surrogates, > U+10FFFF, truncated
 * and stray continuation bytes, NUL) and correlation ids, at and around every boundary. */
#include <string.h>

#include "chat_validate.h"
#include "check.h"

#define U(s) chat_valid_utf8_nonul((s), sizeof(s) - 1)

static void test_room(void)
{
    char r[CHAT_ROOM_MAX + 2];

    CHECK(chat_valid_room("general", 7));
    CHECK(chat_valid_room("a", 1));
    CHECK(chat_valid_room("A-Z_a.z:0-9", 11));
    CHECK(chat_valid_room("...", 3));
    CHECK(!chat_valid_room("", 0));
    CHECK(!chat_valid_room(NULL, 3));
    CHECK(!chat_valid_room("with space", 10));
    CHECK(!chat_valid_room("slash/room", 10));
    CHECK(!chat_valid_room("caf\xc3\xa9", 5));
    CHECK(!chat_valid_room("nul\0x", 5));
    CHECK(!chat_valid_room("room$", 5));
    CHECK(!chat_valid_room("room\n", 5));
    /* not NUL-terminated: only len bytes count */
    CHECK(chat_valid_room("general!!!", 7));
    memset(r, 'x', sizeof(r));
    CHECK(chat_valid_room(r, CHAT_ROOM_PLAIN_MAX));
    CHECK(!chat_valid_room(r, CHAT_ROOM_PLAIN_MAX + 1));
}

static void test_dm(void)
{
    char r[CHAT_ROOM_MAX + 8], u[CHAT_DM_USER_MAX + 2], v[CHAT_DM_USER_MAX + 2];
    chat_dm dm;

    CHECK(chat_valid_room("dm:alice:bob", 12));
    CHECK(chat_valid_room("dm:a@x.io:b-c_d", 15));
    CHECK(!chat_valid_room("dm:bob:alice", 12)); /* not in byte order */
    CHECK(!chat_valid_room("dm:bob:bob", 10));   /* one user */
    CHECK(!chat_valid_room("dm:alice", 8));
    CHECK(!chat_valid_room("dm:", 3));
    CHECK(!chat_valid_room("dm::bob", 7));
    CHECK(!chat_valid_room("dm:alice:", 9));
    CHECK(!chat_valid_room("dm:a:b:c", 8));
    CHECK(!chat_valid_room("dm:a:b c", 8));
    CHECK(!chat_valid_room("plain@room", 10)); /* '@' only in direct rooms */
    CHECK(chat_valid_room("dmx:a", 5));
    CHECK(chat_valid_room("DM:b:a", 6)); /* the prefix is case-sensitive */

    CHECK(chat_dm_parse("dm:alice:bob", 12, &dm));
    CHECK(dm.alen == 5 && memcmp(dm.a, "alice", 5) == 0);
    CHECK(dm.blen == 3 && memcmp(dm.b, "bob", 3) == 0);
    CHECK(chat_dm_has_user(&dm, "alice") && chat_dm_has_user(&dm, "bob"));
    CHECK(!chat_dm_has_user(&dm, "ali") && !chat_dm_has_user(&dm, "alicex"));
    CHECK(!chat_dm_has_user(&dm, "carol"));
    CHECK(!chat_dm_parse("general", 7, &dm));
    CHECK(chat_dm_parse("dm:ab:abc", 9, NULL)); /* a prefix sorts first */
    CHECK(!chat_dm_parse("dm:abc:ab", 9, NULL));

    CHECK(chat_dm_room("bob", "alice", r, sizeof(r)) == 12 && strcmp(r, "dm:alice:bob") == 0);
    CHECK(chat_dm_room("alice", "bob", r, sizeof(r)) == 12 && strcmp(r, "dm:alice:bob") == 0);
    CHECK(chat_dm_room("alice", "alice", r, sizeof(r)) == -1);
    CHECK(chat_dm_room("a:b", "c", r, sizeof(r)) == -1);
    CHECK(chat_dm_room("alice", "bob", r, 12) == -1); /* no room for the NUL */

    /* the longest direct room: two users of CHAT_DM_USER_MAX bytes */
    memset(u, 'a', CHAT_DM_USER_MAX);
    u[CHAT_DM_USER_MAX] = 0;
    memset(v, 'b', CHAT_DM_USER_MAX);
    v[CHAT_DM_USER_MAX] = 0;
    CHECK(chat_dm_room(u, v, r, sizeof(r)) == CHAT_ROOM_MAX);
    CHECK(chat_valid_room(r, CHAT_ROOM_MAX));
    u[CHAT_DM_USER_MAX] = 'a';
    u[CHAT_DM_USER_MAX + 1] = 0;
    CHECK(chat_dm_room(u, v, r, sizeof(r)) == -1);
}

static void test_utf8_valid(void)
{
    CHECK(chat_valid_utf8_nonul("", 0));
    CHECK(chat_valid_utf8_nonul(NULL, 0));
    CHECK(U("plain ascii ~\x7f"));
    CHECK(U("\xc2\x80"));         /* U+0080, smallest 2-byte */
    CHECK(U("\xdf\xbf"));         /* U+07FF */
    CHECK(U("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
    CHECK(U("\xed\x9f\xbf"));     /* U+D7FF, just below surrogates */
    CHECK(U("\xee\x80\x80"));     /* U+E000, just above surrogates */
    CHECK(U("\xef\xbf\xbf"));     /* U+FFFF */
    CHECK(U("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
    CHECK(U("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the largest */
    CHECK(U("h\xc3\xa9llo \xf0\x9f\x98\x80 \xe4\xb8\xad"));
}

static void test_utf8_invalid(void)
{
    CHECK(!chat_valid_utf8_nonul("a\0b", 3)); /* NUL */
    CHECK(!U("\x00"));
    CHECK(!U("\x80")); /* stray continuation */
    CHECK(!U("a\xbf"));
    CHECK(!U("\xc0\x80"));                 /* overlong NUL */
    CHECK(!U("\xc1\xbf"));                 /* overlong 2-byte */
    CHECK(!U("\xe0\x80\x80"));             /* overlong 3-byte */
    CHECK(!U("\xe0\x9f\xbf"));             /* overlong U+07FF */
    CHECK(!U("\xf0\x80\x80\x80"));         /* overlong 4-byte */
    CHECK(!U("\xf0\x8f\xbf\xbf"));         /* overlong U+FFFF */
    CHECK(!U("\xed\xa0\x80"));             /* U+D800 */
    CHECK(!U("\xed\xbf\xbf"));             /* U+DFFF */
    CHECK(!U("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 surrogate pair */
    CHECK(!U("\xf4\x90\x80\x80"));         /* U+110000 */
    CHECK(!U("\xf5\x80\x80\x80"));
    CHECK(!U("\xf8\x88\x80\x80\x80")); /* 5-byte form */
    CHECK(!U("\xfe"));
    CHECK(!U("\xff"));
    CHECK(!U("\xc3")); /* truncated at end */
    CHECK(!U("\xe2\x82"));
    CHECK(!U("\xf0\x9f\x98"));
    CHECK(!U("\xc3x")); /* missing continuation */
    CHECK(!U("\xe2\x82x"));
    CHECK(!U("\xf0\x9f\x98x"));
    CHECK(!U("\xe2\xc3\xa9"));
    /* the length counts: a valid string cut inside a sequence is invalid */
    CHECK(!chat_valid_utf8_nonul("\xc3\xa9", 1));
    CHECK(chat_valid_utf8_nonul("\xc3\xa9", 2));
}

static void test_cid(void)
{
    char c[CHAT_CID_MAX + 2];

    CHECK(chat_valid_cid("c1", 2));
    CHECK(chat_valid_cid(" ~!", 3));
    CHECK(!chat_valid_cid("", 0));
    CHECK(!chat_valid_cid(NULL, 1));
    CHECK(!chat_valid_cid("a\tb", 3));
    CHECK(!chat_valid_cid("a\x7f", 2));
    CHECK(!chat_valid_cid("\xc3\xa9", 2));
    CHECK(!chat_valid_cid("a\0b", 3));
    memset(c, 'c', sizeof(c));
    CHECK(chat_valid_cid(c, CHAT_CID_MAX));
    CHECK(!chat_valid_cid(c, CHAT_CID_MAX + 1));
}

int main(void)
{
    RUN(test_room);
    RUN(test_dm);
    RUN(test_utf8_valid);
    RUN(test_utf8_invalid);
    RUN(test_cid);
    return check_summary();
}
