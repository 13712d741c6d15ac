/* chat_kafka.c: shared librdkafka set-up helpers (see chat_kafka.h). */
#include "chat_kafka.h"

#include "chat_error.h"
#include "chat_log.h"

int chat_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                        size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(conf, name, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        chat_errf(err, errlen, "kafka %s=%s: %s", name, value, e);
        return CHAT_EINVAL;
    }
    return 0;
}

void chat_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum chat_log_level l = level <= 3   ? CHAT_LOG_ERROR
                            : level == 4 ? CHAT_LOG_WARN
                            : level <= 6 ? CHAT_LOG_INFO
                                         : CHAT_LOG_DEBUG;
    chat_log(l, "kafka %s: %s", fac, buf);
}
