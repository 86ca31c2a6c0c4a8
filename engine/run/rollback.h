/* rollback: the undos inside a run. A step with on_failure = "rollback"
 * failed: once nothing is in flight, the undo of every completed instance
 * runs, one at a time, in reverse completion order (run->done_list). The
 * scheduler starts each (bh_sched_entry.start_undo) and reports its end
 * here. `bulkhead undo RUN` (undo.h) drives the same machinery for a
 * finished run. */
#ifndef BH_ROLLBACK_H
#define BH_ROLLBACK_H

#include "run/run.h"

/* The rollback begins: recorded, and said on the console. */
void bh_rollback_begin(bh_run *run);
/* Start the next undo if none is running. Returns 1 while undos remain. */
int bh_rollback_next(bh_run *run);
/* An undo attempt a ended with status: the step's undone/failed counts. */
void bh_rollback_ended(bh_run *run, bh_attempt *a, bh_step_status status);
/* Push the instance's recorded result (and set ctx.result). */
void bh_rollback_push_result(bh_attempt *a);

#endif
