/* plugin: action modules a runbook uses by name.
 *
 * A plugin is a Lua file NAME.lua in a plugin directory: the user's own
 * (--plugins DIR, $BULKHEAD_PLUGINS, colon-separated; searched first) and
 * the shipped plugins/. It runs in the runbook's sandbox (no io, no os,
 * acting only through ctx) and returns
 *
 *   return {
 *     doc = "what the plugin is for",
 *     actions = {
 *       isolate = {
 *         doc = "...",
 *         params = { host = { type = "string", required = true, doc = "..." }, ... },
 *         run = function(ctx, p, item, result) ... end,  -- does the work
 *         describe = function(p, item, each) return "what it would do" end,
 *                                -- item: at run time; each: in a plan, the
 *                                -- step fans out (no item yet)
 *         undo = "release",      -- the action that puts it back (same plugin)
 *         idempotent = true, destructive = true,
 *         check = true,          -- a health check: run returns healthy, why
 *         changes = false,       -- it changes nothing (nothing to undo)
 *         validate = function(p) return nil or "why not" end, -- more checks
 *       },
 *     },
 *   }
 *
 * Parameter types: string, number, boolean, list, map, table (either),
 * function, any. A plugin may `require` another Lua file or a C module
 * (NAME.so, opened with package.loadlib) from the plugin directories only.
 *
 * The first time a runbook names a global NAME that is not defined, the
 * plugin NAME is loaded (once per runbook; the file's path and SHA-256 are
 * kept for the run_start record). `firewall.isolate { allow = {"smtp"} }`
 * checks the parameters against the schema right there (an error points
 * at the runbook's line) and returns an action value, which a step uses as
 * `action =` (the body), `undo =` or `verify =`. */
#ifndef BH_PLUGIN_H
#define BH_PLUGIN_H

#include <cjson/cJSON.h>
#include <lua.h>

#include "load/model.h"

/* The plugin directories, in search order: dirs given (colon-separated,
 * may be NULL), $BULKHEAD_PLUGINS, then the shipped ones that exist.
 * NULL-terminated; free with bh_plugin_free_dirs. */
char **bh_plugin_dirs(const char *given);
void bh_plugin_free_dirs(char **dirs);

/* Make the runbook environment at env load plugins on first use. */
void bh_plugin_install(lua_State *L, bh_runbook *rb, int env);
/* What every action calls before it acts, as record(ctx, plugin, action,
 * params, item, description): a run sets the function that journals it
 * (ctx.c); NULL, or none set (plan, check), records nothing. */
void bh_plugin_set_recorder(lua_State *L, lua_CFunction fn);

/* Is the value at idx an action value? */
int bh_plugin_is_action(lua_State *L, int idx);

/* What a step does with an action value at idx: push a Lua function the
 * step wrapper can call.
 *   BH_PLUGIN_RUN      function(ctx, item): the step's body
 *   BH_PLUGIN_UNDO     function(ctx, item, result): this action as an undo
 *   BH_PLUGIN_UNDO_OF  the same for the action's declared undo (nil pushed
 *                      when it declares none)
 *   BH_PLUGIN_VERIFY   function(ctx, result, item): a health check */
typedef enum { BH_PLUGIN_RUN, BH_PLUGIN_UNDO, BH_PLUGIN_UNDO_OF, BH_PLUGIN_VERIFY } bh_plugin_use;
void bh_plugin_push_function(lua_State *L, int idx, bh_plugin_use use);

/* Facts about the action value at idx: "plugin.action", its flags, and
 * describe(params, nil, each) for people (malloc'd, may be NULL); each says
 * the step fans out (the action will run once per item). */
typedef struct {
    char *name;
    char *description;
    int idempotent, destructive, check, has_undo;
    int changes_nothing; /* a check, or changes = false: no undo needed */
    char *effect;        /* what it leaves on its target ("isolated"), or NULL */
} bh_plugin_info;
void bh_plugin_info_of(lua_State *L, int idx, int each, bh_plugin_info *out);
void bh_plugin_info_free(bh_plugin_info *info);

/* `bulkhead plugins [NAME]`: every plugin (or one), with its actions and
 * their parameters, as JSON; NULL with why when NAME cannot be loaded. */
cJSON *bh_plugin_catalog(char *const *dirs, const char *only, char *why, size_t whylen);

#endif
