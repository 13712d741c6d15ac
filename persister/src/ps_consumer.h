/* ps_consumer.h: the persister's Kafka side: a consumer-group member of CHAT_KAFKA_GROUP on
 * CHAT_KAFKA_TOPIC that never commits on its own (enable.auto.commit=false,
 * enable.auto.offset.store=false) and starts a new group at the earliest offset. Offsets are
 * committed explicitly, synchronously, after a batch is stored. The eager assignor is used:
 * a rebalance revokes every partition, so on_revoke (called from inside ps_consumer_poll or
 * ps_consumer_close, before the partitions go) lets the owner store and commit or drop its
 * batch; dropped records are re-read from the committed offsets by whoever owns them next.
 * One thread (the persister's loop) uses a ps_consumer. */
#ifndef PS_CONSUMER_H
#define PS_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "ps_batch.h"
#include "ps_config.h"

typedef struct ps_consumer ps_consumer;

typedef void (*ps_consumer_revoke_fn)(void *opaque);

/* Creates the consumer and subscribes to the topic (connecting happens in the background).
 * cfg must outlive the consumer. Returns 0 or CHAT_EINVAL / -ENOMEM with err. */
int ps_consumer_open(ps_consumer **out, const ps_settings *cfg, ps_consumer_revoke_fn on_revoke,
                     void *opaque, char *err, size_t errlen);

/* The next record or error event (caller destroys it with rd_kafka_message_destroy), or NULL
 * after timeout_ms. Rebalances are handled inside. */
rd_kafka_message_t *ps_consumer_poll(ps_consumer *c, int timeout_ms);

/* Synchronously commits the batch's offsets (per partition: last seen + 1). Returns 0, or
 * -EIO with err (nothing is lost: the records are re-read and their inserts are no-ops). */
int ps_consumer_commit(ps_consumer *c, const ps_batch *b, char *err, size_t errlen);

/* Records behind the high watermark over the assigned partitions that have a fetch position,
 * from cached values (no network round trip); -1 when unknown. */
int64_t ps_consumer_lag(ps_consumer *c);

/* The same, and lags[p] for each assigned partition p < nlags that has a position (the others
 * are set to -1). */
int64_t ps_consumer_lags(ps_consumer *c, int64_t *lags, size_t nlags);

/* Number of partitions currently assigned. */
int ps_consumer_assigned(ps_consumer *c);

/* Leaves the group (on_revoke runs first) and frees everything. NULL is fine. */
void ps_consumer_close(ps_consumer *c);

#endif
