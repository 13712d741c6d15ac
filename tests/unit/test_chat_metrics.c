/* test_chat_metrics.c: the Prometheus text helpers: histogram buckets are cumulative with +Inf,
 * _sum and _count; labelled counters stay bounded (later values count as "other") and escape
 * their label values; a table row with an unknown (negative) value keeps its HELP and TYPE
 * only; a page that does not fit is marked full. */
#include <stdlib.h>

#include "chat_metrics.h"
#include "check.h"

static void test_hist(void)
{
    static const double b[] = {0.1, 1};
    chat_hist h;
    chat_prom w;
    chat_hist_init(&h, b, 2);
    chat_hist_observe(&h, 0.05);
    chat_hist_observe(&h, 0.1); /* le is inclusive */
    chat_hist_observe(&h, 0.5);
    chat_hist_observe(&h, 7);
    chat_hist_observe(&h, -1); /* a clock step counts as 0 */
    CHECK(chat_prom_init(&w, 4096) == 0);
    chat_prom_hist(&w, "x_seconds", "Help.", &h);
    CHECK(!w.full);
    CHECK(strstr(w.buf, "# HELP x_seconds Help.\n# TYPE x_seconds histogram\n") == w.buf);
    CHECK(strstr(w.buf, "x_seconds_bucket{le=\"0.1\"} 3\n") != NULL);
    CHECK(strstr(w.buf, "x_seconds_bucket{le=\"1\"} 4\n") != NULL);
    CHECK(strstr(w.buf, "x_seconds_bucket{le=\"+Inf\"} 5\n") != NULL);
    CHECK(strstr(w.buf, "x_seconds_sum 7.65\n") != NULL);
    CHECK(strstr(w.buf, "x_seconds_count 5\n") != NULL);
    chat_prom_free(&w);
}

static void test_labels_and_table(void)
{
    chat_label_counts c = {0};
    chat_prom w;
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        chat_label_counts_add(&c, name, 1);
    }
    chat_label_counts_add(&c, "v0", 2);
    CHECK(c.n == CHAT_LABELS_MAX);
    CHECK(c.count[0] == 3);
    CHECK_STR(c.label[CHAT_LABELS_MAX - 1], "other");
    CHECK(c.count[CHAT_LABELS_MAX - 1] == 100 - (CHAT_LABELS_MAX - 1));
    chat_label_counts q = {0};
    chat_label_counts_add(&q, "a\"b\\c", 1);
    const chat_prom_metric t[] = {{"m_total", "counter", "Things.", 42},
                                  {"lag", "gauge", "Unknown now.", -1}};
    CHECK(chat_prom_init(&w, 8192) == 0);
    chat_prom_labelled(&w, "e_total", "Errors.", "reason", &q);
    chat_prom_table(&w, t, 2);
    CHECK(strstr(w.buf, "e_total{reason=\"a\\\"b\\\\c\"} 1\n") != NULL);
    CHECK(strstr(w.buf, "# TYPE m_total counter\nm_total 42\n") != NULL);
    CHECK(strstr(w.buf, "# TYPE lag gauge\n") != NULL && strstr(w.buf, "\nlag ") == NULL);
    size_t len;
    char *page = chat_prom_take(&w, &len);
    CHECK(page && len == strlen(page) && w.buf == NULL);
    free(page);
    CHECK(chat_prom_init(&w, 64) == 0);
    chat_prom_table(&w, t, 2);
    CHECK(w.full);
    chat_prom_free(&w);
}

int main(void)
{
    RUN(test_hist);
    RUN(test_labels_and_table);
    return check_summary();
}
