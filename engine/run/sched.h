/* sched: runs a loaded runbook's steps on a libuv loop.
 *
 * Units (graph.h) run one after another; inside a parallel unit a step
 * starts once the steps it waits for are done, within the concurrency caps
 * (the run's, the group's, the step's own for a fan-out). Each attempt runs
 * in its own coroutine. Write-ahead: an attempt's start record is synced
 * before its body runs. A failed step applies its policy once its retries
 * are used up: abort (start nothing new, let what runs finish, skip the
 * rest), continue, or rollback (abort, then undo completed steps in reverse
 * completion order, undo.c). SIGINT/SIGTERM start nothing new, terminate
 * the running children (a second signal kills them) and record it. */
#ifndef BH_SCHED_H
#define BH_SCHED_H

#include "run/handle.h"
#include "load/sim.h"

typedef enum { BH_RUN_OK = 0, BH_RUN_FAILED, BH_RUN_INTERRUPTED, BH_RUN_IO_ERROR } bh_run_outcome;

/* Creates the run folder and journal, runs every step, writes run_end.
 * *run_id (malloc'd) names the run when the folder was created. *sig is the
 * signal that interrupted the run, if any. */
bh_run_outcome bh_sched_run(const bh_runbook *rb, const bh_run_opts *opts, char **run_id, int *sig);

/* The pieces of bh_sched_run, for engines that work on an existing run
 * (undo.c): init, then a journal and dir of the caller's, listen (signals,
 * control socket), pump, finish_run (runs the loop, writes the end record),
 * cleanup (closes everything, uv_loop_close). */
void bh_sched_init(bh_run *run, const bh_runbook *rb, const bh_run_opts *opts, uv_loop_t *loop);
void bh_sched_listen(bh_run *run);
void bh_sched_pump(bh_run *run);
bh_run_outcome bh_sched_finish_run(bh_run *run);
void bh_sched_cleanup(bh_run *run);

/* --- resume (resume.c) ---------------------------------------------------
 * What the journal says of each step, put back into a fresh bh_run so that
 * the pump goes on where the dead engine stopped. */

/* An instance to start again when the caps allow: a retry that was due, an
 * unknown outcome the operator (or idempotence) said to repeat, a manual
 * task to ask again. */
typedef struct {
    size_t item;       /* 0-based */
    int number;        /* the attempt it starts as */
    int ask_when;      /* no earlier attempt of it had an outcome: ask `when` */
    const char *doubt; /* the attempt before it ended in doubt: why (the record's), else NULL */
} bh_rerun;

typedef struct {
    int began;              /* its turn had come */
    int approved;           /* the approvals it needs were given */
    const cJSON *approvers; /* approval records ({by, uid, how}) so far, when not all came */
    int skipped;            /* a step_skipped record (when = false, or after): final */
    int blocked;            /* ... because a step it waits for did not succeed */
    int failed_early;       /* a step_end of attempt 0 (denied, bad_items): final, failed */
    const char *done;       /* status of its step_done record, if any */
    int listed;             /* fan-out: its items were listed (a fanout record) */
    size_t nitems;          /* ... how many */
    size_t started;         /* instances started; the next new one is this */
    size_t ok, failed, skipped_items, timed_out, unknown, in_doubt;
    size_t waived; /* of in_doubt: not repeated at the operator's word (resume): the run goes on */
    bh_rerun *reruns;
    size_t nreruns;
} bh_restored_step;

/* List a fan-out's items again (they may depend on restored results) and
 * compare them with the items the run recorded (run->rt[index].items_ref
 * as bh_replay_fill left it): same count, same values for every started
 * item. Writes nothing. Returns 0, or -1 with why. */
int bh_sched_relist(bh_run *run, size_t index, size_t recorded, size_t started, char *why,
                    size_t whylen);
/* Put the steps' state back (after the resume records are written): final
 * statuses and their policies, counters, cadences restarted, reruns queued.
 * Steps whose turn had not come are left to the pump. */
void bh_sched_restore(bh_run *run, const bh_restored_step *steps);

#endif
