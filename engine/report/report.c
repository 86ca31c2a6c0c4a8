#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "journal/remain.h"
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

/* When something happened on the run's time line: its simulated time, or
 * its ts against the run's start. */
static double t_at(const timebase *tb, double sim_ms, const char *ts) {
    if (sim_ms >= 0) return sim_ms;
    int64_t ms;
    if (bh_util_parse_iso8601(ts, &ms) == 0) return (double)(ms - tb->t0);
    return 0;
}

static void copy_field(cJSON *to, const cJSON *from, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    if (v) cJSON_AddItemToObject(to, key, cJSON_Duplicate(v, 1));
}

/* The fields of keys (NULL-terminated) that the record's type declares
 * and the record has. */
static void copy_fields(cJSON *to, const bh_hrec *r, const char *const *keys) {
    for (; *keys; keys++) {
        if (r->type != BH_REC_COUNT && !bh_rec_declares(r->type, *keys)) continue;
        const cJSON *v = bh_hrec_get(r, *keys);
        if (v) cJSON_AddItemToObject(to, *keys, cJSON_Duplicate(v, 1));
    }
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
static cJSON *find_attempt(cJSON *step, const char *list, const bh_hrec *rec) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(step, list);
    for (cJSON *a = tail_of(arr); a; a = prev_of(arr, a))
        if (bh_history_same(a, rec->json, BH_SAME_ITEM | BH_SAME_ATTEMPT)) return a;
    return NULL;
}

/* The key of the fan-out item ("web1", as the console's label shows it)
 * that instance item of step started with: only step_start and
 * undo_start carry it; what an attempt does next names the item by
 * number. */
static const char *item_key(const cJSON *step, double item) {
    if (item <= 0 || !step) return NULL;
    static const char *const lists[] = {"attempts", "undos"};
    for (int k = 0; k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(step, lists[k]);
        for (const cJSON *a = tail_of(arr); a; a = prev_of(arr, a))
            if (N(a, "item", 0) == item && S(a, "key")) return S(a, "key");
    }
    return NULL;
}

/* Which instance and attempt of the step an entry is about: item (and its
 * key), repetition, attempt; the same fields for every entry, so each
 * table names an instance the same way. from: a record, or an entry made
 * from one, with the attempt fields of schema.h (and key when it has
 * it). */
static void add_instance_fields(cJSON *to, const cJSON *step, const cJSON *from) {
    double item = N(from, "item", 0), rep = N(from, "rep", 0);
    if (item > 0) cJSON_AddNumberToObject(to, "item", item);
    if (rep > 0) cJSON_AddNumberToObject(to, "rep", rep);
    const char *key = S(from, "key") ? S(from, "key") : item_key(step, item);
    if (key) cJSON_AddStringToObject(to, "key", key);
    cJSON_AddNumberToObject(to, "attempt", N(from, "attempt", 0));
}

/* What a journal broken at some record says about everything from there
 * on: it may have been edited. */
static void mark_unverified(cJSON *x, int unverified) {
    if (unverified && x && !cJSON_GetObjectItemCaseSensitive(x, "unverified"))
        cJSON_AddBoolToObject(x, "unverified", 1);
}

static void set_str(cJSON *o, const char *k, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v ? v : "");
}

/* The model as it is built, record by record. */
typedef struct {
    cJSON *m, *run, *jr, *doubt, *phases, *waits, *decisions, *commands, *requests, *failures,
        *evidence, *events;
    cJSON *index; /* step id -> its entry (references) */
    timebase tb;
    const bh_hrec *start, *end, *scorecard;
    int start_unv, end_unv, scorecard_unv;
    int checkpoints;
    const char *key_id;
    double last_t;
    int64_t broken_at; /* the chain's first broken record, -1 when intact */
    bh_remain remain;
} model;

/* The record being read: when, which step's entry, and whether the chain
 * vouches for it. */
typedef struct {
    const bh_hrec *r;
    double t;
    cJSON *step;
    int unv;
} cursor;

/* The entry of a record about one attempt (a command, a request, a file):
 * when, which step, instance and attempt, and whether an undo did it. */
static cJSON *attempt_entry(const cursor *a) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "at", dflt(a->r->ts, ""));
    cJSON_AddNumberToObject(x, "t_ms", a->t);
    cJSON_AddStringToObject(x, "step", a->r->step);
    if (a->r->undo) cJSON_AddBoolToObject(x, "undo", 1);
    add_instance_fields(x, a->step, a->r->json);
    return x;
}

/* The same for a command or request, with its number within the attempt. */
static cJSON *action_entry(const cursor *a) {
    cJSON *x = attempt_entry(a);
    cJSON_AddNumberToObject(x, "n", bh_hrec_num(a->r, "n", 0));
    return x;
}

/* The entry an exec_end or request_end record closes. */
static cJSON *action_ended(const cJSON *list, const bh_hrec *rec) {
    unsigned same = BH_SAME_INSTANCE | BH_SAME_ATTEMPT | BH_SAME_N | BH_SAME_UNDO;
    for (cJSON *x = tail_of(list); x; x = prev_of(list, x))
        if (bh_history_same(x, rec->json, same)) return x;
    return NULL;
}

static void on_run_start(model *b, const bh_hrec *r, int unv) {
    b->start = r;
    b->start_unv = unv;
    bh_util_parse_iso8601(r->ts, &b->tb.t0);
    b->tb.simulated = cJSON_IsObject(bh_hrec_get(r, "simulation"));
    /* the plan's phases, when the run recorded them */
    const cJSON *ph;
    cJSON_ArrayForEach(ph, bh_hrec_get(r, "plan")) {
        const cJSON *id;
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(ph, "steps")) {
            if (cJSON_IsString(id))
                mark_unverified(step_entry(b->phases, b->index, id->valuestring, S(ph, "phase")),
                                unv);
        }
    }
}

/* Events of the run as a whole, for the report's list of them. */
static void on_event(model *b, const cursor *a) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "at", dflt(a->r->ts, ""));
    cJSON_AddNumberToObject(e, "t_ms", a->t);
    cJSON_AddStringToObject(e, "event", bh_rec_name(a->r->type));
    static const char *const keep[] = {"operator",   "previous", "signal", "action",
                                       "cut_bytes",  "undos",    "status", "in_doubt_without_undo",
                                       "may_remain", "by",       "note",   "settle",
                                       NULL};
    copy_fields(e, a->r, keep);
    mark_unverified(e, a->unv);
    cJSON_AddItemToArray(b->events, e);
}

/* A record about the run, not one step: 1 when it is one. */
static int on_run_record(model *b, const cursor *a) {
    switch (a->r->type) {
    case BH_REC_RUN_END:
        b->end = a->r;
        b->end_unv = a->unv;
        return 1;
    case BH_REC_SCORECARD:
        b->scorecard = a->r;
        b->scorecard_unv = a->unv;
        return 1;
    case BH_REC_CHECKPOINT:
        b->checkpoints++;
        b->key_id = bh_hrec_str(a->r, "key_id");
        return 1;
    case BH_REC_RUN_RESUMED:
    case BH_REC_INTERRUPT:
    case BH_REC_JOURNAL_RECOVERED:
    case BH_REC_ROLLBACK_START:
    case BH_REC_UNDO_BEGIN:
    case BH_REC_UNDO_FINISH:
    case BH_REC_SETTLED:
        on_event(b, a);
        return 1;
    default:
        return 0;
    }
}

static void on_attempt_start(const cursor *a) {
    int undo = a->r->type == BH_REC_UNDO_START;
    /* a step seen first in a skip record may have no phase yet */
    const char *list = undo ? "undos" : "attempts";
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(a->step, list);
    if (!arr) arr = cJSON_AddArrayToObject(a->step, list);
    cJSON *x = cJSON_CreateObject();
    add_instance_fields(x, a->step, a->r->json);
    cJSON_AddStringToObject(x, "start", dflt(a->r->ts, ""));
    cJSON_AddNumberToObject(x, "start_ms", a->t);
    cJSON_AddStringToObject(x, "status", "running");
    mark_unverified(x, a->unv);
    cJSON_AddItemToArray(arr, x);
    if (!undo) set_str(a->step, "status", "running");
}

/* An attempt that did not succeed, for the failures table. */
static void add_failure(model *b, const cursor *a, const char *status, int undo) {
    cJSON *f = attempt_entry(a);
    if (undo && !cJSON_GetObjectItemCaseSensitive(f, "undo")) cJSON_AddBoolToObject(f, "undo", 1);
    cJSON_AddStringToObject(f, "status", status);
    const cJSON *e = bh_hrec_get(a->r, "error");
    cJSON_AddStringToObject(f, "code", dflt(S(e, "code"), "?"));
    cJSON_AddStringToObject(f, "message", dflt(S(e, "message"), ""));
    cJSON_AddStringToObject(f, "handled", dflt(bh_hrec_str(a->r, "next"), undo ? "recorded" : "?"));
    static const char *const keep[] = {"doubt", "may_remain", NULL};
    copy_fields(f, a->r, keep);
    mark_unverified(f, a->unv);
    cJSON_AddItemToArray(b->failures, f);
}

static void on_attempt_end(model *b, const cursor *a) {
    int undo = a->r->type == BH_REC_UNDO_END;
    cJSON *x = find_attempt(a->step, undo ? "undos" : "attempts", a->r);
    const char *status = dflt(bh_hrec_str(a->r, "status"), "?");
    if (x) {
        set_str(x, "status", status);
        cJSON_AddStringToObject(x, "end", dflt(a->r->ts, ""));
        cJSON_AddNumberToObject(x, "end_ms", a->t);
        cJSON_AddNumberToObject(x, "duration_ms", bh_hrec_num(a->r, "duration_ms", 0));
        static const char *const keep[] = {"error", "next", "result", "doubt", "may_remain", NULL};
        copy_fields(x, a->r, keep);
        mark_unverified(x, a->unv);
    }
    if (undo) {
        if (is(status, "ok")) set_str(a->step, "status", "undone");
        set_str(a->step, "undo", status);
    } else if (!cJSON_GetObjectItemCaseSensitive(a->step, "done") || a->r->attempt == 0) {
        set_str(a->step, "status", status);
    }
    if (!is(status, "ok") && !is(status, "skipped")) add_failure(b, a, status, undo);
}

static void on_step_done(const cursor *a) {
    set_str(a->step, "status", dflt(bh_hrec_str(a->r, "status"), "?"));
    cJSON_AddBoolToObject(a->step, "done", 1);
    cJSON *sum = cJSON_CreateObject();
    static const char *const keep[] = {"items",   "reps",     "ok",          "failed", "skipped",
                                       "unknown", "in_doubt", "not_started", NULL};
    copy_fields(sum, a->r, keep);
    cJSON_DeleteItemFromObjectCaseSensitive(a->step, "instances");
    cJSON_AddItemToObject(a->step, "instances", sum);
}

static void on_approval_wait(model *b, const cursor *a) {
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "kind", "approval");
    cJSON_AddStringToObject(w, "step", a->r->step);
    cJSON_AddNumberToObject(w, "start_ms", a->t);
    cJSON_AddNumberToObject(w, "end_ms", a->t);
    cJSON_AddStringToObject(w, "reason", dflt(bh_hrec_str(a->r, "reason"), ""));
    cJSON_AddBoolToObject(w, "open", 1);
    mark_unverified(w, a->unv);
    cJSON_AddItemToArray(b->waits, w);
}

/* The approval wait an approval record ends, once enough have approved
 * (or one denied, or the wait timed out). */
static void end_wait(model *b, const cursor *a) {
    const bh_hrec *r = a->r;
    cJSON *w;
    cJSON_ArrayForEach(w, b->waits) {
        if (!is(S(w, "kind"), "approval") || !is(S(w, "step"), r->step) ||
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "open")))
            continue;
        cJSON_ReplaceItemInObjectCaseSensitive(w, "end_ms", cJSON_CreateNumber(a->t));
        mark_unverified(w, a->unv);
        if (is(bh_hrec_str(r, "decision"), "deny") ||
            bh_hrec_num(r, "approvals", 0) >= bh_hrec_num(r, "needed", 1) ||
            is(bh_hrec_str(r, "how"), "timeout"))
            cJSON_ReplaceItemInObjectCaseSensitive(w, "open", cJSON_CreateFalse());
    }
}

/* An approval, a manual task's answer, or an unknown outcome's decision. */
static void on_decision(model *b, const cursor *a) {
    const bh_hrec *r = a->r;
    const char *kind = "unknown outcome", *decision = NULL, *why = NULL;
    if (r->type == BH_REC_APPROVAL) {
        decision = bh_hrec_str(r, "decision");
        kind = is(decision, "approve") ? "approval" : "denial";
        why = bh_hrec_str(r, "reason");
    } else if (r->type == BH_REC_MANUAL) {
        kind = "manual task";
        decision = bh_hrec_str(r, "outcome");
        why = bh_hrec_str(r, "note");
    } else {
        decision = bh_hrec_str(r, "decision");
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "at", dflt(r->ts, ""));
    cJSON_AddNumberToObject(d, "t_ms", a->t);
    cJSON_AddStringToObject(d, "step", r->step);
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddStringToObject(d, "decision", dflt(decision, "?"));
    cJSON_AddStringToObject(d, "by", dflt(bh_hrec_str(r, "by"), "?"));
    cJSON_AddStringToObject(d, "how", dflt(bh_hrec_str(r, "how"), "?"));
    cJSON_AddStringToObject(d, "why", dflt(why, ""));
    static const char *const who[] = {"uid", "pid", NULL};
    copy_fields(d, r, who);
    if (r->type == BH_REC_UNKNOWN_OUTCOME) add_instance_fields(d, a->step, r->json);
    mark_unverified(d, a->unv);
    cJSON_AddItemToArray(b->decisions, d);
    if (r->type == BH_REC_APPROVAL) end_wait(b, a);
}

static void on_retry(model *b, const cursor *a) {
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "kind", "retry");
    cJSON_AddStringToObject(w, "step", a->r->step);
    if (a->r->item > 0) cJSON_AddNumberToObject(w, "item", a->r->item);
    cJSON_AddNumberToObject(w, "attempt", a->r->attempt - 1);
    cJSON_AddNumberToObject(w, "start_ms", a->t);
    cJSON_AddNumberToObject(w, "end_ms", a->t + bh_hrec_num(a->r, "delay_ms", 0));
    mark_unverified(w, a->unv);
    cJSON_AddItemToArray(b->waits, w);
}

static void on_exec_start(model *b, const cursor *a) {
    const bh_hrec *r = a->r;
    cJSON *c = action_entry(a);
    copy_field(c, r->json, "argv");
    if (r->type == BH_REC_EXEC_START) {
        if (bh_hrec_true(r, "shell")) cJSON_AddBoolToObject(c, "shell", 1);
        if (bh_hrec_true(r, "simulated")) cJSON_AddBoolToObject(c, "simulated", 1);
        if (cJSON_IsFalse(bh_hrec_get(r, "acts")))
            cJSON_AddBoolToObject(c, "acts", 0); /* read-only: never in doubt */
    } else {
        cJSON_AddStringToObject(c, "error", dflt(bh_hrec_str(r, "error"), "?"));
    }
    mark_unverified(c, a->unv);
    cJSON_AddItemToArray(b->commands, c);
}

/* A command's captured output files, as evidence. */
static void add_outputs(model *b, const cursor *a) {
    for (int k = 0; k < 2; k++) {
        const cJSON *st = bh_hrec_get(a->r, k ? "stderr" : "stdout");
        if (!S(st, "path")) continue;
        cJSON *e = attempt_entry(a);
        cJSON_AddStringToObject(e, "kind", "captured output");
        cJSON_AddStringToObject(e, "path", S(st, "path"));
        cJSON_AddNumberToObject(e, "size", N(st, "size", 0));
        cJSON_AddStringToObject(e, "sha256", dflt(S(st, "sha256"), "?"));
        copy_field(e, st, "truncated_reason");
        mark_unverified(e, a->unv);
        cJSON_AddItemToArray(b->evidence, e);
    }
}

static void on_exec_end(model *b, const cursor *a) {
    cJSON *c = action_ended(b->commands, a->r);
    if (!c) return;
    static const char *const keep[] = {"code",   "signal", "timed_out", "killed", "duration_ms",
                                       "stdout", "stderr", "in_doubt",  NULL};
    copy_fields(c, a->r, keep);
    mark_unverified(c, a->unv);
    add_outputs(b, a);
}

static void on_request_start(model *b, const cursor *a) {
    cJSON *q = action_entry(a);
    static const char *const keep[] = {"kind",    "method",     "url",       "to",
                                       "subject", "verify_tls", "simulated", NULL};
    copy_fields(q, a->r, keep);
    mark_unverified(q, a->unv);
    cJSON_AddItemToArray(b->requests, q);
}

static void on_request_end(model *b, const cursor *a) {
    cJSON *q = action_ended(b->requests, a->r);
    if (!q) return;
    static const char *const keep[] = {"status",      "ok",       "error", "timed_out",
                                       "duration_ms", "in_doubt", NULL};
    copy_fields(q, a->r, keep);
    mark_unverified(q, a->unv);
}

static void on_evidence(model *b, const cursor *a) {
    /* The collected file is also the stdout of the command that collected
     * it: one entry per file, the evidence record's. */
    const char *path = bh_hrec_str(a->r, "path");
    cJSON *e = path ? find_by_id(b->evidence, "path", path) : NULL;
    if (e) {
        cJSON_DetachItemViaPointer(b->evidence, e);
        cJSON_Delete(e);
    }
    e = attempt_entry(a);
    cJSON_AddStringToObject(e, "kind", "collected");
    static const char *const keep[] = {
        "path", "size", "sha256", "source", "complete", "truncated_reason", NULL};
    copy_fields(e, a->r, keep);
    mark_unverified(e, a->unv);
    cJSON_AddItemToArray(b->evidence, e);
}

/* A record about one step, into the step's entry and the tables. */
static void on_step_record(model *b, const cursor *a) {
    switch (a->r->type) {
    case BH_REC_STEP_START:
    case BH_REC_UNDO_START:
        on_attempt_start(a);
        break;
    case BH_REC_STEP_END:
    case BH_REC_UNDO_END:
        on_attempt_end(b, a);
        break;
    case BH_REC_STEP_DONE:
        on_step_done(a);
        break;
    case BH_REC_STEP_SKIPPED:
        set_str(a->step, "status", "skipped");
        set_str(a->step, "reason", bh_hrec_str(a->r, "reason"));
        break;
    case BH_REC_APPROVAL_WAIT:
        on_approval_wait(b, a);
        break;
    case BH_REC_APPROVAL:
    case BH_REC_MANUAL:
    case BH_REC_UNKNOWN_OUTCOME:
        on_decision(b, a);
        break;
    case BH_REC_RETRY:
        on_retry(b, a);
        break;
    case BH_REC_EXEC_START:
    case BH_REC_EXEC_ERROR:
        on_exec_start(b, a);
        break;
    case BH_REC_EXEC_END:
        on_exec_end(b, a);
        break;
    case BH_REC_REQUEST_START:
        on_request_start(b, a);
        break;
    case BH_REC_REQUEST_END:
        on_request_end(b, a);
        break;
    case BH_REC_EVIDENCE:
        on_evidence(b, a);
        break;
    default:
        break;
    }
}

static void on_record(model *b, const bh_hrec *r, int unv) {
    /* a type this engine does not know still names its step and time */
    if (!S(r->json, "type")) return;
    /* what an entry shows may come from here */
    mark_unverified(bh_remain_note(&b->remain, r), unv);
    if (r->type == BH_REC_RUN_START && !b->start) on_run_start(b, r, unv);
    cursor a = {r, t_at(&b->tb, r->sim_ms, r->ts), NULL, unv};
    if (a.t > b->last_t) b->last_t = a.t;
    if (on_run_record(b, &a) || !r->step) return;
    const char *phase = r->type == BH_REC_STEP_START ? bh_hrec_str(r, "phase") : NULL;
    a.step = step_entry(b->phases, b->index, r->step, phase);
    /* what the step shows (its status, its summary) may come from here */
    mark_unverified(a.step, unv);
    on_step_record(b, &a);
}

/* A field of a record that may be missing (a journal without its
 * run_end), NULL then. */
static const char *rec_str(const bh_hrec *r, const char *k) {
    return r ? bh_hrec_str(r, k) : NULL;
}

static void add_run(model *b) {
    const bh_hrec *start = b->start, *end = b->end;
    cJSON *run = b->run;
    cJSON_AddStringToObject(run, "id", dflt(rec_str(start, "run_id"), "?"));
    cJSON_AddStringToObject(run, "mode", dflt(rec_str(start, "mode"), "real"));
    cJSON_AddStringToObject(run, "status", end ? dflt(rec_str(end, "status"), "?") : "incomplete");
    static const char *const keep[] = {"runbook", "params",  "operator", "host",
                                       "engine",  "secrets", NULL};
    if (start) copy_fields(run, start, keep);
    cJSON_AddStringToObject(run, "started", dflt(start ? start->ts : NULL, "?"));
    if (end) {
        cJSON_AddStringToObject(run, "ended", dflt(end->ts, "?"));
        cJSON_AddNumberToObject(run, "duration_ms", bh_hrec_num(end, "duration_ms", 0));
        static const char *const counts[] = {"counts", NULL};
        copy_fields(run, end, counts);
    }
    cJSON_AddBoolToObject(run, "simulated_time", b->tb.simulated);
    cJSON_AddNumberToObject(run, "span_ms", b->last_t);
    /* the outcome and the times come from run_start and run_end */
    mark_unverified(run, b->start_unv || b->end_unv || (b->broken_at >= 0 && !end));
}

static void add_journal(model *b, size_t n, const bh_journal_check *chk) {
    cJSON *jr = b->jr;
    double nrecords = (double)n;
    cJSON_AddNumberToObject(jr, "records", nrecords);
    cJSON_AddStringToObject(jr, "head", chk ? chk->head : "");
    cJSON_AddBoolToObject(jr, "intact", chk && chk->intact);
    if (chk && !chk->intact) {
        cJSON_AddStringToObject(jr, "problem", chk->message);
        cJSON *br = cJSON_AddObjectToObject(jr, "broken_at");
        cJSON_AddNumberToObject(br, "seq", (double)chk->bad_seq);
        cJSON_AddNumberToObject(br, "offset", (double)chk->bad_offset);
        /* records read from there on; a line that does not parse ends
         * the reading, so what follows it is not in the report at all */
        double broken = (double)b->broken_at;
        cJSON_AddNumberToObject(jr, "unverified_records",
                                nrecords > broken ? nrecords - broken : 0);
        cJSON_AddBoolToObject(jr, "unparsed_from_break", broken >= nrecords && chk->bytes > 0);
    }
    cJSON_AddNumberToObject(jr, "checkpoints", b->checkpoints);
    if (b->key_id) cJSON_AddStringToObject(jr, "key_id", b->key_id);
}

/* phases: their span on the time line */
static void add_phase_spans(model *b) {
    cJSON *p;
    cJSON_ArrayForEach(p, b->phases) {
        double lo = -1, hi = -1;
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)st, "done");
            const cJSON *a;
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "attempts")) {
                double s = N(a, "start_ms", -1), e = N(a, "end_ms", b->last_t);
                if (s >= 0 && (lo < 0 || s < lo)) lo = s;
                if (e > hi) hi = e;
            }
        }
        if (lo >= 0) {
            cJSON_AddNumberToObject(p, "start_ms", lo);
            cJSON_AddNumberToObject(p, "end_ms", hi);
        }
    }
}

/* An approval never decided waits until the end of the record. */
static void close_waits(model *b) {
    cJSON *w;
    cJSON_ArrayForEach(w, b->waits) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "open")))
            cJSON_ReplaceItemInObjectCaseSensitive(w, "end_ms", cJSON_CreateNumber(b->last_t));
        cJSON_DeleteItemFromObjectCaseSensitive(w, "open");
    }
}

/* An entry of remain.h, as the report lists it: which instance, when (the
 * record that put it in doubt), and what remain.h says of it. */
static cJSON *doubt_entry(const cJSON *e, cJSON *index, const timebase *tb) {
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(index, dflt(S(e, "step"), ""));
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "at", dflt(S(e, "ts"), ""));
    cJSON_AddNumberToObject(x, "t_ms", t_at(tb, N(e, "sim_ms", -1), S(e, "ts")));
    cJSON_AddStringToObject(x, "step", dflt(S(e, "step"), "?"));
    add_instance_fields(x, step, e);
    static const char *const keep[] = {"may_remain", "doubt",      "undo", "by",
                                       "note",       "unverified", NULL};
    for (int k = 0; keep[k]; k++)
        copy_field(x, e, keep[k]);
    if (S(e, "resolved_ts")) cJSON_AddStringToObject(x, "resolved_at", S(e, "resolved_ts"));
    return x;
}

/* in_doubt: what may remain at the end of the journal, and what was in
 * doubt and no longer is (a later attempt succeeded, or an undo). */
static void add_doubt(model *b) {
    bh_remain_end(&b->remain); /* what a dead engine's attempts may have left */
    cJSON *open = cJSON_AddArrayToObject(b->doubt, "remaining");
    cJSON *resolved = cJSON_AddArrayToObject(b->doubt, "resolved");
    const cJSON *e;
    cJSON_ArrayForEach(e, b->remain.open)
        cJSON_AddItemToArray(open, doubt_entry(e, b->index, &b->tb));
    cJSON_ArrayForEach(e, b->remain.resolved)
        cJSON_AddItemToArray(resolved, doubt_entry(e, b->index, &b->tb));
}

static void add_scorecard(model *b) {
    if (!b->scorecard) return;
    cJSON *sc = cJSON_Duplicate(b->scorecard->json, 1);
    static const char *const drop[] = {"seq", "ts", "prev", "type", "sim_ms", NULL};
    for (int k = 0; drop[k]; k++)
        cJSON_DeleteItemFromObjectCaseSensitive(sc, drop[k]);
    mark_unverified(sc, b->scorecard_unv);
    cJSON_AddItemToObject(b->m, "scorecard", sc);
}

static void model_init(model *b) {
    memset(b, 0, sizeof *b);
    b->m = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(b->m, "report");
    cJSON_AddNumberToObject(meta, "format", 1);
    cJSON_AddStringToObject(meta, "generator", "bulkhead " BH_VERSION);
    b->run = cJSON_AddObjectToObject(b->m, "run");
    b->jr = cJSON_AddObjectToObject(b->m, "journal");
    b->doubt = cJSON_AddObjectToObject(b->m, "in_doubt");
    b->phases = cJSON_AddArrayToObject(b->m, "phases");
    b->waits = cJSON_AddArrayToObject(b->m, "waits");
    b->decisions = cJSON_AddArrayToObject(b->m, "decisions");
    b->commands = cJSON_AddArrayToObject(b->m, "commands");
    b->requests = cJSON_AddArrayToObject(b->m, "requests");
    b->failures = cJSON_AddArrayToObject(b->m, "failures");
    b->evidence = cJSON_AddArrayToObject(b->m, "evidence");
    b->events = cJSON_AddArrayToObject(b->m, "events");
    b->index = cJSON_CreateObject();
    bh_remain_init(&b->remain);
}

cJSON *bh_report_model(const bh_history *h, const bh_journal_check *chk) {
    model b;
    model_init(&b);
    /* The records from the broken one on (by place in the file: a record
     * moved from elsewhere keeps its seq) are not vouched for by the
     * chain. */
    b.broken_at = chk && !chk->intact ? chk->bad_seq : -1;
    for (size_t k = 0; k < h->n; k++)
        on_record(&b, &h->rec[k], b.broken_at >= 0 && (int64_t)k >= b.broken_at);
    add_run(&b);
    add_journal(&b, h->n, chk);
    add_phase_spans(&b);
    close_waits(&b);
    add_doubt(&b);
    bh_remain_free(&b.remain);
    add_scorecard(&b);
    cJSON_Delete(b.index);
    return b.m;
}

/* --- shared text -------------------------------------------------------- */

static void when(const cJSON *run, double t_ms, const char *ts, char *out, size_t len) {
    char d[32];
    bh_util_format_duration(t_ms, d, sizeof d);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "simulated_time")))
        snprintf(out, len, "T+%s", d);
    else
        snprintf(out, len, "%s (T+%s)", ts && *ts ? ts : "?", d);
}

static char *argv_text(const cJSON *argv) {
    size_t cap = 256, len = 0;
    char *s = bh_util_xmalloc(cap);
    s[0] = '\0';
    const cJSON *a;
    cJSON_ArrayForEach(a, argv) {
        const char *v = cJSON_IsString(a) ? a->valuestring : "?";
        int quote = strpbrk(v, " \t\"'\\$`|&;<>()*?") != NULL || !*v;
        size_t need = len + strlen(v) * 2 + 4;
        if (need >= cap) {
            while (need >= cap)
                cap *= 2;
            s = realloc(s, cap);
            if (!s) abort();
        }
        if (len) s[len++] = ' ';
        if (quote) s[len++] = '\'';
        for (const char *c = v; *c; c++) {
            if (*c == '\'' && quote) {
                memcpy(s + len, "'\\''", 4);
                len += 4;
                if (len + strlen(c) * 2 + 4 >= cap) {
                    cap = (len + strlen(c)) * 2 + 8;
                    s = realloc(s, cap);
                    if (!s) abort();
                }
            } else {
                s[len++] = *c;
            }
        }
        if (quote) s[len++] = '\'';
        s[len] = '\0';
    }
    return s;
}

/* Writes text escaped for the output format (md_cell, h). */
typedef void (*text_fn)(FILE *out, const char *s);

/* "undo isolate-web[web1]#3": the step, the key of its fan-out item as
 * the console's label shows it (make_label in sched.c), or the item's
 * number when the journal has no key, and a cadence's repetition. Every
 * table names an instance this way. */
static void attempt_name(FILE *out, text_fn esc, const char *step, const cJSON *x, int undo) {
    if (undo) fputs("undo ", out);
    esc(out, step);
    if (S(x, "key")) {
        fputc('[', out);
        esc(out, S(x, "key"));
        fputc(']', out);
    } else if (N(x, "item", 0) > 0) {
        fprintf(out, "[%.0f]", N(x, "item", 0));
    }
    if (N(x, "rep", 0) > 0) fprintf(out, "#%.0f", N(x, "rep", 0));
}

static int unverified(const cJSON *x) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "unverified"));
}

/* What the banner of a report of a broken journal says after the
 * problem: which records the reader must not trust. */
static const char *broken_tail(const cJSON *jr) {
    if (N(jr, "records", 0) == 0 &&
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "unparsed_from_break")))
        return "The journal holds no record: there is nothing to report.";
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "unparsed_from_break"))
               ? "That line does not parse: nothing from it on is in this report, and the "
                 "report may not be the whole story."
               : "Everything from that record on is unverified: it may have been changed "
                 "after the run, and is marked unverified below.";
}

/* What the head hash of a broken journal is the hash of: "" when intact. */
static void head_note(const cJSON *jr, char *out, size_t len) {
    out[0] = '\0';
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact"))) return;
    double seq = N(cJSON_GetObjectItemCaseSensitive(jr, "broken_at"), "seq", 0);
    if (seq >= 1)
        snprintf(out, len, " (of seq %.0f, the last record the chain vouches for)", seq - 1);
    else
        snprintf(out, len, " (the chain vouches for no record)");
}

static const char *mode_banner(const cJSON *run) {
    const char *mode = S(run, "mode");
    if (is(mode, "drill")) return "DRILL: nothing was executed or sent; times are simulated.";
    if (is(mode, "dry-run")) return "DRY RUN: nothing was executed or sent; times are simulated.";
    return NULL;
}

/* A status for people: "in doubt" for in_doubt; the others as recorded. */
static const char *status_text(const char *status) {
    return is(status, "in_doubt") ? "in doubt" : status;
}

/* What an undo did for an instance still in doubt (remain.h's undo). */
static const char *undo_text(const cJSON *x) {
    if (is(S(x, "undo"), "failed")) return "failed";
    if (is(S(x, "undo"), "none")) return "none: its step has no undo";
    return "not run";
}

/* What an in-doubt attempt may have left and why, after its error: "; in
 * doubt: web2 may still be isolated ('sh' was cut off ...)". */
static void doubt_note(FILE *out, text_fn esc, const cJSON *x) {
    if (!S(x, "may_remain") && !S(x, "doubt")) return;
    fputs("; in doubt: ", out);
    esc(out, dflt(S(x, "may_remain"), "it may have acted"));
    if (S(x, "doubt")) {
        fputs(" (", out);
        esc(out, S(x, "doubt"));
        fputc(')', out);
    }
}

/* The instances no longer in doubt, for the line under the section:
 * "isolate[web2] (a later attempt succeeded), ...". */
static void resolved_list(FILE *out, text_fn esc, const cJSON *resolved) {
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, resolved) {
        if (n++) fputs(", ", out);
        attempt_name(out, esc, dflt(S(x, "step"), "?"), x, 0);
        const char *by = dflt(S(x, "by"), "");
        if (strncmp(by, "settled", 7) == 0) { /* a person checked it: bulkhead undo --settle */
            fputs(" (", out);
            esc(out, by);
            fputs(": ", out);
            esc(out, dflt(S(x, "note"), ""));
            fputs(")", out);
        } else {
            fputs(is(by, "undo") ? " (undone)" : " (a later attempt succeeded)", out);
        }
    }
}

/* A command that said acts = false; a command or request whose end gave
 * no definite answer (exec_end, request_end in_doubt). */
static int read_only(const cJSON *c) {
    return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "acts"));
}

static int in_doubt(const cJSON *x) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "in_doubt"));
}

static const char IN_DOUBT_CMD[] = " (in doubt: it may have acted)";
static const char IN_DOUBT_REQ[] = " (in doubt: sent, no answer)";

/* The words over the in-doubt section, or what to say when it is empty. */
static const char DOUBT_INTRO[] =
    "What attempts that did not succeed may have left, as the journal ends: each may have "
    "acted (a command cut off, a request without an answer, an attempt cut off after it "
    "acted), and neither a later attempt nor an undo has settled it since. Check each by "
    "hand; ";
/* ... then the command in the format's code, then this. */
static const char DOUBT_UNDO[] = " runs the undo of those whose step has one.";

static const char *doubt_none(const cJSON *doubt) {
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doubt, "resolved")) > 0
               ? "Nothing any more."
               : "Nothing: no attempt ended in doubt.";
}

/* A request for people: "POST", "mail to 2", "connect"; and its outcome. */
static void request_text(const cJSON *q, char *what, size_t wlen, char *result, size_t rlen) {
    const char *kind = dflt(S(q, "kind"), "?");
    if (is(kind, "http"))
        snprintf(what, wlen, "%.16s", dflt(S(q, "method"), "GET"));
    else if (is(kind, "mail"))
        snprintf(what, wlen, "mail to %d",
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(q, "to")));
    else
        snprintf(what, wlen, "%.16s", kind);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(q, "ok");
    if (!ok)
        snprintf(result, rlen, "no end recorded");
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "timed_out")))
        snprintf(result, rlen, "timed out");
    else if (cJSON_GetObjectItemCaseSensitive(q, "status") && N(q, "status", 0) > 0)
        snprintf(result, rlen, "%s %.0f", is(kind, "mail") ? "reply" : "status", N(q, "status", 0));
    else
        snprintf(result, rlen, "%s", cJSON_IsTrue(ok) ? "connected" : "failed");
}

/* --- markdown ----------------------------------------------------------- */

/* Text from the journal in Markdown: nothing in it can end a table row,
 * open a link or an HTML tag, or start a code span; it reads as written. */
static void md_cell(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(s, &copy); /* NUL, bytes not UTF-8: as the journal writes them */
    for (; s && *s; s++) {
        switch (*s) {
        case '\\':
        case '|':
        case '`':
        case '*':
        case '[':
        case ']':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '\n':
        case '\r':
            fputc(' ', out);
            break;
        default:
            fputc(*s, out);
        }
    }
    free(copy);
}

/* md_cell of a value that may be missing. */
static void md_text(FILE *out, const char *s) {
    md_cell(out, dflt(s, "?"));
}

/* A fence of backticks nothing in s can close: one longer than the
 * longest run in s, and at least min long. */
static void md_fence(FILE *out, const char *s, size_t min) {
    size_t run = 0, longest = min - 1;
    for (const char *c = s; *c; c++) {
        run = *c == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    for (size_t k = 0; k <= longest; k++)
        fputc('`', out);
}

/* A code span holding s verbatim, in a fence of md_fence. Only '|' is
 * escaped (a table would end the cell on it; GFM takes "\|" back out of
 * the span). */
static void md_code(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(dflt(s, "?"), &copy);
    size_t len = strlen(s);
    int pad = len > 0 && (s[0] == '`' || s[len - 1] == '`' || s[0] == ' ');
    md_fence(out, s, 1);
    if (pad) fputc(' ', out);
    for (const char *c = s; *c; c++) {
        if (*c == '|')
            fputs("\\|", out);
        else if (*c == '\n' || *c == '\r')
            fputc(' ', out);
        else
            fputc(*c, out);
    }
    if (pad) fputc(' ', out);
    md_fence(out, s, 1);
    free(copy);
}

/* The start of a row's first cell: whether the chain vouches for it. */
static void md_unverified(FILE *out, const cJSON *x) {
    if (unverified(x)) fputs("**unverified** ", out);
}

/* A row's error: "code: message". */
static void md_error(FILE *out, const cJSON *e) {
    if (!e) return;
    md_cell(out, S(e, "code"));
    fprintf(out, ": ");
    md_cell(out, S(e, "message"));
}

/* A time-line row: one attempt of a step, or one undo of it. */
static void md_attempt_row(FILE *out, const cJSON *run, const char *step, const cJSON *a,
                           int undo) {
    char t[64], d[32];
    when(run, N(a, "start_ms", 0), S(a, "start"), t, sizeof t);
    bh_util_format_duration(N(a, "duration_ms", 0), d, sizeof d);
    fprintf(out, "| ");
    md_unverified(out, a);
    attempt_name(out, md_cell, step, a, undo);
    fprintf(out, " | %.0f | ", N(a, "attempt", 0));
    md_cell(out, t);
    fprintf(out, " | %s | ", d);
    md_text(out, status_text(S(a, "status")));
    fprintf(out, " | ");
    md_error(out, cJSON_GetObjectItemCaseSensitive(a, "error"));
    doubt_note(out, md_cell, a);
    if (S(a, "next")) { /* only attempts have one */
        fprintf(out, " (next: ");
        md_cell(out, S(a, "next"));
        fputc(')', out);
    }
    fprintf(out, " |\n");
}

/* The first cells of a row about a record of one attempt (a command, a
 * request, a failure): when, and which attempt of which step or undo. */
static void md_when_which(FILE *out, const cJSON *run, const cJSON *x) {
    char t[64];
    when(run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
    fprintf(out, "| ");
    md_unverified(out, x);
    md_cell(out, t);
    fprintf(out, " | ");
    attempt_name(out, md_cell, S(x, "step"), x,
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "undo")));
    fprintf(out, " #%.0f | ", N(x, "attempt", 0));
}

/* A section: its heading, then `none` when the list is empty, else the
 * table's header. Returns whether rows follow. */
static int md_section(FILE *out, const char *title, const char *note, const cJSON *list,
                      const char *none, const char *head) {
    fprintf(out, "## %s%s\n\n", title, note ? note : "");
    if (cJSON_GetArraySize(list) == 0) {
        fprintf(out, "%s\n\n", none);
        return 0;
    }
    fputs(head, out);
    return 1;
}

/* The in-doubt section: what may remain, then what no longer does. */
static void md_doubt(FILE *out, const cJSON *run, const cJSON *doubt) {
    const cJSON *open = cJSON_GetObjectItemCaseSensitive(doubt, "remaining");
    const cJSON *resolved = cJSON_GetObjectItemCaseSensitive(doubt, "resolved");
    fprintf(out, "## In doubt: may remain\n\n");
    if (cJSON_GetArraySize(open) == 0) {
        fprintf(out, "%s\n\n", doubt_none(doubt));
    } else {
        fprintf(out,
                "%s`bulkhead undo RUN`%s\n\n| Since | Step | What may remain | Why in doubt | "
                "Undo |\n|---|---|---|---|---|\n",
                DOUBT_INTRO, DOUBT_UNDO);
        const cJSON *x;
        cJSON_ArrayForEach(x, open) {
            md_when_which(out, run, x);
            md_text(out, S(x, "may_remain"));
            fprintf(out, " | ");
            md_cell(out, S(x, "doubt"));
            fprintf(out, " | %s |\n", undo_text(x));
        }
        fputc('\n', out);
    }
    if (cJSON_GetArraySize(resolved) > 0) {
        fprintf(out, "No longer in doubt: ");
        resolved_list(out, md_cell, resolved);
        fprintf(out, ".\n\n");
    }
}

void bh_report_markdown(const cJSON *m, FILE *out) {
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(m, "run");
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(run, "runbook");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(m, "journal");
    char t[64], d[32];
    fprintf(out, "# After-action report: ");
    md_text(out, dflt(S(rb, "title"), S(rb, "id")));
    fprintf(out, "\n\n");
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact"))) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(jr, "broken_at");
        fprintf(out, "> **THE JOURNAL'S HASH CHAIN IS BROKEN at seq %.0f (byte offset %.0f):** ",
                N(b, "seq", 0), N(b, "offset", 0));
        md_text(out, S(jr, "problem"));
        fprintf(out, "\n>\n> %s\n\n", broken_tail(jr));
    }
    if (mode_banner(run)) fprintf(out, "> **%s**\n\n", mode_banner(run));
    fprintf(out, "## Summary\n\n");
    fprintf(out, "| | |\n|---|---|\n");
    fprintf(out, "| Run | ");
    md_code(out, S(run, "id"));
    fprintf(out, " |\n| Outcome | **");
    md_text(out, S(run, "status"));
    fprintf(out, "**%s |\n", unverified(run) ? " (unverified)" : "");
    int nd = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "in_doubt"), "remaining"));
    if (nd > 0) fprintf(out, "| In doubt | **%d may remain** (see below) |\n", nd);
    fprintf(out, "| Runbook | ");
    md_text(out, S(rb, "title"));
    fprintf(out, " (");
    md_code(out, S(rb, "id"));
    fprintf(out, "), severity ");
    md_text(out, S(rb, "severity"));
    fprintf(out, " |\n| Runbook file | ");
    md_code(out, S(rb, "path"));
    fprintf(out, " |\n| Runbook SHA-256 | ");
    md_code(out, S(rb, "sha256"));
    fprintf(out, " |\n");
    char *params = bh_json_print(cJSON_GetObjectItemCaseSensitive(run, "params"), 0);
    fprintf(out, "| Parameters | ");
    md_code(out, params ? params : "{}");
    fprintf(out, " |\n");
    free(params);
    fprintf(out, "| Operator | ");
    md_text(out, S(run, "operator"));
    fprintf(out, " on ");
    md_text(out, S(run, "host"));
    fprintf(out, " |\n| Mode | ");
    md_text(out, S(run, "mode"));
    fprintf(out, " |\n| Started (UTC) | ");
    md_text(out, S(run, "started"));
    fprintf(out, " |\n");
    if (S(run, "ended")) {
        bh_util_format_duration(N(run, "duration_ms", 0), d, sizeof d);
        fprintf(out, "| Ended (UTC) | ");
        md_text(out, S(run, "ended"));
        fprintf(out, "%s |\n| Duration | %s%s%s |\n", unverified(run) ? " (unverified)" : "", d,
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "simulated_time"))
                    ? " (simulated)"
                    : "",
                unverified(run) ? " (unverified)" : "");
    }
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(run, "engine");
    fprintf(out, "| Engine | ");
    md_text(out, S(eng, "name"));
    fputc(' ', out);
    md_text(out, S(eng, "version"));
    char note[96];
    head_note(jr, note, sizeof note);
    fprintf(out, " |\n| Journal head (SHA-256) | ");
    md_code(out, S(jr, "head"));
    fprintf(out, "%s |\n", note);
    fprintf(out, "| Journal | %.0f records, %s%s |\n\n", N(jr, "records", 0),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact")) ? "chain intact"
                                                                         : "**CHAIN BROKEN**",
            N(jr, "checkpoints", 0) > 0 ? ", signed checkpoints" : "");
    fprintf(out, "Quote the journal head in the incident ticket; `bulkhead verify RUN "
                 "--expect-head HASH` checks it later.\n\n");
    md_doubt(out, run, cJSON_GetObjectItemCaseSensitive(m, "in_doubt"));

    const cJSON *events = cJSON_GetObjectItemCaseSensitive(m, "events");
    if (cJSON_GetArraySize(events) > 0) {
        fprintf(out, "## Events\n\n| When | Event | Detail |\n|---|---|---|\n");
        const cJSON *e;
        cJSON_ArrayForEach(e, events) {
            when(run, N(e, "t_ms", 0), S(e, "at"), t, sizeof t);
            fprintf(out, "| ");
            md_unverified(out, e);
            md_cell(out, t);
            fprintf(out, " | ");
            md_text(out, S(e, "event"));
            fprintf(out, " | ");
            const char *k[] = {"operator", "previous", "signal", "action", "status", NULL};
            for (int i = 0; k[i]; i++)
                if (S(e, k[i])) {
                    fprintf(out, "%s: ", k[i]);
                    md_cell(out, S(e, k[i]));
                    fputc(' ', out);
                }
            const cJSON *stays = cJSON_GetObjectItemCaseSensitive(e, "in_doubt_without_undo");
            const cJSON *x;
            int n = 0;
            cJSON_ArrayForEach(x, stays) if (cJSON_IsString(x)) {
                fprintf(out, "%s", n++ ? "; " : "in_doubt_without_undo: ");
                md_cell(out, x->valuestring);
            }
            fprintf(out, "%s|\n", n ? " " : "");
        }
        fputc('\n', out);
    }

    fprintf(out, "## Timeline by phase\n\n");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(m, "phases")) {
        fprintf(out, "### Phase ");
        md_text(out, S(p, "name"));
        fprintf(out, "\n\n| Step | Attempt | Start | Duration | Status | Notes |\n"
                     "|---|---|---|---|---|---|\n");
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(st, "attempts");
            if (cJSON_GetArraySize(attempts) == 0) {
                fprintf(out, "| ");
                md_unverified(out, st);
                md_cell(out, S(st, "id"));
                fprintf(out, " | - | - | - | ");
                md_text(out, status_text(S(st, "status")));
                fprintf(out, " | ");
                md_cell(out, S(st, "reason"));
                fprintf(out, " |\n");
                continue;
            }
            const cJSON *a;
            cJSON_ArrayForEach(a, attempts) md_attempt_row(out, run, S(st, "id"), a, 0);
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "undos"))
                md_attempt_row(out, run, S(st, "id"), a, 1);
            const cJSON *sum = cJSON_GetObjectItemCaseSensitive(st, "instances");
            if (sum) {
                fprintf(out, "| ");
                md_unverified(out, st);
                md_cell(out, S(st, "id"));
                fprintf(out, " | all | | | ");
                md_text(out, status_text(S(st, "status")));
                fprintf(out, " | %.0f ok, ", N(sum, "ok", 0));
                if (N(sum, "in_doubt", 0) > 0)
                    fprintf(out, "%.0f in doubt, ", N(sum, "in_doubt", 0));
                fprintf(out, "%.0f failed, %.0f skipped |\n", N(sum, "failed", 0),
                        N(sum, "skipped", 0));
            }
        }
        fputc('\n', out);
    }

    const cJSON *decisions = cJSON_GetObjectItemCaseSensitive(m, "decisions");
    if (md_section(out, "Decisions", NULL, decisions, "None recorded.",
                   "| When | Step | Decision | By | How | Why |\n|---|---|---|---|---|---|\n")) {
        const cJSON *x;
        cJSON_ArrayForEach(x, decisions) {
            when(run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
            fprintf(out, "| ");
            md_unverified(out, x);
            md_cell(out, t);
            fprintf(out, " | ");
            attempt_name(out, md_cell, S(x, "step"), x, 0);
            fprintf(out, " | ");
            md_text(out, S(x, "kind"));
            fprintf(out, ": ");
            md_text(out, S(x, "decision"));
            fprintf(out, " | ");
            md_cell(out, S(x, "by"));
            fprintf(out, " | ");
            md_text(out, S(x, "how"));
            if (N(x, "uid", -1) >= 0)
                fprintf(out, " (uid %.0f, pid %.0f)", N(x, "uid", 0), N(x, "pid", 0));
            fprintf(out, " | ");
            md_cell(out, S(x, "why"));
            fprintf(out, " |\n");
        }
        fputc('\n', out);
    }

    const cJSON *commands = cJSON_GetObjectItemCaseSensitive(m, "commands");
    if (md_section(out, "Commands", mode_banner(run) ? " (simulated: not executed)" : NULL,
                   commands, "None.", "| When | Step | Command | Result |\n|---|---|---|---|\n")) {
        const cJSON *c;
        cJSON_ArrayForEach(c, commands) {
            md_when_which(out, run, c);
            char *args = argv_text(cJSON_GetObjectItemCaseSensitive(c, "argv"));
            md_code(out, args);
            fprintf(out, "%s | ", read_only(c) ? " (read-only)" : "");
            free(args);
            if (S(c, "error")) {
                fprintf(out, "could not start: ");
                md_cell(out, S(c, "error"));
            } else if (S(c, "signal")) {
                md_cell(out, S(c, "signal"));
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "timed_out")))
                    fprintf(out, " (timed out)");
            } else if (cJSON_GetObjectItemCaseSensitive(c, "code")) {
                fprintf(out, "exit %.0f", N(c, "code", 0));
            } else {
                fprintf(out, "no end recorded");
            }
            fprintf(out, "%s |\n", in_doubt(c) ? IN_DOUBT_CMD : "");
        }
        fputc('\n', out);
    }

    const cJSON *requests = cJSON_GetObjectItemCaseSensitive(m, "requests");
    if (md_section(out, "Requests", mode_banner(run) ? " (simulated: not sent)" : NULL, requests,
                   "None.", "| When | Step | Request | Result |\n|---|---|---|---|\n")) {
        const cJSON *q;
        cJSON_ArrayForEach(q, requests) {
            md_when_which(out, run, q);
            char what[64], result[64];
            request_text(q, what, sizeof what, result, sizeof result);
            md_cell(out, what);
            fputc(' ', out);
            md_code(out, S(q, "url"));
            fprintf(out, " | ");
            md_cell(out, result);
            if (S(q, "error")) {
                fprintf(out, ": ");
                md_cell(out, S(q, "error"));
            }
            fprintf(out, "%s |\n", in_doubt(q) ? IN_DOUBT_REQ : "");
        }
        fputc('\n', out);
    }

    const cJSON *failures = cJSON_GetObjectItemCaseSensitive(m, "failures");
    if (md_section(out, "Failures and how they were handled", NULL, failures, "None.",
                   "| When | Step | Status | Error | Handled |\n|---|---|---|---|---|\n")) {
        const cJSON *f;
        cJSON_ArrayForEach(f, failures) {
            md_when_which(out, run, f);
            md_text(out, status_text(S(f, "status")));
            fprintf(out, " | ");
            md_text(out, S(f, "code"));
            fprintf(out, ": ");
            md_cell(out, S(f, "message"));
            doubt_note(out, md_cell, f);
            fprintf(out, " | ");
            md_text(out, S(f, "handled"));
            fprintf(out, " |\n");
        }
        fputc('\n', out);
    }

    const cJSON *evidence = cJSON_GetObjectItemCaseSensitive(m, "evidence");
    if (md_section(out, "Evidence and captured output", NULL, evidence, "None.",
                   "| Step | Kind | File | Size | SHA-256 |\n|---|---|---|---|---|\n")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, evidence) {
            fprintf(out, "| ");
            md_unverified(out, e);
            attempt_name(out, md_cell, S(e, "step"), e,
                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "undo")));
            fprintf(out, " | ");
            md_text(out, S(e, "kind"));
            if (S(e, "truncated_reason")) {
                fprintf(out, " (truncated: ");
                md_cell(out, S(e, "truncated_reason"));
                fputc(')', out);
            }
            fprintf(out, " | ");
            md_code(out, S(e, "path"));
            fprintf(out, " | %.0f | ", N(e, "size", 0));
            md_code(out, S(e, "sha256"));
            fprintf(out, " |\n");
        }
        fputc('\n', out);
    }

    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(m, "scorecard");
    if (sc) {
        char *text = bh_scorecard_text(sc);
        if (text) { /* a fenced block: at least ``` */
            fprintf(out, "## Scorecard%s\n\n", unverified(sc) ? " (unverified)" : "");
            md_fence(out, text, 3);
            fprintf(out, "\n%s", text);
            md_fence(out, text, 3);
            fputc('\n', out);
        }
        free(text);
    }
}

/* --- HTML --------------------------------------------------------------- */

static void h(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(s, &copy); /* NUL, bytes not UTF-8: as the journal writes them */
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
    free(copy);
}

/* A status as a class name: only [a-z_], so a journal cannot break out of
 * the attribute; anything else is "other". */
static const char *cls(const char *s) {
    if (!s || !*s) return "other";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_')) return "other";
    return s;
}

/* h() of a value that may be missing. */
static void hd(FILE *out, const char *s) {
    h(out, dflt(s, "?"));
}

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
    "max-width:1100px;color:#1d2329;padding:0 16px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #d8dee4;padding-bottom:4px}"
    "table{border-collapse:collapse;width:100%;margin:6px 0 12px}"
    "th,td{border:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f5f7;font-weight:600}td.k{width:220px;color:#57606a}"
    "code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}"
    ".banner{background:#fff4ce;border:1px solid #d4a72c;padding:8px 12px;margin:10px 0;"
    "font-weight:600}"
    ".broken{background:#ffebe9;border-color:#cf222e}"
    "tr.unverified td{background:#fff8f7}"
    ".unv{color:#cf222e;font-weight:700;font-size:11px;text-transform:uppercase}"
    "svg .unverified{fill-opacity:.4;stroke:#cf222e;stroke-dasharray:2 2}"
    ".s-ok{color:#1a7f37}.s-failed,.s-timed_out{color:#cf222e}.s-cancelled,.s-unknown{color:"
    "#9a6700}.s-skipped{color:#6e7781}.s-undone{color:#8250df}"
    ".s-in_doubt{color:#bf3989;font-weight:600}"
    "table#in-doubt td{background:#fff0f7}"
    "svg{border:1px solid #d8dee4;background:#fff}"
    "svg text{font:11px system-ui,sans-serif;fill:#1d2329}"
    "svg .phase-band{fill:#f6f8fa}svg .phase-band.alt{fill:#eef1f4}"
    "svg .phase-label{font-weight:700;fill:#57606a}"
    "svg .bar.status-ok{fill:#2da44e}svg .bar.status-failed{fill:#cf222e}"
    "svg .bar.status-timed_out{fill:#bc4c00}svg .bar.status-cancelled{fill:#bf8700}"
    "svg .bar.status-unknown{fill:#9a6700}svg .bar.status-running{fill:#0969da}"
    "svg .bar.status-skipped{fill:#8c959f}"
    /* in doubt: a colour of its own, and an outline, so it reads as neither
     * failed nor done */
    "svg .bar.status-in_doubt{fill:#bf3989;stroke:#6b1f4a;stroke-width:1.5}"
    "svg .undo-bar{fill:#8250df}svg .undo-bar.status-failed{fill:#cf222e}"
    "svg .wait.approval{fill:#8250df;fill-opacity:.35;stroke:#8250df;stroke-dasharray:3 2}"
    "svg .wait.retry{fill:#bf8700;fill-opacity:.25;stroke:#bf8700;stroke-dasharray:2 2}"
    "svg .grid{stroke:#d8dee4}svg .axis{fill:#57606a}"
    ".legend span{display:inline-block;margin-right:14px}"
    ".legend i{display:inline-block;width:12px;height:10px;margin-right:4px;"
    "vertical-align:middle}";

/* Where time t falls on the plot: inside it whatever a journal says (a
 * NaN or a time past the end would draw off the page or not at all). */
static double at_x(int left, int plot, double t, double span) {
    double f = t / span;
    if (!isfinite(f) || f < 0) f = 0;
    if (f > 1) f = 1;
    return left + plot * f;
}

/* One row of the time line: an attempt, an undo, or a step that never
 * started. */
typedef struct {
    const cJSON *step, *attempt, *phase;
    int undo;
} row;

static void svg_timeline(const cJSON *m, FILE *out) {
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(m, "run");
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(m, "phases");
    const cJSON *waits = cJSON_GetObjectItemCaseSensitive(m, "waits");
    size_t nrows = 0, cap = 16;
    row *rows = bh_util_xcalloc(cap, sizeof *rows);
    const cJSON *p, *st, *a;
    cJSON_ArrayForEach(p, phases) {
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(st, "attempts");
            int n = cJSON_GetArraySize(attempts);
            const cJSON *undos = cJSON_GetObjectItemCaseSensitive(st, "undos");
            int u = cJSON_GetArraySize(undos);
            for (int k = 0; k < (n ? n : 1) + u; k++) {
                if (nrows == cap) {
                    cap *= 2;
                    rows = realloc(rows, cap * sizeof *rows);
                    if (!rows) abort();
                }
                int undo = k >= (n ? n : 1);
                const cJSON *at = undo ? cJSON_GetArrayItem(undos, k - (n ? n : 1))
                                       : (n ? cJSON_GetArrayItem(attempts, k) : NULL);
                rows[nrows++] = (row){st, at, p, undo};
            }
        }
    }
    double span = N(run, "span_ms", 0);
    cJSON_ArrayForEach(a, waits) if (N(a, "end_ms", 0) > span) span = N(a, "end_ms", 0);
    if (!(span > 0) || !isfinite(span)) span = 1;
    const int left = 230, width = 1040, plot = width - left - 20, rowh = 18, top = 28;
    int height = top + (int)nrows * rowh + 20;
    fprintf(out,
            "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"time line\">\n",
            width, height, width, height);
    /* axis: 5 ticks */
    for (int k = 0; k <= 5; k++) {
        double t = span * k / 5;
        double x = left + plot * (double)k / 5;
        char d[32];
        bh_util_format_duration(t, d, sizeof d);
        fprintf(out,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                "<text class=\"axis\" x=\"%.1f\" y=\"16\" text-anchor=\"middle\">%s%s</text>\n",
                x, top - 4, x, height - 16, x, k ? "+" : "", k ? d : "start");
    }
    /* phase bands and labels */
    size_t r = 0;
    int alt = 0;
    while (r < nrows) {
        size_t from = r;
        while (r < nrows && rows[r].phase == rows[from].phase)
            r++;
        double y = top + (double)from * rowh;
        fprintf(out,
                "<rect class=\"phase-band%s\" x=\"0\" y=\"%.1f\" width=\"%d\" height=\"%.1f\"/>"
                "<text class=\"phase-label\" x=\"6\" y=\"%.1f\">",
                alt ? " alt" : "", y, width, (double)(r - from) * rowh, y + 13);
        h(out, S(rows[from].phase, "name"));
        fprintf(out, "</text>\n");
        alt = !alt;
    }
    /* rows: the label, the attempt's bar, the waits that belong to it */
    for (r = 0; r < nrows; r++) {
        double y = top + (double)r * rowh;
        const cJSON *at = rows[r].attempt;
        const char *sid = S(rows[r].step, "id");
        fprintf(out, "<text x=\"96\" y=\"%.1f\">", y + 13);
        attempt_name(out, h, sid, at, rows[r].undo);
        if (at && N(at, "attempt", 0) > 1) fprintf(out, " (%.0f)", N(at, "attempt", 0));
        fprintf(out, "</text>\n");
        /* approval waits are drawn on the step's first row */
        if (r == 0 || rows[r - 1].step != rows[r].step) {
            cJSON_ArrayForEach(a, waits) {
                if (!is(S(a, "kind"), "approval") || !is(S(a, "step"), sid)) continue;
                double x0 = at_x(left, plot, N(a, "start_ms", 0), span);
                double x1 = at_x(left, plot, N(a, "end_ms", 0), span);
                fprintf(out, "<rect class=\"wait approval\" data-step=\"");
                h(out, sid);
                fprintf(out,
                        "\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\"><title>"
                        "approval wait: ",
                        x0, y + 3, x1 - x0 < 2 ? 2 : x1 - x0, rowh - 6);
                h(out, S(a, "reason"));
                fprintf(out, "</title></rect>\n");
            }
        }
        if (!at) continue;
        double s0 = N(at, "start_ms", 0), s1 = N(at, "end_ms", span);
        double x0 = at_x(left, plot, s0, span), x1 = at_x(left, plot, s1, span);
        const char *status = dflt(S(at, "status"), "running");
        char d[32];
        bh_util_format_duration(s1 - s0, d, sizeof d);
        /* "bar" is a step attempt, one each; an undo is an "undo-bar" */
        fprintf(out, "<rect class=\"%s status-%s%s", rows[r].undo ? "undo-bar" : "bar", cls(status),
                unverified(at) ? " unverified" : "");
        fprintf(out, "\" data-step=\"");
        h(out, sid);
        fprintf(out,
                "\" data-attempt=\"%.0f\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%d\"><title>",
                N(at, "attempt", 0), x0, y + 3, x1 - x0 < 2 ? 2 : x1 - x0, rowh - 6);
        attempt_name(out, h, sid, at, rows[r].undo);
        fprintf(out, " attempt %.0f: ", N(at, "attempt", 0));
        h(out, status_text(status));
        if (S(at, "may_remain")) {
            fputs(": ", out);
            h(out, S(at, "may_remain"));
        }
        fprintf(out, ", %s%s</title></rect>\n", d,
                unverified(at) ? " (unverified: the journal's chain is broken before it)" : "");
        /* a backoff follows an attempt, never an undo of the same number */
        cJSON_ArrayForEach(a, waits) {
            if (rows[r].undo || !is(S(a, "kind"), "retry") || !is(S(a, "step"), sid) ||
                N(a, "attempt", 0) != N(at, "attempt", 0) || N(a, "item", 0) != N(at, "item", 0))
                continue;
            double w0 = at_x(left, plot, N(a, "start_ms", 0), span);
            double w1 = at_x(left, plot, N(a, "end_ms", 0), span);
            fprintf(out,
                    "<rect class=\"wait retry\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                    "height=\"%d\"><title>backoff before the next attempt</title></rect>\n",
                    w0, y + 5, w1 - w0 < 2 ? 2 : w1 - w0, rowh - 10);
        }
    }
    fprintf(out, "</svg>\n");
    free(rows);
}

/* A table row and its first cell, opened: marked when the chain does not
 * vouch for what it shows. */
static void html_tr(FILE *out, const cJSON *x) {
    if (unverified(x))
        fputs("<tr class=\"unverified\"><td><span class=\"unv\">unverified</span> ", out);
    else
        fputs("<tr><td>", out);
}

/* The first cells of a row about a record of one attempt (a command, a
 * request, a failure), as md_when_which. */
static void html_when_which(FILE *out, const cJSON *run, const cJSON *x) {
    char t[64];
    when(run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
    html_tr(out, x);
    h(out, t);
    fprintf(out, "</td><td>");
    attempt_name(out, h, S(x, "step"), x,
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "undo")));
    fprintf(out, " #%.0f</td><td>", N(x, "attempt", 0));
}

/* A row of the steps table: one attempt of a step, or one undo of it. */
static void html_attempt_row(FILE *out, const cJSON *run, const char *step, const cJSON *a,
                             int undo) {
    char t[64], d[32];
    when(run, N(a, "start_ms", 0), S(a, "start"), t, sizeof t);
    bh_util_format_duration(N(a, "duration_ms", 0), d, sizeof d);
    html_tr(out, a);
    attempt_name(out, h, step, a, undo);
    fprintf(out, "</td><td>%.0f</td><td>", N(a, "attempt", 0));
    h(out, t);
    fprintf(out, "</td><td>%s</td><td class=\"s-%s\">", d, cls(S(a, "status")));
    hd(out, status_text(S(a, "status")));
    fprintf(out, "</td><td>");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
    if (e) {
        h(out, S(e, "code"));
        fputs(": ", out);
        h(out, S(e, "message"));
    }
    doubt_note(out, h, a);
    if (S(a, "next")) { /* only attempts have one */
        fputs(" (next: ", out);
        h(out, S(a, "next"));
        fputc(')', out);
    }
    fprintf(out, "</td></tr>\n");
}

/* The in-doubt section, as md_doubt. */
static void html_doubt(FILE *out, const cJSON *run, const cJSON *doubt) {
    const cJSON *open = cJSON_GetObjectItemCaseSensitive(doubt, "remaining");
    const cJSON *resolved = cJSON_GetObjectItemCaseSensitive(doubt, "resolved");
    fprintf(out, "<h2>In doubt: may remain</h2>\n");
    if (cJSON_GetArraySize(open) == 0) {
        fprintf(out, "<p id=\"in-doubt\">%s</p>\n", doubt_none(doubt));
    } else {
        fprintf(out, "<p>%s<code>bulkhead undo RUN</code>%s</p>\n", DOUBT_INTRO, DOUBT_UNDO);
        fprintf(out, "<table id=\"in-doubt\"><tr><th>Since</th><th>Step</th>"
                     "<th>What may remain</th><th>Why in doubt</th><th>Undo</th></tr>\n");
        const cJSON *x;
        cJSON_ArrayForEach(x, open) {
            html_when_which(out, run, x);
            fputs("<b>", out);
            hd(out, S(x, "may_remain"));
            fprintf(out, "</b></td><td>");
            h(out, S(x, "doubt"));
            fprintf(out, "</td><td>%s</td></tr>\n", undo_text(x));
        }
        fprintf(out, "</table>\n");
    }
    if (cJSON_GetArraySize(resolved) > 0) {
        fprintf(out, "<p>No longer in doubt: ");
        resolved_list(out, h, resolved);
        fprintf(out, ".</p>\n");
    }
}

static void html_table_row(FILE *out, const char *k, const char *v, int code) {
    fprintf(out, "<tr><td class=\"k\">%s</td><td>%s", k, code ? "<code>" : "");
    h(out, v);
    fprintf(out, "%s</td></tr>\n", code ? "</code>" : "");
}

void bh_report_html(const cJSON *m, FILE *out) {
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(m, "run");
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(run, "runbook");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(m, "journal");
    char t[64], d[32];
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width\">\n"
                 /* The report is a file people open from an evidence store:
                  * no script runs and nothing is fetched, whatever the
                  * journal says. */
                 "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                 "style-src 'unsafe-inline'; img-src data:\">\n<title>");
    h(out, dflt(S(rb, "title"), "run"));
    fprintf(out, ": after-action report</title>\n<style>%s</style></head><body>\n", CSS);
    fprintf(out, "<h1>After-action report: ");
    h(out, dflt(S(rb, "title"), dflt(S(rb, "id"), "?")));
    fprintf(out, "</h1>\n");
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact"))) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(jr, "broken_at");
        fprintf(out,
                "<div class=\"banner broken\" id=\"chain\">The journal's hash chain is broken "
                "at seq %.0f (byte offset %.0f): ",
                N(b, "seq", 0), N(b, "offset", 0));
        hd(out, S(jr, "problem"));
        fprintf(out, "<br>%s</div>\n", broken_tail(jr));
    }
    if (mode_banner(run))
        fprintf(out, "<div class=\"banner\" id=\"mode\">%s</div>\n", mode_banner(run));
    fprintf(out, "<h2>Summary</h2>\n<table id=\"summary\">\n");
    html_table_row(out, "Run", S(run, "id"), 1);
    fprintf(out, "<tr><td class=\"k\">Outcome</td><td class=\"s-%s\"><b>", cls(S(run, "status")));
    hd(out, S(run, "status"));
    fprintf(out, "</b>%s</td></tr>\n",
            unverified(run) ? " <span class=\"unv\">unverified</span>" : "");
    int nd = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "in_doubt"), "remaining"));
    if (nd > 0)
        fprintf(out,
                "<tr><td class=\"k\">In doubt</td><td class=\"s-in_doubt\">%d may remain "
                "(<a href=\"#in-doubt\">below</a>)</td></tr>\n",
                nd);
    char title[512];
    snprintf(title, sizeof title, "%s (%s), severity %s", dflt(S(rb, "title"), "?"),
             dflt(S(rb, "id"), "?"), dflt(S(rb, "severity"), "?"));
    html_table_row(out, "Runbook", title, 0);
    html_table_row(out, "Runbook file", S(rb, "path"), 1);
    html_table_row(out, "Runbook SHA-256", S(rb, "sha256"), 1);
    char *params = bh_json_print(cJSON_GetObjectItemCaseSensitive(run, "params"), 0);
    html_table_row(out, "Parameters", params ? params : "{}", 1);
    free(params);
    snprintf(t, sizeof t, "%s on %s", dflt(S(run, "operator"), "?"), dflt(S(run, "host"), "?"));
    html_table_row(out, "Operator", t, 0);
    html_table_row(out, "Mode", S(run, "mode"), 0);
    html_table_row(out, "Started (UTC)", S(run, "started"), 0);
    if (S(run, "ended")) {
        snprintf(t, sizeof t, "%s%s", S(run, "ended"), unverified(run) ? " (unverified)" : "");
        html_table_row(out, "Ended (UTC)", t, 0);
        bh_util_format_duration(N(run, "duration_ms", 0), d, sizeof d);
        snprintf(t, sizeof t, "%s%s", d, unverified(run) ? " (unverified)" : "");
        html_table_row(out, "Duration", t, 0);
    }
    char note[96];
    head_note(jr, note, sizeof note);
    fprintf(out, "<tr><td class=\"k\">Journal head (SHA-256)</td><td><code>");
    hd(out, S(jr, "head"));
    fprintf(out, "</code>%s</td></tr>\n", note);
    snprintf(t, sizeof t, "%.0f records, %s", N(jr, "records", 0),
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact")) ? "chain intact"
                                                                          : "CHAIN BROKEN");
    html_table_row(out, "Journal", t, 0);
    fprintf(out, "</table>\n");
    html_doubt(out, run, cJSON_GetObjectItemCaseSensitive(m, "in_doubt"));

    fprintf(out,
            "<h2>Time line</h2>\n<p class=\"legend\">"
            "<span><i style=\"background:#2da44e\"></i>ok</span>"
            "<span><i style=\"background:#cf222e\"></i>failed</span>"
            "<span><i style=\"background:#bc4c00\"></i>timed out</span>"
            "<span><i style=\"background:#bf8700\"></i>cancelled</span>"
            "<span><i style=\"background:#9a6700\"></i>unknown</span>"
            "<span><i style=\"background:#bf3989;outline:1.5px solid #6b1f4a\"></i>in doubt "
            "(may have acted)</span>"
            "<span><i style=\"background:#8250df;opacity:.45\"></i>waiting for "
            "approval</span>"
            "<span><i style=\"background:#bf8700;opacity:.35\"></i>retry backoff</span>"
            "%s%s</p>\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact"))
                ? ""
                : "<span><i style=\"border:1px dashed #cf222e;opacity:.6\"></i>unverified (after "
                  "the break)</span>",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "simulated_time"))
                ? "<span>(simulated time)</span>"
                : "");
    svg_timeline(m, out);

    fprintf(out, "<h2>Steps by phase</h2>\n");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(m, "phases")) {
        fprintf(out, "<h3>");
        h(out, S(p, "name"));
        fprintf(out, "</h3>\n<table class=\"steps\"><tr><th>Step</th><th>Attempt</th>"
                     "<th>Start</th><th>Duration</th><th>Status</th><th>Notes</th></tr>\n");
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(st, "attempts");
            if (cJSON_GetArraySize(attempts) == 0) {
                html_tr(out, st);
                h(out, S(st, "id"));
                fprintf(out, "</td><td>-</td><td>-</td><td>-</td><td class=\"s-%s\">",
                        cls(S(st, "status")));
                hd(out, status_text(S(st, "status")));
                fprintf(out, "</td><td>");
                h(out, S(st, "reason"));
                fprintf(out, "</td></tr>\n");
                continue;
            }
            const cJSON *a;
            cJSON_ArrayForEach(a, attempts) html_attempt_row(out, run, S(st, "id"), a, 0);
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "undos"))
                html_attempt_row(out, run, S(st, "id"), a, 1);
        }
        fprintf(out, "</table>\n");
    }

    fprintf(out, "<h2>Decisions</h2>\n<table id=\"decisions\"><tr><th>When</th><th>Step</th>"
                 "<th>Decision</th><th>By</th><th>How</th><th>Why</th></tr>\n");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "decisions")) {
        when(run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
        html_tr(out, x);
        h(out, t);
        fprintf(out, "</td><td>");
        attempt_name(out, h, S(x, "step"), x, 0);
        fprintf(out, "</td><td>");
        hd(out, S(x, "kind"));
        fputs(": ", out);
        hd(out, S(x, "decision"));
        fprintf(out, "</td><td>");
        h(out, S(x, "by"));
        fprintf(out, "</td><td>");
        h(out, S(x, "how"));
        fprintf(out, "</td><td>");
        h(out, S(x, "why"));
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");

    fprintf(out,
            "<h2>Commands%s</h2>\n<table id=\"commands\"><tr><th>When</th><th>Step</th>"
            "<th>Command</th><th>Result</th></tr>\n",
            mode_banner(run) ? " (simulated: not executed)" : "");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "commands")) {
        char *args = argv_text(cJSON_GetObjectItemCaseSensitive(x, "argv"));
        html_when_which(out, run, x);
        fprintf(out, "<code>");
        h(out, args);
        free(args);
        fprintf(out, "</code>%s</td><td>", read_only(x) ? " (read-only)" : "");
        if (S(x, "error"))
            h(out, S(x, "error"));
        else if (S(x, "signal"))
            h(out, S(x, "signal"));
        else if (cJSON_GetObjectItemCaseSensitive(x, "code"))
            fprintf(out, "exit %.0f", N(x, "code", 0));
        else
            fputs("no end recorded", out);
        if (in_doubt(x)) fprintf(out, "<span class=\"s-in_doubt\">%s</span>", IN_DOUBT_CMD);
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");

    fprintf(out,
            "<h2>Requests%s</h2>\n<table id=\"requests\"><tr><th>When</th><th>Step</th>"
            "<th>Request</th><th>Result</th></tr>\n",
            mode_banner(run) ? " (simulated: not sent)" : "");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "requests")) {
        char what[64], result[64];
        request_text(x, what, sizeof what, result, sizeof result);
        html_when_which(out, run, x);
        h(out, what);
        fprintf(out, " <code>");
        h(out, S(x, "url"));
        fprintf(out, "</code></td><td>");
        h(out, result);
        if (S(x, "error")) {
            fputs(": ", out);
            h(out, S(x, "error"));
        }
        if (in_doubt(x)) fprintf(out, "<span class=\"s-in_doubt\">%s</span>", IN_DOUBT_REQ);
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");

    fprintf(out, "<h2>Failures and how they were handled</h2>\n<table id=\"failures\"><tr>"
                 "<th>When</th><th>Step</th><th>Status</th><th>Error</th><th>Handled</th></tr>\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "failures")) {
        html_when_which(out, run, x);
        fprintf(out, "<span class=\"s-%s\">", cls(S(x, "status")));
        hd(out, status_text(S(x, "status")));
        fputs("</span>", out);
        fprintf(out, "</td><td>");
        h(out, S(x, "code"));
        fputs(": ", out);
        h(out, S(x, "message"));
        doubt_note(out, h, x);
        fprintf(out, "</td><td>");
        h(out, S(x, "handled"));
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");

    fprintf(out, "<h2>Evidence and captured output</h2>\n<table id=\"evidence\"><tr>"
                 "<th>Step</th><th>Kind</th><th>File</th><th>Size</th><th>SHA-256</th></tr>\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(m, "evidence")) {
        html_tr(out, x);
        attempt_name(out, h, S(x, "step"), x,
                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "undo")));
        fprintf(out, "</td><td>");
        h(out, S(x, "kind"));
        if (S(x, "truncated_reason")) {
            fputs(" (truncated: ", out);
            h(out, S(x, "truncated_reason"));
            fputc(')', out);
        }
        fprintf(out, "</td><td><code>");
        h(out, S(x, "path"));
        fprintf(out, "</code></td><td>%.0f</td><td><code>", N(x, "size", 0));
        hd(out, S(x, "sha256"));
        fprintf(out, "</code></td></tr>\n");
    }
    fprintf(out, "</table>\n");

    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(m, "scorecard");
    if (sc) {
        fprintf(out, "<h2>Scorecard%s</h2>\n<pre id=\"scorecard\">",
                unverified(sc) ? " <span class=\"unv\">unverified</span>" : "");
        char *text = bh_scorecard_text(sc);
        if (text) h(out, text);
        free(text);
        fprintf(out, "</pre>\n");
    }
    fprintf(out, "<p><small>Made by ");
    hd(out, S(cJSON_GetObjectItemCaseSensitive(m, "report"), "generator"));
    fprintf(out, " from the run's journal alone.</small></p>\n</body></html>\n");
}
