/* chat_validate.c: the validation rules shared by the gateway and the envelope decoder (room
 * names, direct rooms, UTF-8 text, correlation ids). See chat_validate.h. */
#include "chat_validate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool chat_valid_charset(const char *s, size_t len, size_t max, const char *punct)
{
    if (!s || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (c != 0 && strchr(punct, c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

bool chat_valid_dm_user(const char *s, size_t len)
{
    return chat_valid_charset(s, len, CHAT_DM_USER_MAX, "._@-");
}

static bool is_dm_name(const char *s, size_t len)
{
    return s && len >= 3 && memcmp(s, "dm:", 3) == 0;
}

/* Byte order of two strings of given lengths (a shorter prefix sorts first), as memcmp. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

bool chat_dm_parse(const char *room, size_t len, chat_dm *out)
{
    if (!is_dm_name(room, len) || len > CHAT_ROOM_MAX)
        return false;
    const char *a = room + 3, *end = room + len;
    const char *colon = memchr(a, ':', (size_t)(end - a));
    if (!colon)
        return false;
    const char *b = colon + 1;
    size_t alen = (size_t)(colon - a), blen = (size_t)(end - b);
    if (!chat_valid_dm_user(a, alen) || !chat_valid_dm_user(b, blen) ||
        bytes_cmp(a, alen, b, blen) >= 0)
        return false;
    if (out)
        *out = (chat_dm){.a = a, .b = b, .alen = alen, .blen = blen};
    return true;
}

bool chat_dm_has_user(const chat_dm *dm, const char *user)
{
    size_t n = strlen(user);
    return (n == dm->alen && memcmp(user, dm->a, n) == 0) ||
           (n == dm->blen && memcmp(user, dm->b, n) == 0);
}

int chat_dm_room(const char *u, const char *v, char *out, size_t outlen)
{
    size_t ul = strlen(u), vl = strlen(v);
    if (!chat_valid_dm_user(u, ul) || !chat_valid_dm_user(v, vl))
        return -1;
    int c = bytes_cmp(u, ul, v, vl);
    if (c == 0 || outlen < 3 + ul + 1 + vl + 1)
        return -1;
    const char *lo = c < 0 ? u : v, *hi = c < 0 ? v : u;
    return snprintf(out, outlen, "dm:%s:%s", lo, hi);
}

bool chat_valid_room(const char *s, size_t len)
{
    if (is_dm_name(s, len))
        return chat_dm_parse(s, len, NULL);
    return chat_valid_charset(s, len, CHAT_ROOM_PLAIN_MAX, "._:-");
}

/* Strict UTF-8 (RFC 3629): shortest form only, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. The second byte's range depends on the lead byte; see RFC 3629 section 4. */
bool chat_valid_utf8_nonul(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (!s)
        return len == 0;
    while (i < len) {
        unsigned char c = p[i];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t extra;

        if (c == 0x00)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong below U+0800 */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, 0xc0/0xc1 overlongs, 0xf5.. */
        }
        if (len - i - 1 < extra)
            return false; /* truncated sequence */
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= extra; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return false;
        i += extra + 1;
    }
    return true;
}

bool chat_valid_cid(const char *s, size_t len)
{
    if (!s || len == 0 || len > CHAT_CID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e)
            return false;
    }
    return true;
}
