#include "run/events.h"

#include <stdlib.h>

#include "base/util.h"

#define MAX_SUBSCRIBERS 8

struct bh_events {
    struct {
        bh_event_fn fn;
        void *ud;
    } sub[MAX_SUBSCRIBERS];
    size_t n;
};

bh_events *bh_events_new(void) {
    return bh_util_xcalloc(1, sizeof(bh_events));
}

void bh_events_free(bh_events *e) {
    free(e);
}

void bh_events_subscribe(bh_events *e, bh_event_fn fn, void *ud) {
    for (size_t i = 0; i < e->n; i++) { /* a slot left empty */
        if (!e->sub[i].fn) {
            e->sub[i].fn = fn;
            e->sub[i].ud = ud;
            return;
        }
    }
    if (e->n == MAX_SUBSCRIBERS) abort(); /* a fixed set, known at build time */
    e->sub[e->n].fn = fn;
    e->sub[e->n].ud = ud;
    e->n++;
}

/* The slot is emptied, not closed up: a subscriber may leave while an
 * event is being delivered, and the others must still get it. */
void bh_events_unsubscribe(bh_events *e, bh_event_fn fn, void *ud) {
    for (size_t i = 0; i < e->n; i++)
        if (e->sub[i].fn == fn && e->sub[i].ud == ud) e->sub[i].fn = NULL;
}

void bh_events_emit(const bh_events *e, bh_event *ev) {
    for (size_t i = 0; e && i < e->n; i++)
        if (e->sub[i].fn) e->sub[i].fn(e->sub[i].ud, ev);
}

static void say(const bh_events *e, bh_event ev) {
    bh_events_emit(e, &ev);
}

void bh_events_run_start(const bh_events *e, const char *run_id, const char *title, const char *dir,
                         size_t nsteps, const char *mode) {
    say(e, (bh_event){.kind = BH_EV_RUN_START,
                      .name = run_id,
                      .title = title,
                      .dir = dir,
                      .count = nsteps,
                      .mode = mode});
}

void bh_events_phase(const bh_events *e, const char *phase) {
    say(e, (bh_event){.kind = BH_EV_PHASE, .name = phase});
}

void bh_events_step_start(const bh_events *e, const char *label) {
    say(e, (bh_event){.kind = BH_EV_ATTEMPT_START, .name = label});
}

void bh_events_step_end(const bh_events *e, const char *label, const char *status, double ms,
                        const char *detail) {
    say(e,
        (bh_event){
            .kind = BH_EV_ATTEMPT_END, .name = label, .status = status, .ms = ms, .text = detail});
}

void bh_events_step_unrecorded(const bh_events *e, const char *label, const char *status, double ms,
                               int err) {
    say(e, (bh_event){.kind = BH_EV_ATTEMPT_UNRECORDED,
                      .name = label,
                      .status = status,
                      .ms = ms,
                      .err = err});
}

void bh_events_step_skipped(const bh_events *e, const char *step, const char *reason) {
    say(e, (bh_event){.kind = BH_EV_STEP_SKIPPED, .name = step, .text = reason});
}

void bh_events_log(const bh_events *e, const char *step, const char *text) {
    say(e, (bh_event){.kind = BH_EV_LOG, .name = step, .text = text});
}

void bh_events_notice(const bh_events *e, const char *text) {
    say(e, (bh_event){.kind = BH_EV_NOTICE, .text = text});
}

void bh_events_text(const bh_events *e, const char *text) {
    say(e, (bh_event){.kind = BH_EV_TEXT, .text = text});
}

void bh_events_run_end(const bh_events *e, const char *run_id, const char *status, double ms,
                       const char *counts) {
    say(e, (bh_event){
               .kind = BH_EV_RUN_END, .name = run_id, .status = status, .ms = ms, .text = counts});
}

void bh_events_approval_asked(const bh_events *e, const char *step, const char *why,
                              size_t needed) {
    say(e, (bh_event){.kind = BH_EV_APPROVAL_ASKED, .name = step, .text = why, .count = needed});
}

void bh_events_approval_given(const bh_events *e, const char *step, const char *decision,
                              const char *by, size_t approvals) {
    say(e, (bh_event){.kind = BH_EV_APPROVAL_GIVEN,
                      .name = step,
                      .status = decision,
                      .text = by,
                      .count = approvals});
}

void bh_events_approval_closed(const bh_events *e, const char *step, const char *status) {
    say(e, (bh_event){.kind = BH_EV_APPROVAL_CLOSED, .name = step, .status = status});
}

void bh_events_manual_asked(const bh_events *e, const char *label, const char *step) {
    say(e, (bh_event){.kind = BH_EV_MANUAL_ASKED, .name = label, .title = step});
}

void bh_events_manual_answered(const bh_events *e, const char *label, const char *outcome,
                               const char *by) {
    say(e, (bh_event){.kind = BH_EV_MANUAL_ANSWERED, .name = label, .status = outcome, .text = by});
}

void bh_events_gate_try(const bh_events *e, const char *label, size_t n, int healthy,
                        const char *why) {
    say(e, (bh_event){.kind = BH_EV_GATE_TRY,
                      .name = label,
                      .count = n,
                      .status = healthy ? "healthy" : "unhealthy",
                      .text = why});
}

void bh_events_interrupt(const bh_events *e, const char *signal, const char *action) {
    say(e, (bh_event){.kind = BH_EV_INTERRUPT, .name = signal, .text = action});
}

void bh_events_output(const bh_events *e, const char *label, int stream, const char *buf,
                      size_t n) {
    say(e, (bh_event){.kind = BH_EV_OUTPUT,
                      .name = label,
                      .status = stream ? "stderr" : "stdout",
                      .line = buf,
                      .len = n});
}
