/* graph: turn the steps a runbook declared into what the scheduler runs.
 *
 * Resolves `after` names to step indices, refuses unknown names, self-waits,
 * cycles and waiting for a cadence step (which never ends before the run),
 * then groups steps into units (bh_unit) and orders them:
 *   - by default every step is a unit of its own: one step at a time;
 *   - parallel { step "a" {...}, step "b" {...} } makes a unit of a group;
 *   - schedule = "graph" makes one unit of the whole runbook.
 * Units run one after another; inside a unit a step starts as soon as the
 * steps it waits for are done. Concurrency is therefore never a surprise:
 * it happens only inside a group or a graph the runbook asked for. */
#ifndef BH_GRAPH_H
#define BH_GRAPH_H

#include "load/model.h"

/* The parallel{} groups loading saw: of[i] is step i's group (1..n, 0
 * for none), cap[g] group g's concurrency (0: none of its own). */
typedef struct {
    const int *of;
    const int *cap;
    int n;
} bh_graph_groups;

/* Fills rb->steps[].deps, rb->units and rb->order. Problems go to rb->diags
 * with the file and line of the step concerned. Returns 0 on success. */
int bh_graph_resolve(bh_runbook *rb, const bh_graph_groups *groups);
void bh_graph_free(bh_runbook *rb);

#endif
