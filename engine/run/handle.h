/* handle: one execution of a runbook as the rest of the engine holds it:
 * the options it runs with, the statuses its steps go through, and an
 * opaque bh_run. What a run is inside is run.h's, for the modules that
 * carry it out; the others start one (sched.h, resume.h, undo.h), hear of
 * it through its events (events.h) and read it back from its journal.
 * The functions declared here are run.c's. */
#ifndef BH_HANDLE_H
#define BH_HANDLE_H

#include <sys/types.h>

#include "base/util.h"
#include "run/console.h"

typedef struct bh_run bh_run;
typedef struct bh_attempt bh_attempt;

typedef enum {
    BH_STEP_PENDING,
    BH_STEP_RUNNING,
    BH_STEP_OK,
    BH_STEP_FAILED,
    BH_STEP_TIMED_OUT,
    BH_STEP_SKIPPED,
    BH_STEP_CANCELLED,
    BH_STEP_UNDONE,
    BH_STEP_UNKNOWN,  /* in flight when an engine died; the operator chose not to repeat it */
    BH_STEP_IN_DOUBT, /* did not succeed, but may have acted: its undo stays registered */
    BH_STEP_NSTATES
} bh_step_status;

const char *bh_step_status_name(bh_step_status s);

typedef struct {
    const char *state_dir;
    const char *operator_name;
    double timeout_override_ms; /* 0: none */
    bh_console_mode console_mode;
    int concurrency;          /* --concurrency; 0: the default */
    int yes;                  /* --yes: approve every step up front */
    const char **approve;     /* --approve STEP, NULL-terminated */
    int prompt;               /* ask approvals and manual tasks on the terminal */
    struct bh_signer *signer; /* sign checkpoints (sign.h), or NULL */
    int checkpoint_every;     /* records between checkpoints (0: the default) */
    const struct bh_sim *sim; /* dry run or drill (sim.h), NULL for a real run */
    /* --approvers-group: members of this group may use the control socket
     * too (control.h); NULL: only the engine's user (and root). */
    const char *approvers_group;
    gid_t approvers_gid;
} bh_run_opts;

/* Who is running this: given (the option `flag`: --operator, --as), else
 * $BULKHEAD_OPERATOR (empty or blank counts as unset), else the login name;
 * cleaned into out (bh_util_clean_name: trimmed, never blank). Returns 0,
 * or -1 with why, naming where the name came from. */
int bh_run_operator(const char *given, const char *flag, char out[BH_UTIL_NAME_MAX + 1], char *why,
                    size_t whylen);
/* A new run id: UTC start time to the millisecond, runbook id, random. */
char *bh_run_make_id(const char *runbook_id);
/* One engine per run: an exclusive flock on RUNDIR/lock, held (through
 * the returned descriptor, close-on-exec) until the engine exits. -EBUSY
 * when another engine holds it; *holder is then its pid if known. */
int bh_run_lock(const char *dir, int *fd, long *holder);
#endif
