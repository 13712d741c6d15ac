/* chat_error.h: the one error convention of the project.
 *
 * Functions return 0 on success or a negative code: a negated errno value (-EINVAL, -ENOMEM,
 * -ENOBUFS, ...) for system-like failures, or one of the CHAT_E* codes below. Where a message
 * helps the caller, a function takes `char *err, size_t errlen` and writes one line there. */
#ifndef CHAT_ERROR_H
#define CHAT_ERROR_H

#include <stddef.h>

enum {
    CHAT_EINVAL = -1000, /* input does not satisfy the contract */
    CHAT_EDECODE = -1001, /* bytes could not be decoded */
    CHAT_EVERSION = -1002, /* a format version this build does not know */
    CHAT_EAUTH = -1003, /* authentication failed */
};

/* chat_errf: printf into err (if err != NULL and errlen > 0), always NUL-terminated. */
void chat_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
