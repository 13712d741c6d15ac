/* gw_log.c: the room logs (see gw_log.h).
 *
 * One allocation per entry (the struct, then from and cid). Entries sit on three structures:
 * the gateway-wide arrival list (a FIFO: eviction takes its head), their room's ring of entry
 * pointers indexed by rseq (grown by doubling, never shrunk while the room lives), and, when the
 * message had a cid, a hash table keyed by (room, from, cid). Rooms sit in a hash table keyed
 * by name. Both are gw_htab tables hashed with the keyed SipHash of gw_hash.h, since clients
 * choose every byte hashed. Per partition, start and next track the covered range. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "gw_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_hash.h"

#define GW_LOG_ENTRY_OVERHEAD 64 /* what an entry costs beyond its frame and strings */

typedef struct gw_log_part {
    int64_t start, next;
} gw_log_part;

struct gw_log {
    size_t max_bytes, bytes, nentries, nrooms;
    uint64_t evicted;
    gw_log_entry *head, *tail; /* arrival order */
    gw_htab rooms;             /* name index */
    gw_htab cids;              /* cid index */
    gw_log_part *parts;
    int32_t nparts;
    uint64_t key[2];
    void (*user_free)(void *);
};

/* ---- index keys --------------------------------------------------------------------------- */

static uint64_t name_hash(const gw_log *log, const char *room, size_t len)
{
    return gw_hash_sip(log->key, room, len);
}

static uint64_t cid_hash(const gw_log *log, const char *room, const char *from, const char *cid)
{
    /* room NUL from NUL cid: the separators keep ("a","bc") and ("ab","c") apart */
    char buf[CHAT_ROOM_MAX + 1 + 256 + 1 + CHAT_CID_MAX + 1];
    size_t rl = strnlen(room, CHAT_ROOM_MAX + 1), fl = strnlen(from, 256),
           cl = strnlen(cid, CHAT_CID_MAX + 1);
    if (rl > CHAT_ROOM_MAX || fl >= 256 || cl > CHAT_CID_MAX)
        return 0;
    memcpy(buf, room, rl + 1);
    memcpy(buf + rl + 1, from, fl + 1);
    memcpy(buf + rl + 1 + fl + 1, cid, cl);
    uint64_t h = gw_hash_sip(log->key, buf, rl + fl + cl + 2);
    return h ? h : 1; /* 0 means "no cid" */
}

/* ---- the log ------------------------------------------------------------------------------ */

gw_log *gw_log_new(size_t max_bytes, int32_t partitions, void (*user_free)(void *))
{
    if (partitions < 1 || max_bytes < 1)
        return NULL;
    gw_log *log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    log->max_bytes = max_bytes;
    log->parts = calloc((size_t)partitions, sizeof(*log->parts));
    if (gw_htab_init(&log->rooms) || gw_htab_init(&log->cids) || !log->parts) {
        gw_log_free(log);
        return NULL;
    }
    log->nparts = partitions;
    log->user_free = user_free;
    gw_hash_seed(log->key, log);
    return log;
}

static void room_free(gw_log *log, gw_log_room *r)
{
    gw_htab_remove(&log->rooms, &r->node);
    log->nrooms--;
    gw_buf_unref(r->cache);
    if (r->user && log->user_free)
        log->user_free(r->user);
    free(r->ring);
    free(r);
}

/* Frees the room when nothing holds it any more. */
static void room_maybe_free(gw_log *log, gw_log_room *r)
{
    if (r->refs == 0 && r->first_rseq == r->next_rseq)
        room_free(log, r);
}

/* Frees a room at gw_log_free (the entries are gone already). */
static void drop_room(gw_hnode *node, void *arg)
{
    gw_log *log = arg;
    gw_log_room *r = gw_htab_entry(node, gw_log_room, node);
    gw_buf_unref(r->cache);
    if (r->user && log->user_free)
        log->user_free(r->user);
    free(r->ring);
    free(r);
}

void gw_log_free(gw_log *log)
{
    if (!log)
        return;
    gw_log_entry *e = log->head;
    while (e) {
        gw_log_entry *next = e->next;
        gw_buf_unref(e->frame);
        free(e);
        e = next;
    }
    gw_htab_each(&log->rooms, drop_room, log);
    gw_htab_free(&log->rooms);
    gw_htab_free(&log->cids);
    free(log->parts);
    free(log);
}

void gw_log_cover(gw_log *log, int32_t p, int64_t offset)
{
    if (p < 0 || p >= log->nparts || offset < 0)
        return;
    log->parts[p].start = log->parts[p].next = offset;
}

bool gw_log_coverage(const gw_log *log, int32_t p, int64_t *start, int64_t *next)
{
    if (p < 0 || p >= log->nparts)
        return false;
    *start = log->parts[p].start;
    *next = log->parts[p].next;
    return true;
}

gw_log_room *gw_log_room_find(const gw_log *log, const char *room)
{
    size_t len = strnlen(room, CHAT_ROOM_MAX + 1);
    if (len > CHAT_ROOM_MAX)
        return NULL;
    uint64_t h = name_hash(log, room, len);
    for (gw_hnode *n = gw_htab_first(&log->rooms, h); n; n = gw_htab_next(n, h)) {
        gw_log_room *r = gw_htab_entry(n, gw_log_room, node);
        if (r->len == len && memcmp(r->name, room, len) == 0)
            return r;
    }
    return NULL;
}

static gw_log_room *room_get(gw_log *log, const char *room, int32_t p)
{
    gw_log_room *r = gw_log_room_find(log, room);
    if (r)
        return r;
    size_t len = strnlen(room, CHAT_ROOM_MAX + 1);
    if (len == 0 || len > CHAT_ROOM_MAX || p < 0 || p >= log->nparts)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->name, room, len);
    r->len = len;
    r->partition = p;
    r->node.hash = name_hash(log, room, len);
    gw_htab_insert(&log->rooms, &r->node);
    log->nrooms++;
    return r;
}

gw_log_room *gw_log_room_ref(gw_log *log, const char *room, int32_t p)
{
    gw_log_room *r = room_get(log, room, p);
    if (r)
        r->refs++;
    return r;
}

void gw_log_room_unref(gw_log *log, gw_log_room *r)
{
    if (!r || r->refs == 0)
        return;
    r->refs--;
    room_maybe_free(log, r);
}

/* Drops the oldest entry of the whole log. */
static void evict_one(gw_log *log)
{
    gw_log_entry *e = log->head;
    gw_log_room *r = e->room;
    log->head = e->next;
    if (!log->head)
        log->tail = NULL;
    /* arrival order is each partition's order and each room's order: e is its room's oldest */
    r->ring[r->first_rseq & (r->cap - 1)] = NULL;
    r->first_rseq++;
    gw_log_part *part = &log->parts[r->partition];
    if (part->start <= e->offset)
        part->start = e->offset + 1;
    if (e->dkey)
        gw_htab_remove(&log->cids, &e->cnode);
    log->bytes -= e->cost;
    log->nentries--;
    log->evicted++;
    gw_buf_unref(e->frame);
    free(e);
    room_maybe_free(log, r);
}

static int ring_reserve(gw_log_room *r)
{
    size_t used = (size_t)(r->next_rseq - r->first_rseq);
    if (used < r->cap)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : 8;
    gw_log_entry **ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (uint64_t s = r->first_rseq; s < r->next_rseq; s++)
        ring[s & (cap - 1)] = r->ring[s & (r->cap - 1)];
    free(r->ring);
    r->ring = ring;
    r->cap = cap;
    return 0;
}

gw_log_entry *gw_log_append(gw_log *log, int32_t p, int64_t offset, const char *room,
                            const char *from, const char *cid, gw_buf *frame)
{
    if (p < 0 || p >= log->nparts || offset < 0 || !frame)
        return NULL;
    gw_log_part *part = &log->parts[p];
    if (offset < part->next)
        return NULL; /* a replay of what the log already saw */
    from = from ? from : "";
    cid = cid ? cid : "";
    size_t fl = strlen(from), cl = strlen(cid);
    gw_log_room *r = room_get(log, room, p);
    if (!r)
        return NULL;
    if (r->partition != p)
        r->partition = p; /* the partition count changed (a new epoch): the room moved */
    gw_log_entry *e = NULL;
    if (ring_reserve(r) != 0 || !(e = malloc(sizeof(*e) + fl + 1 + cl + 1))) {
        room_maybe_free(log, r);
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->room = r;
    e->offset = offset;
    e->frame = gw_buf_ref(frame);
    e->from = e->key;
    memcpy(e->from, from, fl + 1);
    e->cid = e->key + fl + 1;
    memcpy(e->cid, cid, cl + 1);
    e->cost = frame->len + fl + cl + GW_LOG_ENTRY_OVERHEAD;

    r->ring[r->next_rseq & (r->cap - 1)] = e;
    r->next_rseq++;
    if (log->tail)
        log->tail->next = e;
    else
        log->head = e;
    log->tail = e;
    if (cl) {
        e->dkey = cid_hash(log, r->name, from, cid);
        if (e->dkey) {
            e->cnode.hash = e->dkey;
            gw_htab_insert(&log->cids, &e->cnode);
        }
    }
    /* skipped offsets (transaction markers, compaction) leave the covered range complete */
    part->next = offset + 1;
    log->bytes += e->cost;
    log->nentries++;
    /* the entry just added is never evicted by its own append (a frame larger than the whole
     * bound stays alone until the next one) */
    while (log->bytes > log->max_bytes && log->head != e)
        evict_one(log);
    return e;
}

gw_log_entry *gw_log_at(const gw_log_room *r, uint64_t rseq)
{
    if (rseq < r->first_rseq || rseq >= r->next_rseq)
        return NULL;
    return r->ring[rseq & (r->cap - 1)];
}

/* The first rseq in [first, next) whose entry's offset is > offset (strict) or >= offset. */
static uint64_t search(const gw_log_room *r, int64_t offset, bool strict)
{
    uint64_t lo = r->first_rseq, hi = r->next_rseq;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t o = r->ring[mid & (r->cap - 1)]->offset;
        if (strict ? o > offset : o >= offset)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

uint64_t gw_log_after(const gw_log_room *r, int64_t offset)
{
    return search(r, offset, true);
}

uint64_t gw_log_from(const gw_log_room *r, int64_t offset)
{
    return search(r, offset, false);
}

const gw_log_entry *gw_log_find_cid(const gw_log *log, const char *room, const char *from,
                                    const char *cid)
{
    if (!cid || !*cid || !from)
        return NULL;
    uint64_t h = cid_hash(log, room, from, cid);
    if (!h)
        return NULL;
    for (gw_hnode *n = gw_htab_first(&log->cids, h); n; n = gw_htab_next(n, h)) {
        gw_log_entry *e = gw_htab_entry(n, gw_log_entry, cnode);
        if (strcmp(e->cid, cid) == 0 && strcmp(e->from, from) == 0 &&
            strcmp(e->room->name, room) == 0)
            return e;
    }
    return NULL;
}

bool gw_log_skip_copy(gw_log *log, int32_t p, int64_t offset, const char *room, const char *from,
                      const char *cid)
{
    if (p < 0 || p >= log->nparts || offset < log->parts[p].next)
        return false; /* a replay: gw_log_append ignores it anyway */
    const gw_log_entry *e = gw_log_find_cid(log, room, from, cid);
    if (!e || e->room->partition != p || e->offset >= offset)
        return false;
    log->parts[p].next = offset + 1; /* read, and deliberately not kept */
    return true;
}

size_t gw_log_bytes(const gw_log *log)
{
    return log->bytes;
}
size_t gw_log_entries(const gw_log *log)
{
    return log->nentries;
}
size_t gw_log_rooms(const gw_log *log)
{
    return log->nrooms;
}
uint64_t gw_log_evicted(const gw_log *log)
{
    return log->evicted;
}
