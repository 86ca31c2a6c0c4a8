/* remain: what in-doubt instances may have left, read from a run's records.
 *
 * An attempt that did not succeed but may have acted ends `in_doubt`
 * (sched.c), its step_end saying why (`doubt`) and what may remain
 * (`may_remain`). The instance stays in doubt until a later attempt of it
 * succeeds or an undo of it does; `runs`, `show`, the after-action report
 * and the drill scorecard all list what is still in doubt at the end of the
 * journal, and they all read it here so that they cannot disagree.
 *
 * Feed every record, in journal order, to bh_remain_note. An instance is
 * one (step, item, rep). What counts:
 *   step_end in_doubt, next not retry   it is in doubt (again): open
 *   step_end in_doubt, next retry       the next attempt decides; if that
 *                                       retry is cancelled (retry_cancelled:
 *                                       the run stopped in the backoff), the
 *                                       doubt stays: open
 *   step_end ok                         resolved: "a later attempt" (one
 *                                       open, or one waiting for this retry)
 *   step_end of another status, after   open: a retry's failure does not
 *   an in-doubt attempt's retry         take back what may have been done
 *   undo_end ok                         resolved: "undo"
 *   undo_end not ok                     still open, with undo = "failed"
 *   undo_begin in_doubt_without_undo    still open, with undo = "none"
 *   step_start, then an acting          in flight; open at the end of a
 *   exec_start or request_start,       journal without its run_end (the
 *   and no step_end                     engine died), with in_flight: true
 * An open entry: step, item and rep (when > 0), attempt, may_remain, doubt,
 * ts and sim_ms of the record that opened it, and undo when one is known.
 * A resolved entry is the open one with by = "a later attempt" or "undo"
 * and resolved_ts. */
#ifndef BH_REMAIN_H
#define BH_REMAIN_H

#include <cjson/cJSON.h>

#include "journal/history.h"

typedef struct {
    cJSON *open;     /* array: what may remain, oldest first */
    cJSON *resolved; /* array: what was in doubt and no longer is */
    cJSON *pending;  /* array: in doubt with a retry due (internal) */
    cJSON *flight;   /* array: attempts started and not ended (internal) */
    int ended;       /* the journal's last word on the run is a run_end */
} bh_remain;

void bh_remain_init(bh_remain *r);
void bh_remain_free(bh_remain *r);
/* After the last record: an attempt that had started a command or request
 * that acts and has no end, in a journal that does not end with a
 * run_end (its engine died with it, or is still at it), is open too, with
 * in_flight: true. */
void bh_remain_end(bh_remain *r);
/* init, every record of a history, end: where they stand at its end. */
void bh_remain_read(bh_remain *r, const bh_history *h);
/* "web1 may still be isolated" (effect "isolated"), or without an effect
 * "web1 may have acted: what step 'isolate' does may remain"; who is the
 * fan-out item's key, else the step. The one wording, for sched.c too. */
void bh_remain_text(const char *who, const char *step, const char *effect, char *out, size_t len);
/* Read one record. Returns the entry it opened, changed or resolved (owned
 * by r, for the caller to annotate), or NULL when it changes nothing. */
cJSON *bh_remain_note(bh_remain *r, const bh_hrec *rec);

#endif
