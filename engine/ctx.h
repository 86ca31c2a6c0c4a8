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

#include "run.h"

/* The attempt behind a ctx primitive (upvalue 1: the ctx handle), checked
 * for misuse; yields when the attempt was stopped meanwhile. For ctx.c and
 * request.c. */
bh_attempt *bh_ctx_attempt_of(lua_State *L, const char *what);
/* The attempt the running Lua code works for, or NULL once it ended. */
bh_attempt *bh_ctx_current(lua_State *L);
/* The file a primitive's output goes to: out/STEP[.iK|.rK][.undo].A.N.SUFFIX */
char *bh_ctx_out_path(bh_attempt *a, int n, const char *suffix);
/* Push a new ctx table for attempt a onto a->co's stack. */
void bh_ctx_push(bh_attempt *a);
/* Detach the attempt from its ctx: later use of that ctx raises an error. */
void bh_ctx_release(bh_attempt *a);
/* Replace the runbook's load-time `print` with one that logs, and back with
 * one that writes to stderr once the run is over (the run is gone then). */
void bh_ctx_install_print(bh_run *run);
void bh_ctx_uninstall_print(bh_run *run);
/* Log a line for the attempt: journal and console. */
void bh_ctx_log(bh_attempt *a, const char *text);

/* The attempt is being resumed / was: coroutines its body creates meanwhile
 * belong to it (their loops are bounded by its deadline). */
void bh_ctx_enter(bh_attempt *a);
void bh_ctx_leave(bh_attempt *a);
/* Push the simulation's hook (see the step wrapper); dry runs and drills. */
void bh_ctx_push_sim(bh_attempt *a);
/* Push the health gate's bookkeeping function (see the step wrapper). */
void bh_ctx_push_gate(bh_attempt *a);

/* Stop a pending ctx.sleep early (timeout, Ctrl-C); the body is not resumed. */
void bh_ctx_stop_sleep(bh_attempt *a);

#endif
