/* test_gw_token.c: minting development tokens (gw_token.c) and the chat-token tool. A minted
 * token must verify with gw_auth under the same secret, issuer and audience, carry the right
 * identity and lifetime, and be refused under another secret. The tool is run from the build
 * tree (../tools/chat-token next to this test's directory). */
#define _POSIX_C_SOURCE 200809L /* popen, setenv, readlink */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chat_error.h"
#include "check.h"
#include "gw_auth.h"
#include "gw_token.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW 1764072000L

static gw_auth *auth(const char *secret, const char *iss, const char *aud)
{
    gw_auth *a = NULL;
    char err[256] = "";
    gw_auth_config cfg = {.alg = "HS256", .secret = secret, .issuer = iss, .audience = aud};
    CHECK(gw_auth_new(&a, &cfg, err, sizeof(err)) == 0);
    return a;
}

static void test_round_trip(void)
{
    gw_token_claims c = {.sub = "alice", .name = "Alice \xc3\x89.", .ttl_s = 3600};
    char *tok = NULL, err[256] = "";
    CHECK(gw_token_mint(SECRET, &c, NOW, &tok, err, sizeof(err)) == 0);
    CHECK(tok != NULL);
    if (!tok)
        return;
    CHECK(strncmp(tok, "eyJ", 3) == 0);
    CHECK(strchr(tok, '\n') == NULL);

    gw_auth *a = auth(SECRET, NULL, NULL);
    gw_identity id;
    if (a) {
        CHECK(gw_auth_verify(a, tok, NOW, &id, err, sizeof(err)) == 0);
        CHECK_STR(id.sub, "alice");
        CHECK_STR(id.name, "Alice \xc3\x89.");
        CHECK(id.exp == NOW + 3600);
        /* valid until exp, expired after */
        CHECK(gw_auth_verify(a, tok, NOW + 3599, &id, err, sizeof(err)) == 0);
        CHECK(gw_auth_verify(a, tok, NOW + 3600, &id, err, sizeof(err)) == CHAT_EAUTH);
        CHECK(strstr(err, "expired") != NULL);
    }
    gw_auth_free(a);

    /* another secret: refused */
    a = auth("a-different-secret-0123456789", NULL, NULL);
    if (a)
        CHECK(gw_auth_verify(a, tok, NOW, &id, err, sizeof(err)) == CHAT_EAUTH);
    gw_auth_free(a);
    free(tok);
}

static void test_iss_aud(void)
{
    gw_token_claims c = {.sub = "bob", .issuer = "dev", .audience = "chat", .ttl_s = 60};
    char *tok = NULL, err[256] = "";
    gw_identity id;
    CHECK(gw_token_mint(SECRET, &c, NOW, &tok, err, sizeof(err)) == 0);
    gw_auth *a = auth(SECRET, "dev", "chat");
    if (a && tok) {
        CHECK(gw_auth_verify(a, tok, NOW, &id, err, sizeof(err)) == 0);
        CHECK_STR(id.sub, "bob");
        CHECK_STR(id.name, "");
    }
    gw_auth_free(a);
    a = auth(SECRET, "prod", NULL);
    if (a && tok)
        CHECK(gw_auth_verify(a, tok, NOW, &id, err, sizeof(err)) == CHAT_EAUTH);
    gw_auth_free(a);
    free(tok);
}

static void mint_fails(const char *secret, const gw_token_claims *c, const char *want)
{
    char *tok = (char *)"unchanged", err[256] = "";
    CHECK(gw_token_mint(secret, c, NOW, &tok, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(tok == NULL);
    if (!strstr(err, want)) {
        fprintf(stderr, "   error \"%s\", expected \"%s\"\n", err, want);
        CHECK(strstr(err, want) != NULL);
    }
}

static void test_errors(void)
{
    gw_token_claims c = {.sub = "alice", .ttl_s = 60};
    mint_fails("short", &c, "secret");
    mint_fails(NULL, &c, "secret");
    c.sub = "";
    mint_fails(SECRET, &c, "sub");
    c.sub = NULL;
    mint_fails(SECRET, &c, "sub");
    c.sub = "bad\xff";
    mint_fails(SECRET, &c, "sub");
    char longsub[200];
    memset(longsub, 'x', 129);
    longsub[129] = '\0';
    c.sub = longsub;
    mint_fails(SECRET, &c, "sub");
    c.sub = "alice";
    c.ttl_s = 0;
    mint_fails(SECRET, &c, "ttl");
    c.ttl_s = -5;
    mint_fails(SECRET, &c, "ttl");
    c.ttl_s = 60;
    c.name = "tab\there";
    mint_fails(SECRET, &c, "name");
    mint_fails(SECRET, NULL, "sub");
}

/* ---- the chat-token tool ------------------------------------------------------------------ */

/* <dir of this test>/../tools/chat-token, as laid out by CMakeLists.txt. */
static int tool_path(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((size_t)snprintf(out, outlen, "%s/../tools/chat-token", self) >= outlen)
        return -1;
    return access(out, X_OK);
}

/* Runs a shell command; returns its exit status and its first stdout line in line. */
static int run(const char *cmd, char *line, size_t linelen)
{
    line[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (fgets(line, (int)linelen, p))
        line[strcspn(line, "\n")] = '\0';
    char sink[256];
    while (fgets(sink, sizeof(sink), p))
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tool(void)
{
    char tool[PATH_MAX + 32], cmd[PATH_MAX + 256], line[4096];
    int found = tool_path(tool, sizeof(tool)) == 0;
    CHECK(found);
    if (!found) {
        fprintf(stderr, "   chat-token not found next to the tests (%s)\n", tool);
        return;
    }
    unsetenv("CHAT_JWT_SECRET");
    unsetenv("CHAT_JWT_ISSUER");
    unsetenv("CHAT_JWT_AUDIENCE");

    snprintf(cmd, sizeof(cmd), "'%s' --help", tool);
    CHECK(run(cmd, line, sizeof(line)) == 0);
    CHECK(strstr(line, "usage") != NULL);

    snprintf(cmd, sizeof(cmd), "'%s' --sub alice 2>/dev/null", tool); /* no secret */
    CHECK(run(cmd, line, sizeof(line)) == 2);
    CHECK_STR(line, "");
    snprintf(cmd, sizeof(cmd), "'%s' --secret %s 2>/dev/null", tool, SECRET); /* no sub */
    CHECK(run(cmd, line, sizeof(line)) == 2);
    snprintf(cmd, sizeof(cmd), "'%s' --sub a --ttl 1x --secret %s 2>/dev/null", tool, SECRET);
    CHECK(run(cmd, line, sizeof(line)) == 2);
    snprintf(cmd, sizeof(cmd), "'%s' --sub a --secret short 2>/dev/null", tool);
    CHECK(run(cmd, line, sizeof(line)) == 1);
    snprintf(cmd, sizeof(cmd), "'%s' --sub a --bogus 2>/dev/null", tool);
    CHECK(run(cmd, line, sizeof(line)) == 2);

    /* the secret from the environment, issuer and audience from flags */
    setenv("CHAT_JWT_SECRET", SECRET, 1);
    snprintf(cmd, sizeof(cmd),
             "'%s' --sub carol --name 'Carol C' --ttl 600 --issuer dev "
             "--audience chat",
             tool);
    CHECK(run(cmd, line, sizeof(line)) == 0);
    unsetenv("CHAT_JWT_SECRET");
    gw_auth *a = auth(SECRET, "dev", "chat");
    gw_identity id;
    char err[256] = "";
    if (a) {
        int rc = gw_auth_verify(a, line, time(NULL), &id, err, sizeof(err));
        if (rc)
            fprintf(stderr, "   tool token refused: %s\n", err);
        CHECK(rc == 0);
        CHECK_STR(id.sub, "carol");
        CHECK_STR(id.name, "Carol C");
        CHECK(id.exp > (long long)time(NULL) + 590 && id.exp <= (long long)time(NULL) + 600);
        CHECK(id.rooms == NULL && !id.server);
    }

    /* --rooms and --role: the claims the gateway reads */
    snprintf(cmd, sizeof(cmd), "'%s' --sub svc --rooms 'general,team-*' --role server --secret %s",
             tool, SECRET);
    CHECK(run(cmd, line, sizeof(line)) == 0);
    if (a) {
        CHECK(gw_auth_verify(a, line, time(NULL), &id, err, sizeof(err)) == CHAT_EAUTH); /* iss */
    }
    gw_auth_free(a);
    a = auth(SECRET, NULL, NULL);
    if (a) {
        CHECK(gw_auth_verify(a, line, time(NULL), &id, err, sizeof(err)) == 0);
        CHECK(id.server);
        CHECK(id.rooms && memcmp(id.rooms, "general\0team-*\0", 16) == 0);
        gw_identity_clear(&id);
    }
    snprintf(cmd, sizeof(cmd), "'%s' --sub u --rooms '' --secret %s", tool, SECRET);
    CHECK(run(cmd, line, sizeof(line)) == 0);
    if (a) {
        CHECK(gw_auth_verify(a, line, time(NULL), &id, err, sizeof(err)) == 0);
        CHECK(id.rooms && id.rooms[0] == '\0'); /* an empty claim: no room */
        gw_identity_clear(&id);
    }
    gw_auth_free(a);
    static const char *const bad[] = {"'bad room'", "'a,,b'", "'a,'", "'x*y'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "'%s' --sub u --rooms %s --secret %s 2>/dev/null", tool, bad[i],
                 SECRET);
        CHECK(run(cmd, line, sizeof(line)) == 1);
        CHECK_STR(line, "");
    }
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_iss_aud);
    RUN(test_errors);
    RUN(test_tool);
    return check_summary();
}
