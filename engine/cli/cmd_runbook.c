/* plan, check and run: the commands that load a runbook. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <sodium.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "effects/control.h"
#include "load/runbook.h"
#include "run/sched.h"
#include "load/plugin.h"
#include "base/sign.h"
#include "load/sim.h"
#include "base/util.h"

static const char PLAN_HELP[] =
    "usage: bulkhead plan RUNBOOK [-p NAME=VALUE]... [--params FILE.json] [--json|--dot]\n"
    "\n"
    "Load the runbook, resolve its parameters and print its steps by phase:\n"
    "timeouts, retries, failure policy, dependencies, parallel groups, fan-out,\n"
    "approvals, manual tasks, health gates, cadences and undo. Nothing runs:\n"
    "loading a runbook has no side effects.\n"
    "\n"
    "  -p, --param NAME=VALUE  a parameter value (repeatable); converted to the\n"
    "                          declared type: numbers, true/false, lists as a,b,c\n"
    "                          or a JSON array, maps as a JSON object\n"
    "  --params FILE.json      a JSON object of parameter values (-p wins)\n"
    "  --plugins DIR[:DIR]     more plugin directories, searched before the shipped\n"
    "                          plugins/ (also $BULKHEAD_PLUGINS)\n"
    "  --json                  the plan as one JSON document\n"
    "  --dot                   the step graph for Graphviz (dot -Tsvg): a box per\n"
    "                          step in phase clusters, solid edges for 'after',\n"
    "                          dotted edges where the run moves to the next unit\n"
    "                          (none inside a parallel group); approvals are\n"
    "                          octagons, manual tasks notes\n"
    "\n"
    "exit: 0 ok, 2 usage, 3 runbook error, 4 parameter error\n";

static const char CHECK_HELP[] =
    "usage: bulkhead check RUNBOOK... [--strict] [-p NAME=VALUE]... [--params FILE.json]\n"
    "\n"
    "Load and validate each runbook and report every problem with file:line:\n"
    "syntax and load-time errors (with a traceback), unknown or mistyped fields,\n"
    "duplicate steps, bad durations and parameter declarations. Required\n"
    "parameters without a value get typed stand-ins, so no values are needed.\n"
    "Warnings: parameters without a doc string; steps without an explicit\n"
    "timeout when the runbook sets no default, and manual tasks without one;\n"
    "destructive steps without approve; steps in a contain*/isolat* phase\n"
    "without undo (undo = false if nothing to undo); steps that can never run.\n"
    "\n"
    "  --strict   fail (exit 3) on warnings too\n"
    "  --plugins DIR[:DIR]  more plugin directories (also $BULKHEAD_PLUGINS)\n"
    "\n"
    "exit: 0 all valid, 2 usage, 3 a runbook has errors, 4 a given value is wrong\n";

static const char RUN_HELP[] =
    "usage: bulkhead run RUNBOOK [-p NAME=VALUE]... [--params FILE.json] [options]\n"
    "\n"
    "Execute the runbook's steps and record each one in a new run folder under\n"
    "STATE/runs/ (journal.jsonl and captured output). Steps run one at a time\n"
    "except in parallel {} groups, schedule = \"graph\" and each fan-outs. A failed\n"
    "step stops the run (or continues, or rolls back, as its on_failure says);\n"
    "the steps not reached are recorded as skipped.\n"
    "\n"
    "  -p, --param NAME=VALUE  a parameter value (repeatable), see `plan --help`\n"
    "  --params FILE.json      a JSON object of parameter values\n"
    "  --plugins DIR[:DIR]     more plugin directories (also $BULKHEAD_PLUGINS)\n"
    "  --json                  print each journal record to stdout as it is written\n"
    "  --plain                 plain lines even on a terminal\n"
    "  --timeout DURATION      default step timeout for steps without their own\n"
    "                          (runbook default, else 5m), e.g. 30s, 10m\n"
    "  --operator NAME         who runs it, for the record (default\n"
    "                          $BULKHEAD_OPERATOR, else the login name); its\n"
    "                          approvals count as this account (uid)\n"
    "  --approvers-group GROUP\n"
    "                          members of GROUP may approve, deny and mark\n"
    "                          tasks done through the control socket too (it\n"
    "                          and the run folder are given to the group, the\n"
    "                          folder only to pass through); every directory\n"
    "                          above the run folder must let them pass\n"
    "  --concurrency N         at most N attempts in flight at once, for every\n"
    "                          step (default: the number of cores; without this\n"
    "                          flag a step's own 'concurrency' may go above it)\n"
    "  --approve STEP          approve STEP up front (repeatable), recorded as\n"
    "                          given by the operator with the flag\n"
    "  --yes                   approve every step that asks, up front\n"
    "  --no-prompt             never ask on the terminal; wait for\n"
    "                          `bulkhead approve/deny/done` from elsewhere\n"
    "  --sign-key FILE         sign checkpoints of the journal with this key\n"
    "                          (`bulkhead keygen`; default $BULKHEAD_SIGN_KEY)\n"
    "  --dry-run               run the runbook's own logic but simulate every\n"
    "                          action: nothing is executed or sent; each exec\n"
    "                          records what it would have run and returns\n"
    "                          success (or the step's `simulate`); approvals and\n"
    "                          manual tasks are granted; time is simulated\n"
    "  --simulate STEP=JSON    with --dry-run: what STEP's actions give back,\n"
    "                          e.g. '{\"exit\":0,\"stdout\":\"active\"}'; \"result\"\n"
    "                          replaces the step's body\n"
    "  --checkpoint-every N    records between signed checkpoints (default 100;\n"
    "                          one is always written after run_end)\n"
    "  --secrets FILE          where secret(\"NAME\") looks first: NAME=value lines,\n"
    "                          mode 0600 (default $BULKHEAD_SECRETS); then the\n"
    "                          environment. Secret values are masked in the\n"
    "                          journal, the console and captured output\n"
    "\n"
    "Approvals and manual tasks: the run waits, asks on the terminal (when\n"
    "stdin is one) and listens for `bulkhead approve|deny|done RUN STEP` from\n"
    "another terminal. A person is an account: approvers = N needs N different\n"
    "accounts (and names); the prompt and --approve/--yes are this account.\n"
    "An approval not given in time is a denial unless the step says\n"
    "on_approval_timeout = \"approve\".\n"
    "\n"
    "Ctrl-C or SIGTERM: nothing new starts, running children get SIGTERM and\n"
    "SIGKILL after the grace period; a second Ctrl-C kills them at once.\n"
    "\n"
    "exit: 0 all steps ok, 1 a step failed or timed out, 2 usage, 3 runbook\n"
    "error, 4 parameter error, 6 state/journal I/O error, 130 SIGINT, 143 SIGTERM\n";

static const char DRILL_HELP[] =
    "usage: bulkhead drill RUNBOOK [-p NAME=VALUE]... [faults] [--seed N] [options]\n"
    "\n"
    "Rehearse a runbook: a dry run (nothing is executed or sent, approvals and\n"
    "manual tasks are granted, time is simulated) with faults injected on\n"
    "purpose, ending with a scorecard: time to containment, total time, each\n"
    "fault and whether the runbook absorbed it (retry, continue, rollback) or\n"
    "it stopped the run, time waiting for approvals, steps without undo or\n"
    "timeout. `bulkhead drills RUNBOOK` compares drills over time.\n"
    "\n"
    "faults (STEP is a step id; each attempt of it is affected):\n"
    "  --fail STEP             the attempt fails as it starts\n"
    "  --timeout STEP          the attempt hangs until the step's timeout\n"
    "  --slow STEP=FACTOR      the attempt takes FACTOR times its estimate\n"
    "  --flaky STEP=P          the attempt fails with probability P (0-1)\n"
    "  --chaos P               any attempt: a fault with probability P (fail,\n"
    "                          timeout or slow x3)\n"
    "  --seed N                the random choices (default: a new seed, shown\n"
    "                          in the scorecard); the same seed, the same drill\n"
    "\n"
    "simulated time: a step takes its `estimate` (runbook), else the median\n"
    "of its successful attempts in earlier real runs here, else nothing.\n"
    "  --approval-wait DUR     how long each approval takes (default 0)\n"
    "  --simulate STEP=JSON    what STEP's actions give back (see run --help)\n"
    "\n"
    "Also: -p, --params, --json, --plain, --operator, --concurrency, --sign-key,\n"
    "--checkpoint-every, --secrets (secrets not set get stand-ins).\n"
    "\n"
    "exit: 0 the runbook came through, 1 a step failed (the drill found\n"
    "something), 2 usage, 3 runbook error, 4 parameter error\n";

/* Parse the options of plan, check, run and drill (options.h), and say so
 * when no runbook is given. Returns -1 when done (help printed, exit 0)
 * or an exit code > 0 on error, 0 to go on. */
static int parse(int argc, char **argv, bh_options *o, const char *cmd, bh_options_cmd which,
                 const char *help) {
    int rc = bh_options_parse(o, cmd, which, argc, argv, help);
    if (rc == 0 && o->nargs == 0) return bh_cmd_usage_error(cmd, "which runbook? give its path");
    return rc;
}

static int load_status_exit(bh_runbook_status st) {
    switch (st) {
    case BH_RUNBOOK_OK:
        return BH_EXIT_OK;
    case BH_RUNBOOK_BAD_PARAMS:
        return BH_EXIT_PARAMS;
    default:
        return BH_EXIT_RUNBOOK;
    }
}

/* Load one runbook and print its problems. secrets NULL: stand-ins;
 * secrets_optional: see bh_runbook_opts. */
static int load(const char *path, const bh_options *o, int placeholders, const bh_secrets *secrets,
                int secrets_optional, bh_runbook **rb) {
    bh_runbook_opts ro = {.path = path,
                          .params = &o->params,
                          .placeholders = placeholders,
                          .secrets = secrets,
                          .secret_standins = secrets == NULL,
                          .secrets_optional = secrets_optional,
                          .plugin_dirs = o->plugin_dirs};
    bh_runbook_status st = bh_runbook_load(&ro, rb);
    bh_diag_print(&(*rb)->diags, stderr);
    if ((*rb)->traceback) fprintf(stderr, "%s\n", (*rb)->traceback);
    return load_status_exit(st);
}

static void print_value(const cJSON *v) {
    char *s = cJSON_PrintUnformatted(v);
    fputs(s ? s : "?", stdout);
    free(s);
}

static void print_semantics(const bh_runbook *rb, const bh_step *s) {
    const bh_unit *u = rb->units ? &rb->units[s->unit] : NULL;
    if (s->action)
        printf("      action: %s%s%s\n", s->action, s->action_desc ? ": " : "",
               s->action_desc ? s->action_desc : "");
    if (u && u->parallel) {
        printf("      runs alongside:");
        for (size_t m = 0, shown = 0; m < u->nsteps && shown < 6; m++) {
            if (u->steps[m] == (size_t)(s - rb->steps)) continue;
            printf(" %s", rb->steps[u->steps[m]].id);
            shown++;
        }
        if (u->nsteps > 7) printf(" ...");
        if (u->concurrency) printf("  (at most %d at once)", u->concurrency);
        putchar('\n');
    }
    if (s->each_ref != LUA_NOREF) {
        printf("      each: ");
        if (s->each_fn) {
            printf("items from a function, evaluated when the step starts");
        } else {
            lua_rawgeti(rb->L, LUA_REGISTRYINDEX, s->each_ref);
            printf("%zu items", (size_t)lua_rawlen(rb->L, -1));
            lua_pop(rb->L, 1);
        }
        if (s->concurrency) printf(", at most %d at once", s->concurrency);
        putchar('\n');
    }
    if (s->approve)
        printf("      approve (%d approver%s): %s\n", s->approvers, s->approvers > 1 ? "s" : "",
               s->approve);
    if (s->manual) {
        printf("      manual task:\n");
        for (size_t k = 0; k < s->nchecklist; k++)
            printf("        [ ] %s\n", s->checklist[k]);
    }
    if (s->verify_ref != LUA_NOREF) {
        char t[32];
        bh_util_format_duration(s->verify_timeout_ms, t, sizeof t);
        printf("      verify: health gate, up to %s\n", t);
    }
    if (s->every_ms > 0) {
        char t[32];
        bh_util_format_duration(s->every_ms, t, sizeof t);
        printf("      every %s while the run lives\n", t);
    }
    if (s->undo_ref != LUA_NOREF) printf("      undo: yes\n");
    if (s->destructive) printf("      destructive\n");
}

static void print_plan(const bh_runbook *rb) {
    printf("%s: %s\n", rb->id, rb->title);
    printf("  severity %s", rb->severity);
    if (rb->owner) printf(", owner %s", rb->owner);
    printf(", %zu steps\n  file %s (sha256 %.16s...)\n", rb->nsteps, rb->path, rb->sha256);
    if (rb->description) printf("  %s\n", rb->description);
    if (rb->nparams) printf("\nparameters\n");
    for (size_t i = 0; i < rb->nparams; i++) {
        const bh_param_spec *p = &rb->params[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rb->param_values, p->name);
        printf("  %s = ", p->name);
        if (v)
            print_value(v);
        else
            fputs("(unset)", stdout);
        printf("  [%s%s]", bh_params_type_name(p->type), p->required ? ", required" : "");
        if (p->doc) printf("  %s", p->doc);
        putchar('\n');
    }
    size_t n = 0;
    for (size_t i = 0; i < rb->nphases; i++) {
        printf("\nphase %s\n", rb->phases[i]);
        for (size_t j = 0; j < rb->nsteps; j++) {
            const bh_step *s = &rb->steps[j];
            if (strcmp(s->phase, rb->phases[i]) != 0) continue;
            char t[32];
            bh_util_format_duration(s->timeout_ms, t, sizeof t);
            printf("  %2zu. %-28s timeout %-6s %s:%d\n", ++n, s->id, t, s->file, s->line);
            if (s->retries || s->on_failure != BH_FAIL_ABORT) {
                char b[32];
                bh_util_format_duration(s->backoff_ms, b, sizeof b);
                printf("      ");
                if (s->retries) printf("retries %d (backoff from %s)  ", s->retries, b);
                printf("on failure %s\n", bh_model_policy_name(s->on_failure));
            }
            print_semantics(rb, s);
            if (s->doc) printf("      %s\n", s->doc);
            if (s->nafter) {
                printf("      after");
                for (size_t k = 0; k < s->nafter; k++)
                    printf("%s %s", k ? "," : "", s->after[k]);
                putchar('\n');
            }
        }
    }
}

/* Graphviz strings: quotes and backslashes escaped. */
static void dot_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s == '\n' ? ' ' : *s);
    }
    putchar('"');
}

static void print_dot(const bh_runbook *rb) {
    printf("digraph ");
    dot_string(rb->id);
    printf(" {\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n  label=");
    dot_string(rb->title);
    printf(";\n");
    for (size_t i = 0; i < rb->nphases; i++) {
        printf("  subgraph \"cluster_%zu\" {\n    label=", i);
        dot_string(rb->phases[i]);
        printf(";\n");
        for (size_t j = 0; j < rb->nsteps; j++) {
            const bh_step *s = &rb->steps[j];
            if (strcmp(s->phase, rb->phases[i]) != 0) continue;
            printf("    ");
            dot_string(s->id);
            char t[32];
            bh_util_format_duration(s->timeout_ms, t, sizeof t);
            char label[512];
            snprintf(label, sizeof label, "%s (%s%s%s%s%s%s%s)", s->id, t,
                     s->retries ? ", retries" : "", s->on_failure != BH_FAIL_ABORT ? ", " : "",
                     s->on_failure != BH_FAIL_ABORT ? bh_model_policy_name(s->on_failure) : "",
                     s->each_ref != LUA_NOREF ? ", each" : "", s->approve ? ", approve" : "",
                     s->undo_ref != LUA_NOREF ? ", undo" : "");
            printf(" [label=");
            dot_string(label);
            printf("%s%s];\n", s->when_ref != LUA_NOREF || s->when_false ? ", style=dashed" : "",
                   s->manual    ? ", shape=note"
                   : s->approve ? ", shape=octagon"
                                : "");
        }
        printf("  }\n");
    }
    for (size_t j = 0; j < rb->nsteps; j++) {
        const bh_step *s = &rb->steps[j];
        for (size_t k = 0; k < s->nafter; k++) {
            printf("  ");
            dot_string(s->after[k]);
            printf(" -> ");
            dot_string(s->id);
            printf(";\n");
        }
    }
    /* One unit after another: dotted edges where the order passes from a
     * unit to the next (steps of one parallel unit get none between them). */
    for (size_t p = 1; rb->order && p < rb->nsteps; p++) {
        if (rb->steps[rb->order[p - 1]].unit == rb->steps[rb->order[p]].unit) continue;
        printf("  ");
        dot_string(rb->steps[rb->order[p - 1]].id);
        printf(" -> ");
        dot_string(rb->steps[rb->order[p]].id);
        printf(" [style=dotted, arrowhead=none];\n");
    }
    printf("}\n");
}

int bh_cmd_plan(int argc, char **argv, const bh_cli *g) {
    (void)g;
    bh_options o;
    int rc = parse(argc, argv, &o, "plan", BH_OPTIONS_PLAN, PLAN_HELP);
    if (rc == 0 && o.nargs > 1) rc = bh_cmd_usage_error("plan", "one runbook at a time");
    if (rc != 0) {
        bh_options_free(&o);
        return rc < 0 ? BH_EXIT_OK : rc;
    }
    bh_runbook *rb;
    rc = load(o.args[0], &o, 0, NULL, 0, &rb);
    if (rc == BH_EXIT_OK) {
        if (o.dot) {
            print_dot(rb);
        } else if (o.json) {
            cJSON *plan = bh_runbook_plan_json(rb);
            char *s = cJSON_Print(plan);
            puts(s);
            free(s);
            cJSON_Delete(plan);
        } else {
            print_plan(rb);
        }
    }
    bh_runbook_free(rb);
    bh_options_free(&o);
    return rc;
}

int bh_cmd_check(int argc, char **argv, const bh_cli *g) {
    (void)g;
    bh_options o;
    int rc = parse(argc, argv, &o, "check", BH_OPTIONS_CHECK, CHECK_HELP);
    if (rc != 0) {
        bh_options_free(&o);
        return rc < 0 ? BH_EXIT_OK : rc;
    }
    int worst = BH_EXIT_OK;
    for (size_t i = 0; i < o.nargs; i++) {
        bh_runbook *rb;
        rc = load(o.args[i], &o, 1, NULL, 0, &rb);
        size_t errors = bh_diag_errors(&rb->diags);
        size_t warnings = rb->diags.count - errors;
        if (rc == BH_EXIT_OK)
            printf("%s: ok (%zu steps in %zu phases%s)\n", o.args[i], rb->nsteps, rb->nphases,
                   warnings ? ", with warnings" : "");
        else
            printf("%s: %zu error%s\n", o.args[i], errors, errors == 1 ? "" : "s");
        if (rc == BH_EXIT_OK && o.strict && warnings) {
            printf("%s: failed --strict: %zu warning%s\n", o.args[i], warnings,
                   warnings == 1 ? "" : "s");
            rc = BH_EXIT_RUNBOOK;
        }
        /* Parameter errors are the caller's to fix; a broken runbook wins. */
        if (rc == BH_EXIT_RUNBOOK || (rc != BH_EXIT_OK && worst == BH_EXIT_OK)) worst = rc;
        bh_runbook_free(rb);
    }
    bh_options_free(&o);
    return worst;
}

/* STEP=VALUE for --slow, --flaky, --simulate: split in place. */
static int split_rule(const char *cmd, const char *flag, char *arg, char **value) {
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return bh_cmd_usage_error(cmd, "%s: give STEP=VALUE, not '%s'", flag, arg);
    *eq = '\0';
    *value = eq + 1;
    return 0;
}

static int known_step(const bh_runbook *rb, const char *id) {
    return bh_model_step_index(rb, id) != (size_t)-1;
}

/* The simulation the flags describe, checked against the runbook. */
static int build_sim(const bh_options *o, const bh_runbook *rb, const char *state_dir,
                     bh_sim *sim) {
    memset(sim, 0, sizeof *sim);
    sim->drill = o->which == BH_OPTIONS_DRILL;
    sim->approval_wait_ms = o->approval_wait_ms;
    sim->chaos = o->chaos;
    if (o->seed_given) {
        sim->seed = o->seed;
    } else {
        randombytes_buf(&sim->seed, sizeof sim->seed);
        sim->seed %= 1000000000ull; /* short enough to read out on a call */
    }
    sim->fail = bh_util_xcalloc(o->nfail + 1, sizeof *sim->fail);
    memcpy(sim->fail, o->fail ? o->fail : sim->fail, o->nfail * sizeof *sim->fail);
    sim->timeout = bh_util_xcalloc(o->ntimeout_steps + 1, sizeof *sim->timeout);
    memcpy(sim->timeout, o->timeout_steps ? o->timeout_steps : sim->timeout,
           o->ntimeout_steps * sizeof *sim->timeout);
    const char **lists[2] = {o->fail, o->timeout_steps};
    const char *flags[2] = {"--fail", "--timeout"};
    for (int l = 0; l < 2; l++)
        for (size_t k = 0; lists[l] && lists[l][k]; k++)
            if (!known_step(rb, lists[l][k]))
                return bh_cmd_usage_error(o->cmd, "%s %s: the runbook has no such step", flags[l],
                                          lists[l][k]);
    sim->slow = bh_util_xcalloc(o->nslow + 1, sizeof *sim->slow);
    sim->flaky = bh_util_xcalloc(o->nflaky + 1, sizeof *sim->flaky);
    for (size_t k = 0; k < o->nslow + o->nflaky; k++) {
        int slow = k < o->nslow;
        char *arg = slow ? o->slow[k] : o->flaky[k - o->nslow];
        char *value = NULL, *end = NULL;
        int rc = split_rule(o->cmd, slow ? "--slow" : "--flaky", arg, &value);
        if (rc || !value) return rc ? rc : BH_EXIT_USAGE;
        if (!known_step(rb, arg))
            return bh_cmd_usage_error(o->cmd, "%s %s: the runbook has no such step",
                                      slow ? "--slow" : "--flaky", arg);
        double v = strtod(value, &end);
        if (*end || (slow && !(v > 0 && v <= 1000)) || (!slow && !(v >= 0 && v <= 1)))
            return bh_cmd_usage_error(o->cmd, "%s %s=%s: %s", slow ? "--slow" : "--flaky", arg,
                                      value,
                                      slow ? "the factor is a number above 0 (2 = twice as long)"
                                           : "the probability is a number from 0 to 1");
        if (slow)
            sim->slow[sim->nslow++] = (bh_sim_rule){arg, v};
        else
            sim->flaky[sim->nflaky++] = (bh_sim_rule){arg, v};
    }
    for (size_t k = 0; k < o->nsimulate; k++) {
        char *value = NULL;
        int rc = split_rule(o->cmd, "--simulate", o->simulate[k], &value);
        if (rc) return rc;
        if (!known_step(rb, o->simulate[k]))
            return bh_cmd_usage_error(o->cmd, "--simulate %s: the runbook has no such step",
                                      o->simulate[k]);
        cJSON *j = cJSON_Parse(value);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            return bh_cmd_usage_error(o->cmd,
                                      "--simulate %s=%s: give a JSON object such as "
                                      "'{\"exit\":0,\"stdout\":\"active\"}'",
                                      o->simulate[k], value);
        }
        if (!sim->scripts) sim->scripts = cJSON_CreateObject();
        cJSON_AddItemToObject(sim->scripts, o->simulate[k], j);
    }
    sim->history = bh_sim_history(state_dir, rb->id);
    return 0;
}

/* --approvers-group: the group, and a way for its members to the run
 * folders (STATE/runs, made now as the run would). Says why not. */
static int approvers_reach(const char *cmd, bh_run_opts *ro) {
    char *runs = bh_util_asprintf("%s/runs", ro->state_dir);
    bh_util_mkdir_p(runs); /* an error shows as the path not resolving */
    char why[2048];
    int rc = bh_control_check_group(ro->approvers_group, runs, &ro->approvers_gid, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "bulkhead %s: --approvers-group %s: %s; nothing was run\n", cmd,
                ro->approvers_group, why);
    free(runs);
    return rc;
}

/* run, run --dry-run and drill. */
static int run_command(int argc, char **argv, const bh_cli *g, const char *cmd,
                       bh_options_cmd which) {
    bh_options o;
    bh_runbook *rb = NULL;
    bh_secrets *secrets = NULL;
    bh_sim sim_s;
    memset(&sim_s, 0, sizeof sim_s);
    bh_run_opts ro;
    memset(&ro, 0, sizeof ro);
    int drill = which == BH_OPTIONS_DRILL;
    int rc = parse(argc, argv, &o, cmd, which, drill ? DRILL_HELP : RUN_HELP);
    if (rc == 0 && o.nargs > 1) rc = bh_cmd_usage_error(cmd, "one runbook at a time");
    if (rc == 0 && !drill && !o.dry_run && o.nsimulate)
        rc = bh_cmd_usage_error(cmd, "--simulate only makes sense with --dry-run (or drill)");
    if (rc == 0 && o.dry_run && o.approvers_group)
        rc = bh_cmd_usage_error(cmd, "--approvers-group: a dry run asks nobody");
    char operator_name[BH_UTIL_NAME_MAX + 1];
    int sim = drill || o.dry_run;
    if (rc == 0) rc = bh_options_run_opts(&o, g, sim, &ro, operator_name);
    if (rc != 0) goto done;
    secrets = bh_cmd_open_secrets(cmd, o.secrets_file);
    if (!secrets) {
        rc = BH_EXIT_PARAMS;
        goto done;
    }
    rc = load(o.args[0], &o, 0, secrets, sim, &rb);
    if (rc != BH_EXIT_OK) goto done;
    if (sim) {
        rc = build_sim(&o, rb, g->state_dir, &sim_s);
        if (rc) goto done;
        ro.sim = &sim_s;
    }
    rc = bh_options_signer(&o, &ro);
    if (rc) goto done;
    for (size_t k = 0; k < o.napprove; k++) {
        if (!known_step(rb, o.approve[k])) {
            rc =
                bh_cmd_usage_error(cmd, "--approve %s: the runbook has no such step", o.approve[k]);
            goto done;
        }
    }
    if (o.approvers_group && approvers_reach(cmd, &ro) != 0) {
        rc = BH_EXIT_USAGE;
        goto done;
    }
    char *run_id;
    int sig;
    bh_run_outcome out = bh_sched_run(rb, &ro, &run_id, &sig);
    free(run_id);
    rc = out == BH_RUN_OK            ? BH_EXIT_OK
         : out == BH_RUN_FAILED      ? BH_EXIT_FAILED
         : out == BH_RUN_INTERRUPTED ? (sig == 15 ? BH_EXIT_SIGTERM : BH_EXIT_SIGINT)
                                     : BH_EXIT_IO;
done:
    bh_sign_free(ro.signer);
    bh_sim_free(&sim_s);
    bh_runbook_free(rb);
    bh_secrets_free(secrets);
    bh_options_free(&o);
    return rc < 0 ? BH_EXIT_OK : rc;
}

int bh_cmd_run(int argc, char **argv, const bh_cli *g) {
    return run_command(argc, argv, g, "run", BH_OPTIONS_RUN);
}

int bh_cmd_drill(int argc, char **argv, const bh_cli *g) {
    return run_command(argc, argv, g, "drill", BH_OPTIONS_DRILL);
}
