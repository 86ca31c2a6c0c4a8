#include "remain.h"

#include <string.h>

#include "journal.h"

#define S bh_journal_str
#define N bh_journal_num

static int is(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}

void bh_remain_init(bh_remain *r) {
    r->open = cJSON_CreateArray();
    r->resolved = cJSON_CreateArray();
    r->pending = cJSON_CreateArray();
}

void bh_remain_free(bh_remain *r) {
    cJSON_Delete(r->open);
    cJSON_Delete(r->resolved);
    cJSON_Delete(r->pending);
    r->open = r->resolved = r->pending = NULL;
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

/* The entry an in-doubt step_end makes. */
static cJSON *entry_of(const cJSON *rec) {
    cJSON *e = cJSON_CreateObject();
    const char *step = S(rec, "step");
    cJSON_AddStringToObject(e, "step", step);
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

static cJSON *step_end(bh_remain *r, const cJSON *rec) {
    const char *status = S(rec, "status");
    cJSON *waited = take(r->pending, rec); /* the retry it waited for has ended */
    if (is(status, "in_doubt")) {
        cJSON_Delete(waited);
        cJSON *e = entry_of(rec);
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

cJSON *bh_remain_note(bh_remain *r, const cJSON *rec) {
    const char *type = S(rec, "type");
    if (is(type, "undo_begin")) return without_undo(r, rec);
    if (!S(rec, "step")) return NULL;
    if (is(type, "step_end")) return step_end(r, rec);
    if (is(type, "retry_cancelled")) { /* the retry never came: the doubt stays */
        cJSON *e;
        cJSON_ArrayForEach(e, r->pending) { /* it names no repetition */
            if (!is(S(e, "step"), S(rec, "step")) || N(e, "item", 0) != N(rec, "item", 0)) continue;
            return open_entry(r, cJSON_DetachItemViaPointer(r->pending, e));
        }
        return NULL;
    }
    if (is(type, "undo_end")) {
        if (is(S(rec, "status"), "ok")) return resolve(r, rec, take(r->open, rec), "undo");
        cJSON *e = find(r->open, rec);
        if (e) set_str(e, "undo", "failed");
        return e;
    }
    return NULL;
}
