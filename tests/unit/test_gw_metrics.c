/* test_gw_metrics.c: the gateway's /metrics page over sessions driven through the session
 * harness: deliveries count one per member per message, bytes out grow with them, the ack
 * latency histogram counts each ack, error replies are counted by code, a 4008 close by its
 * code, signed-in sessions apart from those waiting for auth; the page is valid text format in
 * shape (HELP and TYPE before every family's samples). */
#include <stdlib.h>

#include "check.h"
#include "gw_metrics.h"
#include "session_harness.h"

static void frame(harness *h, h_conn *c, const char *text)
{
    h_frame(h, c, text);
    h_write_all(h);
}

/* The value of the sample line starting with name (name includes labels), or -1. */
static double value_of(const char *page, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = page; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static char *render(harness *h)
{
    char *page = NULL;
    size_t len = 0;
    CHECK(gw_metrics_render(&h->ctx, &page, &len) == 0);
    CHECK(page && strlen(page) == len);
    return page;
}

static void test_counters(void)
{
    harness *h = h_new(1 << 20, 0);
    gw_metrics_init(&h->ctx.stats);
    h_conn *a = h_open(h, 0, "alice"), *b = h_open(h, 1, "bob");
    h_open(h, 2, NULL); /* waits for its first-frame auth */
    frame(h, a, "{\"type\":\"join\",\"room\":\"r\"}");
    frame(h, b, "{\"type\":\"join\",\"room\":\"r\"}");
    char *page = render(h);
    double bytes0 = value_of(page, "chat_gateway_sent_bytes_total");
    CHECK(value_of(page, "chat_gateway_sessions") == 3);
    CHECK(value_of(page, "chat_gateway_authenticated_sessions") == 2);
    CHECK(value_of(page, "chat_gateway_deliveries_total") == 0);
    free(page);

    for (int i = 0; i < 3; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"send\",\"room\":\"r\",\"text\":\"t%d\",\"cid\":\"c%d\"}", i, i);
        h_frame(h, a, buf);
    }
    h_flush(h);
    h_write_all(h);
    frame(h, a, "{\"type\":\"send\",\"room\":\"elsewhere\",\"text\":\"x\",\"cid\":\"nj\"}");
    frame(h, b, "{\"type\":\"send\",\"room\":\"elsewhere\",\"text\":\"x\",\"cid\":\"nj\"}");
    frame(h, a, "not json");

    size_t errors = 0;
    for (const char *f; (f = h_next(a));)
        errors += strstr(f, "\"type\":\"error\"") != NULL;
    CHECK(errors == 2); /* what the counters below count was sent */
    page = render(h);
    CHECK(value_of(page, "chat_gateway_deliveries_total") == 6); /* 3 messages x 2 members */
    CHECK(value_of(page, "chat_gateway_sent_bytes_total") > bytes0 + 6 * 20);
    CHECK(value_of(page, "chat_gateway_ack_latency_seconds_count") == 3);
    CHECK(value_of(page, "chat_gateway_ack_latency_seconds_bucket{le=\"+Inf\"}") == 3);
    CHECK(value_of(page, "chat_gateway_frames_refused_total{reason=\"not_joined\"}") == 2);
    CHECK(value_of(page, "chat_gateway_frames_refused_total{reason=\"invalid_json\"}") == 1);
    CHECK(value_of(page, "chat_gateway_joins_total") == 2);
    CHECK(value_of(page, "chat_gateway_rooms") == 1);
    /* every family is announced before its samples */
    CHECK(strstr(page, "# HELP chat_gateway_deliveries_total ") != NULL);
    CHECK(strstr(page, "# TYPE chat_gateway_ack_latency_seconds histogram\n") != NULL);
    CHECK(strstr(page, "# TYPE chat_gateway_closes_total counter\n") != NULL);
    free(page);
    h_free(h);

    /* a slow reader: closed with 4008, counted by code (a small room log it falls off) */
    h = h_new(16384, 0);
    gw_metrics_init(&h->ctx.stats);
    a = h_open(h, 0, "alice");
    h_conn *slow = h_open(h, 1, "slow");
    a->quiet = true;
    frame(h, a, "{\"type\":\"join\",\"room\":\"r\"}");
    frame(h, slow, "{\"type\":\"join\",\"room\":\"r\"}");
    slow->choked = true;
    for (int i = 0; i < 300; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"send\",\"room\":\"r\",\"text\":\"n\",\"cid\":\"s%d\"}", i);
        h_frame(h, a, buf);
    }
    h_flush(h);
    slow->choked = false;
    h_write(h, slow);
    h_write(h, slow);
    CHECK(slow->close_code == 4008);
    page = render(h);
    CHECK(value_of(page, "chat_gateway_closes_total{code=\"4008\"}") == 1);
    CHECK(value_of(page, "chat_gateway_slow_reader_closes_total") == 1);
    free(page);
    h_free(h);
}

int main(void)
{
    RUN(test_counters);
    return check_summary();
}
