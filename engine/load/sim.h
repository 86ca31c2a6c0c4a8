/* sim: dry runs and drills.
 *
 * In both, the runbook's own logic runs (conditions, fan-out lists, bodies,
 * health gates, undo functions) on a virtual clock (clock.h), and nothing
 * with a side effect does: every action goes through a bh_fx that records
 * exactly what it would have done and hands back a simulated success, or
 * what the step's `simulate = {...}` (or --simulate STEP=JSON) scripts.
 * Approvals are granted automatically and manual tasks completed, each
 * recorded as such ("how": "simulated").
 *
 * A drill adds faults, decided per attempt from the step, the item, the
 * attempt number and the seed alone (never from the order things happen
 * to run in), so the same seed gives the same drill:
 *   fail      the attempt fails as it starts (error code injected_failure)
 *   timeout   the attempt hangs until its step timeout
 *   slow      the attempt takes FACTOR times its estimate
 *   flaky P   fails with probability P
 *   chaos P   every attempt: a fault with probability P (fail, timeout or
 *             slow x3, chosen by the seed)
 * Each fault is recorded (`fault_injected`) before it acts.
 *
 * Simulated time: each attempt takes its step's estimate (`estimate =
 * "2m"` in the runbook, else the median of that step's successful attempts
 * in earlier real runs of the runbook, else nothing), waits (ctx.sleep,
 * backoffs, cadences) take their stated time, and approvals take
 * --approval-wait. */
#ifndef BH_SIM_H
#define BH_SIM_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "effects/fx.h"
#include "load/model.h"

typedef enum { BH_FAULT_NONE, BH_FAULT_FAIL, BH_FAULT_TIMEOUT, BH_FAULT_SLOW } bh_fault_kind;

typedef struct {
    bh_fault_kind kind;
    double factor;      /* slow */
    const char *source; /* "--fail", "--flaky", "--chaos", ... for the record */
} bh_fault;

typedef struct {
    const char *step;
    double value; /* a slow factor or a probability */
} bh_sim_rule;

typedef struct bh_sim {
    int drill; /* 0: dry run */
    uint64_t seed;
    const char **fail, **timeout; /* step ids, NULL-terminated (or NULL) */
    bh_sim_rule *slow, *flaky;
    size_t nslow, nflaky;
    double chaos;            /* probability of a fault in any attempt */
    double approval_wait_ms; /* simulated time an approval takes */
    cJSON *scripts;          /* step id -> {exit, stdout, stderr, result}: --simulate */
    cJSON *history;          /* step id -> median ms of earlier real runs */
} bh_sim;

/* "dry-run" or "drill". */
const char *bh_sim_mode(const bh_sim *sim);
/* What happens to this attempt. key names the fan-out item (its key, not
 * its index, so that a relisted or reordered list keeps its faults). */
bh_fault bh_sim_fault(const bh_sim *sim, const bh_step *s, const char *key, int attempt);
/* kind, factor (slow) and source of a fault, into a fault_injected record. */
void bh_sim_fault_fields(cJSON *rec, const bh_fault *f);
/* A number in [0, 1) from the seed and these names alone. */
double bh_sim_uniform(const bh_sim *sim, const char *what, const char *step, const char *key,
                      int attempt);
/* The step's simulated duration and where it comes from ("runbook",
 * "history" or NULL when there is none: 0 ms). */
double bh_sim_estimate(const bh_sim *sim, const bh_step *s, const char **source);
/* What the step's actions give back: --simulate over the runbook's. NULL:
 * plain success. */
const cJSON *bh_sim_script(const bh_sim *sim, const bh_step *s);
/* The drill's settings, for run_start (so resume and undo can rebuild it). */
cJSON *bh_sim_to_json(const bh_sim *sim);
/* ... and back. Strings point into j, which must outlive the sim. */
void bh_sim_from_json(bh_sim *sim, const cJSON *j);
void bh_sim_free(bh_sim *sim); /* what from_json or the command line allocated */

/* Median durations of each step's successful attempts in the real runs
 * of runbook `id` under state_dir (step id -> ms), or NULL if none. */
cJSON *bh_sim_history(const char *state_dir, const char *id);

/* The effects of a dry run or drill: exec never starts a process; it
 * completes on the clock with the request's script (exit, stdout,
 * stderr), or exit 0 and no output. */
bh_fx *bh_fx_sim(uv_loop_t *loop, bh_clock *clock, const char *mode);

#endif
