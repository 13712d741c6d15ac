/* gw_throttle.h: "at most one per key every window" in fixed memory, for typing: the gateway
 * forwards at most one on:true per (user, room) every 2 s. A set-associative table of 64-bit
 * keyed hashes (SipHash of user and room) with the time each key last passed: nbuckets x 4
 * slots of 16 bytes, allocated once. A bucket keeps its keys most recently passed first; a new
 * key takes the front and pushes out the last, empty or least recent. That forgets a key early
 * only when more than 4 keys of one bucket are active within a window: then it may pass twice
 * in the window. Memory never grows.
 * Loop thread only (no locking); pure apart from the clock the caller passes. */
#ifndef GW_THROTTLE_H
#define GW_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_THROTTLE_WAYS 4

typedef struct gw_throttle_slot {
    uint64_t key; /* 0: empty */
    int64_t at_ms;
} gw_throttle_slot;

typedef struct gw_throttle {
    gw_throttle_slot *slots; /* nbuckets * GW_THROTTLE_WAYS */
    size_t nbuckets;         /* a power of two */
    int64_t window_ms;
    uint64_t seed[2];
} gw_throttle;

/* nbuckets is rounded up to a power of two. Returns 0 or -ENOMEM. */
int gw_throttle_init(gw_throttle *t, size_t nbuckets, int64_t window_ms);
void gw_throttle_free(gw_throttle *t);
/* True when (user, room) may pass at now_ms (and records it); false within window_ms of the
 * last time it passed. */
bool gw_throttle_take(gw_throttle *t, const char *user, const char *room, int64_t now_ms);
/* Bytes the table holds. */
size_t gw_throttle_bytes(const gw_throttle *t);

#endif
