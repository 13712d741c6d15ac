/* gw_presence.c: the cluster's presence table (see gw_presence.h): entries (room, user) with a
 * bit per node that has the user in the room, grouped by room; the users they name, each once,
 * with the counts of their connections; the known nodes and their last sign of life; the changes
 * the local watchers have not been told yet.
 *
 * Memory. There is an entry for every (room, user) of the cluster and a user for every user of
 * an entry or with a count, so both are kept small: an entry points at its user (which holds
 * the id, for all its entries and its counts, and is freed when no entry names it and it has no
 * count), and the lists of changes (a room's entries to report, the users whose count is to be
 * written) are arrays that exist while there are changes, not a link in every entry and user.
 * On x86-64, with glibc's chunks (the size asked + 8, rounded up to 16), an entry is 72 bytes
 * (an 80-byte chunk) and a user 38 + the id's length + 1 (a 64-byte chunk up to 18 bytes). */
#define _DEFAULT_SOURCE /* strdup */
#include "gw_presence.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_presence.h"
#include "gw_hash.h"
#include "gw_htab.h"

#define SELF 0 /* the node slot of this gateway */

typedef struct prs_member prs_member;
typedef struct prs_user prs_user;

/* One gateway run. */
typedef struct prs_node {
    bool used;
    char id[CHAT_NODE_MAX + 1];
    uint64_t inc;
    int64_t last_seen; /* monotonic ms of its latest sign of life */
} prs_node;

typedef struct prs_room {
    gw_hnode h;
    prs_member *head;            /* its entries */
    prs_member **dirty;          /* entries changed since the last frame, the latest last */
    size_t ndirty, dirty_cap;    /* (the array is freed when a flush empties it) */
    struct prs_room *dirty_next; /* the table's rooms with a dirty entry */
    bool on_dirty;
    bool lost;       /* a changed entry did not fit in dirty (ENOMEM): see m->lost */
    size_t count;    /* entries present (on some node) */
    size_t watchers; /* local connections watching */
    char name[CHAT_ROOM_MAX + 1];
} prs_room;

struct prs_member {
    gw_hnode h;
    prs_room *room;
    prs_user *user;          /* its id; one of the user's refs */
    prs_member *prev, *next; /* the room's entries */
    uint64_t nodes;          /* bit i: node slot i has the user in the room */
    char *name;              /* NULL: none */
    uint32_t local;          /* local connections joined (bit SELF while > 0) */
    bool reported;           /* present, as the watchers were last told */
    bool dirty;              /* changed since the last frame: in room->dirty, or lost */
    bool lost;               /* dirty but not in room->dirty (ENOMEM): the next flush adds it */
};

/* A remote node's count of a user's connections. */
typedef struct prs_count {
    struct prs_count *next;
    int slot;
    uint32_t n;
} prs_count;

/* A user of the cluster: the id its entries point at, and its connections, this gateway's and
 * the other nodes' as their records say. Kept while an entry names it or it has a count (a
 * member record may come before the user's count record, or without one). Allocated to the end
 * of its id (offsetof(prs_user, user) + length + 1), never copied as a whole. */
struct prs_user {
    gw_hnode h;
    prs_count *counts; /* the other nodes' (their sum: gw_presence_remote_conns) */
    uint32_t local;    /* this gateway's */
    uint32_t written;  /* this gateway's, as last written to the topic */
    uint32_t refs;     /* entries naming the user */
    bool dirty;        /* local != written: in the table's udirty, to write at the next tick */
    bool counted;      /* it has counts (counts, local, written or dirty): stats.users */
    char user[];
};

struct gw_presence {
    gw_presence_config cfg;
    char node_id[CHAT_NODE_MAX + 1];
    prs_node nodes[GW_PRESENCE_MAX_NODES];
    gw_htab members, rooms, users;
    size_t ncounted;   /* users with counts (the others are only named by entries) */
    prs_user **udirty; /* users whose local count changed since the last tick, the latest last */
    size_t nudirty, udirty_cap; /* (the array is freed at each tick) */
    uint64_t key[2];
    prs_room *dirty; /* rooms with dirty entries */
    int64_t next_heartbeat, next_flush, wall_ms;
    gw_presence_stats st;
    /* a frame's lists (max_changes each) */
    gw_out_user *joined;
    const char **left;
};

static uint64_t member_hash(const gw_presence *p, const char *room, const char *user)
{
    char buf[CHAT_ROOM_MAX + 1 + CHAT_USER_MAX + 1];
    size_t rl = strlen(room), ul = strlen(user);
    memcpy(buf, room, rl);
    buf[rl] = '\0';
    memcpy(buf + rl + 1, user, ul);
    return gw_hash_sip(p->key, buf, rl + 1 + ul);
}

/* arr (an array of *cap elements of elem bytes) doubled, 16 elements at least; NULL on ENOMEM
 * (arr is then unchanged). The arrays of changes are bounded by the entries and users. */
static void *grow(void *arr, size_t *cap, size_t elem)
{
    size_t n = *cap ? *cap * 2 : 16;
    void *a = realloc(arr, n * elem);
    if (a)
        *cap = n;
    return a;
}

static prs_room *room_find(gw_presence *p, const char *name)
{
    uint64_t h = gw_hash_sip(p->key, name, strlen(name));
    for (gw_hnode *n = gw_htab_first(&p->rooms, h); n; n = gw_htab_next(n, h)) {
        prs_room *r = gw_htab_entry(n, prs_room, h);
        if (strcmp(r->name, name) == 0)
            return r;
    }
    return NULL;
}

static prs_room *room_get(gw_presence *p, const char *name)
{
    prs_room *r = room_find(p, name);
    if (r || strlen(name) > CHAT_ROOM_MAX)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    strcpy(r->name, name);
    r->h.hash = gw_hash_sip(p->key, name, strlen(name));
    gw_htab_insert(&p->rooms, &r->h);
    return r;
}

static void room_maybe_free(gw_presence *p, prs_room *r)
{
    if (r->head || r->watchers || r->on_dirty)
        return;
    gw_htab_remove(&p->rooms, &r->h);
    free(r->dirty);
    free(r);
}

/* Adds m to the room's changed entries; false on ENOMEM. */
static bool room_add_dirty(prs_room *r, prs_member *m)
{
    if (r->ndirty == r->dirty_cap) {
        prs_member **a = grow(r->dirty, &r->dirty_cap, sizeof(*a));
        if (!a)
            return false;
        r->dirty = a;
    }
    r->dirty[r->ndirty++] = m;
    return true;
}

static prs_member *member_find(gw_presence *p, const char *room, const char *user)
{
    uint64_t h = member_hash(p, room, user);
    for (gw_hnode *n = gw_htab_first(&p->members, h); n; n = gw_htab_next(n, h)) {
        prs_member *m = gw_htab_entry(n, prs_member, h);
        if (strcmp(m->user->user, user) == 0 && strcmp(m->room->name, room) == 0)
            return m;
    }
    return NULL;
}

static prs_user *user_find(gw_presence *p, const char *user)
{
    uint64_t h = gw_hash_sip(p->key, user, strlen(user));
    for (gw_hnode *n = gw_htab_first(&p->users, h); n; n = gw_htab_next(n, h)) {
        prs_user *u = gw_htab_entry(n, prs_user, h);
        if (strcmp(u->user, user) == 0)
            return u;
    }
    return NULL;
}

/* A user not in the table yet, without entries or counts; NULL on ENOMEM. The caller gives it
 * an entry or a count, or settles it. */
static prs_user *user_new(gw_presence *p, const char *user)
{
    size_t ul = strlen(user);
    prs_user *u = calloc(1, offsetof(prs_user, user) + ul + 1);
    if (!u)
        return NULL;
    memcpy(u->user, user, ul + 1);
    u->h.hash = gw_hash_sip(p->key, user, ul);
    gw_htab_insert(&p->users, &u->h);
    return u;
}

/* The user, to be given a count: NULL past max_entries users with counts (counted in dropped;
 * the users only named by entries are bounded by the entries) or on ENOMEM. */
static prs_user *user_get_counted(gw_presence *p, const char *user)
{
    prs_user *u = user_find(p, user);
    if ((!u || !u->counted) && p->ncounted >= p->cfg.max_entries) {
        p->st.dropped++;
        return NULL;
    }
    return u ? u : user_new(p, user);
}

/* After a change of u: whether it has counts, and its end when neither its entries nor its
 * counts need it any more. */
static void user_settle(gw_presence *p, prs_user *u)
{
    bool counted = u->counts || u->local || u->written || u->dirty;
    if (counted != u->counted) {
        u->counted = counted;
        if (counted)
            p->ncounted++;
        else
            p->ncounted--;
    }
    if (counted || u->refs)
        return;
    gw_htab_remove(&p->users, &u->h);
    free(u);
}

static void emit_conns(gw_presence *p, int slot, const prs_user *u, uint32_t n);

/* u's local count changed: written at the next tick when it still differs then. */
static void user_mark(gw_presence *p, prs_user *u)
{
    if (u->dirty || u->local == u->written)
        return;
    if (p->nudirty == p->udirty_cap) {
        prs_user **a = grow(p->udirty, &p->udirty_cap, sizeof(*a));
        if (!a) { /* ENOMEM: written now rather than at the next tick */
            emit_conns(p, SELF, u, u->local);
            u->written = u->local;
            return;
        }
        p->udirty = a;
    }
    u->dirty = true;
    p->udirty[p->nudirty++] = u;
}

/* Sets (n > 0) or removes (n == 0) a remote node's count of u's connections. */
static void user_set_count(prs_user *u, int slot, uint32_t n)
{
    prs_count **pp = &u->counts;
    while (*pp && (*pp)->slot != slot)
        pp = &(*pp)->next;
    prs_count *c = *pp;
    if (c) {
        if (!n) {
            *pp = c->next;
            free(c);
            return;
        }
    } else {
        if (!n || !(c = calloc(1, sizeof(*c))))
            return;
        c->slot = slot;
        c->next = u->counts;
        u->counts = c;
    }
    c->n = n;
}

static prs_member *member_get(gw_presence *p, const char *room, const char *user)
{
    prs_member *m = member_find(p, room, user);
    if (m)
        return m;
    if (p->members.count >= p->cfg.max_entries) {
        p->st.dropped++;
        return NULL;
    }
    prs_room *r = room_get(p, room);
    prs_user *u = r ? user_find(p, user) : NULL;
    if (r && !u)
        u = user_new(p, user);
    if (!u || !(m = calloc(1, sizeof(*m)))) {
        if (u)
            user_settle(p, u);
        if (r)
            room_maybe_free(p, r);
        return NULL;
    }
    m->user = u;
    u->refs++;
    m->room = r;
    m->next = r->head;
    if (r->head)
        r->head->prev = m;
    r->head = m;
    m->h.hash = member_hash(p, room, user);
    gw_htab_insert(&p->members, &m->h);
    return m;
}

static void member_maybe_free(gw_presence *p, prs_member *m)
{
    if (m->nodes || m->local || m->dirty)
        return;
    prs_room *r = m->room;
    prs_user *u = m->user;
    if (m->prev)
        m->prev->next = m->next;
    else
        r->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    gw_htab_remove(&p->members, &m->h);
    free(m->name);
    free(m);
    u->refs--;
    user_settle(p, u);
    room_maybe_free(p, r);
}

static void set_name(prs_member *m, const char *name)
{
    if (!name || !*name || strcmp(name, m->user->user) == 0) {
        free(m->name);
        m->name = NULL;
    } else if (!m->name || strcmp(m->name, name) != 0) {
        char *n = strdup(name);
        if (n) { /* on ENOMEM the old name stays */
            free(m->name);
            m->name = n;
        }
    }
}

/* Changes the entry's node set; a change of presence is counted and, while someone watches,
 * queued for the next frame. */
static void set_nodes(gw_presence *p, prs_member *m, uint64_t nodes)
{
    bool was = m->nodes != 0, is = nodes != 0;
    m->nodes = nodes;
    if (was == is)
        return;
    prs_room *r = m->room;
    if (is)
        r->count++;
    else
        r->count--;
    if (!r->watchers || m->dirty)
        return;
    m->dirty = true;
    if (!room_add_dirty(r, m))
        m->lost = r->lost = true;
    if (!r->on_dirty) {
        r->on_dirty = true;
        r->dirty_next = p->dirty;
        p->dirty = r;
    }
}

/* --- records ---------------------------------------------------------------------------- */

static void emit(gw_presence *p, const chat_presence *rec, bool tombstone)
{
    char key[CHAT_PRESENCE_KEY_MAX];
    int kl = chat_presence_key(rec, key, sizeof(key));
    if (kl < 0)
        return;
    uint8_t *val = NULL;
    size_t vl = 0;
    if (!tombstone && chat_presence_encode(rec, &val, &vl, NULL, 0) != 0)
        return;
    p->cfg.emit(p->cfg.arg, key, (size_t)kl, val, vl);
    p->st.records_out++;
    free(val);
}

static void emit_member(gw_presence *p, int slot, const prs_member *m, bool tombstone)
{
    chat_presence rec = {
        .kind = CHAT_PRESENCE_MEMBER, .incarnation = p->nodes[slot].inc, .ts_ms = p->wall_ms};
    strcpy(rec.node, p->nodes[slot].id);
    strcpy(rec.room, m->room->name);
    strcpy(rec.user, m->user->user);
    if (m->name)
        strcpy(rec.name, m->name);
    emit(p, &rec, tombstone);
}

static void emit_conns(gw_presence *p, int slot, const prs_user *u, uint32_t n)
{
    chat_presence rec = {.kind = CHAT_PRESENCE_CONNS,
                         .incarnation = p->nodes[slot].inc,
                         .ts_ms = p->wall_ms,
                         .conns = n ? n : 1};
    strcpy(rec.node, p->nodes[slot].id);
    strcpy(rec.user, u->user);
    emit(p, &rec, n == 0);
}

static void emit_heartbeat(gw_presence *p, bool tombstone)
{
    chat_presence rec = {
        .kind = CHAT_PRESENCE_HEARTBEAT, .incarnation = p->nodes[SELF].inc, .ts_ms = p->wall_ms};
    strcpy(rec.node, p->node_id);
    emit(p, &rec, tombstone);
}

static int node_find(const gw_presence *p, const char *id, uint64_t inc)
{
    for (int i = 1; i < GW_PRESENCE_MAX_NODES; i++)
        if (p->nodes[i].used && p->nodes[i].inc == inc && strcmp(p->nodes[i].id, id) == 0)
            return i;
    return -1;
}

static int node_get(gw_presence *p, const char *id, uint64_t inc, int64_t seen)
{
    int i = node_find(p, id, inc);
    if (i < 0) {
        for (i = 1; i < GW_PRESENCE_MAX_NODES && p->nodes[i].used; i++)
            ;
        if (i == GW_PRESENCE_MAX_NODES) {
            p->st.dropped++;
            return -1;
        }
        prs_node *n = &p->nodes[i];
        n->used = true;
        strcpy(n->id, id);
        n->inc = inc;
        n->last_seen = seen;
        chat_log(CHAT_LOG_INFO, "presence: gateway %s (run %016llx) is known", id,
                 (unsigned long long)inc);
    } else if (seen > p->nodes[i].last_seen) {
        p->nodes[i].last_seen = seen;
    }
    return i;
}

/* Whether this gateway writes the tombstones of a dead node's entries: the alive node with the
 * smallest id does (the others only forget them), so they are written about once. */
static bool is_janitor(const gw_presence *p, int dead)
{
    for (int i = 1; i < GW_PRESENCE_MAX_NODES; i++)
        if (i != dead && p->nodes[i].used && strcmp(p->nodes[i].id, p->node_id) < 0)
            return false;
    return true;
}

typedef struct kill_arg {
    uint64_t bit;
    prs_member **v;
    size_t n;
} kill_arg;

static void collect_one(gw_hnode *n, void *arg)
{
    kill_arg *k = arg;
    prs_member *m = gw_htab_entry(n, prs_member, h);
    if (m->nodes & k->bit)
        k->v[k->n++] = m;
}

/* Forgets a node's run and its entries. The entries are gathered first: freeing them while
 * walking the table could resize it under the walk. */
static void node_kill(gw_presence *p, int slot, bool tombstones, const char *why)
{
    chat_log(CHAT_LOG_INFO, "presence: gateway %s (run %016llx) %s; its users leave",
             p->nodes[slot].id, (unsigned long long)p->nodes[slot].inc, why);
    kill_arg k = {.bit = 1ULL << slot, .v = malloc((p->members.count + 1) * sizeof(*k.v))};
    if (k.v)
        gw_htab_each(&p->members, collect_one, &k);
    else
        chat_log(CHAT_LOG_ERROR, "presence: out of memory; %s's users stay", p->nodes[slot].id);
    for (size_t i = 0; i < k.n; i++) {
        prs_member *m = k.v[i];
        if (tombstones)
            emit_member(p, slot, m, true);
        set_nodes(p, m, m->nodes & ~k.bit);
        member_maybe_free(p, m);
    }
    bool ok = k.v != NULL;
    free(k.v);
    prs_user **uv = ok ? malloc((p->users.count + 1) * sizeof(*uv)) : NULL;
    size_t nu = 0;
    if (uv)
        for (size_t i = 0; i < p->users.nslots; i++)
            for (gw_hnode *n = p->users.slots[i]; n; n = n->next) {
                prs_user *u = gw_htab_entry(n, prs_user, h);
                for (prs_count *c = u->counts; c; c = c->next)
                    if (c->slot == slot) {
                        uv[nu++] = u;
                        break;
                    }
            }
    for (size_t i = 0; i < nu; i++) {
        if (tombstones)
            emit_conns(p, slot, uv[i], 0);
        user_set_count(uv[i], slot, 0);
        user_settle(p, uv[i]);
    }
    if (uv)
        memset(&p->nodes[slot], 0, sizeof(p->nodes[slot]));
    free(uv);
    p->st.nodes_dead++;
}

int gw_presence_on_record(gw_presence *p, const char *key, size_t klen, const uint8_t *val,
                          size_t vlen, int64_t age_ms, int64_t now_ms)
{
    chat_presence k, v;
    char err[128], vkey[CHAT_PRESENCE_KEY_MAX];
    p->st.records_in++;
    if (chat_presence_key_parse(key, klen, &k, err, sizeof(err)) != 0)
        goto bad;
    if (val) {
        if (chat_presence_decode(val, vlen, &v, err, sizeof(err)) != 0)
            goto bad;
        int vl = chat_presence_key(&v, vkey, sizeof(vkey));
        if (vl < 0 || (size_t)vl != klen || memcmp(vkey, key, klen) != 0) {
            snprintf(err, sizeof(err), "the value does not match its key");
            goto bad;
        }
        k = v;
    }
    if (age_ms < 0)
        age_ms = 0;
    int64_t seen = now_ms - age_ms;
    bool self = strcmp(k.node, p->node_id) == 0;
    if (k.kind == CHAT_PRESENCE_HEARTBEAT) {
        if (!val || self)
            return 0; /* our own, or a node that stopped cleanly (its entries went too) */
        int i = node_get(p, k.node, k.incarnation, seen);
        if (i < 0)
            return 0;
        /* a new run of a node id ends its earlier runs (which tombstone themselves) */
        for (int j = 1; j < GW_PRESENCE_MAX_NODES; j++)
            if (j != i && p->nodes[j].used && strcmp(p->nodes[j].id, k.node) == 0)
                node_kill(p, j, false, "restarted");
        return 0;
    }
    if (self) {
        if (k.incarnation != p->nodes[SELF].inc) {
            if (val) /* left by an earlier run of this gateway */
                p->cfg.emit(p->cfg.arg, key, klen, NULL, 0), p->st.records_out++;
            return 0;
        }
        if (val) /* our own, read back */
            return 0;
        /* another gateway thought this one dead and withdrew the record: say it again */
        if (k.kind == CHAT_PRESENCE_CONNS) {
            prs_user *u = user_find(p, k.user);
            if (u && u->written) {
                u->written = 0;
                user_mark(p, u);
                user_settle(p, u);
            }
            return 0;
        }
        prs_member *m = member_find(p, k.room, k.user);
        if (m && m->local)
            emit_member(p, SELF, m, false);
        return 0;
    }
    if (k.kind == CHAT_PRESENCE_CONNS) {
        int i =
            val ? node_get(p, k.node, k.incarnation, seen) : node_find(p, k.node, k.incarnation);
        prs_user *u = i < 0 ? NULL : val ? user_get_counted(p, k.user) : user_find(p, k.user);
        if (u) {
            user_set_count(u, i, val ? k.conns : 0);
            user_settle(p, u);
        }
        return 0;
    }
    if (!val) {
        int i = node_find(p, k.node, k.incarnation);
        prs_member *m = i < 0 ? NULL : member_find(p, k.room, k.user);
        if (m && (m->nodes & (1ULL << i))) {
            set_nodes(p, m, m->nodes & ~(1ULL << i));
            member_maybe_free(p, m);
        }
        return 0;
    }
    int i = node_get(p, k.node, k.incarnation, seen);
    prs_member *m = i < 0 ? NULL : member_get(p, k.room, k.user);
    if (!m)
        return 0;
    set_name(m, k.name);
    set_nodes(p, m, m->nodes | (1ULL << i));
    return 0;
bad:
    p->st.bad_records++;
    chat_log(CHAT_LOG_WARN, "presence: skipping a record: %s", err);
    return CHAT_EINVAL;
}

/* --- local connections -------------------------------------------------------------------- */

int gw_presence_join(gw_presence *p, const char *room, const char *user, const char *name)
{
    prs_member *m = member_get(p, room, user);
    if (!m)
        return -ENOSPC;
    if (m->local++ == 0 || (name && *name && (!m->name || strcmp(m->name, name) != 0))) {
        set_name(m, name);
        emit_member(p, SELF, m, false);
    }
    set_nodes(p, m, m->nodes | 1);
    return 0;
}

void gw_presence_leave(gw_presence *p, const char *room, const char *user)
{
    prs_member *m = member_find(p, room, user);
    if (!m || !m->local)
        return;
    if (--m->local)
        return;
    emit_member(p, SELF, m, true);
    set_nodes(p, m, m->nodes & ~1ULL);
    member_maybe_free(p, m);
}

void gw_presence_watch(gw_presence *p, const char *room, int delta)
{
    prs_room *r = delta > 0 ? room_get(p, room) : room_find(p, room);
    if (!r)
        return;
    if (delta > 0) {
        if (r->watchers++ == 0) /* the new watcher's snapshot is the state of now */
            for (prs_member *m = r->head; m; m = m->next)
                m->reported = m->nodes != 0;
    } else if (r->watchers) {
        r->watchers--;
        room_maybe_free(p, r);
    }
}

/* --- time --------------------------------------------------------------------------------- */

/* One frame for a room's dirty entries (at most max_changes joined and left; the rest stay
 * dirty for the next flush), then frees what nobody holds any more. The entries are taken the
 * latest change first; the ones left for the next flush are taken then after the changes made
 * until then, in the reverse of this flush's order. */
static void flush_room(gw_presence *p, prs_room *r)
{
    if (r->lost) { /* the entries that changed when the array could not grow */
        r->lost = false;
        for (prs_member *m = r->head; m; m = m->next)
            if (m->lost) {
                if (!room_add_dirty(r, m)) {
                    r->lost = true;
                    break;
                }
                m->lost = false;
            }
    }
    size_t n = r->ndirty, nj = 0, nl = 0;
    for (size_t i = n; i-- > 0;) {
        prs_member *m = r->dirty[i];
        bool is = m->nodes != 0;
        if (r->watchers && is != m->reported) {
            if (is ? nj == p->cfg.max_changes : nl == p->cfg.max_changes)
                continue; /* the next frame's */
            if (is)
                p->joined[nj++] = (gw_out_user){m->user->user, m->name};
            else
                p->left[nl++] = m->user->user;
        }
        m->reported = is;
    }
    if (nj + nl) {
        gw_buf *b = gw_out_presence(r->name, p->joined, nj, p->left, nl, r->count);
        if (b) {
            p->cfg.deliver(p->cfg.arg, r->name, b);
            p->st.frames++;
            gw_buf_unref(b);
        }
    }
    /* The ones reported (or nobody watches) leave the array and may go; the others (still
     * unreported) are packed at its end, then put at its start in the reverse order. */
    size_t w = n;
    for (size_t i = n; i-- > 0;) {
        prs_member *m = r->dirty[i];
        if (r->watchers && (m->nodes != 0) != m->reported) {
            r->dirty[--w] = m;
        } else {
            m->dirty = false;
            member_maybe_free(p, m);
        }
    }
    size_t keep = n - w, later = r->ndirty - n; /* later: made dirty during the delivery */
    for (size_t i = 0; i < keep / 2; i++) {
        prs_member *t = r->dirty[w + i];
        r->dirty[w + i] = r->dirty[n - 1 - i];
        r->dirty[n - 1 - i] = t;
    }
    if (keep && w)
        memmove(r->dirty, r->dirty + w, keep * sizeof(*r->dirty));
    if (later)
        memmove(r->dirty + keep, r->dirty + n, later * sizeof(*r->dirty));
    r->ndirty = keep + later;
    if (!r->ndirty) {
        free(r->dirty);
        r->dirty = NULL;
        r->dirty_cap = 0;
    }
}

static void flush(gw_presence *p)
{
    prs_room *r = p->dirty, *again = NULL;
    p->dirty = NULL;
    while (r) {
        prs_room *next = r->dirty_next;
        /* on_dirty stays set during flush_room: its members' frees must not free the room */
        flush_room(p, r);
        if (r->ndirty || r->lost) {
            r->dirty_next = again;
            again = r;
        } else {
            r->on_dirty = false;
            room_maybe_free(p, r);
        }
        r = next;
    }
    p->dirty = again;
}

/* Writes the connection counts that changed since the last tick (one record per user at most),
 * the latest change first. */
static void write_counts(gw_presence *p)
{
    for (size_t i = p->nudirty; i-- > 0;) {
        prs_user *u = p->udirty[i];
        u->dirty = false;
        if (u->local != u->written) {
            emit_conns(p, SELF, u, u->local);
            u->written = u->local;
        }
        user_settle(p, u);
    }
    p->nudirty = 0;
    free(p->udirty);
    p->udirty = NULL;
    p->udirty_cap = 0;
}

void gw_presence_tick(gw_presence *p, int64_t now_ms, int64_t wall_ms)
{
    p->wall_ms = wall_ms;
    write_counts(p);
    p->nodes[SELF].last_seen = now_ms;
    if (now_ms >= p->next_heartbeat) {
        emit_heartbeat(p, false);
        p->next_heartbeat = now_ms + p->cfg.heartbeat_ms;
    }
    for (int i = 1; i < GW_PRESENCE_MAX_NODES; i++)
        if (p->nodes[i].used && now_ms - p->nodes[i].last_seen > p->cfg.dead_ms)
            node_kill(p, i, is_janitor(p, i), "stopped sending heartbeats");
    if (now_ms >= p->next_flush) {
        flush(p);
        p->next_flush = now_ms + p->cfg.flush_ms;
    }
}

static void shutdown_one(gw_hnode *n, void *arg)
{
    gw_presence *p = arg;
    prs_member *m = gw_htab_entry(n, prs_member, h);
    if (m->local)
        emit_member(p, SELF, m, true);
}

static void shutdown_user(gw_hnode *n, void *arg)
{
    gw_presence *p = arg;
    prs_user *u = gw_htab_entry(n, prs_user, h);
    if (u->written)
        emit_conns(p, SELF, u, 0);
}

void gw_presence_shutdown(gw_presence *p)
{
    gw_htab_each(&p->members, shutdown_one, p);
    gw_htab_each(&p->users, shutdown_user, p);
    emit_heartbeat(p, true);
}

/* --- reading ------------------------------------------------------------------------------- */

void gw_presence_members(gw_presence *p, const char *room, const char *first_user,
                         gw_presence_view *v)
{
    memset(v, 0, sizeof(*v));
    prs_room *r = room_find(p, room);
    if (!r)
        return;
    v->count = r->count;
    prs_member *first = first_user ? member_find(p, room, first_user) : NULL;
    if (first && !first->nodes)
        first = NULL;
    if (first)
        v->users[v->n++] = (gw_out_user){first->user->user, first->name};
    for (prs_member *m = r->head; m && v->n < GW_PRESENCE_LIST_MAX; m = m->next)
        if (m->nodes && m != first)
            v->users[v->n++] = (gw_out_user){m->user->user, m->name};
    v->truncated = v->n < v->count;
}

bool gw_presence_has(gw_presence *p, const char *room, const char *user)
{
    prs_member *m = member_find(p, room, user);
    return m && m->nodes;
}

void gw_presence_set_conns(gw_presence *p, const char *user, uint32_t n)
{
    prs_user *u = n ? user_get_counted(p, user) : user_find(p, user);
    if (!u)
        return;
    u->local = n;
    user_mark(p, u);
    user_settle(p, u);
}

uint32_t gw_presence_remote_conns(gw_presence *p, const char *user)
{
    prs_user *u = user_find(p, user);
    uint32_t n = 0;
    for (const prs_count *c = u ? u->counts : NULL; c; c = c->next)
        n += c->n;
    return n;
}

void gw_presence_get_stats(const gw_presence *p, gw_presence_stats *st)
{
    *st = p->st;
    st->entries = p->members.count;
    st->users = p->ncounted;
    st->rooms = p->rooms.count;
    st->nodes = 0;
    for (int i = 0; i < GW_PRESENCE_MAX_NODES; i++)
        st->nodes += p->nodes[i].used;
}

/* --- life ---------------------------------------------------------------------------------- */

gw_presence *gw_presence_new(const gw_presence_config *cfg, int64_t now_ms)
{
    if (!cfg->node_id || strlen(cfg->node_id) > CHAT_NODE_MAX || !cfg->incarnation || !cfg->emit ||
        !cfg->deliver || !cfg->max_changes)
        return NULL;
    gw_presence *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cfg = *cfg;
    strcpy(p->node_id, cfg->node_id);
    p->cfg.node_id = p->node_id;
    p->nodes[SELF].used = true;
    strcpy(p->nodes[SELF].id, p->node_id);
    p->nodes[SELF].inc = cfg->incarnation;
    p->nodes[SELF].last_seen = now_ms;
    p->next_heartbeat = now_ms;
    p->next_flush = now_ms + cfg->flush_ms;
    p->joined = calloc(cfg->max_changes, sizeof(*p->joined));
    p->left = calloc(cfg->max_changes, sizeof(*p->left));
    gw_hash_seed(p->key, p);
    if (!p->joined || !p->left || gw_htab_init(&p->members) || gw_htab_init(&p->rooms) ||
        gw_htab_init(&p->users)) {
        gw_presence_free(p);
        return NULL;
    }
    return p;
}

static void free_member(gw_hnode *n, void *arg)
{
    (void)arg;
    prs_member *m = gw_htab_entry(n, prs_member, h);
    free(m->name);
    free(m);
}

static void free_user(gw_hnode *n, void *arg)
{
    (void)arg;
    prs_user *u = gw_htab_entry(n, prs_user, h);
    while (u->counts) {
        prs_count *c = u->counts;
        u->counts = c->next;
        free(c);
    }
    free(u);
}

static void free_room(gw_hnode *n, void *arg)
{
    (void)arg;
    prs_room *r = gw_htab_entry(n, prs_room, h);
    free(r->dirty);
    free(r);
}

void gw_presence_free(gw_presence *p)
{
    if (!p)
        return;
    if (p->members.slots)
        gw_htab_each(&p->members, free_member, NULL);
    if (p->rooms.slots)
        gw_htab_each(&p->rooms, free_room, NULL);
    if (p->users.slots)
        gw_htab_each(&p->users, free_user, NULL);
    gw_htab_free(&p->users);
    gw_htab_free(&p->members);
    gw_htab_free(&p->rooms);
    free(p->udirty);
    free(p->joined);
    free(p->left);
    free(p);
}
