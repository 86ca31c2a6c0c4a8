/* Unit tests for engine/load/graph.c on models built by hand (no Lua, no
 * loader): `after` resolved to indices, the order dependencies first and
 * otherwise as declared, units for steps, groups and schedule = "graph",
 * and every refusal with the step's file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "load/graph.h"

/* A model of steps "a b c ...", each waiting for the ids in its string
 * ("b:a c:a,b": b waits for a, c for a and b); group[i]: parallel{} group
 * of step i (0: none). */
/* The parallel groups of the model last made (one at a time). */
static bh_graph_groups groups;

static bh_runbook *model(const char *ids, const char *waits, const int *group) {
    bh_runbook *rb = bh_util_xcalloc(1, sizeof *rb);
    bh_diag_init(&rb->diags);
    char *copy = bh_util_xstrdup(ids);
    for (char *save, *id = strtok_r(copy, " ", &save); id; id = strtok_r(NULL, " ", &save)) {
        rb->steps = realloc(rb->steps, (rb->nsteps + 1) * sizeof *rb->steps);
        bh_step *s = &rb->steps[rb->nsteps];
        memset(s, 0, sizeof *s);
        s->id = bh_util_xstrdup(id);
        s->file = bh_util_xstrdup("rb.lua");
        s->line = (int)rb->nsteps + 10;
        rb->nsteps++;
    }
    free(copy);
    int *of = bh_util_xcalloc(rb->nsteps, sizeof *of);
    int *cap = bh_util_xcalloc(rb->nsteps + 1, sizeof *cap);
    groups = (bh_graph_groups){of, cap, 0};
    for (size_t i = 0; group && i < rb->nsteps; i++) {
        of[i] = group[i];
        if (group[i] > groups.n) groups.n = group[i];
    }
    copy = bh_util_xstrdup(waits);
    for (char *save, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *colon = strchr(w, ':');
        *colon = '\0';
        bh_step *s = &rb->steps[bh_model_step_index(rb, w)];
        for (char *save2, *d = strtok_r(colon + 1, ",", &save2); d;
             d = strtok_r(NULL, ",", &save2)) {
            s->after = realloc(s->after, (s->nafter + 1) * sizeof *s->after);
            s->after[s->nafter++] = bh_util_xstrdup(d);
        }
    }
    free(copy);
    return rb;
}

static void model_free(bh_runbook *rb) {
    bh_graph_free(rb);
    for (size_t i = 0; i < rb->nsteps; i++) {
        for (size_t k = 0; k < rb->steps[i].nafter; k++)
            free(rb->steps[i].after[k]);
        free(rb->steps[i].after);
        free(rb->steps[i].deps); /* the loader frees them with the step */
        free(rb->steps[i].id);
        free(rb->steps[i].file);
    }
    free(rb->steps);
    free((int *)groups.of);
    free((int *)groups.cap);
    bh_diag_free(&rb->diags);
    free(rb);
}

/* "c a b": the step ids in run order. */
static void order_text(const bh_runbook *rb, char *out, size_t len) {
    out[0] = '\0';
    for (size_t i = 0; i < rb->nsteps; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", i ? " " : "", rb->steps[rb->order[i]].id);
    }
}

static const char *first_diag(const bh_runbook *rb) {
    return rb->diags.count ? rb->diags.items[0].message : "";
}

static void test_declared_order_without_after(void **state) {
    (void)state;
    bh_runbook *rb = model("a b c", "", NULL);
    assert_int_equal(bh_graph_resolve(rb, &groups), 0);
    char text[64];
    order_text(rb, text, sizeof text);
    assert_string_equal(text, "a b c");
    assert_int_equal(rb->nunits, 3); /* one step at a time */
    model_free(rb);
}

static void test_dependencies_first(void **state) {
    (void)state;
    bh_runbook *rb = model("report isolate notify", "report:notify,isolate", NULL);
    assert_int_equal(bh_graph_resolve(rb, &groups), 0);
    char text[64];
    order_text(rb, text, sizeof text);
    assert_string_equal(text, "isolate notify report");
    const bh_step *r = &rb->steps[0];
    assert_int_equal(r->deps[0], 2); /* notify */
    assert_int_equal(r->deps[1], 1); /* isolate */
    model_free(rb);
}

static void test_groups_and_graph_are_units(void **state) {
    (void)state;
    const int group[] = {0, 1, 1, 0};
    bh_runbook *rb = model("scope web mail close", "", group);
    assert_int_equal(bh_graph_resolve(rb, &groups), 0);
    assert_int_equal(rb->nunits, 3);
    assert_int_equal(rb->units[1].nsteps, 2);
    assert_true(rb->units[1].parallel);
    model_free(rb);
    rb = model("a b c", "c:a", NULL);
    rb->graph = 1;
    assert_int_equal(bh_graph_resolve(rb, &groups), 0);
    assert_int_equal(rb->nunits, 1);
    assert_int_equal(rb->units[0].nsteps, 3);
    model_free(rb);
}

static void test_refusals_name_the_step(void **state) {
    (void)state;
    bh_runbook *rb = model("a b", "b:nope", NULL);
    assert_int_not_equal(bh_graph_resolve(rb, &groups), 0);
    assert_non_null(strstr(first_diag(rb), "nope"));
    assert_int_equal(rb->diags.items[0].line, 11); /* b's line */
    model_free(rb);

    rb = model("a", "a:a", NULL);
    assert_int_not_equal(bh_graph_resolve(rb, &groups), 0);
    assert_non_null(strstr(first_diag(rb), "itself"));
    model_free(rb);

    rb = model("a b c", "a:c b:a c:b", NULL);
    assert_int_not_equal(bh_graph_resolve(rb, &groups), 0);
    assert_non_null(strstr(first_diag(rb), "dependency cycle"));
    model_free(rb);

    rb = model("tick later", "later:tick", NULL);
    rb->steps[0].every_ms = 1000; /* a cadence never ends before the run */
    assert_int_not_equal(bh_graph_resolve(rb, &groups), 0);
    assert_non_null(strstr(first_diag(rb), "tick"));
    model_free(rb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declared_order_without_after),
        cmocka_unit_test(test_dependencies_first),
        cmocka_unit_test(test_groups_and_graph_are_units),
        cmocka_unit_test(test_refusals_name_the_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
