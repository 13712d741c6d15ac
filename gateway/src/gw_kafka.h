/* gw_kafka.h: the gateway's two Kafka clients.
 *
 * The producer is idempotent; each produced message's delivery report reaches on_ack exactly
 * once, on the loop thread, with the message id derived from (partition, offset) or with an
 * error. After a fatal producer error the producer is purged (the pending messages fail) and
 * recreated, so the gateway keeps serving.
 * The fan-out consumer assigns every partition of the topic (no group management), starting a
 * bounded number of records before its end, and hands each decoded record to on_record on the
 * loop thread.
 * Both clients signal the loop through file descriptors (librdkafka queue io events) that the
 * caller adopts into libwebsockets; a background thread checks broker reachability for
 * gw_kafka_ready().
 * Threads: gw_kafka_new/free from main; produce/serve_* on the loop thread; ready from any. */
#ifndef GW_KAFKA_H
#define GW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_envelope.h"
#include "chat_metrics.h"

typedef struct gw_kafka gw_kafka;

/* id is NULL on failure, and errstr says why. opaque is what gw_kafka_produce was given. */
typedef void (*gw_kafka_ack_fn)(void *opaque, const char *id, const char *errstr, void *arg);
/* m and its strings live only during the call; (partition, offset) is where Kafka has it. */
typedef void (*gw_kafka_record_fn)(const chat_message *m, int32_t partition, int64_t offset,
                                   void *arg);

typedef struct gw_kafka_config {
    const char *brokers;
    const char *topic;
    const char *node_id;
    const char *persister_group; /* whose committed offsets gw_kafka_committed reads */
    int wait_topic_s;            /* how long gw_kafka_new waits for the topic to exist */
    int warm_records;            /* fan-out starts this many records before each partition's end */
    int linger_ms;               /* the producer's linger.ms */
    void (*wake)(void *);        /* called from a Kafka thread when a sync answer is ready */
    void *wake_arg;
    gw_kafka_ack_fn on_ack;
    gw_kafka_record_fn on_record;
    void *arg;
} gw_kafka_config;

/* Blocking (call before the loop runs): creates both clients, waits for the topic's metadata,
 * assigns all partitions at their end. Returns 0 or CHAT_EINVAL with err. */
int gw_kafka_new(gw_kafka **out, const gw_kafka_config *cfg, char *err, size_t errlen);
/* Stops the background threads (nothing wakes the loop afterwards) and flushes the producer for
 * at most flush_ms, serving its last delivery reports on the calling thread. NULL is a no-op. */
void gw_kafka_stop(gw_kafka *k, int flush_ms);
/* gw_kafka_stop when not done yet, then destroys everything. NULL is a no-op. */
void gw_kafka_free(gw_kafka *k, int flush_ms);

/* The read ends to adopt into the loop; readable means "call the matching serve function". */
int gw_kafka_producer_fd(const gw_kafka *k);
int gw_kafka_consumer_fd(const gw_kafka *k);

/* Queues e (key = room). On 0, on_ack will be called once with opaque. On failure (queue
 * full, producer unusable) returns a negative code with err and never calls on_ack. */
int gw_kafka_produce(gw_kafka *k, const chat_envelope *e, void *opaque, char *err, size_t errlen);

/* Queues one record of another topic (the events topic) on the same producer, fire and forget:
 * no on_ack (a failed delivery is logged and counted by the caller's count). Returns 0, or a
 * negative code with err (queue full, producer unusable). Loop thread. */
int gw_kafka_produce_raw(gw_kafka *k, const char *topic, const char *key, const void *value,
                         size_t len, char *err, size_t errlen);

/* Serves delivery reports and producer errors; recreates the producer after a fatal error. */
void gw_kafka_serve_producer(gw_kafka *k);
/* Hands at most max records to on_record. Returns true when it stopped at max (call again
 * soon), false when the queue is empty. */
bool gw_kafka_serve_consumer(gw_kafka *k, size_t max);

/* Messages produced whose delivery report has not been served yet (on_ack not called): 0 when
 * every client that sent through this gateway has its ack or error. Loop thread. */
int gw_kafka_pending(const gw_kafka *k);
/* True while the broker answered a metadata request for the topic recently. Any thread. */
bool gw_kafka_ready(const gw_kafka *k);
/* True once fan-out has read every partition up to where it ended at start. Loop thread. */
bool gw_kafka_warm(const gw_kafka *k);

/* The topic's partition count, and where fan-out began reading partition p. */
int32_t gw_kafka_partitions(const gw_kafka *k);
int64_t gw_kafka_start_offset(const gw_kafka *k, int32_t p);
/* The stream's generation (docs/protocol.md, "Positions and resume"). Any thread. */
const char *gw_kafka_epoch(const gw_kafka *k);
/* The partition of a room's records. Any thread. */
int32_t gw_kafka_partition_of(const gw_kafka *k, const char *room);
/* "Everything acknowledged so far": a join asks for partition p's end offset as of now
 * (sync_begin returns a ticket); sync_done says whether the answer for that ticket is in, with
 * the end offset (-1 when the broker could not say). A background thread asks the broker, one
 * query per partition for every ticket raised meanwhile, and calls wake when it has answered.
 * Loop thread. */
uint64_t gw_kafka_sync_begin(gw_kafka *k, int32_t p);
bool gw_kafka_sync_done(gw_kafka *k, int32_t p, uint64_t ticket, int64_t *end);

/* Records of partition p that fan-out has not read yet: the high watermark librdkafka last
 * saw (cached, no round trip) minus the next offset to read; -1 when unknown. Loop thread. */
int64_t gw_kafka_lag(gw_kafka *k, int32_t p);
/* Seconds from gw_kafka_produce to the delivery report of each produced message (librdkafka's
 * rd_kafka_message_latency). Loop thread. */
const chat_hist *gw_kafka_produce_latency(const gw_kafka *k);

/* The persister group's committed offset of partition p (every record below it is stored), or
 * -1 when unknown. Blocks up to 3 s: worker threads only. */
int64_t gw_kafka_committed(gw_kafka *k, int32_t p);

#endif
