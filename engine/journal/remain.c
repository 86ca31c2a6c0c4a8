#include "journal/remain.h"

#include "journal/schema.h"

#include <stdio.h>
#include <string.h>

#include "journal/journal.h"

#define S bh_journal_str
#define N bh_journal_num

static int is(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

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

static int same_instance(const cJSON *a, const cJSON *b) {
    return is(S(a, "step"), S(b, "step")) && N(a, "item", 0) == N(b, "item", 0) &&
           N(a, "rep", 0) == N(b, "rep", 0);
}

/* The entry of rec's instance in list, taken out of it; NULL when none. */
static cJSON *take(cJSON *list, const cJSON *rec) {
    cJSON *e;
    cJSON_ArrayForEach(e, list) if (same_instance(e, rec)) return cJSON_DetachItemViaPointer(list,
                                                                                             e);
    return NULL;
}

static cJSON *find(const cJSON *list, const cJSON *rec) {
    cJSON *e;
    cJSON_ArrayForEach(e, list) if (same_instance(e, rec)) return e;
    return NULL;
}

static void copy_str(cJSON *to, const char *key, const char *v) {
    if (v) cJSON_AddStringToObject(to, key, v);
}

/* The entry an in-doubt step_end makes (key: the fan-out item's, from its
 * step_start, or NULL). */
static cJSON *entry_of(const cJSON *rec, const char *key) {
    cJSON *e = cJSON_CreateObject();
    const char *step = S(rec, "step");
    cJSON_AddStringToObject(e, "step", step);
    if (key) cJSON_AddStringToObject(e, "key", key);
    if (N(rec, "item", 0) > 0) cJSON_AddNumberToObject(e, "item", N(rec, "item", 0));
    if (N(rec, "rep", 0) > 0) cJSON_AddNumberToObject(e, "rep", N(rec, "rep", 0));
    cJSON_AddNumberToObject(e, "attempt", N(rec, "attempt", 0));
    /* the text undo_begin names it by, too (undo.c) */
    cJSON_AddStringToObject(e, "may_remain", S(rec, "may_remain") ? S(rec, "may_remain") : step);
    copy_str(e, "doubt", S(rec, "doubt"));
    copy_str(e, "ts", S(rec, "ts"));
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(rec, "sim_ms");
    if (cJSON_IsNumber(sim)) cJSON_AddNumberToObject(e, "sim_ms", sim->valuedouble);
    return e;
}

static void set_str(cJSON *o, const char *k, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v);
}

/* An entry (open, or waiting for its retry) is no longer in doubt: into
 * resolved, saying how. */
static cJSON *resolve(bh_remain *r, const cJSON *rec, cJSON *e, const char *by) {
    if (!e) return NULL;
    set_str(e, "by", by);
    cJSON_DeleteItemFromObjectCaseSensitive(e, "resolved_ts");
    copy_str(e, "resolved_ts", S(rec, "ts"));
    cJSON_AddItemToArray(r->resolved, e);
    return e;
}

static cJSON *open_entry(bh_remain *r, cJSON *e) {
    cJSON_Delete(take(r->open, e)); /* in doubt again: the latest attempt says why */
    cJSON_AddItemToArray(r->open, e);
    return e;
}

static cJSON *step_end(bh_remain *r, const cJSON *rec, const char *key) {
    const char *status = S(rec, "status");
    cJSON *waited = take(r->pending, rec); /* the retry it waited for has ended */
    if (is(status, "in_doubt")) {
        cJSON_Delete(waited);
        cJSON *e = entry_of(rec, key);
        if (!is(S(rec, "next"), "retry")) return open_entry(r, e);
        cJSON_AddItemToArray(r->pending, e);
        return NULL;
    }
    if (is(status, "ok")) {
        cJSON *e = take(r->open, rec);
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
static cJSON *without_undo(bh_remain *r, const cJSON *rec) {
    cJSON *last = NULL, *e;
    const cJSON *text;
    cJSON_ArrayForEach(text, cJSON_GetObjectItemCaseSensitive(rec, "in_doubt_without_undo")) {
        if (!cJSON_IsString(text)) continue;
        cJSON_ArrayForEach(e, r->open) {
            if (!is(S(e, "may_remain"), text->valuestring)) continue;
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

/* Does an exec_start or request_start start something that may act? A
 * command unless it said acts = false; mail; HTTP but GET, HEAD, OPTIONS. */
static int acting(const cJSON *rec) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "undo"))) return 0;
    if (bh_rec_is(S(rec, "type"), BH_REC_EXEC_START))
        return !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rec, "acts"));
    const char *kind = S(rec, "kind"), *m = S(rec, "method");
    if (is(kind, "mail")) return 1;
    return is(kind, "http") && !is(m, "GET") && !is(m, "HEAD") && !is(m, "OPTIONS");
}

/* An attempt began: what it would leave, should it be cut off mid-way. */
static void started(bh_remain *r, const cJSON *rec) {
    cJSON_Delete(take(r->flight, rec));
    const char *key = S(rec, "key");
    cJSON *e = entry_of(rec, key);
    char text[300];
    bh_remain_text(key ? key : S(rec, "step"), S(rec, "step"), S(rec, "effect"), text, sizeof text);
    set_str(e, "may_remain", text);
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

cJSON *bh_remain_note(bh_remain *r, const cJSON *rec) {
    const char *type = S(rec, "type");
    if (bh_rec_is(type, BH_REC_UNDO_BEGIN)) return without_undo(r, rec);
    if (bh_rec_is(type, BH_REC_RUN_END)) r->ended = 1;
    if (bh_rec_is(type, BH_REC_RUN_RESUMED)) r->ended = 0;
    if (!S(rec, "step")) return NULL;
    if (bh_rec_is(type, BH_REC_STEP_START)) started(r, rec);
    if ((bh_rec_is(type, BH_REC_EXEC_START) || bh_rec_is(type, BH_REC_REQUEST_START)) &&
        acting(rec)) {
        cJSON *f = find(r->flight, rec);
        if (f) cJSON_ReplaceItemInObjectCaseSensitive(f, "acted", cJSON_CreateTrue());
    }
    if (bh_rec_is(type, BH_REC_STEP_END)) {
        cJSON *f = take(r->flight, rec);
        cJSON *e = step_end(r, rec, f ? S(f, "key") : NULL);
        cJSON_Delete(f);
        return e;
    }
    if (bh_rec_is(type, BH_REC_SETTLED)) { /* a person checked it by hand: bulkhead undo --settle */
        char by[300];
        snprintf(by, sizeof by, "settled by %s", S(rec, "by") ? S(rec, "by") : "?");
        cJSON *e = resolve(r, rec, take(r->open, rec), by);
        if (e) copy_str(e, "note", S(rec, "note"));
        return e;
    }
    if (bh_rec_is(type, BH_REC_RETRY_CANCELLED)) { /* the retry never came: the doubt stays */
        cJSON *e;
        cJSON_ArrayForEach(e, r->pending) { /* it names no repetition */
            if (!is(S(e, "step"), S(rec, "step")) || N(e, "item", 0) != N(rec, "item", 0)) continue;
            return open_entry(r, cJSON_DetachItemViaPointer(r->pending, e));
        }
        return NULL;
    }
    if (bh_rec_is(type, BH_REC_UNDO_END)) {
        if (is(S(rec, "status"), "ok")) return resolve(r, rec, take(r->open, rec), "undo");
        cJSON *e = find(r->open, rec);
        if (e) set_str(e, "undo", "failed");
        return e;
    }
    return NULL;
}

void bh_remain_read(bh_remain *r, const cJSON *records) {
    bh_remain_init(r);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) bh_remain_note(r, rec);
    bh_remain_end(r);
}
