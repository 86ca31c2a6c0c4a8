#include "load/plugin.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/guard.h"
#include "lua/luax.h"
#include "lua/sandbox.h"
#include "base/util.h"

static const char REG_PLUGINS[] = "bulkhead.plugins"; /* name -> validated plugin table */
static const char ACTION_MT[] = "bulkhead.action";
static char FACTORY_KEY;
static char RECORDER_KEY;

/* --- where plugins are ------------------------------------------------------ */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Code is loaded from a plugin directory: only one that no one else can
 * write to (owned by root or by us, not group- or world-writable). A
 * stray /tmp/plugins must never be picked up. */
static int dir_safe(const char *d, int say) {
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return 1; /* nothing there to load */
    const char *why = NULL;
    if (st.st_uid != 0 && st.st_uid != geteuid())
        why = "owned by another user";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        why = "writable by group or others";
    if (!why) return 1;
    if (say)
        fprintf(stderr, "bulkhead: plugin directory %s is %s (mode %04o): not used\n", d, why,
                (unsigned)(st.st_mode & 07777));
    return 0;
}

static void add_dir(char ***v, size_t *n, const char *d) {
    if (!d || !*d) return;
    for (size_t k = 0; k < *n; k++)
        if (strcmp((*v)[k], d) == 0) return;
    *v = realloc(*v, (*n + 2) * sizeof **v);
    if (!*v) abort();
    (*v)[(*n)++] = bh_util_xstrdup(d);
    (*v)[*n] = NULL;
}

static void add_list(char ***v, size_t *n, const char *list) {
    if (!list) return;
    char *copy = bh_util_xstrdup(list);
    for (char *save = NULL, *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        /* absolute: the run records them, and resume may run elsewhere */
        char *real = realpath(t, NULL);
        if (dir_safe(real ? real : t, 1)) add_dir(v, n, real ? real : t);
        free(real);
    }
    free(copy);
}

char **bh_plugin_dirs(const char *given) {
    char **v = bh_util_xcalloc(1, sizeof *v);
    size_t n = 0;
    add_list(&v, &n, given);
    add_list(&v, &n, getenv("BULKHEAD_PLUGINS"));
    /* The shipped ones: next to the binary in a source tree (build/../plugins),
     * or installed (PREFIX/share/bulkhead/plugins). */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const char *rel[] = {"/../plugins", "/../../plugins", "/../share/bulkhead/plugins"};
            for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
                char *d = bh_util_asprintf("%s%s", exe, rel[k]);
                char *real = realpath(d, NULL);
                if (real && is_dir(real) && dir_safe(real, 0)) add_dir(&v, &n, real);
                free(real);
                free(d);
            }
        }
    }
    char *installed = bh_util_asprintf("%s/plugins", BH_DATADIR);
    if (is_dir(installed) && dir_safe(installed, 1)) add_dir(&v, &n, installed);
    free(installed);
    return v;
}

void bh_plugin_free_dirs(char **dirs) {
    for (char **p = dirs; p && *p; p++)
        free(*p);
    free(dirs);
}

static int name_ok(const char *name) {
    if (!name || !*name || strlen(name) > 64) return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_' || (c > name && *c >= '0' && *c <= '9')))
            return 0;
    return 1;
}

/* The first dir/NAME.SUFFIX that exists, malloc'd, or NULL. */
static char *find_file(char *const *dirs, const char *name, const char *suffix) {
    for (char *const *d = dirs; d && *d; d++) {
        char *p = bh_util_asprintf("%s/%s%s", *d, name, suffix);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return p;
        free(p);
    }
    return NULL;
}

/* --- loading a plugin --------------------------------------------------------- */

/* Check a plugin's table: nil, or why it is not one. Lua is the clearer
 * language for walking a table of tables; compiled by the host. */
static const char VALIDATE[] =
    "local p = ...\n"
    "local TYPES = { string = 1, number = 1, boolean = 1, list = 1, map = 1, table = 1,\n"
    "                ['function'] = 1, any = 1 }\n"
    "local AF = { doc = 1, params = 1, run = 1, describe = 1, undo = 1, idempotent = 1,\n"
    "             destructive = 1, check = 1, validate = 1, changes = 1, effect = 1 }\n"
    "local PF = { type = 1, required = 1, default = 1, doc = 1 }\n"
    "if type(p) ~= 'table' then return 'it must return a table { doc = ..., actions = {...} }' "
    "end\n"
    "if type(p.doc) ~= 'string' then return 'its table needs doc = \"what the plugin is for\"' "
    "end\n"
    "if type(p.actions) ~= 'table' then return 'its table needs actions = { name = {...} }' end\n"
    "for an, a in pairs(p.actions) do\n"
    "  if type(an) ~= 'string' or not an:match('^[a-z][a-z0-9_]*$') or type(a) ~= 'table' then\n"
    "    return 'action names are lower-case words, each action a table' end\n"
    "  for k in pairs(a) do if not AF[k] then\n"
    "    return ('action %s: unknown field %s'):format(an, tostring(k)) end end\n"
    "  if type(a.doc) ~= 'string' then return ('action %s: needs doc'):format(an) end\n"
    "  if a.effect ~= nil and type(a.effect) ~= 'string' and type(a.effect) ~= 'function' then\n"
    "    return ('action %s: effect is what it leaves, e.g. \"isolated\", or a function(p) '\n"
    "      .. 'saying it'):format(an) end\n"
    "  if type(a.run) ~= 'function' then\n"
    "    return ('action %s: needs run = function(ctx, p, item)'):format(an) end\n"
    "  if a.describe ~= nil and type(a.describe) ~= 'function' then\n"
    "    return ('action %s: describe must be a function(p, item)'):format(an) end\n"
    "  if a.validate ~= nil and type(a.validate) ~= 'function' then\n"
    "    return ('action %s: validate must be a function(p)'):format(an) end\n"
    "  if a.undo ~= nil and (type(a.undo) ~= 'string' or type(p.actions[a.undo]) ~= 'table') then\n"
    "    return ('action %s: undo names another action of the plugin'):format(an) end\n"
    "  if a.params ~= nil and type(a.params) ~= 'table' then\n"
    "    return ('action %s: params must be a table'):format(an) end\n"
    "  for pn, spec in pairs(a.params or {}) do\n"
    "    if type(pn) ~= 'string' or type(spec) ~= 'table' then\n"
    "      return ('action %s: each parameter is name = { type = ..., doc = ... }'):format(an) "
    "end\n"
    "    for k in pairs(spec) do if not PF[k] then\n"
    "      return ('action %s, parameter %s: unknown field %s'):format(an, pn, tostring(k)) end "
    "end\n"
    "    if not TYPES[spec.type] then\n"
    "      return ('action %s, parameter %s: type is string, number, boolean, list, map, '\n"
    "        .. 'table, function or any'):format(an, pn) end\n"
    "  end\n"
    "end\n"
    "return nil\n";

static const char *validate(lua_State *L, int idx, char *why, size_t len) {
    idx = lua_absindex(L, idx);
    if (luaL_loadbufferx(L, VALIDATE, sizeof VALIDATE - 1, "=bulkhead plugin check", "t") !=
        LUA_OK) {
        snprintf(why, len, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return why;
    }
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) == LUA_TSTRING) {
        snprintf(why, len, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return why;
    }
    lua_pop(L, 1);
    return NULL;
}

/* require inside a plugin: another Lua file or a C module, from the plugin
 * directories only. Upvalue 1: the runbook (for its dirs). */
static int l_plugin_require(lua_State *L);

/* The sandbox env a plugin file runs in: the runbook's allow-list, plus
 * require. */
static void push_plugin_env(lua_State *L, bh_runbook *rb) {
    bh_sandbox_new_env(L);
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_plugin_require, 1);
    lua_setfield(L, -2, "require");
}

/* Load dir/NAME.lua into a table on the stack (the file's return value).
 * Returns 0, or -1 with why. */
static int load_file(lua_State *L, bh_runbook *rb, const char *path, char *why, size_t len,
                     char sha[BH_SHA256_HEX_LEN + 1]) {
    size_t n;
    char *text = bh_util_read_file(path, &n);
    if (!text) {
        snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (sha) bh_util_sha256_hex(text, n, sha);
    char *chunk = bh_util_asprintf("@%s", path);
    push_plugin_env(L, rb);
    int env = lua_gettop(L);
    int st = bh_sandbox_load(L, text, n, chunk, env);
    free(text);
    free(chunk);
    if (st != LUA_OK) {
        snprintf(why, len, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return -1;
    }
    lua_remove(L, env);
    bh_luax_error err = {0};
    st = bh_luax_pcall(L, 0, 1, &err);
    if (st != LUA_OK) {
        snprintf(why, len, "%s", err.message ? err.message : "error");
        bh_luax_error_free(&err);
        return -1;
    }
    return 0;
}

/* A file the runbook's code came from: its path and SHA-256 go into
 * run_start, and resume/undo refuse to go on if it changed. Once per path. */
static void pin(bh_runbook *rb, const char *name, const char *path, const char *sha, int module) {
    if (!rb->plugins_used) return;
    char *real = realpath(path, NULL);
    const char *p = real ? real : path;
    const cJSON *u;
    cJSON_ArrayForEach(u, rb->plugins_used) {
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(u, "path");
        if (cJSON_IsString(up) && strcmp(up->valuestring, p) == 0) {
            free(real);
            return;
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    const char *slash = strrchr(p, '/');
    cJSON_AddStringToObject(o, "file", slash ? slash + 1 : p);
    cJSON_AddStringToObject(o, "path", p);
    cJSON_AddStringToObject(o, "sha256", sha);
    if (module) cJSON_AddBoolToObject(o, "module", 1);
    cJSON_AddItemToArray(rb->plugins_used, o);
    free(real);
}

static const char REG_MODULES[] = "bulkhead.modules"; /* require's cache: name -> value */

static int l_plugin_require(lua_State *L) {
    bh_runbook *rb = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = luaL_checkstring(L, 1);
    if (!name_ok(name)) return luaL_error(L, "require: '%s' is not a module name", name);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, REG_MODULES);
    int cache = lua_gettop(L);
    if (lua_getfield(L, cache, name) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    char *path = find_file(rb->plugin_dirs, name, ".lua");
    char why[512], sha[BH_SHA256_HEX_LEN + 1];
    if (path) {
        int rc = load_file(L, rb, path, why, sizeof why, sha);
        if (rc == 0) pin(rb, name, path, sha, 1);
        free(path);
        if (rc != 0) return luaL_error(L, "require '%s': %s", name, why);
    } else {
        path = find_file(rb->plugin_dirs, name, ".so");
        if (!path) return luaL_error(L, "require: no module '%s' in the plugin directories", name);
        size_t n;
        char *bytes = bh_util_read_file(path, &n);
        if (!bytes) {
            free(path);
            return luaL_error(L, "require '%s': cannot read it", name);
        }
        bh_util_sha256_hex(bytes, n, sha);
        free(bytes);
        pin(rb, name, path, sha, 1);
        /* a C module: the host's own loadlib, on this one file */
        lua_getglobal(L, "package");
        lua_getfield(L, -1, "loadlib");
        lua_pushstring(L, path);
        lua_pushfstring(L, "luaopen_%s", name);
        free(path);
        lua_call(L, 2, 2);
        if (lua_isnil(L, -2)) return luaL_error(L, "require '%s': %s", name, lua_tostring(L, -1));
        lua_pop(L, 1);
        lua_remove(L, -2); /* package */
        lua_call(L, 0, 1);
    }
    if (lua_isnil(L, -1)) { /* a module that returns nothing is true, as in Lua */
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, name);
    return 1;
}

/* --- parameters ---------------------------------------------------------------- */

/* Is there a stand-in ("<name>", "<secret:NAME>") among the strings of
 * the table at idx (nested tables too, a few levels)? */
static int has_standin(lua_State *L, int idx, int depth) {
    int found = 0;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (!found && lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const char *v = lua_tolstring(L, -1, &n);
            found = n > 2 && v[0] == '<' && v[n - 1] == '>';
        } else if (lua_type(L, -1) == LUA_TTABLE && depth < 4) {
            found = has_standin(L, -1, depth + 1);
        }
        lua_pop(L, 1);
    }
    if (found) lua_pop(L, 1); /* the key lua_next left */
    return found;
}

static int is_list(lua_State *L, int idx) {
    size_t n = lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return count == n;
}

static int type_ok(lua_State *L, int idx, const char *type) {
    int t = lua_type(L, idx);
    if (strcmp(type, "any") == 0) return 1;
    if (strcmp(type, "string") == 0) return t == LUA_TSTRING;
    if (strcmp(type, "number") == 0) return t == LUA_TNUMBER;
    if (strcmp(type, "boolean") == 0) return t == LUA_TBOOLEAN;
    if (strcmp(type, "function") == 0) return t == LUA_TFUNCTION;
    if (t != LUA_TTABLE) return 0;
    if (strcmp(type, "list") == 0) return is_list(L, lua_absindex(L, idx));
    if (strcmp(type, "map") == 0) return lua_rawlen(L, idx) == 0;
    return 1; /* table */
}

/* plugin.action { ... }: check the parameters, fill defaults, and return an
 * action value. Upvalues: plugin name, action name. Errors point at the
 * runbook's line (level 2). */
static int l_construct(lua_State *L) {
    const char *pname = lua_tostring(L, lua_upvalueindex(1));
    const char *aname = lua_tostring(L, lua_upvalueindex(2));
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    if (!lua_istable(L, 1))
        return luaL_error(L, "%s.%s: give the parameters as a table: %s.%s { ... }", pname, aname,
                          pname, aname);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    lua_getfield(L, -1, pname);
    lua_getfield(L, -1, "actions");
    lua_getfield(L, -1, aname);
    int spec = lua_gettop(L);
    lua_getfield(L, spec, "params");
    int schema = lua_gettop(L);
    /* unknown parameters are errors: a misspelt one would be ignored */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "%s.%s: parameters are named (name = value)", pname, aname);
        int known =
            lua_istable(L, schema) && lua_getfield(L, schema, lua_tostring(L, -1)) != LUA_TNIL;
        if (lua_istable(L, schema)) lua_pop(L, 1);
        if (!known)
            return luaL_error(L, "%s.%s: unknown parameter '%s' (bulkhead plugins %s)", pname,
                              aname, lua_tostring(L, -1), pname);
    }
    lua_newtable(L);
    int params = lua_gettop(L);
    if (lua_istable(L, schema)) {
        lua_pushnil(L);
        while (lua_next(L, schema)) {
            const char *pn = lua_tostring(L, -2);
            lua_getfield(L, -1, "type");
            const char *type = lua_tostring(L, -1);
            lua_pop(L, 1);
            lua_getfield(L, -1, "required");
            int required = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (lua_getfield(L, 1, pn) == LUA_TNIL) {
                lua_pop(L, 1);
                if (required)
                    return luaL_error(L, "%s.%s: parameter '%s' is required (%s)", pname, aname, pn,
                                      type);
                lua_getfield(L, -1, "default");
            } else if (!type_ok(L, -1, type)) {
                return luaL_error(L, "%s.%s: parameter '%s' must be a %s, not a %s", pname, aname,
                                  pn, type, luaL_typename(L, -1));
            }
            lua_setfield(L, params, pn);
            lua_pop(L, 1);
        }
    }
    /* the action's own checks (templates, combinations): an error here
     * points at the runbook's line too. Not on `check`'s stand-ins for
     * parameters without values ("<mgmt>" is no CIDR, and need not be). */
    const bh_runbook *rb = lua_touserdata(L, lua_upvalueindex(3));
    int standins = rb && rb->placeholders && has_standin(L, params, 0);
    if (lua_getfield(L, spec, "validate") == LUA_TFUNCTION && !standins) {
        lua_pushvalue(L, params);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) == LUA_TSTRING)
            return luaL_error(L, "%s.%s: %s", pname, aname, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, pname);
    lua_setfield(L, -2, "plugin");
    lua_pushstring(L, aname);
    lua_setfield(L, -2, "action");
    lua_pushvalue(L, params);
    lua_setfield(L, -2, "params");
    luaL_setmetatable(L, ACTION_MT);
    return 1;
}

static int l_action_tostring(lua_State *L) {
    lua_getfield(L, 1, "plugin");
    lua_getfield(L, 1, "action");
    lua_pushfstring(L, "%s.%s{...}", lua_tostring(L, -2), lua_tostring(L, -1));
    return 1;
}

/* firewall.nosuch: say what there is */
static int l_ns_index(lua_State *L) {
    const char *plugin = lua_tostring(L, lua_upvalueindex(1));
    const char *asked = luaL_tolstring(L, 2, NULL);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    lua_getfield(L, -1, plugin);
    lua_getfield(L, -1, "actions");
    int actions = lua_gettop(L);
    /* the names first, as a table; the buffer is built with nothing above it */
    lua_newtable(L);
    int names = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, actions)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, names, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, names);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "concat");
    lua_pushvalue(L, names);
    lua_pushliteral(L, ", ");
    lua_call(L, 2, 1);
    return luaL_error(L, "plugin %s has no action '%s' (it has: %s)", plugin, asked,
                      lua_tostring(L, -1));
}

/* Load plugin NAME (dirs of rb) and push its namespace table; nil if there
 * is no such file. Raises when the file is there but broken. */
static int load_plugin(lua_State *L, bh_runbook *rb, const char *name) {
    char *path = find_file(rb->plugin_dirs, name, ".lua");
    if (!path) {
        lua_pushnil(L);
        return 1;
    }
    char why[600], sha[BH_SHA256_HEX_LEN + 1];
    if (load_file(L, rb, path, why, sizeof why, sha) != 0) {
        lua_pushfstring(L, "plugin %s (%s): %s", name, path, why);
        free(path);
        return lua_error(L);
    }
    const char *bad = validate(L, -1, why, sizeof why);
    if (bad) {
        lua_pushfstring(L, "plugin %s (%s): %s", name, path, bad);
        free(path);
        return lua_error(L);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    /* the namespace the runbook sees: a constructor per action */
    int plugin = lua_gettop(L);
    lua_newtable(L);
    int ns = lua_gettop(L);
    lua_getfield(L, plugin, "actions");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushstring(L, name);
        lua_pushvalue(L, -2);
        lua_pushlightuserdata(L, rb);
        lua_pushcclosure(L, l_construct, 3);
        lua_setfield(L, ns, lua_tostring(L, -2));
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushstring(L, name);
    lua_pushcclosure(L, l_ns_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, ns);
    pin(rb, name, path, sha, 0);
    free(path);
    lua_remove(L, plugin);
    return 1;
}

/* The runbook env's __index: an undefined global may be a plugin. */
static int l_env_index(lua_State *L) {
    bh_runbook *rb = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_type(L, 2) != LUA_TSTRING || !name_ok(lua_tostring(L, 2))) return 0;
    const char *name = lua_tostring(L, 2);
    load_plugin(L, rb, name);
    if (lua_isnil(L, -1)) return 1;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1); /* once */
    return 1;
}

/* record(ctx, plugin, action, params, item, description), as every action
 * calls it: the run's recorder (bh_plugin_set_recorder), looked up when
 * called, since actions are made at load and run later; nothing without
 * one. */
static int l_record(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &RECORDER_KEY) != LUA_TFUNCTION) return 0;
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

void bh_plugin_set_recorder(lua_State *L, lua_CFunction fn) {
    if (fn)
        lua_pushcfunction(L, fn);
    else
        lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RECORDER_KEY);
}

/* Closures around an action, compiled by the host (not in the sandbox). */
static const char FACTORY[] =
    "local record, run, describe, params, plugin, action, use, check = ...\n"
    "local function say(item)\n"
    "  if not describe then return nil end\n"
    "  local ok, d = pcall(describe, params, item)\n"
    "  return ok and type(d) == 'string' and d or nil\n"
    "end\n"
    "-- In a dry run or drill a health check is healthy: what it would look at\n"
    "-- is simulated, so its answer would mean nothing (a drill's faults say\n"
    "-- when a step is unhealthy).\n"
    "local function simulated(ctx) return check and ctx.mode ~= 'real' end\n"
    "if use == 'run' and check then\n"
    "  -- a health check as a step's body: unhealthy fails the step\n"
    "  return function(ctx, item)\n"
    "    record(ctx, plugin, action, params, item, say(item))\n"
    "    if simulated(ctx) then return true end\n"
    "    local ok, why = run(ctx, params, item)\n"
    "    if not ok then error(why or (plugin .. '.' .. action .. ': unhealthy'), 0) end\n"
    "    return ok\n"
    "  end\n"
    "elseif use == 'run' then\n"
    "  return function(ctx, item)\n"
    "    record(ctx, plugin, action, params, item, say(item))\n"
    "    return run(ctx, params, item)\n"
    "  end\n"
    "elseif use == 'undo' then\n"
    "  return function(ctx, item, result)\n"
    "    record(ctx, plugin, action, params, item, say(item))\n"
    "    return run(ctx, params, item, result)\n"
    "  end\n"
    "end\n"
    "return function(ctx, result, item)\n"
    "  if simulated(ctx) then return true end\n"
    "  return run(ctx, params, item, result)\n"
    "end\n";

void bh_plugin_install(lua_State *L, bh_runbook *rb, int env) {
    env = lua_absindex(L, env);
    if (luaL_newmetatable(L, ACTION_MT)) {
        lua_pushcfunction(L, l_action_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "an action value");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_env_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, env);
}

int bh_plugin_is_action(lua_State *L, int idx) {
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, ACTION_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* The action's spec table (plugins[plugin].actions[name]) on the stack. */
static void push_spec(lua_State *L, int idx, const char *override_action) {
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_PLUGINS);
    lua_getfield(L, idx, "plugin");
    lua_gettable(L, -2);
    lua_getfield(L, -1, "actions");
    if (override_action)
        lua_pushstring(L, override_action);
    else
        lua_getfield(L, idx, "action");
    lua_gettable(L, -2);
    lua_replace(L, -4);
    lua_pop(L, 2);
}

void bh_plugin_push_function(lua_State *L, int idx, bh_plugin_use use) {
    idx = lua_absindex(L, idx);
    char undo_name[80] = "";
    if (use == BH_PLUGIN_UNDO_OF) {
        push_spec(L, idx, NULL);
        int t = lua_getfield(L, -1, "undo");
        if (t == LUA_TSTRING) snprintf(undo_name, sizeof undo_name, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
        if (!undo_name[0]) {
            lua_pushnil(L);
            return;
        }
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &FACTORY_KEY);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (luaL_loadbufferx(L, FACTORY, sizeof FACTORY - 1, "=bulkhead action", "t") != LUA_OK)
            lua_error(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &FACTORY_KEY);
    }
    push_spec(L, idx, undo_name[0] ? undo_name : NULL);
    int spec = lua_gettop(L);
    lua_pushcfunction(L, l_record);
    lua_getfield(L, spec, "run");
    lua_getfield(L, spec, "describe");
    lua_getfield(L, idx, "params");
    lua_getfield(L, idx, "plugin");
    if (undo_name[0])
        lua_pushstring(L, undo_name);
    else
        lua_getfield(L, idx, "action");
    lua_pushstring(L, use == BH_PLUGIN_RUN ? "run" : use == BH_PLUGIN_VERIFY ? "verify" : "undo");
    lua_getfield(L, spec, "check");
    lua_remove(L, spec);
    lua_call(L, 8, 1);
}

void bh_plugin_info_of(lua_State *L, int idx, int each, bh_plugin_info *out) {
    memset(out, 0, sizeof *out);
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, "plugin");
    lua_getfield(L, idx, "action");
    out->name = bh_util_asprintf("%s.%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_pop(L, 2);
    push_spec(L, idx, NULL);
    int spec = lua_gettop(L);
    lua_getfield(L, spec, "idempotent");
    out->idempotent = lua_toboolean(L, -1);
    lua_getfield(L, spec, "destructive");
    out->destructive = lua_toboolean(L, -1);
    lua_getfield(L, spec, "check");
    out->check = lua_toboolean(L, -1);
    lua_getfield(L, spec, "undo");
    out->has_undo = lua_isstring(L, -1);
    lua_getfield(L, spec, "changes");
    /* a check, or an action that says it changes nothing: nothing to undo */
    out->changes_nothing = out->check || (lua_isboolean(L, -1) && !lua_toboolean(L, -1));
    lua_pop(L, 5);
    /* "isolated", or function(p) -> "without nginx.service": web1 may still be ... */
    if (lua_getfield(L, spec, "effect") == LUA_TFUNCTION) {
        lua_getfield(L, idx, "params");
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            lua_pushnil(L), lua_replace(L, -2); /* "may have acted" */
    }
    if (lua_type(L, -1) == LUA_TSTRING) out->effect = bh_util_xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (lua_getfield(L, spec, "describe") == LUA_TFUNCTION) {
        lua_getfield(L, idx, "params");
        lua_pushnil(L);
        lua_pushboolean(L, each);
        if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
            out->description = bh_util_xstrdup(lua_tostring(L, -1));
    }
    lua_pop(L, 2);
}

void bh_plugin_info_free(bh_plugin_info *info) {
    free(info->name);
    free(info->description);
    free(info->effect);
    memset(info, 0, sizeof *info);
}

/* --- the catalog --------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The string keys of the table at idx, sorted (for stable listings). */
static char **sorted_keys(lua_State *L, int idx, size_t *n) {
    idx = lua_absindex(L, idx);
    size_t cap = 8;
    char **v = bh_util_xcalloc(cap, sizeof *v);
    *n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        if (*n + 1 >= cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            if (!v) abort();
        }
        v[(*n)++] = bh_util_xstrdup(lua_tostring(L, -1));
    }
    qsort(v, *n, sizeof *v, cmp_names);
    return v;
}

static void free_keys(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static cJSON *describe_plugin(lua_State *L, const char *name, const char *path) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddStringToObject(p, "path", path);
    lua_getfield(L, -1, "doc");
    cJSON_AddStringToObject(p, "doc", lua_tostring(L, -1));
    lua_pop(L, 1);
    cJSON *acts = cJSON_AddObjectToObject(p, "actions");
    lua_getfield(L, -1, "actions");
    size_t na;
    char **anames = sorted_keys(L, -1, &na);
    for (size_t ai = 0; ai < na; ai++) {
        lua_getfield(L, -1, anames[ai]);
        cJSON *a = cJSON_AddObjectToObject(acts, anames[ai]);
        static const char *const flags[] = {"idempotent", "destructive", "check", NULL};
        lua_getfield(L, -1, "doc");
        cJSON_AddStringToObject(a, "doc", lua_tostring(L, -1));
        lua_pop(L, 1);
        for (int k = 0; flags[k]; k++) {
            lua_getfield(L, -1, flags[k]);
            cJSON_AddBoolToObject(a, flags[k], lua_toboolean(L, -1));
            lua_pop(L, 1);
        }
        if (lua_getfield(L, -1, "undo") == LUA_TSTRING)
            cJSON_AddStringToObject(a, "undo", lua_tostring(L, -1));
        lua_pop(L, 1);
        /* changes = false: it changes nothing, so it needs no undo */
        lua_getfield(L, -1, "changes");
        cJSON_AddBoolToObject(a, "changes", !(lua_isboolean(L, -1) && !lua_toboolean(L, -1)));
        lua_pop(L, 1);
        cJSON *ps = cJSON_AddObjectToObject(a, "params");
        if (lua_getfield(L, -1, "params") == LUA_TTABLE) {
            size_t np;
            char **pnames = sorted_keys(L, -1, &np);
            for (size_t pi = 0; pi < np; pi++) {
                lua_getfield(L, -1, pnames[pi]);
                cJSON *pp = cJSON_AddObjectToObject(ps, pnames[pi]);
                lua_getfield(L, -1, "type");
                cJSON_AddStringToObject(pp, "type", lua_tostring(L, -1));
                lua_getfield(L, -2, "required");
                cJSON_AddBoolToObject(pp, "required", lua_toboolean(L, -1));
                lua_getfield(L, -3, "doc");
                if (lua_isstring(L, -1)) cJSON_AddStringToObject(pp, "doc", lua_tostring(L, -1));
                lua_getfield(L, -4, "default");
                char why[64];
                cJSON *d = lua_isnil(L, -1) ? NULL : bh_luax_to_json(L, -1, why, sizeof why);
                if (d) cJSON_AddItemToObject(pp, "default", d);
                lua_pop(L, 5);
            }
            free_keys(pnames, np);
        }
        lua_pop(L, 2);
    }
    free_keys(anames, na);
    lua_pop(L, 1);
    return p;
}

typedef struct {
    const char *name;
    cJSON *item;
} named;

static int by_name(const void *a, const void *b) {
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

/* Directory order is the file system's: sort, so the listing is stable. */
static void sort_by_name(cJSON *list) {
    int n = cJSON_GetArraySize(list);
    if (n < 2) return;
    named *v = bh_util_xcalloc((size_t)n, sizeof *v);
    for (int k = 0; k < n; k++) {
        v[k].item = cJSON_DetachItemFromArray(list, 0);
        v[k].name = cJSON_GetObjectItemCaseSensitive(v[k].item, "name")->valuestring;
    }
    qsort(v, (size_t)n, sizeof *v, by_name);
    for (int k = 0; k < n; k++)
        cJSON_AddItemToArray(list, v[k].item);
    free(v);
}

cJSON *bh_plugin_catalog(char *const *dirs, const char *only, char *why, size_t whylen) {
    bh_runbook rb;
    memset(&rb, 0, sizeof rb);
    rb.plugin_dirs = (char **)dirs;
    lua_State *L = luaL_newstate();
    if (!L) abort();
    *(void **)lua_getextraspace(L) = NULL;
    bh_guard_install(L);
    luaL_openlibs(L);
    bh_sandbox_harden(L);
    bh_luax_init(L);
    cJSON *list = cJSON_CreateArray();
    cJSON *seen = cJSON_CreateObject();
    for (char *const *d = dirs; d && *d; d++) {
        DIR *dir = opendir(*d);
        const struct dirent *e;
        while (dir && (e = readdir(dir))) {
            size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0 || e->d_name[0] == '_') continue;
            char name[80];
            snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
            if (!name_ok(name) || cJSON_GetObjectItemCaseSensitive(seen, name)) continue;
            if (only && strcmp(only, name) != 0) continue;
            cJSON_AddTrueToObject(seen, name); /* the first directory wins, as at run time */
            char *path = bh_util_asprintf("%s/%s", *d, e->d_name);
            char err[600];
            /* loading a plugin runs its code: bounded as loading a runbook is */
            bh_guard g;
            bh_guard_init(&g, "loading the plugin", BH_LOAD_MAX_INSTRUCTIONS, BH_LOAD_TIMEOUT_MS,
                          1);
            g.hint = "an endless loop in the plugin file?";
            bh_guard_enter(&g, L);
            int loaded = load_file(L, &rb, path, err, sizeof err, NULL) == 0;
            int bad = !loaded || validate(L, -1, err, sizeof err);
            bh_guard_leave(&g);
            if (bad) {
                cJSON *p = cJSON_CreateObject();
                cJSON_AddStringToObject(p, "name", name);
                cJSON_AddStringToObject(p, "path", path);
                cJSON_AddStringToObject(p, "error", err);
                cJSON_AddItemToArray(list, p);
            } else {
                cJSON_AddItemToArray(list, describe_plugin(L, name, path));
            }
            if (loaded) lua_pop(L, 1);
            free(path);
        }
        if (dir) closedir(dir);
    }
    cJSON_Delete(seen);
    lua_close(L);
    sort_by_name(list);
    if (only && cJSON_GetArraySize(list) == 0) {
        snprintf(why, whylen, "no plugin '%s' in the plugin directories", only);
        cJSON_Delete(list);
        return NULL;
    }
    return list;
}
