/* test_chat_config.c: the settings table loader: defaults, environment, flags overriding the
 * environment, --x=y, bounds, booleans, unknown flags, missing required values, --help. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chat_config.h"
#include "chat_error.h"
#include "check.h"

struct settings {
    const char *listen;
    const char *issuer;
    long long max_text;
    bool verbose;
    long long port; /* required */
};

static const chat_cfg_entry table[] = {
    {"CHAT_LISTEN", CHAT_CFG_STR, "0.0.0.0:8081", 0, 0, offsetof(struct settings, listen),
     "address to listen on"},
    {"CHAT_JWT_ISSUER", CHAT_CFG_STR, NULL, 0, 0, offsetof(struct settings, issuer),
     "required iss claim"},
    {"CHAT_MAX_TEXT", CHAT_CFG_INT, "4096", 1, 65536, offsetof(struct settings, max_text),
     "longest text in bytes"},
    {"CHAT_VERBOSE", CHAT_CFG_BOOL, "false", 0, 0, offsetof(struct settings, verbose), "talk more"},
    {"CHAT_TEST_PORT", CHAT_CFG_INT, NULL, 1, 65535, offsetof(struct settings, port), "a port"},
};
#define N (sizeof(table) / sizeof(table[0]))

static void clear_env(void)
{
    for (size_t i = 0; i < N; i++)
        unsetenv(table[i].env);
}

static int load(struct settings *s, char *err, size_t errlen, int argc, char **argv)
{
    memset(s, 0xAB, sizeof(*s));
    err[0] = '\0';
    return chat_config_load(table, N, s, argc, argv, "usage: test [options]", err, errlen);
}

#define ARGV(...)                                                                                  \
    (char *[])                                                                                     \
    {                                                                                              \
        "prog", __VA_ARGS__, NULL                                                                  \
    }
#define ARGC(...) ((int)(sizeof((char *[]){"prog", __VA_ARGS__}) / sizeof(char *)))
#define LOAD(s, ...) load((s), err, sizeof(err), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_defaults(void)
{
    struct settings s;
    char err[256];
    char *argv[] = {"prog", NULL};

    clear_env();
    setenv("CHAT_TEST_PORT", "80", 1);
    CHECK(load(&s, err, sizeof(err), 1, argv) == 0);
    CHECK_STR(s.listen, "0.0.0.0:8081");
    CHECK(s.issuer == NULL);
    CHECK(s.max_text == 4096);
    CHECK(s.verbose == false);
    CHECK(s.port == 80);
}

static void test_env_and_flags(void)
{
    struct settings s;
    char err[256];

    clear_env();
    setenv("CHAT_TEST_PORT", "80", 1);
    setenv("CHAT_LISTEN", "127.0.0.1:9000", 1);
    setenv("CHAT_MAX_TEXT", "100", 1);
    setenv("CHAT_VERBOSE", "yes", 1);
    setenv("CHAT_JWT_ISSUER", "", 1); /* empty counts as unset */
    CHECK(LOAD(&s, "--test-port", "81") == 0);
    CHECK_STR(s.listen, "127.0.0.1:9000");
    CHECK(s.max_text == 100);
    CHECK(s.verbose == true);
    CHECK(s.issuer == NULL);
    CHECK(s.port == 81);

    /* flags override the environment, both forms */
    CHECK(LOAD(&s, "--listen", "[::1]:1", "--max-text=200", "--verbose=off", "--jwt-issuer=me") ==
          0);
    CHECK_STR(s.listen, "[::1]:1");
    CHECK(s.max_text == 200);
    CHECK(s.verbose == false);
    CHECK_STR(s.issuer, "me");
    /* a later flag wins; a bare bool flag means true; --x= gives "" for a string */
    CHECK(LOAD(&s, "--max-text", "5", "--max-text", "6", "--verbose", "--listen=") == 0);
    CHECK(s.max_text == 6);
    CHECK(s.verbose == true);
    CHECK_STR(s.listen, "");
}

static void test_bool_forms(void)
{
    static const char *const t[] = {"1", "true", "TRUE", "yes", "on", "On"};
    static const char *const f[] = {"0", "false", "no", "off", "OFF"};
    struct settings s;
    char err[256];

    clear_env();
    setenv("CHAT_TEST_PORT", "80", 1);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        setenv("CHAT_VERBOSE", t[i], 1);
        CHECK(LOAD(&s, "--listen", "x") == 0 && s.verbose == true);
    }
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        setenv("CHAT_VERBOSE", f[i], 1);
        CHECK(LOAD(&s, "--listen", "x") == 0 && s.verbose == false);
    }
    setenv("CHAT_VERBOSE", "maybe", 1);
    CHECK(LOAD(&s, "--listen", "x") == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_VERBOSE: 'maybe' is not a boolean", 38) == 0);
    unsetenv("CHAT_VERBOSE");
    CHECK(LOAD(&s, "--verbose=2") == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_VERBOSE") == err);
}

static void test_int_errors(void)
{
    struct settings s;
    char err[256];

    clear_env();
    setenv("CHAT_TEST_PORT", "80", 1);
    setenv("CHAT_MAX_TEXT", "0", 1);
    CHECK(LOAD(&s, "--listen", "x") == CHAT_EINVAL);
    CHECK_STR(err, "CHAT_MAX_TEXT: 0 is below the minimum 1");
    CHECK(LOAD(&s, "--max-text", "65537") == CHAT_EINVAL); /* the env error comes first */
    unsetenv("CHAT_MAX_TEXT");
    CHECK(LOAD(&s, "--max-text", "65537") == CHAT_EINVAL);
    CHECK_STR(err, "CHAT_MAX_TEXT: 65537 is above the maximum 65536");
    CHECK(LOAD(&s, "--max-text", "65536") == 0 && s.max_text == 65536);
    CHECK(LOAD(&s, "--max-text", "1") == 0 && s.max_text == 1);
    CHECK(LOAD(&s, "--max-text", "12abc") == CHAT_EINVAL);
    CHECK_STR(err, "CHAT_MAX_TEXT: '12abc' is not an integer");
    CHECK(LOAD(&s, "--max-text=") == CHAT_EINVAL);
    CHECK(LOAD(&s, "--max-text", " 5") == CHAT_EINVAL);
    CHECK(LOAD(&s, "--max-text", "99999999999999999999999") == CHAT_EINVAL);
    CHECK(strstr(err, "above the maximum") != NULL);
    CHECK(LOAD(&s, "--max-text", "-99999999999999999999999") == CHAT_EINVAL);
    CHECK(strstr(err, "below the minimum") != NULL);
    CHECK(LOAD(&s, "--max-text", "-3") == CHAT_EINVAL);
    CHECK_STR(err, "CHAT_MAX_TEXT: -3 is below the minimum 1");
}

static void test_bad_args(void)
{
    struct settings s;
    char err[256];

    clear_env();
    setenv("CHAT_TEST_PORT", "80", 1);
    CHECK(LOAD(&s, "--no-such-flag", "1") == CHAT_EINVAL);
    CHECK(strstr(err, "unknown option --no-such-flag") != NULL);
    CHECK(LOAD(&s, "--no-such=1") == CHAT_EINVAL);
    CHECK(strstr(err, "unknown option --no-such") != NULL);
    CHECK(LOAD(&s, "stray") == CHAT_EINVAL);
    CHECK(strstr(err, "stray") != NULL);
    CHECK(LOAD(&s, "-x") == CHAT_EINVAL);
    CHECK(LOAD(&s, "--") == CHAT_EINVAL);
    CHECK(LOAD(&s, "--listen") == CHAT_EINVAL); /* missing value */
    CHECK(strstr(err, "CHAT_LISTEN") == err);
    CHECK(LOAD(&s, "--LISTEN", "x") == CHAT_EINVAL); /* flags are lower case */
}

static void test_required(void)
{
    struct settings s;
    char err[256];
    char *argv[] = {"prog", NULL};

    clear_env();
    CHECK(load(&s, err, sizeof(err), 1, argv) == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_TEST_PORT: required", 24) == 0);
    CHECK(LOAD(&s, "--test-port", "443") == 0 && s.port == 443);
}

static void test_help_and_version(void)
{
    struct settings s;
    char err[256], out[4096] = "";
    char path[] = "/tmp/test_chat_config_XXXXXX";
    int fd = mkstemp(path), saved;
    ssize_t n;

    clear_env();
    setenv("CHAT_MAX_TEXT", "0", 1); /* --help wins even over a bad value */
    CHECK(fd >= 0);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc_help = LOAD(&s, "--listen", "x", "--help");
    int rc_ver = LOAD(&s, "--version");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK(rc_help == 1);
    CHECK(rc_ver == 1);
    n = pread(fd, out, sizeof(out) - 1, 0);
    CHECK(n > 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    CHECK(strstr(out, "usage: test [options]") != NULL);
    CHECK(strstr(out, "  --listen VALUE ") != NULL);
    CHECK(strstr(out, "CHAT_LISTEN ") != NULL);
    CHECK(strstr(out, "address to listen on (default: 0.0.0.0:8081)") != NULL);
    CHECK(strstr(out, "longest text in bytes (default: 4096) [1..65536]") != NULL);
    CHECK(strstr(out, "a port (required)") != NULL);
    CHECK(strstr(out, "--jwt-issuer VALUE") != NULL);
    CHECK(strstr(out, "prog 1.0.0") != NULL);
    unsetenv("CHAT_MAX_TEXT");
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_env_and_flags);
    RUN(test_bool_forms);
    RUN(test_int_errors);
    RUN(test_bad_args);
    RUN(test_required);
    RUN(test_help_and_version);
    clear_env();
    return check_summary();
}
