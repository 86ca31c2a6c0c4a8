#include "load/graph.h"

#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* Depth-first search for a cycle through step i; marks: 0 new, 1 on the
 * current path, 2 done. Reports the first cycle found. The depth is bounded
 * by BH_MAX_STEPS. */
static int find_cycle(bh_runbook *rb, size_t i, unsigned char *mark, size_t *path, size_t depth) {
    mark[i] = 1;
    path[depth] = i;
    for (size_t k = 0; k < rb->steps[i].nafter; k++) {
        size_t d = rb->steps[i].deps[k];
        if (mark[d] == 1) {
            char text[512] = "";
            size_t start = depth;
            while (path[start] != d)
                start--;
            for (size_t p = start; p <= depth; p++) {
                size_t used = strlen(text);
                snprintf(text + used, sizeof text - used, "%s -> ", rb->steps[path[p]].id);
            }
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s", rb->steps[d].id);
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, rb->steps[d].file, rb->steps[d].line,
                        "dependency cycle: %s (each waits for the next through 'after')", text);
            return 1;
        }
        if (mark[d] == 0 && find_cycle(rb, d, mark, path, depth + 1)) return 1;
    }
    mark[i] = 2;
    return 0;
}

static int resolve_names(bh_runbook *rb) {
    int bad = 0;
    for (size_t i = 0; i < rb->nsteps; i++) {
        bh_step *s = &rb->steps[i];
        s->deps = bh_util_xcalloc(s->nafter ? s->nafter : 1, sizeof *s->deps);
        for (size_t k = 0; k < s->nafter; k++) {
            size_t d = bh_model_step_index(rb, s->after[k]);
            if (d == (size_t)-1) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, s->file, s->line,
                            "step '%s': 'after' names '%s', which is not a step of this "
                            "runbook",
                            s->id, s->after[k]);
                bad = 1;
            } else if (d == i) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, s->file, s->line,
                            "step '%s' cannot wait for itself", s->id);
                bad = 1;
            } else if (rb->steps[d].every_ms > 0) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, s->file, s->line,
                            "step '%s' waits for '%s', a cadence (every) that repeats until the "
                            "run ends: it would never start",
                            s->id, s->after[k]);
                bad = 1;
            } else {
                s->deps[k] = d;
            }
        }
    }
    return bad;
}

/* Kahn's algorithm over the members of one unit (or all steps), always
 * taking the earliest declared ready step; deps outside `member` count as
 * done. Writes the order to out. */
static void order_members(const bh_runbook *rb, const size_t *members, size_t n,
                          const unsigned char *member, unsigned char *placed, size_t *out) {
    for (size_t k = 0; k < n; k++) {
        for (size_t m = 0; m < n; m++) {
            size_t i = members[m];
            if (placed[i]) continue;
            const bh_step *s = &rb->steps[i];
            int ready = 1;
            for (size_t j = 0; j < s->nafter && ready; j++)
                ready = !member[s->deps[j]] || placed[s->deps[j]];
            if (ready) {
                placed[i] = 1;
                out[k] = i;
                break;
            }
        }
    }
}

static void build_units(bh_runbook *rb, size_t *unit_of, size_t nunits) {
    rb->units = bh_util_xcalloc(nunits, sizeof *rb->units);
    rb->nunits = nunits;
    /* Sized exactly: a runbook of 10,000 one-step units must stay small. */
    for (size_t i = 0; i < rb->nsteps; i++)
        rb->units[unit_of[i]].nsteps++;
    for (size_t u = 0; u < nunits; u++) {
        rb->units[u].steps = bh_util_xcalloc(rb->units[u].nsteps, sizeof *rb->units[u].steps);
        rb->units[u].nsteps = 0;
    }
    for (size_t i = 0; i < rb->nsteps; i++) {
        bh_unit *u = &rb->units[unit_of[i]];
        u->steps[u->nsteps++] = i;
    }
}

/* Order the units: a unit runs after every unit holding a step one of its
 * steps waits for; otherwise in the order of their first declared step. */
static int order_units(bh_runbook *rb, const size_t *unit_of) {
    size_t n = rb->nunits;
    unsigned char *placed = bh_util_xcalloc(n, 1);
    size_t *seq = bh_util_xcalloc(n, sizeof *seq);
    int bad = 0;
    size_t first = 0; /* every unit before it is placed: scans start here */
    for (size_t k = 0; k < n && !bad; k++) {
        size_t pick = (size_t)-1;
        while (first < n && placed[first])
            first++;
        for (size_t u = first; u < n && pick == (size_t)-1; u++) {
            if (placed[u]) continue;
            int ready = 1;
            const bh_unit *un = &rb->units[u];
            for (size_t m = 0; m < un->nsteps && ready; m++) {
                const bh_step *s = &rb->steps[un->steps[m]];
                for (size_t j = 0; j < s->nafter && ready; j++) {
                    size_t du = unit_of[s->deps[j]];
                    ready = du == u || placed[du];
                }
            }
            if (ready) pick = u;
        }
        if (pick == (size_t)-1) {
            /* Steps are acyclic, so a group is involved: a step outside it
             * waits for the group while the group waits for that step. */
            for (size_t u = 0; u < n; u++) {
                if (placed[u] || rb->units[u].nsteps < 2) continue;
                const bh_step *head = &rb->steps[rb->units[u].steps[0]];
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, head->file, head->line,
                            "the parallel group starting with step '%s' waits, through "
                            "'after', for a step that itself waits for the group: move that "
                            "step into the group or drop one of the waits",
                            head->id);
                break;
            }
            bad = 1;
            break;
        }
        placed[pick] = 1;
        seq[k] = pick;
    }
    if (!bad) {
        bh_unit *sorted = bh_util_xcalloc(n, sizeof *sorted);
        for (size_t k = 0; k < n; k++)
            sorted[k] = rb->units[seq[k]];
        free(rb->units);
        rb->units = sorted;
    }
    free(placed);
    free(seq);
    return bad;
}

int bh_graph_resolve(bh_runbook *rb, const bh_graph_groups *groups) {
    if (resolve_names(rb)) return -1;
    unsigned char *mark = bh_util_xcalloc(rb->nsteps, 1);
    size_t *path = bh_util_xcalloc(rb->nsteps, sizeof *path);
    int bad = 0;
    for (size_t i = 0; i < rb->nsteps && !bad; i++)
        if (mark[i] == 0) bad = find_cycle(rb, i, mark, path, 0);
    free(path);
    free(mark);
    if (bad) return -1;

    /* Unit of each step: numbered by first appearance in declaration order. */
    size_t *unit_of = bh_util_xcalloc(rb->nsteps, sizeof *unit_of);
    size_t *group_unit = bh_util_xcalloc((size_t)groups->n + 1, sizeof *group_unit);
    size_t nunits = 0;
    for (int g = 0; g <= groups->n; g++)
        group_unit[g] = (size_t)-1;
    for (size_t i = 0; i < rb->nsteps; i++) {
        int g = groups->of ? groups->of[i] : 0;
        if (rb->graph) {
            unit_of[i] = 0;
            nunits = 1;
        } else if (g > 0) {
            if (group_unit[g] == (size_t)-1) group_unit[g] = nunits++;
            unit_of[i] = group_unit[g];
        } else {
            unit_of[i] = nunits++;
        }
    }
    build_units(rb, unit_of, nunits);
    for (size_t i = 0; i < rb->nsteps; i++) {
        int g = groups->of ? groups->of[i] : 0;
        bh_unit *u = &rb->units[unit_of[i]];
        u->parallel = rb->graph || g > 0;
        if (g > 0 && groups->cap) u->concurrency = groups->cap[g];
        rb->steps[i].unit = unit_of[i]; /* renumbered below, once sorted */
    }
    free(group_unit);
    bad = order_units(rb, unit_of);
    free(unit_of);
    if (bad) return -1;

    /* The run order: unit after unit, dependencies first inside each. */
    unsigned char *member = bh_util_xcalloc(rb->nsteps, 1);
    unsigned char *placed = bh_util_xcalloc(rb->nsteps, 1);
    rb->order = bh_util_xcalloc(rb->nsteps, sizeof *rb->order);
    size_t at = 0;
    for (size_t u = 0; u < rb->nunits; u++) {
        bh_unit *un = &rb->units[u];
        for (size_t m = 0; m < un->nsteps; m++)
            member[un->steps[m]] = 1;
        order_members(rb, un->steps, un->nsteps, member, placed, rb->order + at);
        memcpy(un->steps, rb->order + at, un->nsteps * sizeof *un->steps);
        for (size_t m = 0; m < un->nsteps; m++) {
            member[un->steps[m]] = 0;
            rb->steps[un->steps[m]].unit = u;
        }
        at += un->nsteps;
    }
    free(member);
    free(placed);
    return 0;
}

void bh_graph_free(bh_runbook *rb) {
    for (size_t u = 0; u < rb->nunits; u++)
        free(rb->units[u].steps);
    free(rb->units);
    rb->units = NULL;
    rb->nunits = 0;
    free(rb->order);
    rb->order = NULL;
}
