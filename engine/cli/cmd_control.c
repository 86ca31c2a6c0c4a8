/* approve, deny, done, status, resume and undo: the commands that act on
 * (or ask) an existing run. */

#include "journal/schema.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "base/json.h"
#include "cli/options.h"
#include "effects/control.h"
#include "journal/history.h"
#include "journal/journal.h"
#include "run/handle.h"
#include "base/sign.h"
#include "run/resume.h"
#include "load/runbook.h"
#include "run/undo.h"
#include "base/util.h"

static const char APPROVE_HELP[] =
    "usage: bulkhead approve RUN STEP --as NAME --reason TEXT\n"
    "       bulkhead deny RUN STEP --as NAME --reason TEXT\n"
    "\n"
    "Approve or deny a step that a running engine is waiting on, from another\n"
    "terminal. The engine listens on RUN's control socket (in the run folder,\n"
    "reachable by its user and root, and by the members of the group given to\n"
    "run --approvers-group); the decision is recorded in the journal with the\n"
    "name, the reason, how it came (socket) and the caller's uid and pid.\n"
    "You are your account (uid): a step with approvers = N starts after N\n"
    "approvals from N different accounts under N different names; an account\n"
    "or a name (compared without case) that already approved is refused. One\n"
    "denial is enough to stop it.\n"
    "\n"
    "  --as NAME      who decides (default $BULKHEAD_OPERATOR, else the login\n"
    "                 name); trimmed, never blank\n"
    "  --reason TEXT  why: required, it is the record\n"
    "\n"
    "RUN is a run id, a unique prefix, 'last', or a run folder path (from\n"
    "another account: the folder path the engine prints).\n"
    "exit: 0 accepted, 1 refused by the engine (the message says why),\n"
    "2 usage, 6 no such run or no engine running it\n";

static const char DONE_HELP[] =
    "usage: bulkhead done RUN STEP --note TEXT [--failed] [--as NAME]\n"
    "\n"
    "Mark a manual task of a running engine as done (or, with --failed, as\n"
    "not done: the step fails and its on_failure applies). Recorded with the\n"
    "name, the note and how it came.\n"
    "\n"
    "  --note TEXT  what was done, or why not: required\n"
    "  --failed     the task could not be done\n"
    "  --as NAME    who (default $BULKHEAD_OPERATOR, else the login name);\n"
    "               trimmed, never blank\n"
    "\n"
    "exit: 0 accepted, 1 refused by the engine, 2 usage, 6 no such run or no\n"
    "engine running it\n";

static const char UNDO_HELP[] =
    "usage: bulkhead undo RUN [--step STEP] [--retry-unknown] [--abandon] [--operator NAME]\n"
    "       bulkhead undo RUN --settle STEP[KEY] --note TEXT [--operator NAME]\n"
    "\n"
    "Run the undo of every completed step of a finished run, in reverse\n"
    "completion order (lift containment at the all-clear, clean up after a\n"
    "drill). Each undo is appended to the run's journal. The runbook is loaded\n"
    "again from where it ran, with the run's parameters, and must be the same\n"
    "file (SHA-256). Steps already undone are never undone again, so an\n"
    "interrupted undo is resumed by running the command again; an undo cut off\n"
    "before it recorded its end, or cancelled by Ctrl-C, runs again only for\n"
    "idempotent steps or with --retry-unknown.\n"
    "\n"
    "  --step STEP       only this step's instances\n"
    "  --retry-unknown   also repeat undos whose earlier outcome is unknown\n"
    "  --abandon         the run's engine died and you will not resume it: end\n"
    "                    the run here (what was cut off is not repeated; what\n"
    "                    may have acted ends in doubt, leftover commands are\n"
    "                    stopped, nothing new starts, run_end 'abandoned'),\n"
    "                    then undo it\n"
    "  --settle STEP[KEY] --note TEXT\n"
    "                    undo nothing: record that you checked by hand what\n"
    "                    the in-doubt instance(s) may have left, and what you\n"
    "                    found (for a step with no undo, or one put back by\n"
    "                    other means); from then on it is no longer in doubt\n"
    "  --operator NAME   who, for the record (trimmed, never blank)\n"
    "  --sign-key FILE   sign checkpoints of what is appended (default\n"
    "                    $BULKHEAD_SIGN_KEY)\n"
    "  --secrets FILE    where the runbook's secret() looks (default\n"
    "                    $BULKHEAD_SECRETS, then the environment)\n"
    "  --plugins DIR[:DIR]  where the run's plugins are now, if they moved\n"
    "                    (default: the directories it recorded); each must\n"
    "                    still be the same file (SHA-256)\n"
    "  --json, --plain   as for `run`\n"
    "\n"
    "exit: 0 every undo ok, 1 an undo failed or the run is not finished,\n"
    "2 usage, 3 runbook missing or changed, 5 journal broken, 6 I/O or no such\n"
    "run, 130/143 interrupted\n";

static const char RESUME_HELP[] =
    "usage: bulkhead resume RUN [--retry-unknown[=STEP,...]] [--skip-unknown[=STEP,...]]\n"
    "                       [options as for run]\n"
    "\n"
    "Go on with a run whose engine died (killed, crashed, host rebooted) or was\n"
    "interrupted (Ctrl-C, SIGTERM, a journal write error), appending to its\n"
    "journal. The runbook is loaded again from where it ran with the run's\n"
    "parameters and must be the same file (SHA-256). Completed steps never run\n"
    "again, and their recorded results are what later steps see. A torn last\n"
    "record is cut off and the cut recorded; any other damage is refused.\n"
    "Commands the dead engine left running are stopped first.\n"
    "\n"
    "A step attempt that was running when the engine stopped has an unknown\n"
    "outcome. It runs again by itself only if the step is idempotent (a manual\n"
    "task is asked again; a cadence just goes on). Otherwise you decide:\n"
    "  --retry-unknown[=STEP,...]  run it again (every such step, or these)\n"
    "  --skip-unknown[=STEP,...]   do not repeat it: it ends 'unknown' and the\n"
    "                              run goes on\n"
    "or, on a terminal, answer retry/skip for each. Without a decision resume\n"
    "refuses (exit 2) and changes nothing.\n"
    "\n"
    "  --operator NAME        who resumes it, for the record (trimmed, never blank)\n"
    "  --approvers-group GROUP\n"
    "                         members of GROUP may approve through the control\n"
    "                         socket, as for run (default: the group the run had)\n"
    "  --approve STEP, --yes  approvals up front, as for run\n"
    "  --no-prompt            never ask on the terminal\n"
    "  --concurrency N        cap (default: what the run had)\n"
    "  --timeout DURATION     default step timeout (default: what the run had)\n"
    "  --sign-key FILE        sign checkpoints (default $BULKHEAD_SIGN_KEY)\n"
    "  --checkpoint-every N   records between signed checkpoints\n"
    "  --secrets FILE         where secret() looks again (default $BULKHEAD_SECRETS,\n"
    "                         then the environment): the journal holds no secret\n"
    "  --plugins DIR[:DIR]    where the run's plugins are now, if they moved\n"
    "                         (default: the directories it recorded); each must\n"
    "                         still be the same file (SHA-256)\n"
    "  --json, --plain        as for run\n"
    "\n"
    "exit: as for run (0 ok, 1 a step failed or the run cannot be resumed,\n"
    "2 usage or a decision is needed, 3 runbook missing or changed, 5 journal\n"
    "broken, 6 I/O or no such run, 130/143 interrupted)\n";

static const char STATUS_HELP[] =
    "usage: bulkhead status RUN [--json]\n"
    "\n"
    "What the engine running RUN is doing now, asked through its control\n"
    "socket: the step attempts in flight, the steps waiting for approval and\n"
    "the manual tasks waiting for a person (answer them with approve, deny\n"
    "and done). A finished run has no engine: see `bulkhead show RUN`.\n"
    "\n"
    "  --json   the engine's answer as JSON: {ok, message, running,\n"
    "           awaiting_approval, manual}\n"
    "\n"
    "exit: 0, 2 usage, 6 no such run or no engine running it\n";

/* Ask the run's engine; *reply is its answer, or an exit code is returned
 * after saying why there is none. */
static int ask(const char *cmd, const char *dir, cJSON *req, cJSON **reply) {
    *reply = NULL;
    int err = bh_control_call(dir, req, 10000, reply);
    cJSON_Delete(req);
    if (err == -ENOENT || err == -ECONNREFUSED) {
        fprintf(stderr,
                "bulkhead %s: no engine is running %s (no one listens on its control "
                "socket)\n",
                cmd, dir);
        return BH_EXIT_IO;
    }
    if (err == -EACCES) {
        fprintf(stderr,
                "bulkhead %s: cannot reach the engine of %s: %s (its control socket admits the "
                "engine's user, root, and the members of the group the run was given with "
                "--approvers-group, if any)\n",
                cmd, dir, bh_util_strerror(err));
        return BH_EXIT_IO;
    }
    if (err) {
        fprintf(stderr, "bulkhead %s: cannot reach the engine of %s: %s\n", cmd, dir,
                bh_util_strerror(err));
        return BH_EXIT_IO;
    }
    return BH_EXIT_OK;
}

static int call(const char *cmd, const char *dir, cJSON *req) {
    cJSON *reply;
    int rc = ask(cmd, dir, req, &reply);
    if (rc) return rc;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    const cJSON *msg =
        cJSON_GetObjectItemCaseSensitive(reply, cJSON_IsTrue(ok) ? "message" : "error");
    rc = cJSON_IsTrue(ok) ? BH_EXIT_OK : BH_EXIT_FAILED;
    if (rc == BH_EXIT_OK)
        printf("%s\n", cJSON_IsString(msg) ? msg->valuestring : "ok");
    else
        fprintf(stderr, "bulkhead %s: %s\n", cmd,
                cJSON_IsString(msg) ? msg->valuestring : "refused");
    cJSON_Delete(reply);
    return rc;
}

/* approve / deny / done share their shape: RUN STEP and named options. */
static int person_command(int argc, char **argv, const bh_cli *g, const char *cmd,
                          const char *help) {
    const char *pos[2] = {NULL, NULL};
    size_t npos = 0;
    const char *as = NULL, *text = NULL;
    int failed = 0;
    int is_done = strcmp(cmd, "done") == 0;
    const char *text_flag = is_done ? "--note" : "--reason";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bh_cmd_is_help(a)) {
            fputs(help, stdout);
            return BH_EXIT_OK;
        }
        if (strcmp(a, "--as") == 0 || strcmp(a, text_flag) == 0) {
            if (i + 1 >= argc) return bh_cmd_usage_error(cmd, "%s needs a value", a);
            if (strcmp(a, "--as") == 0)
                as = argv[++i];
            else
                text = argv[++i];
        } else if (is_done && strcmp(a, "--failed") == 0) {
            failed = 1;
        } else if (a[0] == '-' && a[1]) {
            return bh_cmd_unknown_option(cmd, a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return bh_cmd_usage_error(cmd, "too many arguments: '%s'", a);
        }
    }
    if (npos < 2) return bh_cmd_usage_error(cmd, "give the run and the step: %s RUN STEP", cmd);
    if (!text || !*text)
        return bh_cmd_usage_error(cmd, "%s TEXT is required: it goes in the record", text_flag);
    char name[BH_UTIL_NAME_MAX + 1], why[200];
    if (bh_run_operator(as, "--as", name, why, sizeof why) != 0)
        return bh_cmd_usage_error(cmd, "%s", why);
    char *dir = bh_cmd_find_run(g, pos[0]);
    if (!dir) return BH_EXIT_IO;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", is_done ? (failed ? "fail" : "done") : cmd);
    cJSON_AddStringToObject(req, "step", pos[1]);
    cJSON_AddStringToObject(req, "as", name);
    cJSON_AddStringToObject(req, is_done ? "note" : "reason", text);
    int rc = call(cmd, dir, req);
    free(dir);
    return rc;
}

int bh_cmd_approve(int argc, char **argv, const bh_cli *g) {
    return person_command(argc, argv, g, "approve", APPROVE_HELP);
}

int bh_cmd_deny(int argc, char **argv, const bh_cli *g) {
    return person_command(argc, argv, g, "deny", APPROVE_HELP);
}

int bh_cmd_done(int argc, char **argv, const bh_cli *g) {
    return person_command(argc, argv, g, "done", DONE_HELP);
}

static void print_list(const char *label, const cJSON *list) {
    printf("  %-19s", label);
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, list)
        printf("%s%s", n++ ? ", " : "", cJSON_IsString(x) ? x->valuestring : "?");
    printf("%s\n", n ? "" : "none");
}

int bh_cmd_status(int argc, char **argv, const bh_cli *g) {
    const char *which = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(STATUS_HELP, stdout);
            return BH_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return bh_cmd_unknown_option("status", argv[i]);
        else if (which)
            return bh_cmd_usage_error("status", "one run at a time");
        else
            which = argv[i];
    }
    if (!which) return bh_cmd_usage_error("status", "which run? (an id, a prefix, or 'last')");
    char *dir = bh_cmd_find_run(g, which);
    if (!dir) return BH_EXIT_IO;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "status");
    cJSON *reply;
    int rc = ask("status", dir, req, &reply);
    free(dir);
    if (rc) return rc;
    if (json) {
        char *text = bh_json_print(reply, 1);
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(reply, "message");
        printf("%s: its engine is running\n", cJSON_IsString(msg) ? msg->valuestring : "run");
        print_list("running", cJSON_GetObjectItemCaseSensitive(reply, "running"));
        print_list("awaiting approval",
                   cJSON_GetObjectItemCaseSensitive(reply, "awaiting_approval"));
        print_list("manual tasks", cJSON_GetObjectItemCaseSensitive(reply, "manual"));
    }
    cJSON_Delete(reply);
    return BH_EXIT_OK;
}

/* The run a command names: its one argument. 0, or the exit code after
 * saying what is wrong. */
static int one_run(const bh_options *o) {
    if (o->nargs == 0)
        return bh_cmd_usage_error(o->cmd, "which run? give its id, a prefix or 'last'");
    if (o->nargs > 1) return bh_cmd_usage_error(o->cmd, "one run at a time");
    return 0;
}

static int resume_usage(const bh_options *o) {
    int rc = one_run(o);
    if (rc) return rc;
    if (o->retry_all && o->skip_all)
        return bh_cmd_usage_error("resume", "--retry-unknown and --skip-unknown for every step "
                                            "contradict each other; name the steps (=STEP,...)");
    for (size_t k = 0; k < o->nretry; k++)
        for (size_t m = 0; m < o->nskip; m++)
            if (strcmp(o->retry[k], o->skip[m]) == 0)
                return bh_cmd_usage_error("resume", "step '%s' is both retried and skipped",
                                          o->retry[k]);
    return 0;
}

/* What resume and undo work with: their options, the run options, the
 * run folder and the secrets. */
typedef struct {
    bh_options o;
    char name[BH_UTIL_NAME_MAX + 1];
    bh_run_opts ro;
    char *dir;
    bh_secrets *secrets;
} run_cmd;

/* Parse, check (usage), and find the run and the secrets. 0, -1 (help
 * printed) or the exit code after saying why; free with run_cmd_free. */
static int run_cmd_open(run_cmd *c, const char *cmd, bh_options_cmd which, int argc, char **argv,
                        const char *help, int (*usage)(const bh_options *), const bh_cli *g) {
    memset(c, 0, sizeof *c);
    int rc = bh_options_parse(&c->o, cmd, which, argc, argv, help);
    if (rc == 0) rc = usage(&c->o);
    if (rc == 0) rc = bh_options_run_opts(&c->o, g, 0, &c->ro, c->name);
    if (rc == 0) rc = bh_options_signer(&c->o, &c->ro);
    if (rc == 0 && !(c->dir = bh_cmd_find_run(g, c->o.args[0]))) rc = BH_EXIT_IO;
    if (rc == 0 && !(c->secrets = bh_cmd_open_secrets(cmd, c->o.secrets_file))) rc = BH_EXIT_PARAMS;
    return rc;
}

static void run_cmd_free(run_cmd *c) {
    bh_secrets_free(c->secrets);
    free(c->dir);
    bh_sign_free(c->ro.signer);
    bh_options_free(&c->o);
}

int bh_cmd_resume(int argc, char **argv, const bh_cli *g) {
    run_cmd c;
    int rc =
        run_cmd_open(&c, "resume", BH_OPTIONS_RESUME, argc, argv, RESUME_HELP, resume_usage, g);
    if (rc == 0) {
        bh_resume_opts res = {
            .run_dir = c.dir,
            .run_opts = &c.ro,
            .retry_all = c.o.retry_all,
            .skip_all = c.o.skip_all,
            .retry_steps = c.o.retry,
            .skip_steps = c.o.skip,
            .ask = c.ro.prompt,
            .secrets = c.secrets,
            .plugins = c.o.plugins,
        };
        rc = bh_resume_run(&res);
    }
    run_cmd_free(&c);
    return rc < 0 ? BH_EXIT_OK : rc;
}

static int seen_end(const bh_hrec *rec, void *ud) {
    if (rec->type == BH_REC_RUN_END) *(int *)ud = 1;
    return 0;
}

/* Has the run an end record (ok, failed, interrupted, abandoned...)? */
static int has_run_end(const char *dir) {
    char *path = bh_util_asprintf("%s/journal.jsonl", dir);
    int end = 0;
    bh_history_each(path, seen_end, &end);
    free(path);
    return end;
}

static int undo_usage(const bh_options *o) {
    int rc = one_run(o);
    if (rc) return rc;
    if (o->settle && (o->step || o->abandon || o->retry_all))
        return bh_cmd_usage_error("undo", "--settle undoes nothing: not with --step, --abandon or "
                                          "--retry-unknown");
    if (o->note && !o->settle) return bh_cmd_usage_error("undo", "--note goes with --settle");
    return 0;
}

int bh_cmd_undo(int argc, char **argv, const bh_cli *g) {
    run_cmd c;
    int rc = run_cmd_open(&c, "undo", BH_OPTIONS_UNDO, argc, argv, UNDO_HELP, undo_usage, g);
    if (rc == 0 && c.o.abandon && !has_run_end(c.dir)) {
        /* End it first as a resume would, without going on: then it is a
         * finished run like any other, and undo works on its journal. */
        bh_resume_opts res = {.run_dir = c.dir,
                              .run_opts = &c.ro,
                              .secrets = c.secrets,
                              .plugins = c.o.plugins,
                              .abandon = 1};
        rc = bh_resume_run(&res);
        if (rc == 1) rc = 0; /* it ended, abandoned: a step of it had failed */
    }
    bh_undo_opts uo = {.run_dir = c.dir,
                       .step = c.o.step,
                       .retry_unknown = c.o.retry_all,
                       .run_opts = &c.ro,
                       .secrets = c.secrets,
                       .plugins = c.o.plugins,
                       .settle = c.o.settle,
                       .note = c.o.note};
    if (rc == 0) rc = bh_undo_run(&uo);
    run_cmd_free(&c);
    return rc < 0 ? BH_EXIT_OK : rc;
}
