/* gw_log.h: the gateway's room logs, the one mechanism behind live fan-out, exact join history,
 * resume, retries and slow readers (DESIGN.md, "The delivery path").
 *
 * The gateway reads every partition of the topic; every record it reads is appended here, in
 * each partition's order, as its message frame (encoded once, shared by every reader). Entries
 * are grouped by room: a room's entries carry consecutive room sequence numbers (rseq), so a
 * reader's position in a room (its cursor) is one integer, and the frame after it is found in
 * O(1). The log is bounded in bytes: beyond the bound the oldest entry of the whole gateway is
 * dropped first. A reader whose cursor points before its room's first retained entry has fallen
 * off the log.
 *
 * Coverage: for each partition the log knows the offsets [start, next) it holds completely:
 * start is where reading began (gw_log_cover) or one past the last dropped entry, next is one
 * past the last record appended. Every record of the partition in that range is in the log, so
 * a question about a room whose partition range covers it is answered from memory alone.
 *
 * Retries: entries remember (from, cid); gw_log_find_cid answers "was this cid already sent by
 * this user in this room, and under which offset", for as long as the entry is retained, and
 * gw_log_skip_copy keeps a second record with the same cid out of the log.
 *
 * Rooms are reference counted: a cursor holds a reference so that its room (and its rseq
 * numbering) outlives the room's entries. A room with no entries and no reference is freed.
 * Loop thread only. */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_validate.h"
#include "gw_buf.h"
#include "gw_htab.h"

typedef struct gw_log gw_log;
typedef struct gw_log_entry gw_log_entry;

struct gw_log_entry {
    gw_log_entry *next; /* arrival order, for eviction (private) */
    gw_hnode cnode;     /* in the cid index (private) */
    struct gw_log_room *room;
    int64_t offset;   /* Kafka offset in room->partition */
    uint64_t dkey;    /* hash of (room, from, cid); 0 when the message had no cid */
    gw_buf *frame;    /* the message frame, one reference owned by the entry */
    size_t cost;      /* bytes charged against the log's bound */
    char *from, *cid; /* point into key (private) */
    char key[];       /* from NUL cid NUL */
};

typedef struct gw_log_room {
    gw_hnode node; /* in the name index (private) */
    int32_t partition;
    unsigned refs;
    uint64_t first_rseq; /* rseq of the oldest retained entry */
    uint64_t next_rseq;  /* rseq the next appended entry gets */
    gw_log_entry **ring; /* private: entry rseq is at ring[rseq & (cap - 1)] */
    size_t cap;
    void *user;    /* the log's owner's (a store read under way holds a ref) */
    gw_buf *cache; /* a frame the owner derived from the room's entries, e.g. its
                      latest page; the log drops this reference with the room */
    uint64_t cache_key;
    size_t len;
    char name[CHAT_ROOM_MAX + 1];
} gw_log_room;

/* A log of at most max_bytes over partitions 0..partitions-1; user_free (may be NULL) frees a
 * room's user pointer when the room goes. NULL on ENOMEM or bad input. */
gw_log *gw_log_new(size_t max_bytes, int32_t partitions, void (*user_free)(void *));
/* Drops every entry. Rooms still referenced are freed too: call it last. NULL is a no-op. */
void gw_log_free(gw_log *log);

/* Reading partition p starts at offset: the log covers [offset, offset) until records come. */
void gw_log_cover(gw_log *log, int32_t p, int64_t offset);
/* The covered range [*start, *next) of partition p; false for a partition out of range. */
bool gw_log_coverage(const gw_log *log, int32_t p, int64_t *start, int64_t *next);

/* Appends the record (p, offset) of room with its frame (a reference is taken). from and cid
 * may be "" (cid "" is not indexed). Records of a partition must come in offset order; one
 * at or before the partition's next offset is ignored (a replay). Evicts the oldest entries
 * beyond the bound. Returns the entry, or NULL (ignored, bad input, or ENOMEM). */
gw_log_entry *gw_log_append(gw_log *log, int32_t p, int64_t offset, const char *room,
                            const char *from, const char *cid, gw_buf *frame);

/* The room, or NULL when the log has nothing of it and nobody holds it. */
gw_log_room *gw_log_room_find(const gw_log *log, const char *room);
/* Finds or creates the room (of partition p) and takes a reference. NULL on ENOMEM/EINVAL. */
gw_log_room *gw_log_room_ref(gw_log *log, const char *room, int32_t p);
void gw_log_room_unref(gw_log *log, gw_log_room *r);

/* The entry at rseq, or NULL when it was dropped or not yet appended. */
gw_log_entry *gw_log_at(const gw_log_room *r, uint64_t rseq);
/* The rseq of the first retained entry of r with an offset greater than offset (next_rseq when
 * there is none). */
uint64_t gw_log_after(const gw_log_room *r, int64_t offset);
/* The rseq of the first retained entry of r with an offset of at least offset. */
uint64_t gw_log_from(const gw_log_room *r, int64_t offset);

/* The retained entry of room whose message came from `from` with that cid, or NULL. */
const gw_log_entry *gw_log_find_cid(const gw_log *log, const char *room, const char *from,
                                    const char *cid);

/* Whether the record (p, offset) of room, from `from` with that cid, is a copy of a retained
 * entry with the same three and an earlier offset (a send Kafka refused and wrote anyway, then
 * its retry: docs/deploy.md, "Losing a Kafka broker"). A copy is not appended: the record
 * counts as read (coverage moves past it), and true is returned; else nothing changes. */
bool gw_log_skip_copy(gw_log *log, int32_t p, int64_t offset, const char *room, const char *from,
                      const char *cid);

/* Totals, for tests and metrics. */
size_t gw_log_bytes(const gw_log *log);
size_t gw_log_entries(const gw_log *log);
size_t gw_log_rooms(const gw_log *log);
uint64_t gw_log_evicted(const gw_log *log);

#endif
