#include "load/runbook.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "load/graph.h"
#include "lua/guard.h"
#include "load/inventory.h"
#include "lua/luax.h"
#include "load/plugin.h"
#include "lua/sandbox.h"
#include "base/util.h"

/* Raised (as a light userdata) to stop loading after problems that are
 * already in the diagnostics; never shown to anyone. */
static char STOP_LOADING;

static const char *const SEVERITIES[] = {"low", "medium", "high", "critical", NULL};
static const char *const RUNBOOK_FIELDS[] = {
    "id",     "title",    "severity",         "owner",      "description", "timeout", "kill_grace",
    "params", "schedule", "max_instructions", "max_memory", NULL};
static const char *const PARAM_FIELDS[] = {"type", "required", "default", "doc", "pattern", NULL};
static const char *const STEP_FIELDS[] = {"run",
                                          "doc",
                                          "timeout",
                                          "retries",
                                          "backoff",
                                          "on_failure",
                                          "when",
                                          "after",
                                          "each",
                                          "concurrency",
                                          "undo",
                                          "approve",
                                          "approvers",
                                          "approve_timeout",
                                          "on_approval_timeout",
                                          "manual",
                                          "verify",
                                          "verify_timeout",
                                          "verify_interval",
                                          "every",
                                          "destructive",
                                          "idempotent",
                                          "max_instructions",
                                          "estimate",
                                          "simulate",
                                          "action",
                                          "effect",
                                          NULL};

/* --- the Lua allocator: caps what a runbook can make the engine hold --- */

static void *rb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    bh_runbook *rb = ud;
    /* When ptr is NULL, osize encodes the kind of object, not a size. */
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        rb->mem_used -= old;
        return NULL;
    }
    /* Never refuse a shrink: Lua assumes shrinking cannot fail. */
    if (nsize > old && rb->mem_used - old + nsize > rb->mem_limit) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) rb->mem_used = rb->mem_used - old + nsize;
    return p;
}

/* --- helpers ----------------------------------------------------------- */

static bh_runbook *upvalue_rb(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* What loading keeps while the file runs and drops once it has: the
 * runbook itself (model.h) is the plan and nothing else. */
struct bh_loader {
    const bh_params_input *params; /* the values given (NULL: none) */
    char *pending_step;            /* step "id" seen, its { ... } not yet */
    int pending_line;
    int stopped; /* loading was stopped on purpose after reported problems */
    char *current_phase;
    size_t capsteps;
    int *group_of;  /* parallel{} group number of each step, 0 if none */
    int *group_cap; /* concurrency of each group (index: group number) */
    int ngroups;
};

/* The loader of a declaration (runbook, phase, step, parallel): a step's
 * body that calls one finds none, since the plan is fixed once loaded. */
static struct bh_loader *loader_of(lua_State *L, const bh_runbook *rb, const char *what) {
    if (!rb->loader)
        luaL_error(L, "%s declares the runbook: only while it loads, not from a step", what);
    return rb->loader;
}

/* File and line of the Lua code calling the current C function. */
static int caller_where(lua_State *L, char *file, size_t filelen) {
    lua_Debug ar;
    file[0] = '\0';
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
        snprintf(file, filelen, "%s", ar.short_src);
        return ar.currentline;
    }
    return 0;
}

static int valid_name(const char *s) {
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Does s, which becomes part of a file name, hold a secret? A secret's
 * value in any form it is masked in, or its stand-in "<secret:NAME>" (plan,
 * check, a drill without the secret): 1, with the secret's name (never
 * its value) in name. */
static int holds_secret(const bh_runbook *rb, const char *s, char *name, size_t namelen) {
    const char *standin = s ? strstr(s, "<secret:") : NULL;
    if (standin) {
        standin += 8;
        snprintf(name, namelen, "%.*s", (int)strcspn(standin, ">"), standin);
        return 1;
    }
    const char *which = s ? bh_redact_which(bh_keyring_mask(rb->keyring), s, strlen(s)) : NULL;
    if (which) snprintf(name, namelen, "%s", which);
    return which != NULL;
}

static int in_list(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static void list_join(const char *const *list, char *out, size_t outlen) {
    out[0] = '\0';
    for (int i = 0; list[i]; i++) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", list[i]);
    }
}

/* Report fields of the table at idx that are not in known. */
static void check_fields(lua_State *L, bh_runbook *rb, int idx, const char *const *known,
                         const char *what, const char *file, int line) {
    char names[256];
    list_join(known, names, sizeof names);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: only named fields are allowed, found a %s key", what,
                        luaL_typename(L, -1));
        } else if (!in_list(lua_tostring(L, -1), known)) {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: unknown field '%s' (known: %s)",
                        what, lua_tostring(L, -1), names);
        }
    }
}

/* An optional string field; reports a wrong type. Returns a malloc'd copy. */
static char *opt_string(lua_State *L, bh_runbook *rb, int idx, const char *field, const char *what,
                        const char *file, int line) {
    char *out = NULL;
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TSTRING)
        out = bh_util_xstrdup(lua_tostring(L, -1));
    else if (t != LUA_TNIL)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: '%s' must be a string, not a %s",
                    what, field, lua_typename(L, t));
    lua_pop(L, 1);
    return out;
}

/* An optional duration field ("30s", "5m", or seconds). Returns 1 if set. */
static int opt_duration(lua_State *L, bh_runbook *rb, int idx, const char *field, const char *what,
                        const char *file, int line, double *ms) {
    int t = lua_getfield(L, idx, field);
    int set = 0;
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        const char *text = lua_tostring(L, -1);
        double v;
        if (bh_util_parse_duration(text, &v) != 0 || v <= 0)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: '%s' is not a positive duration: \"%s\" (write e.g. \"30s\", "
                        "\"5m\", \"250ms\")",
                        what, field, text);
        else {
            *ms = v;
            set = 1;
        }
    } else if (t != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: '%s' must be a duration string such as \"30s\", not a %s", what, field,
                    lua_typename(L, t));
    }
    lua_pop(L, 1);
    return set;
}

/* max_instructions: a whole number of Lua instructions, at least 1000. */
static void opt_budget(lua_State *L, bh_runbook *rb, int idx, const char *what, const char *file,
                       int line, double *out) {
    int t = lua_getfield(L, idx, "max_instructions");
    if (t != LUA_TNIL) {
        double v = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || v < 1000 || v > 1e15)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'max_instructions' must be a number from 1000 to 1e15", what);
        else
            *out = v;
    }
    lua_pop(L, 1);
}

/* max_memory: the runbook's Lua memory, "512MiB" or "2GiB" (16 MiB to
 * 64 GiB). Raised for a runbook that holds a large inventory; the limit
 * applies from here on, to loading as to the steps. */
static void opt_memory(lua_State *L, bh_runbook *rb, const char *file, int line) {
    char *v = opt_string(L, rb, 1, "max_memory", "runbook", file, line);
    if (v == NULL) return;
    char unit[8] = "";
    unsigned long long n = 0;
    int ok = sscanf(v, "%llu%7s", &n, unit) == 2;
    unsigned long long shift = strcmp(unit, "MiB") == 0 ? 20 : strcmp(unit, "GiB") == 0 ? 30 : 0;
    unsigned long long bytes = ok && shift && n <= (64ULL << 30) ? n << shift : 0;
    if (bytes < (16ULL << 20) || bytes > (64ULL << 30))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: max_memory must be a size from \"16MiB\" to \"64GiB\", such as "
                    "\"1GiB\", not \"%s\"",
                    v);
    else
        rb->mem_limit = (size_t)bytes;
    free(v);
}

/* --- param: the resolved parameters, strict about names ---------------- */

static int param_index(lua_State *L) {
    /* Only reached for names without a value: declared-but-unset gives nil,
     * anything else is a typo the author wants to hear about. */
    const char *name = lua_tostring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 0;
    lua_pushfstring(L, "unknown parameter '%s' (declare it in runbook{ params = ... })",
                    name ? name : "?");
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}

static int param_newindex(lua_State *L) {
    return luaL_error(L, "parameters are read-only");
}

static int param_before_runbook(lua_State *L) {
    return luaL_error(L, "'param' is only available after runbook{ ... } has declared the "
                         "parameters");
}

/* Push the `param` table for the resolved values. */
static void push_param_table(lua_State *L, bh_runbook *rb) {
    lua_newtable(L);
    for (const cJSON *c = rb->param_values->child; c; c = c->next) {
        bh_luax_push_json(L, c);
        lua_setfield(L, -2, c->string);
    }
    lua_newtable(L); /* metatable */
    lua_newtable(L); /* declared names */
    for (size_t i = 0; i < rb->nparams; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, rb->params[i].name);
    }
    lua_pushcclosure(L, param_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, param_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "param");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* --- runbook { ... } --------------------------------------------------- */

static void declare_param(lua_State *L, bh_runbook *rb, const char *name, int idx, const char *file,
                          int line) {
    char what[128];
    snprintf(what, sizeof what, "parameter '%s'", name);
    bh_param_spec *p = &rb->params[rb->nparams];
    memset(p, 0, sizeof(*p));
    if (!valid_name(name) || strchr(name, '-') || strchr(name, '.')) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "parameter name '%s' must be letters, digits and '_'", name);
        return;
    }
    if (!lua_istable(L, idx)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: declare it as a table { type = ..., doc = ... }, not a %s", what,
                    luaL_typename(L, idx));
        return;
    }
    check_fields(L, rb, idx, PARAM_FIELDS, what, file, line);
    char *type = opt_string(L, rb, idx, "type", what, file, line);
    if (!type) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'type' is required (string, number, boolean, list or map)", what);
        return;
    }
    if (bh_params_type_from_name(type, &p->type) != 0) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: unknown type '%s' (string, number, boolean, list or map)", what, type);
        free(type);
        return;
    }
    free(type);
    lua_getfield(L, idx, "required");
    p->required = lua_toboolean(L, -1);
    lua_pop(L, 1);
    p->doc = opt_string(L, rb, idx, "doc", what, file, line);
    p->pattern = opt_string(L, rb, idx, "pattern", what, file, line);
    if (p->pattern && p->type != BH_PARAM_STRING && p->type != BH_PARAM_LIST)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'pattern' applies to a string or a list of strings", what);
    if (lua_getfield(L, idx, "default") != LUA_TNIL) {
        char why[256];
        cJSON *def = bh_luax_to_json(L, -1, why, sizeof why);
        /* An empty Lua table converts to {}: as a list default it means []. */
        if (def && p->type == BH_PARAM_LIST && cJSON_IsObject(def) && !def->child) {
            cJSON_Delete(def);
            def = cJSON_CreateArray();
        }
        if (!def)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: default cannot be used: %s",
                        what, why);
        else if (!bh_params_has_type(p->type, def)) {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: default is a %s, but the type is %s", what, luaL_typename(L, -1),
                        bh_params_type_name(p->type));
            cJSON_Delete(def);
        } else {
            p->def = def;
        }
    }
    lua_pop(L, 1);
    p->name = bh_util_xstrdup(name);
    rb->nparams++;
}

/* Does s match the whole of Lua pattern pat? -1 when pat is not a pattern. */
static int pattern_matches(lua_State *L, const char *s, const char *pat) {
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_remove(L, -2);
    lua_pushstring(L, s);
    lua_pushstring(L, pat);
    int rc = lua_pcall(L, 2, 2, 0);
    int ok = rc != LUA_OK ? -1
                          : !lua_isnil(L, -2) && lua_tointeger(L, -2) == 1 &&
                                lua_tointeger(L, -1) == (lua_Integer)strlen(s);
    lua_pop(L, rc == LUA_OK ? 2 : 1);
    return ok;
}

/* A JSON value's kind, for messages. */
static const char *json_kind(const cJSON *v) {
    return cJSON_IsNumber(v)   ? "a number"
           : cJSON_IsBool(v)   ? "a boolean"
           : cJSON_IsArray(v)  ? "a list"
           : cJSON_IsObject(v) ? "a table"
           : cJSON_IsNull(v)   ? "null"
                               : "a string";
}

/* Values given for parameters with a pattern must match it, whole: an
 * account or host name that goes into a URL or a remote command is
 * checked before anything runs. In a list every item must, so an item that
 * is not a string at all (a number, a table) is refused too: the pattern
 * cannot vouch for it. `check`'s stand-ins ("<name>") pass. */
static void check_patterns(lua_State *L, bh_runbook *rb, const char *file, int line) {
    for (size_t i = 0; rb->param_values && i < rb->nparams; i++) {
        const bh_param_spec *p = &rb->params[i];
        if (!p->pattern) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rb->param_values, p->name);
        int list = cJSON_IsArray(v);
        const cJSON *one = list ? v->child : v;
        for (int k = 1; one; one = list ? one->next : NULL, k++) {
            char item[48] = ""; /* which item of a list, for the message */
            if (list) snprintf(item, sizeof item, " item %d", k);
            if (!cJSON_IsString(one)) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s':%s is %s, but its pattern %s applies to strings only",
                            p->name, item, json_kind(one), p->pattern);
                break;
            }
            const char *s = one->valuestring;
            if (rb->placeholders && s[0] == '<') continue;
            int m = pattern_matches(L, s, p->pattern);
            if (m < 0) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s': its pattern %s is not a Lua pattern", p->name,
                            p->pattern);
                break;
            }
            if (!m) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s':%s \"%s\" does not match its pattern %s%s%s%s", p->name,
                            item, s, p->pattern, p->doc ? " (" : "", p->doc ? p->doc : "",
                            p->doc ? ")" : "");
                break;
            }
        }
    }
}

/* Loading stops at the first error that makes the rest meaningless; the
 * sentinel tells the protected call it was us, not the runbook. */
static int stop_loading(lua_State *L, struct bh_loader *ld) {
    ld->stopped = 1;
    lua_pushlightuserdata(L, &STOP_LOADING);
    return lua_error(L);
}

static void check_runbook_id(bh_runbook *rb, const char *file, int line) {
    char secret[64];
    if (holds_secret(rb, rb->id, secret, sizeof secret))
        /* Never the value: the id is refused, not shown. */
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: 'id' is built from secret(\"%s\"): the run id, and with it the run "
                    "folder's name, is made from the runbook id, and a secret never goes into a "
                    "file name; give a fixed id",
                    secret);
    else if (!rb->id || !valid_name(rb->id))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: 'id' is required: letters, digits, '-', '_' and '.'%s%s%s",
                    rb->id ? " (got \"" : "", rb->id ? rb->id : "", rb->id ? "\")" : "");
}

/* The runbook's own fields, everything but params. */
static void read_runbook_header(lua_State *L, bh_runbook *rb, const char *file, int line) {
    check_fields(L, rb, 1, RUNBOOK_FIELDS, "runbook", file, line);
    rb->id = opt_string(L, rb, 1, "id", "runbook", file, line);
    rb->title = opt_string(L, rb, 1, "title", "runbook", file, line);
    rb->severity = opt_string(L, rb, 1, "severity", "runbook", file, line);
    rb->owner = opt_string(L, rb, 1, "owner", "runbook", file, line);
    rb->description = opt_string(L, rb, 1, "description", "runbook", file, line);
    check_runbook_id(rb, file, line);
    if (!rb->title)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "runbook: 'title' is required");
    if (rb->severity && !in_list(rb->severity, SEVERITIES))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: severity '%s' is not one of low, medium, high, critical",
                    rb->severity);
    if (!rb->severity) rb->severity = bh_util_xstrdup("medium");
    rb->timeout_set = opt_duration(L, rb, 1, "timeout", "runbook", file, line, &rb->timeout_ms);
    opt_duration(L, rb, 1, "kill_grace", "runbook", file, line, &rb->kill_grace_ms);
    char *schedule = opt_string(L, rb, 1, "schedule", "runbook", file, line);
    if (schedule && strcmp(schedule, "graph") == 0)
        rb->graph = 1;
    else if (schedule && strcmp(schedule, "sequence") != 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: schedule must be \"sequence\" (one step at a time, the default) "
                    "or \"graph\" (every step as soon as its 'after' steps are done), not \"%s\"",
                    schedule);
    free(schedule);
    opt_budget(L, rb, 1, "runbook", file, line, &rb->max_instructions);
    opt_memory(L, rb, file, line);
}

/* Pushes a sequence of the string keys of the table at -1, sorted: a Lua
 * table has lost the declaration order, and plans and journals must be
 * stable. Returns how many. */
static size_t push_sorted_names(lua_State *L, bh_runbook *rb, const char *file, int line) {
    lua_newtable(L);
    int names = lua_gettop(L);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, names - 1)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, names, (lua_Integer)++k);
        } else {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "params: names must be strings, found a %s", luaL_typename(L, -1));
        }
    }
    lua_getglobal(L, "table"); /* the real table library, not the runbook's */
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, names);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return k;
}

/* The params table at -1: one declaration per name, in name order. */
static void read_param_decls(lua_State *L, bh_runbook *rb, const char *file, int line) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        n++;
        lua_pop(L, 1);
    }
    rb->params = bh_util_xcalloc(n ? n : 1, sizeof *rb->params);
    size_t k = push_sorted_names(L, rb, file, line);
    int names = lua_gettop(L);
    for (size_t i = 1; i <= k; i++) {
        lua_rawgeti(L, names, (lua_Integer)i);
        const char *name = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        lua_gettable(L, names - 1);
        declare_param(L, rb, name, lua_gettop(L), file, line);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static int l_runbook(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    struct bh_loader *ld = loader_of(L, rb, "runbook{}");
    char file[256];
    int line = caller_where(L, file, sizeof file);
    if (rb->decl_line > 0) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook{...} declared twice (first at line %d)", rb->decl_line);
        return 0;
    }
    if (!lua_istable(L, 1)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: expected a table, as in runbook { id = \"...\", ... }");
        return stop_loading(L, ld);
    }
    rb->decl_line = line;
    read_runbook_header(L, rb, file, line);

    int t = lua_getfield(L, 1, "params");
    if (t == LUA_TTABLE)
        read_param_decls(L, rb, file, line);
    else if (t != LUA_TNIL)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: 'params' must be a table of declarations");
    lua_pop(L, 1);

    static const bh_params_input none = {0};
    size_t before = bh_diag_errors(&rb->diags);
    rb->param_values = bh_params_resolve(rb->params, rb->nparams, ld->params ? ld->params : &none,
                                         rb->placeholders, file, line, &rb->diags);
    check_patterns(L, rb, file, line);
    rb->param_errors = (int)(bh_diag_errors(&rb->diags) - before);
    if (rb->param_errors) return stop_loading(L, ld);
    push_param_table(L, rb);
    lua_pushvalue(L, -1);
    rb->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, lua_upvalueindex(2), "param");
    return 0;
}

/* --- phase "name" ------------------------------------------------------ */

static void check_pending_step(bh_runbook *rb, struct bh_loader *ld, const char *file) {
    if (!ld->pending_step) return;
    bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, ld->pending_line,
                "step '%s' has no body: write step \"%s\" { run = function(ctx) ... end }",
                ld->pending_step, ld->pending_step);
    free(ld->pending_step);
    ld->pending_step = NULL;
}

/* Add a phase; the steps declared from now on belong to it. */
static void open_phase(bh_runbook *rb, struct bh_loader *ld, const char *name) {
    rb->phases = bh_util_xrealloc(rb->phases, (rb->nphases + 1) * sizeof *rb->phases);
    rb->phases[rb->nphases++] = bh_util_xstrdup(name);
    free(ld->current_phase);
    ld->current_phase = bh_util_xstrdup(name);
}

static int l_phase(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    struct bh_loader *ld = loader_of(L, rb, "phase");
    char file[256];
    int line = caller_where(L, file, sizeof file);
    check_pending_step(rb, ld, file);
    const char *name = lua_tostring(L, 1);
    if (lua_type(L, 1) != LUA_TSTRING || !valid_name(name)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "phase: expected a name of letters, digits, '-', '_' or '.'");
        return 0;
    }
    for (size_t i = 0; i < rb->nphases; i++) {
        if (strcmp(rb->phases[i], name) == 0) {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "phase '%s' declared twice: keep each phase's steps together", name);
            return 0;
        }
    }
    open_phase(rb, ld, name);
    return 0;
}

/* An optional whole number in [lo, hi]; returns def when absent. */
static int opt_count(lua_State *L, bh_runbook *rb, int idx, const char *field, const char *what,
                     const char *file, int line, int lo, int hi, int def) {
    int out = def;
    int t = lua_getfield(L, idx, field);
    if (t != LUA_TNIL) {
        int isint = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isint);
        if (t != LUA_TNUMBER || !isint || n < lo || n > hi)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: '%s' must be a whole number from %d to %d", what, field, lo, hi);
        else
            out = (int)n;
    }
    lua_pop(L, 1);
    return out;
}

static int opt_bool(lua_State *L, bh_runbook *rb, int idx, const char *field, const char *what,
                    const char *file, int line) {
    int t = lua_getfield(L, idx, field);
    int v = lua_toboolean(L, -1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: '%s' must be true or false", what,
                    field);
    lua_pop(L, 1);
    return v;
}

/* An optional function field: a registry reference, or LUA_NOREF. */
static int opt_function(lua_State *L, bh_runbook *rb, int idx, const char *field, const char *what,
                        const char *file, int line, const char *shape) {
    int t = lua_getfield(L, idx, field);
    if (t == LUA_TFUNCTION) return luaL_ref(L, LUA_REGISTRYINDEX);
    if (t != LUA_TNIL)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: '%s' must be %s, not a %s", what,
                    field, shape, lua_typename(L, t));
    lua_pop(L, 1);
    return LUA_NOREF;
}

/* each, concurrency, undo, approvals, manual, verify, every and the
 * declared nature of the step. */
/* simulate = { exit =, stdout =, stderr =, result = }: what the step's
 * commands (and actions) give back in a dry run or drill. */
static const char *const SIMULATE_FIELDS[] = {"exit",   "stdout", "stderr", "result",
                                              "status", "body",   NULL};

static void parse_simulate(lua_State *L, bh_runbook *rb, bh_step *s, const char *what,
                           const char *file, int line) {
    int t = lua_getfield(L, 1, "simulate");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (t != LUA_TTABLE) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'simulate' must be a table { exit =, stdout =, stderr =, result = }",
                    what);
        lua_pop(L, 1);
        return;
    }
    int idx = lua_gettop(L);
    check_fields(L, rb, idx, SIMULATE_FIELDS, what, file, line);
    char why[200];
    s->simulate = bh_luax_to_json(L, idx, why, sizeof why);
    if (!s->simulate) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: 'simulate': %s", what, why);
    } else {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->simulate, "exit");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(s->simulate, "stdout");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(s->simulate, "stderr");
        if ((e && !cJSON_IsNumber(e)) || (o && !cJSON_IsString(o)) || (r && !cJSON_IsString(r)))
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'simulate': exit is a number, stdout and stderr are strings", what);
    }
    lua_pop(L, 1);
}

/* field = plugin.action {...} (or a function): a registry reference to the
 * function the step calls, LUA_NOREF when absent. */
static int opt_callable(lua_State *L, bh_runbook *rb, const char *field, bh_plugin_use use,
                        const char *what, const char *file, int line, const char *shape) {
    lua_getfield(L, 1, field);
    if (bh_plugin_is_action(L, -1)) {
        bh_plugin_push_function(L, -1, use);
        lua_remove(L, -2);
        return luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);
    return opt_function(L, rb, 1, field, what, file, line, shape);
}

/* action = plugin.action {...}: the step's body, and what the action says
 * of itself (undo, idempotent, destructive) where the step does not. */
static void parse_action(lua_State *L, bh_runbook *rb, bh_step *s, const char *what,
                         const char *file, int line) {
    int t = lua_getfield(L, 1, "action");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!bh_plugin_is_action(L, -1)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'action' must be a plugin action such as firewall.isolate { ... }, not a "
                    "%s",
                    what, lua_typename(L, t));
        lua_pop(L, 1);
        return;
    }
    bh_plugin_info info;
    int each = lua_getfield(L, 1, "each") != LUA_TNIL;
    lua_pop(L, 1);
    bh_plugin_info_of(L, -1, each, &info);
    s->action = info.name;
    s->action_desc = info.description;
    if (!s->effect) s->effect = info.effect, info.effect = NULL; /* the step's own words win */
    info.name = info.description = NULL;
    bh_plugin_push_function(L, -1, BH_PLUGIN_RUN);
    s->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lua_getfield(L, 1, "idempotent") == LUA_TNIL) s->idempotent = info.idempotent;
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "destructive") == LUA_TNIL) s->destructive = info.destructive;
    lua_pop(L, 1);
    if (info.changes_nothing && !info.has_undo) s->no_undo = 1; /* as if undo = false */
    /* its own undo, unless the step says otherwise (undo = ... or false) */
    if (info.has_undo) {
        if (lua_getfield(L, 1, "undo") == LUA_TNIL) {
            lua_pop(L, 1);
            bh_plugin_push_function(L, -1, BH_PLUGIN_UNDO_OF);
            s->undo_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    bh_plugin_info_free(&info);
}

static void parse_semantics(lua_State *L, bh_runbook *rb, bh_step *s, const char *what,
                            const char *file, int line) {
    s->each_ref = LUA_NOREF;
    int t = lua_getfield(L, 1, "each");
    if (t == LUA_TTABLE || t == LUA_TFUNCTION) {
        s->each_fn = t == LUA_TFUNCTION;
        s->each_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        if (t != LUA_TNIL)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'each' must be a list (such as param.hosts) or a function(ctx) "
                        "returning one, not a %s",
                        what, lua_typename(L, t));
        lua_pop(L, 1);
    }
    s->concurrency = opt_count(L, rb, 1, "concurrency", what, file, line, 1, BH_MAX_CONCURRENCY, 0);
    if (s->concurrency && s->each_ref == LUA_NOREF)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'concurrency' caps a fan-out: it needs 'each'", what);
    lua_getfield(L, 1, "undo");
    s->no_undo = s->no_undo || (lua_isboolean(L, -1) && !lua_toboolean(L, -1));
    lua_pop(L, 1);
    if (!s->no_undo && s->undo_ref == LUA_NOREF)
        s->undo_ref = opt_callable(L, rb, "undo", BH_PLUGIN_UNDO, what, file, line,
                                   "a function(ctx, item, result) or a plugin action, or false "
                                   "when there is nothing to undo");
    s->approve = opt_string(L, rb, 1, "approve", what, file, line);
    if (s->approve && !s->approve[0])
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'approve' must say why the step is risky; it is what the approver reads",
                    what);
    s->approvers = opt_count(L, rb, 1, "approvers", what, file, line, 1, 10, 1);
    s->approve_timeout_ms = BH_DEFAULT_APPROVE_TIMEOUT_MS;
    int at_set =
        opt_duration(L, rb, 1, "approve_timeout", what, file, line, &s->approve_timeout_ms);
    char *on_to = opt_string(L, rb, 1, "on_approval_timeout", what, file, line);
    if (on_to && strcmp(on_to, "approve") == 0)
        s->approve_on_timeout = 1;
    else if (on_to && strcmp(on_to, "deny") != 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: on_approval_timeout must be \"deny\" (the default) or \"approve\"", what);
    free(on_to);
    lua_getfield(L, 1, "approvers");
    int approvers_given = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!s->approve && (approvers_given || at_set || on_to))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: approvers, approve_timeout and on_approval_timeout need "
                    "approve = \"why this is risky\"",
                    what);

    t = lua_getfield(L, 1, "manual");
    if (t == LUA_TSTRING || t == LUA_TTABLE) {
        s->manual = 1;
        size_t n = t == LUA_TSTRING ? 1 : lua_rawlen(L, -1);
        s->checklist = bh_util_xcalloc(n ? n : 1, sizeof *s->checklist);
        if (t == LUA_TSTRING) s->checklist[s->nchecklist++] = bh_util_xstrdup(lua_tostring(L, -1));
        for (size_t k = 1; t == LUA_TTABLE && k <= n; k++) {
            if (lua_rawgeti(L, -1, (lua_Integer)k) == LUA_TSTRING)
                s->checklist[s->nchecklist++] = bh_util_xstrdup(lua_tostring(L, -1));
            else
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "%s: 'manual' checklist items must be strings", what);
            lua_pop(L, 1);
        }
        if (s->nchecklist == 0)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'manual' needs at least one checklist item", what);
    } else if (t != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'manual' must be a checklist (a list of strings) or one string", what);
    }
    lua_pop(L, 1);
    s->verify_ref = opt_callable(L, rb, "verify", BH_PLUGIN_VERIFY, what, file, line,
                                 "a function(ctx, result) returning true when healthy, or a "
                                 "check action such as http.check { ... }");
    s->verify_timeout_ms = BH_DEFAULT_VERIFY_TIMEOUT_MS;
    s->verify_interval_ms = BH_DEFAULT_VERIFY_INTERVAL_MS;
    int vt = opt_duration(L, rb, 1, "verify_timeout", what, file, line, &s->verify_timeout_ms);
    int vi = opt_duration(L, rb, 1, "verify_interval", what, file, line, &s->verify_interval_ms);
    if ((vt || vi) && s->verify_ref == LUA_NOREF)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: verify_timeout and verify_interval need a 'verify' function", what);
    opt_duration(L, rb, 1, "every", what, file, line, &s->every_ms);
    if (s->every_ms > 0 && s->each_ref != LUA_NOREF)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: a step cannot both repeat ('every') and fan out ('each')", what);
    if (s->manual && (s->each_ref != LUA_NOREF || s->every_ms > 0 || s->verify_ref != LUA_NOREF))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: a manual task cannot have each, every or verify", what);
    s->max_instructions = rb->max_instructions;
    opt_budget(L, rb, 1, what, file, line, &s->max_instructions);
    s->destructive = opt_bool(L, rb, 1, "destructive", what, file, line);
    s->idempotent = opt_bool(L, rb, 1, "idempotent", what, file, line);
    s->estimate_ms = -1;
    opt_duration(L, rb, 1, "estimate", what, file, line, &s->estimate_ms);
    parse_simulate(L, rb, s, what, file, line);
}

/* --- step "id" { ... } ------------------------------------------------- */

static bh_step *find_step(const bh_runbook *rb, const char *id) {
    size_t i = bh_model_step_index(rb, id);
    return i == (size_t)-1 ? NULL : &rb->steps[i];
}

/* A new step at the end of rb, its id, phase and place set. */
static bh_step *new_step(bh_runbook *rb, struct bh_loader *ld, const char *id, const char *file,
                         int line) {
    if (rb->nsteps == ld->capsteps || !rb->steps) {
        ld->capsteps = ld->capsteps ? ld->capsteps * 2 : 16;
        rb->steps = bh_util_xrealloc(rb->steps, ld->capsteps * sizeof *rb->steps);
        ld->group_of = bh_util_xrealloc(ld->group_of, ld->capsteps * sizeof *ld->group_of);
    }
    ld->group_of[rb->nsteps] = 0;
    bh_step *s = &rb->steps[rb->nsteps++];
    memset(s, 0, sizeof(*s));
    s->id = bh_util_xstrdup(id);
    s->phase = bh_util_xstrdup(ld->current_phase);
    s->file = bh_util_xstrdup(file);
    s->line = line;
    s->run_ref = LUA_NOREF;
    s->when_ref = LUA_NOREF;
    s->undo_ref = LUA_NOREF;
    s->backoff_ms = BH_DEFAULT_BACKOFF_MS;
    return s;
}

/* after = "id" or { "id", ... } */
static void parse_after(lua_State *L, bh_runbook *rb, bh_step *s, const char *what,
                        const char *file, int line) {
    int at = lua_getfield(L, 1, "after");
    if (at == LUA_TSTRING) {
        s->after = bh_util_xcalloc(1, sizeof *s->after);
        s->after[s->nafter++] = bh_util_xstrdup(lua_tostring(L, -1));
    } else if (at == LUA_TTABLE) {
        size_t n = lua_rawlen(L, -1);
        s->after = bh_util_xcalloc(n ? n : 1, sizeof *s->after);
        for (size_t k = 1; k <= n; k++) {
            if (lua_rawgeti(L, -1, (lua_Integer)k) == LUA_TSTRING)
                s->after[s->nafter++] = bh_util_xstrdup(lua_tostring(L, -1));
            else
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "%s: 'after' entries must be step ids (strings)", what);
            lua_pop(L, 1);
        }
    } else if (at != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'after' must be a step id or a list of them, not a %s", what,
                    lua_typename(L, at));
    }
    lua_pop(L, 1);
}

/* when = false, or a function(ctx) */
static void parse_when(lua_State *L, bh_runbook *rb, bh_step *s, const char *what, const char *file,
                       int line) {
    int wt = lua_getfield(L, 1, "when");
    if (wt == LUA_TFUNCTION) {
        s->when_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    if (wt == LUA_TBOOLEAN)
        s->when_false = !lua_toboolean(L, -1);
    else if (wt != LUA_TNIL)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'when' must be a boolean or a function(ctx) returning one, not a %s", what,
                    lua_typename(L, wt));
    lua_pop(L, 1);
}

/* retries, backoff and on_failure: what a failure does */
static void parse_failure(lua_State *L, bh_runbook *rb, bh_step *s, const char *what,
                          const char *file, int line) {
    opt_duration(L, rb, 1, "backoff", what, file, line, &s->backoff_ms);
    int rt = lua_getfield(L, 1, "retries");
    if (rt != LUA_TNIL) {
        int isint = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isint);
        if (rt != LUA_TNUMBER || !isint || n < 0 || n > BH_MAX_RETRIES)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'retries' must be a whole number from 0 to %d", what, BH_MAX_RETRIES);
        else
            s->retries = (int)n;
    }
    lua_pop(L, 1);
    char *policy = opt_string(L, rb, 1, "on_failure", what, file, line);
    if (policy && strcmp(policy, "continue") == 0)
        s->on_failure = BH_FAIL_CONTINUE;
    else if (policy && strcmp(policy, "rollback") == 0)
        s->on_failure = BH_FAIL_ROLLBACK;
    else if (policy && strcmp(policy, "abort") != 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: on_failure must be \"abort\", \"continue\" or \"rollback\", not \"%s\"",
                    what, policy);
    free(policy);
}

/* run = function(ctx), unless an action or a person does the work */
static void parse_run(lua_State *L, bh_runbook *rb, bh_step *s, const char *what, const char *file,
                      int line) {
    int t = lua_getfield(L, 1, "run");
    if (s->action && t != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s: give 'run' or 'action', not both",
                    what);
    } else if (s->action) {
        /* the action is the body */
    } else if (t == LUA_TFUNCTION) {
        s->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        if (s->manual)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: a manual task has no 'run' function: a person does the work and "
                        "marks it done",
                        what);
        return;
    } else if (!s->manual || t != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'run' must be a function(ctx) ... end (or give action = "
                    "plugin.action {...})%s%s",
                    what, t == LUA_TNIL ? "" : ", not a ", t == LUA_TNIL ? "" : lua_typename(L, t));
    }
    lua_pop(L, 1);
}

static int l_step_body(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    struct bh_loader *ld = loader_of(L, rb, "step");
    const char *id = lua_tostring(L, lua_upvalueindex(2));
    char file[256];
    int line = caller_where(L, file, sizeof file);
    if (ld->pending_step && strcmp(ld->pending_step, id) == 0) {
        line = ld->pending_line;
        free(ld->pending_step);
        ld->pending_step = NULL;
    }
    char what[160];
    snprintf(what, sizeof what, "step '%s'", id);
    if (!lua_istable(L, 1)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: expected a table { run = function(ctx) ... end }", what);
        return 0;
    }
    const bh_step *dup = find_step(rb, id);
    if (dup) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "%s declared twice (first at line %d)",
                    what, dup->line);
        return 0;
    }
    check_fields(L, rb, 1, STEP_FIELDS, what, file, line);
    if (rb->nphases == 0) open_phase(rb, ld, "main");
    if (rb->nsteps >= BH_MAX_STEPS) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: a runbook may declare at most %d steps", what, BH_MAX_STEPS);
        return stop_loading(L, ld);
    }
    bh_step *s = new_step(rb, ld, id, file, line);
    s->doc = opt_string(L, rb, 1, "doc", what, file, line);
    s->effect = opt_string(L, rb, 1, "effect", what, file, line);
    s->timeout_set = opt_duration(L, rb, 1, "timeout", what, file, line, &s->timeout_ms);
    parse_after(L, rb, s, what, file, line);
    parse_when(L, rb, s, what, file, line);
    parse_failure(L, rb, s, what, file, line);
    parse_action(L, rb, s, what, file, line);
    parse_semantics(L, rb, s, what, file, line);
    if (!s->timeout_set) s->timeout_ms = rb->timeout_ms;
    parse_run(L, rb, s, what, file, line);
    lua_pushstring(L, id); /* so that parallel { step "a" {...}, ... } gets the ids */
    return 1;
}

static int l_step(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    struct bh_loader *ld = loader_of(L, rb, "step");
    char file[256];
    int line = caller_where(L, file, sizeof file);
    check_pending_step(rb, ld, file);
    const char *id = lua_tostring(L, 1);
    char secret[64];
    if (lua_type(L, 1) == LUA_TSTRING && holds_secret(rb, id, secret, sizeof secret)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "step: its id is built from secret(\"%s\"): a step's id names its files "
                    "(out/STEP.A.N.stdout, evidence/) and a secret never goes into a file name; "
                    "give a fixed id",
                    secret);
        id = "?";
    } else if (lua_type(L, 1) != LUA_TSTRING || !valid_name(id)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "step: expected an id of letters, digits, '-', '_' or '.', as in "
                    "step \"isolate-web\" { ... }");
        id = "?";
    }
    ld->pending_step = bh_util_xstrdup(id);
    ld->pending_line = line;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushstring(L, id);
    lua_pushcclosure(L, l_step_body, 2);
    return 1;
}

/* --- parallel { step "a" {...}, step "b" {...}, concurrency = N } ------ */

static int l_parallel(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    struct bh_loader *ld = loader_of(L, rb, "parallel");
    char file[256];
    int line = caller_where(L, file, sizeof file);
    check_pending_step(rb, ld, file);
    if (!lua_istable(L, 1)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "parallel: expected a table of steps, as in parallel { step \"a\" {...}, "
                    "step \"b\" {...} }");
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "concurrency") != 0)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "parallel: unknown field '%s' (known: concurrency, and the steps)",
                        lua_tostring(L, -1));
    }
    int cap = opt_count(L, rb, 1, "concurrency", "parallel", file, line, 1, BH_MAX_CONCURRENCY, 0);
    int g = ++ld->ngroups;
    ld->group_cap = bh_util_xrealloc(ld->group_cap, ((size_t)g + 1) * sizeof *ld->group_cap);
    ld->group_cap[g] = cap;
    size_t n = lua_rawlen(L, 1);
    for (size_t k = 1; k <= n; k++) {
        const char *id =
            lua_rawgeti(L, 1, (lua_Integer)k) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bh_step *st = id ? find_step(rb, id) : NULL;
        if (!st) {
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "parallel: item %zu is not a step declared in place (write "
                        "step \"id\" { ... } inside the braces)",
                        k);
        } else {
            size_t i = (size_t)(st - rb->steps);
            if (ld->group_of[i])
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                            "parallel: step '%s' is already in a parallel group", id);
            else
                ld->group_of[i] = g;
        }
        lua_pop(L, 1);
    }
    if (n < 2)
        bh_diag_add(&rb->diags, BH_DIAG_WARNING, file, line,
                    "parallel: a group of %zu step%s runs nothing in parallel", n,
                    n == 1 ? "" : "s");
    return 0;
}

/* --- load-time stand-ins ---------------------------------------------- */

static int ctx_at_load(lua_State *L) {
    return luaL_error(L, "ctx is only available inside a step's run function: loading a "
                         "runbook must have no side effects");
}

static int print_at_load(lua_State *L) {
    char file[256];
    int line = caller_where(L, file, sizeof file);
    void *ud;
    lua_getallocf(L, &ud);
    const bh_runbook *rb = ud;
    luaL_Buffer b;
    int n = lua_gettop(L); /* luaL_tolstring pushes: count first */
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    char *masked;
    fprintf(stderr, "%s:%d: print:%s\n", file, line,
            bh_redact_str(bh_keyring_mask(rb->keyring), lua_tostring(L, -1), &masked));
    free(masked);
    return 0;
}

/* secret("NAME"): the value from the secrets file or the environment,
 * registered for masking before the runbook sees it. */
static int l_secret(lua_State *L) {
    bh_runbook *rb = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = luaL_checkstring(L, 1);
    if (!bh_secrets_name_ok(name))
        return luaL_error(L, "secret: '%s' is not a secret name (letters, digits and _)", name);
    if (rb->secret_standins) {
        lua_pushfstring(L, "<secret:%s>", name);
        return 1;
    }
    const char *value, *code;
    size_t len;
    char why[400];
    if (bh_keyring_get(rb->keyring, name, &value, &len, &code, why, sizeof why) != 0) {
        if (rb->secrets_optional && strcmp(code, "secret_missing") == 0) {
            /* a drill on a laptop without the incident's secrets */
            lua_pushfstring(L, "<secret:%s>", name);
            return 1;
        }
        if (rb->loader) rb->param_errors++; /* like a missing parameter: exit 4 */
        lua_newtable(L);
        return bh_luax_raise(L, code, "%s", why);
    }
    lua_pushlstring(L, value, len);
    return 1;
}

static void install_declarations(lua_State *L, bh_runbook *rb, int env) {
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_secret, 1);
    lua_setfield(L, env, "secret");
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_phase, 1);
    lua_setfield(L, env, "phase");
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_step, 1);
    lua_setfield(L, env, "step");
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_parallel, 1);
    lua_setfield(L, env, "parallel");
    lua_pushlightuserdata(L, rb);
    lua_pushvalue(L, env);
    lua_pushcclosure(L, l_runbook, 2);
    lua_setfield(L, env, "runbook");
    lua_pushcfunction(L, print_at_load);
    lua_setfield(L, env, "print");

    lua_newtable(L); /* ctx: every use explains that it is not for load time */
    lua_newtable(L);
    lua_pushcfunction(L, ctx_at_load);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ctx_at_load);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ctx_at_load);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, -2);
    lua_setfield(L, env, "ctx");

    lua_newtable(L); /* param before runbook{} */
    lua_newtable(L);
    lua_pushcfunction(L, param_before_runbook);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, env, "param");
}

/* Warnings for what loads fine but will hurt on the day: `check` shows
 * them, `check --strict` fails on them. */
static int containment_phase(const char *phase) {
    return strncmp(phase, "contain", 7) == 0 || strncmp(phase, "isolat", 6) == 0;
}

static void lint(bh_runbook *rb) {
    for (size_t i = 0; i < rb->nparams; i++)
        if (!rb->params[i].doc || !rb->params[i].doc[0])
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, rb->path, rb->decl_line,
                        "parameter '%s' has no doc string: the responder filling it in at 3am "
                        "needs one",
                        rb->params[i].name);
    for (size_t i = 0; i < rb->nsteps; i++) {
        const bh_step *s = &rb->steps[i];
        if (s->destructive && !s->approve)
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, s->file, s->line,
                        "step '%s' is marked destructive but asks no approval: add approve = "
                        "\"why this is risky\"",
                        s->id);
        if (containment_phase(s->phase) && s->undo_ref == LUA_NOREF && !s->no_undo && !s->manual)
            bh_diag_add(
                &rb->diags, BH_DIAG_WARNING, s->file, s->line,
                "step '%s' contains (phase '%s') but has no undo: at the all-clear "
                "nobody can lift it with `bulkhead undo` (undo = false if it changes nothing)",
                s->id, s->phase);
        if (s->when_false)
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, s->file, s->line,
                        "step '%s' can never run: its condition is when = false", s->id);
        double limit = s->timeout_set ? s->timeout_ms : rb->timeout_ms;
        if (s->estimate_ms > 0 && limit > 0 && s->estimate_ms >= limit) {
            char e[32], l[32];
            bh_util_format_duration(s->estimate_ms, e, sizeof e);
            bh_util_format_duration(limit, l, sizeof l);
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, s->file, s->line,
                        "step '%s' usually takes %s (estimate) but times out after %s: raise "
                        "its timeout, or a dry run or drill times it out every time",
                        s->id, e, l);
        }
        if (s->manual && !s->timeout_set)
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, s->file, s->line,
                        "manual task '%s' has no explicit timeout: say how long a person may "
                        "take before the run stops waiting",
                        s->id);
        else if (!s->timeout_set && !rb->timeout_set)
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, s->file, s->line,
                        "step '%s' has no explicit timeout and the runbook sets no default: "
                        "the engine's 5m applies",
                        s->id);
    }
}

/* "file:12: message" -> file, 12, "message" when the prefix names file. */
static int split_location(const char *msg, const char *file, const char **rest) {
    size_t n = strlen(file);
    *rest = msg;
    if (strncmp(msg, file, n) != 0 || msg[n] != ':') return 0;
    char *end;
    long line = strtol(msg + n + 1, &end, 10);
    if (end == msg + n + 1 || *end != ':') return 0;
    *rest = end + 1 + (end[1] == ' ');
    return (int)line;
}

/* Replace the malloc'd *text with its masked copy, if it has secrets. */
static void mask_in_place(const bh_redact *r, char **text) {
    char *m = bh_redact_text(r, *text, strlen(*text), NULL);
    if (m) {
        free(*text);
        *text = m;
    }
}

static bh_runbook *new_runbook(const bh_runbook_opts *opts) {
    bh_runbook *rb = bh_util_xcalloc(1, sizeof *rb);
    bh_diag_init(&rb->diags);
    rb->path = bh_util_xstrdup(opts->path);
    rb->timeout_ms = BH_DEFAULT_STEP_TIMEOUT_MS;
    rb->kill_grace_ms = BH_DEFAULT_KILL_GRACE_MS;
    rb->placeholders = opts->placeholders;
    rb->params_ref = LUA_NOREF;
    rb->env_ref = LUA_NOREF;
    rb->mem_limit = BH_LUA_MEMORY_LIMIT;
    rb->max_instructions = BH_DEFAULT_MAX_INSTRUCTIONS;
    rb->keyring = bh_keyring_new(opts->secrets);
    rb->secret_standins = opts->secret_standins;
    rb->secrets_optional = opts->secrets_optional;
    rb->plugins_used = cJSON_CreateArray();
    rb->plugin_dirs = opts->plugin_dirs;
    return rb;
}

/* The runbook's own Lua state, hardened, with its environment (on the
 * stack, index returned) holding the declarations, inventories and
 * plugins. */
static int open_state(bh_runbook *rb) {
    lua_State *L = lua_newstate(rb_alloc, rb);
    if (!L) abort();
    /* Threads copy the main thread's extra space (where ctx keeps the
     * current attempt): it must start out NULL, not as garbage. */
    *(void **)lua_getextraspace(L) = NULL;
    rb->L = L;
    bh_guard_install(L); /* every call into it is bounded (guard.h) */
    luaL_openlibs(L);
    bh_sandbox_harden(L);
    bh_luax_init(L);
    bh_sandbox_new_env(L);
    int env = lua_gettop(L);
    install_declarations(L, rb, env);
    bh_inventory_install(L, rb, env);
    if (rb->plugin_dirs) bh_plugin_install(L, rb, env);
    return env;
}

/* The error that stopped loading, at the runbook's line that caused it. */
static void report_load_error(bh_runbook *rb, const char *path, const bh_luax_error *err) {
    const char *rest;
    int line = split_location(err->message, path, &rest);
    /* a message that names the runbook's own line is about it */
    const char *src = line || !err->source ? path : err->source;
    int at = line ? line : err->line;
    /* Raised inside the engine's own chunks or a plugin (inventory
     * parsing, a plugin's checks): the runbook's line that called it is
     * where the author looks. */
    int in_runbook_frame = 0;
    if (!line && strcmp(src, path) != 0 && err->traceback) {
        char *needle = bh_util_asprintf("\t%s:", path);
        const char *hit = strstr(err->traceback, needle), *ignored;
        free(needle);
        int l = hit ? split_location(hit + 1, path, &ignored) : 0;
        if (l > 0) {
            at = l;
            in_runbook_frame = 1;
        }
    }
    if (in_runbook_frame) {
        /* the message may start with the engine chunk's own place */
        const char *colon = strstr(rest, ": ");
        if (strncmp(rest, src, strlen(src)) == 0 && colon) rest = colon + 2;
        src = path;
    }
    bh_diag_add(&rb->diags, BH_DIAG_ERROR, src, at, "%s", rest);
    rb->traceback = err->traceback ? bh_util_xstrdup(err->traceback) : NULL;
}

/* After the file ran: what it must have declared, and the graph. */
static void check_declared(bh_runbook *rb, struct bh_loader *ld, const char *path) {
    check_pending_step(rb, ld, path);
    if (rb->decl_line == 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, path, 1,
                    "no runbook{ id = ..., title = ... } declaration");
    else if (rb->nsteps == 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, path, rb->decl_line,
                    "the runbook declares no steps");
    else if (bh_graph_resolve(rb, &(bh_graph_groups){ld->group_of, ld->group_cap, ld->ngroups}) ==
             0)
        lint(rb);
}

/* Compile and run the file's text in the runbook's state: it declares. */
static void run_file(bh_runbook *rb, struct bh_loader *ld, const char *path, const char *text,
                     size_t len) {
    int env = open_state(rb);
    lua_State *L = rb->L;
    char *chunkname = bh_util_asprintf("@%s", path);
    int st = bh_sandbox_load(L, text, len, chunkname, env);
    free(chunkname);
    if (st != LUA_OK) {
        const char *rest;
        const char *msg = lua_tostring(L, -1);
        int line = split_location(msg, path, &rest);
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, path, line, "%s", rest);
        return;
    }
    lua_pushvalue(L, env);
    rb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_remove(L, env);
    bh_luax_error err;
    /* Loading must end: `check` of a hostile or broken file cannot hang,
     * and Ctrl-C stops it. Loading only declares: the budget is generous. */
    bh_guard load;
    bh_guard_init(&load, "loading the runbook", BH_LOAD_MAX_INSTRUCTIONS, BH_LOAD_TIMEOUT_MS, 1);
    load.hint = "an endless loop at load time?";
    st = bh_guard_pcall(L, &load, 0, 0, &err);
    if (st == LUA_OK) {
        check_declared(rb, ld, path);
    } else {
        /* After STOP_LOADING the problems are already in the diagnostics. */
        if (!ld->stopped) report_load_error(rb, path, &err);
        bh_luax_error_free(&err);
    }
}

bh_runbook_status bh_runbook_load(const bh_runbook_opts *opts, bh_runbook **out) {
    bh_runbook *rb = new_runbook(opts);
    *out = rb;
    size_t len;
    char *text = bh_util_read_file(opts->path, &len);
    if (!text) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, opts->path, 0, "cannot read runbook: %s",
                    strerror(errno));
        return BH_RUNBOOK_UNREADABLE;
    }
    char hex[BH_SHA256_HEX_LEN + 1];
    bh_util_sha256_hex(text, len, hex);
    rb->sha256 = bh_util_xstrdup(hex);
    struct bh_loader ld = {.params = opts->params};
    rb->loader = &ld;
    run_file(rb, &ld, opts->path, text, len);
    rb->loader = NULL; /* the plan is fixed from here on */
    free(text);
    free(ld.pending_step);
    free(ld.current_phase);
    free(ld.group_of);
    free(ld.group_cap);
    lua_settop(rb->L, 0);
    /* What loading reports must not show a secret it resolved either. */
    const bh_redact *mask = bh_keyring_mask(rb->keyring);
    for (size_t i = 0; i < rb->diags.count; i++)
        mask_in_place(mask, &rb->diags.items[i].message);
    if (rb->traceback) mask_in_place(mask, &rb->traceback);
    if (rb->param_errors > 0 && bh_diag_errors(&rb->diags) == (size_t)rb->param_errors)
        return BH_RUNBOOK_BAD_PARAMS;
    return bh_diag_errors(&rb->diags) ? BH_RUNBOOK_INVALID : BH_RUNBOOK_OK;
}

void bh_runbook_free(bh_runbook *rb) {
    if (!rb) return;
    if (rb->L) lua_close(rb->L); /* no runbook finalizer can run here: the sandbox has none */
    bh_keyring_free(rb->keyring);
    cJSON_Delete(rb->plugins_used);
    for (size_t i = 0; i < rb->nsteps; i++) {
        free(rb->steps[i].id);
        free(rb->steps[i].phase);
        free(rb->steps[i].doc);
        free(rb->steps[i].file);
        for (size_t k = 0; k < rb->steps[i].nafter; k++)
            free(rb->steps[i].after[k]);
        free(rb->steps[i].after);
        free(rb->steps[i].deps);
        free(rb->steps[i].approve);
        for (size_t k = 0; k < rb->steps[i].nchecklist; k++)
            free(rb->steps[i].checklist[k]);
        free(rb->steps[i].checklist);
        free(rb->steps[i].effect);
        cJSON_Delete(rb->steps[i].simulate);
        free(rb->steps[i].action);
        free(rb->steps[i].action_desc);
    }
    bh_graph_free(rb);
    free(rb->steps);
    for (size_t i = 0; i < rb->nphases; i++)
        free(rb->phases[i]);
    free(rb->phases);
    for (size_t i = 0; i < rb->nparams; i++) {
        free(rb->params[i].name);
        free(rb->params[i].doc);
        free(rb->params[i].pattern);
        cJSON_Delete(rb->params[i].def);
    }
    free(rb->params);
    cJSON_Delete(rb->param_values);
    bh_diag_free(&rb->diags);
    free(rb->path);
    free(rb->sha256);
    free(rb->id);
    free(rb->title);
    free(rb->severity);
    free(rb->owner);
    free(rb->description);
    free(rb->traceback);
    free(rb);
}

static void add_opt_string(cJSON *o, const char *k, const char *v) {
    if (v) cJSON_AddStringToObject(o, k, v);
}

cJSON *bh_runbook_plan_json(const bh_runbook *rb) {
    cJSON *plan = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(plan, "runbook");
    add_opt_string(meta, "id", rb->id);
    add_opt_string(meta, "title", rb->title);
    add_opt_string(meta, "severity", rb->severity);
    add_opt_string(meta, "owner", rb->owner);
    add_opt_string(meta, "description", rb->description);
    add_opt_string(meta, "path", rb->path);
    add_opt_string(meta, "sha256", rb->sha256);
    cJSON_AddNumberToObject(meta, "timeout_ms", rb->timeout_ms);
    cJSON_AddStringToObject(meta, "schedule", rb->graph ? "graph" : "sequence");
    cJSON *params = cJSON_AddArrayToObject(plan, "params");
    for (size_t i = 0; i < rb->nparams; i++) {
        const bh_param_spec *p = &rb->params[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "type", bh_params_type_name(p->type));
        cJSON_AddBoolToObject(o, "required", p->required);
        if (p->def) cJSON_AddItemToObject(o, "default", cJSON_Duplicate(p->def, 1));
        add_opt_string(o, "doc", p->doc);
        add_opt_string(o, "pattern", p->pattern);
        const cJSON *v =
            rb->param_values ? cJSON_GetObjectItemCaseSensitive(rb->param_values, p->name) : NULL;
        if (v) cJSON_AddItemToObject(o, "value", cJSON_Duplicate(v, 1));
        cJSON_AddItemToArray(params, o);
    }
    cJSON *phases = cJSON_AddArrayToObject(plan, "phases");
    for (size_t i = 0; i < rb->nphases; i++) {
        cJSON *ph = cJSON_CreateObject();
        cJSON_AddStringToObject(ph, "name", rb->phases[i]);
        cJSON *steps = cJSON_AddArrayToObject(ph, "steps");
        for (size_t j = 0; j < rb->nsteps; j++) {
            const bh_step *s = &rb->steps[j];
            if (strcmp(s->phase, rb->phases[i]) != 0) continue;
            cJSON *so = cJSON_CreateObject();
            cJSON_AddStringToObject(so, "id", s->id);
            add_opt_string(so, "doc", s->doc);
            cJSON_AddNumberToObject(so, "timeout_ms", s->timeout_ms);
            cJSON_AddNumberToObject(so, "retries", s->retries);
            cJSON *after = cJSON_AddArrayToObject(so, "after");
            for (size_t k = 0; k < s->nafter; k++)
                cJSON_AddItemToArray(after, cJSON_CreateString(s->after[k]));
            if (s->when_false || s->when_ref != LUA_NOREF)
                cJSON_AddStringToObject(so, "when", s->when_false ? "false" : "function");
            if (s->retries) cJSON_AddNumberToObject(so, "backoff_ms", s->backoff_ms);
            cJSON_AddStringToObject(so, "on_failure", bh_model_policy_name(s->on_failure));
            if (s->each_ref != LUA_NOREF) {
                cJSON *each = cJSON_AddObjectToObject(so, "each");
                cJSON_AddStringToObject(each, "items", s->each_fn ? "function" : "list");
                if (!s->each_fn) {
                    lua_rawgeti(rb->L, LUA_REGISTRYINDEX, s->each_ref);
                    cJSON_AddNumberToObject(each, "count", (double)lua_rawlen(rb->L, -1));
                    lua_pop(rb->L, 1);
                }
                if (s->concurrency) cJSON_AddNumberToObject(each, "concurrency", s->concurrency);
            }
            if (rb->units && rb->units[s->unit].parallel)
                cJSON_AddNumberToObject(so, "parallel_unit", (double)s->unit);
            if (s->approve) {
                cJSON *ap = cJSON_AddObjectToObject(so, "approve");
                cJSON_AddStringToObject(ap, "reason", s->approve);
                cJSON_AddNumberToObject(ap, "approvers", s->approvers);
                cJSON_AddNumberToObject(ap, "timeout_ms", s->approve_timeout_ms);
                cJSON_AddStringToObject(ap, "on_timeout",
                                        s->approve_on_timeout ? "approve" : "deny");
            }
            if (s->manual) {
                cJSON *m = cJSON_AddArrayToObject(so, "manual");
                for (size_t k = 0; k < s->nchecklist; k++)
                    cJSON_AddItemToArray(m, cJSON_CreateString(s->checklist[k]));
            }
            cJSON_AddBoolToObject(so, "undo", s->undo_ref != LUA_NOREF);
            if (s->verify_ref != LUA_NOREF) {
                cJSON *v = cJSON_AddObjectToObject(so, "verify");
                cJSON_AddNumberToObject(v, "timeout_ms", s->verify_timeout_ms);
                cJSON_AddNumberToObject(v, "interval_ms", s->verify_interval_ms);
            }
            if (s->every_ms > 0) cJSON_AddNumberToObject(so, "every_ms", s->every_ms);
            if (s->destructive) cJSON_AddBoolToObject(so, "destructive", 1);
            if (s->action) cJSON_AddStringToObject(so, "action", s->action);
            if (s->action_desc) cJSON_AddStringToObject(so, "action_description", s->action_desc);
            if (s->idempotent) cJSON_AddBoolToObject(so, "idempotent", 1);
            cJSON_AddStringToObject(so, "file", s->file);
            cJSON_AddNumberToObject(so, "line", s->line);
            cJSON_AddItemToArray(steps, so);
        }
        cJSON_AddItemToArray(phases, ph);
    }
    return plan;
}
