/* gw_recent.h: the gateway's memory of the messages it fanned out last, whatever their room.
 * A join answers with history from MongoDB, which lags Kafka by the persister's batching; the
 * messages this gateway saw in that window are in neither the history nor the live stream of
 * the new member, so the join fills the gap from here. Bounded in entries and bytes; the
 * oldest go first. Loop thread only. */
#ifndef GW_RECENT_H
#define GW_RECENT_H

#include <stddef.h>

#include "gw_buf.h"

typedef struct gw_recent gw_recent;

/* NULL on ENOMEM. max_items >= 1. */
gw_recent *gw_recent_new(size_t max_items, size_t max_bytes);
/* Drops every reference. NULL is a no-op. */
void gw_recent_free(gw_recent *r);

/* Remembers the message frame b (a reference is taken) under room and id, evicting the
 * oldest entries beyond the bounds. A frame larger than max_bytes is not kept.
 * Returns 0 or -EINVAL (room or id too long). */
int gw_recent_add(gw_recent *r, const char *room, const char *id, gw_buf *b);

/* Calls fn for each remembered message of room whose id sorts after after_id ("" for all),
 * oldest first. Returns how many. */
typedef void (*gw_recent_fn)(const char *id, gw_buf *b, void *arg);
size_t gw_recent_after(const gw_recent *r, const char *room, const char *after_id,
                       gw_recent_fn fn, void *arg);

/* Entries and payload bytes held, for tests and stats. */
size_t gw_recent_count(const gw_recent *r);
size_t gw_recent_bytes(const gw_recent *r);

#endif
