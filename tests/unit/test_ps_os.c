/* test_ps_os.c: signals are collected synchronously (a blocked SIGTERM is returned by
 * ps_os_wait_signal, once; without one the wait times out after about the given time) and the
 * clock is monotonic. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>

#include "check.h"
#include "ps_os.h"

static void test_signals(void)
{
    sigset_t set;
    int64_t t0, dt;

    CHECK(ps_os_block_signals(&set) == 0);
    CHECK(sigismember(&set, SIGTERM) == 1);
    CHECK(sigismember(&set, SIGINT) == 1);

    t0 = ps_os_now_ms();
    CHECK(ps_os_wait_signal(&set, 0) == 0);
    CHECK(ps_os_wait_signal(&set, 50) == 0);
    dt = ps_os_now_ms() - t0;
    CHECK(dt >= 45 && dt < 1000);

    CHECK(raise(SIGTERM) == 0); /* blocked: stays pending, the process lives */
    CHECK(ps_os_wait_signal(&set, 1000) == SIGTERM);
    CHECK(ps_os_wait_signal(&set, 0) == 0); /* consumed */
    CHECK(raise(SIGINT) == 0);
    CHECK(ps_os_wait_signal(&set, -5) == SIGINT); /* negative timeout: just checks */
    CHECK(raise(SIGPIPE) == 0);                   /* ignored */
}

static void test_clock(void)
{
    int64_t a = ps_os_now_ms(), b = ps_os_now_ms();
    CHECK(a > 0);
    CHECK(b >= a);
}

int main(void)
{
    RUN(test_signals);
    RUN(test_clock);
    return check_summary();
}
