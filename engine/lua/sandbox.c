#include "lua/sandbox.h"

#include <lauxlib.h>
#include <lualib.h>

static const char *const BASE_ALLOWED[] = {
    "assert", "error",        "ipairs",       "next",     "pairs",    "pcall",  "xpcall",
    "select", "tonumber",     "tostring",     "type",     "rawequal", "rawlen", "rawget",
    "rawset", "setmetatable", "getmetatable", "_VERSION", NULL,
};

static const char *const LIBS_COPIED[] = {"string", "table", "math", "utf8", "coroutine", NULL};

static const char *const OS_ALLOWED[] = {"time", "clock", "date", "difftime", NULL};

void bh_sandbox_harden(lua_State *L) {
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* The string metatable is shared by every string in the state: with
     * __metatable set, getmetatable("") returns this text instead of the
     * table, so a runbook cannot replace string methods for the engine. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushliteral(L, "the string metatable is protected");
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void copy_table_into(lua_State *L, int src, int dst, const char *const *only) {
    if (only) {
        for (int i = 0; only[i]; i++) {
            lua_getfield(L, src, only[i]);
            lua_setfield(L, dst, only[i]);
        }
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, dst);
    }
}

/* Names a runbook cannot have, and what to do instead: touching one gives
 * this message rather than "attempt to call a nil value". */
static const struct {
    const char *name, *why;
    int table; /* a library: indexing it explains, too */
} FORBIDDEN[] = {
    {"io", "files are reached through programs run with ctx.exec", 1},
    {"debug", "it can break the sandbox and the engine", 1},
    {"package", "runbooks cannot load modules", 1},
    {"require", "runbooks cannot load modules; plugins come with the engine", 0},
    {"load", "runbooks cannot compile code at run time", 0},
    {"loadstring", "runbooks cannot compile code at run time", 0},
    {"dofile", "runbooks cannot run other files", 0},
    {"loadfile", "runbooks cannot run other files", 0},
    {"collectgarbage", "memory is the engine's to manage", 0},
};

static int explain(lua_State *L) {
    return luaL_error(L, "%s is not available in a runbook: %s",
                      lua_tostring(L, lua_upvalueindex(1)), lua_tostring(L, lua_upvalueindex(2)));
}

static void push_explainer(lua_State *L, const char *name, const char *why) {
    lua_pushstring(L, name);
    lua_pushstring(L, why);
    lua_pushcclosure(L, explain, 2);
}

/* A table whose every read and write raises the explanation. */
static void push_explaining_table(lua_State *L, const char *name, const char *why) {
    lua_newtable(L);
    lua_newtable(L);
    push_explainer(L, name, why);
    lua_setfield(L, -2, "__index");
    push_explainer(L, name, why);
    lua_setfield(L, -2, "__newindex");
    push_explainer(L, name, why);
    lua_setfield(L, -2, "__call");
    lua_pushliteral(L, "protected");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* setmetatable, without finalizers: Lua runs __gc with hooks turned off
 * (lgc.c, GCTM), so no budget, deadline or Ctrl-C could stop a finalizer
 * that loops, at any moment the collector chooses. Lua marks an object for
 * finalization only when its metatable has __gc as it is set (a raw
 * field), so refusing that here is the whole of it. */
static int l_setmetatable(lua_State *L) {
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc (a finalizer) is not allowed: Lua runs "
                                 "finalizers where nothing can stop them (no timeout, no "
                                 "Ctrl-C)");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* Lua's own */
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

void bh_sandbox_new_env(lua_State *L) {
    luaL_checkstack(L, 12, "sandbox");
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    copy_table_into(L, g, env, BASE_ALLOWED);
    for (int i = 0; LIBS_COPIED[i]; i++) {
        lua_getfield(L, g, LIBS_COPIED[i]);
        lua_newtable(L);
        copy_table_into(L, lua_gettop(L) - 1, lua_gettop(L), NULL);
        lua_setfield(L, env, LIBS_COPIED[i]);
        lua_pop(L, 1);
    }
    lua_getfield(L, g, "os");
    lua_newtable(L);
    copy_table_into(L, lua_gettop(L) - 1, lua_gettop(L), OS_ALLOWED);
    /* os.execute, os.remove, os.exit, ...: explained, not nil */
    lua_newtable(L);
    push_explainer(L, "this os function",
                   "only os.time, os.clock, os.date and os.difftime are; run programs with "
                   "ctx.exec");
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, env, "os");
    lua_pop(L, 1);
    lua_getfield(L, env, "string");
    push_explainer(L, "string.dump", "precompiled code is refused");
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    for (size_t i = 0; i < sizeof FORBIDDEN / sizeof FORBIDDEN[0]; i++) {
        if (FORBIDDEN[i].table)
            push_explaining_table(L, FORBIDDEN[i].name, FORBIDDEN[i].why);
        else
            push_explainer(L, FORBIDDEN[i].name, FORBIDDEN[i].why);
        lua_setfield(L, env, FORBIDDEN[i].name);
    }
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, env, "setmetatable");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_pop(L, 1); /* the real globals */
}

int bh_sandbox_load(lua_State *L, const char *buf, size_t len, const char *chunkname, int env_idx) {
    env_idx = lua_absindex(L, env_idx);
    /* Mode "t": precompiled chunks can crash the VM, so text only. */
    int st = luaL_loadbufferx(L, buf, len, chunkname, "t");
    if (st != LUA_OK) return st;
    lua_pushvalue(L, env_idx);
    /* A main chunk's first upvalue is its _ENV. */
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    return LUA_OK;
}
