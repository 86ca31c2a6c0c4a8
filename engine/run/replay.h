/* replay: a run read back from its journal, for the engines that work on
 * an existing run (`bulkhead undo`, `bulkhead resume`).
 *
 * The order matters and is the same for both:
 *   open      take the run's lock, read the journal, check its chain as it
 *             will be once a torn last record is cut (nothing is cut yet),
 *             collect every record;
 *   load      load the runbook that ran, from where it ran, with the run's
 *             parameters; refuse when its SHA-256 changed;
 *   fill      put recorded results and fan-out items back into Lua;
 *   attach    only once the engine is sure to append: cut the torn tail,
 *             open the journal for appending; after bh_sched_listen,
 *             record_cut says what was cut.
 * A refusal at any point before attach leaves the journal byte for byte as
 * it was. Messages go to stderr as "bulkhead CMD: ..."; functions return 0
 * or the exit code to use. */
#ifndef BH_REPLAY_H
#define BH_REPLAY_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "journal/history.h"
#include "run/handle.h"
#include "load/runbook.h"

typedef struct {
    const char *cmd;           /* "undo", "resume": for messages */
    char *dir;                 /* the run folder */
    char *jpath;               /* its journal */
    int lock_fd;               /* held from open until handed to the run (or close) */
    bh_history h;              /* every record, in order */
    const bh_hrec *start;      /* run_start (in h) */
    const bh_hrec *end;        /* the last run_end (in h), or NULL */
    const bh_hrec *undo_begin; /* the last undo_begin, or NULL */
    int undo_finished;         /* an undo_finish follows it */
    size_t whole, len;         /* bytes in the file; up to its last '\n' */
    uint64_t cut, cut_at;      /* torn tail cut off by attach */
    bh_runbook *rb;
    const bh_secrets *secrets; /* where the reloaded runbook's secret() looks */
    char **plugin_dirs;        /* where its plugins are: the run's, or as given */
    int owns_dirs;
} bh_replay;

int bh_replay_open(bh_replay *r, const char *cmd, const char *dir);
/* Is an engine answering on the run's control socket? */
int bh_replay_engine_alive(const bh_replay *r);
/* Secrets are read again from their source (r->secrets, the environment):
 * the journal holds none. */
int bh_replay_load(bh_replay *r);
/* Look for the run's plugins in these directories (colon-separated, then
 * $BULKHEAD_PLUGINS and the shipped ones) instead of those it recorded:
 * for a run whose plugins moved. Their SHA-256s are still checked. */
void bh_replay_plugins_from(bh_replay *r, const char *dirs);
/* Recorded results into results[id] (results[id][n] for a fan-out) and
 * the items of fan-outs into run->rt[i].items_ref, from their step_start
 * records. Call after bh_sched_init. */
int bh_replay_fill(bh_replay *r, bh_run *run);
/* Hand the lock to run, cut the torn tail, open the journal for appending
 * into run->journal. */
int bh_replay_attach(bh_replay *r, bh_run *run);
/* A journal_recovered record if attach cut a torn tail. */
void bh_replay_record_cut(bh_replay *r, bh_run *run);
/* Frees what open and load made (not the runbook when taken: r->rb = NULL). */
void bh_replay_close(bh_replay *r);

/* A dry run or drill goes on (resume) or is undone as one: the recorded
 * simulation into *sim (freed with bh_sim_free). Returns 0 for a real run. */
int bh_replay_sim(const bh_replay *r, struct bh_sim *sim);

/* A simulation's clock goes on from the last sim_ms its journal holds,
 * so its records keep one time line. Call after bh_sched_init. */
void bh_replay_continue_clock(const bh_replay *r, bh_run *run);

#endif
