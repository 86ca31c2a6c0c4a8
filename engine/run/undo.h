/* undo: putting things back after the run (a rollback inside a run is
 * rollback.h). `bulkhead undo RUN [--step STEP]`: the undo of every
 * completed instance, newest first, for a finished run (lift containment at the all-clear, or after
 * a drill), appended to that run's journal. Completions and results come
 * from the journal, the runbook is loaded again (it must be the same file,
 * by SHA-256) with the run's parameters.
 *
 * An instance whose undo_end says ok is never undone again, so an
 * interrupted `undo` can simply be run again. An undo cut off without an
 * undo_end (the engine died) has an unknown outcome: it runs again only if
 * the step is idempotent or with --retry-unknown. A failed undo is recorded
 * and the others still run. */
#ifndef BH_UNDO_H
#define BH_UNDO_H

#include "journal/history.h"
#include "run/handle.h"
#include "run/sched.h"

typedef struct {
    const char *run_dir;
    const char *step;  /* only this step's instances, or NULL */
    int retry_unknown; /* also undo instances whose earlier undo was cut off */
    const bh_run_opts *run_opts;
    const bh_secrets *secrets; /* where the runbook's secret() looks */
    const char *plugins;       /* --plugins: where the run's plugins are now, or NULL */
    /* --settle LABEL --note TEXT: record that a person checked what the
     * in-doubt instances LABEL names (STEP, STEP[KEY]) may have left, and
     * that it is settled; nothing is undone. */
    const char *settle, *note;
} bh_undo_opts;

/* From a journal's records (h): the completed instances not yet undone
 * into run->done_list (completion order; undo_pos at its end), only those
 * of only_step if given. An instance in doubt counts as completed (it may
 * have acted): one whose last attempt ended in_doubt, or whose retry after
 * an in-doubt attempt was cancelled (retry_cancelled: the run stopped). An undo cut off without its
 * undo_end, or cancelled by an interrupt, has an unknown outcome and is left out (its key "STEP#N"
 * added to unknown_skipped) unless the step is idempotent or retry_unknown. history: instances
 * undone / whose last undo failed. undone (per step, or NULL): every completed instance of it is
 * undone. */
void bh_undo_plan(const bh_runbook *rb, const bh_history *h, const char *only_step,
                  int retry_unknown, bh_run *run, cJSON *unknown_skipped, size_t history[2],
                  unsigned char *undone);

/* Exit-code style outcome; messages go to stderr. (opts->settle: what
 * bh_undo_settle does.) */
int bh_undo_run(const bh_undo_opts *opts);
int bh_undo_settle(const bh_undo_opts *opts);

#endif
