/* chat_mongo.h: libmongoc set-up shared by the gateway, the persister and chat-admin: a URI
 * parsed with the project's timeouts as defaults, and the driver started with its log lines
 * routed into chat_log. chat_mongo_init from main() before threads start (mongoc_cleanup at the
 * end); chat_mongo_uri_new from any thread. */
#ifndef CHAT_MONGO_H
#define CHAT_MONGO_H

#include <mongoc/mongoc.h>
#include <stddef.h>

/* Parses uri (the caller owns the result: mongoc_uri_destroy) and sets what it leaves unset:
 * connect 5 s, socket 30 s, server selection 5 s, and appname. NULL with err naming
 * CHAT_MONGO_URI when it does not parse. */
mongoc_uri_t *chat_mongo_uri_new(const char *uri, const char *appname, char *err, size_t errlen);

/* Sends libmongoc's log lines to chat_log at the matching level (trace only when debug), then
 * mongoc_init. */
void chat_mongo_init(void);

#endif
