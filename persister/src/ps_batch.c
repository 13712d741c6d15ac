/* ps_batch.c: the persister's batch (messages plus per-partition commit offsets) and the retry
 * backoff; see ps_batch.h. */
#include "ps_batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ps_batch_init(ps_batch *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->first_ms = -1;
    if (cap == 0)
        return -EINVAL;
    b->recs = calloc(cap, sizeof(*b->recs));
    if (!b->recs)
        return -ENOMEM;
    b->cap = cap;
    return 0;
}

void ps_batch_free(ps_batch *b)
{
    if (!b)
        return;
    ps_batch_reset(b);
    free(b->recs);
    free(b->offs);
    memset(b, 0, sizeof(*b));
    b->first_ms = -1;
}

/* Notes that offset was consumed on partition; grows the partition table as needed. */
static int track(ps_batch *b, int32_t partition, int64_t offset)
{
    ps_offset *o;

    for (size_t i = 0; i < b->noffs; i++) {
        if (b->offs[i].partition == partition) {
            if (offset + 1 > b->offs[i].next)
                b->offs[i].next = offset + 1;
            return 0;
        }
    }
    if (b->noffs == b->offs_cap) {
        size_t ncap = b->offs_cap ? b->offs_cap * 2 : 16;
        if (ncap > PS_MAX_PARTITIONS)
            ncap = PS_MAX_PARTITIONS;
        if (ncap <= b->noffs)
            return -EINVAL; /* cannot happen: partitions are 0..9999 and unique here */
        o = realloc(b->offs, ncap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        b->offs = o;
        b->offs_cap = ncap;
    }
    b->offs[b->noffs].partition = partition;
    b->offs[b->noffs].next = offset + 1;
    b->noffs++;
    return 0;
}

static bool valid_pos(int32_t partition, int64_t offset)
{
    return partition >= 0 && partition < PS_MAX_PARTITIONS && offset >= 0 && offset < INT64_MAX;
}

int ps_batch_add(ps_batch *b, int32_t partition, int64_t offset, chat_envelope *env, int64_t now_ms)
{
    ps_record *r;
    int rc;

    if (!valid_pos(partition, offset) || !env)
        return -EINVAL;
    if (b->n >= b->cap)
        return -ENOBUFS;
    r = &b->recs[b->n];
    if ((rc = chat_msgid_format(r->id, partition, offset)) != 0)
        return rc;
    if ((rc = track(b, partition, offset)) != 0)
        return rc;
    r->partition = partition;
    r->offset = offset;
    r->env = *env;
    memset(env, 0, sizeof(*env));
    b->n++;
    if (b->first_ms < 0)
        b->first_ms = now_ms;
    return 0;
}

int ps_batch_pass(ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms)
{
    int rc;

    if (!valid_pos(partition, offset))
        return -EINVAL;
    if ((rc = track(b, partition, offset)) != 0)
        return rc;
    if (b->first_ms < 0)
        b->first_ms = now_ms;
    return 0;
}

int ps_batch_skip(ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms)
{
    int rc = ps_batch_pass(b, partition, offset, now_ms);
    if (rc == 0)
        b->skipped++;
    return rc;
}

bool ps_batch_empty(const ps_batch *b)
{
    return b->n == 0 && b->noffs == 0;
}

bool ps_batch_ready(const ps_batch *b, int64_t now_ms, int64_t batch_ms)
{
    if (ps_batch_empty(b))
        return false;
    return b->n >= b->cap || now_ms - b->first_ms >= batch_ms;
}

int64_t ps_batch_wait_ms(const ps_batch *b, int64_t now_ms, int64_t batch_ms, int64_t idle_ms)
{
    int64_t left;

    if (ps_batch_empty(b))
        return idle_ms;
    if (b->n >= b->cap)
        return 0;
    left = b->first_ms + batch_ms - now_ms;
    if (left < 0)
        left = 0;
    return left < idle_ms ? left : idle_ms;
}

void ps_batch_reset(ps_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        chat_envelope_clear(&b->recs[i].env);
    b->n = 0;
    b->noffs = 0;
    b->skipped = 0;
    b->first_ms = -1;
}

void ps_backoff_init(ps_backoff *bo, int64_t min_ms, int64_t max_ms)
{
    if (min_ms < 1)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    bo->min_ms = min_ms;
    bo->max_ms = max_ms;
    ps_backoff_reset(bo);
}

int64_t ps_backoff_next(ps_backoff *bo)
{
    int64_t d = bo->next_ms;

    bo->failures++;
    bo->next_ms = d > bo->max_ms / 2 ? bo->max_ms : d * 2;
    return d;
}

void ps_backoff_reset(ps_backoff *bo)
{
    bo->next_ms = bo->min_ms;
    bo->failures = 0;
}
