#include "report/scorecard.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "journal/history.h"
#include "journal/remain.h"
#include "base/util.h"

#define S bh_journal_str
#define N bh_journal_num

/* A field of a record that may be missing: a scorecard can be printed from
 * a journal someone edited. */
static const char *str(const cJSON *o, const char *k) {
    const char *v = S(o, k);
    return v ? v : "?";
}

static int containment_phase(const char *phase) {
    return phase && (strncmp(phase, "contain", 7) == 0 || strncmp(phase, "isolat", 6) == 0);
}

/* The records of each step, in journal order, found by bsearch: a drill
 * of a long fan-out has tens of thousands of records, and each fault,
 * approval and step looks only at its own. */
typedef struct {
    const bh_hrec **v; /* by step, then journal order */
    size_t n;
} by_step;

static int entry_cmp(const void *pa, const void *pb) {
    const bh_hrec *a = *(const bh_hrec *const *)pa, *b = *(const bh_hrec *const *)pb;
    int c = strcmp(a->step, b->step);
    if (c) return c;
    return a < b ? -1 : a > b; /* the same history: place is order */
}

static by_step index_records(const bh_history *h) {
    by_step ix = {bh_util_xcalloc(h->n + 1, sizeof(const bh_hrec *)), 0};
    for (size_t k = 0; k < h->n; k++)
        if (h->rec[k].step) ix.v[ix.n++] = &h->rec[k];
    qsort(ix.v, ix.n, sizeof(const bh_hrec *), entry_cmp);
    return ix;
}

/* The step's records as [*from, *to). */
static void step_records(const by_step *ix, const char *step, size_t *from, size_t *to) {
    size_t lo = 0, hi = ix->n;
    if (!step) {
        *from = *to = 0;
        return;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->v[mid]->step, step) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *from = lo;
    while (hi < ix->n && strcmp(ix->v[hi]->step, step) == 0)
        hi++;
    *to = lo < hi ? hi : lo;
}

/* An attempt's end the operator chose at a resume not to repeat: in doubt
 * only because it had started something, not a failure the runbook met. */
static int at_operators_word(const bh_hrec *end) {
    return bh_util_streq(S(bh_hrec_get(end, "error"), "code"), "unknown_outcome");
}

/* The outcome and how of a fault whose attempt ended with mine. */
static void fault_outcome(const bh_hrec *mine, const char **outcome, const char **how) {
    const char *next = bh_hrec_str(mine, "next"), *status = bh_hrec_str(mine, "status");
    *outcome = "unresolved";
    *how = "the run ended first";
    if (bh_util_streq(status, "ok") || bh_util_streq(status, "skipped")) {
        *outcome = "absorbed";
        *how = "no effect";
    } else if (bh_util_streq(status, "unknown") || at_operators_word(mine)) {
        *how = "outcome unknown";
    } else if (bh_util_streq(next, "retry")) {
        *outcome = "absorbed";
        *how = "retry";
    } else if (bh_util_streq(next, "continue") || bh_util_streq(next, "rollback")) {
        *outcome = "absorbed";
        *how = next;
    } else if (bh_hrec_true(mine, "halted")) {
        *how = "the run was already stopping";
    } else if (bh_util_streq(next, "abort")) {
        *outcome = "stopped the run";
        *how = mine->attempt > 1 ? "retries used up" : "abort";
    }
}

/* What became of a fault: the end of the attempt it was injected into
 * says what the run did next. An attempt in doubt failed all the same (it
 * did not succeed), and is judged as a failure; the entry says so too. */
static void judge_fault(const by_step *ix, const bh_hrec *fault, cJSON *out) {
    size_t from, to;
    step_records(ix, fault->step, &from, &to);
    const bh_hrec *mine = NULL;
    for (size_t k = from; k < to && !mine; k++) {
        const bh_hrec *r = ix->v[k];
        if (r->type == BH_REC_STEP_END && bh_history_same(r->json, fault->json, BH_SAME_ITEM) &&
            r->attempt == fault->attempt)
            mine = r;
    }
    const char *outcome = "unresolved", *how = "the run ended first";
    if (mine) fault_outcome(mine, &outcome, &how);
    cJSON_AddStringToObject(out, "outcome", outcome);
    cJSON_AddStringToObject(out, "how", how);
    if (mine && bh_util_streq(bh_hrec_str(mine, "status"), "in_doubt")) {
        cJSON_AddBoolToObject(out, "in_doubt", 1);
        if (bh_hrec_str(mine, "may_remain"))
            cJSON_AddStringToObject(out, "may_remain", bh_hrec_str(mine, "may_remain"));
    }
}

/* In-doubt outcomes: instances whose final attempt (not one retried) ended
 * in doubt, each counted once however often a resume repeated it. */
static int count_doubt(const bh_history *h) {
    cJSON *seen = cJSON_CreateObject();
    int n = 0;
    for (size_t k = 0; k < h->n; k++) {
        const bh_hrec *r = &h->rec[k];
        if (r->type != BH_REC_STEP_END || !bh_util_streq(bh_hrec_str(r, "status"), "in_doubt") ||
            bh_util_streq(bh_hrec_str(r, "next"), "retry") || !r->step)
            continue;
        char key[300];
        snprintf(key, sizeof key, "%s#%d#%d", r->step, r->item, r->rep);
        if (cJSON_GetObjectItemCaseSensitive(seen, key)) continue;
        cJSON_AddTrueToObject(seen, key);
        n++;
    }
    cJSON_Delete(seen);
    return n;
}

/* What in-doubt instances may have left as the journal stands (remain.h):
 * a rollback's undo may have settled some. */
static cJSON *may_remain(const bh_history *h) {
    bh_remain rm;
    bh_remain_read(&rm, h);
    cJSON *out = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, rm.open) cJSON_AddItemToArray(
        out, cJSON_CreateString(S(e, "may_remain") ? S(e, "may_remain") : "?"));
    bh_remain_free(&rm);
    return out;
}

/* A containment step holds when its final end is ok (or it was not needed:
 * skipped by its own when) and nothing rolled it back; one in doubt does
 * not (it may have acted, but did not succeed: *doubt is set). Returns -1
 * when the step never ended, else 0 or 1; *at is the sim time of its last
 * end. */
static int contained_step(const by_step *ix, const bh_step *s, double *at, int *doubt) {
    size_t from, to;
    step_records(ix, s->id, &from, &to);
    const char *final = NULL;
    int undone = 0;
    for (size_t k = from; k < to; k++) {
        const bh_hrec *r = ix->v[k];
        if (r->type == BH_REC_UNDO_START) undone = 1;
        int ending = r->type == BH_REC_STEP_END || r->type == BH_REC_STEP_DONE ||
                     r->type == BH_REC_STEP_SKIPPED;
        if (!ending || r->undo) continue;
        if (r->sim_ms > *at) *at = r->sim_ms;
        /* a fan-out's step_done sums its items; else the last end */
        if (r->type == BH_REC_STEP_SKIPPED) /* not reached (after) or stopped (halt) */
            final = bh_util_streq(bh_hrec_str(r, "cause"), "when") ? "ok" : "not run";
        else if (r->type == BH_REC_STEP_DONE || s->each_ref == LUA_NOREF)
            final = bh_util_streq(bh_hrec_str(r, "status"), "skipped") ? "ok"
                                                                       : bh_hrec_str(r, "status");
    }
    if (!final) return -1;
    *doubt = bh_util_streq(final, "in_doubt");
    return bh_util_streq(final, "ok") && !undone;
}

/* Containment: when the last containment step ended, and whether all of
 * them held. A cadence watches rather than contains: left out. */
static void add_containment(cJSON *sc, const by_step *ix, const bh_runbook *rb) {
    int has_phase = 0, contained = 1, ended = 0;
    double contain_ms = -1;
    cJSON *contain_doubt = cJSON_CreateArray();
    for (size_t i = 0; i < rb->nsteps; i++) {
        const bh_step *s = &rb->steps[i];
        if (!containment_phase(s->phase) || s->every_ms > 0) continue;
        has_phase = 1;
        int doubt = 0;
        int held = contained_step(ix, s, &contain_ms, &doubt);
        if (held >= 0) ended = 1;
        if (held != 1) contained = 0;
        if (doubt) cJSON_AddItemToArray(contain_doubt, cJSON_CreateString(s->id));
    }
    if (has_phase && ended && contain_ms >= 0) {
        cJSON_AddNumberToObject(sc, "containment_ms", contain_ms);
        cJSON_AddBoolToObject(sc, "contained", contained);
        if (cJSON_GetArraySize(contain_doubt) > 0) {
            cJSON_AddItemToObject(sc, "containment_in_doubt", contain_doubt);
            contain_doubt = NULL;
        }
    } else {
        cJSON_AddNullToObject(sc, "containment_ms");
        cJSON_AddBoolToObject(sc, "contained", 0);
        cJSON_AddStringToObject(sc, "containment_note",
                                has_phase ? "the containment phase never ran"
                                          : "the runbook has no contain*/isolat* phase");
    }
    cJSON_Delete(contain_doubt);
}

/* A field of a record that may be missing: a scorecard can be printed from
 * a journal someone edited. */
static const char *rec_str(const bh_hrec *r, const char *k) {
    const char *v = bh_hrec_str(r, k);
    return v ? v : "?";
}

static void add_faults(cJSON *sc, const by_step *ix, const bh_history *h) {
    cJSON *faults = cJSON_AddArrayToObject(sc, "faults");
    int absorbed = 0, stopped = 0;
    for (size_t k = 0; k < h->n; k++) {
        const bh_hrec *r = &h->rec[k];
        if (r->type != BH_REC_FAULT_INJECTED) continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "step", r->step ? r->step : "?");
        if (r->item > 0) cJSON_AddNumberToObject(f, "item", r->item);
        cJSON_AddNumberToObject(f, "attempt", r->attempt);
        cJSON_AddStringToObject(f, "kind", rec_str(r, "kind"));
        if (bh_hrec_num(r, "factor", 0) > 0)
            cJSON_AddNumberToObject(f, "factor", bh_hrec_num(r, "factor", 0));
        cJSON_AddStringToObject(f, "source", rec_str(r, "source"));
        judge_fault(ix, r, f);
        absorbed += bh_util_streq(S(f, "outcome"), "absorbed");
        stopped += bh_util_streq(S(f, "outcome"), "stopped the run");
        cJSON_AddItemToArray(faults, f);
    }
    cJSON_AddNumberToObject(sc, "faults_absorbed", absorbed);
    cJSON_AddNumberToObject(sc, "faults_stopped_run", stopped);
}

/* Approvals: from each approval_wait to the decision that ended it. */
static void add_approvals(cJSON *sc, const by_step *ix) {
    double wait = 0;
    int approvals = 0;
    for (size_t k = 0; k < ix->n; k++) {
        const bh_hrec *w = ix->v[k];
        if (w->type != BH_REC_APPROVAL_WAIT) continue;
        approvals++;
        double from = w->sim_ms >= 0 ? w->sim_ms : 0, to = from;
        /* the step's later records, in journal order */
        for (size_t j = k + 1; j < ix->n && strcmp(ix->v[j]->step, w->step) == 0; j++) {
            const bh_hrec *d = ix->v[j];
            if (d->type == BH_REC_APPROVAL || d->type == BH_REC_STEP_END)
                to = d->sim_ms >= 0 ? d->sim_ms : from;
            if ((d->type == BH_REC_APPROVAL &&
                 (bh_util_streq(bh_hrec_str(d, "decision"), "deny") ||
                  bh_hrec_num(d, "approvals", 0) >= bh_hrec_num(d, "needed", 1))) ||
                d->type == BH_REC_STEP_END)
                break;
        }
        wait += to - from;
    }
    cJSON_AddNumberToObject(sc, "approvals", approvals);
    cJSON_AddNumberToObject(sc, "approval_wait_ms", wait);
}

/* What the runbook leaves open. */
static void add_gaps(cJSON *sc, const bh_runbook *rb, const cJSON *simulation) {
    cJSON *no_undo = cJSON_AddArrayToObject(sc, "no_undo");
    cJSON *no_timeout = cJSON_AddArrayToObject(sc, "no_timeout");
    cJSON *no_estimate = cJSON_AddArrayToObject(sc, "no_estimate");
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(simulation, "history");
    for (size_t i = 0; i < rb->nsteps; i++) {
        const bh_step *s = &rb->steps[i];
        /* where an undo matters: containment, and what says it is destructive */
        if (s->undo_ref == LUA_NOREF && !s->no_undo && !s->manual && s->every_ms <= 0 &&
            (containment_phase(s->phase) || s->destructive))
            cJSON_AddItemToArray(no_undo, cJSON_CreateString(s->id));
        if (!s->timeout_set && !rb->timeout_set)
            cJSON_AddItemToArray(no_timeout, cJSON_CreateString(s->id));
        if (s->estimate_ms < 0 && !cJSON_GetObjectItemCaseSensitive(history, s->id))
            cJSON_AddItemToArray(no_estimate, cJSON_CreateString(s->id));
    }
}

cJSON *bh_scorecard_compute(const bh_history *h, const bh_runbook *rb, double total_ms,
                            const char *status) {
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(sc, "status", status ? status : "?");
    cJSON_AddNumberToObject(sc, "total_ms", total_ms);
    const cJSON *simulation = h->n > 0 && h->rec[0].type == BH_REC_RUN_START
                                  ? bh_hrec_get(&h->rec[0], "simulation")
                                  : NULL;
    cJSON_AddStringToObject(sc, "mode", S(simulation, "mode") ? S(simulation, "mode") : "real");
    if (bh_util_streq(S(simulation, "mode"), "drill") && S(simulation, "seed"))
        cJSON_AddStringToObject(sc, "seed", S(simulation, "seed"));
    by_step ix = index_records(h);
    add_containment(sc, &ix, rb);
    add_faults(sc, &ix, h);
    cJSON_AddNumberToObject(sc, "in_doubt", count_doubt(h));
    cJSON_AddItemToObject(sc, "may_remain", may_remain(h));
    add_approvals(sc, &ix);
    add_gaps(sc, rb, simulation);
    free(ix.v);
    return sc;
}

static const char *dflt_str(const cJSON *x) {
    return cJSON_IsString(x) ? x->valuestring : "?";
}

static void print_list(FILE *out, const char *label, const cJSON *list) {
    if (cJSON_GetArraySize(list) == 0) return;
    fprintf(out, "  %-24s", label);
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, list) fprintf(out, "%s%s", n++ ? ", " : "", dflt_str(x));
    fputc('\n', out);
}

void bh_scorecard_print(const cJSON *sc, FILE *out) {
    char t[32];
    if (bh_util_streq(S(sc, "mode"), "drill"))
        fprintf(out, "drill scorecard (seed %s: the same seed gives the same drill)\n",
                str(sc, "seed"));
    else
        fprintf(out, "dry-run scorecard (nothing was executed or sent)\n");
    bh_util_format_duration(N(sc, "total_ms", 0), t, sizeof t);
    fprintf(out, "  %-24s%s (%s)\n", "total time", t, str(sc, "status"));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(sc, "containment_ms");
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(sc, "containment_in_doubt");
    if (cJSON_IsNumber(c)) {
        bh_util_format_duration(c->valuedouble, t, sizeof t);
        fprintf(out, "  %-24s%s", "time to containment", t);
        if (cJSON_GetArraySize(cd) > 0) {
            fputs(" (NOT contained: in doubt, it may have acted but did not succeed: ", out);
            const cJSON *x;
            int n = 0;
            cJSON_ArrayForEach(x, cd) fprintf(out, "%s%s", n++ ? ", " : "", dflt_str(x));
            fputs(")\n", out);
        } else {
            fprintf(out, "%s\n",
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sc, "contained"))
                        ? ""
                        : " (NOT contained: a containment step did not succeed)");
        }
    } else {
        fprintf(out, "  %-24s%s\n", "time to containment",
                S(sc, "containment_note") ? S(sc, "containment_note") : "-");
    }
    bh_util_format_duration(N(sc, "approval_wait_ms", 0), t, sizeof t);
    fprintf(out, "  %-24s%s over %.0f approval(s)\n", "waiting for approvals", t,
            N(sc, "approvals", 0));
    const cJSON *faults = cJSON_GetObjectItemCaseSensitive(sc, "faults");
    fprintf(out, "  %-24s%d injected, %.0f absorbed, %.0f stopped the run\n", "faults",
            cJSON_GetArraySize(faults), N(sc, "faults_absorbed", 0),
            N(sc, "faults_stopped_run", 0));
    const cJSON *f;
    cJSON_ArrayForEach(f, faults) {
        char where[160];
        if (N(f, "item", 0) > 0)
            snprintf(where, sizeof where, "%s[%.0f] #%.0f", str(f, "step"), N(f, "item", 0),
                     N(f, "attempt", 0));
        else
            snprintf(where, sizeof where, "%s #%.0f", str(f, "step"), N(f, "attempt", 0));
        fprintf(out, "    %-30s %-8s %s (%s)%s\n", where, str(f, "kind"), str(f, "outcome"),
                str(f, "how"),
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "in_doubt")) ? ", in doubt" : "");
    }
    if (N(sc, "in_doubt", 0) > 0) {
        const cJSON *left = cJSON_GetObjectItemCaseSensitive(sc, "may_remain");
        fprintf(out, "  %-24s%.0f outcome(s) that may have acted; %s\n", "in doubt",
                N(sc, "in_doubt", 0),
                cJSON_GetArraySize(left)
                    ? "may remain:"
                    : "each settled since (undone, or done by a later attempt)");
        const cJSON *x;
        cJSON_ArrayForEach(x, left) fprintf(out, "    %s\n", dflt_str(x));
    }
    print_list(out, "steps without undo", cJSON_GetObjectItemCaseSensitive(sc, "no_undo"));
    print_list(out, "steps without timeout", cJSON_GetObjectItemCaseSensitive(sc, "no_timeout"));
    print_list(out, "steps without estimate", cJSON_GetObjectItemCaseSensitive(sc, "no_estimate"));
}

char *bh_scorecard_text(const cJSON *sc) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return NULL;
    bh_scorecard_print(sc, mem);
    fclose(mem);
    return text;
}
