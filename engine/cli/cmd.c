/* Helpers shared by the subcommands. */
#include "cli/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bh_cmd_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int bh_cmd_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "bulkhead%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'bulkhead %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return BH_EXIT_USAGE;
}

int bh_cmd_unknown_option(const char *cmd, const char *opt) {
    size_t n = strcspn(opt, "=");
    /* the options of bulkhead itself come before the command */
    if (n >= 7 && strncmp(opt, "--state-dir", n) == 0)
        return bh_cmd_usage_error(cmd,
                                  "'%s' is an option of bulkhead itself: put it before the "
                                  "command, as in bulkhead --state-dir DIR %s ...",
                                  opt, cmd);
    return bh_cmd_usage_error(cmd, "unknown option '%s'", opt);
}

bh_secrets *bh_cmd_open_secrets(const char *cmd, const char *file) {
    if (!file) file = getenv("BULKHEAD_SECRETS");
    char err[512];
    bh_secrets *s = bh_secrets_open(file, err, sizeof err);
    if (!s) fprintf(stderr, "bulkhead %s: %s\n", cmd, err);
    return s;
}

int bh_cmd_load_signer(const char *cmd, const char *key, bh_signer **out) {
    *out = NULL;
    if (!key) key = getenv("BULKHEAD_SIGN_KEY");
    if (!key || !*key) return 0;
    char err[400];
    *out = bh_sign_load(key, err, sizeof err);
    if (*out) return 0;
    fprintf(stderr, "bulkhead %s: %s\n", cmd, err);
    return BH_EXIT_USAGE;
}
