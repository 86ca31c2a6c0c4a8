#include "journal/history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int int_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 2e9 ? (int)v->valuedouble
                                                                            : 0;
}

/* What every reader wants of a record, read once. */
static void read_rec(bh_hrec *r, const cJSON *json, uint64_t offset) {
    r->json = json;
    r->type = bh_rec_of(str_of(json, "type"));
    r->offset = offset;
    r->ts = str_of(json, "ts");
    r->step = str_of(json, "step");
    r->item = int_of(json, "item");
    r->rep = int_of(json, "rep");
    r->attempt = int_of(json, "attempt");
    r->undo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "undo"));
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(json, "sim_ms");
    r->sim_ms = cJSON_IsNumber(sim) ? sim->valuedouble : -1;
}

/* Hand each record of buf[0..len) to take, which owns it, until a line
 * does not parse (-EBADMSG) or take returns non-zero (returned). *read:
 * bytes read up to there. */
typedef int (*take_fn)(cJSON *json, uint64_t offset, void *ud);
static int scan(const char *buf, size_t len, take_fn take, void *ud, uint64_t *read) {
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        const char *line = buf + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t llen = nl ? (size_t)(nl - line) : len - off;
        cJSON *json = bh_json_parse(line, llen);
        if (!cJSON_IsObject(json)) {
            cJSON_Delete(json);
            rc = -EBADMSG;
            break;
        }
        rc = take(json, off, ud);
        off += nl ? llen + 1 : llen;
    }
    if (read) *read = off;
    return rc;
}

typedef struct {
    bh_history *h;
    size_t cap;
} adding;

static int add(cJSON *json, uint64_t offset, void *ud) {
    adding *a = ud;
    bh_history *h = a->h;
    if (h->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        h->rec = bh_util_xrealloc(h->rec, a->cap * sizeof *h->rec);
    }
    cJSON_AddItemToArray(h->doc, json);
    read_rec(&h->rec[h->n++], json, offset);
    return 0;
}

/* start and end point into rec, which moved while it grew: set them once. */
static void find_ends(bh_history *h) {
    for (size_t i = 0; i < h->n; i++) {
        if (h->rec[i].type == BH_REC_RUN_START && !h->start) h->start = &h->rec[i];
        if (h->rec[i].type == BH_REC_RUN_END) h->end = &h->rec[i];
    }
}

int bh_history_read_buf(bh_history *h, const char *buf, size_t len) {
    memset(h, 0, sizeof *h);
    h->doc = cJSON_CreateArray();
    adding a = {h, 0};
    int rc = scan(buf, len, add, &a, &h->read);
    h->unparsed = rc == -EBADMSG;
    find_ends(h);
    return rc;
}

typedef struct {
    bh_history_fn fn;
    void *ud;
} each;

static int one(cJSON *json, uint64_t offset, void *ud) {
    each *e = ud;
    bh_hrec r;
    read_rec(&r, json, offset);
    int rc = e->fn(&r, e->ud);
    cJSON_Delete(json);
    return rc;
}

int bh_history_each_buf(const char *buf, size_t len, bh_history_fn fn, void *ud) {
    each e = {fn, ud};
    return scan(buf, len, one, &e, NULL);
}

int bh_history_each(const char *path, bh_history_fn fn, void *ud) {
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) return errno ? -errno : -EIO;
    int rc = bh_history_each_buf(buf, len, fn, ud);
    free(buf);
    return rc;
}

int bh_history_read(bh_history *h, const char *path, bh_journal_check *chk) {
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) {
        int err = errno ? -errno : -EIO;
        memset(h, 0, sizeof *h);
        h->doc = cJSON_CreateArray();
        return err;
    }
    if (chk) bh_journal_verify_buf(buf, len, chk);
    int rc = bh_history_read_buf(h, buf, len);
    free(buf);
    return rc;
}

void bh_history_free(bh_history *h) {
    cJSON_Delete(h->doc);
    free(h->rec);
    memset(h, 0, sizeof *h);
}

const bh_hrec *bh_history_last(const bh_history *h, bh_rec t) {
    for (size_t i = h->n; i-- > 0;)
        if (h->rec[i].type == t) return &h->rec[i];
    return NULL;
}

const cJSON *bh_hrec_get(const bh_hrec *r, const char *field) {
#ifdef BH_SCHEMA_STRICT
    /* A reader asking for a field its record's type never has is a bug
     * in the reader (or a field missing from schema.h). */
    if (r->type != BH_REC_COUNT && !bh_rec_declares(r->type, field)) {
        fprintf(stderr, "BH_SCHEMA_STRICT: a reader asked %s records for '%s', not in schema.h\n",
                bh_rec_name(r->type), field);
        abort();
    }
#endif
    return cJSON_GetObjectItemCaseSensitive(r->json, field);
}

const char *bh_hrec_str(const bh_hrec *r, const char *field) {
    const cJSON *v = bh_hrec_get(r, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double bh_hrec_num(const bh_hrec *r, const char *field, double def) {
    const cJSON *v = bh_hrec_get(r, field);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int bh_hrec_true(const bh_hrec *r, const char *field) {
    return cJSON_IsTrue(bh_hrec_get(r, field));
}

size_t bh_hrec_instance(const bh_hrec *r) {
    int n = r->rep ? r->rep : r->item;
    return n >= 1 ? (size_t)n - 1 : 0;
}

int bh_hrec_acts(const bh_hrec *r) {
    if (r->undo) return 0;
    if (r->type == BH_REC_EXEC_START) return !cJSON_IsFalse(bh_hrec_get(r, "acts"));
    if (r->type != BH_REC_REQUEST_START) return 0;
    const char *kind = bh_hrec_str(r, "kind"), *m = bh_hrec_str(r, "method");
    if (bh_util_streq(kind, "mail")) return 1;
    return bh_util_streq(kind, "http") && !bh_util_streq(m, "GET") && !bh_util_streq(m, "HEAD") &&
           !bh_util_streq(m, "OPTIONS");
}

static double num_of(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int bh_history_same(const cJSON *a, const cJSON *b, unsigned what) {
    if (what & BH_SAME_STEP) {
        const char *x = str_of(a, "step"), *y = str_of(b, "step");
        if (!x || !y || strcmp(x, y) != 0) return 0;
    }
    if ((what & BH_SAME_ITEM) && (num_of(a, "item", 0) != num_of(b, "item", 0) ||
                                  num_of(a, "rep", 0) != num_of(b, "rep", 0)))
        return 0;
    /* an attempt or a number absent from either side matches nothing */
    if ((what & BH_SAME_ATTEMPT) && num_of(a, "attempt", -1) != num_of(b, "attempt", -2)) return 0;
    if ((what & BH_SAME_N) && num_of(a, "n", -1) != num_of(b, "n", -2)) return 0;
    if ((what & BH_SAME_UNDO) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "undo")) !=
                                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "undo")))
        return 0;
    return 1;
}
