/* Unit tests for engine/journal/history.c: the one reader of a journal's
 * records, on journals the writer makes, on damaged ones, and on the
 * fixture journals kept from earlier engines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "journal/history.h"

/* A journal as the engine writes it: run_start, an attempt of a fan-out
 * item, a command of it, an undo, a record of a type from a newer engine,
 * run_end. */
static const char *const LINES[] = {
    "{\"seq\":0,\"ts\":\"2026-12-04T10:00:00.000Z\",\"prev\":\"0\",\"type\":\"run_start\","
    "\"run_id\":\"r1\"}",
    "{\"seq\":1,\"ts\":\"2026-12-04T10:00:01.000Z\",\"prev\":\"1\",\"type\":\"step_start\","
    "\"step\":\"isolate\",\"item\":2,\"attempt\":1,\"key\":\"web2\",\"sim_ms\":1500}",
    "{\"seq\":2,\"ts\":\"t\",\"prev\":\"2\",\"type\":\"exec_start\",\"step\":\"isolate\","
    "\"item\":2,\"attempt\":1,\"n\":1,\"argv\":[\"nft\"]}",
    "{\"seq\":3,\"ts\":\"t\",\"prev\":\"3\",\"type\":\"undo_start\",\"step\":\"isolate\","
    "\"item\":2,\"attempt\":1,\"undo\":true}",
    "{\"seq\":4,\"ts\":\"t\",\"prev\":\"4\",\"type\":\"from_the_future\",\"step\":\"x\"}",
    "{\"seq\":5,\"ts\":\"t\",\"prev\":\"5\",\"type\":\"run_end\",\"status\":\"ok\"}",
};
#define NLINES (sizeof LINES / sizeof LINES[0])

static char *journal_text(size_t *len) {
    size_t n = 0;
    for (size_t k = 0; k < NLINES; k++)
        n += strlen(LINES[k]) + 1;
    char *buf = bh_util_xmalloc(n + 1), *p = buf;
    for (size_t k = 0; k < NLINES; k++)
        p += sprintf(p, "%s\n", LINES[k]);
    *len = n;
    return buf;
}

static void test_reads_every_record_typed(void **state) {
    (void)state;
    size_t len;
    char *buf = journal_text(&len);
    bh_history h;
    assert_int_equal(bh_history_read_buf(&h, buf, len), 0);
    assert_int_equal(h.n, NLINES);
    assert_int_equal(cJSON_GetArraySize(h.doc), NLINES);
    assert_int_equal(h.read, len);
    assert_int_equal(h.unparsed, 0);
    assert_ptr_equal(h.start, &h.rec[0]);
    assert_ptr_equal(h.end, &h.rec[5]);
    assert_int_equal(h.rec[0].type, BH_REC_RUN_START);
    assert_int_equal(h.rec[4].type, BH_REC_COUNT); /* kept, so counts stay the file's */
    assert_string_equal(h.rec[4].step, "x");
    /* where each line starts */
    size_t off = 0;
    for (size_t k = 0; k < NLINES; k++) {
        assert_int_equal(h.rec[k].offset, off);
        off += strlen(LINES[k]) + 1;
    }
    /* what every record about an attempt carries, read out once */
    const bh_hrec *s = &h.rec[1];
    assert_string_equal(s->step, "isolate");
    assert_string_equal(s->ts, "2026-12-04T10:00:01.000Z");
    assert_int_equal(s->item, 2);
    assert_int_equal(s->rep, 0);
    assert_int_equal(s->attempt, 1);
    assert_int_equal(s->undo, 0);
    assert_true(s->sim_ms == 1500);
    assert_true(h.rec[0].sim_ms < 0);
    assert_int_equal(h.rec[3].undo, 1);
    assert_int_equal(bh_hrec_instance(s), 1);
    assert_int_equal(bh_hrec_instance(&h.rec[0]), 0);
    /* fields by type */
    assert_string_equal(bh_hrec_str(s, "key"), "web2");
    assert_null(bh_hrec_str(s, "value"));
    assert_true(bh_hrec_num(&h.rec[2], "n", 0) == 1);
    assert_true(bh_hrec_num(&h.rec[2], "pid", -7) == -7);
    assert_true(cJSON_IsArray(bh_hrec_get(&h.rec[2], "argv")));
    assert_ptr_equal(bh_history_last(&h, BH_REC_RUN_END), &h.rec[5]);
    assert_null(bh_history_last(&h, BH_REC_CHECKPOINT));
    bh_history_free(&h);
    free(buf);
}

static void test_stops_at_a_line_that_does_not_parse(void **state) {
    (void)state;
    size_t len;
    char *buf = journal_text(&len);
    size_t third = strlen(LINES[0]) + 1 + strlen(LINES[1]) + 1;
    buf[third] = 'x';
    bh_history h;
    assert_int_equal(bh_history_read_buf(&h, buf, len), -EBADMSG);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.unparsed, 1);
    assert_int_equal(h.read, third);
    assert_null(h.end);
    bh_history_free(&h);

    /* A last line without its '\n' (an engine still writing) is read when
     * it parses, and stops the reading when it is torn. */
    buf[third] = '{';
    assert_int_equal(bh_history_read_buf(&h, buf, len - 1), 0);
    assert_int_equal(h.n, NLINES);
    bh_history_free(&h);
    assert_int_equal(bh_history_read_buf(&h, buf, len - 5), -EBADMSG);
    assert_int_equal(h.n, NLINES - 1);
    bh_history_free(&h);

    /* An array is JSON but no record. */
    assert_int_equal(bh_history_read_buf(&h, "[1]\n", 4), -EBADMSG);
    assert_int_equal(h.n, 0);
    bh_history_free(&h);
    free(buf);
}

typedef struct {
    size_t calls, stop_after;
    bh_rec types[NLINES];
} each_state;

static int count(const bh_hrec *r, void *ud) {
    each_state *es = ud;
    es->types[es->calls++] = r->type;
    return es->calls == es->stop_after ? 42 : 0;
}

static void test_each_streams_and_stops(void **state) {
    (void)state;
    size_t len;
    char *buf = journal_text(&len);
    each_state es = {0};
    assert_int_equal(bh_history_each_buf(buf, len, count, &es), 0);
    assert_int_equal(es.calls, NLINES);
    assert_int_equal(es.types[2], BH_REC_EXEC_START);
    es = (each_state){.stop_after = 2};
    assert_int_equal(bh_history_each_buf(buf, len, count, &es), 42);
    assert_int_equal(es.calls, 2);
    free(buf);

    es = (each_state){0};
    assert_int_equal(bh_history_each("/nonexistent/journal.jsonl", count, &es), -ENOENT);
    bh_history h;
    assert_int_equal(bh_history_read(&h, "/nonexistent/journal.jsonl", NULL), -ENOENT);
    assert_int_equal(h.n, 0);
    bh_history_free(&h);
}

static cJSON *obj(const char *text) {
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    return o;
}

static void test_same(void **state) {
    (void)state;
    cJSON *a = obj("{\"step\":\"s\",\"item\":1,\"attempt\":2,\"n\":1}");
    cJSON *b = obj("{\"step\":\"s\",\"item\":1,\"attempt\":2,\"n\":1,\"undo\":true}");
    cJSON *c = obj("{\"step\":\"s\",\"item\":1,\"rep\":3,\"attempt\":2}");
    cJSON *d = obj("{\"step\":\"t\",\"item\":1}");
    assert_true(bh_history_same(a, b, BH_SAME_INSTANCE | BH_SAME_ATTEMPT | BH_SAME_N));
    assert_false(bh_history_same(a, b, BH_SAME_UNDO));
    assert_false(bh_history_same(a, c, BH_SAME_ITEM)); /* another repetition */
    assert_false(bh_history_same(a, d, BH_SAME_STEP));
    assert_true(bh_history_same(a, d, BH_SAME_ITEM));
    /* an attempt or number on one side only matches nothing */
    assert_false(bh_history_same(d, d, BH_SAME_ATTEMPT));
    assert_false(bh_history_same(a, c, BH_SAME_N));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
}

static int acts(const char *line) {
    bh_history h;
    assert_int_equal(bh_history_read_buf(&h, line, strlen(line)), 0);
    int r = bh_hrec_acts(&h.rec[0]);
    bh_history_free(&h);
    return r;
}

static void test_acts(void **state) {
    (void)state;
    assert_true(acts("{\"type\":\"exec_start\",\"step\":\"s\"}"));
    assert_false(acts("{\"type\":\"exec_start\",\"step\":\"s\",\"acts\":false}"));
    assert_false(acts("{\"type\":\"exec_start\",\"step\":\"s\",\"undo\":true}"));
    assert_true(acts("{\"type\":\"request_start\",\"kind\":\"mail\"}"));
    assert_true(acts("{\"type\":\"request_start\",\"kind\":\"http\",\"method\":\"POST\"}"));
    assert_false(acts("{\"type\":\"request_start\",\"kind\":\"http\",\"method\":\"GET\"}"));
    assert_false(acts("{\"type\":\"request_start\",\"kind\":\"connect\"}"));
    assert_false(acts("{\"type\":\"step_start\",\"step\":\"s\"}"));
}

/* The test build refuses a reader asking a record for a field its type
 * does not declare (schema.h): run in a child, which must abort. */
static void test_undeclared_field_aborts(void **state) {
    (void)state;
    const char *line = "{\"type\":\"step_start\",\"step\":\"s\",\"status\":\"ok\"}";
    bh_history h;
    assert_int_equal(bh_history_read_buf(&h, line, strlen(line)), 0);
    assert_null(bh_hrec_str(&h.rec[0], "key")); /* declared, absent */
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        signal(SIGABRT, SIG_DFL);
        (void)bh_hrec_str(&h.rec[0], "status"); /* step_end's, not step_start's */
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    bh_history_free(&h);
}

/* Journals written by earlier engines (tests/fixtures/reports) still read:
 * every line a record of a type this engine knows, the chain intact. */
static void test_fixture_journals_still_read(void **state) {
    (void)state;
    glob_t g;
    assert_int_equal(glob("tests/fixtures/reports/*/journal.jsonl", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 5);
    for (size_t k = 0; k < g.gl_pathc; k++) {
        bh_history h;
        bh_journal_check chk;
        int rc = bh_history_read(&h, g.gl_pathv[k], &chk);
        if (strstr(g.gl_pathv[k], "/broken/")) {
            assert_false(chk.intact);
        } else {
            assert_int_equal(rc, 0);
            assert_true(chk.intact);
            assert_int_equal(h.n, chk.records);
        }
        assert_non_null(h.start);
        for (size_t i = 0; i < h.n; i++) {
            if (h.rec[i].type == BH_REC_COUNT)
                fail_msg("%s: record %zu has a type this engine does not know", g.gl_pathv[k], i);
        }
        bh_history_free(&h);
    }
    globfree(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_record_typed),
        cmocka_unit_test(test_stops_at_a_line_that_does_not_parse),
        cmocka_unit_test(test_each_streams_and_stops),
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_acts),
        cmocka_unit_test(test_undeclared_field_aborts),
        cmocka_unit_test(test_fixture_journals_still_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
