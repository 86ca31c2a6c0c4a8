/* events: what happens in a run, told to whoever listens.
 *
 * The scheduler and the step primitives say what happens (a phase begins,
 * an attempt starts or ends, a log line, a notice, a record to keep) by
 * emitting an event; subscribers do something with it. The journal writer
 * keeps records (run.c), the console shows people the rest and, with
 * --json, the journal's lines as written (console.c); a web console is
 * one more subscriber. Delivery is synchronous, in the order of
 * subscription: when bh_events_emit returns, every subscriber has had the
 * event (the journal writer first, so a record is written before anyone
 * is told of it). Events point into the caller's memory: a subscriber
 * copies what it keeps. */
#ifndef BH_EVENTS_H
#define BH_EVENTS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum {
    BH_EV_RUN_START,          /* name: run id; title, dir, mode, count: steps */
    BH_EV_PHASE,              /* name: the phase */
    BH_EV_ATTEMPT_START,      /* name: its label, "isolate[web1]" */
    BH_EV_ATTEMPT_END,        /* name, status, ms, text: a detail (an error) or NULL */
    BH_EV_ATTEMPT_UNRECORDED, /* name, status, ms, err: its end could not be written */
    BH_EV_STEP_SKIPPED,       /* name: the step, text: why */
    BH_EV_LOG,                /* name: the step, text: the line */
    BH_EV_NOTICE,             /* text: something a person should know */
    BH_EV_TEXT,               /* text: lines as they are (a scorecard) */
    BH_EV_RUN_END,            /* name: run id, status, ms, text: the counts */
    BH_EV_RECORD,             /* record: to keep in the journal (its subscriber sets err) */
    BH_EV_LINE,               /* line, len: a journal line as written */
} bh_event_kind;

typedef struct {
    bh_event_kind kind;
    const char *name, *status, *text;
    const char *title, *dir, *mode;
    size_t count;
    double ms;
    int err;
    cJSON *record;
    const char *line;
    size_t len;
} bh_event;

typedef void (*bh_event_fn)(void *ud, bh_event *ev);
typedef struct bh_events bh_events;

bh_events *bh_events_new(void);
void bh_events_free(bh_events *e);
/* fn(ud, ev) for every event from now on. */
void bh_events_subscribe(bh_events *e, bh_event_fn fn, void *ud);
void bh_events_emit(const bh_events *e, bh_event *ev);

/* The events by kind, for the callers (the fields as above). */
void bh_events_run_start(const bh_events *e, const char *run_id, const char *title, const char *dir,
                         size_t nsteps, const char *mode);
void bh_events_phase(const bh_events *e, const char *phase);
void bh_events_step_start(const bh_events *e, const char *label);
void bh_events_step_end(const bh_events *e, const char *label, const char *status, double ms,
                        const char *detail);
void bh_events_step_unrecorded(const bh_events *e, const char *label, const char *status, double ms,
                               int err);
void bh_events_step_skipped(const bh_events *e, const char *step, const char *reason);
void bh_events_log(const bh_events *e, const char *step, const char *text);
void bh_events_notice(const bh_events *e, const char *text);
void bh_events_text(const bh_events *e, const char *text);
void bh_events_run_end(const bh_events *e, const char *run_id, const char *status, double ms,
                       const char *counts);

#endif
