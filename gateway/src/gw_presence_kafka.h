/* gw_presence_kafka.h: carries the presence table (gw_presence.h) on the compacted presence
 * topic (CHAT_KAFKA_PRESENCE_TOPIC) and runs its clock on the loop. It owns a producer for the
 * table's records (idempotent: the records of one key stay in order) and a consumer that reads
 * every partition of the topic from its beginning: at start, before the gateway listens, up to
 * the end (so a restarted gateway knows the cluster's presence, and tombstones what its earlier
 * run left, before its first client); then, every 100 ms on the loop, what the other gateways
 * wrote. A record read during that first catch-up is as old as its Kafka timestamp says; one
 * read afterwards is fresh.
 * Threads: new/stop/free from main (new blocks), start and everything else on the loop. */
#ifndef GW_PRESENCE_KAFKA_H
#define GW_PRESENCE_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "gw_ctx.h"

#define GW_PRESENCE_TICK_MS 100

/* Creates the clients and the table (ctx->presence), reads the topic up to its end (at most
 * wait_s seconds for the topic to exist). Returns 0 or CHAT_EINVAL with err. */
int gw_presence_kafka_new(gw_presence_kafka **out, gw_ctx *ctx, int wait_s, char *err,
                          size_t errlen);
/* Starts the 100 ms timer (ctx->lws must exist). */
void gw_presence_kafka_start(gw_presence_kafka *k);
/* Shutting down: the table's tombstones (gw_presence_shutdown), then the producer flushed for
 * at most flush_ms. Stops the timer. NULL is a no-op. */
void gw_presence_kafka_stop(gw_presence_kafka *k, int flush_ms);
/* Destroys the clients and the table (ctx->presence = NULL). NULL is a no-op. */
void gw_presence_kafka_free(gw_presence_kafka *k);
/* Records produced that Kafka refused or lost. */
uint64_t gw_presence_kafka_failures(const gw_presence_kafka *k);

#endif
