#include "journal/remain.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

#define S bh_journal_str
#define N bh_journal_num

void bh_remain_init(bh_remain *r) {
    r->open = cJSON_CreateArray();
    r->resolved = cJSON_CreateArray();
    r->pending = cJSON_CreateArray();
    r->flight = cJSON_CreateArray();
    r->ended = 0;
}

void bh_remain_free(bh_remain *r) {
    cJSON_Delete(r->open);
    cJSON_Delete(r->resolved);
    cJSON_Delete(r->pending);
    cJSON_Delete(r->flight);
    r->open = r->resolved = r->pending = r->flight = NULL;
}

static cJSON *find(const cJSON *list, const cJSON *x) {
    cJSON *e;
    cJSON_ArrayForEach(e, list) if (bh_history_same(e, x, BH_SAME_INSTANCE)) return e;
    return NULL;
}

/* The entry of x's instance in list, taken out of it; NULL when none. */
static cJSON *take(cJSON *list, const cJSON *x) {
    cJSON *e = find(list, x);
    return e ? cJSON_DetachItemViaPointer(list, e) : NULL;
}

static void copy_str(cJSON *to, const char *key, const char *v) {
    if (v) cJSON_AddStringToObject(to, key, v);
}

/* The entry of the instance and attempt a record (step_start, or an
 * in-doubt step_end) is about (key: the fan-out item's, from its
 * step_start, or NULL), with may_remain (the text undo_begin names it by
 * too, undo.c) and doubt. */
static cJSON *entry_of(const bh_hrec *rec, const char *key, const char *may_remain,
                       const char *doubt) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "step", rec->step);
    if (key) cJSON_AddStringToObject(e, "key", key);
    if (rec->item > 0) cJSON_AddNumberToObject(e, "item", rec->item);
    if (rec->rep > 0) cJSON_AddNumberToObject(e, "rep", rec->rep);
    cJSON_AddNumberToObject(e, "attempt", rec->attempt);
    cJSON_AddStringToObject(e, "may_remain", may_remain ? may_remain : rec->step);
    copy_str(e, "doubt", doubt);
    copy_str(e, "ts", rec->ts);
    if (rec->sim_ms >= 0) cJSON_AddNumberToObject(e, "sim_ms", rec->sim_ms);
    return e;
}

static void set_str(cJSON *o, const char *k, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v);
}

/* An entry (open, or waiting for its retry) is no longer in doubt: into
 * resolved, saying how. */
static cJSON *resolve(bh_remain *r, const bh_hrec *rec, cJSON *e, const char *by) {
    if (!e) return NULL;
    set_str(e, "by", by);
    cJSON_DeleteItemFromObjectCaseSensitive(e, "resolved_ts");
    copy_str(e, "resolved_ts", rec->ts);
    cJSON_AddItemToArray(r->resolved, e);
    return e;
}

static cJSON *open_entry(bh_remain *r, cJSON *e) {
    cJSON_Delete(take(r->open, e)); /* in doubt again: the latest attempt says why */
    cJSON_AddItemToArray(r->open, e);
    return e;
}

static cJSON *step_end(bh_remain *r, const bh_hrec *rec, const char *key) {
    const char *status = bh_hrec_str(rec, "status");
    cJSON *waited = take(r->pending, rec->json); /* the retry it waited for has ended */
    if (bh_util_streq(status, "in_doubt")) {
        cJSON_Delete(waited);
        cJSON *e = entry_of(rec, key, bh_hrec_str(rec, "may_remain"), bh_hrec_str(rec, "doubt"));
        if (!bh_util_streq(bh_hrec_str(rec, "next"), "retry")) return open_entry(r, e);
        cJSON_AddItemToArray(r->pending, e);
        return NULL;
    }
    if (bh_util_streq(status, "ok")) {
        cJSON *e = take(r->open, rec->json);
        if (e) { /* open again after a retry of its own: one entry, the latest */
            cJSON_Delete(waited);
            waited = e;
        }
        return resolve(r, rec, waited, "a later attempt");
    }
    /* a later failure does not take back what may have been done; with the
     * doubt carried into the retry (sched.c) it ends in doubt anyway */
    if (waited) return open_entry(r, waited);
    return NULL;
}

/* undo_begin names the in-doubt instances it cannot put back. */
static cJSON *without_undo(bh_remain *r, const bh_hrec *rec) {
    cJSON *last = NULL, *e;
    const cJSON *text;
    cJSON_ArrayForEach(text, bh_hrec_get(rec, "in_doubt_without_undo")) {
        if (!cJSON_IsString(text)) continue;
        cJSON_ArrayForEach(e, r->open) {
            if (!bh_util_streq(S(e, "may_remain"), text->valuestring)) continue;
            set_str(e, "undo", "none");
            last = e;
        }
    }
    return last;
}

void bh_remain_text(const char *who, const char *step, const char *effect, char *out, size_t len) {
    if (effect)
        snprintf(out, len, "%s may still be %s", who, effect);
    else
        snprintf(out, len, "%s may have acted: what step '%s' does may remain", who, step);
}

/* An attempt began: what it would leave, should it be cut off mid-way. */
static void started(bh_remain *r, const bh_hrec *rec) {
    cJSON_Delete(take(r->flight, rec->json));
    const char *key = bh_hrec_str(rec, "key");
    char text[300];
    bh_remain_text(key ? key : rec->step, rec->step, bh_hrec_str(rec, "effect"), text, sizeof text);
    cJSON *e = entry_of(rec, key, text, NULL);
    cJSON_AddBoolToObject(e, "acted", 0);
    cJSON_AddItemToArray(r->flight, e);
}

void bh_remain_end(bh_remain *r) {
    if (r->ended) return;
    cJSON *e;
    while ((e = r->flight->child)) {
        cJSON_DetachItemViaPointer(r->flight, e);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "acted"))) {
            cJSON_Delete(e);
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(e, "acted");
        cJSON_AddBoolToObject(e, "in_flight", 1);
        set_str(e, "doubt",
                "the attempt had started something that acts and has no end in the "
                "journal: its engine died with it (or is still at it)");
        open_entry(r, e);
    }
}

/* A settled record: a person checked it by hand (bulkhead undo --settle). */
static cJSON *settled(bh_remain *r, const bh_hrec *rec) {
    char by[300];
    const char *who = bh_hrec_str(rec, "by");
    snprintf(by, sizeof by, "settled by %s", who ? who : "?");
    cJSON *e = resolve(r, rec, take(r->open, rec->json), by);
    if (e) copy_str(e, "note", bh_hrec_str(rec, "note"));
    return e;
}

/* The retry never came (retry_cancelled): the doubt stays. */
static cJSON *retry_cancelled(bh_remain *r, const bh_hrec *rec) {
    cJSON *e;
    cJSON_ArrayForEach(e, r->pending) { /* it names no repetition */
        if (!bh_util_streq(S(e, "step"), rec->step) || N(e, "item", 0) != rec->item) continue;
        return open_entry(r, cJSON_DetachItemViaPointer(r->pending, e));
    }
    return NULL;
}

static cJSON *undo_end(bh_remain *r, const bh_hrec *rec) {
    if (bh_util_streq(bh_hrec_str(rec, "status"), "ok"))
        return resolve(r, rec, take(r->open, rec->json), "undo");
    cJSON *e = find(r->open, rec->json);
    if (e) set_str(e, "undo", "failed");
    return e;
}

static cJSON *attempt_record(bh_remain *r, const bh_hrec *rec) {
    switch (rec->type) {
    case BH_REC_STEP_START:
        started(r, rec);
        return NULL;
    case BH_REC_EXEC_START:
    case BH_REC_REQUEST_START:
        if (bh_hrec_acts(rec)) {
            cJSON *f = find(r->flight, rec->json);
            if (f) cJSON_ReplaceItemInObjectCaseSensitive(f, "acted", cJSON_CreateTrue());
        }
        return NULL;
    case BH_REC_STEP_END: {
        cJSON *f = take(r->flight, rec->json);
        cJSON *e = step_end(r, rec, f ? S(f, "key") : NULL);
        cJSON_Delete(f);
        return e;
    }
    case BH_REC_SETTLED:
        return settled(r, rec);
    case BH_REC_RETRY_CANCELLED:
        return retry_cancelled(r, rec);
    case BH_REC_UNDO_END:
        return undo_end(r, rec);
    default:
        return NULL;
    }
}

cJSON *bh_remain_note(bh_remain *r, const bh_hrec *rec) {
    switch (rec->type) {
    case BH_REC_UNDO_BEGIN:
        return without_undo(r, rec);
    case BH_REC_RUN_END:
        r->ended = 1;
        return NULL;
    case BH_REC_RUN_RESUMED:
        r->ended = 0;
        return NULL;
    default:
        return rec->step ? attempt_record(r, rec) : NULL;
    }
}

void bh_remain_read(bh_remain *r, const bh_history *h) {
    bh_remain_init(r);
    for (size_t i = 0; i < h->n; i++)
        bh_remain_note(r, &h->rec[i]);
    bh_remain_end(r);
}
