#include "scorecard.h"

#include <lauxlib.h>
#include <string.h>

#include "journal.h"
#include "util.h"

#define S bh_journal_str
#define N bh_journal_num

static int is(const char *a, const char *b) {
    return a && strcmp(a, b) == 0;
}

static int containment_phase(const char *phase) {
    return phase && (strncmp(phase, "contain", 7) == 0 || strncmp(phase, "isolat", 6) == 0);
}

static int same_instance(const cJSON *a, const cJSON *b) {
    return is(S(a, "step"), S(b, "step")) && N(a, "item", 0) == N(b, "item", 0) &&
           N(a, "rep", 0) == N(b, "rep", 0);
}

/* What became of a fault: find its attempt's end, then the instance's
 * last end. */
static void judge_fault(const cJSON *records, const cJSON *fault, cJSON *out) {
    const cJSON *mine = NULL, *last = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, records) {
        if (!is(S(r, "type"), "step_end") || !same_instance(r, fault)) continue;
        if (N(r, "attempt", 0) == N(fault, "attempt", -1)) mine = r;
        if (N(r, "attempt", 0) >= N(fault, "attempt", 0)) last = r;
    }
    const char *outcome = "unresolved", *how = "the run ended first";
    if (mine && is(S(mine, "status"), "ok")) {
        outcome = "absorbed";
        how = "no effect";
    } else if (mine && last) {
        const char *next = S(last, "next");
        if (is(S(last, "status"), "ok")) {
            outcome = "absorbed";
            how = "retry";
        } else if (is(next, "continue") || is(next, "rollback")) {
            outcome = "absorbed";
            how = next;
        } else if (is(next, "abort")) {
            outcome = "stopped the run";
            how = N(last, "attempt", 0) > N(fault, "attempt", 0) ? "retries used up" : "abort";
        } else if (is(S(last, "status"), "unknown")) {
            how = "outcome unknown";
        }
    }
    cJSON_AddStringToObject(out, "outcome", outcome);
    cJSON_AddStringToObject(out, "how", how);
}

cJSON *bh_scorecard_compute(const cJSON *records, const bh_runbook *rb, double total_ms,
                            const char *status) {
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(sc, "status", status ? status : "?");
    cJSON_AddNumberToObject(sc, "total_ms", total_ms);
    const cJSON *start = cJSON_GetArrayItem(records, 0);
    const cJSON *simulation = cJSON_GetObjectItemCaseSensitive(start, "simulation");
    cJSON_AddStringToObject(sc, "mode", S(simulation, "mode") ? S(simulation, "mode") : "real");
    if (is(S(simulation, "mode"), "drill") && S(simulation, "seed"))
        cJSON_AddStringToObject(sc, "seed", S(simulation, "seed"));

    /* Containment: the last end of a step in a containment phase. */
    int has_phase = 0, contained = 1;
    double contain_ms = -1;
    for (size_t i = 0; i < rb->nsteps; i++) {
        if (!containment_phase(rb->steps[i].phase)) continue;
        has_phase = 1;
        const char *final = NULL;
        const cJSON *r;
        cJSON_ArrayForEach(r, records) {
            const char *t = S(r, "type");
            if (!is(S(r, "step"), rb->steps[i].id)) continue;
            int ending = is(t, "step_end") || is(t, "step_done") || is(t, "step_skipped");
            if (!ending) continue;
            if (N(r, "sim_ms", -1) > contain_ms) contain_ms = N(r, "sim_ms", -1);
            /* a fan-out's step_done sums its items; else the last end */
            if (is(t, "step_done") || is(t, "step_skipped") ||
                (rb->steps[i].each_ref == LUA_NOREF && is(t, "step_end")))
                final = is(t, "step_skipped") ? "skipped" : S(r, "status");
        }
        if (!is(final, "ok") && !is(final, "skipped")) contained = 0;
    }
    if (has_phase && contain_ms >= 0) {
        cJSON_AddNumberToObject(sc, "containment_ms", contain_ms);
        cJSON_AddBoolToObject(sc, "contained", contained);
    } else {
        cJSON_AddNullToObject(sc, "containment_ms");
        cJSON_AddBoolToObject(sc, "contained", 0);
        cJSON_AddStringToObject(sc, "containment_note",
                                has_phase ? "the containment phase never ran"
                                          : "the runbook has no contain*/isolat* phase");
    }

    /* Faults. */
    cJSON *faults = cJSON_AddArrayToObject(sc, "faults");
    int absorbed = 0, stopped = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, records) {
        if (!is(S(r, "type"), "fault_injected")) continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "step", S(r, "step") ? S(r, "step") : "?");
        if (N(r, "item", 0) > 0) cJSON_AddNumberToObject(f, "item", N(r, "item", 0));
        cJSON_AddNumberToObject(f, "attempt", N(r, "attempt", 0));
        cJSON_AddStringToObject(f, "kind", S(r, "kind") ? S(r, "kind") : "?");
        if (N(r, "factor", 0) > 0) cJSON_AddNumberToObject(f, "factor", N(r, "factor", 0));
        cJSON_AddStringToObject(f, "source", S(r, "source") ? S(r, "source") : "?");
        judge_fault(records, r, f);
        absorbed += is(S(f, "outcome"), "absorbed");
        stopped += is(S(f, "outcome"), "stopped the run");
        cJSON_AddItemToArray(faults, f);
    }
    cJSON_AddNumberToObject(sc, "faults_absorbed", absorbed);
    cJSON_AddNumberToObject(sc, "faults_stopped_run", stopped);

    /* Approvals: from each approval_wait to the decision that ended it. */
    double wait = 0;
    int approvals = 0;
    cJSON_ArrayForEach(r, records) {
        if (!is(S(r, "type"), "approval_wait")) continue;
        approvals++;
        const cJSON *d;
        double from = N(r, "sim_ms", 0), to = from;
        int after = 0;
        cJSON_ArrayForEach(d, records) {
            if (d == r) {
                after = 1;
                continue;
            }
            if (!after || !is(S(d, "step"), S(r, "step"))) continue;
            const char *t = S(d, "type");
            if (is(t, "approval") || is(t, "step_end")) to = N(d, "sim_ms", from);
            if ((is(t, "approval") &&
                 (is(S(d, "decision"), "deny") || N(d, "approvals", 0) >= N(d, "needed", 1))) ||
                is(t, "step_end"))
                break;
        }
        wait += to - from;
    }
    cJSON_AddNumberToObject(sc, "approvals", approvals);
    cJSON_AddNumberToObject(sc, "approval_wait_ms", wait);

    /* What the runbook leaves open. */
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
    return sc;
}

static void print_list(FILE *out, const char *label, const cJSON *list) {
    if (cJSON_GetArraySize(list) == 0) return;
    fprintf(out, "  %-24s", label);
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, list) fprintf(out, "%s%s", n++ ? ", " : "", x->valuestring);
    fputc('\n', out);
}

void bh_scorecard_print(const cJSON *sc, FILE *out) {
    char t[32];
    if (is(S(sc, "mode"), "drill"))
        fprintf(out, "drill scorecard (seed %s: the same seed gives the same drill)\n",
                S(sc, "seed") ? S(sc, "seed") : "?");
    else
        fprintf(out, "dry-run scorecard (nothing was executed or sent)\n");
    bh_util_format_duration(N(sc, "total_ms", 0), t, sizeof t);
    fprintf(out, "  %-24s%s (%s)\n", "total time", t, S(sc, "status") ? S(sc, "status") : "?");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(sc, "containment_ms");
    if (cJSON_IsNumber(c)) {
        bh_util_format_duration(c->valuedouble, t, sizeof t);
        fprintf(out, "  %-24s%s%s\n", "time to containment", t,
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sc, "contained"))
                    ? ""
                    : " (NOT contained: a containment step did not succeed)");
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
            snprintf(where, sizeof where, "%s[%.0f] #%.0f", S(f, "step"), N(f, "item", 0),
                     N(f, "attempt", 0));
        else
            snprintf(where, sizeof where, "%s #%.0f", S(f, "step"), N(f, "attempt", 0));
        fprintf(out, "    %-30s %-8s %s (%s)\n", where, S(f, "kind"), S(f, "outcome"), S(f, "how"));
    }
    print_list(out, "steps without undo", cJSON_GetObjectItemCaseSensitive(sc, "no_undo"));
    print_list(out, "steps without timeout", cJSON_GetObjectItemCaseSensitive(sc, "no_timeout"));
    print_list(out, "steps without estimate", cJSON_GetObjectItemCaseSensitive(sc, "no_estimate"));
}
