/* scorecard: how a drill (or dry run) went, computed from its journal.
 *
 * Figures, all on the simulation's clock (records' sim_ms):
 *   total_ms               start to end of the run
 *   containment_ms         when the last step of the containment phases
 *                          (contain*, isolat*) ended; null without one;
 *                          contained: each of those steps ended ok (one in
 *                          doubt did not: containment_in_doubt names it)
 *   faults                 each fault_injected, and what became of it:
 *                          absorbed (by retry, continue or rollback; or no
 *                          effect: a slow step that still made it) or
 *                          stopped the run; an attempt in doubt is judged
 *                          as the failure it was, and says in_doubt
 *   in_doubt, may_remain   instances whose final attempt ended in doubt,
 *                          and what those not settled since (remain.h: a
 *                          rollback's undo, say) may have left
 *   approval_wait_ms       time steps spent waiting for approvals
 *   no_undo, no_timeout    containment or destructive steps without an
 *                          undo (and not undo = false); steps without an
 *                          explicit timeout
 *   no_estimate            steps that took no simulated time: no estimate
 *                          in the runbook and no real run to learn from
 * The engine writes one as a `scorecard` record just before run_end, and
 * `bulkhead drills` reads them back. */
#ifndef BH_SCORECARD_H
#define BH_SCORECARD_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "journal/history.h"
#include "load/model.h"

/* h: the journal so far; total_ms and status: the run's
 * simulated duration and its status as run_end will say it. */
cJSON *bh_scorecard_compute(const bh_history *h, const bh_runbook *rb, double total_ms,
                            const char *status);
/* The scorecard for people, a few lines. */
void bh_scorecard_print(const cJSON *sc, FILE *out);
/* The same text in a string the caller frees; NULL when out of memory. */
char *bh_scorecard_text(const cJSON *sc);

#endif
