/* test_gw_presence.c: the presence table (gw_presence.c) without Kafka: two or three tables
 * ("gateways") exchange the records they emit by hand, and the frames they deliver are
 * checked as JSON. A user counted once over connections and gateways and leaving with the last
 * one; coalesced frames (one per flush, net changes, at most max_changes names); members
 * snapshots truncated at 100 with the asking user first; a dead gateway's users leaving after
 * dead_ms with the tombstones written by one survivor; a restarted node id cleaning its
 * previous run; records refused on decode; the entry bound; a user's entries and counts sharing
 * one user whatever the order of their records; the heap an entry costs, and all of it given
 * back when its users leave. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_presence.h"
#include "check.h"
#include "gw_presence.h"

/* The heap in use: under ASan the sanitizer's count of the bytes asked, exact; otherwise
 * glibc's in-use chunks, where the chunks its thread cache keeps after a free still count (up
 * to 7 of each size below 1 KB): HEAP_SLACK allows for them. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif
#ifdef HEAP_ASAN
size_t __sanitizer_get_current_allocated_bytes(void); /* <sanitizer/allocator_interface.h> */
static size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#define HEAP_SLACK 0
#else
#include <malloc.h>
static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}
#define HEAP_SLACK 16384
#endif

/* Whether the heap is back to base (what a test made has been freed). */
static bool heap_back(size_t base)
{
    size_t now = heap_in_use();
    return now + HEAP_SLACK >= base && now <= base + HEAP_SLACK;
}

#define MAXREC 4096
#define MAXFRAMES 64

typedef struct rec {
    char key[CHAT_PRESENCE_KEY_MAX + 1]; /* NUL-terminated here, for strstr */
    size_t klen;
    uint8_t *val; /* NULL: tombstone */
    size_t vlen;
} rec;

/* What one table wrote and delivered. */
typedef struct gw {
    gw_presence *p;
    rec recs[MAXREC];
    size_t nrecs, sent; /* sent: records already handed to the other tables */
    json_t *frames[MAXFRAMES];
    size_t nframes;
} gw;

static void emit(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    gw *g = arg;
    if (g->nrecs == MAXREC)
        return;
    rec *r = &g->recs[g->nrecs++];
    memcpy(r->key, key, klen);
    r->key[klen] = '\0';
    r->klen = klen;
    r->val = NULL;
    r->vlen = vlen;
    if (val) {
        r->val = malloc(vlen ? vlen : 1);
        memcpy(r->val, val, vlen);
    }
}

static void deliver(void *arg, const char *room, gw_buf *frame)
{
    gw *g = arg;
    (void)room;
    if (g->nframes < MAXFRAMES)
        g->frames[g->nframes++] =
            json_loadb((const char *)gw_buf_payload(frame), frame->len, 0, NULL);
}

static void emit_none(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)arg, (void)key, (void)klen, (void)val, (void)vlen;
}

static void deliver_none(void *arg, const char *room, gw_buf *frame)
{
    (void)arg, (void)room, (void)frame;
}

static void gw_init(gw *g, const char *node, uint64_t inc, size_t max_entries)
{
    memset(g, 0, sizeof(*g));
    gw_presence_config c = {.node_id = node,
                            .incarnation = inc,
                            .max_entries = max_entries,
                            .heartbeat_ms = 2000,
                            .dead_ms = 8000,
                            .flush_ms = 1000,
                            .max_changes = 100,
                            .emit = emit,
                            .deliver = deliver,
                            .arg = g};
    g->p = gw_presence_new(&c, 0);
    CHECK(g->p != NULL);
}

static void gw_done(gw *g)
{
    for (size_t i = 0; i < g->nrecs; i++)
        free(g->recs[i].val);
    for (size_t i = 0; i < g->nframes; i++)
        json_decref(g->frames[i]);
    gw_presence_free(g->p);
}

/* Hands what from wrote since last time to to (as if read live from the topic). */
static void carry(gw *from, gw *to, int64_t now)
{
    for (size_t i = from->sent; i < from->nrecs; i++) {
        rec *r = &from->recs[i];
        CHECK(gw_presence_on_record(to->p, r->key, r->klen, r->val, r->vlen, 0, now) == 0);
    }
}

static void carried(gw *g)
{
    g->sent = g->nrecs;
}

/* Drops the records g wrote (all carried): the test's copies are heap too. */
static void forget(gw *g)
{
    for (size_t i = 0; i < g->nrecs; i++)
        free(g->recs[i].val);
    g->nrecs = g->sent = 0;
}

static size_t count(gw *g, const char *room)
{
    gw_presence_view v;
    gw_presence_members(g->p, room, NULL, &v);
    return v.count;
}

/* The last frame delivered, or NULL. */
static json_t *last_frame(gw *g)
{
    return g->nframes ? g->frames[g->nframes - 1] : NULL;
}

static size_t arr_len(json_t *f, const char *key)
{
    return json_array_size(json_object_get(f, key));
}

static void test_counted_once(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_tick(b.p, 0, 1000);
    /* alice: two connections on a, one on b; bob: one on b */
    CHECK(gw_presence_join(a.p, "general", "alice", "Alice") == 0);
    CHECK(gw_presence_join(a.p, "general", "alice", "Alice") == 0);
    CHECK(gw_presence_join(b.p, "general", "alice", "Alice") == 0);
    CHECK(gw_presence_join(b.p, "general", "bob", NULL) == 0);
    carry(&a, &b, 10), carry(&b, &a, 10), carried(&a), carried(&b);
    CHECK(count(&a, "general") == 2 && count(&b, "general") == 2);
    /* a wrote one member record for alice, not two */
    size_t members = 0;
    for (size_t i = 0; i < a.nrecs; i++)
        members += a.recs[i].key[0] == 'm';
    CHECK(members == 1);

    gw_presence_leave(a.p, "general", "alice"); /* one of a's two */
    CHECK(a.nrecs == a.sent);                   /* nothing to say */
    gw_presence_leave(a.p, "general", "alice"); /* a's last: a tombstone */
    CHECK(a.nrecs == a.sent + 1 && a.recs[a.nrecs - 1].val == NULL);
    carry(&a, &b, 20), carried(&a);
    CHECK(gw_presence_has(b.p, "general", "alice")); /* still on b */
    CHECK(gw_presence_has(a.p, "general", "alice")); /* a knows b has her */
    gw_presence_leave(b.p, "general", "alice");
    carry(&b, &a, 30), carried(&b);
    CHECK(!gw_presence_has(a.p, "general", "alice") && !gw_presence_has(b.p, "general", "alice"));
    CHECK(count(&a, "general") == 1 && count(&b, "general") == 1);
    gw_presence_leave(b.p, "general", "bob");
    carry(&b, &a, 40), carried(&b);
    CHECK(count(&a, "general") == 0);
    gw_presence_stats st;
    gw_presence_get_stats(a.p, &st);
    CHECK(st.entries == 0 && st.rooms == 0); /* freed with the last member */
    gw_done(&a);
    gw_done(&b);
}

static void test_frames_coalesced(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_tick(b.p, 0, 1000);
    gw_presence_watch(b.p, "r", 1);
    CHECK(gw_presence_join(b.p, "r", "watcher", NULL) == 0);
    /* within one second: carol and dave join on a, eve joins and leaves again on a */
    gw_presence_join(a.p, "r", "carol", "Carol");
    gw_presence_join(a.p, "r", "dave", NULL);
    gw_presence_join(a.p, "r", "eve", NULL);
    gw_presence_leave(a.p, "r", "eve");
    carry(&a, &b, 100), carried(&a);
    gw_presence_tick(b.p, 500, 1500);
    CHECK(b.nframes == 0); /* not before the flush */
    gw_presence_tick(b.p, 1000, 2000);
    CHECK(b.nframes == 1);
    json_t *f = last_frame(&b);
    CHECK_STR(json_string_value(json_object_get(f, "type")), "presence");
    CHECK_STR(json_string_value(json_object_get(f, "room")), "r");
    CHECK(json_integer_value(json_object_get(f, "count")) == 3);
    /* the watcher's own join and carol and dave; eve came and went: not mentioned */
    CHECK(arr_len(f, "joined") == 3 && arr_len(f, "left") == 0);
    int seen_carol = 0;
    for (size_t i = 0; i < arr_len(f, "joined"); i++) {
        json_t *u = json_array_get(json_object_get(f, "joined"), i);
        const char *user = json_string_value(json_object_get(u, "user"));
        const char *name = json_string_value(json_object_get(u, "name"));
        CHECK(user && strcmp(user, "eve") != 0);
        if (user && strcmp(user, "carol") == 0)
            seen_carol = name && strcmp(name, "Carol") == 0;
        if (user && strcmp(user, "dave") == 0)
            CHECK_STR(name, "dave"); /* no display name: the user id */
    }
    CHECK(seen_carol);
    /* nothing changed: no frame */
    gw_presence_tick(b.p, 2000, 3000);
    CHECK(b.nframes == 1);
    /* many changes in one second: one frame */
    for (int i = 0; i < 5; i++) {
        gw_presence_leave(a.p, "r", "carol");
        gw_presence_join(a.p, "r", "carol", "Carol");
    }
    gw_presence_leave(a.p, "r", "dave");
    carry(&a, &b, 2100), carried(&a);
    gw_presence_tick(b.p, 2500, 3500);
    CHECK(b.nframes == 1);
    gw_presence_tick(b.p, 3000, 4000);
    CHECK(b.nframes == 2);
    f = last_frame(&b);
    CHECK(arr_len(f, "joined") == 0 && arr_len(f, "left") == 1);
    CHECK_STR(json_string_value(json_array_get(json_object_get(f, "left"), 0)), "dave");
    CHECK(json_integer_value(json_object_get(f, "count")) == 2);
    /* 150 joins in one second: 100 now, 50 at the next flush */
    char user[32];
    for (int i = 0; i < 150; i++) {
        snprintf(user, sizeof(user), "u%03d", i);
        gw_presence_join(a.p, "r", user, NULL);
    }
    carry(&a, &b, 3100), carried(&a);
    gw_presence_tick(b.p, 4000, 5000);
    CHECK(b.nframes == 3 && arr_len(last_frame(&b), "joined") == 100);
    CHECK(json_integer_value(json_object_get(last_frame(&b), "count")) == 152);
    gw_presence_tick(b.p, 5000, 6000);
    CHECK(b.nframes == 4 && arr_len(last_frame(&b), "joined") == 50);
    /* nobody watches any more: no frames */
    gw_presence_watch(b.p, "r", -1);
    gw_presence_leave(a.p, "r", "u000");
    carry(&a, &b, 5100), carried(&a);
    gw_presence_tick(b.p, 6000, 7000);
    CHECK(b.nframes == 4);
    CHECK(count(&b, "r") == 151);
    gw_done(&a);
    gw_done(&b);
}

static void test_snapshot(void)
{
    gw a;
    gw_init(&a, "gw-a", 1, 100000);
    char user[32];
    for (int i = 0; i < 250; i++) {
        snprintf(user, sizeof(user), "user%03d", i);
        CHECK(gw_presence_join(a.p, "big", user, NULL) == 0);
    }
    gw_presence_view v;
    gw_presence_members(a.p, "big", "user007", &v);
    CHECK(v.count == 250 && v.n == 100 && v.truncated);
    CHECK_STR(v.users[0].user, "user007"); /* the asking user first */
    int dup = 0;
    for (size_t i = 1; i < v.n; i++)
        dup += strcmp(v.users[i].user, "user007") == 0;
    CHECK(dup == 0);
    gw_presence_members(a.p, "nobody-here", "user007", &v);
    CHECK(v.count == 0 && v.n == 0 && !v.truncated);
    gw_presence_join(a.p, "small", "x", NULL);
    gw_presence_members(a.p, "small", "not-there", &v);
    CHECK(v.count == 1 && v.n == 1 && !v.truncated);
    gw_done(&a);
}

static void test_dead_gateway(void)
{
    gw a, b, c;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_init(&c, "gw-c", 3, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_tick(b.p, 0, 1000);
    gw_presence_tick(c.p, 0, 1000);
    gw_presence_join(a.p, "r", "alice", NULL);
    gw_presence_join(a.p, "r", "both", NULL);
    gw_presence_join(c.p, "r", "both", NULL);
    carry(&a, &b, 0), carry(&a, &c, 0), carry(&b, &a, 0), carry(&b, &c, 0), carry(&c, &a, 0),
        carry(&c, &b, 0), carried(&a), carried(&b), carried(&c);
    CHECK(count(&b, "r") == 2 && count(&c, "r") == 2);
    gw_presence_watch(b.p, "r", 1);
    /* a dies at 0; b and c keep beating */
    for (int64_t t = 100; t <= 8000; t += 100) {
        gw_presence_tick(b.p, t, 1000 + t);
        gw_presence_tick(c.p, t, 1000 + t);
        carry(&b, &c, t), carry(&c, &b, t), carried(&b), carried(&c);
    }
    CHECK(gw_presence_has(b.p, "r", "alice")); /* 8 s: not yet */
    size_t b_before = b.nrecs, c_before = c.nrecs;
    gw_presence_tick(b.p, 8100, 9100);
    gw_presence_tick(c.p, 8100, 9100);
    CHECK(!gw_presence_has(b.p, "r", "alice") && !gw_presence_has(c.p, "r", "alice"));
    CHECK(gw_presence_has(b.p, "r", "both")); /* still on c */
    CHECK(count(&b, "r") == 1);
    /* b, the alive node with the smallest id, wrote a's two tombstones; c wrote none */
    size_t tomb_b = 0, tomb_c = 0;
    for (size_t i = b_before; i < b.nrecs; i++)
        tomb_b += b.recs[i].val == NULL && strstr(b.recs[i].key, "gw-a") != NULL;
    for (size_t i = c_before; i < c.nrecs; i++)
        tomb_c += c.recs[i].val == NULL;
    CHECK(tomb_b == 2 && tomb_c == 0);
    gw_presence_tick(b.p, 9000, 10000);
    json_t *f = last_frame(&b);
    CHECK(f && arr_len(f, "left") == 1);
    gw_presence_stats st;
    gw_presence_get_stats(b.p, &st);
    CHECK(st.nodes_dead == 1 && st.nodes == 2);
    gw_done(&a);
    gw_done(&b);
    gw_done(&c);
}

static void test_restart(void)
{
    gw a1, a2, b;
    gw_init(&a1, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a1.p, 0, 1000);
    gw_presence_join(a1.p, "r", "alice", NULL);
    gw_presence_join(a1.p, "s", "alice", NULL);
    carry(&a1, &b, 0);
    CHECK(count(&b, "r") == 1);
    /* a1 is killed; a2 starts with the same node id, reads the topic (records 3 s old) */
    gw_init(&a2, "gw-a", 7, 1000);
    for (size_t i = 0; i < a1.nrecs; i++)
        CHECK(gw_presence_on_record(a2.p, a1.recs[i].key, a1.recs[i].klen, a1.recs[i].val,
                                    a1.recs[i].vlen, 3000, 100) == 0);
    /* a2 tombstones its previous run's two entries and knows nobody */
    size_t tombs = 0;
    for (size_t i = 0; i < a2.nrecs; i++)
        tombs += a2.recs[i].val == NULL && a2.recs[i].key[0] == 'm';
    CHECK(tombs == 2 && count(&a2, "r") == 0);
    /* b reads a2's heartbeat: a1's run ends at once, without waiting for dead_ms */
    gw_presence_tick(a2.p, 100, 1100);
    carry(&a2, &b, 100);
    CHECK(count(&b, "r") == 0 && count(&b, "s") == 0);
    gw_done(&a1);
    gw_done(&a2);
    gw_done(&b);
}

static void test_catch_up_age(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_join(a.p, "r", "alice", NULL);
    /* b starts later and reads a's records as 20 s old: a is long dead */
    for (size_t i = 0; i < a.nrecs; i++)
        gw_presence_on_record(b.p, a.recs[i].key, a.recs[i].klen, a.recs[i].val, a.recs[i].vlen,
                              20000, 50000);
    CHECK(count(&b, "r") == 1);
    gw_presence_tick(b.p, 50000, 60000);
    CHECK(count(&b, "r") == 0);
    gw_done(&a);
    gw_done(&b);
}

static void test_refused_and_bounded(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_join(a.p, "r", "alice", NULL);
    rec *r = &a.recs[a.nrecs - 1];
    /* a value that does not match its key */
    chat_presence other = {.kind = CHAT_PRESENCE_MEMBER, .incarnation = 1};
    strcpy(other.node, "gw-a");
    strcpy(other.room, "r");
    strcpy(other.user, "mallory");
    uint8_t *val = NULL;
    size_t vlen = 0;
    CHECK(chat_presence_encode(&other, &val, &vlen, NULL, 0) == 0);
    CHECK(gw_presence_on_record(b.p, r->key, r->klen, val, vlen, 0, 0) == CHAT_EINVAL);
    free(val);
    CHECK(gw_presence_on_record(b.p, "x", 1, NULL, 0, 0, 0) == CHAT_EINVAL);
    CHECK(gw_presence_on_record(b.p, r->key, r->klen, (const uint8_t *)"\xff\xff", 2, 0, 0) ==
          CHAT_EINVAL);
    gw_presence_stats st;
    gw_presence_get_stats(b.p, &st);
    CHECK(st.bad_records == 3 && st.entries == 0);
    /* another gateway tombstoned a's live entry (it thought a dead): a says it again */
    size_t n = a.nrecs;
    CHECK(gw_presence_on_record(a.p, r->key, r->klen, NULL, 0, 0, 0) == 0);
    CHECK(a.nrecs == n + 1 && a.recs[n].val != NULL);
    /* the bound */
    char user[32];
    int refused = 0;
    for (int i = 0; i < 1100; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        refused += gw_presence_join(a.p, "big", user, NULL) == -ENOSPC;
    }
    gw_presence_get_stats(a.p, &st);
    CHECK(st.entries == 1000 && refused == 101 && st.dropped == 101);
    gw_presence_leave(a.p, "big", "u1099"); /* never kept: a no-op */
    gw_done(&a);
    gw_done(&b);
}

static void test_shutdown(void)
{
    gw a;
    gw_init(&a, "gw-a", 1, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_join(a.p, "r", "alice", NULL);
    gw_presence_join(a.p, "s", "bob", NULL);
    size_t n = a.nrecs;
    gw_presence_shutdown(a.p);
    CHECK(a.nrecs == n + 3); /* two entries and the heartbeat */
    for (size_t i = n; i < a.nrecs; i++)
        CHECK(a.recs[i].val == NULL);
    CHECK(a.recs[a.nrecs - 1].key[0] == 'h');
    gw_done(&a);
}

/* Connection counts: a gateway writes a user's count at the next tick when it changed (once for
 * several changes), the others sum them; a tombstone at zero; a dead gateway's counts go. */
static void test_conns(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    gw_presence_tick(b.p, 0, 1000);
    carry(&a, &b, 0), carry(&b, &a, 0), carried(&a), carried(&b);
    gw_presence_set_conns(a.p, "alice", 1);
    gw_presence_set_conns(a.p, "alice", 2);
    gw_presence_set_conns(a.p, "alice", 3);
    CHECK(a.nrecs == a.sent); /* not before the tick */
    gw_presence_tick(a.p, 100, 1100);
    CHECK(a.nrecs == a.sent + 1 && a.recs[a.nrecs - 1].key[0] == 'c');
    carry(&a, &b, 100), carried(&a);
    CHECK(gw_presence_remote_conns(b.p, "alice") == 3);
    CHECK(gw_presence_remote_conns(a.p, "alice") == 0); /* its own are not remote */
    gw_presence_set_conns(b.p, "alice", 2);
    gw_presence_tick(b.p, 100, 1100);
    carry(&b, &a, 100), carried(&b);
    CHECK(gw_presence_remote_conns(a.p, "alice") == 2);
    /* back to the same count within a tick: nothing to write */
    gw_presence_set_conns(a.p, "alice", 4);
    gw_presence_set_conns(a.p, "alice", 3);
    gw_presence_tick(a.p, 200, 1200);
    CHECK(a.nrecs == a.sent);
    /* zero: a tombstone */
    gw_presence_set_conns(a.p, "alice", 0);
    gw_presence_tick(a.p, 300, 1300);
    CHECK(a.nrecs == a.sent + 1 && a.recs[a.nrecs - 1].val == NULL);
    carry(&a, &b, 300), carried(&a);
    CHECK(gw_presence_remote_conns(b.p, "alice") == 0);
    /* a dies with bob's 5 connections: they go after dead_ms */
    gw_presence_set_conns(a.p, "bob", 5);
    gw_presence_tick(a.p, 400, 1400);
    carry(&a, &b, 400), carried(&a);
    CHECK(gw_presence_remote_conns(b.p, "bob") == 5);
    gw_presence_tick(b.p, 8000, 9000);
    CHECK(gw_presence_remote_conns(b.p, "bob") == 5);
    size_t before = b.nrecs;
    gw_presence_tick(b.p, 8500, 9500);
    CHECK(gw_presence_remote_conns(b.p, "bob") == 0);
    int tomb = 0; /* b (the only one left) withdraws a's count */
    for (size_t i = before; i < b.nrecs; i++)
        tomb += b.recs[i].key[0] == 'c' && b.recs[i].val == NULL;
    CHECK(tomb == 1);
    gw_presence_stats st;
    gw_presence_get_stats(b.p, &st);
    CHECK(st.users == 1); /* b's own alice */
    /* a restarted a tombstones its previous run's counts */
    gw a2;
    gw_init(&a2, "gw-a", 9, 1000);
    for (size_t i = 0; i < a.nrecs; i++)
        gw_presence_on_record(a2.p, a.recs[i].key, a.recs[i].klen, a.recs[i].val, a.recs[i].vlen,
                              100, 10000);
    tomb = 0;
    for (size_t i = 0; i < a2.nrecs; i++)
        tomb += a2.recs[i].key[0] == 'c' && a2.recs[i].val == NULL;
    CHECK(tomb >= 1);
    /* shutdown withdraws this gateway's counts */
    gw_presence_shutdown(b.p);
    CHECK(b.recs[b.nrecs - 2].key[0] == 'c' && b.recs[b.nrecs - 2].val == NULL);
    gw_done(&a);
    gw_done(&a2);
    gw_done(&b);
}

/* The name of user in room's members, or NULL when not listed ("" for none). */
static const char *member_name(gw *g, const char *room, const char *user)
{
    static gw_presence_view v;
    gw_presence_members(g->p, room, NULL, &v);
    for (size_t i = 0; i < v.n; i++)
        if (strcmp(v.users[i].user, user) == 0)
            return v.users[i].name ? v.users[i].name : "";
    return NULL;
}

/* A remote user's entries and counts share one user, in whichever order their records come;
 * the user is there while either needs it and its memory goes with the last; stats.users counts
 * only the users with counts. */
static void test_shared_users(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    carry(&a, &b, 0), carried(&a); /* b knows a (and has logged it) before the baseline */
    forget(&a);
    gw_presence_stats st;
    size_t base = heap_in_use();

    /* a member record without a count record */
    CHECK(gw_presence_join(a.p, "r", "alice", "Al") == 0);
    carry(&a, &b, 10), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 1 && st.users == 0);
    CHECK(gw_presence_has(b.p, "r", "alice") && gw_presence_remote_conns(b.p, "alice") == 0);
    CHECK_STR(member_name(&b, "r", "alice"), "Al");
    /* then its count record */
    gw_presence_set_conns(a.p, "alice", 2);
    gw_presence_tick(a.p, 100, 1100);
    carry(&a, &b, 100), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 1 && st.users == 1 && gw_presence_remote_conns(b.p, "alice") == 2);
    /* the entry goes first: the count stays */
    gw_presence_leave(a.p, "r", "alice");
    carry(&a, &b, 110), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 0 && st.users == 1 && gw_presence_remote_conns(b.p, "alice") == 2);
    CHECK(!gw_presence_has(b.p, "r", "alice"));
    gw_presence_set_conns(a.p, "alice", 0);
    gw_presence_tick(a.p, 200, 1200);
    carry(&a, &b, 200), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 0 && st.users == 0 && gw_presence_remote_conns(b.p, "alice") == 0);
    forget(&a);
    CHECK(heap_back(base));

    /* the count record first; the count goes before the entry */
    gw_presence_set_conns(a.p, "bob", 1);
    gw_presence_tick(a.p, 300, 1300);
    carry(&a, &b, 300), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 0 && st.users == 1 && gw_presence_remote_conns(b.p, "bob") == 1);
    CHECK(gw_presence_join(a.p, "r", "bob", NULL) == 0);
    CHECK(gw_presence_join(a.p, "s", "bob", "Bobby") == 0);
    carry(&a, &b, 310), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 2 && st.users == 1 && count(&b, "r") == 1 && count(&b, "s") == 1);
    CHECK_STR(member_name(&b, "r", "bob"), "");
    CHECK_STR(member_name(&b, "s", "bob"), "Bobby");
    gw_presence_set_conns(a.p, "bob", 0);
    gw_presence_tick(a.p, 400, 1400);
    carry(&a, &b, 400), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 2 && st.users == 0 && gw_presence_remote_conns(b.p, "bob") == 0);
    CHECK(gw_presence_has(b.p, "r", "bob") && gw_presence_has(b.p, "s", "bob"));
    /* bob is also b's own user, in a third room */
    CHECK(gw_presence_join(b.p, "t", "bob", NULL) == 0);
    gw_presence_set_conns(b.p, "bob", 1);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 3 && st.users == 1 && gw_presence_remote_conns(b.p, "bob") == 0);
    gw_presence_leave(a.p, "r", "bob");
    gw_presence_leave(a.p, "s", "bob");
    carry(&a, &b, 410), carried(&a);
    CHECK(!gw_presence_has(b.p, "r", "bob") && gw_presence_has(b.p, "t", "bob"));
    gw_presence_leave(b.p, "t", "bob");
    gw_presence_set_conns(b.p, "bob", 0);
    gw_presence_tick(b.p, 500, 1500);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 0 && st.users == 0 && st.rooms == 0);
    forget(&a);
    forget(&b);
    CHECK(heap_back(base));

    /* a dead gateway's user with both an entry and a count goes with its node */
    gw_presence_join(a.p, "r", "carol", NULL);
    gw_presence_set_conns(a.p, "carol", 1);
    gw_presence_tick(a.p, 600, 1600);
    carry(&a, &b, 600), carried(&a);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 1 && st.users == 1);
    gw_presence_tick(b.p, 9000, 10000);
    gw_presence_get_stats(b.p, &st);
    CHECK(st.entries == 0 && st.users == 0 && st.nodes == 1);
    gw_done(&a);
    gw_done(&b);
}

/* An entry's display name is its own: one user may have a name in one room and another (or
 * none) in another, locally and from records. */
static void test_names_per_entry(void)
{
    gw a, b;
    gw_init(&a, "gw-a", 1, 1000);
    gw_init(&b, "gw-b", 2, 1000);
    gw_presence_tick(a.p, 0, 1000);
    CHECK(gw_presence_join(a.p, "r", "alice", "Al") == 0);
    CHECK(gw_presence_join(a.p, "s", "alice", "Alice") == 0);
    CHECK(gw_presence_join(b.p, "t", "alice", NULL) == 0);
    carry(&a, &b, 10), carried(&a);
    CHECK_STR(member_name(&a, "r", "alice"), "Al");
    CHECK_STR(member_name(&a, "s", "alice"), "Alice");
    CHECK_STR(member_name(&b, "r", "alice"), "Al");
    CHECK_STR(member_name(&b, "s", "alice"), "Alice");
    CHECK_STR(member_name(&b, "t", "alice"), "");
    /* a new name in one room leaves the other's */
    CHECK(gw_presence_join(a.p, "r", "alice", "Ally") == 0);
    carry(&a, &b, 20), carried(&a);
    CHECK_STR(member_name(&b, "r", "alice"), "Ally");
    CHECK_STR(member_name(&b, "s", "alice"), "Alice");
    gw_done(&a);
    gw_done(&b);
}

/* The heap a (room, user) entry costs with its user, as the idle-10k bench has them (one room
 * each, user ids of 16 bytes, a connection count each), and all of it back when they leave.
 * Per entry: the entry (72 bytes, an 80-byte glibc chunk), its user (38 + 17, a 64-byte chunk),
 * the slots of two hash tables (about 8) and a share of the rooms; under ASan the bytes asked
 * (about 137). It was 112 + 80 in chunks (164 bytes asked) when each held its own copy of the
 * id. */
static void test_memory(void)
{
    enum { N = 1000 };
    gw_presence_config c = {.node_id = "gw-a",
                            .incarnation = 1,
                            .max_entries = 100000,
                            .heartbeat_ms = 2000,
                            .dead_ms = 8000,
                            .flush_ms = 1000,
                            .max_changes = 100,
                            .emit = emit_none,
                            .deliver = deliver_none};
    gw_presence *p = gw_presence_new(&c, 0);
    CHECK(p != NULL);
    gw_presence_tick(p, 0, 1000);
    size_t base = heap_in_use();
    char user[32], room[16];
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof(user), "user-%011d", i); /* 16 bytes */
        snprintf(room, sizeof(room), "room-%d", i % 10);
        gw_presence_set_conns(p, user, 1);
        CHECK(gw_presence_join(p, room, user, NULL) == 0);
    }
    gw_presence_tick(p, 100, 1100);
    size_t per = (heap_in_use() - base) / N;
    fprintf(stderr, "test_memory: %zu bytes of heap per entry and user\n", per);
    CHECK(per <= 160);
    gw_presence_stats st;
    gw_presence_get_stats(p, &st);
    CHECK(st.entries == N && st.users == N && st.rooms == 10);
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof(user), "user-%011d", i);
        snprintf(room, sizeof(room), "room-%d", i % 10);
        gw_presence_leave(p, room, user);
        gw_presence_set_conns(p, user, 0);
    }
    gw_presence_tick(p, 200, 1200);
    gw_presence_get_stats(p, &st);
    CHECK(st.entries == 0 && st.users == 0 && st.rooms == 0);
    CHECK(heap_back(base));
    gw_presence_free(p);
}

int main(void)
{
    RUN(test_counted_once);
    RUN(test_frames_coalesced);
    RUN(test_snapshot);
    RUN(test_dead_gateway);
    RUN(test_restart);
    RUN(test_catch_up_age);
    RUN(test_refused_and_bounded);
    RUN(test_shutdown);
    RUN(test_conns);
    RUN(test_shared_users);
    RUN(test_names_per_entry);
    RUN(test_memory);
    return check_summary();
}
