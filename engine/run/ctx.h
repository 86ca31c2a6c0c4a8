/* ctx: the table a step body receives, and the primitives on it.
 *
 * ctx.exec, ctx.sh and ctx.sleep start their work on the loop, remember it
 * in the attempt and yield the step's coroutine; the completion callback
 * resumes it (bh_sched_resume) and a continuation turns the outcome into a
 * return value or a structured error. Acting primitives go through the
 * run's bh_fx, never straight to bh_exec. */
#ifndef BH_CTX_H
#define BH_CTX_H

#include <lua.h>

#include "run/attempt.h"

/* Push a new ctx table for attempt a onto a->co's stack. */
void bh_ctx_push(bh_attempt *a);
/* Detach the attempt from its ctx: later use of that ctx raises an error. */
void bh_ctx_release(bh_attempt *a);
/* For the run: the runbook's load-time `print` replaced with one that
 * logs, and the recorder of actions set (plugin.h); at its end, a `print`
 * that writes to stderr (the run is gone then) and no recorder. */
void bh_ctx_install(bh_run *run);
void bh_ctx_uninstall(bh_run *run);
/* Log a line for the attempt: journal and console. */
void bh_ctx_log(bh_attempt *a, const char *text);

/* Push the simulation's hook (see the step wrapper); dry runs and drills. */
void bh_ctx_push_sim(bh_attempt *a);
/* Push the health gate's bookkeeping function (see the step wrapper). */
void bh_ctx_push_gate(bh_attempt *a);

/* Stop a pending ctx.sleep early (timeout, Ctrl-C); the body is not resumed. */
void bh_ctx_stop_sleep(bh_attempt *a);

#endif
