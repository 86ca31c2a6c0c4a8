/* approve, deny, done and undo: the commands that act on an existing run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "control.h"
#include "run.h"
#include "sign.h"
#include "undo.h"
#include "util.h"

static const char APPROVE_HELP[] =
    "usage: bulkhead approve RUN STEP --as NAME --reason TEXT\n"
    "       bulkhead deny RUN STEP --as NAME --reason TEXT\n"
    "\n"
    "Approve or deny a step that a running engine is waiting on, from another\n"
    "terminal. The engine listens on RUN's control socket (in the run folder,\n"
    "reachable only by its user); the decision is recorded in the journal with\n"
    "the name, the reason, how it came (socket) and the caller's uid and pid.\n"
    "A step with approvers = N starts after N different names approved; one\n"
    "denial is enough to stop it.\n"
    "\n"
    "  --as NAME      who decides (default $BULKHEAD_OPERATOR, else the login name)\n"
    "  --reason TEXT  why: required, it is the record\n"
    "\n"
    "RUN is a run id, a unique prefix, 'last', or a run folder path.\n"
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
    "  --as NAME    who (default $BULKHEAD_OPERATOR, else the login name)\n"
    "\n"
    "exit: 0 accepted, 1 refused by the engine, 2 usage, 6 no such run or no\n"
    "engine running it\n";

static const char UNDO_HELP[] =
    "usage: bulkhead undo RUN [--step STEP] [--retry-unknown] [--operator NAME]\n"
    "\n"
    "Run the undo of every completed step of a finished run, in reverse\n"
    "completion order (lift containment at the all-clear, clean up after a\n"
    "drill). Each undo is appended to the run's journal. The runbook is loaded\n"
    "again from where it ran, with the run's parameters, and must be the same\n"
    "file (SHA-256). Steps already undone are never undone again, so an\n"
    "interrupted undo is resumed by running the command again; an undo cut off\n"
    "before it recorded its end runs again only for idempotent steps or with\n"
    "--retry-unknown.\n"
    "\n"
    "  --step STEP       only this step's instances\n"
    "  --retry-unknown   also repeat undos whose earlier outcome is unknown\n"
    "  --operator NAME   who, for the record\n"
    "  --sign-key FILE   sign checkpoints of what is appended (default\n"
    "                    $BULKHEAD_SIGN_KEY)\n"
    "  --json, --plain   as for `run`\n"
    "\n"
    "exit: 0 every undo ok, 1 an undo failed or the run is not finished,\n"
    "2 usage, 3 runbook missing or changed, 5 journal broken, 6 I/O or no such\n"
    "run, 130/143 interrupted\n";

static int call(const char *cmd, const char *dir, cJSON *req) {
    cJSON *reply = NULL;
    int err = bh_control_call(dir, req, 10000, &reply);
    cJSON_Delete(req);
    if (err == -ENOENT || err == -ECONNREFUSED) {
        fprintf(stderr,
                "bulkhead %s: no engine is running %s (no one listens on its control "
                "socket)\n",
                cmd, dir);
        return BH_EXIT_IO;
    }
    if (err) {
        fprintf(stderr, "bulkhead %s: cannot reach the engine of %s: %s\n", cmd, dir,
                bh_util_strerror(err));
        return BH_EXIT_IO;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    const cJSON *msg =
        cJSON_GetObjectItemCaseSensitive(reply, cJSON_IsTrue(ok) ? "message" : "error");
    int rc = cJSON_IsTrue(ok) ? BH_EXIT_OK : BH_EXIT_FAILED;
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
            return bh_cmd_usage_error(cmd, "unknown option '%s'", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return bh_cmd_usage_error(cmd, "too many arguments: '%s'", a);
        }
    }
    if (npos < 2) return bh_cmd_usage_error(cmd, "give the run and the step: %s RUN STEP", cmd);
    if (!text || !*text)
        return bh_cmd_usage_error(cmd, "%s TEXT is required: it goes in the record", text_flag);
    as = bh_run_operator(as);
    char *dir = bh_cmd_find_run(g, pos[0]);
    if (!dir) return BH_EXIT_IO;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", is_done ? (failed ? "fail" : "done") : cmd);
    cJSON_AddStringToObject(req, "step", pos[1]);
    cJSON_AddStringToObject(req, "as", as);
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

int bh_cmd_undo(int argc, char **argv, const bh_cli *g) {
    const char *run = NULL, *step = NULL, *operator_name = NULL, *key = NULL;
    int retry_unknown = 0, json = 0, plain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bh_cmd_is_help(a)) {
            fputs(UNDO_HELP, stdout);
            return BH_EXIT_OK;
        }
        if (strcmp(a, "--step") == 0 || strcmp(a, "--operator") == 0 ||
            strcmp(a, "--sign-key") == 0) {
            if (i + 1 >= argc) return bh_cmd_usage_error("undo", "%s needs a value", a);
            if (strcmp(a, "--step") == 0)
                step = argv[++i];
            else if (strcmp(a, "--sign-key") == 0)
                key = argv[++i];
            else
                operator_name = argv[++i];
        } else if (strcmp(a, "--retry-unknown") == 0) {
            retry_unknown = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--plain") == 0) {
            plain = 1;
        } else if (a[0] == '-' && a[1]) {
            return bh_cmd_usage_error("undo", "unknown option '%s'", a);
        } else if (!run) {
            run = a;
        } else {
            return bh_cmd_usage_error("undo", "one run at a time");
        }
    }
    if (!run) return bh_cmd_usage_error("undo", "which run? give its id, a prefix or 'last'");
    if (!key) key = getenv("BULKHEAD_SIGN_KEY");
    bh_signer *signer = NULL;
    if (key && *key) {
        char err[400];
        signer = bh_sign_load(key, err, sizeof err);
        if (!signer) {
            fprintf(stderr, "bulkhead undo: %s\n", err);
            return BH_EXIT_USAGE;
        }
    }
    char *dir = bh_cmd_find_run(g, run);
    if (!dir) {
        bh_sign_free(signer);
        return BH_EXIT_IO;
    }
    bh_run_opts ro = {
        .signer = signer,
        .state_dir = g->state_dir,
        .operator_name = operator_name,
        .console_mode = json                                ? BH_CONSOLE_JSON
                        : (!plain && isatty(STDOUT_FILENO)) ? BH_CONSOLE_TTY
                                                            : BH_CONSOLE_PLAIN,
    };
    bh_undo_opts uo = {
        .run_dir = dir, .step = step, .retry_unknown = retry_unknown, .run_opts = &ro};
    int rc = bh_undo_run(&uo);
    bh_sign_free(signer);
    free(dir);
    return rc;
}
