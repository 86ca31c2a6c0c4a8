/* cmd: the subcommands behind the command line. main.c parses the global
 * options and dispatches; each bh_cmd_* parses its own arguments, prints
 * its own --help, and returns the process exit code (docs/cli.md). */
#ifndef BH_CMD_H
#define BH_CMD_H

#include <stddef.h>

#include "base/secrets.h"
#include "base/sign.h"

enum {
    BH_EXIT_OK = 0,
    BH_EXIT_FAILED = 1,
    BH_EXIT_USAGE = 2,
    BH_EXIT_RUNBOOK = 3,
    BH_EXIT_PARAMS = 4,
    BH_EXIT_BROKEN = 5,
    BH_EXIT_IO = 6,
    BH_EXIT_SIGINT = 130,
    BH_EXIT_SIGTERM = 143
};

typedef struct {
    const char *state_dir;
} bh_cli;

int bh_cmd_plan(int argc, char **argv, const bh_cli *g);
int bh_cmd_check(int argc, char **argv, const bh_cli *g);
int bh_cmd_run(int argc, char **argv, const bh_cli *g);
int bh_cmd_drill(int argc, char **argv, const bh_cli *g);
int bh_cmd_drills(int argc, char **argv, const bh_cli *g);
int bh_cmd_report(int argc, char **argv, const bh_cli *g);
int bh_cmd_plugins(int argc, char **argv, const bh_cli *g);
int bh_cmd_runs(int argc, char **argv, const bh_cli *g);
int bh_cmd_show(int argc, char **argv, const bh_cli *g);
int bh_cmd_verify(int argc, char **argv, const bh_cli *g);
int bh_cmd_approve(int argc, char **argv, const bh_cli *g);
int bh_cmd_deny(int argc, char **argv, const bh_cli *g);
int bh_cmd_done(int argc, char **argv, const bh_cli *g);
int bh_cmd_status(int argc, char **argv, const bh_cli *g);
int bh_cmd_undo(int argc, char **argv, const bh_cli *g);
int bh_cmd_resume(int argc, char **argv, const bh_cli *g);
int bh_cmd_keygen(int argc, char **argv, const bh_cli *g);

/* Shared by the commands: is argv[i] "-h"/"--help"? */
int bh_cmd_is_help(const char *arg);
/* Print "bulkhead CMD: message" and a hint to use --help; returns BH_EXIT_USAGE. */
int bh_cmd_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The usage error for option opt that cmd does not know (a global option
 * given after the command says where it goes). */
int bh_cmd_unknown_option(const char *cmd, const char *opt);
/* Find a run folder from an id, unique id prefix, "last", or a path.
 * Returns a malloc'd folder path or NULL after printing why. */
char *bh_cmd_find_run(const bh_cli *g, const char *arg);
/* --secrets FILE, else $BULKHEAD_SECRETS, else the environment only.
 * NULL after printing why the file cannot be used. */
bh_secrets *bh_cmd_open_secrets(const char *cmd, const char *file);
/* --sign-key FILE, else $BULKHEAD_SIGN_KEY, else none (*out NULL).
 * Returns 0, or BH_EXIT_USAGE after printing why the key cannot be used. */
int bh_cmd_load_signer(const char *cmd, const char *key, bh_signer **out);

#endif
