/* chat_msgid.c: message ids "PPPP-OOOOOOOOOOOOOOOOOOOO" from a Kafka partition and offset,
 * and back. See chat_msgid.h. */
#include "chat_msgid.h"

#include <errno.h>
#include <stdio.h>

int chat_msgid_format(char out[CHAT_MSGID_LEN + 1], int32_t partition, int64_t offset)
{
    int n;

    if (!out || partition < 0 || partition > 9999 || offset < 0)
        return -EINVAL;
    n = snprintf(out, CHAT_MSGID_LEN + 1, "%04d-%020lld", (int)partition, (long long)offset);
    if (n != CHAT_MSGID_LEN)
        return -EINVAL;
    return 0;
}

int chat_msgid_parse(const char *s, int32_t *partition, int64_t *offset)
{
    int32_t p = 0;
    uint64_t o = 0;

    if (!s)
        return -EINVAL;
    for (int i = 0; i < CHAT_MSGID_LEN; i++) {
        char c = s[i];
        if (i == 4) {
            if (c != '-')
                return -EINVAL;
            continue;
        }
        if (c < '0' || c > '9')
            return -EINVAL; /* also stops at a NUL before the full length */
        if (i < 4) {
            p = p * 10 + (c - '0');
        } else {
            /* 20 digits may exceed INT64_MAX; check before multiplying. */
            if (o > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10)
                return -EINVAL;
            o = o * 10 + (uint64_t)(c - '0');
        }
    }
    if (s[CHAT_MSGID_LEN] != '\0')
        return -EINVAL;
    if (partition)
        *partition = p;
    if (offset)
        *offset = (int64_t)o;
    return 0;
}
