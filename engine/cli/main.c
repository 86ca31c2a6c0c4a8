/* bulkhead: the command line. Global options, then a command. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "lua/guard.h"

static const char USAGE[] =
    "bulkhead " BH_VERSION " - incident-response runbook engine\n"
    "\n"
    "usage: bulkhead [--state-dir DIR] COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  plan RUNBOOK      show the steps a run would take; nothing runs\n"
    "  check RUNBOOK...  validate runbooks; every problem with file:line\n"
    "  run RUNBOOK       execute a runbook, recording every step in a journal\n"
    "                    (--dry-run: run its logic, simulate every action)\n"
    "  drill RUNBOOK     a dry run with injected faults, and a scorecard\n"
    "  drills RUNBOOK    a runbook's drills over time: scorecards and trend\n"
    "  runs              list the runs in the state directory\n"
    "  show RUN          one run's steps, outcomes, durations and output files\n"
    "  verify RUN        recheck a run journal's hash chain (and signatures, --key)\n"
    "  report RUN        after-action report from the journal: md, html or json\n"
    "  approve RUN STEP  approve a step a running engine waits on (deny: refuse it)\n"
    "  done RUN STEP     mark a manual task of a running engine done (or --failed)\n"
    "  status RUN        what a running engine is doing and waiting on\n"
    "  resume RUN        go on with a run whose engine died or was interrupted\n"
    "  undo RUN          undo the completed steps of a finished run, newest first\n"
    "  keygen            make an Ed25519 key pair for signed journal checkpoints\n"
    "  plugins [NAME]    the action plugins and their documentation\n"
    "\n"
    "options:\n"
    "  --state-dir DIR   where runs are kept (default $BULKHEAD_STATE_DIR, else ./.bulkhead)\n"
    "  --version         print the version\n"
    "  -h, --help        this help; `bulkhead COMMAND --help` for a command\n"
    "\n"
    "exit codes: 0 ok, 1 run failed, 2 usage, 3 runbook error, 4 parameter error,\n"
    "            5 journal broken, 6 state/journal I/O error, 130 SIGINT, 143 SIGTERM\n"
    "docs: README.md, docs/cli.md, docs/runbook-api.md, docs/journal.md\n";

int main(int argc, char **argv) {
    /* A child that closes its stdin early must not kill the engine. */
    signal(SIGPIPE, SIG_IGN);
    bh_cli g = {0};
    const char *env = getenv("BULKHEAD_STATE_DIR");
    g.state_dir = env && *env ? env : ".bulkhead";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("bulkhead %s\n", BH_VERSION);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--state-dir") == 0) {
            if (i + 1 >= argc) return bh_cmd_usage_error(NULL, "--state-dir needs a directory");
            g.state_dir = argv[++i];
        } else if (strncmp(argv[i], "--state-dir=", 12) == 0) {
            g.state_dir = argv[i] + 12;
        } else {
            return bh_cmd_usage_error(NULL, "unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        fputs(USAGE, stderr);
        return BH_EXIT_USAGE;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **, const bh_cli *);
    } cmds[] = {
        {"plan", bh_cmd_plan},       {"check", bh_cmd_check},   {"run", bh_cmd_run},
        {"runs", bh_cmd_runs},       {"show", bh_cmd_show},     {"verify", bh_cmd_verify},
        {"approve", bh_cmd_approve}, {"deny", bh_cmd_deny},     {"done", bh_cmd_done},
        {"undo", bh_cmd_undo},       {"keygen", bh_cmd_keygen}, {"resume", bh_cmd_resume},
        {"drill", bh_cmd_drill},     {"drills", bh_cmd_drills}, {"report", bh_cmd_report},
        {"plugins", bh_cmd_plugins}, {"status", bh_cmd_status},
    };
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            char *help[] = {argv[i + 1], "--help", NULL};
            for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
                if (strcmp(argv[i + 1], cmds[k].name) == 0) return cmds[k].fn(2, help, &g);
        }
        fputs(USAGE, stdout);
        return BH_EXIT_OK;
    }
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        if (strcmp(name, cmds[k].name) != 0) continue;
        /* Ctrl-C stops runbook Lua where it is (guard.h); a command it
         * stopped that way (loading, listing) ends as interrupted. */
        bh_guard_catch_signals();
        int rc = cmds[k].fn(argc - i, argv + i, &g);
        return bh_guard_signals() ? 128 + bh_guard_last_signal() : rc;
    }
    return bh_cmd_usage_error(NULL, "unknown command '%s'", name);
}
