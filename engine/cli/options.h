/* options: the command-line options of the commands that load a runbook
 * or run one (plan, check, run, drill, resume, undo), each declared once
 * with the commands that take it (options.c), parsed by one parser, and
 * turned into the engine's run options in one place. */
#ifndef BH_OPTIONS_H
#define BH_OPTIONS_H

#include <stddef.h>

#include "cli/cmd.h"
#include "load/params.h"
#include "run/handle.h"

/* Which command is parsing (a bit each, for the table of options). */
typedef enum {
    BH_OPTIONS_PLAN = 1 << 0,
    BH_OPTIONS_CHECK = 1 << 1,
    BH_OPTIONS_RUN = 1 << 2,
    BH_OPTIONS_DRILL = 1 << 3,
    BH_OPTIONS_RESUME = 1 << 4,
    BH_OPTIONS_UNDO = 1 << 5,
} bh_options_cmd;

typedef struct {
    const char *cmd; /* "run", for messages */
    bh_options_cmd which;
    const char **args; /* the arguments that are not options, in order */
    size_t nargs;
    bh_params_input params; /* -p, --params */
    int json, plain, strict, dot, yes, no_prompt;
    double timeout_ms; /* run, resume: --timeout */
    const char *operator_name, *approvers_group, *sign_key, *secrets_file, *plugins;
    char **plugin_dirs; /* plan, check, run, drill: bh_plugin_dirs(plugins) */
    int concurrency, checkpoint_every;
    const char **approve; /* NULL-terminated, or NULL */
    size_t napprove;
    /* run --dry-run and drill */
    int dry_run, seed_given;
    char **simulate, **slow, **flaky; /* STEP=VALUE: argv's own strings, split in place */
    size_t nsimulate, nslow, nflaky;
    const char **fail, **timeout_steps; /* drill: --fail, --timeout STEP */
    size_t nfail, ntimeout_steps;
    double chaos, approval_wait_ms;
    unsigned long long seed;
    /* resume: --retry-unknown[=STEP,...], --skip-unknown[=STEP,...];
     * undo: --retry-unknown (retry_all) */
    int retry_all, skip_all;
    const char **retry, **skip;
    size_t nretry, nskip;
    char **copies; /* the STEP,... values split up, freed with the options */
    size_t ncopies;
    /* undo */
    const char *step, *settle, *note;
    int abandon;
} bh_options;

/* Parse argv[1..argc) for cmd (which), printing help on -h/--help.
 * Returns 0 to go on, -1 when done (help printed: exit 0), or the exit
 * code after printing what is wrong. Free o with bh_options_free always. */
int bh_options_parse(bh_options *o, const char *cmd, bh_options_cmd which, int argc, char **argv,
                     const char *help);
void bh_options_free(bh_options *o);

/* The engine's run options from the parsed ones: who runs it (name holds
 * the operator's name, resolved and checked), the console, prompts (never
 * in a simulation, sim), caps, approvals up front. 0, or the exit code
 * after printing why. */
int bh_options_run_opts(const bh_options *o, const bh_cli *g, int sim, bh_run_opts *ro,
                        char name[BH_UTIL_NAME_MAX + 1]);
/* --sign-key (or $BULKHEAD_SIGN_KEY) into ro, with --checkpoint-every. 0,
 * or the exit code after printing why. Free ro->signer with bh_sign_free. */
int bh_options_signer(const bh_options *o, bh_run_opts *ro);

#endif
