/* gw_auth.c: JWT verification pinned to one configured algorithm (see gw_auth.h).
 *
 * libjwt 1.10 checks the signature and nothing else, and it takes the algorithm from the token
 * itself. So before libjwt sees a token this module checks its shape and reads the header's
 * "alg" itself: "none" and every algorithm other than the configured one are refused with a
 * clear reason (this is what stops an RS256 public key being used as an HS256 secret). After
 * libjwt has verified the signature, the algorithm is compared once more and the claims are
 * checked here: exp (required), nbf, iat, sub (required), iss and aud (when configured).
 * HS256 MACs are also checked here in constant time before libjwt's own (strcmp) check.
 * A PEM public key (CHAT_JWT_PUBLIC_KEY) is read and checked with OpenSSL once, at
 * gw_auth_new(). With a JSON Web Key Set (CHAT_JWT_JWKS, gw_jwks.c) the token's header kid
 * picks the key; the set is read again by gw_auth_reload() when its file changes, so keys can
 * be rotated without a restart. The algorithm stays pinned either way: a JWKS key is only ever
 * used for the configured one. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "gw_auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat_error.h"
#include "gw_access.h"
#include "gw_b64.h"
#include "gw_jwks.h"

#define GW_AUTH_TOKEN_MAX 8192     /* bytes of a compact JWT */
#define GW_AUTH_KEY_FILE_MAX 65536 /* bytes of a PEM public key file */
#define GW_AUTH_SECRET_MIN 16      /* bytes of an HS256 secret */
#define GW_AUTH_IAT_SKEW 300       /* seconds an iat may lie ahead, on top of the leeway */

/* What identifies one version of the JWKS file: a rewrite in place changes the time or size,
 * a replacement by rename changes the inode. */
typedef struct gw_auth_file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool valid;
} gw_auth_file_id;

struct gw_auth {
    jwt_alg_t alg;
    const char *alg_name; /* static */
    unsigned char *key;   /* HS256 secret or PEM public key; NULL with a JWKS */
    size_t key_len;
    gw_jwks *jwks;   /* CHAT_JWT_JWKS: the keys by kid; NULL otherwise */
    char *jwks_path; /* NULL: no JWKS */
    gw_auth_file_id jwks_id;
    char *issuer;   /* NULL: not checked */
    char *audience; /* NULL: not checked */
    long leeway_s;
};

void gw_auth_free(gw_auth *a)
{
    if (!a)
        return;
    if (a->key) {
        memset(a->key, 0, a->key_len);
        free(a->key);
    }
    gw_jwks_free(a->jwks);
    free(a->jwks_path);
    free(a->issuer);
    free(a->audience);
    free(a);
}

static gw_auth_file_id file_id(const char *path)
{
    gw_auth_file_id id;
    struct stat st;
    memset(&id, 0, sizeof(id));
    if (stat(path, &st) == 0) {
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.valid = true;
    }
    return id;
}

static bool same_file(const gw_auth_file_id *a, const gw_auth_file_id *b)
{
    return a->valid == b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads the JWKS file into a new set; the old one stays in force when this fails. */
static int load_jwks(gw_auth *a, char *err, size_t errlen)
{
    gw_auth_file_id before = file_id(a->jwks_path);
    gw_jwks *set = NULL;
    char why[256];
    int rc = gw_jwks_load(&set, a->jwks_path, a->alg_name, why, sizeof(why));
    /* the version read is the one seen before reading: a write during the read is seen as a
     * change by the next check and read again */
    a->jwks_id = before;
    if (rc) {
        chat_errf(err, errlen, "CHAT_JWT_JWKS: %s", why);
        return rc;
    }
    gw_jwks_free(a->jwks);
    a->jwks = set;
    return 0;
}

int gw_auth_reload(gw_auth *a, bool force, char *err, size_t errlen)
{
    if (!a || !a->jwks_path)
        return 0;
    if (!force) {
        gw_auth_file_id now = file_id(a->jwks_path);
        if (same_file(&now, &a->jwks_id))
            return 0;
    }
    int rc = load_jwks(a, err, errlen);
    return rc ? rc : 1;
}

size_t gw_auth_key_count(const gw_auth *a)
{
    return a && a->jwks ? gw_jwks_count(a->jwks) : 0;
}

const char *gw_auth_key_id(const gw_auth *a, size_t i)
{
    return a && a->jwks ? gw_jwks_kid(a->jwks, i) : NULL;
}

/* Reads a whole small file into a malloc'd, NUL-terminated buffer. Returns 0 or -errno. */
static int read_file(const char *path, unsigned char **out, size_t *outlen)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    if (!f)
        return -errno;
    buf = malloc(GW_AUTH_KEY_FILE_MAX + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    n = fread(buf, 1, GW_AUTH_KEY_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        goto out;
    }
    if (n > GW_AUTH_KEY_FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Checks that key holds a PEM public key that suits alg: RSA of 2048 bits or more for RS256,
 * EC on P-256 for ES256. */
static int check_public_key(const gw_auth *a, const char *path, char *err, size_t errlen)
{
    int rc = CHAT_EINVAL;
    EVP_PKEY *pk = NULL;
    BIO *bio = BIO_new_mem_buf(a->key, (int)a->key_len);

    if (!bio) {
        rc = -ENOMEM;
        goto out;
    }
    pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pk) {
        chat_errf(err, errlen, "CHAT_JWT_PUBLIC_KEY: %s holds no PEM public key", path);
        goto out;
    }
    if (a->alg == JWT_ALG_RS256) {
        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
            chat_errf(err, errlen, "CHAT_JWT_PUBLIC_KEY: %s is not an RSA key (RS256)", path);
            goto out;
        }
        if (EVP_PKEY_get_bits(pk) < 2048) {
            chat_errf(err, errlen, "CHAT_JWT_PUBLIC_KEY: %s: RSA key shorter than 2048 bits", path);
            goto out;
        }
    } else {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
            !EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) ||
            strcmp(group, "prime256v1") != 0) {
            chat_errf(err, errlen, "CHAT_JWT_PUBLIC_KEY: %s is not an EC P-256 key (ES256)", path);
            goto out;
        }
    }
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

static int dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int gw_auth_new(gw_auth **out, const gw_auth_config *cfg, char *err, size_t errlen)
{
    gw_auth *a = NULL;
    int rc = CHAT_EINVAL;

    *out = NULL;
    if (!cfg) {
        chat_errf(err, errlen, "no JWT configuration");
        return CHAT_EINVAL;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;

    const char *alg = cfg->alg && *cfg->alg ? cfg->alg : "HS256";
    if (strcmp(alg, "HS256") == 0) {
        a->alg = JWT_ALG_HS256;
        a->alg_name = "HS256";
    } else if (strcmp(alg, "RS256") == 0) {
        a->alg = JWT_ALG_RS256;
        a->alg_name = "RS256";
    } else if (strcmp(alg, "ES256") == 0) {
        a->alg = JWT_ALG_ES256;
        a->alg_name = "ES256";
    } else {
        chat_errf(err, errlen, "CHAT_JWT_ALG: must be HS256, RS256 or ES256");
        goto fail;
    }

    if (cfg->leeway_s < 0 || cfg->leeway_s > 86400) {
        chat_errf(err, errlen, "CHAT_JWT_LEEWAY: must be 0..86400 seconds");
        goto fail;
    }
    a->leeway_s = cfg->leeway_s;

    if (a->alg == JWT_ALG_HS256 && cfg->jwks_file && *cfg->jwks_file) {
        chat_errf(err, errlen, "CHAT_JWT_JWKS: needs CHAT_JWT_ALG RS256 or ES256");
        goto fail;
    }
    if (a->alg == JWT_ALG_HS256) {
        if (!cfg->secret || !*cfg->secret) {
            chat_errf(err, errlen, "CHAT_JWT_SECRET: required when CHAT_JWT_ALG is HS256");
            goto fail;
        }
        size_t n = strlen(cfg->secret);
        if (n < GW_AUTH_SECRET_MIN) {
            chat_errf(err, errlen, "CHAT_JWT_SECRET: must be at least %d bytes",
                      GW_AUTH_SECRET_MIN);
            goto fail;
        }
        a->key = (unsigned char *)strdup(cfg->secret);
        if (!a->key) {
            rc = -ENOMEM;
            goto fail;
        }
        a->key_len = n;
    } else if (cfg->jwks_file && *cfg->jwks_file) {
        if (cfg->public_key_file && *cfg->public_key_file) {
            chat_errf(err, errlen,
                      "CHAT_JWT_JWKS: set either CHAT_JWT_JWKS or CHAT_JWT_PUBLIC_KEY, not both");
            goto fail;
        }
        a->jwks_path = strdup(cfg->jwks_file);
        if (!a->jwks_path) {
            rc = -ENOMEM;
            goto fail;
        }
        rc = load_jwks(a, err, errlen);
        if (rc)
            goto fail;
        rc = CHAT_EINVAL;
    } else {
        const char *path = cfg->public_key_file;
        if (!path || !*path) {
            chat_errf(err, errlen,
                      "CHAT_JWT_PUBLIC_KEY: required (or CHAT_JWT_JWKS) when CHAT_JWT_ALG is %s",
                      a->alg_name);
            goto fail;
        }
        int frc = read_file(path, &a->key, &a->key_len);
        if (frc) {
            chat_errf(err, errlen, "CHAT_JWT_PUBLIC_KEY: cannot read %s: %s", path,
                      frc == -EFBIG ? "file too large" : strerror(-frc));
            goto fail;
        }
        rc = check_public_key(a, path, err, errlen);
        if (rc)
            goto fail;
        rc = CHAT_EINVAL;
    }

    if (dup_opt(&a->issuer, cfg->issuer) || dup_opt(&a->audience, cfg->audience)) {
        rc = -ENOMEM;
        goto fail;
    }
    *out = a;
    return 0;
fail:
    if (rc == -ENOMEM)
        chat_errf(err, errlen, "out of memory");
    gw_auth_free(a);
    return rc;
}

/* ---- token shape and header -------------------------------------------------------------- */

/* Decodes one segment as a JSON object. NULL when it is not one. */
static json_t *segment_json(const char *s, size_t len)
{
    size_t n;
    char *raw = gw_b64url_decode(s, len, &n);
    if (!raw)
        return NULL;
    json_t *j = json_loadb(raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The header alg, shown in a reason only when it is short printable ASCII. */
static void show_alg(const char *alg, char *out, size_t outlen)
{
    size_t n = strlen(alg);
    bool ok = n > 0 && n < outlen;
    for (size_t i = 0; ok && i < n; i++)
        ok = alg[i] > 0x20 && alg[i] < 0x7f && alg[i] != '"' && alg[i] != '\\';
    if (ok)
        memcpy(out, alg, n + 1);
    else
        snprintf(out, outlen, "%s", "(unreadable)");
}

/* HS256 in constant time. libjwt 1.10 compares MACs with strcmp(), whose running time tells
 * an attacker how much of a forged MAC is right; checking here first means libjwt only ever
 * compares a MAC that is already known to be correct. */
static bool hmac_ok(const gw_auth *a, const char *input, size_t len, const char *mac, size_t maclen)
{
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned wantlen = 0;

    if (!HMAC(EVP_sha256(), a->key, (int)a->key_len, (const unsigned char *)input, len, want,
              &wantlen))
        return false;
    return maclen == wantlen && CRYPTO_memcmp(want, mac, wantlen) == 0;
}

/* The key that verifies a token with this header: the configured one, or with a JWKS the
 * key named by the header's kid. NULL (err filled) when the set has no such key. */
static const unsigned char *pick_key(const gw_auth *a, json_t *hdr, size_t *len, char *err,
                                     size_t errlen)
{
    if (!a->jwks) {
        *len = a->key_len;
        return a->key;
    }
    json_t *kid = json_object_get(hdr, "kid");
    if (!kid) {
        chat_errf(err, errlen, "token has no key id (kid)");
        return NULL;
    }
    const unsigned char *pem =
        json_is_string(kid) ? gw_jwks_pem(a->jwks, json_string_value(kid), len) : NULL;
    if (!pem)
        chat_errf(err, errlen, "token key id (kid) unknown");
    return pem;
}

/* Checks the token's shape and its header's alg, picks the key (*key), and for HS256 checks
 * the MAC, before libjwt sees the token. */
static int check_shape(const gw_auth *a, const char *token, const unsigned char **key,
                       size_t *key_len, char *err, size_t errlen)
{
    size_t len = strnlen(token, GW_AUTH_TOKEN_MAX + 1);
    const char *dot1, *dot2;
    json_t *hdr = NULL, *payload = NULL;
    int rc = CHAT_EAUTH;

    if (len == 0) {
        chat_errf(err, errlen, "missing token");
        return CHAT_EAUTH;
    }
    if (len > GW_AUTH_TOKEN_MAX) {
        chat_errf(err, errlen, "token too long");
        return CHAT_EAUTH;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        chat_errf(err, errlen, "malformed token");
        return CHAT_EAUTH;
    }

    hdr = segment_json(token, (size_t)(dot1 - token));
    const char *alg = hdr ? json_string_value(json_object_get(hdr, "alg")) : NULL;
    if (!alg) {
        chat_errf(err, errlen, "malformed token header");
        goto out;
    }
    if (strcmp(alg, a->alg_name) != 0) {
        char shown[16];
        show_alg(alg, shown, sizeof(shown));
        chat_errf(err, errlen, "algorithm %s not accepted", shown);
        goto out;
    }
    *key = pick_key(a, hdr, key_len, err, errlen);
    if (!*key)
        goto out;
    payload = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload) {
        chat_errf(err, errlen, "malformed token claims");
        goto out;
    }
    const char *sig = dot2 + 1;
    size_t siglen = len - (size_t)(sig - token);
    size_t n;
    char *raw = siglen ? gw_b64url_decode(sig, siglen, &n) : NULL;
    if (!raw) {
        chat_errf(err, errlen, "malformed token signature");
        goto out;
    }
    rc = 0;
    if (a->alg == JWT_ALG_HS256 && !hmac_ok(a, token, (size_t)(dot2 - token), raw, n)) {
        chat_errf(err, errlen, "token signature invalid");
        rc = CHAT_EAUTH;
    }
    free(raw);
out:
    json_decref(hdr);
    json_decref(payload);
    return rc;
}

/* ---- claims -------------------------------------------------------------------------------- */

/* A NumericDate claim. Returns 1 when present (value in *v), 0 when absent, -1 when it is
 * not a number. */
static int num_claim(json_t *claims, const char *name, double *v)
{
    json_t *j = json_object_get(claims, name);
    if (!j)
        return 0;
    if (!json_is_number(j))
        return -1;
    *v = json_number_value(j);
    return 1;
}

static bool aud_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *v;
        json_array_foreach(aud, i, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
                return true;
        }
    }
    return false;
}

/* A user id: 1..CHAT_USER_MAX bytes of UTF-8 without control characters. */
bool gw_auth_valid_sub(const char *s, size_t len)
{
    if (len == 0 || len > CHAT_USER_MAX || !chat_valid_utf8_nonul(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Copies a display name without control characters, cut at CHAT_USER_MAX bytes on a
 * character boundary. */
static void copy_name(char *dst, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + n > len || o + n > CHAT_USER_MAX)
            break;
        if (c >= 0x20 && c != 0x7f) {
            memcpy(dst + o, s + i, n);
            o += n;
        }
        i += n;
    }
    dst[o] = '\0';
}

void gw_identity_clear(gw_identity *id)
{
    free(id->rooms);
    memset(id, 0, sizeof(*id));
}

/* The rooms claim, packed (gw_access.h) into *out (malloc'd), or *out NULL when absent.
 * Returns 0 or CHAT_EAUTH with a reason. */
static int rooms_claim(json_t *claims, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(claims, "rooms"), *r;
    size_t i, need = 1;

    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        chat_errf(err, errlen, "token rooms claim is not an array");
        return CHAT_EAUTH;
    }
    if (json_array_size(v) > GW_ACCESS_MAX_PATTERNS) {
        chat_errf(err, errlen, "token rooms claim has more than %d entries",
                  GW_ACCESS_MAX_PATTERNS);
        return CHAT_EAUTH;
    }
    json_array_foreach(v, i, r)
    {
        if (!json_is_string(r) ||
            !gw_access_valid_pattern(json_string_value(r), json_string_length(r)) ||
            strlen(json_string_value(r)) != json_string_length(r)) {
            chat_errf(err, errlen,
                      "token rooms claim entry %zu is not a room name or a prefix ending in *", i);
            return CHAT_EAUTH;
        }
        need += json_string_length(r) + 1;
    }
    char *p = malloc(need);
    if (!p) {
        chat_errf(err, errlen, "out of memory");
        return CHAT_EAUTH;
    }
    *out = p;
    json_array_foreach(v, i, r)
    {
        memcpy(p, json_string_value(r), json_string_length(r) + 1);
        p += json_string_length(r) + 1;
    }
    *p = '\0';
    return 0;
}

static int check_claims(const gw_auth *a, json_t *claims, time_t now, gw_identity *id, char *err,
                        size_t errlen)
{
    double exp, nbf, iat, t = (double)now, leeway = (double)a->leeway_s;
    int has;
    json_t *v;

    has = num_claim(claims, "exp", &exp);
    if (has <= 0) {
        chat_errf(err, errlen, has == 0 ? "token has no expiry (exp)" : "token exp is invalid");
        return CHAT_EAUTH;
    }
    if (t >= exp + leeway) {
        chat_errf(err, errlen, "token expired");
        return CHAT_EAUTH;
    }
    has = num_claim(claims, "nbf", &nbf);
    if (has < 0) {
        chat_errf(err, errlen, "token nbf is invalid");
        return CHAT_EAUTH;
    }
    if (has && t + leeway < nbf) {
        chat_errf(err, errlen, "token not yet valid");
        return CHAT_EAUTH;
    }
    has = num_claim(claims, "iat", &iat);
    if (has < 0) {
        chat_errf(err, errlen, "token iat is invalid");
        return CHAT_EAUTH;
    }
    if (has && iat > t + leeway + GW_AUTH_IAT_SKEW) {
        chat_errf(err, errlen, "token issued in the future");
        return CHAT_EAUTH;
    }

    v = json_object_get(claims, "sub");
    if (!v) {
        chat_errf(err, errlen, "token has no subject (sub)");
        return CHAT_EAUTH;
    }
    if (!json_is_string(v) || !gw_auth_valid_sub(json_string_value(v), json_string_length(v))) {
        chat_errf(err, errlen, "token subject is invalid");
        return CHAT_EAUTH;
    }

    if (a->issuer) {
        v = json_object_get(claims, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), a->issuer) != 0) {
            chat_errf(err, errlen, "token issuer not accepted");
            return CHAT_EAUTH;
        }
    }
    if (a->audience && !aud_matches(json_object_get(claims, "aud"), a->audience)) {
        chat_errf(err, errlen, "token audience not accepted");
        return CHAT_EAUTH;
    }

    v = json_object_get(claims, "role");
    if (v && !json_is_string(v)) {
        chat_errf(err, errlen, "token role is not a string");
        return CHAT_EAUTH;
    }
    id->server = v && strcmp(json_string_value(v), "server") == 0;
    if (rooms_claim(claims, &id->rooms, err, errlen) != 0)
        return CHAT_EAUTH;

    v = json_object_get(claims, "sub");
    memcpy(id->sub, json_string_value(v), json_string_length(v) + 1);
    v = json_object_get(claims, "name");
    if (json_is_string(v))
        copy_name(id->name, json_string_value(v), json_string_length(v));
    id->exp = exp >= 9.0e18 ? INT64_MAX : (long long)exp;
    return 0;
}

int gw_auth_verify(const gw_auth *a, const char *token, time_t now, gw_identity *id, char *err,
                   size_t errlen)
{
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    int rc = CHAT_EAUTH;

    memset(id, 0, sizeof(*id));
    if (!token)
        token = "";
    const unsigned char *key = NULL;
    size_t key_len = 0;
    rc = check_shape(a, token, &key, &key_len, err, errlen);
    if (rc)
        goto out;
    rc = CHAT_EAUTH;

    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || !jwt) {
        jwt = NULL;
        chat_errf(err, errlen, "token signature invalid");
        goto out;
    }
    if (jwt_get_alg(jwt) != a->alg) { /* check_shape saw the same header; belt and braces */
        chat_errf(err, errlen, "algorithm not accepted");
        goto out;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_loads(grants, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(claims)) {
        chat_errf(err, errlen, "malformed token claims");
        goto out;
    }
    rc = check_claims(a, claims, now, id, err, errlen);
out:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    if (rc)
        gw_identity_clear(id);
    return rc;
}
