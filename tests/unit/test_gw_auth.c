/* test_gw_auth.c: JWT verification (gw_auth.c). Tokens are made with libjwt or, for the
 * attacks libjwt will not produce (alg none), by hand. Covers: valid HS256/RS256/ES256 tokens;
 * expiry and not-before with leeway; bad signatures; alg none; algorithms other than the
 * configured one (HS384/HS512 with the right secret, and the RS256 -> HS256 key confusion
 * attack with the public key PEM as the HMAC secret); missing or malformed claims; iss and aud;
 * garbage; and configuration errors naming the setting. RSA and EC keys are generated with
 * OpenSSL into a temporary directory. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_error.h"
#include "gw_b64.h"
#include "check.h"
#include "gw_auth.h"

#define NOW 1764072000L
#define SECRET "0123456789abcdef0123456789abcdef"

/* ---- helpers ------------------------------------------------------------------------------ */

/* A token signed by libjwt with alg over key, carrying the claims in claims_json. malloc'd. */
static char *make_token(jwt_alg_t alg, const void *key, size_t keylen, const char *claims_json)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt))
        return NULL;
    if (jwt_add_grants_json(jwt, claims_json) == 0 &&
        jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    CHECK(tok != NULL);
    return tok;
}

static char *hs256(const char *claims_json)
{
    return make_token(JWT_ALG_HS256, SECRET, strlen(SECRET), claims_json);
}

static void b64url(const char *in, char *out)
{
    gw_b64url_encode(in, strlen(in), out);
}

/* header.payload.sig from plain JSON texts and a literal signature part. */
static void craft(char *out, const char *header, const char *payload, const char *sig)
{
    char h[512], p[512];
    b64url(header, h);
    b64url(payload, p);
    sprintf(out, "%s.%s.%s", h, p, sig);
}

static gw_auth *hs_auth(const char *issuer, const char *audience)
{
    gw_auth *a = NULL;
    char err[256] = "";
    gw_auth_config cfg = {
        .alg = "HS256", .secret = SECRET, .issuer = issuer, .audience = audience, .leeway_s = 30};
    int rc = gw_auth_new(&a, &cfg, err, sizeof(err));
    if (rc)
        fprintf(stderr, "   gw_auth_new: %s\n", err);
    CHECK(rc == 0 && a != NULL);
    return a;
}

/* Verifies at NOW; returns the code, with the reason in err. */
static int verify(const gw_auth *a, const char *tok, gw_identity *id, char *err, size_t errlen)
{
    err[0] = '\0';
    return gw_auth_verify(a, tok, NOW, id, err, errlen);
}

/* A token that must be refused with a reason containing want. */
static void refused(const gw_auth *a, const char *tok, const char *want)
{
    gw_identity id;
    char err[256];
    int rc = verify(a, tok ? tok : "", &id, err, sizeof(err));
    CHECK(rc == CHAT_EAUTH);
    CHECK(id.sub[0] == '\0');
    if (!strstr(err, want)) {
        fprintf(stderr, "   reason \"%s\", expected \"%s\"\n", err, want);
        CHECK(strstr(err, want) != NULL);
    }
}

static void accepted(const gw_auth *a, const char *tok, const char *sub)
{
    gw_identity id;
    char err[256];
    int rc = verify(a, tok ? tok : "", &id, err, sizeof(err));
    if (rc)
        fprintf(stderr, "   refused: %s\n", err);
    CHECK(rc == 0);
    CHECK_STR(id.sub, sub);
}

/* ---- HS256 -------------------------------------------------------------------------------- */

static void test_valid(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    char *tok = hs256("{\"sub\":\"alice\",\"name\":\"Alice A.\",\"exp\":1764075600,"
                      "\"iat\":1764072000}");
    gw_identity id;
    char err[256];
    CHECK(verify(a, tok, &id, err, sizeof(err)) == 0);
    CHECK_STR(id.sub, "alice");
    CHECK_STR(id.name, "Alice A.");
    CHECK(id.exp == 1764075600LL);
    free(tok);

    /* no name: "" */
    tok = hs256("{\"sub\":\"bob\",\"exp\":1764075600}");
    CHECK(verify(a, tok, &id, err, sizeof(err)) == 0);
    CHECK_STR(id.sub, "bob");
    CHECK_STR(id.name, "");
    free(tok);

    /* a long name is cut at CHAT_USER_MAX bytes on a character boundary */
    char claims[1024], name[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(name, "\xc3\xa9"); /* 200 bytes */
    snprintf(claims, sizeof(claims), "{\"sub\":\"c\",\"name\":\"%s\",\"exp\":1764075600}", name);
    tok = hs256(claims);
    CHECK(verify(a, tok, &id, err, sizeof(err)) == 0);
    CHECK(strlen(id.name) == 128);
    CHECK(memcmp(id.name, name, 128) == 0);
    free(tok);

    /* the verifier is reusable and stateless */
    tok = hs256("{\"sub\":\"alice\",\"exp\":1764075600}");
    accepted(a, tok, "alice");
    accepted(a, tok, "alice");
    free(tok);
    gw_auth_free(a);
}

static void test_time_claims(void)
{
    gw_auth *a = hs_auth(NULL, NULL); /* leeway 30 s */
    if (!a)
        return;
    char *tok;

    tok = hs256("{\"sub\":\"a\",\"exp\":1764071000}"); /* 1000 s ago */
    refused(a, tok, "expired");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764071970}"); /* exactly leeway ago */
    refused(a, tok, "expired");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764071990}"); /* 10 s ago: within leeway */
    accepted(a, tok, "a");
    free(tok);

    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"nbf\":1764072600}"); /* in 10 min */
    refused(a, tok, "not yet valid");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"nbf\":1764072020}"); /* in 20 s: leeway */
    accepted(a, tok, "a");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"nbf\":1764071000}");
    accepted(a, tok, "a");
    free(tok);

    tok = hs256("{\"sub\":\"a\",\"exp\":1764175600,\"iat\":1764172000}"); /* a day ahead */
    refused(a, tok, "issued in the future");
    free(tok);

    /* exp is required and must be a number */
    tok = hs256("{\"sub\":\"a\"}");
    refused(a, tok, "no expiry");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":\"1764075600\"}");
    refused(a, tok, "exp is invalid");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"nbf\":true}");
    refused(a, tok, "nbf is invalid");
    free(tok);
    /* a fractional NumericDate is allowed */
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600.5}");
    accepted(a, tok, "a");
    free(tok);
    gw_auth_free(a);
}

static void test_bad_signature(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    const char *other = "another-secret-of-32-bytes-xxxxx";
    char *tok =
        make_token(JWT_ALG_HS256, other, strlen(other), "{\"sub\":\"alice\",\"exp\":1764075600}");
    refused(a, tok, "signature");
    free(tok);

    /* a genuine token with its payload swapped for another user's */
    tok = hs256("{\"sub\":\"alice\",\"exp\":1764075600}");
    char forged[1024], p[256];
    b64url("{\"sub\":\"admin\",\"exp\":1764075600}", p);
    char *dot1 = tok ? strchr(tok, '.') : NULL;
    char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    CHECK(dot2 != NULL);
    if (dot2) {
        snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - tok), tok, p, dot2);
        refused(a, forged, "signature");
        /* the signature cut short, or removed */
        snprintf(forged, sizeof(forged), "%s", tok);
        forged[strlen(forged) - 4] = '\0';
        refused(a, forged, "signature");
        snprintf(forged, sizeof(forged), "%.*s", (int)(dot2 + 1 - tok), tok);
        refused(a, forged, "signature");
    }
    free(tok);
    gw_auth_free(a);
}

static void test_alg_none(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    char tok[1024];
    craft(tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\",\"exp\":1764075600}", "");
    refused(a, tok, "algorithm none not accepted");
    craft(tok, "{\"alg\":\"None\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\",\"exp\":1764075600}", "");
    refused(a, tok, "algorithm None not accepted");
    /* none with a signature part that is someone's valid HS256 MAC over other data */
    craft(tok, "{\"alg\":\"none\"}", "{\"sub\":\"admin\",\"exp\":1764075600}", "abcd");
    refused(a, tok, "not accepted");
    /* no alg at all */
    craft(tok, "{\"typ\":\"JWT\"}", "{\"sub\":\"admin\",\"exp\":1764075600}", "abcd");
    refused(a, tok, "malformed");
    gw_auth_free(a);
}

static void test_other_hmac_algs(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    /* signed with the right secret, but not with the configured algorithm */
    const char *long_secret = SECRET SECRET; /* 64 bytes: libjwt wants >= 512 bits for HS512 */
    char *tok =
        make_token(JWT_ALG_HS512, SECRET, strlen(SECRET), "{\"sub\":\"alice\",\"exp\":1764075600}");
    if (!tok) /* libjwt may refuse short HS512 keys; the secret must still be the same */
        tok = make_token(JWT_ALG_HS512, long_secret, strlen(long_secret),
                         "{\"sub\":\"alice\",\"exp\":1764075600}");
    refused(a, tok, "algorithm HS512 not accepted");
    free(tok);
    tok =
        make_token(JWT_ALG_HS384, SECRET, strlen(SECRET), "{\"sub\":\"alice\",\"exp\":1764075600}");
    refused(a, tok, "algorithm HS384 not accepted");
    free(tok);
    gw_auth_free(a);
}

static void test_claims(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    char *tok;
    tok = hs256("{\"exp\":1764075600}");
    refused(a, tok, "no subject");
    free(tok);
    tok = hs256("{\"sub\":\"\",\"exp\":1764075600}");
    refused(a, tok, "subject is invalid");
    free(tok);
    tok = hs256("{\"sub\":42,\"exp\":1764075600}");
    refused(a, tok, "subject is invalid");
    free(tok);
    tok = hs256("{\"sub\":\"line\\nbreak\",\"exp\":1764075600}");
    refused(a, tok, "subject is invalid");
    free(tok);
    char claims[512], sub[200];
    memset(sub, 'x', 129);
    sub[129] = '\0';
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":1764075600}", sub);
    tok = hs256(claims);
    refused(a, tok, "subject is invalid");
    free(tok);
    sub[128] = '\0'; /* 128 bytes: the maximum */
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":1764075600}", sub);
    tok = hs256(claims);
    accepted(a, tok, sub);
    free(tok);
    /* iss and aud are not checked unless configured */
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"anyone\",\"aud\":\"any\"}");
    accepted(a, tok, "a");
    free(tok);
    gw_auth_free(a);
}

static void test_iss_aud(void)
{
    gw_auth *a = hs_auth("https://id.example", "chat");
    if (!a)
        return;
    char *tok;
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://id.example\","
                "\"aud\":\"chat\"}");
    accepted(a, tok, "a");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://id.example\","
                "\"aud\":[\"billing\",\"chat\"]}");
    accepted(a, tok, "a");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://evil.example\","
                "\"aud\":\"chat\"}");
    refused(a, tok, "issuer");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"aud\":\"chat\"}");
    refused(a, tok, "issuer");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://id.example\","
                "\"aud\":\"billing\"}");
    refused(a, tok, "audience");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://id.example\","
                "\"aud\":[\"billing\",\"chatx\"]}");
    refused(a, tok, "audience");
    free(tok);
    tok = hs256("{\"sub\":\"a\",\"exp\":1764075600,\"iss\":\"https://id.example\"}");
    refused(a, tok, "audience");
    free(tok);
    gw_auth_free(a);
}

static void test_garbage(void)
{
    gw_auth *a = hs_auth(NULL, NULL);
    if (!a)
        return;
    refused(a, "", "missing token");
    refused(a, NULL, "missing token");
    refused(a, "garbage", "malformed");
    refused(a, "a.b", "malformed");
    refused(a, "a.b.c.d", "malformed");
    refused(a, "..", "malformed");
    refused(a, "!!!.???.***", "malformed");
    refused(a, "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "malformed"); /* payload "not json" */
    refused(a, "WzFd.e30.c2ln", "malformed");                         /* header [1] */
    char tok[1024];
    craft(tok, "{\"alg\":\"HS256\"}", "[1,2]", "c2ln");
    refused(a, tok, "malformed");
    craft(tok, "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", "c2ln");
    refused(a, tok, "malformed");
    craft(tok, "{\"alg\":7}", "{}", "c2ln");
    refused(a, tok, "malformed");
    /* very long */
    char *big = malloc(20000);
    if (big) {
        memset(big, 'A', 19999);
        big[19999] = '\0';
        big[100] = '.';
        big[200] = '.';
        refused(a, big, "too long");
        free(big);
    }
    gw_identity id;
    char err[64];
    CHECK(gw_auth_verify(a, "x", NOW, &id, err, sizeof(err)) == CHAT_EAUTH);
    CHECK(gw_auth_verify(a, "x", NOW, &id, NULL, 0) == CHAT_EAUTH); /* no err buffer */
    gw_auth_free(a);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void config_error(const gw_auth_config *cfg, const char *want)
{
    gw_auth *a = (gw_auth *)1;
    char err[256] = "";
    CHECK(gw_auth_new(&a, cfg, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(a == NULL);
    if (!strstr(err, want)) {
        fprintf(stderr, "   error \"%s\", expected \"%s\"\n", err, want);
        CHECK(strstr(err, want) != NULL);
    }
}

static void test_config(const char *dir)
{
    gw_auth_config cfg = {.alg = "HS256", .secret = "short"};
    config_error(&cfg, "CHAT_JWT_SECRET");
    cfg.secret = NULL;
    config_error(&cfg, "CHAT_JWT_SECRET");
    cfg.secret = "0123456789abcde"; /* 15 bytes */
    config_error(&cfg, "CHAT_JWT_SECRET");
    cfg.secret = "0123456789abcdef"; /* 16 bytes */
    gw_auth *a = NULL;
    char err[256];
    CHECK(gw_auth_new(&a, &cfg, err, sizeof(err)) == 0);
    gw_auth_free(a);
    gw_auth_free(NULL);

    cfg.alg = "HS512";
    config_error(&cfg, "CHAT_JWT_ALG");
    cfg.alg = "none";
    config_error(&cfg, "CHAT_JWT_ALG");
    cfg.alg = "HS256";
    cfg.leeway_s = -1;
    config_error(&cfg, "CHAT_JWT_LEEWAY");

    gw_auth_config rs = {.alg = "RS256"};
    config_error(&rs, "CHAT_JWT_PUBLIC_KEY");
    rs.public_key_file = "/nonexistent/key.pem";
    config_error(&rs, "CHAT_JWT_PUBLIC_KEY");
    char path[512];
    snprintf(path, sizeof(path), "%s/garbage.pem", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("not a key\n", f);
        fclose(f);
    }
    rs.public_key_file = path;
    config_error(&rs, "CHAT_JWT_PUBLIC_KEY");
    rs.public_key_file = dir; /* a directory */
    config_error(&rs, "CHAT_JWT_PUBLIC_KEY");
    CHECK(gw_auth_new(&a, NULL, err, sizeof(err)) == CHAT_EINVAL);
}

/* ---- public key algorithms ---------------------------------------------------------------- */

typedef struct keypair {
    char pub_path[512];
    char *pub_pem; /* the file's bytes */
    size_t pub_len;
    char *priv_pem;
    size_t priv_len;
} keypair;

static char *bio_string(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

/* Generates a key pair (RSA 2048 or EC P-256) and writes the public key to dir/name. */
static int make_keypair(const char *dir, const char *name, bool rsa, keypair *kp)
{
    int rc = -1;
    EVP_PKEY *pk = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *pub = BIO_new(BIO_s_mem()), *priv = BIO_new(BIO_s_mem());
    memset(kp, 0, sizeof(*kp));
    if (!pk || !pub || !priv || !PEM_write_bio_PUBKEY(pub, pk) ||
        !PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL))
        goto out;
    kp->pub_pem = bio_string(pub, &kp->pub_len);
    kp->priv_pem = bio_string(priv, &kp->priv_len);
    snprintf(kp->pub_path, sizeof(kp->pub_path), "%s/%s", dir, name);
    FILE *f = fopen(kp->pub_path, "w");
    if (!f || !kp->pub_pem || !kp->priv_pem)
        goto out;
    fwrite(kp->pub_pem, 1, kp->pub_len, f);
    fclose(f);
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(pub);
    BIO_free(priv);
    CHECK(rc == 0);
    return rc;
}

static void free_keypair(keypair *kp)
{
    free(kp->pub_pem);
    free(kp->priv_pem);
    if (kp->pub_path[0])
        unlink(kp->pub_path);
}

static void test_rs256(const char *dir)
{
    keypair kp, other;
    if (make_keypair(dir, "rsa.pem", true, &kp) || make_keypair(dir, "rsa2.pem", true, &other))
        return;
    gw_auth *a = NULL;
    char err[256] = "";
    gw_auth_config cfg = {.alg = "RS256", .public_key_file = kp.pub_path, .leeway_s = 0};
    CHECK(gw_auth_new(&a, &cfg, err, sizeof(err)) == 0);
    if (!a) {
        fprintf(stderr, "   gw_auth_new: %s\n", err);
        goto out;
    }
    const char *claims = "{\"sub\":\"carol\",\"exp\":1764075600}";

    char *tok = make_token(JWT_ALG_RS256, kp.priv_pem, kp.priv_len, claims);
    accepted(a, tok, "carol");
    free(tok);

    /* signed by another key */
    tok = make_token(JWT_ALG_RS256, other.priv_pem, other.priv_len, claims);
    refused(a, tok, "signature");
    free(tok);

    /* the key confusion attack: HS256 with the public key file's bytes as the secret */
    tok = make_token(JWT_ALG_HS256, kp.pub_pem, kp.pub_len, claims);
    refused(a, tok, "algorithm HS256 not accepted");
    free(tok);
    /* and without the trailing newline, in case a verifier trims it */
    tok = make_token(JWT_ALG_HS256, kp.pub_pem, kp.pub_len - 1, claims);
    refused(a, tok, "algorithm HS256 not accepted");
    free(tok);

    /* RS512 by the right key: not the configured algorithm */
    tok = make_token(JWT_ALG_RS512, kp.priv_pem, kp.priv_len, claims);
    refused(a, tok, "algorithm RS512 not accepted");
    free(tok);

    char none[1024];
    craft(none, "{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, "");
    refused(a, none, "algorithm none not accepted");

    /* claims are still checked */
    tok = make_token(JWT_ALG_RS256, kp.priv_pem, kp.priv_len, "{\"sub\":\"carol\",\"exp\":5}");
    refused(a, tok, "expired");
    free(tok);

    /* an RSA key is not an ES256 key */
    gw_auth_config es = {.alg = "ES256", .public_key_file = kp.pub_path};
    config_error(&es, "CHAT_JWT_PUBLIC_KEY");
out:
    gw_auth_free(a);
    free_keypair(&kp);
    free_keypair(&other);
}

static void test_es256(const char *dir)
{
    keypair kp;
    if (make_keypair(dir, "ec.pem", false, &kp))
        return;
    gw_auth *a = NULL;
    char err[256] = "";
    gw_auth_config cfg = {.alg = "ES256", .public_key_file = kp.pub_path};
    CHECK(gw_auth_new(&a, &cfg, err, sizeof(err)) == 0);
    if (!a) {
        fprintf(stderr, "   gw_auth_new: %s\n", err);
        goto out;
    }
    const char *claims = "{\"sub\":\"dave\",\"exp\":1764075600}";
    char *tok = make_token(JWT_ALG_ES256, kp.priv_pem, kp.priv_len, claims);
    accepted(a, tok, "dave");
    free(tok);
    tok = make_token(JWT_ALG_HS256, kp.pub_pem, kp.pub_len, claims);
    refused(a, tok, "algorithm HS256 not accepted");
    free(tok);

    /* an EC key is not an RS256 key */
    gw_auth_config rs = {.alg = "RS256", .public_key_file = kp.pub_path};
    config_error(&rs, "CHAT_JWT_PUBLIC_KEY");
out:
    gw_auth_free(a);
    free_keypair(&kp);
}

int main(void)
{
    char dir[] = "/tmp/test_gw_auth.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_valid);
    RUN(test_time_claims);
    RUN(test_bad_signature);
    RUN(test_alg_none);
    RUN(test_other_hmac_algs);
    RUN(test_claims);
    RUN(test_iss_aud);
    RUN(test_garbage);
    fprintf(stderr, "-- test_config\n");
    test_config(dir);
    fprintf(stderr, "-- test_rs256\n");
    test_rs256(dir);
    fprintf(stderr, "-- test_es256\n");
    test_es256(dir);
    char path[512];
    snprintf(path, sizeof(path), "%s/garbage.pem", dir);
    unlink(path);
    if (rmdir(dir) != 0)
        perror("rmdir");
    return check_summary();
}
