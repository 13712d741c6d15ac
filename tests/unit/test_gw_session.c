/* test_gw_session.c: the session policy without a server (session_harness.h fakes the
 * connection, Kafka and the store): exact joins, joins that wait for fan-out, resume with and
 * without recovery, retries by cid, slow readers, the single-flight store read of a join storm,
 * history pages, try-write-first from fan-out, frame reassembly, the 1009 close of an oversized
 * message however it is fragmented, and the rate limit taken before any parse. */
#include <jansson.h>

#include "check.h"
#include "chat_presence.h"
#include "session_harness.h"

/* The next frame of c of the given type, parsed (json_decref it), or NULL. */
static json_t *next_of(h_conn *c, const char *type)
{
    const char *f;
    while ((f = h_next(c))) {
        json_t *j = json_loads(f, 0, NULL);
        if (j && strcmp(json_string_value(json_object_get(j, "type")), type) == 0)
            return j;
        json_decref(j);
    }
    return NULL;
}

static size_t count_of(h_conn *c, const char *type)
{
    size_t n = 0;
    json_t *j;
    while ((j = next_of(c, type))) {
        n++;
        json_decref(j);
    }
    return n;
}

/* Sends n messages to room from c with cids prefix0.., flushes Kafka and writes everywhere. */
static void say(harness *h, h_conn *c, const char *room, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"%s %d\",\"cid\":\"%s%d\"}", room,
                 prefix, i, prefix, i);
        h_frame(h, c, buf);
    }
    h_flush(h);
    h_write_all(h);
}

static void join(harness *h, h_conn *c, const char *room, const char *extra)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"type\":\"join\",\"room\":\"%s\"%s%s}", room, extra ? "," : "",
             extra ? extra : "");
    h_frame(h, c, buf);
}

/* The ids of a joined/history array, as one comma-separated string of offsets. */
static void ids(json_t *arr, char *out, size_t len)
{
    out[0] = '\0';
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        int64_t off = -1;
        chat_msgid_parse(json_string_value(json_object_get(m, "id")), NULL, &off);
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%lld", i ? "," : "", (long long)off);
    }
}

static void test_join_is_exact_and_waits_for_fan_out(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    h_write_all(h);
    json_t *w = next_of(a, "welcome");
    CHECK(w && json_integer_value(json_object_get(w, "protocol")) == 2);
    CHECK(w && strcmp(json_string_value(json_object_get(w, "epoch")), "test.4") == 0);
    json_decref(w);
    join(h, a, "r", NULL);
    h_write_all(h);
    json_t *j = next_of(a, "joined");
    CHECK(j && json_array_size(json_object_get(j, "history")) == 0);
    json_decref(j);
    say(h, a, "r", 60, "m");
    /* a join waits while fan-out has not read up to the partition's end */
    h->sync_pending = true;
    join(h, b, "r", NULL);
    h_write_all(h);
    CHECK(next_of(b, "joined") == NULL);
    h_sync(h);
    h_write_all(h);
    j = next_of(b, "joined");
    CHECK(j != NULL);
    char got[1024];
    ids(json_object_get(j, "history"), got, sizeof(got));
    CHECK_STR(got, "10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,"
                   "35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59");
    CHECK(json_object_get(j, "recovered") == NULL);
    json_decref(j);
    /* then every later message once */
    say(h, a, "r", 2, "n");
    CHECK(count_of(b, "message") == 2);
    /* a join with a limit */
    join(h, b, "r", "\"limit\":3");
    h_sync(h);
    h_write_all(h);
    j = next_of(b, "joined");
    ids(json_object_get(j, "history"), got, sizeof(got));
    CHECK_STR(got, "59,60,61");
    json_decref(j);
    h_free(h);
}

static void test_resume(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    join(h, a, "r", NULL);
    say(h, a, "r", 20, "m");
    char since[CHAT_MSGID_LEN + 1], extra[160];
    chat_msgid_format(since, op_partition_of(h, "r"), 14);
    snprintf(extra, sizeof(extra), "\"since\":\"%s\",\"epoch\":\"test.4\"", since);
    join(h, b, "r", extra);
    h_write_all(h);
    json_t *j = next_of(b, "joined");
    CHECK(j && json_is_true(json_object_get(j, "recovered")));
    char got[256];
    ids(json_object_get(j, "history"), got, sizeof(got));
    CHECK_STR(got, "15,16,17,18,19");
    json_decref(j);
    /* another epoch: nothing recovered, the latest page and the gap */
    h_frame(h, b, "{\"type\":\"leave\",\"room\":\"r\"}");
    snprintf(extra, sizeof(extra), "\"since\":\"%s\",\"epoch\":\"old.4\",\"limit\":2", since);
    join(h, b, "r", extra);
    h_write_all(h);
    j = next_of(b, "joined");
    CHECK(j && json_is_false(json_object_get(j, "recovered")));
    ids(json_object_get(j, "history"), got, sizeof(got));
    CHECK_STR(got, "18,19");
    json_t *gap = json_object_get(j, "gap");
    CHECK_STR(json_string_value(json_object_get(gap, "after")), since);
    char first[CHAT_MSGID_LEN + 1];
    chat_msgid_format(first, op_partition_of(h, "r"), 18);
    CHECK_STR(json_string_value(json_object_get(gap, "before")), first);
    json_decref(j);
    /* more missed than a resume carries (resume_max 100) */
    say(h, a, "r", 150, "x");
    h_frame(h, b, "{\"type\":\"leave\",\"room\":\"r\"}");
    snprintf(extra, sizeof(extra), "\"since\":\"%s\",\"epoch\":\"test.4\"", since);
    join(h, b, "r", extra);
    h_write_all(h);
    j = next_of(b, "joined");
    CHECK(j && json_is_false(json_object_get(j, "recovered")));
    CHECK(json_array_size(json_object_get(j, "history")) == 50);
    json_decref(j);
    h_free(h);
}

static void test_resume_from_the_store(void)
{
    /* a log of a few KB: the room's old messages are only in the store */
    harness *h = h_new(8192, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    a->quiet = true;
    join(h, a, "r", NULL);
    join(h, a, "flood", NULL);
    say(h, a, "r", 10, "m");
    say(h, a, "flood", 100, "f");
    char since[CHAT_MSGID_LEN + 1], extra[160];
    chat_msgid_format(since, op_partition_of(h, "r"), 4);
    snprintf(extra, sizeof(extra), "\"since\":\"%s\",\"epoch\":\"test.4\"", since);
    join(h, b, "r", extra);
    h_write_all(h);
    CHECK(next_of(b, "joined") == NULL);
    CHECK(h->nreads == 1);
    h_store(h);
    h_write_all(h);
    json_t *j = next_of(b, "joined");
    CHECK(j && json_is_true(json_object_get(j, "recovered")));
    char got[256];
    ids(json_object_get(j, "history"), got, sizeof(got));
    CHECK_STR(got, "5,6,7,8,9");
    json_decref(j);
    h_free(h);
}

static void test_retries(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *a2 = h_open(h, 1, "alice"), *b = h_open(h, 2, "bob");
    join(h, a, "r", NULL);
    join(h, a2, "r", NULL);
    join(h, b, "r", NULL);
    /* the same cid twice before the ack: one record, two acks with one id */
    h_frame(h, a, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}");
    h_frame(h, a2, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}");
    CHECK(h->nproduced == 1);
    h_flush(h);
    h_write_all(h);
    json_t *k1 = next_of(a, "ack"), *k2 = next_of(a2, "ack");
    CHECK(k1 && k2);
    CHECK_STR(json_string_value(json_object_get(k1, "id")),
              json_string_value(json_object_get(k2, "id")));
    /* later, from the log */
    h_frame(h, a2, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}");
    CHECK(h->nproduced == 0);
    h_write_all(h);
    json_t *k3 = next_of(a2, "ack");
    CHECK_STR(json_string_value(json_object_get(k3, "id")),
              json_string_value(json_object_get(k1, "id")));
    /* someone else's c1 is another message */
    h_frame(h, b, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}");
    CHECK(h->nproduced == 1);
    h_flush(h);
    h_write_all(h);
    CHECK(count_of(b, "message") == 2);
    json_decref(k1);
    json_decref(k2);
    json_decref(k3);
    h_free(h);
}

static void test_slow_reader(void)
{
    harness *h = h_new(16384, 0);
    h_conn *a = h_open(h, 0, "alice"), *slow = h_open(h, 1, "slow");
    a->quiet = true;
    join(h, a, "r", NULL);
    join(h, slow, "r", NULL);
    h_write_all(h);
    /* behind, but within the log: it catches up */
    slow->choked = true;
    say(h, a, "r", 20, "m");
    slow->choked = false;
    h_write(h, slow);
    CHECK(count_of(slow, "message") == 20);
    /* further behind than the log holds: 4008 */
    slow->choked = true;
    say(h, a, "r", 300, "n");
    CHECK(slow->open);
    slow->choked = false;
    h_write(h, slow); /* finds it fell off */
    h_write(h, slow); /* writes the close */
    CHECK(slow->close_code == 4008);
    CHECK(!slow->open);
    CHECK(h->ctx.stats.dropped_slow == 1);
    h_free(h);
}

static void test_join_storm_reads_the_store_once(void)
{
    harness *h = h_new(8192, 0);
    h_conn *a = h_open(h, 0, "alice");
    a->quiet = true;
    join(h, a, "old", NULL);
    join(h, a, "flood", NULL);
    say(h, a, "old", 7, "m");
    say(h, a, "flood", 100, "f");
    for (int i = 1; i < 40; i++) {
        h_open(h, i, "crowd");
        join(h, &h->conns[i], "old", NULL);
    }
    CHECK(h->total_reads == 1);
    h_store(h);
    h_write_all(h);
    for (int i = 1; i < 40; i++) {
        json_t *j = next_of(&h->conns[i], "joined");
        char got[128];
        ids(j ? json_object_get(j, "history") : NULL, got, sizeof(got));
        CHECK_STR(got, "0,1,2,3,4,5,6");
        json_decref(j);
    }
    /* a later joiner: the room's page and the log since, no new read */
    say(h, a, "old", 1, "late");
    h_open(h, 40, "late");
    join(h, &h->conns[40], "old", NULL);
    h_write_all(h);
    CHECK(h->total_reads == 1);
    json_t *j = next_of(&h->conns[40], "joined");
    CHECK(j && json_array_size(json_object_get(j, "history")) == 8);
    json_decref(j);
    h_free(h);
}

static void test_store_down(void)
{
    /* reading began at offset 100: what came before is only in the store */
    harness *h = h_new(1 << 20, 100);
    h->store_down = true;
    h_conn *x = h_open(h, 0, "x"), *y = h_open(h, 1, "y");
    join(h, x, "never", NULL);
    join(h, y, "never", NULL);
    CHECK(h->total_reads == 1);
    h_store(h);
    h_write_all(h);
    /* a failed read answers every joiner with an error; none stays half-joined */
    for (int i = 0; i < 2; i++) {
        h_conn *c = &h->conns[i];
        json_t *e = next_of(c, "error");
        CHECK(e && strcmp(json_string_value(json_object_get(e, "code")), "unavailable") == 0);
        json_decref(e);
        h_frame(h, c, "{\"type\":\"send\",\"room\":\"never\",\"text\":\"x\"}");
        h_write_all(h);
        e = next_of(c, "error");
        CHECK(e && strcmp(json_string_value(json_object_get(e, "code")), "not_joined") == 0);
        json_decref(e);
    }
    /* back up: the next join reads again and works */
    h->store_down = false;
    join(h, x, "never", NULL);
    h_store(h);
    h_write_all(h);
    json_t *j = next_of(x, "joined");
    CHECK(j != NULL);
    json_decref(j);
    h_free(h);
}

static void test_history_pages(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice");
    join(h, a, "r", NULL);
    say(h, a, "r", 30, "m");
    int32_t p = op_partition_of(h, "r");
    char x[CHAT_MSGID_LEN + 1], y[CHAT_MSGID_LEN + 1], buf[256];
    chat_msgid_format(x, p, 4);
    chat_msgid_format(y, p, 9);
    snprintf(buf, sizeof(buf), "{\"type\":\"history\",\"room\":\"r\",\"after\":\"%s\",\"limit\":3}",
             x);
    h_frame(h, a, buf);
    h_write_all(h);
    json_t *j = next_of(a, "history");
    char got[256];
    ids(json_object_get(j, "messages"), got, sizeof(got));
    CHECK_STR(got, "5,6,7");
    json_decref(j);
    snprintf(buf, sizeof(buf),
             "{\"type\":\"history\",\"room\":\"r\",\"before\":\"%s\",\"limit\":3}", y);
    h_frame(h, a, buf);
    h_write_all(h);
    j = next_of(a, "history");
    ids(json_object_get(j, "messages"), got, sizeof(got));
    CHECK_STR(got, "6,7,8");
    json_decref(j);
    CHECK(h->total_reads == 0);
    h_free(h);
}

static void test_reassembly(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice");
    const char *f = "{\"type\":\"ping\"}";
    CHECK(gw_session_receive(&a->s, f, 5, true, false, false) == 0);
    CHECK(gw_session_receive(&a->s, f + 5, 5, false, false, false) == 0);
    CHECK(gw_session_receive(&a->s, f + 10, strlen(f) - 10, false, true, false) == 0);
    h_write(h, a);
    json_t *j = next_of(a, "pong");
    CHECK(j != NULL);
    json_decref(j);
    /* over CHAT_MAX_FRAME in small fragments: 1009 */
    char chunk[1000];
    memset(chunk, ' ', sizeof(chunk));
    int rc = gw_session_receive(&a->s, "{", 1, true, false, false);
    for (int i = 0; i < 70 && rc == 0; i++)
        rc = gw_session_receive(&a->s, chunk, sizeof(chunk), false, false, false);
    /* the close goes through the session's close path: a close frame at the next writeable,
     * while the rest of the message is read and dropped */
    CHECK(rc == 0);
    CHECK(a->close_code == 0);
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = gw_session_receive(&a->s, chunk, 7, false, i == 9, false);
    CHECK(rc == 0);
    h_write(h, a);
    CHECK(a->close_code == 1009);
    CHECK(!a->open);
    /* the same for one frame over the limit */
    a = h_open(h, 1, "bob");
    char *big = malloc(65537);
    memset(big, ' ', 65537);
    CHECK(gw_session_receive(&a->s, big, 65537, true, true, false) == 0);
    free(big);
    h_write(h, a);
    CHECK(a->close_code == 1009);
    CHECK_STR(a->close_reason, "frame too large");
    /* a close decided while a reassembled message is handled (a bad first-frame auth in three
     * fragments): the reason is kept whole until the writeable */
    h_conn *c = h_open(h, 2, NULL);
    const char *bad = "{\"type\":\"auth\",\"token\":\"not-a-token\"}";
    CHECK(gw_session_receive(&c->s, bad, 10, true, false, false) == 0);
    CHECK(gw_session_receive(&c->s, bad + 10, 10, false, false, false) == 0);
    CHECK(gw_session_receive(&c->s, bad + 20, strlen(bad) - 20, false, true, false) == 0);
    h_write(h, c);
    CHECK(c->close_code == 4001);
    CHECK(strncmp(c->close_reason, "authentication failed", 21) == 0);
    /* a close decided by a timer halfway through a fragmented message: the reassembly is
     * dropped, the rest of the message read and dropped, the close frame keeps its reason */
    h_conn *d = h_open(h, 3, NULL);
    CHECK(gw_session_receive(&d->s, bad, 10, true, false, false) == 0);
    gw_session_auth_expired(&d->s);
    CHECK(gw_session_receive(&d->s, bad + 10, 10, false, false, false) == 0);
    CHECK(gw_session_receive(&d->s, "{", 1, true, true, false) == 0);
    h_write(h, d);
    CHECK(d->close_code == 4001);
    CHECK_STR(d->close_reason, "authentication timeout");
    h_free(h);
}

/* Every frame over the rate is answered rate_limited before it is parsed, invalid or not; the
 * first frame of a session that must authenticate keeps its rule (anything but auth: 4001). */
static void test_rate_before_parse(void)
{
    harness *h = h_new(1 << 20, 0);
    h->ctx.cfg.rate = 1;
    h->ctx.cfg.rate_burst = 5;
    gw_rate_spec_init(&h->ctx.frame_rate, 1, 5); /* what gw_sessions_init made of the config */
    h_conn *a = h_open(h, 0, "alice");
    for (int i = 0; i < 20; i++)
        h_frame(h, a, "{");
    CHECK(gw_session_receive(&a->s, "{\"type\"", 8, true, false, false) == 0);
    CHECK(gw_session_receive(&a->s, ":\"ping\"}", 9, false, true, false) == 0);
    CHECK(gw_session_receive(&a->s, "x", 1, true, true, true) == 0); /* binary */
    h_write(h, a);
    size_t invalid = 0, limited = 0, other = 0;
    const char *f;
    while ((f = h_next(a))) {
        json_t *j = json_loads(f, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "code"));
        if (code && strcmp(code, "invalid_json") == 0)
            invalid++;
        else if (code && strcmp(code, "rate_limited") == 0) {
            limited++;
            CHECK(json_object_get(j, "cid") == NULL);
        } else if (strcmp(json_string_value(json_object_get(j, "type")), "welcome") != 0)
            other++;
        json_decref(j);
    }
    CHECK(invalid >= 5 && invalid <= 6);
    CHECK(limited == 22 - invalid);
    CHECK(other == 0);
    CHECK(a->open);
    /* unauthenticated: a bad first frame still closes with 4001, whatever the rate */
    h_conn *b = h_open(h, 1, NULL);
    h_frame(h, b, "{");
    h_write(h, b);
    CHECK(b->close_code == 4001);
    h_free(h);
}

/* Try-write-first: fan-out writes a member whose socket takes it at once, what one batch of
 * records brought it in one write; a choked member waits for its writeable callback; a member
 * closed between the batch and the flush is not written. */
static void test_try_write_first(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob"), *c = h_open(h, 2, "carol");
    a->quiet = true;
    join(h, a, "r", NULL);
    join(h, b, "r", NULL);
    join(h, c, "r", NULL);
    h_write_all(h);
    CHECK(count_of(b, "joined") == 1 && count_of(c, "joined") == 1);
    uint64_t writes = h->ctx.stats.writes, direct = h->ctx.stats.writes_direct;
    for (int i = 0; i < 5; i++)
        h_frame(h, a, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"x\"}");
    h_flush(h); /* no h_write: the messages reach b and c from fan-out itself */
    CHECK(count_of(b, "message") == 5);
    CHECK(count_of(c, "message") == 5);
    CHECK(h->ctx.stats.writes - writes == 2); /* one write each for the batch of 5 */
    CHECK(h->ctx.stats.writes_direct - direct == 2);
    /* a socket that takes nothing now: the frames wait for the writeable callback */
    c->choked = true;
    for (int i = 0; i < 3; i++)
        h_frame(h, a, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"y\"}");
    h_flush(h);
    CHECK(count_of(b, "message") == 3);
    CHECK(count_of(c, "message") == 0);
    c->choked = false;
    h_write(h, c);
    CHECK(count_of(c, "message") == 3);
    /* closed between the batch and its flush */
    h->no_flush = true;
    h_frame(h, a, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"z\"}");
    h_flush(h);
    size_t before = b->nframes;
    h_close(h, b);
    gw_sessions_flush(&h->ctx);
    CHECK(b->nframes == before);
    CHECK(count_of(c, "message") == 1);
    CHECK(!c->s.dirty && h->ctx.ndirty == 0);
    h->no_flush = false;
    h_free(h);
}

/* Kafka refused a send (its delivery report failed) but wrote it, and the client's retry with
 * the same cid was written too: both records arrive once the brokers are back. Fan-out delivers
 * the first and drops the second, and the retry's ack, which came first, waits for fan-out and
 * carries the first one's id. */
static void test_copy_of_a_refused_send(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    join(h, a, "r", NULL);
    join(h, b, "r", NULL);
    h_write_all(h);
    count_of(a, "joined");
    count_of(b, "joined");
    const char *send = "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}";
    h_frame(h, a, send);
    CHECK(h->nproduced == 1);
    chat_envelope first = h->produced_env[0];
    gw_session_on_ack(h->produced[0], NULL, "Local: Message timed out", &h->ctx);
    h->nproduced = 0;
    h_write(h, a);
    json_t *err = next_of(a, "error");
    CHECK(err && strcmp(json_string_value(json_object_get(err, "code")), "unavailable") == 0);
    json_decref(err);
    h_frame(h, a, send); /* the retry: nothing in the log or in flight, so produced again */
    CHECK(h->nproduced == 1);
    int32_t p = op_partition_of(h, "r");
    int64_t off0 = h->next_offset[p]++, off1 = h->next_offset[p]++;
    char id0[CHAT_MSGID_LEN + 1], id1[CHAT_MSGID_LEN + 1];
    chat_msgid_format(id0, p, off0);
    chat_msgid_format(id1, p, off1);
    /* the retry's ack comes before fan-out has read either record: it waits for fan-out */
    gw_session_on_ack(h->produced[0], id1, NULL, &h->ctx);
    h_write(h, a);
    CHECK(count_of(a, "ack") == 0);
    CHECK(h->ctx.acks_waiting != NULL);
    chat_message m;
    memset(&m, 0, sizeof(m));
    m.env = first;
    chat_msgid_format(m.id, p, off0);
    gw_session_on_record(&m, p, off0, &h->ctx);
    chat_envelope_clear(&first);
    m.env = h->produced_env[0];
    chat_msgid_format(m.id, p, off1);
    gw_session_on_record(&m, p, off1, &h->ctx);
    gw_sessions_flush(&h->ctx); /* after the batch: the ack is answered */
    CHECK(h->ctx.acks_waiting == NULL);
    chat_envelope_clear(&h->produced_env[0]);
    h->nproduced = 0;
    h_write_all(h);
    CHECK(h->ctx.stats.copies_dropped == 1);
    json_t *ack = next_of(a, "ack");
    CHECK(ack && strcmp(json_string_value(json_object_get(ack, "id")), id0) == 0);
    json_decref(ack);
    json_t *msg = next_of(b, "message");
    CHECK(msg && strcmp(json_string_value(json_object_get(msg, "id")), id0) == 0);
    json_decref(msg);
    CHECK(count_of(b, "message") == 0);
    /* a later joiner's history holds it once */
    h_conn *c = h_open(h, 2, "carol");
    join(h, c, "r", NULL);
    h_write_all(h);
    json_t *j = next_of(c, "joined");
    CHECK(j && json_array_size(json_object_get(j, "history")) == 1);
    json_decref(j);
    h_free(h);
}

static void test_coalescing(void)
{
    harness *h = h_new(1 << 20, 0);
    h->ctx.cfg.coalesce_ms = 1000;
    h_conn *a = h_open(h, 0, "alice");
    join(h, a, "r", NULL);
    say(h, a, "r", 1, "m"); /* the first after a quiet while wakes the members at once */
    CHECK(h->ctx.wakes == NULL);
    say(h, a, "r", 3, "n"); /* the next ones wait for the tick */
    CHECK(h->ctx.wakes != NULL);
    gw_sessions_wake_due(&h->ctx);
    CHECK(h->ctx.wakes == NULL);
    /* a queued room outlives its members until the tick releases it */
    say(h, a, "r", 1, "o");
    CHECK(h->ctx.wakes != NULL);
    h_close(h, a);
    gw_sessions_wake_due(&h->ctx);
    CHECK(h->ctx.wakes == NULL);
    h_free(h);
}

/* Presence through sessions: joined carries members only when asked (and never from the page
 * cache of a plain join), presence frames reach the connections that asked once a second, a
 * user's second connection adds nothing and leaving with one of two says nothing, members
 * answers for rooms not joined and refuses others' direct rooms. */
static void test_presence(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob"), *a2 = h_open(h, 2, "alice");
    h_conn *c = h_open(h, 3, "carol"), *d = h_open(h, 4, "dave");
    say(h, b, "other", 1, "x");
    join(h, c, "r", NULL); /* a plain join: its answer is cached for the next plain joiner */
    h_write_all(h);
    json_t *j = next_of(c, "joined");
    CHECK(j && !json_object_get(j, "members"));
    json_decref(j);
    join(h, a, "r", "\"presence\":true");
    h_write_all(h);
    j = next_of(a, "joined");
    json_t *m = j ? json_object_get(j, "members") : NULL;
    CHECK(m && json_integer_value(json_object_get(m, "count")) == 2);
    CHECK(m && json_is_false(json_object_get(m, "truncated")));
    json_t *first = json_array_get(json_object_get(m, "users"), 0);
    CHECK_STR(json_string_value(json_object_get(first, "user")), "alice");
    CHECK(json_array_size(json_object_get(m, "users")) == 2);
    json_decref(j);
    size_t records = h->presence_records;
    join(h, b, "r", NULL);
    join(h, a2, "r", NULL); /* alice again: no record */
    h_write_all(h);
    CHECK(h->presence_records == records + 1);
    CHECK(count_of(a, "presence") == 0); /* not before the second */
    h_presence_tick(h, 1000);
    h_write_all(h);
    j = next_of(a, "presence");
    CHECK(j && json_integer_value(json_object_get(j, "count")) == 3);
    CHECK(j && json_array_size(json_object_get(j, "joined")) == 1 &&
          json_array_size(json_object_get(j, "left")) == 0);
    json_decref(j);
    CHECK(count_of(b, "presence") == 0 && count_of(c, "presence") == 0);
    /* alice leaves with one of her two connections: nothing changes */
    h_frame(h, a2, "{\"type\":\"leave\",\"room\":\"r\"}");
    h_presence_tick(h, 1000);
    h_write_all(h);
    CHECK(count_of(a, "presence") == 0 && h->presence_tombstones == 0);
    /* members: a room not joined, and another's direct room */
    h_frame(h, d, "{\"type\":\"members\",\"room\":\"r\"}");
    h_frame(h, d, "{\"type\":\"members\",\"room\":\"dm:x:y\",\"cid\":\"q\"}");
    h_write_all(h);
    j = next_of(d, "members");
    CHECK(j && json_integer_value(json_object_get(j, "count")) == 3);
    json_decref(j);
    j = next_of(d, "error");
    CHECK(j && strcmp(json_string_value(json_object_get(j, "code")), "forbidden") == 0);
    json_decref(j);
    /* a presence join answered from the log while the plain answer is cached */
    join(h, d, "r", "\"presence\":true");
    h_write_all(h);
    j = next_of(d, "joined");
    m = j ? json_object_get(j, "members") : NULL;
    CHECK(m && json_integer_value(json_object_get(m, "count")) == 4);
    json_decref(j);
    /* bob closes: one tombstone, and the watchers hear it */
    h_close(h, b);
    CHECK(h->presence_tombstones == 1);
    h_presence_tick(h, 1000);
    h_write_all(h);
    j = next_of(a, "presence");
    CHECK(j && json_array_size(json_object_get(j, "left")) == 1);
    CHECK(j &&
          strcmp(json_string_value(json_array_get(json_object_get(j, "left"), 0)), "bob") == 0);
    json_decref(j);
    h_free(h);
}

/* Typing goes to the room's other connections (the user's other one included), never to the
 * sender, and is published once; on:true is throttled, on:false is not; not joined: error. */
static void test_typing(void)
{
    harness *h = h_new(1 << 20, 0);
    h->jobs_on = true;
    h_conn *a1 = h_open(h, 0, "alice"), *a2 = h_open(h, 1, "alice"), *b = h_open(h, 2, "bob");
    h_conn *c = h_open(h, 3, "carol");
    for (int i = 0; i < 3; i++) {
        join(h, &h->conns[i], "r", NULL);
        h_jobs(h); /* the joins' read-state lookups */
    }
    h_write_all(h);
    count_of(a1, "joined"), count_of(a2, "joined"), count_of(b, "joined"), count_of(c, "welcome");
    h_frame(h, a1, "{\"type\":\"typing\",\"room\":\"r\",\"on\":true}");
    h_frame(h, a1, "{\"type\":\"typing\",\"room\":\"r\",\"on\":true}"); /* throttled */
    h_frame(h, a1, "{\"type\":\"typing\",\"room\":\"r\",\"on\":false}");
    h_frame(h, c, "{\"type\":\"typing\",\"room\":\"r\",\"on\":true,\"cid\":\"t\"}");
    h_write_all(h);
    json_t *t = next_of(a2, "typing");
    CHECK(t && !strcmp(json_string_value(json_object_get(t, "user")), "alice"));
    CHECK(t && json_is_true(json_object_get(t, "on")));
    json_decref(t);
    t = next_of(b, "typing");
    CHECK(t && json_is_true(json_object_get(t, "on")));
    json_decref(t);
    t = next_of(b, "typing");
    CHECK(t && json_is_false(json_object_get(t, "on")));
    json_decref(t);
    CHECK(count_of(b, "typing") == 0);
    CHECK(count_of(a1, "typing") == 0);
    json_t *e = next_of(c, "error");
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "code")), "not_joined"));
    json_decref(e);
    CHECK(h->npublished == 2);
    CHECK(h->published[0].kind == CHAT_EVENT_TYPING && h->published[0].on);
    CHECK(!strcmp(h->published[0].user, "alice") && !strcmp(h->published[0].room, "r"));
    /* another gateway's event reaches everyone joined here; the throttle holds it within 2 s */
    chat_event ev = {.kind = CHAT_EVENT_TYPING, .on = true, .ts_ms = gw_wall_ms() + 10000};
    strcpy(ev.room, "r");
    strcpy(ev.user, "dave");
    gw_session_on_event(&ev, &h->ctx);
    gw_session_on_event(&ev, &h->ctx);
    h_write_all(h);
    CHECK(count_of(a1, "typing") == 1 && count_of(b, "typing") == 1);
    h_free(h);
}

/* A join waits for its read-state lookup; joined then carries read_upto and unread. A read is
 * a store job; another user's direct room is forbidden; a read event of another gateway reaches
 * the user's connections, and the other user of a direct room gets a receipt. */
static void test_read_state(void)
{
    harness *h = h_new(1 << 20, 0);
    h->jobs_on = true;
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob"), *c = h_open(h, 2, "carol");
    h_write_all(h);
    join(h, a, "r", NULL);
    h_write_all(h);
    CHECK(count_of(a, "joined") == 0); /* waits for the lookup */
    CHECK(h->njobs == 1);
    h_jobs(h);
    h_write_all(h);
    json_t *j = next_of(a, "joined");
    CHECK(j && json_is_null(json_object_get(j, "read_upto")));
    CHECK(j && json_integer_value(json_object_get(j, "unread")) == 0);
    json_decref(j);
    char id[CHAT_MSGID_LEN + 1], buf[256];
    chat_msgid_format(id, h->ctx.ops->partition_of(h->ctx.ops_arg, "dm:alice:bob"), 3);
    snprintf(buf, sizeof(buf), "{\"type\":\"read\",\"room\":\"dm:alice:bob\",\"upto\":\"%s\"}", id);
    h_frame(h, a, buf);
    CHECK(h->njobs == 1);
    h_jobs(h); /* answered without a move: nothing published */
    CHECK(h->npublished == 0);
    h_frame(h, c, buf);
    h_write_all(h);
    json_t *e = next_of(c, "error");
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "code")), "forbidden"));
    json_decref(e);
    /* another room's partition: not an id of this room */
    chat_msgid_format(id, (h->ctx.ops->partition_of(h->ctx.ops_arg, "r") + 1) % H_PARTS, 3);
    snprintf(buf, sizeof(buf), "{\"type\":\"read\",\"room\":\"r\",\"upto\":\"%s\",\"cid\":\"x\"}",
             id);
    h_frame(h, a, buf);
    h_write_all(h);
    e = next_of(a, "error");
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "code")), "invalid_field"));
    json_decref(e);
    chat_event ev = {.kind = CHAT_EVENT_READ, .unread = 4};
    strcpy(ev.room, "dm:alice:bob");
    strcpy(ev.user, "alice");
    strcpy(ev.upto, "0001-00000000000000000009");
    gw_session_on_event(&ev, &h->ctx);
    h_write_all(h);
    j = next_of(a, "read");
    CHECK(j && json_integer_value(json_object_get(j, "unread")) == 4);
    json_decref(j);
    j = next_of(b, "receipt");
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "user")), "alice"));
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "upto")), "0001-00000000000000000009"));
    json_decref(j);
    CHECK(count_of(c, "receipt") == 0 && count_of(c, "read") == 0);
    /* the store down: a read is answered unavailable, a join goes on without the fields */
    h->store_down = true;
    h_frame(h, a, "{\"type\":\"rooms\",\"cid\":\"q\"}");
    join(h, b, "r", NULL);
    h_jobs(h);
    h_write_all(h);
    e = next_of(a, "error");
    CHECK(e && !strcmp(json_string_value(json_object_get(e, "code")), "unavailable"));
    json_decref(e);
    j = next_of(b, "joined");
    CHECK(j && !json_object_get(j, "read_upto"));
    json_decref(j);
    h_free(h);
}

/* CHAT_MAX_USER_CONNS across the cluster: the connections here plus the other gateways' count
 * (from their presence records); one more closes with 4029 and is not counted. */
static void test_max_user_conns(void)
{
    harness *h = h_new(1 << 20, 0);
    h->ctx.cfg.max_user_conns = 3;
    h_conn *a[4];
    for (int i = 0; i < 3; i++)
        a[i] = h_open(h, i, "alice");
    h_write_all(h);
    CHECK(a[2]->open && a[2]->close_code == 0);
    a[3] = h_open(h, 3, "alice");
    h_write_all(h);
    CHECK(a[3]->close_code == 4029);
    h_close(h, a[3]);
    h_close(h, a[2]); /* one fewer: room for one */
    /* but another gateway says alice has one there */
    chat_presence rec = {.kind = CHAT_PRESENCE_CONNS, .incarnation = 5, .conns = 1};
    strcpy(rec.node, "gw-other");
    strcpy(rec.user, "alice");
    char key[CHAT_PRESENCE_KEY_MAX];
    uint8_t *val = NULL;
    size_t vlen = 0;
    int kl = chat_presence_key(&rec, key, sizeof(key));
    CHECK(kl > 0 && chat_presence_encode(&rec, &val, &vlen, NULL, 0) == 0);
    CHECK(gw_presence_on_record(h->ctx.presence, key, (size_t)kl, val, vlen, 0, 0) == 0);
    free(val);
    a[2] = h_open(h, 2, "alice");
    h_write_all(h);
    CHECK(a[2]->close_code == 4029);
    h_close(h, a[2]);
    /* the other gateway's count goes: room again; another user is not affected */
    CHECK(gw_presence_on_record(h->ctx.presence, key, (size_t)kl, NULL, 0, 0, 0) == 0);
    a[2] = h_open(h, 2, "alice");
    h_conn *b = h_open(h, 4, "bob");
    h_write_all(h);
    CHECK(a[2]->open && a[2]->close_code == 0 && b->open && b->close_code == 0);
    /* the counts this gateway writes: alice 3 after the tick */
    size_t records = h->presence_records;
    h_presence_tick(h, 100);
    CHECK(h->presence_records == records + 3); /* alice's and bob's counts, the first heartbeat */
    h_free(h);
}

/* An idle connection keeps no weak handle: one is made for a reply that comes later (a send's
 * delivery report, a join's read state) and dropped at the writeable after the last such reply
 * (docs/internals.md, "Memory per connection"). */
static void test_handle_only_while_needed(void)
{
    harness *h = h_new(1 << 20, 0);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    h_write_all(h);
    CHECK(a->s.handle == NULL && b->s.handle == NULL); /* welcome written: nothing owed */
    join(h, a, "r", NULL);
    join(h, b, "r", NULL);
    h_jobs(h);
    h_write_all(h);
    CHECK(count_of(a, "joined") == 1);
    CHECK(a->s.handle == NULL && b->s.handle == NULL);
    h_frame(h, a, "{\"type\":\"send\",\"room\":\"r\",\"text\":\"hi\",\"cid\":\"c1\"}");
    CHECK(a->s.handle && a->s.handle->refs == 2); /* the delivery report holds the other */
    h_write(h, a);
    CHECK(a->s.handle != NULL); /* still held: not dropped under the report */
    h_flush(h);
    h_write_all(h);
    json_t *k = next_of(a, "ack");
    CHECK(k != NULL);
    json_decref(k);
    CHECK(count_of(b, "message") == 1);
    CHECK(a->s.handle == NULL && b->s.handle == NULL);
    h_free(h);
}

int main(void)
{
    RUN(test_typing);
    RUN(test_read_state);
    RUN(test_try_write_first);
    RUN(test_copy_of_a_refused_send);
    RUN(test_coalescing);
    RUN(test_presence);
    RUN(test_max_user_conns);
    RUN(test_join_is_exact_and_waits_for_fan_out);
    RUN(test_handle_only_while_needed);
    RUN(test_resume);
    RUN(test_resume_from_the_store);
    RUN(test_retries);
    RUN(test_slow_reader);
    RUN(test_join_storm_reads_the_store_once);
    RUN(test_store_down);
    RUN(test_history_pages);
    RUN(test_reassembly);
    RUN(test_rate_before_parse);
    return check_summary();
}
