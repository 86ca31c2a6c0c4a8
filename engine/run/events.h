/* events: what happens in a run, told to whoever listens.
 *
 * The scheduler and the step primitives say what happens (a phase begins, an
 * attempt starts or ends, approvals and manual tasks are asked for and
 * answered, a health gate is tried, a command's output arrives, a log line, a
 * notice, an interrupt, a record to keep) by emitting an event; subscribers do
 * something with it. The journal writer keeps records (run.c), the console
 * shows people the rest and, with --json, the journal's lines as written
 * (console.c), the control socket answers what a run waits on from them
 * (socket.c); a web console is one more subscriber. None of them reads the run
 * itself. Delivery is synchronous, in the order of subscription: when
 * bh_events_emit returns, every subscriber has had the event (the journal
 * writer first, so a record is written before anyone is told of it). Events
 * point into the caller's memory: a subscriber copies what it keeps. */
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
    BH_EV_APPROVAL_ASKED,     /* name: the step, text: why it needs approval, count: needed */
    BH_EV_APPROVAL_GIVEN,     /* name, status: "approve" or "deny", text: who, count: so far */
    BH_EV_APPROVAL_CLOSED,    /* name: the step no longer waits, status: its status */
    BH_EV_MANUAL_ASKED,       /* name: the attempt's label, title: the step */
    BH_EV_MANUAL_ANSWERED,    /* name: the label, status: "done" or "failed", text: who */
    BH_EV_GATE_TRY,           /* name: the label, count: the try, status: "healthy" or
                                 "unhealthy", text: why not */
    BH_EV_INTERRUPT,          /* name: the signal, text: what the run does about it */
    BH_EV_OUTPUT,             /* name: the label, status: "stdout" or "stderr", line, len:
                                 a chunk of a command's output, masked, as it arrives */
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
/* fn(ud, ...) hears nothing more, from the next event on. */
void bh_events_unsubscribe(bh_events *e, bh_event_fn fn, void *ud);
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
void bh_events_approval_asked(const bh_events *e, const char *step, const char *why, size_t needed);
void bh_events_approval_given(const bh_events *e, const char *step, const char *decision,
                              const char *by, size_t approvals);
void bh_events_approval_closed(const bh_events *e, const char *step, const char *status);
void bh_events_manual_asked(const bh_events *e, const char *label, const char *step);
void bh_events_manual_answered(const bh_events *e, const char *label, const char *outcome,
                               const char *by);
void bh_events_gate_try(const bh_events *e, const char *label, size_t n, int healthy,
                        const char *why);
void bh_events_interrupt(const bh_events *e, const char *signal, const char *action);
void bh_events_output(const bh_events *e, const char *label, int stream, const char *buf, size_t n);

#endif
