/* Unit tests for engine/redact.c and engine/secrets.c. */
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

#include <sodium.h>

#include "base/json.h"
#include "base/redact.h"
#include "base/secrets.h"
#include "base/util.h"

#define SECRET "c4n4ry-S3cr3t/with+sp ce\"q&x=1"

static bh_redact *canary(void) {
    bh_redact *r = bh_redact_new();
    assert_int_equal(bh_redact_add(r, "CANARY", SECRET, strlen(SECRET)), 0);
    return r;
}

/* text must come out as want. */
static void masks(const bh_redact *r, const char *text, const char *want) {
    size_t n = 0;
    char *out = bh_redact_text(r, text, strlen(text), &n);
    if (!out) fail_msg("nothing masked in '%s'", text);
    if (strcmp(out, want) != 0) fail_msg("'%s' became '%s', want '%s'", text, out, want);
    assert_int_equal(n, strlen(want));
    free(out);
}

static void test_raw_and_escaped(void **state) {
    (void)state;
    bh_redact *r = canary();
    masks(r, "token=" SECRET ";", "token=[masked:CANARY];");
    masks(r, SECRET SECRET, "[masked:CANARY][masked:CANARY]");
    /* as it looks inside a JSON string written by something else */
    masks(r, "{\"t\":\"c4n4ry-S3cr3t/with+sp ce\\\"q&x=1\"}", "{\"t\":\"[masked:CANARY]\"}");
    assert_null(bh_redact_text(r, "nothing here", 12, NULL));
    assert_null(bh_redact_text(NULL, SECRET, strlen(SECRET), NULL));
    char *copy;
    const char *same = "plain";
    assert_ptr_equal(bh_redact_str(r, same, &copy), same);
    assert_null(copy);
    bh_redact_free(r);
}

static void test_hex_and_percent(void **state) {
    (void)state;
    bh_redact *r = canary();
    char hex[2 * sizeof SECRET + 1], HEX[sizeof hex];
    sodium_bin2hex(hex, sizeof hex, (const unsigned char *)SECRET, strlen(SECRET));
    for (size_t i = 0; i <= strlen(hex); i++)
        HEX[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    char in[256];
    snprintf(in, sizeof in, "x%sy", hex);
    masks(r, in, "x[masked:CANARY]y");
    snprintf(in, sizeof in, "x%sy", HEX);
    masks(r, in, "x[masked:CANARY]y");
    masks(r, "q=c4n4ry-S3cr3t%2Fwith%2Bsp%20ce%22q%26x%3D1&z", "q=[masked:CANARY]&z");
    masks(r, "q=c4n4ry-S3cr3t%2fwith%2bsp%20ce%22q%26x%3d1&z", "q=[masked:CANARY]&z");
    masks(r, "q=c4n4ry-S3cr3t%2Fwith%2Bsp+ce%22q%26x%3D1&z", "q=[masked:CANARY]&z");
    masks(r, "q=c4n4ry-S3cr3t%2fwith%2bsp+ce%22q%26x%3d1&z", "q=[masked:CANARY]&z");
    /* '/' left alone, as Python's quote() and many others do by default */
    masks(r, "q=c4n4ry-S3cr3t/with%2Bsp%20ce%22q%26x%3D1&z", "q=[masked:CANARY]&z");
    masks(r, "q=c4n4ry-S3cr3t/with%2bsp+ce%22q%26x%3d1&z", "q=[masked:CANARY]&z");
    bh_redact_free(r);
}

/* base64 of prefix+SECRET, standard or URL-safe, must keep nothing of it. */
static void check_base64(const bh_redact *r, const char *prefix, int variant) {
    char plain[256], enc[512];
    snprintf(plain, sizeof plain, "%s%s", prefix, SECRET);
    sodium_bin2base64(enc, sizeof enc, (const unsigned char *)plain, strlen(plain), variant);
    char *out = bh_redact_text(r, enc, strlen(enc), NULL);
    if (!out) fail_msg("base64 of '%s' (%s) not masked", plain, enc);
    /* What is left: at most the prefix's characters, one mixed character
     * at each end and padding, never a run of the secret's own. */
    const char *m = strstr(out, "[masked:CANARY]");
    assert_non_null(m);
    size_t before = (size_t)(m - out), after = strlen(m + 15);
    size_t prefix_chars = (strlen(prefix) * 8 + 5) / 6;
    if (before > prefix_chars + 1 || after > 3) fail_msg("'%s' -> '%s': too much left", enc, out);
    free(out);
}

static void test_base64_any_alignment(void **state) {
    (void)state;
    bh_redact *r = canary();
    const char *prefixes[] = {"", "u", "us", "user:", "Authorization: Basic x", NULL};
    for (int k = 0; prefixes[k]; k++) {
        check_base64(r, prefixes[k], sodium_base64_VARIANT_ORIGINAL);
        check_base64(r, prefixes[k], sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
        check_base64(r, prefixes[k], sodium_base64_VARIANT_URLSAFE);
        check_base64(r, prefixes[k], sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    bh_redact_free(r);
}

static void test_short_and_several(void **state) {
    (void)state;
    bh_redact *r = bh_redact_new();
    assert_int_equal(bh_redact_add(r, "PIN", "123", 3), -EINVAL);
    assert_int_equal(bh_redact_count(r), 0);
    assert_int_equal(bh_redact_add(r, "A", "alpha-one", 9), 0);
    assert_int_equal(bh_redact_add(r, "B", "alpha-one-two", 13), 0); /* contains A */
    assert_int_equal(bh_redact_count(r), 2);
    masks(r, "x alpha-one-two y alpha-one z", "x [masked:B] y [masked:A] z");
    bh_redact_free(r);
}

static void test_json_tree(void **state) {
    (void)state;
    bh_redact *r = bh_redact_new();
    assert_int_equal(bh_redact_add(r, "T", "s3cr3t-tok", 10), 0);
    assert_int_equal(bh_redact_add(r, "N", "987654321", 9), 0);
    assert_int_equal(bh_redact_add(r, "PI", "3.14159", 7), 0);
    cJSON *o = cJSON_Parse("{\"msg\":\"has s3cr3t-tok in it\",\"s3cr3t-tok\":1,"
                           "\"list\":[\"a\",{\"deep\":\"s3cr3t-tok\"}],\"n\":987654321,\"m\":5,"
                           "\"pi\":3.14159}");
    assert_non_null(o);
    bh_redact_json(r, o);
    char *text = cJSON_PrintUnformatted(o);
    assert_string_equal(text, "{\"msg\":\"has [masked:T] in it\",\"[masked:T]\":1,"
                              "\"list\":[\"a\",{\"deep\":\"[masked:T]\"}],\"n\":\"[masked:N]\","
                              "\"m\":5,\"pi\":\"[masked:PI]\"}");
    free(text);
    cJSON_Delete(o);
    bh_redact_free(r);
}

typedef struct {
    char out[4096];
    size_t len;
} sink;

static void collect(const char *buf, size_t n, void *ud) {
    sink *s = ud;
    assert_true(s->len + n < sizeof s->out);
    memcpy(s->out + s->len, buf, n);
    s->len += n;
    s->out[s->len] = '\0';
}

/* The secret split at every possible point between two writes. */
/* A string that holds a NUL, bytes that are not UTF-8 and a secret, as the
 * engine's JSON strings hold it (json.h): the secret is masked there, and
 * the record printed is strict JSON with the escapes around the mask. Also
 * for a secret with a C0 byte, which that form writes differently. */
static void test_json_tree_of_odd_bytes(void **state) {
    (void)state;
    bh_redact *r = canary();
    assert_int_equal(bh_redact_add(r, "BIN",
                                   "ab\xc0"
                                   "cd",
                                   5),
                     0);
    char bytes[96];
    size_t n = (size_t)snprintf(bytes, sizeof bytes,
                                "x%c%s\xff|ab\xc0"
                                "cd|",
                                0, SECRET);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "v", bh_json_string(bytes, n));
    bh_redact_json(r, o);
    char *text = bh_json_print(o, 0);
    assert_string_equal(text, "{\"v\":\"x\\u0000[masked:CANARY]\\udcff|[masked:BIN]|\"}");
    assert_string_equal(bh_redact_which(r, bytes + 2, strlen(SECRET)), "CANARY");
    free(text);
    cJSON_Delete(o);
    bh_redact_free(r);
}

static void test_stream_split_anywhere(void **state) {
    (void)state;
    bh_redact *r = canary();
    char text[512];
    snprintf(text, sizeof text, "line one\nkey=%s\nend\n", SECRET);
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        sink s = {{0}, 0};
        bh_redact_stream *st = bh_redact_stream_new(r, collect, &s);
        bh_redact_stream_feed(st, text, cut);
        bh_redact_stream_feed(st, text + cut, len - cut);
        bh_redact_stream_end(st);
        assert_string_equal(s.out, "line one\nkey=[masked:CANARY]\nend\n");
    }
    /* one byte at a time */
    sink s = {{0}, 0};
    bh_redact_stream *st = bh_redact_stream_new(r, collect, &s);
    for (size_t i = 0; i < len; i++)
        bh_redact_stream_feed(st, text + i, 1);
    bh_redact_stream_end(st);
    assert_string_equal(s.out, "line one\nkey=[masked:CANARY]\nend\n");
    /* no secrets: passes through untouched */
    bh_redact *none = bh_redact_new();
    sink p = {{0}, 0};
    st = bh_redact_stream_new(none, collect, &p);
    bh_redact_stream_feed(st, "abc", 3);
    assert_int_equal(p.len, 3);
    bh_redact_stream_end(st);
    bh_redact_free(none);
    bh_redact_free(r);
}

static char *write_file(const char *text, mode_t mode) {
    char *path = strdup("/tmp/bh-secrets-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, text, strlen(text)), 0);
    close(fd);
    chmod(path, mode);
    return path;
}

static void test_secrets_file(void **state) {
    (void)state;
    char err[512];
    char *path =
        write_file("# comment\n\nAPI_TOKEN=abc=def ghi\r\nOTHER=x1234\nAPI_TOKEN=last\n", 0600);
    bh_secrets *s = bh_secrets_open(path, err, sizeof err);
    assert_non_null(s);
    const char *v, *src;
    size_t n;
    assert_int_equal(bh_secrets_get(s, "API_TOKEN", &v, &n, &src), 0);
    assert_string_equal(v, "last"); /* the last one wins */
    assert_string_equal(src, "file");
    assert_int_equal(bh_secrets_get(s, "OTHER", &v, &n, &src), 0);
    assert_int_equal(n, 5);
    setenv("BH_TEST_ONLY_ENV", "from-env", 1);
    assert_int_equal(bh_secrets_get(s, "BH_TEST_ONLY_ENV", &v, &n, &src), 0);
    assert_string_equal(src, "env");
    assert_int_equal(bh_secrets_get(s, "NOPE_NOT_SET", &v, &n, &src), -ENOENT);
    bh_secrets_free(s);

    chmod(path, 0640);
    assert_null(bh_secrets_open(path, err, sizeof err));
    assert_non_null(strstr(err, "open to group or others (mode 0640)"));
    chmod(path, 0604);
    assert_null(bh_secrets_open(path, err, sizeof err));
    unlink(path);
    free(path);

    path = write_file("GOOD=1\nno equals sign\n", 0600);
    assert_null(bh_secrets_open(path, err, sizeof err));
    assert_non_null(strstr(err, ":2: expected NAME=value"));
    unlink(path);
    free(path);
    path = write_file("9BAD=1\n", 0600);
    assert_null(bh_secrets_open(path, err, sizeof err));
    unlink(path);
    free(path);
    assert_null(bh_secrets_open("/nonexistent/secrets", err, sizeof err));
    s = bh_secrets_open(NULL, err, sizeof err); /* environment only */
    assert_non_null(s);
    bh_secrets_free(s);
    assert_true(bh_secrets_name_ok("A_b9"));
    assert_false(bh_secrets_name_ok("9a"));
    assert_false(bh_secrets_name_ok("a-b"));
    assert_false(bh_secrets_name_ok(""));
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_and_escaped),
        cmocka_unit_test(test_hex_and_percent),
        cmocka_unit_test(test_base64_any_alignment),
        cmocka_unit_test(test_short_and_several),
        cmocka_unit_test(test_json_tree),
        cmocka_unit_test(test_json_tree_of_odd_bytes),
        cmocka_unit_test(test_stream_split_anywhere),
        cmocka_unit_test(test_secrets_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
