/* Unit tests for engine/journal.c: writing, appending, verifying and
 * verifying the hash-chained journal (reading it: test_history.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal.h"
#include "base/util.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* Each test gets a fresh directory with a journal path in it. */
typedef struct {
    char *dir;
    char *path;
} fixture;

static int setup(void **state) {
    fixture *f = bh_util_xcalloc(1, sizeof *f);
    const char *base = getenv("TMPDIR");
    f->dir = bh_util_asprintf("%s/bh-test-journal-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->dir)) return -1;
    f->path = bh_util_asprintf("%s/journal.jsonl", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    unlink(f->path);
    int rc = rmdir(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return rc;
}

/* Record i of a test journal: a run's journal begins with its run_start. */
static cJSON *make_record(int i) {
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", i == 0 ? "run_start" : "log");
    cJSON_AddNumberToObject(rec, "i", i);
    char msg[32];
    snprintf(msg, sizeof msg, "record %d", i);
    cJSON_AddStringToObject(rec, "message", msg);
    return rec;
}

static void append_records(bh_journal *j, int from, int to) {
    for (int i = from; i < to; i++) {
        cJSON *rec = make_record(i);
        assert_int_equal(bh_journal_append(j, rec), 0);
        cJSON_Delete(rec);
    }
}

/* A closed journal of n records at path. */
static void write_journal(const char *path, int n) {
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_create(path, &j), 0);
    append_records(j, 0, n);
    assert_int_equal(bh_journal_close(j), 0);
}

static char *slurp(const char *path, size_t *len) {
    char *buf = bh_util_read_file(path, len);
    assert_non_null(buf);
    return buf;
}

/* Byte offset of line k (0-based) of buf. */
static size_t line_offset(const char *buf, int k) {
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        const char *nl = strchr(buf + off, '\n');
        assert_non_null(nl);
        off = (size_t)(nl - buf) + 1;
    }
    return off;
}

static size_t line_length(const char *buf, int k) {
    size_t off = line_offset(buf, k);
    const char *nl = strchr(buf + off, '\n');
    assert_non_null(nl);
    return (size_t)(nl - (buf + off));
}

static void line_hash(const char *buf, int k, char out[BH_SHA256_HEX_LEN + 1]) {
    bh_util_sha256_hex(buf + line_offset(buf, k), line_length(buf, k), out);
}

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

typedef struct {
    int calls;
    char last[512];
} listen_state;

static void listener(const char *line, size_t len, void *ud) {
    listen_state *ls = ud;
    /* Listeners get the line without its '\n', and NUL-terminated. */
    assert_true(len > 0);
    assert_int_equal(line[len], '\0');
    assert_true(line[len - 1] == '}');
    char want[32];
    snprintf(want, sizeof want, "{\"seq\":%d,", ls->calls);
    assert_memory_equal(line, want, strlen(want));
    snprintf(ls->last, sizeof ls->last, "%s", line);
    ls->calls++;
}

static void test_write_then_verify(void **state) {
    fixture *f = *state;
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_create(f->path, &j), 0);
    assert_int_equal(bh_journal_next_seq(j), 0);
    assert_string_equal(bh_journal_head(j), ZEROS);
    listen_state ls = {0};
    bh_journal_set_listener(j, listener, &ls);

    append_records(j, 0, 5);
    assert_int_equal(bh_journal_sync(j), 0);
    assert_int_equal(bh_journal_sync(j), 0); /* nothing new: no-op */
    assert_int_equal(ls.calls, 5);
    assert_int_equal(bh_journal_next_seq(j), 5);
    assert_int_equal(bh_journal_error(j), 0);
    char head[BH_SHA256_HEX_LEN + 1];
    snprintf(head, sizeof head, "%s", bh_journal_head(j));
    assert_int_equal(bh_journal_close(j), 0);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    size_t len;
    char *buf = slurp(f->path, &len);
    assert_int_equal(buf[len - 1], '\n');

    /* Line layout: the writer's three fields, then the caller's, "type"
     * first, with no whitespace. */
    const char *line0 = buf;
    assert_memory_equal(line0, "{\"seq\":0,\"ts\":\"", 15);
    char want_tail[160];
    snprintf(want_tail, sizeof want_tail,
             "Z\",\"prev\":\"%s\",\"type\":\"run_start\",\"i\":0,\"message\":\"record 0\"}\n",
             ZEROS);
    assert_memory_equal(line0 + 15 + 23, want_tail, strlen(want_tail));

    /* prev of each line is the hash of the line before; the head is the
     * hash of the last line, and the listener saw that line. */
    for (int k = 1; k < 5; k++) {
        char h[BH_SHA256_HEX_LEN + 1], needle[80];
        line_hash(buf, k - 1, h);
        snprintf(needle, sizeof needle, "\"prev\":\"%s\"", h);
        const char *line = buf + line_offset(buf, k);
        assert_memory_equal(strstr(line, "\"prev\":"), needle, strlen(needle));
    }
    char last[BH_SHA256_HEX_LEN + 1];
    line_hash(buf, 4, last);
    assert_string_equal(last, head);
    assert_memory_equal(ls.last, buf + line_offset(buf, 4), line_length(buf, 4));

    bh_journal_check chk;
    assert_int_equal(bh_journal_verify(f->path, &chk), 0);
    assert_int_equal(chk.intact, 1);
    assert_int_equal(chk.records, 5);
    assert_int_equal(chk.bad_seq, -1);
    assert_string_equal(chk.head, head);
    free(buf);
}

static void test_create_refuses_existing(void **state) {
    fixture *f = *state;
    write_journal(f->path, 1);
    bh_journal *j = (bh_journal *)1;
    assert_int_equal(bh_journal_create(f->path, &j), -EEXIST);
    assert_null(j);

    char *nodir = bh_util_asprintf("%s/missing/journal.jsonl", f->dir);
    assert_int_equal(bh_journal_create(nodir, &j), -ENOENT);
    free(nodir);
}

static void test_bad_record_is_sticky(void **state) {
    fixture *f = *state;
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_create(f->path, &j), 0);

    cJSON *bad = cJSON_CreateObject();
    cJSON_AddStringToObject(bad, "step", "x");
    cJSON_AddStringToObject(bad, "type", "log"); /* present, but not first */
    assert_int_equal(bh_journal_append(j, bad), -EINVAL);
    cJSON_Delete(bad);

    /* Every later call reports the first error, even for a good record. */
    cJSON *good = make_record(0);
    assert_int_equal(bh_journal_append(j, good), -EINVAL);
    cJSON_Delete(good);
    assert_int_equal(bh_journal_sync(j), -EINVAL);
    assert_int_equal(bh_journal_error(j), -EINVAL);
    assert_int_equal(bh_journal_next_seq(j), 0);
    assert_int_equal(bh_journal_close(j), -EINVAL);

    size_t len;
    char *buf = slurp(f->path, &len);
    assert_int_equal(len, 0); /* nothing reached the file */
    free(buf);
}

static void test_rejected_shapes(void **state) {
    fixture *f = *state;
    cJSON *recs[4];
    recs[0] = cJSON_CreateArray();
    recs[1] = cJSON_CreateObject(); /* empty: no "type" */
    recs[2] = cJSON_CreateObject(); /* "type" then a writer-owned name */
    cJSON_AddStringToObject(recs[2], "type", "log");
    cJSON_AddNumberToObject(recs[2], "seq", 99);
    recs[3] = cJSON_CreateObject(); /* "type" must be the first member */
    cJSON_AddNumberToObject(recs[3], "i", 1);
    cJSON_AddStringToObject(recs[3], "type", "log");
    for (int i = 0; i < 4; i++) {
        bh_journal *j = NULL;
        assert_int_equal(bh_journal_create(f->path, &j), 0);
        assert_int_equal(bh_journal_append(j, recs[i]), -EINVAL);
        assert_int_equal(bh_journal_close(j), -EINVAL);
        unlink(f->path);
        cJSON_Delete(recs[i]);
    }
}

static void test_open_append_continues_chain(void **state) {
    fixture *f = *state;
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_create(f->path, &j), 0);
    append_records(j, 0, 3);
    char head[BH_SHA256_HEX_LEN + 1];
    snprintf(head, sizeof head, "%s", bh_journal_head(j));
    assert_int_equal(bh_journal_close(j), 0);

    assert_int_equal(bh_journal_open_append(f->path, &j), 0);
    assert_int_equal(bh_journal_next_seq(j), 3);
    assert_string_equal(bh_journal_head(j), head);
    append_records(j, 3, 5);
    snprintf(head, sizeof head, "%s", bh_journal_head(j));
    assert_int_equal(bh_journal_close(j), 0);

    bh_journal_check chk;
    assert_int_equal(bh_journal_verify(f->path, &chk), 0);
    assert_true(chk.intact);
    assert_int_equal(chk.records, 5);
    assert_string_equal(chk.head, head);
}

static void test_open_append_refuses_broken(void **state) {
    fixture *f = *state;
    bh_journal *j = (bh_journal *)1;
    assert_int_equal(bh_journal_open_append(f->path, &j), -ENOENT);
    assert_null(j);

    /* A torn last line: the engine died in the middle of a write. */
    write_journal(f->path, 2);
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, "{\"seq\":2,\"ts\"", 13), 0);
    close(fd);
    assert_int_equal(bh_journal_open_append(f->path, &j), -EBADMSG);
    assert_null(j);
    unlink(f->path);

    /* A complete last line, but a broken chain further up. */
    write_journal(f->path, 3);
    size_t len;
    char *buf = slurp(f->path, &len);
    char *hit = strstr(buf, "record 0");
    assert_non_null(hit);
    hit[0] = 'R';
    unlink(f->path);
    fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, buf, len), 0);
    close(fd);
    free(buf);
    assert_int_equal(bh_journal_open_append(f->path, &j), -EBADMSG);
}

static void test_recover_tail(void **state) {
    fixture *f = *state;
    uint64_t cut = 1, off = 1;
    /* A clean journal loses nothing. */
    write_journal(f->path, 3);
    size_t before;
    free(slurp(f->path, &before));
    assert_int_equal(bh_journal_recover_tail(f->path, &cut, &off), 0);
    assert_int_equal(cut, 0);

    /* A torn last line is cut off exactly, and appending then continues. */
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, "{\"seq\":3,\"ts\"", 13), 0);
    close(fd);
    assert_int_equal(bh_journal_recover_tail(f->path, &cut, &off), 0);
    assert_int_equal(cut, 13);
    assert_int_equal(off, before);
    size_t after;
    free(slurp(f->path, &after));
    assert_int_equal(after, before);
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_open_append(f->path, &j), 0);
    assert_int_equal(bh_journal_next_seq(j), 3);
    assert_int_equal(bh_journal_close(j), 0);

    /* A malformed line that does end in '\n' is corruption: left alone,
     * and open_append refuses it. */
    fd = open(f->path, O_WRONLY | O_APPEND);
    assert_int_equal(bh_util_write_all(fd, "garbage\n", 8), 0);
    close(fd);
    assert_int_equal(bh_journal_recover_tail(f->path, &cut, &off), 0);
    assert_int_equal(cut, 0);
    assert_int_equal(bh_journal_open_append(f->path, &j), -EBADMSG);
}

/* ---- tampering, on buffers ---- */

#define N_RECORDS 6

/* A pristine journal of N_RECORDS records, as a buffer. */
static char *pristine(const fixture *f, size_t *len) {
    write_journal(f->path, N_RECORDS);
    char *buf = slurp(f->path, len);
    unlink(f->path);
    return buf;
}

static void check_broken(const char *buf, size_t len, int64_t bad_seq, size_t bad_offset,
                         const char *needle, bh_journal_check *chk) {
    bh_journal_verify_buf(buf, len, chk);
    if (chk->intact) fail_msg("tampered journal verified as intact");
    if (chk->bad_seq != bad_seq || chk->bad_offset != bad_offset)
        fail_msg("named seq %lld at %llu, want seq %lld at %zu: %s", (long long)chk->bad_seq,
                 (unsigned long long)chk->bad_offset, (long long)bad_seq, bad_offset, chk->message);
    assert_contains(chk->message, needle);
}

static void test_intact_and_empty(void **state) {
    fixture *f = *state;
    bh_journal_check chk;
    /* Nothing vouches for a run without its run_start: an empty journal is
     * not intact. */
    check_broken("", 0, 0, 0, "the journal is empty: it has no run_start record", &chk);
    assert_int_equal(chk.records, 0);
    assert_string_equal(chk.head, ZEROS);

    /* An empty file, as `create` leaves it; appending to it is refused. */
    bh_journal *j = NULL;
    assert_int_equal(bh_journal_create(f->path, &j), 0);
    assert_int_equal(bh_journal_close(j), 0);
    assert_int_equal(bh_journal_verify(f->path, &chk), 0);
    assert_int_equal(chk.intact, 0);
    assert_int_equal(chk.records, 0);
    assert_int_equal(bh_journal_open_append(f->path, &j), -EBADMSG);
    unlink(f->path);

    /* One record, the run_start: intact. */
    write_journal(f->path, 1);
    assert_int_equal(bh_journal_verify(f->path, &chk), 0);
    assert_int_equal(chk.intact, 1);
    assert_int_equal(chk.records, 1);
    assert_int_equal(chk.bad_seq, -1);
    unlink(f->path);

    char *missing = bh_util_asprintf("%s/none.jsonl", f->dir);
    assert_int_equal(bh_journal_verify(missing, &chk), -ENOENT);
    free(missing);
}

static void test_tamper_value(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);
    char want_head[BH_SHA256_HEX_LEN + 1];
    line_hash(buf, 1, want_head);

    /* One byte of a middle record's content: its hash moves, so the next
     * record's prev no longer matches it. That record is named. */
    char *hit = strstr(buf + line_offset(buf, 2), "record 2");
    hit[0] = 'R';
    bh_journal_check chk;
    check_broken(buf, len, 2, line_offset(buf, 2), "between seq 2 and seq 3", &chk);
    assert_contains(chk.message, "seq 2 ");
    assert_int_equal(chk.records, 2);
    assert_string_equal(chk.head, want_head);
    free(buf);
}

static void test_tamper_first_and_penultimate(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);
    bh_journal_check chk;

    char *hit = strstr(buf, "record 0");
    hit[0] = 'R';
    check_broken(buf, len, 0, 0, "between seq 0 and seq 1", &chk);
    assert_string_equal(chk.head, ZEROS);
    hit[0] = 'r';

    /* The record before the last: no successor of the next line to
     * consult, so the earlier line of the broken link is named. */
    int k = N_RECORDS - 2;
    char needle[16];
    snprintf(needle, sizeof needle, "record %d", k);
    hit = strstr(buf + line_offset(buf, k), needle);
    hit[0] = 'R';
    check_broken(buf, len, k, line_offset(buf, k), "between seq 4 and seq 5", &chk);
    free(buf);
}

static void test_tamper_prev_field(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);

    /* One hex digit of a middle record's prev: the link into it breaks,
     * and so does the link out of it, since its own bytes changed. */
    char *prev = strstr(buf + line_offset(buf, 3), "\"prev\":\"") + 8 + 10;
    *prev = *prev == 'a' ? 'b' : 'a';
    bh_journal_check chk;
    check_broken(buf, len, 3, line_offset(buf, 3), "between seq 2 and seq 3", &chk);
    assert_contains(chk.message, "seq 3 ");
    assert_int_equal(chk.records, 3);
    free(buf);

    /* seq 0 has no earlier record to blame. */
    buf = pristine(f, &len);
    prev = strstr(buf, "\"prev\":\"") + 8;
    *prev = '1';
    check_broken(buf, len, 0, 0, "seq 0", &chk);
    free(buf);
}

static void test_deleted_line(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);

    /* Remove line 2: line 3 moves up to line 2's offset, and seq skips. */
    size_t off2 = line_offset(buf, 2), len2 = line_length(buf, 2) + 1;
    memmove(buf + off2, buf + off2 + len2, len - off2 - len2);
    len -= len2;
    bh_journal_check chk;
    check_broken(buf, len, 2, off2, "expected seq 2, found seq 3", &chk);
    assert_contains(chk.message, "missing or out of order");
    assert_int_equal(chk.records, 2);
    free(buf);
}

static void test_swapped_lines(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);

    size_t off2 = line_offset(buf, 2), l2 = line_length(buf, 2) + 1;
    size_t l3 = line_length(buf, 3) + 1;
    char *tmp = bh_util_xmalloc(l2 + l3);
    memcpy(tmp, buf + off2 + l2, l3);
    memcpy(tmp + l3, buf + off2, l2);
    memcpy(buf + off2, tmp, l2 + l3);
    free(tmp);
    bh_journal_check chk;
    check_broken(buf, len, 2, off2, "expected seq 2, found seq 3", &chk);
    free(buf);
}

static void test_torn_last_line(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);
    size_t last = line_offset(buf, N_RECORDS - 1);
    char want_head[BH_SHA256_HEX_LEN + 1];
    line_hash(buf, N_RECORDS - 2, want_head);
    bh_journal_check chk;

    /* Only the '\n' is missing. */
    check_broken(buf, len - 1, N_RECORDS - 1, last, "unterminated last line (torn write)", &chk);
    assert_int_equal(chk.records, N_RECORDS - 1);
    assert_string_equal(chk.head, want_head);

    /* Cut in the middle of the record. */
    check_broken(buf, last + 20, N_RECORDS - 1, last, "unterminated last line", &chk);
    free(buf);
}

static void test_not_a_record(void **state) {
    fixture *f = *state;
    size_t len;
    char *buf = pristine(f, &len);
    size_t off1 = line_offset(buf, 1);
    bh_journal_check chk;

    buf[off1] = 'x'; /* no longer JSON */
    check_broken(buf, len, 1, off1, "not a valid record", &chk);
    buf[off1] = '{';

    /* An object without a numeric seq. */
    char *seq = strstr(buf + off1, "\"seq\":1");
    memcpy(seq, "\"sEq\"", 5);
    check_broken(buf, len, 1, off1, "not a valid record", &chk);
    memcpy(seq, "\"seq\"", 5);

    /* Back to pristine: intact again. */
    bh_journal_verify_buf(buf, len, &chk);
    assert_int_equal(chk.intact, 1);
    assert_int_equal(chk.records, N_RECORDS);
    free(buf);

    /* A complete object followed by junk on the same line. */
    const char *junk = "{\"seq\":0,\"prev\":\"" ZEROS "\",\"type\":\"x\"} x\n";
    bh_journal_verify_buf(junk, strlen(junk), &chk);
    assert_int_equal(chk.intact, 0);
    assert_contains(chk.message, "not a valid record");
    const char *clean = "{\"seq\":0,\"prev\":\"" ZEROS "\",\"type\":\"run_start\"}\n";
    bh_journal_verify_buf(clean, strlen(clean), &chk);
    assert_int_equal(chk.intact, 1);
    assert_int_equal(chk.records, 1);
    /* A first record of another type: the run's start is missing. */
    const char *other = "{\"seq\":0,\"prev\":\"" ZEROS "\",\"type\":\"x\"}\n";
    check_broken(other, strlen(other), 0, 0, "is a 'x' record, not run_start", &chk);
    const char *untyped = "{\"seq\":0,\"prev\":\"" ZEROS "\"}\n";
    check_broken(untyped, strlen(untyped), 0, 0, "is a '(untyped)' record, not run_start", &chk);

    /* A blank line. */
    bh_journal_verify_buf("\n", 1, &chk);
    assert_int_equal(chk.intact, 0);
    assert_int_equal(chk.bad_seq, 0);
    assert_contains(chk.message, "not a valid record");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_write_then_verify),
        T(test_create_refuses_existing),
        T(test_bad_record_is_sticky),
        T(test_rejected_shapes),
        T(test_open_append_continues_chain),
        T(test_open_append_refuses_broken),
        T(test_recover_tail),
        T(test_intact_and_empty),
        T(test_tamper_value),
        T(test_tamper_first_and_penultimate),
        T(test_tamper_prev_field),
        T(test_deleted_line),
        T(test_swapped_lines),
        T(test_torn_last_line),
        T(test_not_a_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
