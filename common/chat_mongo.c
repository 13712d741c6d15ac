/* chat_mongo.c: shared libmongoc set-up (see chat_mongo.h). */
#include "chat_mongo.h"

#include <string.h>

#include "chat_error.h"
#include "chat_log.h"

static void default_int_option(mongoc_uri_t *u, const char *key, int32_t v)
{
    if (!mongoc_uri_has_option(u, key))
        mongoc_uri_set_option_as_int32(u, key, v);
}

mongoc_uri_t *chat_mongo_uri_new(const char *uri, const char *appname, char *err, size_t errlen)
{
    bson_error_t berr;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &berr);
    if (!u) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: %s", berr.message);
        return NULL;
    }
    default_int_option(u, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
    default_int_option(u, MONGOC_URI_SOCKETTIMEOUTMS, 30000);
    default_int_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    if (appname && !mongoc_uri_get_appname(u))
        mongoc_uri_set_appname(u, appname);
    return u;
}

static void driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                       void *data)
{
    enum chat_log_level l;

    (void)data;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        l = CHAT_LOG_ERROR;
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        l = CHAT_LOG_WARN;
        break;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
        l = CHAT_LOG_INFO;
        break;
    default:
        l = CHAT_LOG_DEBUG;
        break;
    }
    if (strstr(message, "endSessions"))
        l = CHAT_LOG_DEBUG; /* FerretDB has no sessions; harmless */
    if (level == MONGOC_LOG_LEVEL_TRACE && !chat_log_enabled(CHAT_LOG_DEBUG))
        return;
    chat_log(l, "mongoc %s: %s", domain ? domain : "", message);
}

void chat_mongo_init(void)
{
    /* libmongoc as Debian builds it has already initialised itself when it was loaded (its
     * counters too: MONGOC_DISABLE_SHM must be in the environment, scripts/cluster.sh);
     * mongoc_init is then a no-op, and is called for builds that do not */
    mongoc_log_set_handler(driver_log, NULL);
    mongoc_init();
}
