/* Unit tests for engine/load/runbook.c: what a loaded runbook is as data
 * (load/model.h): metadata, parameters with their values, phases, steps
 * with their policies, the order; and that problems are reported with
 * file:line, all at once, without running a step. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "load/runbook.h"

#include <lauxlib.h>

static char dir[] = "/tmp/bh-test-runbook-XXXXXX";

static int setup(void **state) {
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char *cmd = bh_util_asprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* Load text as a runbook file, with params "name=value" (NULL-terminated). */
static bh_runbook_status load(const char *text, const char *const *params, bh_runbook **rb) {
    char *path = bh_util_asprintf("%s/rb.lua", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    bh_params_input in;
    bh_params_input_init(&in);
    char err[256];
    for (size_t i = 0; params && params[i]; i++)
        assert_int_equal(bh_params_input_add(&in, params[i], err, sizeof err), 0);
    bh_runbook_opts o = {.path = path, .params = &in};
    bh_runbook_status st = bh_runbook_load(&o, rb);
    bh_params_input_free(&in);
    free(path);
    return st;
}

static const char *diag_text(const bh_runbook *rb) {
    return rb->diags.count ? rb->diags.items[0].message : "";
}

static void test_model_of_a_runbook(void **state) {
    (void)state;
    const char *params[] = {"hosts=web1,web2", NULL};
    bh_runbook *rb;
    bh_runbook_status st =
        load("runbook { id = \"m\", title = \"Model\", severity = \"high\", timeout = \"2m\",\n"
             "  params = { hosts = { type = \"list\", required = true, doc = \"hosts\" },\n"
             "             grace = { type = \"number\", default = 5, doc = \"seconds\" } } }\n"
             "phase \"contain\"\n"
             "step \"isolate\" { each = param.hosts, retries = 2, backoff = \"3s\",\n"
             "  on_failure = \"rollback\", run = function(ctx, h) end, undo = function() end }\n"
             "phase \"recover\"\n"
             "step \"restore\" { after = \"isolate\", timeout = \"30s\", run = function() end }\n",
             params, &rb);
    assert_int_equal(st, BH_RUNBOOK_OK);
    assert_string_equal(rb->id, "m");
    assert_string_equal(rb->severity, "high");
    assert_int_equal(rb->nphases, 2);
    assert_int_equal(rb->nsteps, 2);
    const bh_step *iso = &rb->steps[bh_model_step_index(rb, "isolate")];
    assert_string_equal(iso->phase, "contain");
    assert_int_equal(iso->retries, 2);
    assert_true(iso->backoff_ms == 3000);
    assert_int_equal(iso->on_failure, BH_FAIL_ROLLBACK);
    assert_int_not_equal(iso->each_ref, LUA_NOREF);
    assert_int_not_equal(iso->undo_ref, LUA_NOREF);
    assert_true(iso->timeout_ms == 120000); /* the runbook's */
    const bh_step *res = &rb->steps[bh_model_step_index(rb, "restore")];
    assert_true(res->timeout_ms == 30000);
    assert_int_equal(res->nafter, 1);
    assert_int_equal(res->deps[0], bh_model_step_index(rb, "isolate"));
    assert_string_equal(bh_model_policy_name(res->on_failure), "abort");
    const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(rb->param_values, "hosts");
    assert_int_equal(cJSON_GetArraySize(hosts), 2);
    assert_true(cJSON_GetObjectItemCaseSensitive(rb->param_values, "grace")->valuedouble == 5);
    assert_int_equal(bh_model_step_index(rb, "nope"), (size_t)-1);
    assert_int_equal(bh_model_step_index(rb, NULL), (size_t)-1);
    bh_runbook_free(rb);
}

static void test_problems_are_all_reported_with_lines(void **state) {
    (void)state;
    bh_runbook *rb;
    bh_runbook_status st = load("runbook { id = \"p\", title = \"P\" }\n"
                                "step \"a\" { retries = -1, run = function() end }\n"
                                "step \"b\" { on_failure = \"shrug\", run = function() end }\n"
                                "step \"a\" { run = function() end }\n",
                                NULL, &rb);
    assert_int_equal(st, BH_RUNBOOK_INVALID);
    assert_true(rb->diags.count >= 3);
    assert_int_equal(rb->diags.items[0].line, 2);
    assert_non_null(strstr(diag_text(rb), "'retries' must be a whole number"));
    int twice = 0, policy = 0;
    for (size_t i = 0; i < rb->diags.count; i++) {
        twice |= strstr(rb->diags.items[i].message, "declared twice (first at line 2)") != NULL &&
                 rb->diags.items[i].line == 4;
        policy |= strstr(rb->diags.items[i].message, "not \"shrug\"") != NULL &&
                  rb->diags.items[i].line == 3;
    }
    assert_true(twice);
    assert_true(policy);
    bh_runbook_free(rb);
}

static void test_loading_runs_no_step(void **state) {
    (void)state;
    char *marker = bh_util_asprintf("%s/ran", dir);
    char *text = bh_util_asprintf("runbook { id = \"n\", title = \"N\" }\n"
                                  "step \"s\" { run = function(ctx) ctx.exec { \"touch\", \"%s\" } "
                                  "end }\n",
                                  marker);
    bh_runbook *rb;
    assert_int_equal(load(text, NULL, &rb), BH_RUNBOOK_OK);
    assert_int_not_equal(access(marker, F_OK), 0);
    bh_runbook_free(rb);
    free(text);
    free(marker);
}

static void test_bad_params_stop_loading(void **state) {
    (void)state;
    const char *params[] = {"grace=soon", NULL};
    bh_runbook *rb;
    bh_runbook_status st =
        load("runbook { id = \"b\", title = \"B\",\n"
             "  params = { grace = { type = \"number\", default = 5, doc = \"seconds\" } } }\n"
             "step \"s\" { run = function() end }\n",
             params, &rb);
    assert_int_equal(st, BH_RUNBOOK_BAD_PARAMS);
    assert_non_null(strstr(diag_text(rb), "grace"));
    bh_runbook_free(rb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_of_a_runbook),
        cmocka_unit_test(test_problems_are_all_reported_with_lines),
        cmocka_unit_test(test_loading_runs_no_step),
        cmocka_unit_test(test_bad_params_stop_loading),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
