/* gw_metrics.c: the gateway's /metrics page (see gw_metrics.h). Adding a plain counter or
 * gauge is one row of the table in gw_metrics_render. */
#include "gw_metrics.h"

#include <errno.h>
#include <stdio.h>

#include "gw_events.h"
#include "gw_kafka.h"
#include "gw_log.h"
#include "gw_presence.h"
#include "gw_presence_kafka.h"
#include "gw_rooms.h"
#include "gw_store.h"

void gw_metrics_init(gw_stats *st)
{
    chat_hist_init(&st->ack_latency, chat_hist_latency_bounds, chat_hist_latency_nbounds);
    chat_hist_init(&st->store_read_latency, chat_hist_latency_bounds, chat_hist_latency_nbounds);
}

void gw_metrics_close(gw_stats *st, int code)
{
    char c[16];
    snprintf(c, sizeof(c), "%d", code);
    chat_label_counts_add(&st->closes, c, 1);
}

#define G "chat_gateway_"

int gw_metrics_render(gw_ctx *ctx, char **body, size_t *len)
{
    const gw_stats *st = &ctx->stats;
    unsigned long long authed = 0;
    for (const gw_session *s = ctx->sessions; s; s = s->next)
        authed += s->state == GW_S_READY;
    gw_presence_stats ps = {0};
    if (ctx->presence)
        gw_presence_get_stats(ctx->presence, &ps);
    const chat_prom_metric m[] = {
        {G "sessions", "gauge", "Open WebSocket sessions.", (double)st->sessions_open},
        {G "authenticated_sessions", "gauge", "Open WebSocket sessions signed in.", (double)authed},
        {G "connections_total", "counter", "WebSocket sessions opened.", (double)st->connections},
        {G "frames_received_total", "counter", "Client frames received.", (double)st->frames_in},
        {G "frames_sent_total", "counter", "Frames written to clients (replies and messages).",
         (double)st->messages_out},
        {G "deliveries_total", "counter", "Room messages written to members.",
         (double)st->deliveries},
        {G "sent_bytes_total", "counter", "Bytes of WebSocket frames written to clients.",
         (double)st->bytes_out},
        {G "writes_total", "counter", "Writes to client sockets (several frames each under load).",
         (double)st->writes},
        {G "writes_direct_total", "counter",
         "Members written at once by fan-out, without a writeable callback (try-write-first).",
         (double)st->writes_direct},
        {G "copies_dropped_total", "counter",
         "Records dropped as a second copy of one send (same room, sender and cid).",
         (double)st->copies_dropped},
        {G "messages_produced_total", "counter", "Sends produced to Kafka.", (double)st->produced},
        {G "messages_acked_total", "counter", "Sends acknowledged by Kafka.", (double)st->acked},
        {G "produce_failures_total", "counter", "Sends Kafka refused or lost.",
         (double)st->produce_failed},
        {G "records_read_total", "counter", "Records read by fan-out.", (double)st->fanout_records},
        {G "slow_reader_closes_total", "counter", "Sessions closed with 4008.",
         (double)st->dropped_slow},
        {G "joins_total", "counter", "Joins, resumes included.", (double)st->joins},
        {G "joins_from_log_total", "counter", "Joins answered from memory.",
         (double)st->joins_from_log},
        {G "store_reads_total", "counter", "Reads sent to the store.", (double)st->store_reads},
        {G "store_read_waiters_total", "counter",
         "Joins that waited for a read under way (single-flight hits).", (double)st->store_waiters},
        {G "resumes_total", "counter", "Joins with since.", (double)st->resumes},
        {G "resumes_recovered_total", "counter", "Resumes answered recovered:true.",
         (double)st->resumes_recovered},
        {G "retries_deduplicated_total", "counter",
         "Sends answered with the id of an earlier send with the same cid.",
         (double)st->retries_deduplicated},
        {G "inexact_store_reads_total", "counter", "Store reads not proven complete.",
         (double)st->inexact_reads},
        {G "direct_room_joins_total", "counter",
         "Connections joined to a direct room by its first message to them.", (double)st->dm_joins},
        {G "room_log_bytes", "gauge", "Bytes held by the room logs.",
         ctx->log ? (double)gw_log_bytes(ctx->log) : 0},
        {G "room_log_entries", "gauge", "Messages held by the room logs.",
         ctx->log ? (double)gw_log_entries(ctx->log) : 0},
        {G "room_log_evicted_total", "counter", "Messages dropped from the room logs.",
         ctx->log ? (double)gw_log_evicted(ctx->log) : 0},
        {G "rooms", "gauge", "Rooms with local members.",
         ctx->rooms ? (double)gw_rooms_room_count(ctx->rooms) : 0},
        {G "store_queued", "gauge", "Store reads waiting for a worker.",
         ctx->store ? (double)gw_store_queued(ctx->store) : 0},
        {G "presence_entries", "gauge", "(room, user) presence entries known, cluster-wide.",
         (double)ps.entries},
        {G "presence_users", "gauge", "Users with connection counts known, cluster-wide.",
         (double)ps.users},
        {G "presence_gateways", "gauge", "Gateway runs known to presence, this one included.",
         (double)ps.nodes},
        {G "presence_records_written_total", "counter", "Presence records produced.",
         (double)ps.records_out},
        {G "presence_records_read_total", "counter", "Presence records read.",
         (double)ps.records_in},
        {G "presence_records_refused_total", "counter", "Presence records refused on decode.",
         (double)ps.bad_records},
        {G "presence_entries_dropped_total", "counter",
         "Presence entries not kept (CHAT_PRESENCE_MAX_ENTRIES or 64 gateway runs reached).",
         (double)ps.dropped},
        {G "presence_frames_total", "counter", "Presence frames built (one per room and second).",
         (double)ps.frames},
        {G "presence_gateways_dead_total", "counter", "Gateway runs whose heartbeats stopped.",
         (double)ps.nodes_dead},
        {G "presence_write_failures_total", "counter", "Presence records Kafka refused or lost.",
         (double)gw_presence_kafka_failures(ctx->presence_kafka)},
        {G "typing_forwarded_total", "counter", "Typing frames of local clients forwarded.",
         (double)st->typing_forwarded},
        {G "typing_throttled_total", "counter",
         "Typing on:true frames of local clients held by the 2 s gate.",
         (double)st->typing_throttled},
        {G "reads_moved_total", "counter", "Read frames that moved the read state forward.",
         (double)st->reads_moved},
        {G "reads_unmoved_total", "counter", "Read frames not newer than the stored state.",
         (double)st->reads_unmoved},
        {G "events_published_total", "counter", "Events published to the events topic.",
         ctx->events ? (double)gw_events_get_stats(ctx->events).published : 0},
        {G "events_publish_failures_total", "counter", "Events the producer refused.",
         ctx->events ? (double)gw_events_get_stats(ctx->events).publish_failed : 0},
        {G "events_received_total", "counter", "Events of other gateways delivered here.",
         ctx->events ? (double)gw_events_get_stats(ctx->events).received : 0},
    };
    chat_prom w;
    if (chat_prom_init(&w, GW_METRICS_MAX) != 0)
        return -ENOMEM;
    chat_prom_table(&w, m, sizeof(m) / sizeof(m[0]));
    chat_prom_labelled(&w, G "frames_refused_total", "Error replies sent, by error code.", "reason",
                       &st->refused);
    chat_prom_labelled(&w, G "closes_total", "Sessions the gateway closed, by close code.", "code",
                       &st->closes);
    chat_prom_labelled(&w, G "peer_closes_total", "Close frames received from clients, by code.",
                       "code", &st->peer_closes);
    chat_prom_labelled(&w, G "upgrades_refused_total",
                       "WebSocket upgrades answered with an error, by reason.", "reason",
                       &st->upgrades_refused);
    chat_prom_hist(&w, G "ack_latency_seconds",
                   "From a send frame's arrival to its ack being queued to the client.",
                   &st->ack_latency);
    if (ctx->kafka)
        chat_prom_hist(&w, G "produce_latency_seconds",
                       "From producing a message to Kafka's delivery report.",
                       gw_kafka_produce_latency(ctx->kafka));
    chat_prom_hist(&w, G "store_read_latency_seconds", "One MongoDB history read.",
                   &st->store_read_latency);
    if (ctx->kafka) {
        chat_prom_head(&w, G "consumer_lag_records", "gauge",
                       "Records of a partition that fan-out has not read yet (from the last "
                       "high watermark seen).");
        for (int32_t p = 0; p < gw_kafka_partitions(ctx->kafka); p++) {
            int64_t lag = gw_kafka_lag(ctx->kafka, p);
            char pl[16];
            snprintf(pl, sizeof(pl), "%d", (int)p);
            if (lag >= 0)
                chat_prom_sample(&w, G "consumer_lag_records", "partition", pl, (double)lag);
        }
    }
    if (w.full) {
        chat_prom_free(&w);
        return -E2BIG;
    }
    *body = chat_prom_take(&w, len);
    return 0;
}
