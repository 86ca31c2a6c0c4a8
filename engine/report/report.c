#include "report/report.h"

#include "journal/schema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "journal/remain.h"
#include "report/html.h"
#include "report/md.h"
#include "report/render.h"
#include "report/scorecard.h"
#include "base/util.h"

#define S bh_journal_str
#define N bh_journal_num

static int is(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

static const char *dflt(const char *s, const char *def) {
    return s ? s : def;
}

/* --- the model ---------------------------------------------------------- */

typedef struct {
    int64_t t0;    /* run_start's ts, ms since the epoch */
    int simulated; /* times are the records' sim_ms */
} timebase;

static double t_of(const timebase *tb, const cJSON *rec) {
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(rec, "sim_ms");
    if (cJSON_IsNumber(sim)) return sim->valuedouble;
    int64_t ms;
    if (bh_util_parse_iso8601(S(rec, "ts"), &ms) == 0) return (double)(ms - tb->t0);
    return 0;
}

static void copy_field(cJSON *to, const cJSON *from, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    if (v) cJSON_AddItemToObject(to, key, cJSON_Duplicate(v, 1));
}

/* keys: NULL-terminated. */
static void copy_fields(cJSON *to, const cJSON *from, const char *const *keys) {
    for (; *keys; keys++)
        copy_field(to, from, *keys);
}

static cJSON *find_by_id(cJSON *array, const char *key, const char *id) {
    cJSON *x;
    cJSON_ArrayForEach(x, array) if (is(S(x, key), id)) return x;
    return NULL;
}

static cJSON *phase_entry(cJSON *phases, const char *name) {
    cJSON *p = find_by_id(phases, "name", name);
    if (!p) {
        p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", name);
        cJSON_AddArrayToObject(p, "steps");
        cJSON_AddItemToArray(phases, p);
    }
    return p;
}

/* The step's entry, in its phase (created on first sight). */
static cJSON *step_entry(cJSON *phases, cJSON *index, const char *id, const char *phase) {
    cJSON *st = cJSON_GetObjectItemCaseSensitive(index, id);
    if (st) return st;
    cJSON *p = phase_entry(phases, phase ? phase : "(not reached)");
    st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "id", id);
    cJSON_AddStringToObject(st, "status", "pending");
    cJSON_AddArrayToObject(st, "attempts");
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(p, "steps"), st);
    /* the index holds a reference, not a copy */
    cJSON_AddItemReferenceToObject(index, id, st);
    return st;
}

static int same_instance(const cJSON *a, const cJSON *b) {
    return N(a, "item", 0) == N(b, "item", 0) && N(a, "rep", 0) == N(b, "rep", 0) &&
           N(a, "attempt", -1) == N(b, "attempt", -2);
}

/* Arrays are searched from their tail: what a record ends is nearly
 * always recent, so a fan-out of thousands of items stays linear. cJSON
 * keeps the tail in child->prev. */
static cJSON *tail_of(const cJSON *array) {
    return array && array->child ? array->child->prev : NULL;
}

static cJSON *prev_of(const cJSON *array, const cJSON *x) {
    return x == array->child ? NULL : x->prev;
}

/* The latest attempt (or undo: list "undos") of the record's instance. */
static cJSON *find_attempt(cJSON *step, const char *list, const cJSON *rec) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(step, list);
    for (cJSON *a = tail_of(arr); a; a = prev_of(arr, a))
        if (same_instance(a, rec)) return a;
    return NULL;
}

/* The key of the fan-out item a record is about ("web1", as the console's
 * label shows it): its own, or the one its instance started with. Only
 * step_start and undo_start carry it; what an attempt does next names the
 * item by number. */
static const char *item_key(const cJSON *step, const cJSON *rec) {
    if (S(rec, "key")) return S(rec, "key");
    double item = N(rec, "item", 0);
    if (item <= 0 || !step) return NULL;
    static const char *const lists[] = {"attempts", "undos"};
    for (int k = 0; k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(step, lists[k]);
        for (const cJSON *a = tail_of(arr); a; a = prev_of(arr, a))
            if (N(a, "item", 0) == item && S(a, "key")) return S(a, "key");
    }
    return NULL;
}

/* Which instance and attempt of the step a record is about: item (and its
 * key), repetition, attempt; the same fields for every entry, so each
 * table names an instance the same way. */
static void add_instance_fields(cJSON *to, const cJSON *step, const cJSON *rec) {
    if (N(rec, "item", 0) > 0) cJSON_AddNumberToObject(to, "item", N(rec, "item", 0));
    if (N(rec, "rep", 0) > 0) cJSON_AddNumberToObject(to, "rep", N(rec, "rep", 0));
    const char *key = item_key(step, rec);
    if (key) cJSON_AddStringToObject(to, "key", key);
    cJSON_AddNumberToObject(to, "attempt", N(rec, "attempt", 0));
}

/* The entry of a record about one attempt (a command, a request, a file):
 * when, which step, instance and attempt, and whether an undo did it. */
static cJSON *attempt_entry(const cJSON *rec, const cJSON *step, const char *sid, double t) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "at", dflt(S(rec, "ts"), ""));
    cJSON_AddNumberToObject(x, "t_ms", t);
    cJSON_AddStringToObject(x, "step", sid);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "undo")))
        cJSON_AddBoolToObject(x, "undo", 1);
    add_instance_fields(x, step, rec);
    return x;
}

/* The same for a command or request, with its number within the attempt. */
static cJSON *action_entry(const cJSON *rec, const cJSON *step, const char *sid, double t) {
    cJSON *x = attempt_entry(rec, step, sid, t);
    cJSON_AddNumberToObject(x, "n", N(rec, "n", 0));
    return x;
}

/* What a journal broken at some record says about everything from there
 * on: it may have been edited. */
static void mark_unverified(cJSON *x, int unverified) {
    if (unverified && x && !cJSON_GetObjectItemCaseSensitive(x, "unverified"))
        cJSON_AddBoolToObject(x, "unverified", 1);
}

/* The entry an exec_end or request_end record closes. */
static cJSON *action_ended(const cJSON *list, const char *sid, const cJSON *rec) {
    for (cJSON *x = tail_of(list); x; x = prev_of(list, x))
        if (is(S(x, "step"), sid) && same_instance(x, rec) && N(x, "n", 0) == N(rec, "n", -1) &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "undo")) ==
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "undo")))
            return x;
    return NULL;
}

static void set_str(cJSON *o, const char *k, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v ? v : "");
}

/* An entry of remain.h, as the report lists it: which instance, when (the
 * record that put it in doubt), and what remain.h says of it. */
static cJSON *doubt_entry(const cJSON *e, cJSON *index, const timebase *tb) {
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(index, dflt(S(e, "step"), ""));
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "at", dflt(S(e, "ts"), ""));
    cJSON_AddNumberToObject(x, "t_ms", t_of(tb, e));
    cJSON_AddStringToObject(x, "step", dflt(S(e, "step"), "?"));
    add_instance_fields(x, step, e);
    static const char *const keep[] = {"may_remain", "doubt",      "undo", "by",
                                       "note",       "unverified", NULL};
    copy_fields(x, e, keep);
    if (S(e, "resolved_ts")) cJSON_AddStringToObject(x, "resolved_at", S(e, "resolved_ts"));
    return x;
}

/* in_doubt: what may remain at the end of the journal, and what was in
 * doubt and no longer is (a later attempt succeeded, or an undo). */
static void add_doubt(cJSON *doubt, const bh_remain *remain, cJSON *index, const timebase *tb) {
    cJSON *open = cJSON_AddArrayToObject(doubt, "remaining");
    cJSON *resolved = cJSON_AddArrayToObject(doubt, "resolved");
    const cJSON *e;
    cJSON_ArrayForEach(e, remain->open) cJSON_AddItemToArray(open, doubt_entry(e, index, tb));
    cJSON_ArrayForEach(e, remain->resolved)
        cJSON_AddItemToArray(resolved, doubt_entry(e, index, tb));
}

cJSON *bh_report_model(const cJSON *records, const bh_journal_check *chk) {
    cJSON *m = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(m, "report");
    cJSON_AddNumberToObject(meta, "format", 1);
    cJSON_AddStringToObject(meta, "generator", "bulkhead " BH_VERSION);
    cJSON *run = cJSON_AddObjectToObject(m, "run");
    cJSON *jr = cJSON_AddObjectToObject(m, "journal");
    cJSON *doubt = cJSON_AddObjectToObject(m, "in_doubt");
    cJSON *phases = cJSON_AddArrayToObject(m, "phases");
    cJSON *waits = cJSON_AddArrayToObject(m, "waits");
    cJSON *decisions = cJSON_AddArrayToObject(m, "decisions");
    cJSON *commands = cJSON_AddArrayToObject(m, "commands");
    cJSON *requests = cJSON_AddArrayToObject(m, "requests");
    cJSON *failures = cJSON_AddArrayToObject(m, "failures");
    cJSON *evidence = cJSON_AddArrayToObject(m, "evidence");
    cJSON *events = cJSON_AddArrayToObject(m, "events");
    cJSON *index = cJSON_CreateObject();
    timebase tb = {0, 0};
    const cJSON *start = NULL, *end = NULL, *scorecard = NULL;
    int checkpoints = 0, start_unv = 0, end_unv = 0, scorecard_unv = 0;
    const char *key_id = NULL;
    double last_t = 0;
    /* The records from the broken one on (by place in the file: a record
     * moved from elsewhere keeps its seq) are not vouched for by the
     * chain. */
    int64_t broken_at = chk && !chk->intact ? chk->bad_seq : -1;
    int64_t pos = -1;
    bh_remain remain;
    bh_remain_init(&remain);

    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
        pos++;
        int unv = broken_at >= 0 && pos >= broken_at;
        const char *type = S(rec, "type");
        if (!type) continue;
        /* what an entry shows may come from here */
        mark_unverified(bh_remain_note(&remain, rec), unv);
        if (bh_rec_is(type, BH_REC_RUN_START) && !start) {
            start = rec;
            start_unv = unv;
            bh_util_parse_iso8601(S(rec, "ts"), &tb.t0);
            tb.simulated = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(rec, "simulation"));
            /* the plan's phases, when the run recorded them */
            const cJSON *plan = cJSON_GetObjectItemCaseSensitive(rec, "plan");
            const cJSON *ph;
            cJSON_ArrayForEach(ph, plan) {
                const cJSON *id;
                cJSON_ArrayForEach(
                    id, cJSON_GetObjectItemCaseSensitive(ph, "steps")) if (cJSON_IsString(id))
                    mark_unverified(step_entry(phases, index, id->valuestring, S(ph, "phase")),
                                    unv);
            }
        }
        double t = t_of(&tb, rec);
        if (t > last_t) last_t = t;
        const char *sid = S(rec, "step");
        if (bh_rec_is(type, BH_REC_RUN_END)) {
            end = rec;
            end_unv = unv;
        }
        if (bh_rec_is(type, BH_REC_SCORECARD)) {
            scorecard = rec;
            scorecard_unv = unv;
        }
        if (bh_rec_is(type, BH_REC_CHECKPOINT)) {
            checkpoints++;
            key_id = S(rec, "key_id");
        }
        if (bh_rec_is(type, BH_REC_RUN_RESUMED) || bh_rec_is(type, BH_REC_INTERRUPT) ||
            bh_rec_is(type, BH_REC_JOURNAL_RECOVERED) || bh_rec_is(type, BH_REC_ROLLBACK_START) ||
            bh_rec_is(type, BH_REC_UNDO_BEGIN) || bh_rec_is(type, BH_REC_UNDO_FINISH) ||
            bh_rec_is(type, BH_REC_SETTLED)) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "at", dflt(S(rec, "ts"), ""));
            cJSON_AddNumberToObject(e, "t_ms", t);
            cJSON_AddStringToObject(e, "event", type);
            static const char *const keep[] = {
                "operator",   "previous", "signal", "action",
                "cut_bytes",  "undos",    "status", "in_doubt_without_undo",
                "may_remain", "by",       "note",   "settle",
                NULL};
            copy_fields(e, rec, keep);
            mark_unverified(e, unv);
            cJSON_AddItemToArray(events, e);
        }
        if (!sid) continue;
        cJSON *step = step_entry(phases, index, sid, S(rec, "phase"));
        /* what the step shows (its status, its summary) may come from here */
        mark_unverified(step, unv);
        if (bh_rec_is(type, BH_REC_STEP_START) || bh_rec_is(type, BH_REC_UNDO_START)) {
            /* a step seen first in a skip record may have no phase yet */
            const char *list = bh_rec_is(type, BH_REC_UNDO_START) ? "undos" : "attempts";
            cJSON *arr = cJSON_GetObjectItemCaseSensitive(step, list);
            if (!arr) arr = cJSON_AddArrayToObject(step, list);
            cJSON *a = cJSON_CreateObject();
            add_instance_fields(a, step, rec);
            cJSON_AddStringToObject(a, "start", dflt(S(rec, "ts"), ""));
            cJSON_AddNumberToObject(a, "start_ms", t);
            cJSON_AddStringToObject(a, "status", "running");
            mark_unverified(a, unv);
            cJSON_AddItemToArray(arr, a);
            if (bh_rec_is(type, BH_REC_STEP_START)) set_str(step, "status", "running");
        } else if (bh_rec_is(type, BH_REC_STEP_END) || bh_rec_is(type, BH_REC_UNDO_END)) {
            int undo = bh_rec_is(type, BH_REC_UNDO_END);
            cJSON *a = find_attempt(step, undo ? "undos" : "attempts", rec);
            const char *status = dflt(S(rec, "status"), "?");
            if (a) {
                set_str(a, "status", status);
                cJSON_AddStringToObject(a, "end", dflt(S(rec, "ts"), ""));
                cJSON_AddNumberToObject(a, "end_ms", t);
                cJSON_AddNumberToObject(a, "duration_ms", N(rec, "duration_ms", 0));
                static const char *const keep[] = {"error", "next",       "result",
                                                   "doubt", "may_remain", NULL};
                copy_fields(a, rec, keep);
                mark_unverified(a, unv);
            }
            if (undo) {
                if (is(status, "ok")) set_str(step, "status", "undone");
                set_str(step, "undo", status);
            } else if (!cJSON_GetObjectItemCaseSensitive(step, "done") ||
                       N(rec, "attempt", 0) == 0) {
                set_str(step, "status", status);
            }
            if (!is(status, "ok") && !is(status, "skipped")) {
                cJSON *f = attempt_entry(rec, step, sid, t);
                if (undo && !cJSON_GetObjectItemCaseSensitive(f, "undo"))
                    cJSON_AddBoolToObject(f, "undo", 1);
                cJSON_AddStringToObject(f, "status", status);
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(rec, "error");
                cJSON_AddStringToObject(f, "code", dflt(S(e, "code"), "?"));
                cJSON_AddStringToObject(f, "message", dflt(S(e, "message"), ""));
                cJSON_AddStringToObject(f, "handled",
                                        dflt(S(rec, "next"), undo ? "recorded" : "?"));
                static const char *const keep[] = {"doubt", "may_remain", NULL};
                copy_fields(f, rec, keep);
                mark_unverified(f, unv);
                cJSON_AddItemToArray(failures, f);
            }
        } else if (bh_rec_is(type, BH_REC_STEP_DONE)) {
            set_str(step, "status", dflt(S(rec, "status"), "?"));
            cJSON_AddBoolToObject(step, "done", 1);
            cJSON *sum = cJSON_CreateObject();
            static const char *const keep[] = {"items",    "reps",        "ok",
                                               "failed",   "skipped",     "unknown",
                                               "in_doubt", "not_started", NULL};
            copy_fields(sum, rec, keep);
            cJSON_DeleteItemFromObjectCaseSensitive(step, "instances");
            cJSON_AddItemToObject(step, "instances", sum);
        } else if (bh_rec_is(type, BH_REC_STEP_SKIPPED)) {
            set_str(step, "status", "skipped");
            set_str(step, "reason", S(rec, "reason"));
        } else if (bh_rec_is(type, BH_REC_APPROVAL_WAIT)) {
            cJSON *w = cJSON_CreateObject();
            cJSON_AddStringToObject(w, "kind", "approval");
            cJSON_AddStringToObject(w, "step", sid);
            cJSON_AddNumberToObject(w, "start_ms", t);
            cJSON_AddNumberToObject(w, "end_ms", t);
            cJSON_AddStringToObject(w, "reason", dflt(S(rec, "reason"), ""));
            cJSON_AddBoolToObject(w, "open", 1);
            mark_unverified(w, unv);
            cJSON_AddItemToArray(waits, w);
        } else if (bh_rec_is(type, BH_REC_APPROVAL) || bh_rec_is(type, BH_REC_MANUAL) ||
                   bh_rec_is(type, BH_REC_UNKNOWN_OUTCOME)) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "at", dflt(S(rec, "ts"), ""));
            cJSON_AddNumberToObject(d, "t_ms", t);
            cJSON_AddStringToObject(d, "step", sid);
            const char *kind = bh_rec_is(type, BH_REC_APPROVAL)
                                   ? (is(S(rec, "decision"), "approve") ? "approval" : "denial")
                               : bh_rec_is(type, BH_REC_MANUAL) ? "manual task"
                                                                : "unknown outcome";
            cJSON_AddStringToObject(d, "kind", kind);
            cJSON_AddStringToObject(d, "decision",
                                    dflt(S(rec, "decision"), dflt(S(rec, "outcome"), "?")));
            cJSON_AddStringToObject(d, "by", dflt(S(rec, "by"), "?"));
            cJSON_AddStringToObject(d, "how", dflt(S(rec, "how"), "?"));
            cJSON_AddStringToObject(d, "why", dflt(S(rec, "reason"), dflt(S(rec, "note"), "")));
            copy_field(d, rec, "uid");
            copy_field(d, rec, "pid");
            if (bh_rec_is(type, BH_REC_UNKNOWN_OUTCOME)) add_instance_fields(d, step, rec);
            mark_unverified(d, unv);
            cJSON_AddItemToArray(decisions, d);
            if (bh_rec_is(type, BH_REC_APPROVAL)) { /* the wait it ends */
                cJSON *w;
                cJSON_ArrayForEach(w, waits) {
                    if (!is(S(w, "kind"), "approval") || !is(S(w, "step"), sid) ||
                        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "open")))
                        continue;
                    cJSON_ReplaceItemInObjectCaseSensitive(w, "end_ms", cJSON_CreateNumber(t));
                    mark_unverified(w, unv);
                    if (is(S(rec, "decision"), "deny") ||
                        N(rec, "approvals", 0) >= N(rec, "needed", 1) ||
                        is(S(rec, "how"), "timeout"))
                        cJSON_ReplaceItemInObjectCaseSensitive(w, "open", cJSON_CreateFalse());
                }
            }
        } else if (bh_rec_is(type, BH_REC_RETRY)) {
            cJSON *w = cJSON_CreateObject();
            cJSON_AddStringToObject(w, "kind", "retry");
            cJSON_AddStringToObject(w, "step", sid);
            if (N(rec, "item", 0) > 0) cJSON_AddNumberToObject(w, "item", N(rec, "item", 0));
            cJSON_AddNumberToObject(w, "attempt", N(rec, "attempt", 0) - 1);
            cJSON_AddNumberToObject(w, "start_ms", t);
            cJSON_AddNumberToObject(w, "end_ms", t + N(rec, "delay_ms", 0));
            mark_unverified(w, unv);
            cJSON_AddItemToArray(waits, w);
        } else if (bh_rec_is(type, BH_REC_EXEC_START) || bh_rec_is(type, BH_REC_EXEC_ERROR)) {
            cJSON *c = action_entry(rec, step, sid, t);
            copy_field(c, rec, "argv");
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "shell")))
                cJSON_AddBoolToObject(c, "shell", 1);
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "simulated")))
                cJSON_AddBoolToObject(c, "simulated", 1);
            if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rec, "acts")))
                cJSON_AddBoolToObject(c, "acts", 0); /* read-only: never in doubt */
            if (bh_rec_is(type, BH_REC_EXEC_ERROR))
                cJSON_AddStringToObject(c, "error", dflt(S(rec, "error"), "?"));
            mark_unverified(c, unv);
            cJSON_AddItemToArray(commands, c);
        } else if (bh_rec_is(type, BH_REC_EXEC_END)) {
            cJSON *c = action_ended(commands, sid, rec);
            if (!c) continue;
            static const char *const keep[] = {"code",   "signal",      "timed_out",
                                               "killed", "duration_ms", "stdout",
                                               "stderr", "in_doubt",    NULL};
            copy_fields(c, rec, keep);
            mark_unverified(c, unv);
            for (int k = 0; k < 2; k++) {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, k ? "stderr" : "stdout");
                if (!S(st, "path")) continue;
                cJSON *e = attempt_entry(rec, step, sid, t);
                cJSON_AddStringToObject(e, "kind", "captured output");
                cJSON_AddStringToObject(e, "path", S(st, "path"));
                cJSON_AddNumberToObject(e, "size", N(st, "size", 0));
                cJSON_AddStringToObject(e, "sha256", dflt(S(st, "sha256"), "?"));
                copy_field(e, st, "truncated_reason");
                mark_unverified(e, unv);
                cJSON_AddItemToArray(evidence, e);
            }
        } else if (bh_rec_is(type, BH_REC_REQUEST_START)) {
            cJSON *q = action_entry(rec, step, sid, t);
            static const char *const keep[] = {"kind",    "method",     "url",       "to",
                                               "subject", "verify_tls", "simulated", NULL};
            copy_fields(q, rec, keep);
            mark_unverified(q, unv);
            cJSON_AddItemToArray(requests, q);
        } else if (bh_rec_is(type, BH_REC_REQUEST_END)) {
            cJSON *q = action_ended(requests, sid, rec);
            if (!q) continue;
            static const char *const keep[] = {"status",      "ok",       "error", "timed_out",
                                               "duration_ms", "in_doubt", NULL};
            copy_fields(q, rec, keep);
            mark_unverified(q, unv);
        } else if (bh_rec_is(type, BH_REC_EVIDENCE)) {
            /* The collected file is also the stdout of the command that
             * collected it: one entry per file, the evidence record's. */
            cJSON *e = S(rec, "path") ? find_by_id(evidence, "path", S(rec, "path")) : NULL;
            if (e) {
                cJSON_DetachItemViaPointer(evidence, e);
                cJSON_Delete(e);
            }
            e = attempt_entry(rec, step, sid, t);
            cJSON_AddStringToObject(e, "kind", "collected");
            static const char *const keep[] = {
                "path", "size", "sha256", "source", "complete", "truncated_reason", NULL};
            copy_fields(e, rec, keep);
            mark_unverified(e, unv);
            cJSON_AddItemToArray(evidence, e);
        }
    }

    /* run */
    cJSON_AddStringToObject(run, "id", dflt(S(start, "run_id"), "?"));
    cJSON_AddStringToObject(run, "mode", dflt(S(start, "mode"), "real"));
    cJSON_AddStringToObject(run, "status", end ? dflt(S(end, "status"), "?") : "incomplete");
    copy_field(run, start, "runbook");
    copy_field(run, start, "params");
    copy_field(run, start, "operator");
    copy_field(run, start, "host");
    copy_field(run, start, "engine");
    copy_field(run, start, "secrets");
    cJSON_AddStringToObject(run, "started", dflt(S(start, "ts"), "?"));
    if (end) {
        cJSON_AddStringToObject(run, "ended", dflt(S(end, "ts"), "?"));
        cJSON_AddNumberToObject(run, "duration_ms", N(end, "duration_ms", 0));
        copy_field(run, end, "counts");
    }
    cJSON_AddBoolToObject(run, "simulated_time", tb.simulated);
    cJSON_AddNumberToObject(run, "span_ms", last_t);
    /* the outcome and the times come from run_start and run_end */
    mark_unverified(run, start_unv || end_unv || (broken_at >= 0 && !end));

    /* journal */
    int nrecords = cJSON_GetArraySize(records);
    cJSON_AddNumberToObject(jr, "records", nrecords);
    cJSON_AddStringToObject(jr, "head", chk ? chk->head : "");
    cJSON_AddBoolToObject(jr, "intact", chk && chk->intact);
    if (chk && !chk->intact) {
        cJSON_AddStringToObject(jr, "problem", chk->message);
        cJSON *b = cJSON_AddObjectToObject(jr, "broken_at");
        cJSON_AddNumberToObject(b, "seq", (double)chk->bad_seq);
        cJSON_AddNumberToObject(b, "offset", (double)chk->bad_offset);
        /* records read from there on; a line that does not parse ends
         * the reading, so what follows it is not in the report at all */
        cJSON_AddNumberToObject(jr, "unverified_records",
                                nrecords > broken_at ? (double)(nrecords - broken_at) : 0);
        cJSON_AddBoolToObject(jr, "unparsed_from_break", broken_at >= nrecords && chk->bytes > 0);
    }
    cJSON_AddNumberToObject(jr, "checkpoints", checkpoints);
    if (key_id) cJSON_AddStringToObject(jr, "key_id", key_id);

    /* phases: their span on the time line */
    cJSON *p;
    cJSON_ArrayForEach(p, phases) {
        double lo = -1, hi = -1;
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)st, "done");
            const cJSON *a;
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "attempts")) {
                double s = N(a, "start_ms", -1), e = N(a, "end_ms", last_t);
                if (s >= 0 && (lo < 0 || s < lo)) lo = s;
                if (e > hi) hi = e;
            }
        }
        if (lo >= 0) {
            cJSON_AddNumberToObject(p, "start_ms", lo);
            cJSON_AddNumberToObject(p, "end_ms", hi);
        }
    }
    /* an approval never decided waits until the end of the record */
    cJSON *w;
    cJSON_ArrayForEach(w, waits) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "open")))
            cJSON_ReplaceItemInObjectCaseSensitive(w, "end_ms", cJSON_CreateNumber(last_t));
        cJSON_DeleteItemFromObjectCaseSensitive(w, "open");
    }
    bh_remain_end(&remain); /* what a dead engine's attempts may have left */
    add_doubt(doubt, &remain, index, &tb);
    bh_remain_free(&remain);
    if (scorecard) {
        cJSON *sc = cJSON_Duplicate(scorecard, 1);
        static const char *const drop[] = {"seq", "ts", "prev", "type", "sim_ms", NULL};
        for (int k = 0; drop[k]; k++)
            cJSON_DeleteItemFromObjectCaseSensitive(sc, drop[k]);
        mark_unverified(sc, scorecard_unv);
        cJSON_AddItemToObject(m, "scorecard", sc);
    }
    cJSON_Delete(index);
    return m;
}

/* --- the renderings ----------------------------------------------------- */

/* What each report holds (render.h walks the model for both): the
 * Markdown is the full record; the HTML page draws the time line, and
 * leaves out the events and the finer detail. */
static const bh_render_shows MD_SHOWS = {.events = 1, .detail = 1, .say_none = 1, .id_as_code = 1};
static const bh_render_shows HTML_SHOWS = {.stress_remains = 1, .colophon = 1};

void bh_report_markdown(const cJSON *m, FILE *out) {
    bh_render_report(m, &bh_md_emitter, &MD_SHOWS, out);
}

void bh_report_html(const cJSON *m, FILE *out) {
    bh_render_report(m, &bh_html_emitter, &HTML_SHOWS, out);
}
