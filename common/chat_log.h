/* chat_log.h: one-line log records to stderr, as text (the default)
 *   2026-11-25T12:00:00.123Z INFO  gateway[gw-1]: joined room general (alice)
 * or, with chat_log_set_format("json") (CHAT_LOG_FORMAT=json), one JSON object per line
 *   {"time":"2026-11-25T12:00:00.123Z","level":"info","component":"gateway[gw-1]",
 *    "message":"joined room general (alice)","user":"alice","room":"general"}
 * A JSON line is valid JSON whatever bytes the message or a field holds (control characters
 * escaped, invalid UTF-8 replaced by U+FFFD). Structured fields (chat_log_kv) appear only in
 * JSON lines: a text line shows the message alone, so call sites keep the facts in the message.
 * The component, level and format are set once at start (before threads start); chat_log() and
 * chat_log_kv() may then be called from any thread (one write(2) per line).
 * Never log a token, a secret, an Authorization header or a URI with its password. */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum chat_log_level { CHAT_LOG_DEBUG, CHAT_LOG_INFO, CHAT_LOG_WARN, CHAT_LOG_ERROR };

/* component: e.g. "gateway[gw-1]" (copied). level: "debug"|"info"|"warn"|"error".
 * Returns 0 or -EINVAL for an unknown level name. */
int chat_log_init(const char *component, const char *level);

/* "text" (default) or "json"; NULL keeps the current one. Returns 0 or -EINVAL. */
int chat_log_set_format(const char *format);

/* True when a record of this level would be written (to skip costly formatting). */
bool chat_log_enabled(enum chat_log_level level);

void chat_log(enum chat_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A structured field of a JSON log line: a string (NULL is written as null) or an integer.
 * Keys are the call site's constants (e.g. "user", "room", "code"); a field named like a
 * built-in one (time, level, component, message) is left out. */
typedef struct chat_log_field {
    const char *key;
    const char *str;
    long long num;
    bool is_num;
} chat_log_field;

#define CHAT_LOG_STR(k, v) ((chat_log_field){.key = (k), .str = (v)})
#define CHAT_LOG_INT(k, v) ((chat_log_field){.key = (k), .num = (long long)(v), .is_num = true})
/* The fields argument pair of chat_log_kv:
 *   chat_log_kv(CHAT_LOG_WARN, CHAT_LOG_FIELDS(CHAT_LOG_STR("user", u), CHAT_LOG_INT("code",
 *               4008)), "session %s: too slow", u); */
#define CHAT_LOG_FIELDS(...)                                                                       \
    ((const chat_log_field[]){__VA_ARGS__}),                                                       \
        (sizeof((const chat_log_field[]){__VA_ARGS__}) / sizeof(chat_log_field))

/* chat_log with nfields structured fields (at most 16 are written; values are cut at 256
 * bytes). */
void chat_log_kv(enum chat_log_level level, const chat_log_field *fields, size_t nfields,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Escapes in[0..len) as the inside of a JSON string into out (NUL-terminated; at most cap-1
 * bytes). Never cuts an escape or a UTF-8 sequence: when out is too small it stops at a
 * character boundary. *used (if not NULL) receives how many input bytes were consumed.
 * Returns the bytes written. Exposed for the unit tests. */
size_t chat_log_json_escape(char *out, size_t cap, const char *in, size_t len, size_t *used);

#endif
