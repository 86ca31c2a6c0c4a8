#include "cli/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "load/plugin.h"

enum {
    LOADS = BH_OPTIONS_PLAN | BH_OPTIONS_CHECK | BH_OPTIONS_RUN | BH_OPTIONS_DRILL,
    RUNS = BH_OPTIONS_RUN | BH_OPTIONS_DRILL | BH_OPTIONS_RESUME,
    ENGINE = RUNS | BH_OPTIONS_UNDO,           /* an engine that writes a journal */
    ASKS = BH_OPTIONS_RUN | BH_OPTIONS_RESUME, /* may ask people (a drill asks nobody) */
    ALL = LOADS | ENGINE,
};

/* What an option does with its value (NULL for a flag): 0, or the exit
 * code after printing why the value will not do. */
typedef int (*opt_fn)(bh_options *o, const char *opt, const char *val);

/* Append to a NULL-terminated list (sized for every argument). */
static void push(const char ***list, size_t *n, size_t cap, const char *item) {
    if (!*list) *list = bh_util_xcalloc(cap + 1, sizeof **list);
    (*list)[(*n)++] = item;
}

/* A whole number from 1 to max into *out; said: "a number from 1 to MAX",
 * else "a count". */
static int count_of(bh_options *o, const char *opt, const char *val, long max, int say_max,
                    int *out) {
    char *end;
    long n = strtol(val, &end, 10);
    if (*end || end == val || n < 1 || n > max) {
        if (say_max)
            return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a number from 1 to %ld", opt, val,
                                      max);
        return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a count", opt, val);
    }
    *out = (int)n;
    return 0;
}

static int o_param(bh_options *o, const char *opt, const char *val) {
    (void)opt;
    char err[512];
    if (bh_params_input_add(&o->params, val, err, sizeof err) != 0)
        return bh_cmd_usage_error(o->cmd, "%s", err);
    return 0;
}

static int o_params(bh_options *o, const char *opt, const char *val) {
    (void)opt;
    char err[512];
    if (bh_params_input_load_file(&o->params, val, err, sizeof err) != 0) {
        fprintf(stderr, "bulkhead %s: %s\n", o->cmd, err);
        return BH_EXIT_PARAMS;
    }
    return 0;
}

static int o_timeout(bh_options *o, const char *opt, const char *val) {
    if (bh_util_parse_duration(val, &o->timeout_ms) != 0 || o->timeout_ms <= 0)
        return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a duration (e.g. 30s)", opt, val);
    return 0;
}

static int o_concurrency(bh_options *o, const char *opt, const char *val) {
    return count_of(o, opt, val, BH_MAX_CONCURRENCY, 1, &o->concurrency);
}

static int o_checkpoint_every(bh_options *o, const char *opt, const char *val) {
    return count_of(o, opt, val, 1000000, 0, &o->checkpoint_every);
}

static int o_chaos(bh_options *o, const char *opt, const char *val) {
    char *end;
    o->chaos = strtod(val, &end);
    if (*end || end == val || !(o->chaos >= 0 && o->chaos <= 1))
        return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a probability (0 to 1)", opt, val);
    return 0;
}

static int o_seed(bh_options *o, const char *opt, const char *val) {
    char *end;
    o->seed = strtoull(val, &end, 10);
    if (*end || end == val || val[0] == '-')
        return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a whole number", opt, val);
    o->seed_given = 1;
    return 0;
}

static int o_approval_wait(bh_options *o, const char *opt, const char *val) {
    if (bh_util_parse_duration(val, &o->approval_wait_ms) != 0)
        return bh_cmd_usage_error(o->cmd, "%s: '%s' is not a duration", opt, val);
    return 0;
}

/* --retry-unknown[=STEP,...] and --skip-unknown[=STEP,...]: every step, or
 * those named (resume); undo takes the plain flag. */
static int o_unknown(bh_options *o, const char *opt, const char *val) {
    int retry = opt[2] == 'r';
    const char *eq = strchr(opt, '=');
    if (!eq) {
        *(retry ? &o->retry_all : &o->skip_all) = 1;
        return 0;
    }
    (void)val;
    char *csv = o->copies[o->ncopies++] = bh_util_xstrdup(eq + 1);
    for (char *save = NULL, *t = strtok_r(csv, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const char ***list = retry ? &o->retry : &o->skip;
        size_t *n = retry ? &o->nretry : &o->nskip;
        const char **grown = realloc(*list, (*n + 2) * sizeof **list);
        if (!grown) abort();
        *list = grown;
        (*list)[(*n)++] = t;
        (*list)[*n] = NULL;
    }
    return 0;
}

/* Options whose value is kept as given, and flags that are set. */
#define STR(field) .offset = offsetof(bh_options, field), .kind = 0
#define FLAG(field) .offset = offsetof(bh_options, field), .kind = 1
#define LIST(field, count)                                                                         \
    .offset = offsetof(bh_options, field), .kind = 2, .count_offset = offsetof(bh_options, count)
#define FN(f) .kind = 3, .fn = f

typedef struct {
    const char *name; /* "--concurrency"; ending in '=': takes "=VALUE" instead */
    size_t offset;    /* of the field a string, flag or list goes to */
    size_t count_offset;
    opt_fn fn;
    unsigned cmds; /* the commands that take it */
    int kind;      /* 0 string, 1 flag, 2 list, 3 function */
    int value;     /* takes a value (the next argument) */
} option;

#define V 1 /* takes a value */
#define N 0 /* a flag */
static const option OPTIONS[] = {
    {.name = "-p", .cmds = LOADS, FN(o_param), .value = V},
    {.name = "--param", .cmds = LOADS, FN(o_param), .value = V},
    {.name = "--params", .cmds = LOADS, FN(o_params), .value = V},
    {.name = "--plugins", .cmds = ALL, STR(plugins), .value = V},
    {.name = "--json", .cmds = ALL & ~BH_OPTIONS_CHECK, FLAG(json), .value = N},
    {.name = "--dot", .cmds = BH_OPTIONS_PLAN, FLAG(dot), .value = N},
    {.name = "--strict", .cmds = BH_OPTIONS_CHECK, FLAG(strict), .value = N},
    {.name = "--plain", .cmds = ENGINE, FLAG(plain), .value = N},
    {.name = "--timeout", .cmds = BH_OPTIONS_RUN | BH_OPTIONS_RESUME, FN(o_timeout), .value = V},
    {.name = "--timeout",
     .cmds = BH_OPTIONS_DRILL,
     LIST(timeout_steps, ntimeout_steps),
     .value = V},
    {.name = "--operator", .cmds = ENGINE, STR(operator_name), .value = V},
    {.name = "--approvers-group",
     .cmds = BH_OPTIONS_RUN | BH_OPTIONS_RESUME,
     STR(approvers_group),
     .value = V},
    {.name = "--concurrency", .cmds = RUNS, FN(o_concurrency), .value = V},
    {.name = "--approve", .cmds = ASKS, LIST(approve, napprove), .value = V},
    {.name = "--secrets", .cmds = ENGINE, STR(secrets_file), .value = V},
    {.name = "--sign-key", .cmds = ENGINE, STR(sign_key), .value = V},
    {.name = "--checkpoint-every", .cmds = RUNS, FN(o_checkpoint_every), .value = V},
    {.name = "--yes", .cmds = ASKS, FLAG(yes), .value = N},
    {.name = "--no-prompt", .cmds = ASKS, FLAG(no_prompt), .value = N},
    {.name = "--dry-run", .cmds = BH_OPTIONS_RUN, FLAG(dry_run), .value = N},
    {.name = "--simulate",
     .cmds = BH_OPTIONS_RUN | BH_OPTIONS_DRILL,
     LIST(simulate, nsimulate),
     .value = V},
    {.name = "--fail", .cmds = BH_OPTIONS_DRILL, LIST(fail, nfail), .value = V},
    {.name = "--slow", .cmds = BH_OPTIONS_DRILL, LIST(slow, nslow), .value = V},
    {.name = "--flaky", .cmds = BH_OPTIONS_DRILL, LIST(flaky, nflaky), .value = V},
    {.name = "--chaos", .cmds = BH_OPTIONS_DRILL, FN(o_chaos), .value = V},
    {.name = "--seed", .cmds = BH_OPTIONS_DRILL, FN(o_seed), .value = V},
    {.name = "--approval-wait", .cmds = BH_OPTIONS_DRILL, FN(o_approval_wait), .value = V},
    {.name = "--retry-unknown",
     .cmds = BH_OPTIONS_RESUME | BH_OPTIONS_UNDO,
     FN(o_unknown),
     .value = N},
    {.name = "--retry-unknown=", .cmds = BH_OPTIONS_RESUME, FN(o_unknown), .value = N},
    {.name = "--skip-unknown", .cmds = BH_OPTIONS_RESUME, FN(o_unknown), .value = N},
    {.name = "--skip-unknown=", .cmds = BH_OPTIONS_RESUME, FN(o_unknown), .value = N},
    {.name = "--step", .cmds = BH_OPTIONS_UNDO, STR(step), .value = V},
    {.name = "--settle", .cmds = BH_OPTIONS_UNDO, STR(settle), .value = V},
    {.name = "--note", .cmds = BH_OPTIONS_UNDO, STR(note), .value = V},
    {.name = "--abandon", .cmds = BH_OPTIONS_UNDO, FLAG(abandon), .value = N},
};

/* The option arg is, for command which: NULL when none. */
static const option *find(const char *arg, unsigned which) {
    for (size_t k = 0; k < sizeof OPTIONS / sizeof OPTIONS[0]; k++) {
        const option *p = &OPTIONS[k];
        size_t n = strlen(p->name);
        int prefix = p->name[n - 1] == '=';
        if (!(p->cmds & which)) continue;
        if (prefix ? strncmp(arg, p->name, n) == 0 : strcmp(arg, p->name) == 0) return p;
    }
    return NULL;
}

static int apply(bh_options *o, const option *p, const char *arg, const char *val, size_t cap) {
    char *base = (char *)o;
    switch (p->kind) {
    case 0:
        *(const char **)(base + p->offset) = val;
        return 0;
    case 1:
        *(int *)(base + p->offset) = 1;
        return 0;
    case 2:
        push((const char ***)(base + p->offset), (size_t *)(base + p->count_offset), cap, val);
        return 0;
    default:
        return p->fn(o, arg, val);
    }
}

int bh_options_parse(bh_options *o, const char *cmd, bh_options_cmd which, int argc, char **argv,
                     const char *help) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->which = which;
    bh_params_input_init(&o->params);
    size_t cap = argc > 0 ? (size_t)argc : 1;
    o->args = bh_util_xcalloc(cap, sizeof *o->args);
    o->copies = bh_util_xcalloc(cap, sizeof *o->copies);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (bh_cmd_is_help(a)) {
            fputs(help, stdout);
            return -1;
        }
        if ((which & LOADS) && strncmp(a, "-p", 2) == 0 && a[2] != '\0' && a[2] != '-') {
            int rc = o_param(o, "-p", a + 2); /* -pNAME=VALUE */
            if (rc) return rc;
            continue;
        }
        const option *p = find(a, which);
        if (!p && a[0] == '-' && a[1] != '\0') return bh_cmd_unknown_option(cmd, a);
        if (!p) {
            o->args[o->nargs++] = a;
            continue;
        }
        if (p->value) {
            if (i + 1 >= argc) return bh_cmd_usage_error(cmd, "%s needs a value", a);
            val = argv[++i];
        }
        int rc = apply(o, p, a, val, cap);
        if (rc) return rc;
    }
    if (which & LOADS) o->plugin_dirs = bh_plugin_dirs(o->plugins);
    return 0;
}

void bh_options_free(bh_options *o) {
    bh_plugin_free_dirs(o->plugin_dirs);
    for (size_t k = 0; k < o->ncopies; k++)
        free(o->copies[k]);
    free(o->copies);
    free(o->args);
    free(o->approve);
    free(o->simulate);
    free(o->slow);
    free(o->flaky);
    free(o->fail);
    free(o->timeout_steps);
    free(o->retry);
    free(o->skip);
    bh_params_input_free(&o->params);
}

int bh_options_run_opts(const bh_options *o, const bh_cli *g, int sim, bh_run_opts *ro,
                        char name[BH_UTIL_NAME_MAX + 1]) {
    memset(ro, 0, sizeof *ro);
    char why[200];
    if (bh_run_operator(o->operator_name, "--operator", name, why, sizeof why) != 0)
        return bh_cmd_usage_error(o->cmd, "%s", why);
    *ro = (bh_run_opts){
        .state_dir = g->state_dir,
        .operator_name = name,
        .approvers_group = o->approvers_group,
        .timeout_override_ms = o->timeout_ms,
        .console_mode = o->json                                ? BH_CONSOLE_JSON
                        : (!o->plain && isatty(STDOUT_FILENO)) ? BH_CONSOLE_TTY
                                                               : BH_CONSOLE_PLAIN,
        .concurrency = o->concurrency,
        .yes = o->yes,
        .approve = o->approve,
        /* a simulation asks nobody: approvals are granted, tasks done;
         * undo asks nobody either */
        .prompt = !sim && (o->which & ASKS) && !o->no_prompt && !o->json && isatty(STDIN_FILENO),
    };
    return 0;
}

int bh_options_signer(const bh_options *o, bh_run_opts *ro) {
    if (bh_cmd_load_signer(o->cmd, o->sign_key, &ro->signer)) return BH_EXIT_USAGE;
    if (ro->signer) ro->checkpoint_every = o->checkpoint_every;
    return 0;
}
