/* gw_events.h: the cluster's ephemeral event transport (typing, read state moved): the events
 * topic (CHAT_KAFKA_EVENTS_TOPIC), apart from the message stream. Events are published on the
 * gateway's producer (gw_kafka_produce_raw: fire and forget, no message id) and read by every
 * gateway with its own consumer that assigns every partition at its end when the gateway
 * starts, so nothing old is replayed, and that signals the loop through a file descriptor
 * like the fan-out consumer (drain with timeout 0). An event this gateway published comes back
 * too; it is skipped by its origin (a random instance id), because the publisher already
 * delivered it to its own connections.
 * Threads: new/free from main; publish/serve on the loop thread. */
#ifndef GW_EVENTS_H
#define GW_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "chat_event.h"
#include "gw_kafka.h"

typedef struct gw_events gw_events;

/* e lives only during the call. */
typedef void (*gw_events_fn)(const chat_event *e, void *arg);

typedef struct gw_events_config {
    const char *brokers;
    const char *topic;
    const char *node_id;
    int wait_topic_s; /* how long gw_events_new waits for the topic to exist */
    gw_kafka *kafka;  /* whose producer publishes */
    gw_events_fn on_event;
    void *arg;
} gw_events_config;

/* Blocking (before the loop runs): creates the consumer and assigns every partition at its
 * end. Returns 0 or CHAT_EINVAL with err naming CHAT_KAFKA_EVENTS_TOPIC. */
int gw_events_new(gw_events **out, const gw_events_config *cfg, char *err, size_t errlen);
void gw_events_free(gw_events *ev);

/* The read end to adopt into the loop; readable means "call gw_events_serve". */
int gw_events_fd(const gw_events *ev);
/* Hands at most max events of other gateways to on_event. True when it stopped at max. */
bool gw_events_serve(gw_events *ev, size_t max);

/* Fills e's version, origin and ts_ms, encodes it and queues it (key: the room). Returns 0 or
 * a negative code with err (invalid event, producer queue full). */
int gw_events_publish(gw_events *ev, chat_event *e, char *err, size_t errlen);

/* Counters for /metrics. */
typedef struct gw_events_stats {
    unsigned long long published, publish_failed, received, skipped_own, undecodable;
} gw_events_stats;
gw_events_stats gw_events_get_stats(const gw_events *ev);

#endif
