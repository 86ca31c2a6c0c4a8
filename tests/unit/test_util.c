/* Unit tests for engine/util.c and engine/diag.c. */
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

#include "base/diag.h"
#include "base/util.h"

static void parse_ok(const char *text, double want_ms) {
    double ms = -1;
    if (bh_util_parse_duration(text, &ms) != 0) fail_msg("\"%s\" should parse", text);
    if (ms != want_ms) fail_msg("\"%s\": got %g ms, want %g ms", text, ms, want_ms);
}

static void parse_bad(const char *text) {
    double ms = 12345;
    if (bh_util_parse_duration(text, &ms) != -1)
        fail_msg("\"%s\" should be rejected", text ? text : "(null)");
    /* A rejected duration must not clobber the caller's value. */
    assert_true(ms == 12345);
}

static void test_parse_duration_valid(void **state) {
    parse_ok("250ms", 250);
    parse_ok("30s", 30000);
    parse_ok("5m", 300000);
    parse_ok("2h", 7200000);
    parse_ok("1.5s", 1500);
    parse_ok("0.25s", 250);
    parse_ok("0.1s", 100);
    parse_ok("1.5ms", 1.5);
    parse_ok("10", 10000); /* bare number: seconds */
    parse_ok("0.5", 500);
    parse_ok("0", 0);
    parse_ok("0ms", 0);
    parse_ok("007s", 7000);
}

static void test_parse_duration_invalid(void **state) {
    parse_bad("");
    parse_bad("-5s");
    parse_bad("+5s");
    parse_bad("s");
    parse_bad("ms");
    parse_bad("abc");
    parse_bad("5x");
    parse_bad("5 s");
    parse_bad(" 5s");
    parse_bad("5s ");
    parse_bad("5sec");
    parse_bad("5ss");
    parse_bad("5m30s"); /* compound durations are not supported */
    parse_bad("1.");
    parse_bad(".5s");
    parse_bad("1.2.3s");
    parse_bad("inf");
    parse_bad("nan");
    parse_bad("infs");
    parse_bad("1e3");
    parse_bad("0x10");
    parse_bad("5S");
    parse_bad(NULL);
    /* So many digits that the value overflows a double. */
    char huge[400];
    memset(huge, '9', sizeof huge - 2);
    huge[sizeof huge - 2] = 'h';
    huge[sizeof huge - 1] = '\0';
    parse_bad(huge);
}

static void fmt_is(double ms, const char *want) {
    char out[32];
    bh_util_format_duration(ms, out, sizeof out);
    if (strcmp(out, want) != 0) fail_msg("format(%g): got \"%s\", want \"%s\"", ms, out, want);
}

static void test_format_duration(void **state) {
    fmt_is(0, "0ms");
    fmt_is(830, "830ms");
    fmt_is(999.4, "999ms");
    fmt_is(999.6, "1.0s"); /* rounding reaches the next unit */
    fmt_is(1000, "1.0s");
    fmt_is(12400, "12.4s");
    fmt_is(59940, "59.9s");
    fmt_is(59960, "1m00s");
    fmt_is(185000, "3m05s");
    fmt_is(3599400, "59m59s");
    fmt_is(3599600, "1h00m");
    fmt_is(7800000, "2h10m");
    fmt_is(100.0 * 3600 * 1000, "100h00m");
    fmt_is(-830, "-830ms");

    /* A short buffer is truncated, never overrun. */
    char tiny[4];
    bh_util_format_duration(185000, tiny, sizeof tiny);
    assert_string_equal(tiny, "3m0");
}

static void test_duration_round_trip(void **state) {
    /* What format prints for whole units parses back to the same value. */
    const char *texts[] = {"830ms", "12.4s"};
    for (size_t i = 0; i < 2; i++) {
        double ms;
        char out[32];
        assert_int_equal(bh_util_parse_duration(texts[i], &ms), 0);
        bh_util_format_duration(ms, out, sizeof out);
        assert_string_equal(out, texts[i]);
    }
}

static void test_sha256(void **state) {
    char hex[BH_SHA256_HEX_LEN + 1];
    /* FIPS 180-2 test vectors. */
    bh_util_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    bh_util_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Length is honoured: bytes after len do not count. */
    bh_util_sha256_hex("abcdef", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_digest_hex(void **state) {
    unsigned char d[32];
    for (int i = 0; i < 32; i++)
        d[i] = (unsigned char)(i * 8 + 7); /* 07 0f 17 ... ef f7 ff */
    char hex[BH_SHA256_HEX_LEN + 1];
    bh_util_digest_hex(d, hex);
    assert_int_equal(strlen(hex), 64);
    assert_memory_equal(hex, "070f171f", 8);
    assert_string_equal(hex + 56, "e7eff7ff");
}

static void test_iso8601(void **state) {
    char out[32];
    bh_util_iso8601(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    bh_util_iso8601(1795425865123LL, out);
    assert_string_equal(out, "2026-11-23T09:24:25.123Z");
    bh_util_iso8601(1700000000007LL, out);
    assert_string_equal(out, "2023-11-14T22:13:20.007Z");
    /* Before the epoch the milliseconds still count forwards. */
    bh_util_iso8601(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
}

static void test_now_ms(void **state) {
    int64_t a = bh_util_now_ms();
    int64_t b = bh_util_now_ms();
    assert_true(a > 1700000000000LL); /* after November 2023 */
    assert_true(b >= a);
}

/* A fresh directory under TMPDIR, removed by the test. */
static char *make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *tmpl = bh_util_asprintf("%s/bh-test-util-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

static void test_files(void **state) {
    char *dir = make_tmpdir();

    /* mkdir -p: nested, idempotent, 0700, and refuses a file in the way. */
    char *deep = bh_util_asprintf("%s/a/b/c", dir);
    assert_int_equal(bh_util_mkdir_p(deep), 0);
    assert_int_equal(bh_util_mkdir_p(deep), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(bh_util_fsync_dir(deep), 0);

    char *path = bh_util_asprintf("%s/a/file", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, "hello\0world", 11), 0);
    close(fd);
    char *under_file = bh_util_asprintf("%s/x", path);
    assert_int_equal(bh_util_mkdir_p(under_file), -ENOTDIR);

    /* read_file keeps embedded NULs and terminates the buffer. */
    size_t len = 0;
    char *buf = bh_util_read_file(path, &len);
    assert_non_null(buf);
    assert_int_equal(len, 11);
    assert_memory_equal(buf, "hello\0world", 12);
    free(buf);

    char *missing = bh_util_asprintf("%s/nope", dir);
    errno = 0;
    assert_null(bh_util_read_file(missing, &len));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(bh_util_fsync_dir(missing), -ENOENT);
    errno = 0;
    assert_null(bh_util_read_file(dir, &len));
    assert_int_equal(errno, EISDIR);

    /* An empty file is an empty, terminated buffer, not an error. */
    char *empty = bh_util_asprintf("%s/empty", dir);
    fd = open(empty, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    buf = bh_util_read_file(empty, &len);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
    free(buf);

    assert_int_equal(bh_util_write_all(-1, "x", 1), -EBADF);

    unlink(empty);
    unlink(path);
    char *rm = bh_util_asprintf("%s/a/b/c", dir);
    rmdir(rm);
    free(rm);
    rm = bh_util_asprintf("%s/a/b", dir);
    rmdir(rm);
    free(rm);
    rm = bh_util_asprintf("%s/a", dir);
    rmdir(rm);
    free(rm);
    assert_int_equal(rmdir(dir), 0);
    free(empty);
    free(missing);
    free(under_file);
    free(path);
    free(deep);
    free(dir);
}

static void test_asprintf_and_alloc(void **state) {
    char *s = bh_util_asprintf("%s-%d-%05.1f", "x", 42, 3.14159);
    assert_string_equal(s, "x-42-003.1");
    free(s);
    s = bh_util_asprintf("%s", "");
    assert_string_equal(s, "");
    free(s);
    /* Zero-byte requests still give a pointer that can be freed. */
    void *p = bh_util_xmalloc(0);
    assert_non_null(p);
    free(p);
    int *z = bh_util_xcalloc(4, sizeof *z);
    assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
    free(z);
    s = bh_util_xstrdup("dup");
    assert_string_equal(s, "dup");
    free(s);
    assert_string_equal(bh_util_strerror(-ENOENT), strerror(ENOENT));
}

/* Names of people: trimmed, never blank, no control characters, bounded. */
static void test_clean_name(void **state) {
    char out[BH_UTIL_NAME_MAX + 1];
    assert_null(bh_util_clean_name("  Alice Smith \t", out));
    assert_string_equal(out, "Alice Smith");
    assert_null(bh_util_clean_name("bob", out));
    assert_string_equal(out, "bob");
    assert_null(bh_util_clean_name("Zo\xc3\xab", out)); /* UTF-8 is a name like any */
    assert_string_equal(out, "Zo\xc3\xab");
    assert_string_equal(bh_util_clean_name("", out), "it is blank");
    assert_string_equal(out, "");
    assert_string_equal(bh_util_clean_name(" \t\n ", out), "it is blank");
    assert_string_equal(bh_util_clean_name("al\nice", out), "it holds a control character");
    assert_string_equal(bh_util_clean_name("al\x1b[2Jice", out), "it holds a control character");
    assert_string_equal(bh_util_clean_name("del\x7f", out), "it holds a control character");
    char longest[BH_UTIL_NAME_MAX + 3];
    memset(longest, 'n', sizeof longest);
    longest[BH_UTIL_NAME_MAX] = '\0';
    assert_null(bh_util_clean_name(longest, out));
    assert_int_equal(strlen(out), BH_UTIL_NAME_MAX);
    longest[BH_UTIL_NAME_MAX] = 'n';
    longest[BH_UTIL_NAME_MAX + 1] = '\0';
    assert_string_equal(bh_util_clean_name(longest, out), "it is longer than 100 bytes");
    /* white space around a name does not count towards its length */
    longest[BH_UTIL_NAME_MAX] = ' ';
    assert_null(bh_util_clean_name(longest, out));
}

static void test_diag(void **state) {
    bh_diag_list list;
    bh_diag_init(&list);
    assert_int_equal(bh_diag_errors(&list), 0);
    bh_diag_add(&list, BH_DIAG_ERROR, "rb.lua", 12, "bad %s", "thing");
    bh_diag_add(&list, BH_DIAG_WARNING, "rb.lua", 0, "odd %d", 7);
    bh_diag_add(&list, BH_DIAG_ERROR, NULL, 0, "no place");
    for (int i = 0; i < 20; i++) /* grows past its first allocation */
        bh_diag_add(&list, BH_DIAG_WARNING, NULL, 0, "w%d", i);
    assert_int_equal(list.count, 23);
    assert_int_equal(bh_diag_errors(&list), 2);
    assert_string_equal(list.items[0].message, "bad thing");
    assert_int_equal(list.items[0].line, 12);
    assert_null(list.items[2].file);

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    bh_diag_print(&list, mem);
    fclose(mem);
    const char *want = "rb.lua:12: error: bad thing\n"
                       "rb.lua: warning: odd 7\n"
                       "error: no place\n"
                       "warning: w0\n";
    assert_memory_equal(text, want, strlen(want));
    free(text);

    bh_diag_free(&list);
    assert_int_equal(list.count, 0);
    bh_diag_free(&list); /* a second free is harmless */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration_valid),
        cmocka_unit_test(test_parse_duration_invalid),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_duration_round_trip),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_digest_hex),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_asprintf_and_alloc),
        cmocka_unit_test(test_clean_name),
        cmocka_unit_test(test_diag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
