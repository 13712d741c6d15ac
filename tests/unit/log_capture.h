/* log_capture.h: what a test's log calls write, captured: capture(fn) runs fn with stderr
 * redirected to a temporary file and leaves the output, NUL-terminated, in captured. For the
 * log tests (test_chat_log.c, test_chat_log_json.c). */
#ifndef LOG_CAPTURE_H
#define LOG_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char captured[65536];

static void capture(void (*fn)(void))
{
    char path[] = "/tmp/test_chat_log_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, captured, sizeof(captured) - 1, 0);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

#endif
