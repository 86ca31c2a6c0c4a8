/* runs, show and verify: the commands that read journals. */

#include "journal/schema.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "journal/history.h"
#include "journal/journal.h"
#include "base/json.h"
#include "journal/remain.h"
#include "base/util.h"

static const char RUNS_HELP[] =
    "usage: bulkhead runs [--json]\n"
    "\n"
    "List the runs in the state directory, oldest first: id, runbook, status,\n"
    "step counts, operator and start time. A run without a run_end record is\n"
    "shown as 'incomplete' (the engine died or is still running).\n";

static const char SHOW_HELP[] =
    "usage: bulkhead show RUN [--json]\n"
    "\n"
    "One run: the runbook and its hash, parameters, operator, each step's\n"
    "status, attempts, duration and error, every command it ran and where its\n"
    "captured output lives (with size and SHA-256), and the journal's head hash.\n"
    "RUN is a run id, a unique prefix, 'last', or a run folder or journal path.\n";

static char *journal_path(const char *dir) {
    return bh_util_asprintf("%s/journal.jsonl", dir);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

char *bh_cmd_find_run(const bh_cli *g, const char *arg) {
    size_t len = strlen(arg);
    if (len > 14 && strcmp(arg + len - 14, "/journal.jsonl") == 0) {
        char *dir = bh_util_xstrdup(arg);
        dir[len - 14] = '\0';
        return dir;
    }
    if (strchr(arg, '/') && is_dir(arg)) return bh_util_xstrdup(arg);
    struct stat st;
    if (strchr(arg, '/') && stat(arg, &st) != 0 && errno == EACCES) {
        /* another account, not let through to the run folder */
        fprintf(stderr, "bulkhead: cannot reach run folder %s: %s\n", arg, strerror(errno));
        return NULL;
    }
    char *runs_dir = bh_util_asprintf("%s/runs", g->state_dir);
    size_t n;
    char **names = bh_util_list_names(runs_dir, &n);
    char *found = NULL;
    size_t matches = 0;
    if (strcmp(arg, "last") == 0 || strcmp(arg, "latest") == 0) {
        if (n) {
            found = bh_util_asprintf("%s/%s", runs_dir, names[n - 1]);
            matches = 1;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (strncmp(names[i], arg, len) != 0) continue;
            if (strlen(names[i]) == len) { /* an exact id wins over prefixes */
                free(found);
                found = bh_util_asprintf("%s/%s", runs_dir, names[i]);
                matches = 1;
                break;
            }
            matches++;
            if (!found) found = bh_util_asprintf("%s/%s", runs_dir, names[i]);
        }
    }
    if (matches == 0 && is_dir(arg)) {
        found = bh_util_xstrdup(arg);
        matches = 1;
    }
    if (matches != 1) {
        if (matches == 0)
            fprintf(stderr, "bulkhead: no run '%s' in %s (see 'bulkhead runs')\n", arg, runs_dir);
        else
            fprintf(stderr, "bulkhead: '%s' matches %zu runs in %s; give more of the id\n", arg,
                    matches, runs_dir);
        free(found);
        found = NULL;
    }
    bh_util_free_names(names, n);
    free(runs_dir);
    return found;
}

/* --- a run's summary, read from its journal ---------------------------- */

typedef struct {
    bh_history h;         /* the journal's records */
    const bh_hrec *start; /* the last run_start record (in h), or NULL */
    const bh_hrec *end;   /* the last run_end record (in h), or NULL */
    cJSON *steps;         /* object: id -> {status, attempts, duration_ms, error, execs[]} */
    cJSON *order;         /* array of step ids */
    bh_remain remain;     /* what in-doubt instances may have left (remain.h) */
} summary;

static cJSON *step_entry(summary *s, const char *id) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(s->steps, id);
    if (!e) {
        e = cJSON_AddObjectToObject(s->steps, id);
        cJSON_AddStringToObject(e, "id", id);
        cJSON_AddStringToObject(e, "status", "pending");
        cJSON_AddArrayToObject(e, "execs");
        cJSON_AddItemToArray(s->order, cJSON_CreateString(id));
    }
    return e;
}

static void set_field(cJSON *o, const char *k, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(o, k))
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    else
        cJSON_AddItemToObject(o, k, v);
}

/* The exec line of step entry e that exec_end rec ends: the latest of the
 * same instance, undo or not, attempt and number in the attempt (searched
 * from the end: what ends now started recently; in a fan-out the
 * instances' records interleave). */
static cJSON *exec_of(cJSON *e, const bh_hrec *rec) {
    cJSON *execs = cJSON_GetObjectItemCaseSensitive(e, "execs");
    unsigned same = BH_SAME_ITEM | BH_SAME_ATTEMPT | BH_SAME_N | BH_SAME_UNDO;
    for (cJSON *x = execs && execs->child ? execs->child->prev : NULL; x;
         x = x == execs->child ? NULL : x->prev)
        if (bh_history_same(x, rec->json, same)) return x;
    return NULL;
}

/* A fan-out instance's key ("web1") by its item number, for its execs. */
static void remember_key(cJSON *e, const bh_hrec *rec) {
    const char *key = bh_hrec_str(rec, "key");
    if (rec->item <= 0 || !key) return;
    cJSON *keys = cJSON_GetObjectItemCaseSensitive(e, "keys");
    if (!keys) keys = cJSON_AddObjectToObject(e, "keys");
    char n[32];
    snprintf(n, sizeof n, "%d", rec->item);
    if (!cJSON_GetObjectItemCaseSensitive(keys, n)) cJSON_AddStringToObject(keys, n, key);
}

/* Copy onto exec line x which instance of step entry e it belongs to,
 * with the fan-out item's key as its step_start named it. */
static void add_instance(cJSON *x, const cJSON *e, const bh_hrec *rec) {
    if (rec->item > 0) cJSON_AddNumberToObject(x, "item", rec->item);
    if (rec->rep > 0) cJSON_AddNumberToObject(x, "rep", rec->rep);
    if (rec->undo) cJSON_AddBoolToObject(x, "undo", 1);
    char n[32];
    snprintf(n, sizeof n, "%d", rec->item);
    const char *key = bh_journal_str(cJSON_GetObjectItemCaseSensitive(e, "keys"), n);
    if (key) cJSON_AddStringToObject(x, "key", key);
}

/* What each record about a step says of it, for show's step entry e. */

static const char *str_or(const bh_hrec *rec, const char *key, const char *dflt) {
    return bh_hrec_str(rec, key) ? bh_hrec_str(rec, key) : dflt;
}

static void copy_field(cJSON *to, const bh_hrec *rec, const char *key) {
    const cJSON *v = bh_hrec_get(rec, key);
    if (v) set_field(to, key, cJSON_Duplicate(v, 1));
}

static void on_step_start(cJSON *e, const bh_hrec *rec) {
    remember_key(e, rec);
    /* A new attempt: what an earlier one ended with is history (its exec
     * lines stay, marked with their attempt). */
    cJSON_DeleteItemFromObjectCaseSensitive(e, "error");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "result");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "duration_ms");
    set_field(e, "status", cJSON_CreateString("running"));
    set_field(e, "attempts", cJSON_CreateNumber(rec->attempt));
    set_field(e, "started", cJSON_CreateString(rec->ts ? rec->ts : ""));
}

static void on_step_end(cJSON *e, const bh_hrec *rec) {
    set_field(e, "status", cJSON_CreateString(str_or(rec, "status", "?")));
    set_field(e, "duration_ms", cJSON_CreateNumber(bh_hrec_num(rec, "duration_ms", 0)));
    static const char *const keep[] = {"error", "result", "reason", "doubt"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        copy_field(e, rec, keep[i]);
}

static void on_step_done(cJSON *e, const bh_hrec *rec) {
    /* A fan-out or cadence: the sum of its instances wins over the last
     * instance's step_end, whose duration is only its own. */
    cJSON_DeleteItemFromObjectCaseSensitive(e, "duration_ms");
    set_field(e, "status", cJSON_CreateString(str_or(rec, "status", "?")));
    char text[96];
    snprintf(text, sizeof text, "%g ok, %g in doubt, %g failed, %g skipped",
             bh_hrec_num(rec, "ok", 0), bh_hrec_num(rec, "in_doubt", 0),
             bh_hrec_num(rec, "failed", 0), bh_hrec_num(rec, "skipped", 0));
    set_field(e, "instances", cJSON_CreateString(text));
}

static void on_undo_end(cJSON *e, const bh_hrec *rec) {
    int ok = strcmp(str_or(rec, "status", ""), "ok") == 0;
    if (ok) set_field(e, "status", cJSON_CreateString("undone"));
    set_field(e, "undo", cJSON_CreateString(ok ? "ok" : "failed"));
}

static void on_approval(cJSON *e, const bh_hrec *rec) {
    cJSON *list = cJSON_GetObjectItemCaseSensitive(e, "approvals");
    if (!list) list = cJSON_AddArrayToObject(e, "approvals");
    char text[400];
    snprintf(text, sizeof text, "%s by %s (%s): %s", str_or(rec, "decision", "?"),
             str_or(rec, "by", "?"), str_or(rec, "how", "?"), str_or(rec, "reason", ""));
    cJSON_AddItemToArray(list, cJSON_CreateString(text));
}

static void on_step_skipped(cJSON *e, const bh_hrec *rec) {
    set_field(e, "status", cJSON_CreateString("skipped"));
    set_field(e, "reason", cJSON_CreateString(str_or(rec, "reason", "")));
}

static void on_exec_start(cJSON *e, const bh_hrec *rec) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "attempt", rec->attempt);
    cJSON_AddNumberToObject(x, "n", bh_hrec_num(rec, "n", 0));
    add_instance(x, e, rec);
    cJSON_AddItemToObject(x, "argv", cJSON_Duplicate(bh_hrec_get(rec, "argv"), 1));
    if (rec->type == BH_REC_EXEC_ERROR && bh_hrec_str(rec, "error"))
        cJSON_AddStringToObject(x, "error", bh_hrec_str(rec, "error"));
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(e, "execs"), x);
}

static void on_exec_end(cJSON *e, const bh_hrec *rec) {
    cJSON *x = exec_of(e, rec);
    if (!x) return;
    static const char *const keep[] = {"pid",    "code",        "signal", "timed_out",
                                       "killed", "duration_ms", "stdout", "stderr"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        copy_field(x, rec, keep[i]);
}

typedef void (*step_fn)(cJSON *e, const bh_hrec *rec);
static const step_fn ON_STEP[BH_REC_COUNT] = {
    [BH_REC_STEP_START] = on_step_start, [BH_REC_STEP_END] = on_step_end,
    [BH_REC_STEP_DONE] = on_step_done,   [BH_REC_UNDO_END] = on_undo_end,
    [BH_REC_APPROVAL] = on_approval,     [BH_REC_STEP_SKIPPED] = on_step_skipped,
    [BH_REC_EXEC_START] = on_exec_start, [BH_REC_EXEC_ERROR] = on_exec_start,
    [BH_REC_EXEC_END] = on_exec_end,
};

static void collect(summary *s, const bh_hrec *rec) {
    if (!bh_journal_str(rec->json, "type")) return;
    bh_remain_note(&s->remain, rec);
    if (rec->type == BH_REC_RUN_START) {
        s->start = rec;
        const cJSON *id;
        cJSON_ArrayForEach(id, bh_hrec_get(rec, "steps")) {
            if (cJSON_IsString(id)) step_entry(s, id->valuestring);
        }
    } else if (rec->type == BH_REC_RUN_END) {
        s->end = rec;
    } else if (rec->step) {
        cJSON *e = step_entry(s, rec->step);
        if (rec->type < BH_REC_COUNT && ON_STEP[rec->type]) ON_STEP[rec->type](e, rec);
    }
}

static void summary_free(summary *s) {
    cJSON_Delete(s->steps);
    cJSON_Delete(s->order);
    bh_remain_free(&s->remain);
    bh_history_free(&s->h);
}

/* Read a run's journal. Returns 0, or an exit code after printing why. */
static int summarize(const char *dir, summary *s, bh_journal_check *chk) {
    memset(s, 0, sizeof *s);
    s->steps = cJSON_CreateObject();
    s->order = cJSON_CreateArray();
    bh_remain_init(&s->remain);
    char *path = journal_path(dir);
    /* Read once: the chain check and the summary look at the same bytes. */
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "bulkhead: cannot read %s: %s\n", path, strerror(errno));
        free(path);
        return BH_EXIT_IO;
    }
    bh_journal_verify_buf(buf, len, chk);
    bh_journal_check_run(buf, len, dir, chk);
    bh_history_read_buf(&s->h, buf, len);
    for (size_t k = 0; k < s->h.n; k++)
        collect(s, &s->h.rec[k]);
    bh_remain_end(&s->remain); /* what a dead engine's attempts may have left */
    free(buf);
    free(path);
    return 0;
}

/* A field of the run's run_start or run_end, NULL when there is none. */
static const cJSON *start_get(const summary *s, const char *k) {
    return s->start ? bh_hrec_get(s->start, k) : NULL;
}

static const char *start_str(const summary *s, const char *k) {
    return s->start ? bh_hrec_str(s->start, k) : NULL;
}

static const char *end_str(const summary *s, const char *k) {
    return s->end ? bh_hrec_str(s->end, k) : NULL;
}

static const char *run_status(const summary *s) {
    return end_str(s, "status") ? end_str(s, "status") : "incomplete";
}

static void run_name(const char *dir, char *out, size_t len) {
    const char *slash = strrchr(dir, '/');
    snprintf(out, len, "%s", slash && slash[1] ? slash + 1 : dir);
}

static void counts_text(const summary *s, char *out, size_t len) {
    out[0] = '\0';
    const char *names[] = {"ok",      "in_doubt", "failed", "timed_out", "cancelled",
                           "unknown", "skipped",  "undone", "running",   "pending"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, s->steps) if (bh_journal_str(e, "status") &&
                                            strcmp(bh_journal_str(e, "status"), names[k]) == 0) n++;
        if (!n) continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%d %s", used ? ", " : "", n,
                 strcmp(names[k], "in_doubt") == 0 ? "in doubt" : names[k]);
    }
}

/* The texts of what in-doubt instances may have left, as a JSON array. */
static cJSON *remain_texts(const summary *s) {
    cJSON *out = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, s->remain.open)
        cJSON_AddItemToArray(out, cJSON_CreateString(bh_journal_str(e, "may_remain")));
    return out;
}

/* Close the memory stream o and print what it holds (text, len) safely
 * for a terminal: a NUL, bytes that are not UTF-8 and controls shown as
 * the journal writes them (json.h). */
static void put_text(FILE *o, char **text, size_t *len) {
    fclose(o); /* only now are *text and *len set */
    char *esc = bh_json_escape_terminal(*text, *len, NULL);
    fputs(esc ? esc : *text, stdout);
    free(esc);
    free(*text);
}

int bh_cmd_runs(int argc, char **argv, const bh_cli *g) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(RUNS_HELP, stdout);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            return bh_cmd_usage_error("runs", "unexpected argument '%s'", argv[i]);
        }
    }
    char *runs_dir = bh_util_asprintf("%s/runs", g->state_dir);
    size_t n;
    char **names = bh_util_list_names(runs_dir, &n);
    cJSON *arr = cJSON_CreateArray();
    char *text = NULL;
    size_t tlen = 0;
    FILE *txt = json ? NULL : open_memstream(&text, &tlen);
    if (!json && !txt) {
        fprintf(stderr, "bulkhead runs: out of memory\n");
        abort();
    }
    if (!json && n == 0) fprintf(txt, "no runs in %s\n", runs_dir);
    for (size_t i = 0; i < n; i++) {
        char *dir = bh_util_asprintf("%s/%s", runs_dir, names[i]);
        summary s;
        bh_journal_check chk;
        if (summarize(dir, &s, &chk) == 0) {
            const cJSON *rb = start_get(&s, "runbook");
            char counts[200];
            counts_text(&s, counts, sizeof counts);
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "id", names[i]);
                cJSON_AddStringToObject(o, "dir", dir);
                if (bh_journal_str(rb, "id"))
                    cJSON_AddStringToObject(o, "runbook", bh_journal_str(rb, "id"));
                cJSON_AddStringToObject(o, "status", run_status(&s));
                if (start_str(&s, "mode"))
                    cJSON_AddStringToObject(o, "mode", start_str(&s, "mode"));
                if (start_str(&s, "operator"))
                    cJSON_AddStringToObject(o, "operator", start_str(&s, "operator"));
                if (start_str(&s, "ts")) cJSON_AddStringToObject(o, "started", start_str(&s, "ts"));
                cJSON_AddBoolToObject(o, "intact", chk.intact);
                cJSON_AddItemToObject(o, "may_remain", remain_texts(&s));
                cJSON_AddItemToArray(arr, o);
            } else {
                char doubt[300] = "";
                int nd = cJSON_GetArraySize(s.remain.open);
                if (nd > 0)
                    snprintf(doubt, sizeof doubt, "  IN DOUBT: %s%s",
                             bh_journal_str(cJSON_GetArrayItem(s.remain.open, 0), "may_remain"),
                             nd > 1 ? " (and more: bulkhead show)" : "");
                fprintf(txt, "%-48s %-11s %-9s %s  (%s)%s%s\n", names[i], run_status(&s),
                        start_str(&s, "mode") ? start_str(&s, "mode") : "?",
                        start_str(&s, "ts") ? start_str(&s, "ts") : "?", counts, doubt,
                        chk.intact ? "" : "  JOURNAL BROKEN");
            }
        }
        summary_free(&s);
        free(dir);
    }
    if (json) {
        char *out = bh_json_print(arr, 1);
        puts(out);
        free(out);
    } else {
        put_text(txt, &text, &tlen);
    }
    cJSON_Delete(arr);
    bh_util_free_names(names, n);
    free(runs_dir);
    return BH_EXIT_OK;
}

static void print_stream(FILE *o, const char *label, const cJSON *st) {
    if (!st) return;
    double size = bh_journal_num(st, "size", 0);
    if (size == 0) return;
    const char *path = bh_journal_str(st, "path");
    const char *sha = bh_journal_str(st, "sha256");
    const char *why = bh_journal_str(st, "truncated_reason");
    int cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "truncated"));
    fprintf(o, "         %s: %s (%.0f bytes%s%s%s, sha256 %.16s...)\n", label,
            path ? path : "(not stored)", size, cut ? ", truncated" : "", cut && why ? ": " : "",
            cut && why ? why : "", sha ? sha : "?");
}

/* Parse `CMD RUN [--json]` (json NULL: no --json option) and find the run.
 * *dir is NULL when the command is done: help printed or an error; the exit
 * code is returned then. */
static int run_arg(int argc, char **argv, const bh_cli *g, const char *cmd, const char *help,
                   int *json, char **dir) {
    const char *which = NULL;
    *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(help, stdout);
            return BH_EXIT_OK;
        } else if (json && strcmp(argv[i], "--json") == 0) {
            *json = 1;
        } else if (argv[i][0] == '-') {
            return bh_cmd_unknown_option(cmd, argv[i]);
        } else if (which) {
            return bh_cmd_usage_error(cmd, "one run at a time");
        } else {
            which = argv[i];
        }
    }
    if (!which) return bh_cmd_usage_error(cmd, "which run? (an id, a prefix, or 'last')");
    *dir = bh_cmd_find_run(g, which);
    return *dir ? BH_EXIT_OK : BH_EXIT_IO;
}

/* Whose exec line x is, as the console labels it: "[web1] ", "[#3] " for
 * a cadence's repetition, "undo ", and "#2 " for the attempt when there
 * were several. */
static void print_instance(FILE *o, const cJSON *x, int attempts) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "undo"))) fprintf(o, "undo ");
    if (bh_journal_str(x, "key"))
        fprintf(o, "[%s] ", bh_journal_str(x, "key"));
    else if (bh_journal_num(x, "item", 0) > 0)
        fprintf(o, "[%.0f] ", bh_journal_num(x, "item", 0));
    else if (bh_journal_num(x, "rep", 0) > 0)
        fprintf(o, "[#%.0f] ", bh_journal_num(x, "rep", 0));
    if (attempts) fprintf(o, "#%.0f ", bh_journal_num(x, "attempt", 0));
}

/* The interrupts and resumptions of the run, as recorded. */
static cJSON *events_json(const summary *s) {
    cJSON *out = cJSON_CreateArray();
    for (size_t k = 0; k < s->h.n; k++)
        if (s->h.rec[k].type == BH_REC_INTERRUPT || s->h.rec[k].type == BH_REC_RUN_RESUMED)
            cJSON_AddItemToArray(out, cJSON_Duplicate(s->h.rec[k].json, 1));
    return out;
}

/* show's text: what a person reads, every string as the journal writes it
 * (a NUL, bytes that are not UTF-8: their escapes, json.h). */
static void show_text(FILE *o, const char *name, const char *dir, const summary *s,
                      const bh_journal_check *chk) {
    const cJSON *rb = start_get(s, "runbook");
    fprintf(o, "run %s: %s\n", name, run_status(s));
    const char *mode = start_str(s, "mode");
    if (mode && strcmp(mode, "real") != 0)
        fprintf(o,
                "  %s: nothing was executed or sent; commands below are what it would "
                "have run\n",
                strcmp(mode, "drill") == 0 ? "DRILL" : "DRY RUN");
    if (rb)
        fprintf(o, "  runbook  %s (%s)\n           %s sha256 %s\n", bh_journal_str(rb, "id"),
                bh_journal_str(rb, "title"), bh_journal_str(rb, "path"),
                bh_journal_str(rb, "sha256"));
    if (s->start) {
        char *params = bh_json_print(start_get(s, "params"), 0);
        fprintf(o, "  params   %s\n  operator %s on %s, mode %s\n  started  %s\n",
                params ? params : "{}", start_str(s, "operator"), start_str(s, "host"),
                start_str(s, "mode"), start_str(s, "ts"));
        free(params);
    }
    if (s->end) {
        char el[32];
        bh_util_format_duration(bh_hrec_num(s->end, "duration_ms", 0), el, sizeof el);
        fprintf(o, "  ended    %s after %s\n", end_str(s, "ts"), el);
    }
    for (size_t k = 0; k < s->h.n; k++) {
        const bh_hrec *ev = &s->h.rec[k];
        if (ev->type == BH_REC_RUN_RESUMED)
            fprintf(o, "  resumed  %s by %s (before: %s, %d leftover command(s) stopped)\n", ev->ts,
                    bh_hrec_str(ev, "operator"), bh_hrec_str(ev, "previous"),
                    cJSON_GetArraySize(bh_hrec_get(ev, "leftovers_stopped")));
        else if (ev->type == BH_REC_INTERRUPT)
            fprintf(o, "  interrupted by %s at %s (%s)\n", bh_hrec_str(ev, "signal"), ev->ts,
                    bh_hrec_str(ev, "action"));
    }
    fprintf(o, "  folder   %s\n", dir);
    const cJSON *d;
    if (cJSON_GetArraySize(s->remain.open) > 0)
        fprintf(o, "\nin doubt: these may have acted, and are not undone (bulkhead undo %s%s)\n",
                name, s->end ? "" : "; if its engine died: bulkhead undo RUN --abandon");
    cJSON_ArrayForEach(d, s->remain.open) fprintf(o, "  %s\n", bh_journal_str(d, "may_remain"));
    fprintf(o, "\nsteps\n");
    const cJSON *id;
    cJSON_ArrayForEach(id, s->order) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->steps, id->valuestring);
        char el[32] = "";
        if (cJSON_GetObjectItemCaseSensitive(e, "duration_ms"))
            bh_util_format_duration(bh_journal_num(e, "duration_ms", 0), el, sizeof el);
        int attempts = (int)bh_journal_num(e, "attempts", 0);
        const char *status = bh_journal_str(e, "status");
        fprintf(o, "  %-28s %-10s %s", id->valuestring, status ? status : "?", el);
        if (attempts > 1) fprintf(o, "  (%d attempts)", attempts);
        fputc('\n', o);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");
        if (err)
            fprintf(o, "       error: %s (%s)\n", bh_journal_str(err, "message"),
                    bh_journal_str(err, "code"));
        if (bh_journal_str(e, "doubt"))
            fprintf(o, "       in doubt: %s\n", bh_journal_str(e, "doubt"));
        if (bh_journal_str(e, "reason"))
            fprintf(o, "       reason: %s\n", bh_journal_str(e, "reason"));
        if (bh_journal_str(e, "instances"))
            fprintf(o, "       fan-out: %s\n", bh_journal_str(e, "instances"));
        const cJSON *ap;
        cJSON_ArrayForEach(ap, cJSON_GetObjectItemCaseSensitive(e, "approvals"))
            fprintf(o, "       approval: %s\n", ap->valuestring);
        if (bh_journal_str(e, "undo") && strcmp(bh_journal_str(e, "undo"), "ok") != 0)
            fprintf(o, "       undo: FAILED (see the journal's undo_end)\n");
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(e, "execs")) {
            char *args = bh_json_print(cJSON_GetObjectItemCaseSensitive(x, "argv"), 0);
            fprintf(o, "       ");
            print_instance(o, x, attempts > 1);
            fprintf(o, "$ %s", args ? args : "?");
            free(args);
            if (bh_journal_str(x, "error"))
                fprintf(o, "  -> %s\n", bh_journal_str(x, "error"));
            else if (bh_journal_str(x, "signal"))
                fprintf(o, "  -> %s%s\n", bh_journal_str(x, "signal"),
                        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "timed_out"))
                            ? " (timed out)"
                            : "");
            else if (cJSON_GetObjectItemCaseSensitive(x, "code"))
                fprintf(o, "  -> exit %.0f\n", bh_journal_num(x, "code", 0));
            else
                fprintf(o, "  -> (no end recorded)\n");
            print_stream(o, "stdout", cJSON_GetObjectItemCaseSensitive(x, "stdout"));
            print_stream(o, "stderr", cJSON_GetObjectItemCaseSensitive(x, "stderr"));
        }
    }
    if (chk->intact)
        fprintf(o, "\njournal intact: %llu records, head %s\n", (unsigned long long)chk->records,
                chk->head);
    else
        fprintf(o, "\nJOURNAL BROKEN at seq %lld (byte offset %llu): %s\n", (long long)chk->bad_seq,
                (unsigned long long)chk->bad_offset, chk->message);
}

int bh_cmd_show(int argc, char **argv, const bh_cli *g) {
    int json = 0;
    char *dir;
    int rc = run_arg(argc, argv, g, "show", SHOW_HELP, &json, &dir);
    if (!dir) return rc;
    summary s;
    bh_journal_check chk;
    rc = summarize(dir, &s, &chk);
    if (rc) {
        free(dir);
        summary_free(&s);
        return rc;
    }
    char name[256];
    run_name(dir, name, sizeof name);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", name);
        cJSON_AddStringToObject(o, "dir", dir);
        cJSON_AddStringToObject(o, "status", run_status(&s));
        if (s.start) cJSON_AddItemToObject(o, "start", cJSON_Duplicate(s.start->json, 1));
        if (s.end) cJSON_AddItemToObject(o, "end", cJSON_Duplicate(s.end->json, 1));
        cJSON *steps = cJSON_AddArrayToObject(o, "steps");
        const cJSON *id;
        cJSON_ArrayForEach(id, s.order) cJSON_AddItemToArray(
            steps, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(s.steps, id->valuestring), 1));
        cJSON_AddItemToObject(o, "events", events_json(&s));
        cJSON_AddBoolToObject(o, "intact", chk.intact);
        cJSON_AddItemToObject(o, "may_remain", remain_texts(&s));
        cJSON_AddStringToObject(o, "head", chk.head);
        cJSON_AddNumberToObject(o, "records", (double)chk.records);
        char *out = bh_json_print(o, 1);
        puts(out);
        free(out);
        cJSON_Delete(o);
    } else {
        char *text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        if (!o) {
            fprintf(stderr, "bulkhead show: out of memory\n");
            abort();
        }
        show_text(o, name, dir, &s, &chk);
        put_text(o, &text, &len);
    }
    summary_free(&s);
    free(dir);
    return BH_EXIT_OK;
}
