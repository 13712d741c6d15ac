/* chat_validate.c: the validation rules shared by the gateway and the envelope decoder (room
 * names, UTF-8 text, correlation ids). See chat_validate.h. */
#include "chat_validate.h"

#include <stdint.h>
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

bool chat_valid_room(const char *s, size_t len)
{
    return chat_valid_charset(s, len, CHAT_ROOM_MAX, "._:-");
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
