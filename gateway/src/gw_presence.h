/* gw_presence.h: the cluster's presence, as this gateway knows it: which users are in which
 * room on which gateway, whose heartbeats are fresh, and what the local watchers (connections
 * that joined with "presence":true) were last told. Pure state and logic: the records it reads
 * and writes go through two callbacks (gw_presence_kafka.c carries them on the compacted
 * presence topic), so tests/unit/test_gw_presence.c drives it without Kafka.
 *
 * Model. Every gateway run is a "node" (node id, incarnation). An entry (room, user) holds the
 * set of nodes where the user has at least one connection joined to the room (a bit per node)
 * and, for this gateway, the number of such local connections. A user is present in a room
 * while that set is not empty: they count once however many connections and gateways they
 * use. This gateway writes a member record when its first local connection of (room, user)
 * joins and a tombstone when its last one leaves, and a heartbeat every heartbeat_ms; a node
 * whose heartbeats and records stop for dead_ms is dead and its entries are dropped (the
 * alive node with the smallest id also writes their tombstones). Records of this node id with
 * another incarnation are a previous run's: this gateway tombstones them when it reads them.
 *
 * The same goes for each user's number of connections on each gateway (a record per gateway and
 * user, written at the next tick when it changed), so the cluster's count of a user's
 * connections is known: this gateway's plus gw_presence_remote_conns (CHAT_MAX_USER_CONNS).
 *
 * Watchers get at most one frame per room per flush_ms, with the users that joined and left
 * since the last one (at most max_changes of each; more go in the next frames).
 *
 * Memory is bounded by max_entries (room, user) entries and as many users with connection
 * counts; past them new ones are not kept
 * (counted in gw_presence_stats.dropped) and at most 64 nodes (this one included) are known.
 * A user's id is held once, for its entries and its counts.
 * Loop thread only. */
#ifndef GW_PRESENCE_H
#define GW_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_buf.h"
#include "gw_out.h"

#define GW_PRESENCE_LIST_MAX 100 /* users a members answer lists */
#define GW_PRESENCE_HEARTBEAT_MS 2000
#define GW_PRESENCE_DEAD_MS 8000  /* + a tick and a flush: gone within 10 s, under 15 */
#define GW_PRESENCE_FLUSH_MS 1000 /* at most one presence frame per room per second */
#define GW_PRESENCE_MAX_NODES 64

typedef struct gw_presence gw_presence;

typedef struct gw_presence_config {
    const char *node_id;  /* this gateway's (copied) */
    uint64_t incarnation; /* this run's, not 0 */
    size_t max_entries;
    int64_t heartbeat_ms, dead_ms, flush_ms;
    size_t max_changes; /* users in joined, and in left, of one presence frame */
    /* A record to write: key, and value (NULL, 0: a tombstone). Both borrowed for the call. */
    void (*emit)(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen);
    /* A presence frame for the local watchers of room; borrowed for the call (ref to keep). */
    void (*deliver)(void *arg, const char *room, gw_buf *frame);
    void *arg;
} gw_presence_config;

typedef struct gw_presence_stats {
    size_t entries, rooms, users, nodes; /* users: with connection counts; nodes: known runs */
    uint64_t records_in, records_out, bad_records, dropped, frames, nodes_dead;
} gw_presence_stats;

/* What a members answer lists: count users present, the first n of them (the asking user first
 * when present), truncated when n < count. The strings point into the table: valid until the
 * next call that changes it. */
typedef struct gw_presence_view {
    size_t count, n;
    bool truncated;
    gw_out_user users[GW_PRESENCE_LIST_MAX];
} gw_presence_view;

/* NULL on ENOMEM or a bad config. now_ms is monotonic. */
gw_presence *gw_presence_new(const gw_presence_config *cfg, int64_t now_ms);
void gw_presence_free(gw_presence *p);

/* One local connection joined / left room. name may be NULL or "" (no display name). join
 * returns 0, or -ENOSPC when the table is full (the entry is not kept; its leave is a no-op). */
int gw_presence_join(gw_presence *p, const char *room, const char *user, const char *name);
void gw_presence_leave(gw_presence *p, const char *room, const char *user);
/* A local connection starts (+1) or stops (-1) watching room. */
void gw_presence_watch(gw_presence *p, const char *room, int delta);

/* A record read from the presence topic (val NULL: a tombstone); age_ms is how old it was when
 * read (0 once reading is live). Returns 0, or CHAT_EINVAL for a record refused (counted). */
int gw_presence_on_record(gw_presence *p, const char *key, size_t klen, const uint8_t *val,
                          size_t vlen, int64_t age_ms, int64_t now_ms);
/* Heartbeats, dead nodes and presence frames: call every 100 ms or so. wall_ms is the
 * real-time clock, for the records' ts_ms. */
void gw_presence_tick(gw_presence *p, int64_t now_ms, int64_t wall_ms);
/* Shutting down: tombstones for every entry of this gateway and for its heartbeat. */
void gw_presence_shutdown(gw_presence *p);

/* This gateway has n connections of user (0: none). The count is written at the next tick when
 * it changed (one record per user and tick at most). */
void gw_presence_set_conns(gw_presence *p, const char *user, uint32_t n);
/* The user's connections on the other gateways, as their latest records say. */
uint32_t gw_presence_remote_conns(gw_presence *p, const char *user);

/* The members of room (first_user listed first when present; may be NULL). */
void gw_presence_members(gw_presence *p, const char *room, const char *first_user,
                         gw_presence_view *v);
/* Whether user is present in room (any node). */
bool gw_presence_has(gw_presence *p, const char *room, const char *user);
void gw_presence_get_stats(const gw_presence *p, gw_presence_stats *st);

#endif
