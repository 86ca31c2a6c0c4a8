/* Helpers shared by the subcommands. */
#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
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
