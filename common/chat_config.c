/* chat_config.c: loads a settings table (chat_config.h) from defaults, the environment and the
 * command line, in that order, and prints --help. Every failure names the setting so a bad
 * deployment stops at start with a message an operator can act on. */
#define _POSIX_C_SOURCE 200809L
#include "chat_config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat_error.h"

#define CFG_FLAG_MAX 64
#define CHAT_VERSION_STRING "1.0.0"

/* "CHAT_FOO_BAR" -> "foo-bar" (without the leading dashes). */
static void flag_name(const char *env, char *out, size_t outlen)
{
    size_t i = 0;

    if (strncmp(env, "CHAT_", 5) == 0)
        env += 5;
    for (; *env && i + 1 < outlen; env++) {
        char c = *env;
        if (c == '_')
            c = '-';
        else if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i++] = c;
    }
    out[i] = '\0';
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Stores value v (text) into the field of entry t; "" for STR is allowed. */
static int set_value(const chat_cfg_entry *t, void *settings, const char *v, char *err,
                     size_t errlen)
{
    char *field = (char *)settings + t->offset;

    switch (t->type) {
    case CHAT_CFG_STR:
        memcpy(field, &v, sizeof(v));
        return 0;
    case CHAT_CFG_INT: {
        char *end = NULL;
        long long x;

        errno = 0;
        x = strtoll(v, &end, 10);
        if (v[0] == '\0' || *end != '\0' || (v[0] == ' ' || v[0] == '\t' || v[0] == '+')) {
            chat_errf(err, errlen, "%s: '%s' is not an integer", t->env, v);
            return CHAT_EINVAL;
        }
        if (errno == ERANGE || x < t->min) {
            if (errno == ERANGE && x > 0)
                chat_errf(err, errlen, "%s: %s is above the maximum %lld", t->env, v, t->max);
            else
                chat_errf(err, errlen, "%s: %s is below the minimum %lld", t->env, v, t->min);
            return CHAT_EINVAL;
        }
        if (x > t->max) {
            chat_errf(err, errlen, "%s: %s is above the maximum %lld", t->env, v, t->max);
            return CHAT_EINVAL;
        }
        memcpy(field, &x, sizeof(x));
        return 0;
    }
    case CHAT_CFG_BOOL: {
        bool b;

        if (parse_bool(v, &b) != 0) {
            chat_errf(err, errlen,
                      "%s: '%s' is not a boolean (use 1/0, true/false, yes/no, on/off)", t->env, v);
            return CHAT_EINVAL;
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    }
    chat_errf(err, errlen, "%s: unknown setting type", t->env);
    return CHAT_EINVAL;
}

static const char *prog_name(int argc, char **argv)
{
    const char *p, *slash;

    if (argc < 1 || !argv || !argv[0])
        return "chat";
    p = argv[0];
    slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

void chat_config_help(const chat_cfg_entry *table, size_t n, const char *usage)
{
    char flag[CFG_FLAG_MAX];
    size_t wflag = 0, wenv = 0;

    if (usage)
        printf("%s\n", usage);
    printf("\nSettings: each is an environment variable and a flag; the flag wins.\n");
    for (size_t i = 0; i < n; i++) {
        flag_name(table[i].env, flag, sizeof(flag));
        if (strlen(flag) + 8 > wflag) /* "--" + " VALUE" */
            wflag = strlen(flag) + 8;
        if (strlen(table[i].env) > wenv)
            wenv = strlen(table[i].env);
    }
    for (size_t i = 0; i < n; i++) {
        const chat_cfg_entry *t = &table[i];
        char left[CFG_FLAG_MAX + 16];

        flag_name(t->env, flag, sizeof(flag));
        snprintf(left, sizeof(left), "--%s VALUE", flag);
        printf("  %-*s   %-*s   %s", (int)wflag, left, (int)wenv, t->env, t->help ? t->help : "");
        if (t->def)
            printf(" (default: %s)", t->def[0] ? t->def : "\"\"");
        else if (t->type == CHAT_CFG_STR)
            printf(" (default: unset)");
        else
            printf(" (required)");
        if (t->type == CHAT_CFG_INT)
            printf(" [%lld..%lld]", t->min, t->max);
        printf("\n");
    }
    printf("  %-*s   %-*s   %s\n", (int)wflag, "--help", (int)wenv, "", "print this help");
    printf("  %-*s   %-*s   %s\n", (int)wflag, "--version", (int)wenv, "", "print the version");
}

/* Finds the entry whose flag is name (length len). */
static const chat_cfg_entry *find_flag(const chat_cfg_entry *table, size_t n, const char *name,
                                       size_t len)
{
    char flag[CFG_FLAG_MAX];

    for (size_t i = 0; i < n; i++) {
        flag_name(table[i].env, flag, sizeof(flag));
        if (strlen(flag) == len && strncmp(flag, name, len) == 0)
            return &table[i];
    }
    return NULL;
}

int chat_config_load(const chat_cfg_entry *table, size_t n, void *settings, int argc, char **argv,
                     const char *usage, char *err, size_t errlen)
{
    bool *seen = NULL;
    int rc = 0;

    if (!table || !settings) {
        chat_errf(err, errlen, "no settings table");
        return CHAT_EINVAL;
    }
    seen = calloc(n ? n : 1, sizeof(*seen));
    if (!seen) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* 1. --help and --version win over everything, even a bad value elsewhere. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            chat_config_help(table, n, usage);
            rc = 1;
            goto out;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", prog_name(argc, argv), CHAT_VERSION_STRING);
            rc = 1;
            goto out;
        }
    }
    /* 2. Defaults. */
    for (size_t i = 0; i < n; i++) {
        if (table[i].def) {
            if ((rc = set_value(&table[i], settings, table[i].def, err, errlen)))
                goto out;
            seen[i] = true;
        } else if (table[i].type == CHAT_CFG_STR) {
            const char *none = NULL;
            memcpy((char *)settings + table[i].offset, &none, sizeof(none));
        }
    }
    /* 3. Environment (an empty variable counts as unset). */
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(table[i].env);
        if (!v || !v[0])
            continue;
        if ((rc = set_value(&table[i], settings, v, err, errlen)))
            goto out;
        seen[i] = true;
    }
    /* 4. Flags: --name VALUE or --name=VALUE; a BOOL flag alone means true. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq, *v;
        const chat_cfg_entry *t;
        size_t len;

        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            chat_errf(err, errlen, "unexpected argument '%s' (see --help)", a);
            rc = CHAT_EINVAL;
            goto out;
        }
        a += 2;
        eq = strchr(a, '=');
        len = eq ? (size_t)(eq - a) : strlen(a);
        t = find_flag(table, n, a, len);
        if (!t) {
            chat_errf(err, errlen, "unknown option --%.*s (see --help)", (int)(len > 64 ? 64 : len),
                      a);
            rc = CHAT_EINVAL;
            goto out;
        }
        if (eq) {
            v = eq + 1;
        } else if (t->type == CHAT_CFG_BOOL &&
                   (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            v = "true";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            chat_errf(err, errlen, "%s: option --%s needs a value", t->env, a);
            rc = CHAT_EINVAL;
            goto out;
        }
        if ((rc = set_value(t, settings, v, err, errlen)))
            goto out;
        seen[t - table] = true;
    }
    /* 5. Required INT/BOOL settings. */
    for (size_t i = 0; i < n; i++) {
        if (!seen[i] && table[i].type != CHAT_CFG_STR) {
            char flag[CFG_FLAG_MAX];
            flag_name(table[i].env, flag, sizeof(flag));
            chat_errf(err, errlen, "%s: required but not set (environment or --%s)", table[i].env,
                      flag);
            rc = CHAT_EINVAL;
            goto out;
        }
    }
out:
    free(seen);
    return rc;
}
