/* Unit tests for engine/json.c: strings of any bytes in strict JSON text
 * and back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* Is s[0..len) well-formed UTF-8 (RFC 3629)? An independent check. */
static int valid_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n > len) return 0;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += n;
    }
    return 1;
}

/* bytes -> {"s": bytes} -> text -> parsed -> bytes: the same, and the text
 * is valid UTF-8. Returns the text (to free). */
static char *round_trip(const char *bytes, size_t len) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "s", bh_json_string(bytes, len));
    char *text = bh_json_print(o, 0);
    cJSON_Delete(o);
    assert_non_null(text);
    assert_true(valid_utf8((const unsigned char *)text, strlen(text)));
    cJSON *back = bh_json_parse(text, strlen(text));
    assert_non_null(back);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(back, "s");
    assert_true(cJSON_IsString(s));
    char *got = malloc(strlen(s->valuestring) + 1);
    size_t n = bh_json_bytes(s->valuestring, got);
    if (n != len || memcmp(got, bytes, len) != 0) {
        fail_msg("round trip of %zu bytes (first %02x) gave %zu bytes; text %s", len,
                 len ? (unsigned char)bytes[0] : 0, n, text);
    }
    free(got);
    cJSON_Delete(back);
    return text;
}

static void expect_text(const char *bytes, size_t len, const char *want) {
    char *text = round_trip(bytes, len);
    char full[256];
    snprintf(full, sizeof full, "{\"s\":\"%s\"}", want);
    assert_string_equal(text, full);
    free(text);
}

static void test_escapes(void **state) {
    (void)state;
    expect_text("plain", 5, "plain");
    expect_text("a\0b", 3, "a\\u0000b");
    expect_text("\xff", 1, "\\udcff");
    expect_text("\xc0", 1, "\\udcc0");                       /* the in-memory mark byte itself */
    expect_text("\xc0\x80", 2, "\\udcc0\\udc80");            /* not a NUL: its two bytes */
    expect_text("\xe2\x82\xac", 3, "\xe2\x82\xac");          /* valid: kept */
    expect_text("\xe2\x82", 2, "\\udce2\\udc82");            /* cut short */
    expect_text("\xc0\xaf", 2, "\\udcc0\\udcaf");            /* overlong */
    expect_text("\xed\xa0\x80", 3, "\\udced\\udca0\\udc80"); /* a surrogate */
    expect_text("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");  /* U+1F600 */
    expect_text("\xf4\x90\x80\x80", 4, "\\udcf4\\udc90\\udc80\\udc80"); /* > U+10FFFF */
    /* text that looks like an escape is text: its backslash is escaped */
    expect_text("\\u0000 \\udcff", 13, "\\\\u0000 \\\\udcff");
    expect_text("\n\"\\", 3, "\\n\\\"\\\\");
}

static void test_every_byte_and_pair(void **state) {
    (void)state;
    char b[3];
    for (int x = 0; x < 256; x++) {
        b[0] = (char)x;
        free(round_trip(b, 1));
        for (int y = 0; y < 256; y++) {
            b[1] = (char)y;
            free(round_trip(b, 2));
        }
    }
    /* and a run of everything, twice */
    char all[512];
    for (int i = 0; i < 512; i++)
        all[i] = (char)(i & 0xFF);
    free(round_trip(all, sizeof all));
}

static void test_keys_and_formatted(void **state) {
    (void)state;
    cJSON *o = cJSON_CreateObject();
    char *key = bh_json_from_bytes("k\0\xfe", 3);
    cJSON_AddItemToObject(o, key, bh_json_string("v\0", 2));
    free(key);
    char *text = bh_json_print(o, 1);
    assert_non_null(strstr(text, "\"k\\u0000\\udcfe\":\t\"v\\u0000\""));
    cJSON *back = bh_json_parse(text, strlen(text));
    assert_non_null(back);
    char out[8];
    assert_int_equal(bh_json_bytes(back->child->string, out), 3);
    assert_memory_equal(out, "k\0\xfe", 3);
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(o);
}

/* For a terminal, what it would act on is written as JSON writes it;
 * newlines, tabs and printable text (any script) stay as they are. */
static void test_terminal(void **state) {
    (void)state;
    const char in[] = "a\033[2J\r\b\x7f\xc2\x9b\n\t\xc3\xa9\xe2\x9c\x93";
    char *out = bh_json_escape_terminal(in, sizeof in - 1, NULL);
    assert_non_null(out);
    assert_string_equal(out, "a\\u001b[2J\\u000d\\u0008\\u007f\\u009b\n\t\xc3\xa9\xe2\x9c\x93");
    free(out);
    assert_null(bh_json_escape_terminal("plain\ttext\n", 11, NULL));
    /* one line: the newline too, nothing else changes */
    out = bh_json_escape_line("a\nb\tc\033", 6, NULL);
    assert_string_equal(out, "a\\u000ab\tc\\u001b");
    free(out);
    assert_null(bh_json_escape_line("one line", 8, NULL));
    /* not for the journal: JSON itself escapes controls in strings */
    assert_null(bh_json_escape("a\033b", 3, NULL));
    char bad[] = {'x', (char)0xff};
    out = bh_json_escape_terminal(bad, 2, NULL);
    assert_string_equal(out, "x\\udcff");
    free(out);
}

static void test_parse_is_strict(void **state) {
    (void)state;
    const char *junk = "{\"a\":1} x";
    assert_null(bh_json_parse(junk, strlen(junk)));
    const char *two = "{\"a\":\"\\u0000\"}{}";
    assert_null(bh_json_parse(two, strlen(two)));
    const char *ok = "{\"a\":\"\\u0000\"}";
    cJSON *v = bh_json_parse(ok, strlen(ok));
    assert_non_null(v);
    cJSON_Delete(v);
    /* escapes outside the two bulkhead writes are cJSON's: a lone high
     * surrogate is not a string cJSON reads */
    const char *hi = "{\"a\":\"\\ud800\"}";
    assert_null(bh_json_parse(hi, strlen(hi)));
    /* a C string's own C0 (made in C, not from bytes) stands for itself */
    char out[4];
    assert_int_equal(bh_json_bytes("\xc0x", out), 2);
    assert_memory_equal(out, "\xc0x", 2);
    size_t n;
    char *e = bh_json_escape("\xc0x", 2, &n);
    assert_string_equal(e, "\\udcc0x");
    free(e);
    assert_null(bh_json_escape("ascii \xe2\x82\xac", 9, NULL)); /* nothing to do */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_every_byte_and_pair),
        cmocka_unit_test(test_keys_and_formatted),
        cmocka_unit_test(test_parse_is_strict),
        cmocka_unit_test(test_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
