/* gw_token.h: minting HS256 development tokens, for the chat-token tool and the gateway's
 * development sign-in endpoint (only when CHAT_DEV_TOKENS is on). Any thread. */
#ifndef GW_TOKEN_H
#define GW_TOKEN_H

#include <stddef.h>
#include <time.h>

typedef struct gw_token_claims {
    const char *sub;      /* required */
    const char *name;     /* optional */
    const char *issuer;   /* optional */
    const char *audience; /* optional */
    long ttl_s;           /* exp = now + ttl_s; > 0 */
} gw_token_claims;

/* *out is a malloc'd NUL-terminated compact JWT owned by the caller (free()).
 * Returns 0, CHAT_EINVAL (bad claims, with err) or -ENOMEM. */
int gw_token_mint(const char *secret, const gw_token_claims *c, time_t now, char **out,
                  char *err, size_t errlen);

#endif
