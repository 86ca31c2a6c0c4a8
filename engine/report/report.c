#include "report/report.h"

#include <stdlib.h>
#include <string.h>

#include "journal/remain.h"
#include "report/html.h"
#include "report/md.h"
#include "report/render.h"
#include "base/util.h"

#define S bh_journal_str
#define N bh_journal_num

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
    cJSON_ArrayForEach(x, array) if (bh_util_streq(S(x, key), id)) return x;
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
    cJSON_AddStringToObject(x, "at", bh_util_or(a->r->ts, ""));
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
    cJSON_AddStringToObject(e, "at", bh_util_or(a->r->ts, ""));
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
    cJSON_AddStringToObject(x, "start", bh_util_or(a->r->ts, ""));
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
    cJSON_AddStringToObject(f, "code", bh_util_or(S(e, "code"), "?"));
    cJSON_AddStringToObject(f, "message", bh_util_or(S(e, "message"), ""));
    cJSON_AddStringToObject(f, "handled",
                            bh_util_or(bh_hrec_str(a->r, "next"), undo ? "recorded" : "?"));
    static const char *const keep[] = {"doubt", "may_remain", NULL};
    copy_fields(f, a->r, keep);
    mark_unverified(f, a->unv);
    cJSON_AddItemToArray(b->failures, f);
}

static void on_attempt_end(model *b, const cursor *a) {
    int undo = a->r->type == BH_REC_UNDO_END;
    cJSON *x = find_attempt(a->step, undo ? "undos" : "attempts", a->r);
    const char *status = bh_util_or(bh_hrec_str(a->r, "status"), "?");
    if (x) {
        set_str(x, "status", status);
        cJSON_AddStringToObject(x, "end", bh_util_or(a->r->ts, ""));
        cJSON_AddNumberToObject(x, "end_ms", a->t);
        cJSON_AddNumberToObject(x, "duration_ms", bh_hrec_num(a->r, "duration_ms", 0));
        static const char *const keep[] = {"error", "next", "result", "doubt", "may_remain", NULL};
        copy_fields(x, a->r, keep);
        mark_unverified(x, a->unv);
    }
    if (undo) {
        if (bh_util_streq(status, "ok")) set_str(a->step, "status", "undone");
        set_str(a->step, "undo", status);
    } else if (!cJSON_GetObjectItemCaseSensitive(a->step, "done") || a->r->attempt == 0) {
        set_str(a->step, "status", status);
    }
    if (!bh_util_streq(status, "ok") && !bh_util_streq(status, "skipped"))
        add_failure(b, a, status, undo);
}

static void on_step_done(const cursor *a) {
    set_str(a->step, "status", bh_util_or(bh_hrec_str(a->r, "status"), "?"));
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
    cJSON_AddStringToObject(w, "reason", bh_util_or(bh_hrec_str(a->r, "reason"), ""));
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
        if (!bh_util_streq(S(w, "kind"), "approval") || !bh_util_streq(S(w, "step"), r->step) ||
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "open")))
            continue;
        cJSON_ReplaceItemInObjectCaseSensitive(w, "end_ms", cJSON_CreateNumber(a->t));
        mark_unverified(w, a->unv);
        if (bh_util_streq(bh_hrec_str(r, "decision"), "deny") ||
            bh_hrec_num(r, "approvals", 0) >= bh_hrec_num(r, "needed", 1) ||
            bh_util_streq(bh_hrec_str(r, "how"), "timeout"))
            cJSON_ReplaceItemInObjectCaseSensitive(w, "open", cJSON_CreateFalse());
    }
}

/* An approval, a manual task's answer, or an unknown outcome's decision. */
static void on_decision(model *b, const cursor *a) {
    const bh_hrec *r = a->r;
    const char *kind = "unknown outcome", *decision = NULL, *why = NULL;
    if (r->type == BH_REC_APPROVAL) {
        decision = bh_hrec_str(r, "decision");
        kind = bh_util_streq(decision, "approve") ? "approval" : "denial";
        why = bh_hrec_str(r, "reason");
    } else if (r->type == BH_REC_MANUAL) {
        kind = "manual task";
        decision = bh_hrec_str(r, "outcome");
        why = bh_hrec_str(r, "note");
    } else {
        decision = bh_hrec_str(r, "decision");
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "at", bh_util_or(r->ts, ""));
    cJSON_AddNumberToObject(d, "t_ms", a->t);
    cJSON_AddStringToObject(d, "step", r->step);
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddStringToObject(d, "decision", bh_util_or(decision, "?"));
    cJSON_AddStringToObject(d, "by", bh_util_or(bh_hrec_str(r, "by"), "?"));
    cJSON_AddStringToObject(d, "how", bh_util_or(bh_hrec_str(r, "how"), "?"));
    cJSON_AddStringToObject(d, "why", bh_util_or(why, ""));
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
        cJSON_AddStringToObject(c, "error", bh_util_or(bh_hrec_str(r, "error"), "?"));
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
        cJSON_AddStringToObject(e, "sha256", bh_util_or(S(st, "sha256"), "?"));
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
    cJSON_AddStringToObject(run, "id", bh_util_or(rec_str(start, "run_id"), "?"));
    cJSON_AddStringToObject(run, "mode", bh_util_or(rec_str(start, "mode"), "real"));
    cJSON_AddStringToObject(run, "status",
                            end ? bh_util_or(rec_str(end, "status"), "?") : "incomplete");
    static const char *const keep[] = {"runbook", "params",  "operator", "host",
                                       "engine",  "secrets", NULL};
    if (start) copy_fields(run, start, keep);
    cJSON_AddStringToObject(run, "started", bh_util_or(start ? start->ts : NULL, "?"));
    if (end) {
        cJSON_AddStringToObject(run, "ended", bh_util_or(end->ts, "?"));
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
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(index, bh_util_or(S(e, "step"), ""));
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "at", bh_util_or(S(e, "ts"), ""));
    cJSON_AddNumberToObject(x, "t_ms", t_at(tb, N(e, "sim_ms", -1), S(e, "ts")));
    cJSON_AddStringToObject(x, "step", bh_util_or(S(e, "step"), "?"));
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
