/* chat_token.c: the chat-token tool. Mints an HS256 development JWT for a user and prints it
 * on stdout, e.g. for `wscat -H "Authorization: Bearer $(chat-token --sub alice)"`.
 * The secret, issuer and audience default to the gateway's own settings (CHAT_JWT_SECRET,
 * CHAT_JWT_ISSUER, CHAT_JWT_AUDIENCE), so a token minted next to a running local cluster is
 * accepted by it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gw_token.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: chat-token --sub USER [options]\n"
               "Prints an HS256 JWT for USER on stdout.\n"
               "\n"
               "  --sub USER        user id (the sub claim), required\n"
               "  --name NAME       display name (the name claim)\n"
               "  --ttl SECONDS     lifetime, default 3600\n"
               "  --issuer ISS      iss claim (default: $CHAT_JWT_ISSUER, if set)\n"
               "  --audience AUD    aud claim (default: $CHAT_JWT_AUDIENCE, if set)\n"
               "  --secret SECRET   HS256 secret, at least 16 bytes (default: $CHAT_JWT_SECRET)\n"
               "  --help            this text\n");
}

/* Parses a TTL in seconds: 1..LONG_MAX, digits only. */
static int parse_ttl(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sub", required_argument, NULL, 's'},      {"name", required_argument, NULL, 'n'},
        {"ttl", required_argument, NULL, 't'},      {"issuer", required_argument, NULL, 'i'},
        {"audience", required_argument, NULL, 'a'}, {"secret", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    gw_token_claims c = {
        .issuer = getenv("CHAT_JWT_ISSUER"),
        .audience = getenv("CHAT_JWT_AUDIENCE"),
        .ttl_s = 3600,
    };
    const char *secret = getenv("CHAT_JWT_SECRET");
    char err[256], *tok = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            c.sub = optarg;
            break;
        case 'n':
            c.name = optarg;
            break;
        case 't':
            if (parse_ttl(optarg, &c.ttl_s)) {
                fprintf(stderr, "chat-token: --ttl: expected a positive number of seconds\n");
                return 2;
            }
            break;
        case 'i':
            c.issuer = optarg;
            break;
        case 'a':
            c.audience = optarg;
            break;
        case 'k':
            secret = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chat-token: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!c.sub) {
        fprintf(stderr, "chat-token: --sub is required\n");
        usage(stderr);
        return 2;
    }
    if (!secret || !*secret) {
        fprintf(stderr, "chat-token: no secret: pass --secret or set CHAT_JWT_SECRET\n");
        return 2;
    }
    if (gw_token_mint(secret, &c, time(NULL), &tok, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-token: %s\n", err);
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}
