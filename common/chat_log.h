/* chat_log.h: one-line log records to stderr:
 *   2026-11-25T12:00:00.123Z INFO  gateway[gw-1]: joined room general (alice)
 * The component and level are set once at start (chat_log_init, before threads start);
 * chat_log() may then be called from any thread (one write(2) per line). */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <stdbool.h>

enum chat_log_level { CHAT_LOG_DEBUG, CHAT_LOG_INFO, CHAT_LOG_WARN, CHAT_LOG_ERROR };

/* component: e.g. "gateway[gw-1]" (copied). level: "debug"|"info"|"warn"|"error".
 * Returns 0 or -EINVAL for an unknown level name. */
int chat_log_init(const char *component, const char *level);

/* True when a record of this level would be written (to skip costly formatting). */
bool chat_log_enabled(enum chat_log_level level);

void chat_log(enum chat_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
