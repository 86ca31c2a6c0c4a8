/* Unit tests for engine/params.c: text conversion, inputs and resolution. */
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
#include <unistd.h>

#include "load/params.h"
#include "base/util.h"

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* Convert text and compare the result, printed as JSON, with want. */
static void text_is(bh_param_type t, const char *text, const char *want) {
    char err[256] = "";
    cJSON *v = bh_params_from_text(t, text, err, sizeof err);
    if (!v) fail_msg("%s \"%s\": unexpected error: %s", bh_params_type_name(t), text, err);
    assert_true(bh_params_has_type(t, v));
    char *got = cJSON_PrintUnformatted(v);
    if (strcmp(got, want) != 0)
        fail_msg("%s \"%s\": got %s, want %s", bh_params_type_name(t), text, got, want);
    cJSON_free(got);
    cJSON_Delete(v);
}

/* Convert text, expect an error containing needle. */
static void text_fails(bh_param_type t, const char *text, const char *needle) {
    char err[256] = "";
    cJSON *v = bh_params_from_text(t, text, err, sizeof err);
    if (v) {
        char *got = cJSON_PrintUnformatted(v);
        cJSON_Delete(v);
        print_error("%s \"%s\": expected an error, got %s\n", bh_params_type_name(t), text, got);
        cJSON_free(got);
        fail();
    }
    assert_contains(err, needle);
}

static void test_type_names(void **state) {
    for (int i = BH_PARAM_STRING; i <= BH_PARAM_MAP; i++) {
        bh_param_type t;
        assert_int_equal(bh_params_type_from_name(bh_params_type_name((bh_param_type)i), &t), 0);
        assert_int_equal(t, i);
    }
    bh_param_type t = BH_PARAM_MAP;
    assert_int_equal(bh_params_type_from_name("int", &t), -1);
    assert_int_equal(bh_params_type_from_name("String", &t), -1);
    assert_int_equal(t, BH_PARAM_MAP);
}

static void test_text_string_number(void **state) {
    text_is(BH_PARAM_STRING, "hello world", "\"hello world\"");
    text_is(BH_PARAM_STRING, "", "\"\"");
    text_is(BH_PARAM_STRING, "42", "\"42\""); /* stays text */

    text_is(BH_PARAM_NUMBER, "42", "42");
    text_is(BH_PARAM_NUMBER, "-1.5", "-1.5");
    text_is(BH_PARAM_NUMBER, "1e3", "1000");
    text_is(BH_PARAM_NUMBER, "0", "0");
    text_fails(BH_PARAM_NUMBER, "", "expected number, got \"\"");
    text_fails(BH_PARAM_NUMBER, "abc", "expected number, got \"abc\"");
    text_fails(BH_PARAM_NUMBER, "12x", "\"12x\"");
    text_fails(BH_PARAM_NUMBER, " 12", "expected number");
    text_fails(BH_PARAM_NUMBER, "12 ", "expected number");
    text_fails(BH_PARAM_NUMBER, "inf", "expected number");
    text_fails(BH_PARAM_NUMBER, "nan", "expected number");
    text_fails(BH_PARAM_NUMBER, "1e999", "expected number");
}

static void test_text_boolean(void **state) {
    const char *yes[] = {"true", "TRUE", "True", "yes", "Yes", "on", "ON", "1"};
    const char *no[] = {"false", "FALSE", "no", "NO", "off", "Off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        text_is(BH_PARAM_BOOLEAN, yes[i], "true");
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        text_is(BH_PARAM_BOOLEAN, no[i], "false");
    const char *bad[] = {"", "maybe", "2", "tru", "yess", " true", "y", "n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        text_fails(BH_PARAM_BOOLEAN, bad[i], "expected boolean (true/false, yes/no, on/off, 1/0)");
    text_fails(BH_PARAM_BOOLEAN, "maybe", "got \"maybe\"");
}

static void test_text_list(void **state) {
    text_is(BH_PARAM_LIST, "a,b,c", "[\"a\",\"b\",\"c\"]");
    text_is(BH_PARAM_LIST, " web-1 ,\tweb-2 , db ", "[\"web-1\",\"web-2\",\"db\"]");
    text_is(BH_PARAM_LIST, "single", "[\"single\"]");
    text_is(BH_PARAM_LIST, "", "[]");
    text_is(BH_PARAM_LIST, "   ", "[]");
    text_is(BH_PARAM_LIST, "a,,b", "[\"a\",\"\",\"b\"]");
    /* JSON when it starts with '[', so elements keep their types. */
    text_is(BH_PARAM_LIST, "[1,\"x\",true]", "[1,\"x\",true]");
    text_is(BH_PARAM_LIST, "  [ \"a,b\" ] ", "[\"a,b\"]");
    text_is(BH_PARAM_LIST, "[]", "[]");
    text_fails(BH_PARAM_LIST, "[1,", "invalid JSON");
    text_fails(BH_PARAM_LIST, "[1] x", "expected list");
}

static void test_text_map(void **state) {
    text_is(BH_PARAM_MAP, "{\"a\":1,\"b\":[true]}", "{\"a\":1,\"b\":[true]}");
    text_is(BH_PARAM_MAP, " {} ", "{}");
    text_fails(BH_PARAM_MAP, "{a:1}", "expected map (a JSON object), got \"{a:1}\": invalid JSON");
    text_fails(BH_PARAM_MAP, "[1]", "a JSON list");
    text_fails(BH_PARAM_MAP, "\"s\"", "a JSON string");
    text_fails(BH_PARAM_MAP, "", "expected map");
    text_fails(BH_PARAM_MAP, "{} {}", "invalid JSON");
}

static void test_has_type(void **state) {
    cJSON *vals[] = {cJSON_CreateString("s"), cJSON_CreateNumber(1), cJSON_CreateTrue(),
                     cJSON_CreateArray(),     cJSON_CreateObject(),  cJSON_CreateNull()};
    /* vals[i] has type i and no other; null has none. */
    for (int t = BH_PARAM_STRING; t <= BH_PARAM_MAP; t++)
        for (int i = 0; i < 6; i++)
            assert_int_equal(bh_params_has_type((bh_param_type)t, vals[i]), i == t);
    cJSON *f = cJSON_CreateFalse();
    assert_true(bh_params_has_type(BH_PARAM_BOOLEAN, f));
    cJSON_Delete(f);
    for (int i = 0; i < 6; i++)
        cJSON_Delete(vals[i]);
}

static void test_input_add(void **state) {
    bh_params_input in;
    bh_params_input_init(&in);
    char err[256];
    assert_int_equal(bh_params_input_add(&in, "host=web-1", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "query=a=b", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "_empty=", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "host=web-2", err, sizeof err), 0);
    char *got = cJSON_PrintUnformatted(in.cli);
    /* The later -p replaced the earlier, and only the first '=' splits. */
    assert_string_equal(got, "{\"query\":\"a=b\",\"_empty\":\"\",\"host\":\"web-2\"}");
    cJSON_free(got);

    struct {
        const char *arg, *needle;
    } bad[] = {
        {"host", "expects name=value, got \"host\""}, {"=v", "invalid parameter name \"\""},
        {"1st=v", "invalid parameter name \"1st\""},  {"a-b=v", "invalid parameter name \"a-b\""},
        {"a b=v", "invalid parameter name"},          {"", "expects name=value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(bh_params_input_add(&in, bad[i].arg, err, sizeof err), -1);
        assert_contains(err, bad[i].needle);
    }
    assert_int_equal(cJSON_GetArraySize(in.cli), 3);
    bh_params_input_free(&in);
}

/* Write text to a fresh file; returns its path (the directory is in *dir). */
static char *write_tmp(const char *text, char **dir) {
    const char *base = getenv("TMPDIR");
    *dir = bh_util_asprintf("%s/bh-test-params-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(*dir));
    char *path = bh_util_asprintf("%s/params.json", *dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(bh_util_write_all(fd, text, strlen(text)), 0);
    close(fd);
    return path;
}

static void remove_tmp(char *path, char *dir) {
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void load_fails(const char *text, const char *needle) {
    char *dir;
    char *path = write_tmp(text, &dir);
    bh_params_input in;
    bh_params_input_init(&in);
    char err[512] = "";
    assert_int_equal(bh_params_input_load_file(&in, path, err, sizeof err), -1);
    assert_contains(err, path);
    assert_contains(err, needle);
    assert_null(in.file);
    bh_params_input_free(&in);
    remove_tmp(path, dir);
}

static void test_load_file(void **state) {
    char *dir;
    char *path = write_tmp("{\"hosts\": [\"a\", \"b\"], \"n\": 3}\n", &dir);
    bh_params_input in;
    bh_params_input_init(&in);
    char err[512];
    assert_int_equal(bh_params_input_load_file(&in, path, err, sizeof err), 0);
    assert_string_equal(in.file_path, path);
    assert_int_equal(cJSON_GetArraySize(in.file), 2);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(in.file, "hosts")));
    bh_params_input_free(&in);
    remove_tmp(path, dir);

    load_fails("[1, 2]", "expected a JSON object");
    load_fails("", "not valid JSON");
    /* The position of the error: line 2, column 8, where "bad" starts. */
    load_fails("{\"a\": 1,\n  \"b\": bad}", ":2:8: not valid JSON");
    load_fails("{\"a\": 1} trailing", "not valid JSON");
    load_fails("{\"a\": 1, \"a\": 2}", "parameter \"a\" is given twice");

    bh_params_input_init(&in);
    err[0] = '\0';
    assert_int_equal(bh_params_input_load_file(&in, "/nonexistent/p.json", err, sizeof err), -1);
    assert_contains(err, "/nonexistent/p.json");
    assert_contains(err, strerror(ENOENT));
    bh_params_input_free(&in);
}

/* ---- resolution ---- */

#define SPEC(n, t, req, def, doc)                                                                  \
    { (char *)(n), (t), (req), (def), (char *)(doc), NULL }

/* Resolve and return the result printed as JSON (caller frees). */
static char *resolve_json(const bh_param_spec *specs, size_t n, const bh_params_input *in,
                          int placeholders, bh_diag_list *diags) {
    cJSON *out = bh_params_resolve(specs, n, in, placeholders, "rb.lua", 3, diags);
    assert_non_null(out);
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return s;
}

static void diag_has(const bh_diag_list *diags, const char *needle) {
    for (size_t i = 0; i < diags->count; i++)
        if (strstr(diags->items[i].message, needle)) return;
    for (size_t i = 0; i < diags->count; i++)
        print_error("  diag: %s\n", diags->items[i].message);
    fail_msg("no diagnostic contains \"%s\"", needle);
}

static void test_resolve_precedence(void **state) {
    cJSON *defs[3] = {cJSON_CreateString("from default"), cJSON_CreateString("from default"),
                      cJSON_CreateNumber(1)};
    bh_param_spec specs[] = {
        SPEC("a", BH_PARAM_STRING, 0, defs[0], NULL), SPEC("b", BH_PARAM_STRING, 0, defs[1], NULL),
        SPEC("c", BH_PARAM_NUMBER, 1, defs[2], NULL), SPEC("d", BH_PARAM_LIST, 0, NULL, NULL),
        SPEC("e", BH_PARAM_BOOLEAN, 0, NULL, NULL), /* no value anywhere */
    };
    bh_params_input in;
    bh_params_input_init(&in);
    in.file = cJSON_Parse("{\"b\":\"from file\",\"c\":2,\"d\":[\"file\"]}");
    in.file_path = bh_util_xstrdup("p.json");
    char err[128];
    assert_int_equal(bh_params_input_add(&in, "c=3", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "d=x, y", err, sizeof err), 0);

    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 5, &in, 0, &diags);
    assert_int_equal(diags.count, 0);
    /* a: default; b: file over default; c, d: -p over file, converted. */
    assert_string_equal(got,
                        "{\"a\":\"from default\",\"b\":\"from file\",\"c\":3,\"d\":[\"x\",\"y\"]}");
    cJSON_free(got);

    /* With no input at all, defaults alone. */
    got = resolve_json(specs, 5, NULL, 0, &diags);
    assert_int_equal(diags.count, 0);
    assert_string_equal(got, "{\"a\":\"from default\",\"b\":\"from default\",\"c\":1}");
    cJSON_free(got);

    bh_diag_free(&diags);
    bh_params_input_free(&in);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(defs[i]);
}

static void test_resolve_missing_required(void **state) {
    bh_param_spec specs[] = {
        SPEC("hosts", BH_PARAM_LIST, 1, NULL, "hosts to look at"),
        SPEC("ticket", BH_PARAM_STRING, 1, NULL, NULL),
        SPEC("verbose", BH_PARAM_BOOLEAN, 0, NULL, "more output"),
    };
    bh_params_input in;
    bh_params_input_init(&in);
    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 3, &in, 0, &diags);
    assert_string_equal(got, "{}");
    cJSON_free(got);
    /* Both missing ones, not just the first; the optional one is fine. */
    assert_int_equal(diags.count, 2);
    assert_int_equal(bh_diag_errors(&diags), 2);
    assert_string_equal(diags.items[0].message,
                        "missing required parameter 'hosts' (list): hosts to look at");
    assert_string_equal(diags.items[1].message, "missing required parameter 'ticket' (string)");
    assert_string_equal(diags.items[0].file, "rb.lua");
    assert_int_equal(diags.items[0].line, 3);
    bh_diag_free(&diags);
    bh_params_input_free(&in);
}

static void test_resolve_placeholders(void **state) {
    cJSON *def = cJSON_CreateNumber(7);
    bh_param_spec specs[] = {
        SPEC("s", BH_PARAM_STRING, 1, NULL, NULL),   SPEC("n", BH_PARAM_NUMBER, 1, NULL, NULL),
        SPEC("b", BH_PARAM_BOOLEAN, 1, NULL, NULL),  SPEC("l", BH_PARAM_LIST, 1, NULL, NULL),
        SPEC("m", BH_PARAM_MAP, 1, NULL, NULL),      SPEC("opt", BH_PARAM_STRING, 0, NULL, NULL),
        SPEC("dflt", BH_PARAM_NUMBER, 1, def, NULL),
    };
    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 7, NULL, 1, &diags);
    assert_int_equal(diags.count, 0);
    /* Typed stand-ins; an optional parameter without default stays absent
     * and a default still wins over a stand-in. */
    assert_string_equal(got,
                        "{\"s\":\"<s>\",\"n\":0,\"b\":false,\"l\":[\"<l>\"],\"m\":{},\"dflt\":7}");
    cJSON_free(got);
    bh_diag_free(&diags);
    cJSON_Delete(def);
}

static void test_resolve_unknown(void **state) {
    bh_param_spec specs[] = {
        SPEC("name", BH_PARAM_STRING, 0, NULL, NULL),
        SPEC("hosts", BH_PARAM_LIST, 0, NULL, NULL),
        SPEC("timeout", BH_PARAM_NUMBER, 0, NULL, NULL),
    };
    bh_params_input in;
    bh_params_input_init(&in);
    char err[128];
    assert_int_equal(bh_params_input_add(&in, "nmae=x", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "zzz=1", err, sizeof err), 0);
    in.file = cJSON_Parse("{\"tiemout\":5,\"zzz\":2,\"host\":[\"a\"]}");
    in.file_path = bh_util_xstrdup("/srv/p.json");

    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 3, &in, 0, &diags);
    assert_string_equal(got, "{}");
    cJSON_free(got);
    /* nmae, zzz (-p), tiemout, host (file); zzz from the file is the same
     * name as from -p and is not reported twice. */
    assert_int_equal(diags.count, 4);
    assert_contains(diags.items[0].message,
                    "unknown parameter 'nmae' (declared: name, hosts, timeout); "
                    "did you mean 'name'?");
    assert_contains(diags.items[0].message, "-p");
    assert_contains(diags.items[1].message, "unknown parameter 'zzz' (declared:");
    if (strstr(diags.items[1].message, "did you mean"))
        fail_msg("unexpected suggestion: %s", diags.items[1].message);
    diag_has(&diags, "unknown parameter 'tiemout' (declared: name, hosts, timeout); "
                     "did you mean 'timeout'?");
    diag_has(&diags, "did you mean 'hosts'?");
    diag_has(&diags, "/srv/p.json");
    bh_diag_free(&diags);
    bh_params_input_free(&in);

    /* Nothing declared. */
    bh_params_input_init(&in);
    assert_int_equal(bh_params_input_add(&in, "x=1", err, sizeof err), 0);
    bh_diag_init(&diags);
    got = resolve_json(specs, 0, &in, 0, &diags);
    cJSON_free(got);
    assert_int_equal(diags.count, 1);
    assert_contains(diags.items[0].message, "unknown parameter 'x' (declared: none)");
    bh_diag_free(&diags);

    /* "q" is two edits from "id", but so is any one-letter name: no
     * suggestion for names shorter than the edits they would need. */
    bh_param_spec id[] = {SPEC("id", BH_PARAM_STRING, 0, NULL, NULL)};
    assert_int_equal(bh_params_input_add(&in, "q=1", err, sizeof err), 0);
    bh_diag_init(&diags);
    got = resolve_json(id, 1, &in, 0, &diags);
    cJSON_free(got);
    assert_int_equal(diags.count, 2); /* x and q */
    for (size_t i = 0; i < diags.count; i++)
        if (strstr(diags.items[i].message, "did you mean"))
            fail_msg("unexpected suggestion: %s", diags.items[i].message);
    bh_diag_free(&diags);
    bh_params_input_free(&in);
}

static void test_resolve_type_errors(void **state) {
    cJSON *def = cJSON_CreateString("fallback");
    bh_param_spec specs[] = {
        SPEC("count", BH_PARAM_NUMBER, 1, NULL, NULL),
        SPEC("label", BH_PARAM_STRING, 0, def, NULL),
        SPEC("dry", BH_PARAM_BOOLEAN, 0, NULL, NULL),
        SPEC("tags", BH_PARAM_MAP, 0, NULL, NULL),
    };
    bh_params_input in;
    bh_params_input_init(&in);
    in.file = cJSON_Parse("{\"count\":\"5\",\"label\":5,\"tags\":{\"a\":1}}");
    in.file_path = bh_util_xstrdup("p.json");
    char err[512];
    char longv[300];
    memset(longv, 'v', sizeof longv);
    memcpy(longv, "dry=", 4);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(bh_params_input_add(&in, longv, err, sizeof err), 0);

    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 4, &in, 0, &diags);
    /* Wrong values do not fall back to the default: the operator meant to
     * override it. Good values still resolve. */
    assert_string_equal(got, "{\"tags\":{\"a\":1}}");
    cJSON_free(got);
    assert_int_equal(diags.count, 3);
    assert_string_equal(diags.items[0].message,
                        "parameter 'count': expected number, got string \"5\" (from p.json)");
    assert_string_equal(diags.items[1].message,
                        "parameter 'label': expected string, got number 5 (from p.json)");
    /* A long value is shown cut short. */
    assert_contains(diags.items[2].message, "parameter 'dry': expected boolean");
    assert_contains(diags.items[2].message, "vvv...\" (from -p)");
    assert_true(strlen(diags.items[2].message) < 200);
    bh_diag_free(&diags);
    bh_params_input_free(&in);
    cJSON_Delete(def);
}

static void test_resolve_reports_everything(void **state) {
    cJSON *def = cJSON_CreateNumber(30);
    bh_param_spec specs[] = {
        SPEC("hosts", BH_PARAM_LIST, 1, NULL, "hosts"),
        SPEC("ticket", BH_PARAM_STRING, 1, NULL, "ticket id"),
        SPEC("retries", BH_PARAM_NUMBER, 0, NULL, NULL),
        SPEC("wait", BH_PARAM_NUMBER, 0, def, NULL),
        SPEC("force", BH_PARAM_BOOLEAN, 0, NULL, NULL),
    };
    bh_params_input in;
    bh_params_input_init(&in);
    char err[128];
    assert_int_equal(bh_params_input_add(&in, "host=a,b", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "retries=three", err, sizeof err), 0);
    assert_int_equal(bh_params_input_add(&in, "force=yes", err, sizeof err), 0);
    in.file = cJSON_Parse("{\"wait\":[1]}");
    in.file_path = bh_util_xstrdup("p.json");

    bh_diag_list diags;
    bh_diag_init(&diags);
    char *got = resolve_json(specs, 5, &in, 0, &diags);
    assert_string_equal(got, "{\"force\":true}");
    cJSON_free(got);
    /* unknown host, missing hosts and ticket, bad retries, bad wait. */
    assert_int_equal(diags.count, 5);
    assert_int_equal(bh_diag_errors(&diags), 5);
    diag_has(&diags, "unknown parameter 'host'");
    diag_has(&diags, "did you mean 'hosts'?");
    diag_has(&diags, "missing required parameter 'hosts' (list): hosts");
    diag_has(&diags, "missing required parameter 'ticket' (string): ticket id");
    diag_has(&diags, "parameter 'retries': expected number, got \"three\" (from -p)");
    diag_has(&diags, "parameter 'wait': expected number, got list [1] (from p.json)");
    for (size_t i = 0; i < diags.count; i++) {
        assert_string_equal(diags.items[i].file, "rb.lua");
        assert_int_equal(diags.items[i].line, 3);
    }
    bh_diag_free(&diags);
    bh_params_input_free(&in);
    cJSON_Delete(def);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_text_string_number),
        cmocka_unit_test(test_text_boolean),
        cmocka_unit_test(test_text_list),
        cmocka_unit_test(test_text_map),
        cmocka_unit_test(test_has_type),
        cmocka_unit_test(test_input_add),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_resolve_precedence),
        cmocka_unit_test(test_resolve_missing_required),
        cmocka_unit_test(test_resolve_placeholders),
        cmocka_unit_test(test_resolve_unknown),
        cmocka_unit_test(test_resolve_type_errors),
        cmocka_unit_test(test_resolve_reports_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
