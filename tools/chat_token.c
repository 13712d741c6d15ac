/* chat_token.c: the chat-token tool. Mints a JWT for a user and prints it on stdout, e.g. for
 * `wscat -H "Authorization: Bearer $(chat-token --sub alice)"`: HS256 with a shared secret
 * (development), or RS256/ES256 signed with a PEM private key and a kid in the header (what a
 * gateway with CHAT_JWT_JWKS picks the key by). --jwk prints the JSON Web Key of a key's public
 * part instead, to put in the gateway's JWKS file.
 * The secret, issuer and audience default to the gateway's own settings (CHAT_JWT_SECRET,
 * CHAT_JWT_ISSUER, CHAT_JWT_AUDIENCE), so a token minted next to a running local cluster is
 * accepted by it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_jwks.h"
#include "gw_token.h"

#define KEY_FILE_MAX 65536

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chat-token --sub USER [options]\n"
            "       chat-token --jwk --key KEY.pem --kid KID\n"
            "Prints a JWT for USER on stdout: HS256 with a secret, or RS256/ES256 with --key.\n"
            "\n"
            "  --sub USER        user id (the sub claim), required\n"
            "  --name NAME       display name (the name claim)\n"
            "  --ttl SECONDS     lifetime, default 3600\n"
            "  --issuer ISS      iss claim (default: $CHAT_JWT_ISSUER, if set)\n"
            "  --audience AUD    aud claim (default: $CHAT_JWT_AUDIENCE, if set)\n"
            "  --secret SECRET   HS256 secret, at least 16 bytes (default: $CHAT_JWT_SECRET)\n"
            "  --alg ALG         HS256 (default), RS256 or ES256; with --key, the key's type\n"
            "                    decides when --alg is not given\n"
            "  --key FILE        PEM private key (RSA for RS256, EC P-256 for ES256) to sign with\n"
            "  --kid KID         key id put in the token's header (a JWKS finds the key by it)\n"
            "  --jwk             print the JSON Web Key of --key's public part (a private or a\n"
            "                    public PEM key) with --kid, for the gateway's CHAT_JWT_JWKS\n"
            "  --rooms LIST      rooms claim: comma-separated room names or prefixes ending\n"
            "                    in * (at most 64); \"\" for none; omitted: no claim\n"
            "  --role ROLE       role claim; \"server\" opens the server API\n"
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

/* Reads a PEM file into a NUL-terminated buffer. Returns NULL with a message on stderr. */
static unsigned char *read_key(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "chat-token: --key: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, KEY_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n == 0 || n > KEY_FILE_MAX;
    fclose(f);
    if (bad) {
        fprintf(stderr, "chat-token: --key: %s is empty, unreadable or too large\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The key in pem: a private key, or else a public one. NULL when neither. */
static EVP_PKEY *parse_key(const unsigned char *pem, size_t len, int *is_private)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    *is_private = pk != NULL;
    if (!pk && bio) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)len);
        pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    }
    BIO_free(bio);
    ERR_clear_error();
    return pk;
}

static int print_jwk(EVP_PKEY *pk, const char *kid)
{
    char err[256], *json = NULL;
    if (!kid) {
        fprintf(stderr, "chat-token: --jwk needs --kid\n");
        return 2;
    }
    if (gw_jwk_encode(pk, kid, &json, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-token: --jwk: %s\n", err);
        return 1;
    }
    printf("%s\n", json);
    free(json);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sub", required_argument, NULL, 's'},      {"name", required_argument, NULL, 'n'},
        {"ttl", required_argument, NULL, 't'},      {"issuer", required_argument, NULL, 'i'},
        {"audience", required_argument, NULL, 'a'}, {"secret", required_argument, NULL, 'k'},
        {"alg", required_argument, NULL, 'g'},      {"key", required_argument, NULL, 'K'},
        {"kid", required_argument, NULL, 'd'},      {"jwk", no_argument, NULL, 'j'},
        {"rooms", required_argument, NULL, 'r'},    {"role", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    gw_token_claims c = {
        .issuer = getenv("CHAT_JWT_ISSUER"),
        .audience = getenv("CHAT_JWT_AUDIENCE"),
        .ttl_s = 3600,
    };
    const char *secret = getenv("CHAT_JWT_SECRET");
    const char *alg = NULL, *key_file = NULL, *kid = NULL;
    int jwk = 0;
    char err[256], *tok = NULL;
    int opt, rc;

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
        case 'g':
            alg = optarg;
            break;
        case 'K':
            key_file = optarg;
            break;
        case 'd':
            kid = optarg;
            break;
        case 'j':
            jwk = 1;
            break;
        case 'r':
            c.rooms = optarg;
            break;
        case 'o':
            c.role = optarg;
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
    if (alg && strcmp(alg, "HS256") != 0 && strcmp(alg, "RS256") != 0 &&
        strcmp(alg, "ES256") != 0) {
        fprintf(stderr, "chat-token: --alg: HS256, RS256 or ES256\n");
        return 2;
    }

    if (key_file) {
        size_t len = 0;
        int is_private = 0;
        unsigned char *pem = read_key(key_file, &len);
        if (!pem)
            return 2;
        EVP_PKEY *pk = parse_key(pem, len, &is_private);
        if (!pk) {
            fprintf(stderr, "chat-token: --key: %s holds no PEM key\n", key_file);
            free(pem);
            return 2;
        }
        if (jwk) {
            rc = print_jwk(pk, kid);
        } else if (!is_private) {
            fprintf(stderr,
                    "chat-token: --key: %s holds a public key: signing needs the "
                    "private one\n",
                    key_file);
            rc = 2;
        } else if (!c.sub) {
            fprintf(stderr, "chat-token: --sub is required\n");
            rc = 2;
        } else {
            if (!alg)
                alg = EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC ? "ES256" : "RS256";
            rc = gw_token_mint_key(alg, pem, len, kid, &c, time(NULL), &tok, err, sizeof(err));
            if (rc) {
                fprintf(stderr, "chat-token: %s\n", err);
                rc = 1;
            }
        }
        EVP_PKEY_free(pk);
        free(pem);
        if (rc || jwk)
            return rc;
    } else {
        if (jwk) {
            fprintf(stderr, "chat-token: --jwk needs --key\n");
            return 2;
        }
        if (alg && strcmp(alg, "HS256") != 0) {
            fprintf(stderr, "chat-token: --alg %s needs --key (a PEM private key)\n", alg);
            return 2;
        }
        if (kid) {
            fprintf(stderr, "chat-token: --kid goes with --key\n");
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
    }
    printf("%s\n", tok);
    free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}
