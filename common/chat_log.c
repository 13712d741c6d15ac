/* chat_log.c: one-line log records to stderr (see chat_log.h). The component name and the
 * minimum level are the only process-wide state of libchatcore: they are set once by
 * chat_log_init() before threads start and only read afterwards. Each record is formatted into
 * a bounded buffer (longer messages are cut and end in "...") and written with one write(2),
 * so lines from different threads never interleave. Control characters in the message are
 * replaced by spaces so a value from a client cannot forge a log line. */
#define _POSIX_C_SOURCE 200809L
#include "chat_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_COMPONENT_MAX 96

static struct {
    char component[LOG_COMPONENT_MAX];
    enum chat_log_level min;
} log_state = {"chat", CHAT_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

int chat_log_init(const char *component, const char *level)
{
    int found = -1;

    if (level) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(level, level_names[i]) == 0)
                found = i;
        if (found < 0)
            return -EINVAL;
    }
    if (component && component[0])
        snprintf(log_state.component, sizeof(log_state.component), "%s", component);
    if (found >= 0)
        log_state.min = (enum chat_log_level)found;
    return 0;
}

bool chat_log_enabled(enum chat_log_level level)
{
    return level >= log_state.min;
}

void chat_log(enum chat_log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n, head;
    va_list ap;
    int r;

    if ((int)level < CHAT_LOG_DEBUG || level > CHAT_LOG_ERROR)
        level = CHAT_LOG_ERROR;
    if (level < log_state.min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    r = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                 level_tags[level], log_state.component);
    if (r < 0)
        return;
    head = (size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1;
    va_start(ap, fmt);
    r = vsnprintf(line + head, sizeof(line) - head, fmt, ap);
    va_end(ap);
    if (r < 0)
        r = 0;
    n = head + (size_t)r;
    if (n > sizeof(line) - 2) { /* cut: keep room for the newline */
        n = sizeof(line) - 2;
        memcpy(line + n - 3, "...", 3);
    }
    for (size_t i = head; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = ' ';
    }
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        off += (size_t)w;
    }
}
