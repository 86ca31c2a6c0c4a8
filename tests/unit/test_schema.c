/* Unit tests for engine/journal/schema.c, and docs/journal.md against it:
 * every record type the engine writes is documented with every field its
 * schema declares, and the documentation names no type the engine does
 * not write. The engine refuses, in the test build, a record with a field
 * its schema does not declare (run/run.c), so the three cannot drift. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "journal/schema.h"

#define DOC "docs/journal.md"
#define MAX_ENTRIES 128

/* One "- `type`: ..." entry of the list of types (several names may share
 * one: "- `undo_start`, `undo_end`: ..."). */
typedef struct {
    char heads[256]; /* "`undo_start`, `undo_end`" */
    const char *text;
    size_t len;
} entry;

static char *doc;
static entry entries[MAX_ENTRIES];
static size_t nentries;

/* The list starts after "Types and their fields" and runs to the next
 * heading; each item that opens with backticked names is an entry. */
static int setup(void **state) {
    (void)state;
    size_t len;
    doc = bh_util_read_file(DOC, &len);
    if (!doc) return -1;
    const char *p = strstr(doc, "Types and their fields");
    if (!p) return -1;
    const char *stop = strstr(p, "\n## ");
    if (!stop) stop = doc + len;
    for (p = strstr(p, "\n- `"); p && p < stop; p = strstr(p + 1, "\n- `")) {
        const char *end = strstr(p + 1, "\n- ");
        if (!end || end > stop) end = stop;
        if (nentries == MAX_ENTRIES) return -1;
        entry *e = &entries[nentries++];
        /* the names it opens with: `a`, `b` */
        const char *h = p + 3;
        while (*h == '`') {
            const char *close = strchr(h + 1, '`');
            if (!close) return -1;
            h = close + 1;
            if (strncmp(h, ", `", 3) == 0) h += 2;
        }
        snprintf(e->heads, sizeof e->heads, "%.*s", (int)(h - (p + 3)), p + 3);
        e->text = p;
        e->len = (size_t)(end - p);
    }
    return nentries > 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(doc);
    return 0;
}

/* Does text[0..len) hold `word` in backticks (or `word: value`)? */
static int names(const char *text, size_t len, const char *word) {
    size_t n = strlen(word);
    for (size_t i = 0; i + n + 2 <= len; i++)
        if (text[i] == '`' && memcmp(text + i + 1, word, n) == 0 &&
            (text[i + 1 + n] == '`' || text[i + 1 + n] == ':'))
            return 1;
    return 0;
}

static const entry *entry_of(const char *type) {
    for (size_t i = 0; i < nentries; i++)
        if (names(entries[i].heads, strlen(entries[i].heads), type)) return &entries[i];
    return NULL;
}

/* Is field documented for type: in its entry, or in the entry of a type
 * its entry refers to ("like `step_start`")? */
static int documented(const entry *e, const char *field) {
    if (names(e->text, e->len, field)) return 1;
    for (int r = 0; r < BH_REC_COUNT; r++) {
        const entry *other = entry_of(bh_rec_name((bh_rec)r));
        if (other && other != e && names(e->text, e->len, bh_rec_name((bh_rec)r)) &&
            names(other->text, other->len, field))
            return 1;
    }
    return 0;
}

static void test_every_type_and_field_is_documented(void **state) {
    (void)state;
    int missing = 0;
    for (int r = 0; r < BH_REC_COUNT; r++) {
        const char *type = bh_rec_name((bh_rec)r);
        const entry *e = entry_of(type);
        if (!e) {
            fprintf(stderr, "%s: record type `%s` is not documented\n", DOC, type);
            missing++;
            continue;
        }
        char fields[1024];
        snprintf(fields, sizeof fields, "%s", bh_rec_fields((bh_rec)r));
        for (char *save, *f = strtok_r(fields, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
            if (!documented(e, f)) {
                fprintf(stderr, "%s: field `%s` of `%s` is not documented\n", DOC, f, type);
                missing++;
            }
        }
    }
    assert_int_equal(missing, 0);
}

static void test_every_documented_type_exists(void **state) {
    (void)state;
    int unknown = 0;
    for (size_t i = 0; i < nentries; i++) {
        char heads[256];
        snprintf(heads, sizeof heads, "%s", entries[i].heads);
        for (char *save, *h = strtok_r(heads, "`, ", &save); h; h = strtok_r(NULL, "`, ", &save)) {
            if (bh_rec_of(h) == BH_REC_COUNT) {
                fprintf(stderr, "%s: documents a record type `%s` the engine does not write\n", DOC,
                        h);
                unknown++;
            }
        }
    }
    assert_int_equal(unknown, 0);
}

static void test_common_fields_are_documented(void **state) {
    (void)state;
    char fields[256];
    snprintf(fields, sizeof fields, "%s %s", BH_SCHEMA_COMMON, BH_SCHEMA_ATTEMPT);
    for (char *save, *f = strtok_r(fields, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
        if (!names(doc, strlen(doc), f)) fprintf(stderr, "%s: `%s` is not documented\n", DOC, f);
        assert_true(names(doc, strlen(doc), f));
    }
}

static void test_lookup_and_undeclared(void **state) {
    (void)state;
    assert_int_equal(bh_rec_of("step_end"), BH_REC_STEP_END);
    assert_string_equal(bh_rec_name(BH_REC_RUN_START), "run_start");
    assert_int_equal(bh_rec_of("no_such"), BH_REC_COUNT);
    assert_int_equal(bh_rec_of(NULL), BH_REC_COUNT);
    assert_true(bh_rec_is("log", BH_REC_LOG));
    assert_false(bh_rec_is("logs", BH_REC_LOG));
    assert_false(bh_rec_is(NULL, BH_REC_LOG));
    cJSON *rec = cJSON_Parse("{\"seq\":1,\"type\":\"log\",\"step\":\"s\",\"message\":\"m\"}");
    assert_null(bh_rec_undeclared(rec));
    cJSON_AddStringToObject(rec, "mess", "a field no type declares");
    assert_string_equal(bh_rec_undeclared(rec), "mess");
    cJSON_Delete(rec);
    rec = cJSON_Parse("{\"seq\":1,\"type\":\"nope\"}");
    assert_string_equal(bh_rec_undeclared(rec), "type");
    cJSON_Delete(rec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_and_field_is_documented),
        cmocka_unit_test(test_every_documented_type_exists),
        cmocka_unit_test(test_common_fields_are_documented),
        cmocka_unit_test(test_lookup_and_undeclared),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
