/* sched: runs a loaded runbook's steps on a libuv loop.
 *
 * Steps run one at a time in declaration order, each attempt in its own
 * coroutine. Write-ahead: a step's start record is synced before its body
 * runs; its end record is synced (together with the next start) before the
 * next step begins. A failed step stops the run and the steps not reached
 * are recorded as skipped. SIGINT/SIGTERM start nothing new, terminate the
 * running children (a second signal kills them) and record the interruption. */
#ifndef BH_SCHED_H
#define BH_SCHED_H

#include "run.h"

typedef enum { BH_RUN_OK = 0, BH_RUN_FAILED, BH_RUN_INTERRUPTED, BH_RUN_IO_ERROR } bh_run_outcome;

/* Creates the run folder and journal, runs every step, writes run_end.
 * *run_id (malloc'd) names the run when the folder was created. *sig is the
 * signal that interrupted the run, if any. */
bh_run_outcome bh_sched_run(bh_runbook *rb, const bh_run_opts *opts, char **run_id, int *sig);

/* Used by ctx.c: resume a suspended attempt with nargs values pushed on its
 * coroutine, and handle what the body does next. */
void bh_sched_resume(bh_attempt *a, int nargs);
/* Used by ctx.c: the primitive the attempt waited on has finished, but the
 * attempt was timed out or cancelled meanwhile: end it. */
void bh_sched_abandon(bh_attempt *a);
/* Used by ctx.c: end a suspended attempt as failed without resuming it. */
void bh_sched_fail(bh_attempt *a, const char *code, const char *message);

#endif
