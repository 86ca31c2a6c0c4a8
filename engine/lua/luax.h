/* luax: the one way into Lua, and conversions between Lua and JSON.
 *
 * Every call into runbook code goes through bh_luax_pcall (or, for step
 * coroutines, bh_luax_error_info after lua_resume): a message handler turns
 * any error value into a structured error (code, message, source, line,
 * traceback), because errors end up in the journal, not only on a screen. */
#ifndef BH_LUAX_H
#define BH_LUAX_H

#include <cjson/cJSON.h>
#include <lua.h>

/* A structured error, all strings malloc'd (NULL when unknown). */
typedef struct {
    char *code;      /* "lua_error", "exec_failed", ... */
    char *message;   /* without the traceback */
    char *source;    /* chunk name of the innermost Lua frame, e.g. "runbook.lua" */
    int line;        /* its current line, 0 when unknown */
    char *traceback; /* "stack traceback:\n..." */
} bh_luax_error;

void bh_luax_error_free(bh_luax_error *e);
/* {"code":..,"message":..,"source":..,"line":..,"traceback":..} */
cJSON *bh_luax_error_json(const bh_luax_error *e);

/* Raise a structured error from C: a table {code=, message=} with a
 * __tostring metamethod, plus any extra fields already set on the table at
 * the top of the stack if extra != 0. The message gets "file:line: " of the
 * calling Lua code in front, like luaL_error. Never returns. */
int bh_luax_raise(lua_State *L, const char *code, const char *fmt, ...);

/* lua_pcall with a message handler. On error fills *err (if not NULL) and
 * pops the error. Returns the lua status. */
int bh_luax_pcall(lua_State *L, int nargs, int nresults, bh_luax_error *err);

/* After lua_resume returned an error on thread co: build *err from the error
 * value on co's stack and co's still-intact call stack (the traceback). */
void bh_luax_error_from_thread(lua_State *co, bh_luax_error *err);

/* Install the metatable used for structured errors (call once per state). */
void bh_luax_init(lua_State *L);

/* Convert the Lua value at idx to JSON. Tables with keys 1..n (and no
 * others) become arrays, tables with string keys objects, an empty table an
 * empty object. Returns NULL and a reason in why (e.g. "a function at
 * .hosts[2]") for values JSON cannot hold, cycles, or nesting over 64. */
cJSON *bh_luax_to_json(lua_State *L, int idx, char *why, size_t whylen);

/* Push a JSON value as Lua; JSON null becomes nil. Raises a Lua error when
 * the stack cannot grow (deeply nested input). */
void bh_luax_push_json(lua_State *L, const cJSON *v);

/* lua_checkstack or raise "stack overflow". */
void bh_luax_checkstack(lua_State *L, int n);

#endif
