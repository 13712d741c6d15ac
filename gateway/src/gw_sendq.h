/* gw_sendq.h: a connection's bounded queue of replies (gw_buf references): acks, joined and
 * history answers, errors. Bounded both in frames and in bytes; a push that would exceed either
 * bound fails and the caller closes the slow client instead of growing memory. The ring is
 * allocated on the first push, grows by doubling up to the bound and is freed when the queue
 * empties, so an idle connection owns no buffer. Room messages do not pass through here: they
 * are written from the room logs (gw_log.h). Loop thread only. */
#ifndef GW_SENDQ_H
#define GW_SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include "gw_buf.h"

/* The bounds, shared by every connection's queue (CHAT_SEND_QUEUE and CHAT_SEND_QUEUE_BYTES,
 * at most 1,000,000 frames and 1 GiB; gw_sendq_limits_init clamps larger ones to 32 bits). */
typedef struct gw_sendq_limits {
    uint32_t max_items, max_bytes;
} gw_sendq_limits;

/* One per connection: 24 bytes, 32-bit counts. A zeroed queue is empty. */
typedef struct gw_sendq {
    gw_buf **items; /* ring of cap slots; NULL while empty */
    uint32_t cap, head, count, bytes;
} gw_sendq;

/* Returns 0 or -EINVAL (a bound below 1). */
int gw_sendq_limits_init(gw_sendq_limits *lim, size_t max_items, size_t max_bytes);
/* Queues b within lim, taking a new reference on success. Returns 0, -ENOBUFS when full or
 * -ENOMEM (no reference taken). */
int gw_sendq_push(gw_sendq *q, const gw_sendq_limits *lim, gw_buf *b);
/* The oldest queued buffer (still owned by the queue), or NULL when empty. */
gw_buf *gw_sendq_peek(const gw_sendq *q);
/* Removes the oldest and drops the queue's reference. No-op when empty. */
void gw_sendq_pop(gw_sendq *q);
/* Drops every queued reference and frees the ring: the queue is empty (and owns nothing). */
void gw_sendq_clear(gw_sendq *q);

#endif
