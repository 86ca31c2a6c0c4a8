/* drills: the history of a runbook's drills, from their scorecard records. */

#include "journal/schema.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "journal/history.h"
#include "journal/journal.h"
#include "load/runbook.h"
#include "base/util.h"

static const char DRILLS_HELP[] =
    "usage: bulkhead drills RUNBOOK [--json]\n"
    "\n"
    "The drills of a runbook in the state directory, oldest first, with their\n"
    "scorecards: seed, outcome, time to containment, total time, faults\n"
    "injected / absorbed / that stopped the run, time waiting for approvals,\n"
    "and the trend against the drill before (a minus: faster than last time).\n"
    "RUNBOOK is the runbook's file or its id.\n"
    "\n"
    "exit: 0, 2 usage, 3 the runbook file cannot be loaded\n";

#define S bh_journal_str
#define N bh_journal_num

typedef struct {
    const char *id;
    int match;
    cJSON *start, *scorecard;
} drill_ctx;

static int read_drill(const bh_hrec *rec, void *ud) {
    drill_ctx *d = ud;
    if (rec->type == BH_REC_RUN_START) {
        const cJSON *rb = bh_hrec_get(rec, "runbook");
        const char *mode = bh_hrec_str(rec, "mode");
        d->match =
            S(rb, "id") && strcmp(S(rb, "id"), d->id) == 0 && mode && strcmp(mode, "drill") == 0;
        if (d->match) d->start = cJSON_Duplicate(rec->json, 1);
        return d->match ? 0 : 1;
    }
    if (rec->type == BH_REC_SCORECARD) {
        cJSON_Delete(d->scorecard); /* a resumed drill: its last one */
        d->scorecard = cJSON_Duplicate(rec->json, 1);
    }
    return 0;
}

/* A change against the drill before: "+5m", "-1m", "=", or "-" for none. */
static void delta(char *out, size_t len, const cJSON *change) {
    if (!change) {
        snprintf(out, len, "-");
        return;
    }
    double v = change->valuedouble;
    char t[32];
    bh_util_format_duration(v > 0 ? v : -v, t, sizeof t);
    snprintf(out, len, "%s%s", v == 0 ? "=" : v > 0 ? "+" : "-", v == 0 ? "" : t);
}

/* The runbook id that `which` names: a runbook file's id, or which itself.
 * NULL after printing why the file does not load. */
static char *runbook_id(const char *which) {
    struct stat st;
    if (stat(which, &st) != 0 || !S_ISREG(st.st_mode)) return bh_util_xstrdup(which);
    bh_runbook_opts o = {.path = which, .placeholders = 1, .secret_standins = 1};
    bh_runbook *rb;
    char *id = NULL;
    if (bh_runbook_load(&o, &rb) == BH_RUNBOOK_INVALID || !rb->id)
        bh_diag_print(&rb->diags, stderr);
    else
        id = bh_util_xstrdup(rb->id);
    bh_runbook_free(rb);
    return id;
}

/* The last drill's figures, for each row's change against it. */
typedef struct {
    double contain, total;
    int have_contain, have_total;
} trend;

static void add_containment(cJSON *row, const cJSON *sc, trend *tr) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(sc, "containment_ms");
    if (!cJSON_IsNumber(c)) {
        cJSON_AddNullToObject(row, "containment_ms");
        return;
    }
    cJSON_AddNumberToObject(row, "containment_ms", c->valuedouble);
    cJSON_AddBoolToObject(row, "contained",
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sc, "contained")));
    if (tr->have_contain)
        cJSON_AddNumberToObject(row, "containment_change_ms", c->valuedouble - tr->contain);
    tr->contain = c->valuedouble;
    tr->have_contain = 1;
}

static void add_totals(cJSON *row, const cJSON *sc, trend *tr) {
    double total = N(sc, "total_ms", 0);
    cJSON_AddNumberToObject(row, "total_ms", total);
    if (tr->have_total) cJSON_AddNumberToObject(row, "total_change_ms", total - tr->total);
    tr->total = total;
    tr->have_total = 1;
    cJSON_AddNumberToObject(row, "faults",
                            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sc, "faults")));
    cJSON_AddNumberToObject(row, "absorbed", N(sc, "faults_absorbed", 0));
    cJSON_AddNumberToObject(row, "stopped", N(sc, "faults_stopped_run", 0));
    cJSON_AddNumberToObject(row, "approval_wait_ms", N(sc, "approval_wait_ms", 0));
}

/* One drill of the runbook: its row, from its run_start and scorecard. */
static cJSON *drill_row(const char *name, const drill_ctx *d, trend *tr) {
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "run", name);
    cJSON_AddStringToObject(row, "started", S(d->start, "ts") ? S(d->start, "ts") : "?");
    const cJSON *sc = d->scorecard;
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(d->start, "simulation");
    cJSON_AddStringToObject(row, "seed", S(sim, "seed") ? S(sim, "seed") : "?");
    cJSON_AddStringToObject(row, "status", sc && S(sc, "status") ? S(sc, "status") : "incomplete");
    add_containment(row, sc, tr);
    if (sc) add_totals(row, sc, tr);
    return row;
}

/* The drills of runbook id in the state dir, oldest first. */
static cJSON *drill_rows(const char *runs_dir, const char *id) {
    size_t n;
    char **names = bh_util_list_names(runs_dir, &n);
    cJSON *rows = cJSON_CreateArray();
    trend tr = {0};
    for (size_t k = 0; k < n; k++) {
        char *path = bh_util_asprintf("%s/%s/journal.jsonl", runs_dir, names[k]);
        drill_ctx d = {.id = id};
        bh_history_each(path, read_drill, &d);
        free(path);
        if (d.match) cJSON_AddItemToArray(rows, drill_row(names[k], &d, &tr));
        cJSON_Delete(d.start);
        cJSON_Delete(d.scorecard);
    }
    bh_util_free_names(names, n);
    return rows;
}

static void print_row(const cJSON *row) {
    char c[32] = "-", t[32] = "-", a[32] = "-", dc[40], dt[40], f[32];
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(row, "containment_ms")))
        bh_util_format_duration(N(row, "containment_ms", 0), c, sizeof c);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "contained")) && strcmp(c, "-") != 0)
        strcat(c, "!");
    bh_util_format_duration(N(row, "total_ms", 0), t, sizeof t);
    bh_util_format_duration(N(row, "approval_wait_ms", 0), a, sizeof a);
    delta(dc, sizeof dc, cJSON_GetObjectItemCaseSensitive(row, "containment_change_ms"));
    delta(dt, sizeof dt, cJSON_GetObjectItemCaseSensitive(row, "total_change_ms"));
    snprintf(f, sizeof f, "%.0f/%.0f/%.0f", N(row, "faults", 0), N(row, "absorbed", 0),
             N(row, "stopped", 0));
    printf("  %-24s %-12s %-10s %-10s %-10s %-9s %-10s %s, %s\n", S(row, "started"), S(row, "seed"),
           S(row, "status"), c, t, f, a, dc, dt);
}

int bh_cmd_drills(int argc, char **argv, const bh_cli *g) {
    const char *which = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(DRILLS_HELP, stdout);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return bh_cmd_unknown_option("drills", argv[i]);
        } else if (which) {
            return bh_cmd_usage_error("drills", "one runbook at a time");
        } else {
            which = argv[i];
        }
    }
    if (!which) return bh_cmd_usage_error("drills", "which runbook? its file or its id");
    char *id = runbook_id(which);
    if (!id) return BH_EXIT_RUNBOOK;
    char *runs_dir = bh_util_asprintf("%s/runs", g->state_dir);
    cJSON *rows = drill_rows(runs_dir, id);
    if (json) {
        char *out = cJSON_Print(rows);
        puts(out);
        free(out);
    } else if (cJSON_GetArraySize(rows) == 0) {
        printf("no drills of '%s' in %s (bulkhead drill RUNBOOK)\n", id, runs_dir);
    } else {
        printf("drills of %s, oldest first\n", id);
        printf("  %-24s %-12s %-10s %-10s %-10s %-9s %-10s %s\n", "started (UTC)", "seed", "status",
               "contain", "total", "faults", "approvals", "trend (contain, total)");
        const cJSON *row;
        cJSON_ArrayForEach(row, rows) print_row(row);
        printf("faults: injected/absorbed/stopped the run; '!': not contained\n");
    }
    cJSON_Delete(rows);
    free(runs_dir);
    free(id);
    return BH_EXIT_OK;
}
