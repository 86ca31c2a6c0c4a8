#include "runbook.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "luax.h"
#include "sandbox.h"
#include "util.h"

/* Raised (as a light userdata) to stop loading after problems that are
 * already in the diagnostics; never shown to anyone. */
static char STOP_LOADING;

static const char *const SEVERITIES[] = {"low", "medium", "high", "critical", NULL};
static const char *const RUNBOOK_FIELDS[] = {
    "id", "title", "severity", "owner", "description", "timeout", "kill_grace", "params", NULL};
static const char *const PARAM_FIELDS[] = {"type", "required", "default", "doc", NULL};
static const char *const STEP_FIELDS[] = {"run",        "doc",  "timeout", "retries", "backoff",
                                          "on_failure", "when", "after",   NULL};

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

static int l_runbook(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
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
        rb->stopped = 1;
        lua_pushlightuserdata(L, &STOP_LOADING);
        return lua_error(L);
    }
    rb->decl_line = line;
    check_fields(L, rb, 1, RUNBOOK_FIELDS, "runbook", file, line);
    rb->id = opt_string(L, rb, 1, "id", "runbook", file, line);
    rb->title = opt_string(L, rb, 1, "title", "runbook", file, line);
    rb->severity = opt_string(L, rb, 1, "severity", "runbook", file, line);
    rb->owner = opt_string(L, rb, 1, "owner", "runbook", file, line);
    rb->description = opt_string(L, rb, 1, "description", "runbook", file, line);
    if (!rb->id || !valid_name(rb->id))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: 'id' is required: letters, digits, '-', '_' and '.'%s%s%s",
                    rb->id ? " (got \"" : "", rb->id ? rb->id : "", rb->id ? "\")" : "");
    if (!rb->title)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line, "runbook: 'title' is required");
    if (rb->severity && !in_list(rb->severity, SEVERITIES))
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: severity '%s' is not one of low, medium, high, critical",
                    rb->severity);
    if (!rb->severity) rb->severity = bh_util_xstrdup("medium");
    rb->timeout_set = opt_duration(L, rb, 1, "timeout", "runbook", file, line, &rb->timeout_ms);
    opt_duration(L, rb, 1, "kill_grace", "runbook", file, line, &rb->kill_grace_ms);

    int t = lua_getfield(L, 1, "params");
    if (t == LUA_TTABLE) {
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            n++;
            lua_pop(L, 1);
        }
        rb->params = bh_util_xcalloc(n ? n : 1, sizeof *rb->params);
        /* Declaration order is lost in a Lua table: sort by name so plans
         * and journals are stable. */
        lua_newtable(L);
        int names = lua_gettop(L);
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, -3)) {
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
        for (size_t i = 1; i <= k; i++) {
            lua_rawgeti(L, names, (lua_Integer)i);
            const char *name = lua_tostring(L, -1);
            lua_pushvalue(L, -1);
            lua_gettable(L, names - 1);
            declare_param(L, rb, name, lua_gettop(L), file, line);
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    } else if (t != LUA_TNIL) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "runbook: 'params' must be a table of declarations");
    }
    lua_pop(L, 1);

    static const bh_params_input none = {0};
    size_t before = bh_diag_errors(&rb->diags);
    rb->param_values =
        bh_params_resolve(rb->params, rb->nparams, rb->opts_params ? rb->opts_params : &none,
                          rb->placeholders, file, line, &rb->diags);
    rb->param_errors = (int)(bh_diag_errors(&rb->diags) - before);
    if (rb->param_errors) {
        rb->stopped = 1;
        lua_pushlightuserdata(L, &STOP_LOADING);
        return lua_error(L);
    }
    push_param_table(L, rb);
    lua_pushvalue(L, -1);
    rb->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_setfield(L, lua_upvalueindex(2), "param");
    return 0;
}

/* --- phase "name" ------------------------------------------------------ */

static void check_pending_step(bh_runbook *rb, const char *file) {
    if (!rb->pending_step) return;
    bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, rb->pending_line,
                "step '%s' has no body: write step \"%s\" { run = function(ctx) ... end }",
                rb->pending_step, rb->pending_step);
    free(rb->pending_step);
    rb->pending_step = NULL;
}

/* Add a phase; the steps declared from now on belong to it. */
static void open_phase(bh_runbook *rb, const char *name) {
    rb->phases = realloc(rb->phases, (rb->nphases + 1) * sizeof *rb->phases);
    if (!rb->phases) abort();
    rb->phases[rb->nphases++] = bh_util_xstrdup(name);
    free(rb->current_phase);
    rb->current_phase = bh_util_xstrdup(name);
}

static int l_phase(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    char file[256];
    int line = caller_where(L, file, sizeof file);
    check_pending_step(rb, file);
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
    open_phase(rb, name);
    return 0;
}

/* --- step "id" { ... } ------------------------------------------------- */

static bh_step *find_step(bh_runbook *rb, const char *id) {
    for (size_t i = 0; i < rb->nsteps; i++)
        if (strcmp(rb->steps[i].id, id) == 0) return &rb->steps[i];
    return NULL;
}

static int l_step_body(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    const char *id = lua_tostring(L, lua_upvalueindex(2));
    char file[256];
    int line = caller_where(L, file, sizeof file);
    if (rb->pending_step && strcmp(rb->pending_step, id) == 0) {
        line = rb->pending_line;
        free(rb->pending_step);
        rb->pending_step = NULL;
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
    if (rb->nphases == 0) open_phase(rb, "main");
    if (rb->nsteps >= BH_MAX_STEPS) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: a runbook may declare at most %d steps", what, BH_MAX_STEPS);
        rb->stopped = 1;
        lua_pushlightuserdata(L, &STOP_LOADING);
        return lua_error(L);
    }
    if (rb->nsteps == rb->capsteps) {
        rb->capsteps = rb->capsteps ? rb->capsteps * 2 : 16;
        rb->steps = realloc(rb->steps, rb->capsteps * sizeof *rb->steps);
        if (!rb->steps) abort();
    }
    bh_step *s = &rb->steps[rb->nsteps++];
    memset(s, 0, sizeof(*s));
    s->id = bh_util_xstrdup(id);
    s->phase = bh_util_xstrdup(rb->current_phase);
    s->file = bh_util_xstrdup(file);
    s->line = line;
    s->run_ref = LUA_NOREF;
    s->doc = opt_string(L, rb, 1, "doc", what, file, line);
    s->timeout_set = opt_duration(L, rb, 1, "timeout", what, file, line, &s->timeout_ms);
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
    s->when_ref = LUA_NOREF;
    int wt = lua_getfield(L, 1, "when");
    if (wt == LUA_TFUNCTION) {
        s->when_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        if (wt == LUA_TBOOLEAN)
            s->when_false = !lua_toboolean(L, -1);
        else if (wt != LUA_TNIL)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                        "%s: 'when' must be a boolean or a function(ctx) returning one, not a %s",
                        what, lua_typename(L, wt));
        lua_pop(L, 1);
    }
    s->backoff_ms = BH_DEFAULT_BACKOFF_MS;
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
        s->on_failure_continue = 1;
    else if (policy && strcmp(policy, "rollback") == 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: on_failure = \"rollback\" needs undo, which this version does not "
                    "have yet; use \"abort\" or \"continue\"",
                    what);
    else if (policy && strcmp(policy, "abort") != 0)
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: on_failure must be \"abort\" or \"continue\", not \"%s\"", what, policy);
    free(policy);
    if (!s->timeout_set) s->timeout_ms = rb->timeout_ms;
    int t = lua_getfield(L, 1, "run");
    if (t == LUA_TFUNCTION) {
        s->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "%s: 'run' must be a function(ctx) ... end%s%s", what,
                    t == LUA_TNIL ? "" : ", not a ", t == LUA_TNIL ? "" : lua_typename(L, t));
        lua_pop(L, 1);
    }
    return 0;
}

static int l_step(lua_State *L) {
    bh_runbook *rb = upvalue_rb(L);
    char file[256];
    int line = caller_where(L, file, sizeof file);
    check_pending_step(rb, file);
    const char *id = lua_tostring(L, 1);
    if (lua_type(L, 1) != LUA_TSTRING || !valid_name(id)) {
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, file, line,
                    "step: expected an id of letters, digits, '-', '_' or '.', as in "
                    "step \"isolate-web\" { ... }");
        id = "?";
    }
    rb->pending_step = bh_util_xstrdup(id);
    rb->pending_line = line;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushstring(L, id);
    lua_pushcclosure(L, l_step_body, 2);
    return 1;
}

/* --- load-time stand-ins ---------------------------------------------- */

static int ctx_at_load(lua_State *L) {
    return luaL_error(L, "ctx is only available inside a step's run function: loading a "
                         "runbook must have no side effects");
}

static int print_at_load(lua_State *L) {
    char file[256];
    int line = caller_where(L, file, sizeof file);
    fprintf(stderr, "%s:%d: print:", file, line);
    int n = lua_gettop(L); /* luaL_tolstring pushes: count first */
    for (int i = 1; i <= n; i++) {
        fprintf(stderr, " %s", luaL_tolstring(L, i, NULL));
        lua_pop(L, 1);
    }
    fputc('\n', stderr);
    return 0;
}

static void install_declarations(lua_State *L, bh_runbook *rb, int env) {
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_phase, 1);
    lua_setfield(L, env, "phase");
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_step, 1);
    lua_setfield(L, env, "step");
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

/* Depth-first search for a cycle through step i; marks: 0 new, 1 on the
 * current path, 2 done. Reports the first cycle found. */
static int find_cycle(bh_runbook *rb, size_t i, unsigned char *mark, size_t *path, size_t depth) {
    mark[i] = 1;
    path[depth] = i;
    for (size_t k = 0; k < rb->steps[i].nafter; k++) {
        size_t d = rb->steps[i].deps[k];
        if (mark[d] == 1) {
            char text[512] = "";
            size_t start = depth;
            while (path[start] != d)
                start--;
            for (size_t p = start; p <= depth; p++) {
                size_t used = strlen(text);
                snprintf(text + used, sizeof text - used, "%s -> ", rb->steps[path[p]].id);
            }
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s", rb->steps[d].id);
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, rb->steps[d].file, rb->steps[d].line,
                        "dependency cycle: %s (each waits for the next through 'after')", text);
            return 1;
        }
        if (mark[d] == 0 && find_cycle(rb, d, mark, path, depth + 1)) return 1;
    }
    mark[i] = 2;
    return 0;
}

/* Resolve `after` names, refuse unknown names and cycles, and fix the run
 * order: a step runs once everything it waits for has, and otherwise in
 * declaration order. Returns 0 when the order is set. */
static int resolve_order(bh_runbook *rb) {
    int bad = 0;
    for (size_t i = 0; i < rb->nsteps; i++) {
        bh_step *s = &rb->steps[i];
        s->deps = bh_util_xcalloc(s->nafter ? s->nafter : 1, sizeof *s->deps);
        for (size_t k = 0; k < s->nafter; k++) {
            const bh_step *d = find_step(rb, s->after[k]);
            if (!d) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, s->file, s->line,
                            "step '%s': 'after' names '%s', which is not a step of this "
                            "runbook",
                            s->id, s->after[k]);
                bad = 1;
            } else if (d == s) {
                bh_diag_add(&rb->diags, BH_DIAG_ERROR, s->file, s->line,
                            "step '%s' cannot wait for itself", s->id);
                bad = 1;
            } else {
                s->deps[k] = (size_t)(d - rb->steps);
            }
        }
    }
    if (bad) return -1;
    unsigned char *mark = bh_util_xcalloc(rb->nsteps, 1);
    size_t *path = bh_util_xcalloc(rb->nsteps, sizeof *path);
    for (size_t i = 0; i < rb->nsteps && !bad; i++)
        if (mark[i] == 0) bad = find_cycle(rb, i, mark, path, 0);
    free(path);
    if (bad) {
        free(mark);
        return -1;
    }
    /* Kahn's algorithm, always taking the earliest declared ready step. */
    rb->order = bh_util_xcalloc(rb->nsteps, sizeof *rb->order);
    memset(mark, 0, rb->nsteps);
    for (size_t n = 0; n < rb->nsteps; n++) {
        for (size_t i = 0; i < rb->nsteps; i++) {
            if (mark[i]) continue;
            int ready = 1;
            for (size_t k = 0; k < rb->steps[i].nafter; k++)
                ready &= mark[rb->steps[i].deps[k]];
            if (ready) {
                mark[i] = 1;
                rb->order[n] = i;
                break;
            }
        }
    }
    free(mark);
    return 0;
}

/* Warnings for what loads fine but will hurt on the day: `check` shows
 * them, `check --strict` fails on them. */
static void lint(bh_runbook *rb) {
    for (size_t i = 0; i < rb->nparams; i++)
        if (!rb->params[i].doc || !rb->params[i].doc[0])
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, rb->path, rb->decl_line,
                        "parameter '%s' has no doc string: the responder filling it in at 3am "
                        "needs one",
                        rb->params[i].name);
    if (rb->timeout_set) return;
    for (size_t i = 0; i < rb->nsteps; i++)
        if (!rb->steps[i].timeout_set)
            bh_diag_add(&rb->diags, BH_DIAG_WARNING, rb->steps[i].file, rb->steps[i].line,
                        "step '%s' has no explicit timeout and the runbook sets no default: "
                        "the engine's 5m applies",
                        rb->steps[i].id);
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

bh_runbook_status bh_runbook_load(const bh_runbook_opts *opts, bh_runbook **out) {
    bh_runbook *rb = bh_util_xcalloc(1, sizeof *rb);
    *out = rb;
    bh_diag_init(&rb->diags);
    rb->path = bh_util_xstrdup(opts->path);
    rb->timeout_ms = BH_DEFAULT_STEP_TIMEOUT_MS;
    rb->kill_grace_ms = BH_DEFAULT_KILL_GRACE_MS;
    rb->opts_params = opts->params;
    rb->placeholders = opts->placeholders;
    rb->params_ref = LUA_NOREF;
    rb->env_ref = LUA_NOREF;
    rb->mem_limit = BH_LUA_MEMORY_LIMIT;

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

    lua_State *L = lua_newstate(rb_alloc, rb);
    if (!L) abort();
    /* Threads copy the main thread's extra space (where ctx keeps the
     * current attempt): it must start out NULL, not as garbage. */
    *(void **)lua_getextraspace(L) = NULL;
    rb->L = L;
    luaL_openlibs(L);
    bh_sandbox_harden(L);
    bh_luax_init(L);
    bh_sandbox_new_env(L);
    int env = lua_gettop(L);
    install_declarations(L, rb, env);

    char *chunkname = bh_util_asprintf("@%s", opts->path);
    int st = bh_sandbox_load(L, text, len, chunkname, env);
    free(text);
    if (st != LUA_OK) {
        const char *rest;
        const char *msg = lua_tostring(L, -1);
        int line = split_location(msg, opts->path, &rest);
        bh_diag_add(&rb->diags, BH_DIAG_ERROR, opts->path, line, "%s", rest);
        lua_settop(L, 0);
        free(chunkname);
        return BH_RUNBOOK_INVALID;
    }
    free(chunkname);
    lua_pushvalue(L, env);
    rb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_remove(L, env);

    bh_luax_error err;
    st = bh_luax_pcall(L, 0, 0, &err);
    if (st != LUA_OK) {
        /* After STOP_LOADING the problems are already in the diagnostics. */
        if (!rb->stopped) {
            const char *rest;
            int line = split_location(err.message, opts->path, &rest);
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, err.source ? err.source : opts->path,
                        line ? line : err.line, "%s", rest);
            rb->traceback = err.traceback ? bh_util_xstrdup(err.traceback) : NULL;
        }
        bh_luax_error_free(&err);
    } else {
        check_pending_step(rb, opts->path);
        if (rb->decl_line == 0)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, opts->path, 1,
                        "no runbook{ id = ..., title = ... } declaration");
        else if (rb->nsteps == 0)
            bh_diag_add(&rb->diags, BH_DIAG_ERROR, opts->path, rb->decl_line,
                        "the runbook declares no steps");
        else if (resolve_order(rb) == 0)
            lint(rb);
    }
    lua_settop(L, 0);
    if (rb->param_errors > 0 && bh_diag_errors(&rb->diags) == (size_t)rb->param_errors)
        return BH_RUNBOOK_BAD_PARAMS;
    return bh_diag_errors(&rb->diags) ? BH_RUNBOOK_INVALID : BH_RUNBOOK_OK;
}

void bh_runbook_free(bh_runbook *rb) {
    if (!rb) return;
    if (rb->L) lua_close(rb->L);
    for (size_t i = 0; i < rb->nsteps; i++) {
        free(rb->steps[i].id);
        free(rb->steps[i].phase);
        free(rb->steps[i].doc);
        free(rb->steps[i].file);
        for (size_t k = 0; k < rb->steps[i].nafter; k++)
            free(rb->steps[i].after[k]);
        free(rb->steps[i].after);
        free(rb->steps[i].deps);
    }
    free(rb->order);
    free(rb->steps);
    for (size_t i = 0; i < rb->nphases; i++)
        free(rb->phases[i]);
    free(rb->phases);
    for (size_t i = 0; i < rb->nparams; i++) {
        free(rb->params[i].name);
        free(rb->params[i].doc);
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
    free(rb->pending_step);
    free(rb->current_phase);
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
    cJSON *params = cJSON_AddArrayToObject(plan, "params");
    for (size_t i = 0; i < rb->nparams; i++) {
        const bh_param_spec *p = &rb->params[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "type", bh_params_type_name(p->type));
        cJSON_AddBoolToObject(o, "required", p->required);
        if (p->def) cJSON_AddItemToObject(o, "default", cJSON_Duplicate(p->def, 1));
        add_opt_string(o, "doc", p->doc);
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
            cJSON_AddStringToObject(so, "on_failure",
                                    s->on_failure_continue ? "continue" : "abort");
            cJSON_AddStringToObject(so, "file", s->file);
            cJSON_AddNumberToObject(so, "line", s->line);
            cJSON_AddItemToArray(steps, so);
        }
        cJSON_AddItemToArray(phases, ph);
    }
    return plan;
}
