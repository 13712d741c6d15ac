/* gw_sendq.h: a connection's bounded send queue of gw_buf references. Bounded both in frames
 * and in bytes; a push that would exceed either bound fails and the caller disconnects the slow
 * client instead of growing memory. Loop thread only. */
#ifndef GW_SENDQ_H
#define GW_SENDQ_H

#include <stddef.h>

#include "gw_buf.h"

typedef struct gw_sendq {
    gw_buf **items;     /* ring of max_items slots */
    size_t max_items, head, count;
    size_t bytes, max_bytes;
} gw_sendq;

/* Returns 0 or -ENOMEM. max_items >= 1, max_bytes >= 1. */
int gw_sendq_init(gw_sendq *q, size_t max_items, size_t max_bytes);
/* Queues b, taking a new reference on success. Returns 0, or -ENOBUFS when full (no ref taken). */
int gw_sendq_push(gw_sendq *q, gw_buf *b);
/* The oldest queued buffer (still owned by the queue), or NULL when empty. */
gw_buf *gw_sendq_peek(const gw_sendq *q);
/* Removes the oldest and drops the queue's reference. No-op when empty. */
void gw_sendq_pop(gw_sendq *q);
/* Drops every queued reference and frees the ring. */
void gw_sendq_free(gw_sendq *q);

#endif
