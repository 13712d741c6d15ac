/* check.h: the few macros our unit tests use. A test file defines static test functions, runs
 * them with RUN(fn) from main() and ends with `return check_summary();`, which prints
 * "<file>: N checks, N failed" and returns non-zero when any check failed. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

static int check_total, check_failed;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        check_total++;                                                                       \
        if (!(cond)) {                                                                       \
            check_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        check_total++;                                                                       \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                     \
            check_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n",     \
                    __FILE__, __LINE__, #a, check_a_ ? check_a_ : "(null)",                  \
                    check_b_ ? check_b_ : "(null)");                                         \
        }                                                                                    \
    } while (0)

#define RUN(fn)                                                                              \
    do {                                                                                     \
        fprintf(stderr, "-- %s\n", #fn);                                                     \
        fn();                                                                                \
    } while (0)

static inline int check_summary_(const char *file)
{
    fprintf(stderr, "%s: %d checks, %d failed\n", file, check_total, check_failed);
    return check_failed ? 1 : 0;
}
/* expands in the test file, so __FILE__ names it rather than this header */
#define check_summary() check_summary_(__FILE__)

#endif
