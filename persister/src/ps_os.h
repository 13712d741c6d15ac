/* ps_os.h: process plumbing for the persister's executables without global state: SIGINT and
 * SIGTERM are blocked in every thread and collected synchronously with sigtimedwait(), which
 * also serves as an interruptible sleep; and a monotonic clock in ms. Includers need
 * _POSIX_C_SOURCE >= 200809L (for sigset_t). */
#ifndef PS_OS_H
#define PS_OS_H

#include <signal.h>
#include <stdint.h>

/* Blocks SIGINT and SIGTERM (set receives them) and ignores SIGPIPE. Call in main() before
 * any thread starts, so every thread inherits the mask. Returns 0 or -errno. */
int ps_os_block_signals(sigset_t *set);

/* Waits up to timeout_ms (0: just checks) for a signal of set. Returns its number, or 0 when
 * none arrived in time. */
int ps_os_wait_signal(const sigset_t *set, int64_t timeout_ms);

/* Monotonic milliseconds. */
int64_t ps_os_now_ms(void);

#endif
