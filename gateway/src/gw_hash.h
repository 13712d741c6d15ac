/* gw_hash.h: the hashes behind the gateway's in-memory indexes. Strings that clients choose
 * (room names, user ids, cids) are hashed with SipHash-2-4 under a key drawn from getrandom()
 * per index, so colliding inputs cannot be precomputed to turn lookups into list scans;
 * pointers are mixed with a splitmix64 finaliser. Pure functions; any thread. */
#ifndef GW_HASH_H
#define GW_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of len bytes under the 128-bit key k. */
uint64_t gw_hash_sip(const uint64_t k[2], const void *p, size_t len);
/* A strong 64-bit integer mix (splitmix64's finaliser). */
uint64_t gw_hash_mix(uint64_t x);
/* Fills key from getrandom(); without entropy yet (very early boot), from the clock and salt. */
void gw_hash_seed(uint64_t key[2], const void *salt);

#endif
