/* gw_throttle.c: the fixed-memory per-key rate gate of gw_throttle.h. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "gw_throttle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_validate.h"
#include "gw_hash.h"

int gw_throttle_init(gw_throttle *t, size_t nbuckets, int64_t window_ms)
{
    size_t n = 1;
    while (n < nbuckets)
        n <<= 1;
    memset(t, 0, sizeof(*t));
    t->slots = calloc(n * GW_THROTTLE_WAYS, sizeof(*t->slots));
    if (!t->slots)
        return -ENOMEM;
    t->nbuckets = n;
    t->window_ms = window_ms;
    gw_hash_seed(t->seed, t);
    return 0;
}

void gw_throttle_free(gw_throttle *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

bool gw_throttle_take(gw_throttle *t, const char *user, const char *room, int64_t now_ms)
{
    char buf[CHAT_USER_MAX + CHAT_ROOM_MAX + 2];
    size_t ul = strnlen(user, CHAT_USER_MAX), rl = strnlen(room, CHAT_ROOM_MAX);
    memcpy(buf, user, ul);
    buf[ul] = '\0';
    memcpy(buf + ul + 1, room, rl);
    uint64_t key = gw_hash_sip(t->seed, buf, ul + 1 + rl) | 1; /* never 0 (empty) */
    gw_throttle_slot *b = &t->slots[(key >> 1 & (t->nbuckets - 1)) * GW_THROTTLE_WAYS];
    /* a bucket's slots are kept most recently passed first: a new key goes in front and the
     * last one (empty, or the least recent) goes */
    int at = GW_THROTTLE_WAYS - 1;
    for (int i = 0; i < GW_THROTTLE_WAYS; i++) {
        if (b[i].key == key) {
            if (now_ms - b[i].at_ms < t->window_ms)
                return false;
            at = i;
            break;
        }
    }
    memmove(&b[1], &b[0], (size_t)at * sizeof(*b));
    b[0].key = key;
    b[0].at_ms = now_ms;
    return true;
}

size_t gw_throttle_bytes(const gw_throttle *t)
{
    return t->nbuckets * GW_THROTTLE_WAYS * sizeof(*t->slots);
}
