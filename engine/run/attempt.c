#include "run/attempt.h"
#include "run/run.h"

#include <lauxlib.h>
#include <string.h>

#include "base/util.h"

/* A thread's extra space holds the serial number of the attempt it works
 * for (0: none). A number, not a pointer: a coroutine the body made can
 * outlive its attempt, and must then find nothing rather than freed memory. */
static uint64_t *extra(lua_State *L) {
    return (uint64_t *)lua_getextraspace(L);
}

/* Its address keys the run a runbook's Lua state works for, in the state's
 * registry: the run belongs to the Lua world, not to the plan. */
static const char RUN_KEY = 0;

void bh_attempt_set_run(lua_State *L, bh_run *run) {
    lua_pushlightuserdata(L, run);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
}

/* The attempt the running Lua code works for, if it is still in flight. */
bh_attempt *bh_attempt_current(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &RUN_KEY);
    bh_run *run = lua_touserdata(L, -1);
    lua_pop(L, 1);
    uint64_t serial = *extra(L);
    return run && serial ? bh_run_attempt(run, serial) : NULL;
}

void bh_attempt_bind(lua_State *L, uint64_t serial) {
    *extra(L) = serial;
}

void bh_attempt_enter(bh_attempt *a) {
    *extra(a->run->L) = a->serial;
}

void bh_attempt_leave(bh_attempt *a) {
    *extra(a->run->L) = 0;
}

/* The attempt behind a ctx primitive, checked for misuse. */
bh_attempt *bh_attempt_of(lua_State *L, const char *what) {
    struct bh_ctx_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    if (!h || !h->a) {
        luaL_error(L, "ctx.%s: this ctx belongs to a step that has already ended", what);
        return NULL; /* not reached: luaL_error does not return */
    }
    if (h->a->co != L)
        luaL_error(L,
                   "ctx.%s must be called from the step's own body, not from a coroutine it "
                   "created",
                   what);
    if (!lua_isyieldable(L))
        luaL_error(L, "ctx.%s cannot wait here (inside a metamethod or an iterator?)", what);
    /* Timed out or cancelled while the body ran Lua code: act no more. The
     * yield (waiting on nothing) hands the attempt back to the scheduler,
     * which ends it. */
    if (h->a->timed_out || h->a->cancelled || h->a->over_budget) lua_yield(L, 0);
    return h->a;
}

/* FOLDER/STEP[.iITEM|.rREP][.undo].ATTEMPT.N.SUFFIX: one name per command. */
char *bh_attempt_path(bh_attempt *a, const char *folder, int n, const char *suffix) {
    char tag[48] = "";
    if (a->step->each_ref != LUA_NOREF)
        snprintf(tag, sizeof tag, ".i%zu", a->item + 1);
    else if (a->step->every_ms > 0)
        snprintf(tag, sizeof tag, ".r%zu", a->item + 1);
    if (a->kind == BH_RUN_UNDO) strcat(tag, ".undo");
    return bh_util_asprintf("%s/%s/%s%s.%d.%d.%s", a->run->dir, folder, a->step->id, tag, a->number,
                            n, suffix);
}

char *bh_attempt_out_path(bh_attempt *a, int n, const char *suffix) {
    return bh_attempt_path(a, "out", n, suffix);
}
