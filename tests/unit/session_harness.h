/* session_harness.h: gateway sessions without a server, for test_gw_session.c and the session
 * fuzzer. It implements gw_session_ops with fakes: connections that record every frame written
 * to them, a Kafka that assigns offsets when told to (h_flush) and answers end-offset queries
 * at once, and a store that holds whatever h_flush persisted and answers reads when told to
 * (h_store). Everything runs on the calling thread. */
#ifndef SESSION_HARNESS_H
#define SESSION_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_msgid.h"
#include "gw_log.h"
#include "gw_out.h"
#include "gw_presence.h"
#include "gw_session.h"

#define H_PARTS 4
#define H_CONNS 64
#define H_MAX 4096 /* produced records, store reads, stored messages */

typedef struct h_conn {
    gw_session s;
    bool open;
    bool choked;            /* the fake socket takes nothing more */
    int close_code;         /* from close_reason */
    char close_reason[128]; /* the reason given with it */
    char **frames;          /* what was written, as strings */
    size_t nframes, cap;
    size_t seen; /* frames already looked at by h_next */
    bool quiet;  /* h_write_all leaves it alone (a sender whose reading does not matter) */
} h_conn;

typedef struct harness {
    gw_ctx ctx;
    h_conn conns[H_CONNS];
    int64_t next_offset[H_PARTS];
    void *produced[H_MAX];
    chat_envelope produced_env[H_MAX];
    size_t nproduced;
    gw_store_query reads[H_MAX];
    char read_room[H_MAX][CHAT_ROOM_MAX + 1], read_before[H_MAX][CHAT_MSGID_LEN + 1],
        read_after[H_MAX][CHAT_MSGID_LEN + 1];
    void *read_opaque[H_MAX];
    size_t nreads, total_reads;
    chat_message stored[H_MAX]; /* in offset order per partition: appended as produced */
    size_t nstored;
    bool persist;      /* h_flush also stores what it delivers */
    bool store_down;   /* reads fail */
    bool sync_pending; /* end-offset queries wait for h_sync */
    bool no_flush;     /* h_flush leaves the woken members to the test's gw_sessions_flush */
    size_t presence_records, presence_tombstones; /* what the presence table wrote */
    int64_t presence_now;                         /* its clock, moved by h_presence_tick */
    /* typing and read state (off unless a test sets jobs_on): store jobs wait for h_jobs,
     * which answers them without running them (no MongoDB here: a lookup finds nothing, a
     * read moves nothing), or with -EIO while store_down; published events are counted */
    bool jobs_on;
    int job_kind[H_MAX];
    void *job_opaque[H_MAX];
    size_t njobs;
    chat_event published[H_MAX];
    size_t npublished;
} harness;

static void h_presence_emit(void *arg, const char *key, size_t klen, const uint8_t *val,
                            size_t vlen)
{
    harness *h = arg;
    (void)key, (void)klen, (void)vlen;
    if (val)
        h->presence_records++;
    else
        h->presence_tombstones++;
}

static void h_presence_deliver(void *arg, const char *room, gw_buf *frame)
{
    harness *h = arg;
    gw_sessions_presence_frame(&h->ctx, room, frame);
}

/* Moves the presence clock on by ms and runs the table's tick (frames go out at each second). */
static inline void h_presence_tick(harness *h, int64_t ms)
{
    h->presence_now += ms;
    gw_presence_tick(h->ctx.presence, h->presence_now, 1000000 + h->presence_now);
}

static void h_fail(const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
    abort();
}

static h_conn *h_of(void *conn)
{
    return conn;
}

static void op_want_write(void *conn)
{
    (void)conn;
}

/* Records each WebSocket frame of the bytes written (server frames: unmasked, FIN, text). */
static int op_write(void *conn, const unsigned char *p, size_t len)
{
    h_conn *c = h_of(conn);
    while (len) {
        if (len < 2 || p[0] != 0x81 || (p[1] & 0x80))
            h_fail("written bytes are not whole unmasked text frames");
        size_t n = p[1] & 0x7f, hl = 2;
        if (n == 126) {
            n = ((size_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (n == 127) {
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | p[2 + i];
            hl = 10;
        }
        if (len < hl + n)
            h_fail("a frame cut in the middle of a write");
        if (c->nframes == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->frames = realloc(c->frames, c->cap * sizeof(*c->frames));
            if (!c->frames)
                h_fail("out of memory");
        }
        c->frames[c->nframes] = malloc(n + 1);
        if (!c->frames[c->nframes])
            h_fail("out of memory");
        memcpy(c->frames[c->nframes], p + hl, n);
        c->frames[c->nframes++][n] = '\0';
        p += hl + n;
        len -= hl + n;
    }
    return 0;
}

static bool op_choked(void *conn)
{
    return h_of(conn)->choked;
}

/* A quiet connection is written only when a test says so, as with h_write_all. */
static bool op_writable_now(void *conn)
{
    h_conn *c = h_of(conn);
    return c->open && !c->choked && !c->quiet;
}

static void op_close_reason(void *conn, int code, const char *reason)
{
    h_of(conn)->close_code = code;
    snprintf(h_of(conn)->close_reason, sizeof(h_of(conn)->close_reason), "%s", reason);
}

static void op_close_within(void *conn, int seconds)
{
    (void)conn;
    (void)seconds;
}

static void op_auth_timer(gw_session *s, int seconds)
{
    (void)s;
    (void)seconds;
}

static harness *h_from(void *arg)
{
    return arg;
}

static int op_produce(void *arg, const chat_envelope *e, void *opaque, char *err, size_t errlen)
{
    harness *h = h_from(arg);
    if (h->nproduced == H_MAX) {
        snprintf(err, errlen, "queue full");
        return -ENOBUFS;
    }
    if (chat_envelope_copy(&h->produced_env[h->nproduced], e) != 0)
        h_fail("out of memory");
    h->produced[h->nproduced++] = opaque;
    return 0;
}

static int32_t op_partition_of(void *arg, const char *room)
{
    (void)arg;
    unsigned sum = 0;
    for (const char *p = room; *p; p++)
        sum = sum * 31 + (unsigned char)*p;
    return (int32_t)(sum % H_PARTS);
}

static uint64_t op_sync_begin(void *arg, int32_t p)
{
    (void)arg;
    (void)p;
    return 1;
}

static bool op_sync_done(void *arg, int32_t p, uint64_t ticket, int64_t *end)
{
    harness *h = h_from(arg);
    (void)ticket;
    *end = h->next_offset[p];
    return !h->sync_pending;
}

static const char *op_epoch(void *arg)
{
    (void)arg;
    return "test.4";
}

static int op_store_read(void *arg, const gw_store_query *q, const void *owner, void *opaque)
{
    (void)owner;
    harness *h = h_from(arg);
    if (h->nreads == H_MAX)
        return -ENOBUFS;
    size_t i = h->nreads++;
    h->total_reads++;
    h->reads[i] = *q;
    snprintf(h->read_room[i], sizeof(h->read_room[i]), "%s", q->room);
    snprintf(h->read_before[i], sizeof(h->read_before[i]), "%s", q->before ? q->before : "");
    snprintf(h->read_after[i], sizeof(h->read_after[i]), "%s", q->after ? q->after : "");
    h->read_opaque[i] = opaque;
    return 0;
}

static void op_arm(void *arg, int ms)
{
    (void)arg;
    (void)ms; /* the tests call gw_sessions_wake_due themselves */
}

static void op_cancel_reads(void *arg, const void *owner)
{
    (void)arg; /* the harness's reads all run when a test calls h_store */
    (void)owner;
}

static int op_publish(void *arg, chat_event *e, char *err, size_t errlen)
{
    harness *h = h_from(arg);
    (void)err;
    (void)errlen;
    if (!h->jobs_on || h->npublished == H_MAX)
        return -ENOBUFS;
    h->published[h->npublished++] = *e;
    return 0;
}

static int op_store_job(void *arg, gw_store_run_fn run, void *job, int kind, const void *owner,
                        size_t max_per_owner, void *opaque)
{
    harness *h = h_from(arg);
    (void)run;
    (void)job;
    (void)owner;
    (void)max_per_owner;
    if (!h->jobs_on || h->njobs == H_MAX)
        return -ENOBUFS;
    h->job_kind[h->njobs] = kind;
    h->job_opaque[h->njobs++] = opaque;
    return 0;
}

static const gw_session_ops h_ops = {
    .want_write = op_want_write,
    .write = op_write,
    .choked = op_choked,
    .writable_now = op_writable_now,
    .close_reason = op_close_reason,
    .close_within = op_close_within,
    .auth_timer = op_auth_timer,
    .produce = op_produce,
    .partition_of = op_partition_of,
    .sync_begin = op_sync_begin,
    .sync_done = op_sync_done,
    .epoch = op_epoch,
    .store_read = op_store_read,
    .cancel_reads = op_cancel_reads,
    .arm = op_arm,
    .publish = op_publish,
    .store_job = op_store_job,
};

/* A harness whose room logs hold log_bytes; every partition is covered from `start`. */
static harness *h_new(size_t log_bytes, int64_t start)
{
    harness *h = calloc(1, sizeof(*h));
    if (!h)
        h_fail("out of memory");
    gw_settings *c = &h->ctx.cfg;
    c->node_id = "gw-test";
    c->max_text = 4096;
    c->max_frame = 65536;
    c->max_rooms = 8;
    c->history_limit = 50;
    c->rate = 1000000;
    c->rate_burst = 1000000;
    c->send_queue = 4096;
    c->send_queue_bytes = 1 << 20;
    c->resume_max = 100;
    c->log_bytes = (long long)log_bytes;
    c->auth_timeout = 10;
    h->ctx.limits.max_text = 4096;
    h->ctx.limits.max_history = 200;
    h->ctx.limits.default_history = 50;
    h->ctx.ops = &h_ops;
    h->ctx.ops_arg = h;
    h->ctx.rooms = gw_rooms_new();
    gw_auth_config ac = {.alg = "HS256", .secret = "harness-secret-0123456789"};
    char err[160];
    if (!h->ctx.rooms || gw_sessions_init(&h->ctx, H_PARTS) != 0 ||
        gw_auth_new(&h->ctx.auth, &ac, err, sizeof(err)) != 0)
        h_fail("init");
    for (int32_t p = 0; p < H_PARTS; p++) {
        gw_log_cover(h->ctx.log, p, start);
        h->next_offset[p] = start;
    }
    gw_presence_config pc = {.node_id = "gw-test",
                             .incarnation = 1,
                             .max_entries = 1000,
                             .heartbeat_ms = GW_PRESENCE_HEARTBEAT_MS,
                             .dead_ms = GW_PRESENCE_DEAD_MS,
                             .flush_ms = GW_PRESENCE_FLUSH_MS,
                             .max_changes = GW_PRESENCE_LIST_MAX,
                             .emit = h_presence_emit,
                             .deliver = h_presence_deliver,
                             .arg = h};
    h->ctx.presence = gw_presence_new(&pc, 0);
    if (!h->ctx.presence)
        h_fail("presence");
    h->persist = true;
    return h;
}

/* Opens connection i as user (NULL: it must send an auth frame first). */
static h_conn *h_open(harness *h, int i, const char *user)
{
    h_conn *c = &h->conns[i];
    gw_identity id;
    memset(&id, 0, sizeof(id));
    if (user)
        snprintf(id.sub, sizeof(id.sub), "%s", user);
    id.exp = 4102444800LL;
    c->close_code = 0; /* a connection slot may be used again */
    if (gw_session_open(&h->ctx, &c->s, c, user ? &id : NULL) != 0)
        h_fail("open");
    c->open = true;
    return c;
}

/* Opens connection i as user with a rooms claim in gw_access.h's packed form (len bytes, the
 * final empty string included), or without one (packed NULL). */
static inline h_conn *h_open_rooms(harness *h, int i, const char *user, const char *packed,
                                   size_t len)
{
    h_conn *c = &h->conns[i];
    gw_identity id;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "%s", user);
    id.exp = 4102444800LL;
    if (packed) {
        id.rooms = malloc(len);
        if (!id.rooms)
            h_fail("out of memory");
        memcpy(id.rooms, packed, len);
    }
    if (gw_session_open(&h->ctx, &c->s, c, &id) != 0)
        h_fail("open");
    c->open = true;
    return c;
}

static void h_close(harness *h, h_conn *c)
{
    (void)h;
    if (!c->open)
        return;
    gw_session_closed(&c->s);
    c->open = false;
}

/* Delivers text to the session as one whole frame; a -1 from the session closes it. */
static int h_frame(harness *h, h_conn *c, const char *text)
{
    if (!c->open)
        return -1;
    int rc = gw_session_receive(&c->s, text, strlen(text), true, true, false);
    if (rc != 0)
        h_close(h, c);
    gw_sessions_tick(&h->ctx); /* as the loop does when the end-offset query answers */
    return rc;
}

/* Lets the connection write what it may. */
static void h_write(harness *h, h_conn *c)
{
    if (c->open && gw_session_writeable(&c->s) != 0)
        h_close(h, c);
}

static inline void h_write_all(harness *h)
{
    for (int i = 0; i < H_CONNS; i++)
        if (!h->conns[i].quiet)
            h_write(h, &h->conns[i]);
}

/* Kafka stores every produced record: acks (delivery reports), then fan-out reads them. */
static void h_flush(harness *h)
{
    size_t n = h->nproduced;
    h->nproduced = 0;
    for (size_t i = 0; i < n; i++) {
        chat_envelope *e = &h->produced_env[i];
        int32_t p = op_partition_of(h, e->room);
        int64_t off = h->next_offset[p]++;
        char id[CHAT_MSGID_LEN + 1];
        chat_msgid_format(id, p, off);
        gw_session_on_ack(h->produced[i], id, NULL, &h->ctx);
        chat_message m;
        memset(&m, 0, sizeof(m));
        memcpy(m.id, id, sizeof(id));
        m.env = *e;
        gw_session_on_record(&m, p, off, &h->ctx);
        if (h->persist && h->nstored < H_MAX) {
            h->stored[h->nstored] = m; /* takes the envelope's strings */
            h->nstored++;
        } else {
            chat_envelope_clear(e);
        }
        memset(e, 0, sizeof(*e));
    }
    if (!h->no_flush)
        gw_sessions_flush(&h->ctx); /* as the loop does after a batch of records */
    gw_sessions_tick(&h->ctx);
}

static inline void h_sync(harness *h)
{
    h->sync_pending = false;
    gw_sessions_tick(&h->ctx);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const chat_message *)a)->id, ((const chat_message *)b)->id);
}

/* Answers every store read waiting, from what h_flush persisted. */
static void h_store(harness *h)
{
    while (h->nreads) {
        size_t i = 0;
        gw_store_query *q = &h->reads[i];
        gw_store_result r;
        memset(&r, 0, sizeof(r));
        r.opaque = h->read_opaque[i];
        r.kind = q->kind;
        r.partition = q->partition;
        r.fence = h->next_offset[q->partition >= 0 ? q->partition : 0];
        snprintf(r.room, sizeof(r.room), "%s", h->read_room[i]);
        chat_message *all = calloc(h->nstored + 1, sizeof(*all));
        size_t n = 0;
        for (size_t k = 0; k < h->nstored; k++)
            if (strcmp(h->stored[k].env.room, r.room) == 0 &&
                (!h->read_before[i][0] || strcmp(h->stored[k].id, h->read_before[i]) < 0) &&
                (!h->read_after[i][0] || strcmp(h->stored[k].id, h->read_after[i]) > 0))
                all[n++] = h->stored[k];
        qsort(all, n, sizeof(*all), cmp_id);
        size_t lim = (size_t)q->limit, from = 0;
        if (n > lim) {
            if (h->read_after[i][0])
                n = lim;
            else
                from = n - lim;
        }
        r.msgs = all + from;
        r.n = n - from;
        if (h->store_down) {
            r.err = -EIO;
            r.n = 0;
        }
        /* the next read goes first: a callback may queue more */
        h->nreads--;
        memmove(&h->reads[0], &h->reads[1], h->nreads * sizeof(h->reads[0]));
        memmove(h->read_room[0], h->read_room[1], h->nreads * sizeof(h->read_room[0]));
        memmove(h->read_before[0], h->read_before[1], h->nreads * sizeof(h->read_before[0]));
        memmove(h->read_after[0], h->read_after[1], h->nreads * sizeof(h->read_after[0]));
        memmove(&h->read_opaque[0], &h->read_opaque[1], h->nreads * sizeof(h->read_opaque[0]));
        gw_session_on_history(&r, &h->ctx);
        free(all);
    }
}

/* Answers every store job waiting (see harness.jobs_on). */
static void h_jobs(harness *h)
{
    while (h->njobs) {
        gw_store_result r;
        memset(&r, 0, sizeof(r));
        r.kind = h->job_kind[0];
        r.opaque = h->job_opaque[0];
        r.partition = -1;
        r.err = h->store_down ? -EIO : 0;
        h->njobs--;
        memmove(&h->job_kind[0], &h->job_kind[1], h->njobs * sizeof(h->job_kind[0]));
        memmove(&h->job_opaque[0], &h->job_opaque[1], h->njobs * sizeof(h->job_opaque[0]));
        gw_session_on_history(&r, &h->ctx);
    }
}

/* The next frame written to c that it has not returned yet, or NULL. */
static const char *h_next(h_conn *c)
{
    return c->seen < c->nframes ? c->frames[c->seen++] : NULL;
}

static void h_free(harness *h)
{
    for (int i = 0; i < H_CONNS; i++) {
        h_close(h, &h->conns[i]);
        for (size_t k = 0; k < h->conns[i].nframes; k++)
            free(h->conns[i].frames[k]);
        free(h->conns[i].frames);
    }
    h_store(h); /* releases the replies of reads never answered */
    h_jobs(h);
    h->persist = false;
    h_flush(h);
    gw_sessions_free(&h->ctx);
    gw_presence_free(h->ctx.presence);
    gw_rooms_free(h->ctx.rooms);
    gw_auth_free(h->ctx.auth);
    for (size_t k = 0; k < h->nstored; k++)
        chat_envelope_clear(&h->stored[k].env);
    free(h);
}

#endif
