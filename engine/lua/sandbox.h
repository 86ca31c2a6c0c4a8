/* sandbox: the environment a runbook runs in, built from an allow-list.
 *
 * Nothing that reaches the file system, the process table or the network is
 * in it: no io, os.execute, debug, package/require, load, dofile, loadfile,
 * collectgarbage or string.dump. Libraries are copied into fresh tables so
 * a runbook cannot change what the engine or another runbook sees, and the
 * string metatable is protected (getmetatable("") returns a fixed string). */
#ifndef BH_SANDBOX_H
#define BH_SANDBOX_H

#include <lua.h>

/* Prepare the state once: remove string.dump from the shared string
 * library (reachable through ("").dump otherwise) and protect the string
 * metatable. Requires luaL_openlibs to have run. */
void bh_sandbox_harden(lua_State *L);

/* Push a new environment table holding only the allowed globals. */
void bh_sandbox_new_env(lua_State *L);

/* Load a runbook's text (never bytecode) as a function whose _ENV is the
 * table at env_idx. chunkname is used in messages (e.g. "@runbook.lua").
 * Returns the lua status; on error the message is on the stack. */
int bh_sandbox_load(lua_State *L, const char *buf, size_t len, const char *chunkname, int env_idx);

#endif
