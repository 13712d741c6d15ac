/* chat_error.c: the one helper of the error convention (chat_error.h): formatting a one-line
 * message into a caller's bounded buffer. */
#include "chat_error.h"

#include <stdarg.h>
#include <stdio.h>

void chat_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, errlen, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
    err[errlen - 1] = '\0';
}
