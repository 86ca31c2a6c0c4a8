/* resume: go on with a run whose engine died (killed, crashed, the host
 * rebooted) or was interrupted (Ctrl-C, SIGTERM, a journal write error).
 *
 * Everything comes from the journal (replay.h): completed steps never run
 * again and their recorded results are what later steps see; steps whose
 * turn had not come run as usual; a retry that was waiting runs.
 *
 * An attempt that was in flight (a step_start without its step_end, or
 * one the interruption cancelled) has an unknown outcome: its side effect
 * may or may not have happened. It runs again by itself only when that is
 * safe: the step is idempotent, it is a manual task (the person is asked
 * again), or it is a cadence's repetition (not repeated: the next one comes
 * anyway). Otherwise the operator decides, before anything is appended:
 * --retry-unknown / --skip-unknown (for every step, or =STEP,...), or the
 * prompt when stdin is a terminal; with neither, resume refuses and says
 * which flag to give. A skipped instance ends with status "unknown" and the
 * run goes on. Each decision is an `unknown_outcome` record.
 *
 * Commands a dead engine left running (found by BULKHEAD_RUN_ID in their
 * environment) are stopped, SIGTERM then SIGKILL, before anything runs
 * again, and listed in the `run_resumed` record.
 *
 * A run that was rolling back goes on rolling back; one that had already
 * failed stops as a failed run would (skips the rest, rolls back if its
 * policy says so). Runs that ended ok or failed are not resumable. */
#ifndef BH_RESUME_H
#define BH_RESUME_H

#include "run/handle.h"
#include "base/secrets.h"

typedef struct {
    const char *run_dir;
    const bh_run_opts *run_opts;
    int retry_all, skip_all;   /* --retry-unknown / --skip-unknown */
    const char **retry_steps;  /* --retry-unknown=STEP,...: NULL-terminated, or NULL */
    const char **skip_steps;   /* --skip-unknown=STEP,... */
    int ask;                   /* stdin is a terminal: ask about the rest */
    const bh_secrets *secrets; /* where secret() looks again */
    const char *plugins;       /* --plugins: where the run's plugins are now, or NULL */
    /* bulkhead undo --abandon: end the dead run here instead of going on:
     * every unknown outcome skipped (what may have acted ends in doubt),
     * nothing new started, run_end "abandoned"; undo.c then undoes. */
    int abandon;
} bh_resume_opts;

/* Exit-code style outcome, as `run` (docs/cli.md); messages go to stderr. */
int bh_resume_run(const bh_resume_opts *opts);

#endif
