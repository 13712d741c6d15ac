/* ps_batch.h: the persister's batch: decoded messages waiting to be stored together, and for
 * every partition the offset to commit once they are (the offset after the last record seen,
 * stored or skipped). Also the retry backoff. Pure logic without I/O, so it is unit-tested;
 * one thread (the persister's loop) owns a batch. */
#ifndef PS_BATCH_H
#define PS_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_envelope.h"

#define PS_MAX_PARTITIONS 10000 /* message ids carry 4 partition digits */

typedef struct ps_record {
    char id[CHAT_MSGID_LEN + 1]; /* chat_msgid_format(partition, offset) */
    int32_t partition;
    int64_t offset;
    chat_envelope env; /* owned by the batch */
} ps_record;

typedef struct ps_offset {
    int32_t partition;
    int64_t next; /* offset to commit: last seen + 1 */
} ps_offset;

typedef struct ps_batch {
    ps_record *recs; /* [cap] */
    size_t n, cap;
    ps_offset *offs; /* one per partition seen since the last reset */
    size_t noffs, offs_cap;
    size_t skipped;   /* undecodable records in this batch (offsets tracked, nothing stored) */
    int64_t first_ms; /* when the first record (stored or skipped) entered; -1 when empty */
} ps_batch;

/* cap: the most messages per batch (>= 1). Returns 0 or -ENOMEM / -EINVAL. */
int ps_batch_init(ps_batch *b, size_t cap);
void ps_batch_free(ps_batch *b);

/* Adds a decoded message; on success the batch takes the envelope's strings (*env is zeroed).
 * Returns 0, -ENOBUFS when full, -EINVAL for a partition outside 0..9999 or a negative
 * offset, or -ENOMEM. On failure *env is untouched (still the caller's). */
int ps_batch_add(ps_batch *b, int32_t partition, int64_t offset, chat_envelope *env,
                 int64_t now_ms);

/* Records that (partition, offset) was consumed but not stored (undecodable): its offset is
 * committed with the batch. Returns 0, -EINVAL or -ENOMEM. */
int ps_batch_skip(ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms);

/* Records that (partition, offset) was consumed and deliberately not stored (a copy of an
 * earlier record, ps_copies.h): its offset is committed with the batch. Returns 0, -EINVAL or
 * -ENOMEM. */
int ps_batch_pass(ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms);

/* Nothing to store and nothing to commit. */
bool ps_batch_empty(const ps_batch *b);

/* Time to store: the batch is full, or its first record has waited batch_ms. */
bool ps_batch_ready(const ps_batch *b, int64_t now_ms, int64_t batch_ms);

/* How long the loop may wait for more records: until the batch is due, at most idle_ms. */
int64_t ps_batch_wait_ms(const ps_batch *b, int64_t now_ms, int64_t batch_ms, int64_t idle_ms);

/* Frees the messages and forgets the offsets (after a commit, or to drop the batch). */
void ps_batch_reset(ps_batch *b);

/* Exponential backoff between retries of a failed store: min, 2*min, ... capped at max. */
typedef struct ps_backoff {
    int64_t min_ms, max_ms, next_ms;
    unsigned failures; /* failures since the last reset */
} ps_backoff;

void ps_backoff_init(ps_backoff *bo, int64_t min_ms, int64_t max_ms);
/* The delay to wait after one more failure (and counts it). */
int64_t ps_backoff_next(ps_backoff *bo);
void ps_backoff_reset(ps_backoff *bo);

#endif
