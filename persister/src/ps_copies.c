/* ps_copies.c: the persister's memory of recent sends by (room, from, cid); see ps_copies.h.
 * A ring of keys in arrival order (the oldest is forgotten first) indexed by a chained hash
 * table of ring slots. */
#include "ps_copies.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PS_COPIES_NONE UINT32_MAX

typedef struct ps_copy {
    char *key; /* room \0 from \0 cid \0; NULL: the slot is free */
    size_t klen;
    uint64_t hash;
    uint32_t chain; /* the next slot of the same bucket, or PS_COPIES_NONE */
    int32_t partition;
    int64_t offset;
} ps_copy;

struct ps_copies {
    ps_copy *ring;
    size_t cap, next, count; /* next: the slot the next key takes (the oldest when full) */
    uint32_t *buckets;       /* [nbuckets]: first slot, or PS_COPIES_NONE */
    size_t nbuckets;
};

int ps_copies_new(ps_copies **out, size_t cap)
{
    *out = NULL;
    if (cap == 0 || cap >= PS_COPIES_NONE / 2)
        return -EINVAL;
    ps_copies *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cap = cap;
    c->nbuckets = 16;
    while (c->nbuckets < cap * 2)
        c->nbuckets *= 2;
    c->ring = calloc(cap, sizeof(*c->ring));
    c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
    if (!c->ring || !c->buckets) {
        ps_copies_free(c);
        return -ENOMEM;
    }
    memset(c->buckets, 0xff, c->nbuckets * sizeof(*c->buckets));
    *out = c;
    return 0;
}

void ps_copies_free(ps_copies *c)
{
    if (!c)
        return;
    if (c->ring)
        for (size_t i = 0; i < c->cap; i++)
            free(c->ring[i].key);
    free(c->ring);
    free(c->buckets);
    free(c);
}

/* FNV-1a over the key's bytes. */
static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

/* Unlinks ring slot i from its bucket and frees its key. */
static void forget(ps_copies *c, uint32_t i)
{
    ps_copy *e = &c->ring[i];
    uint32_t *link = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*link != i)
        link = &c->ring[*link].chain;
    *link = e->chain;
    free(e->key);
    e->key = NULL;
    c->count--;
}

bool ps_copies_seen(ps_copies *c, const char *room, const char *from, const char *cid,
                    int32_t partition, int64_t offset)
{
    if (!cid || !*cid)
        return false;
    size_t rl = strlen(room), fl = strlen(from), cl = strlen(cid), n = rl + fl + cl + 3;
    char *key = malloc(n);
    if (!key)
        return false;
    memcpy(key, room, rl + 1);
    memcpy(key + rl + 1, from, fl + 1);
    memcpy(key + rl + fl + 2, cid, cl + 1);
    uint64_t h = key_hash(key, n);
    uint32_t *bucket = &c->buckets[h & (c->nbuckets - 1)];
    for (uint32_t i = *bucket; i != PS_COPIES_NONE; i = c->ring[i].chain) {
        ps_copy *e = &c->ring[i];
        if (e->hash == h && e->klen == n && memcmp(e->key, key, n) == 0) {
            free(key);
            return e->partition == partition && e->offset < offset;
        }
    }
    uint32_t slot = (uint32_t)c->next;
    if (c->ring[slot].key)
        forget(c, slot); /* full: the oldest goes */
    c->ring[slot] = (ps_copy){.key = key,
                              .klen = n,
                              .hash = h,
                              .chain = *bucket,
                              .partition = partition,
                              .offset = offset};
    *bucket = slot;
    c->next = (c->next + 1) % c->cap;
    c->count++;
    return false;
}

size_t ps_copies_count(const ps_copies *c)
{
    return c->count;
}
