/* chat_persister.c: main() of chat-persister: loads the settings, logs them (no secrets: the
 * MongoDB URI's password is masked), and runs the persister loop (ps_persister.c). */
#define _POSIX_C_SOURCE 200809L /* sigset_t */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>

#include "chat_log.h"
#include "chat_mongo.h"
#include "ps_config.h"
#include "ps_os.h"
#include "ps_persister.h"
#include "ps_store.h"

int main(int argc, char **argv)
{
    ps_settings cfg;
    sigset_t signals;
    char err[512], uri[512];
    int rc;

    if (ps_os_block_signals(&signals) != 0) {
        fprintf(stderr, "chat-persister: cannot block signals\n");
        return 1;
    }
    rc = ps_config_load(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "chat-persister: %s\n", err);
        return 2;
    }
    chat_log_init("persister", cfg.log_level);
    chat_log_set_format(cfg.log_format); /* checked by ps_config_load */
    ps_mask_uri(cfg.mongo_uri, uri, sizeof(uri));
    chat_log(CHAT_LOG_INFO,
             "starting: CHAT_KAFKA_BROKERS=%s CHAT_KAFKA_TOPIC=%s CHAT_KAFKA_GROUP=%s "
             "CHAT_KAFKA_SESSION_MS=%lld CHAT_MONGO_URI=%s (database %s) CHAT_BATCH_SIZE=%lld "
             "CHAT_BATCH_MS=%lld CHAT_SHUTDOWN_MS=%lld CHAT_LOG_LEVEL=%s CHAT_LOG_FORMAT=%s "
             "CHAT_METRICS_LISTEN=%s",
             cfg.kafka_brokers, cfg.kafka_topic, cfg.kafka_group, cfg.kafka_session_ms, uri,
             cfg.mongo_db, cfg.batch_size, cfg.batch_ms, cfg.shutdown_ms, cfg.log_level,
             cfg.log_format, cfg.metrics_listen);
    chat_mongo_init();
    rc = ps_persister_run(&cfg, &signals);
    mongoc_cleanup();
    return rc == 0 ? 0 : 1;
}
