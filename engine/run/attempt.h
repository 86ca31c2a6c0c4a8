/* attempt: what a primitive knows of the attempt it serves: which attempt
 * the running Lua code works for, the checks every ctx primitive makes,
 * and the names of the files an attempt writes. Below ctx.c and
 * request.c, which both build on it. */
#ifndef BH_ATTEMPT_H
#define BH_ATTEMPT_H

#include <lua.h>

#include "run/run.h"

/* A ctx table's handle (its primitives' upvalue 1): the attempt, cleared
 * when the attempt ends so that a ctx kept past it finds nothing. */
struct bh_ctx_handle {
    bh_attempt *a;
};

/* The attempt behind a ctx primitive (upvalue 1: the ctx handle), checked
 * for misuse; yields when the attempt was stopped meanwhile. */
bh_attempt *bh_attempt_of(lua_State *L, const char *what);
/* The run the runbook's Lua state L works for from now on (NULL: none,
 * after the run): what bh_attempt_current looks in. */
void bh_attempt_set_run(lua_State *L, bh_run *run);
/* The attempt the running Lua code works for, or NULL once it ended. */
bh_attempt *bh_attempt_current(lua_State *L);
/* The run's Lua state works for attempt a from now on (the hooks and the
 * primitives find it), or for none. */
void bh_attempt_enter(bh_attempt *a);
/* Thread L (a coroutine) works for the attempt with this serial (0: none). */
void bh_attempt_bind(lua_State *L, uint64_t serial);
void bh_attempt_leave(bh_attempt *a);
/* FOLDER/STEP[.iK|.rK][.undo].A.N.SUFFIX in the run folder: one name per
 * command; out_path: in out/, where a primitive's output goes. */
char *bh_attempt_path(bh_attempt *a, const char *folder, int n, const char *suffix);
char *bh_attempt_out_path(bh_attempt *a, int n, const char *suffix);

#endif
