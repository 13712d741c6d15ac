/* ps_os.c: signals collected synchronously (no handler, no global flag) and a monotonic
 * clock; see ps_os.h. */
#define _POSIX_C_SOURCE 200809L
#include "ps_os.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int ps_os_block_signals(sigset_t *set)
{
    struct sigaction sa;
    int rc;

    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if ((rc = pthread_sigmask(SIG_BLOCK, set, NULL)) != 0)
        return -rc;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -errno;
    return 0;
}

int ps_os_wait_signal(const sigset_t *set, int64_t timeout_ms)
{
    struct timespec ts;
    int sig;

    if (timeout_ms < 0)
        timeout_ms = 0;
    ts.tv_sec = (time_t)(timeout_ms / 1000);
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    for (;;) {
        sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno == EINTR)
            continue; /* another signal: the remaining time is not tracked; close enough */
        return 0;     /* EAGAIN: timed out */
    }
}

int64_t ps_os_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
