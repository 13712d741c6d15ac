/* chat_config.h: settings as a table. Each setting is an environment variable CHAT_FOO_BAR
 * and the flag --foo-bar VALUE (or --foo-bar=VALUE); the flag wins. `--help` prints every
 * setting with its default and help. A value that does not parse or is out of bounds stops
 * the program at start with a message naming the setting. An empty environment variable
 * counts as unset. INT values are decimal and checked against [min, max]; BOOL values are
 * 1/0, true/false, yes/no, on/off (a BOOL flag given without a value means true). Arguments
 * that are not flags are refused (a program with sub-commands strips them first).
 * Call from main() before any thread starts. */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { CHAT_CFG_STR, CHAT_CFG_INT, CHAT_CFG_BOOL } chat_cfg_type;

typedef struct chat_cfg_entry {
    const char *env;     /* "CHAT_LISTEN" */
    chat_cfg_type type;  /* STR -> const char *, INT -> long long, BOOL -> bool */
    const char *def;     /* default as text; NULL means unset (STR: NULL; INT/BOOL: required) */
    long long min, max;  /* bounds for INT */
    size_t offset;       /* offsetof(the settings struct, field) */
    const char *help;    /* one line */
} chat_cfg_entry;

/* Fills *settings from defaults, then the environment, then argv.
 * Strings point into the environment, argv or the table's defaults (process lifetime; the
 * caller owns nothing). Returns 0 to run, 1 when --help or --version was printed (exit 0),
 * or CHAT_EINVAL with "CHAT_FOO: reason" (or "unknown option --x") in err. */
int chat_config_load(const chat_cfg_entry *table, size_t n, void *settings, int argc,
                     char **argv, const char *usage, char *err, size_t errlen);

/* Prints the table as --help does (to stdout). */
void chat_config_help(const chat_cfg_entry *table, size_t n, const char *usage);

#endif
