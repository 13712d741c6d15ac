/* gw_tls.h: the checks of the gateway's own TLS files (CHAT_TLS_CERT, CHAT_TLS_KEY) before
 * libwebsockets loads them, so that a bad file stops the gateway at start with a message that
 * names the setting, rather than lws's generic failure. Any thread; used once at start. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>
#include <time.h>

/* Checks that cert_file holds at least one PEM certificate, valid at now, and key_file an
 * unencrypted PEM private key that belongs to the first certificate. Returns 0, or CHAT_EINVAL
 * with err naming the setting ("CHAT_TLS_KEY: ..."). */
int gw_tls_check_files(const char *cert_file, const char *key_file, time_t now, char *err,
                       size_t errlen);

#endif
