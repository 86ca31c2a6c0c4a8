#include "lua/luax.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

#define ERROR_MT "bulkhead.error"
#define JSON_MAX_DEPTH 64
#define JSON_MAX_NODES 1000000

static char *dup_or_null(const char *s) {
    return s ? bh_util_xstrdup(s) : NULL;
}

/* The string at idx, whole: a NUL inside is kept (json.h), not where the
 * copy ends. */
static char *dup_lua_string(lua_State *L, int idx) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return s ? bh_json_from_bytes(s, len) : NULL;
}

void bh_luax_error_free(bh_luax_error *e) {
    if (!e) return;
    free(e->code);
    free(e->message);
    free(e->source);
    free(e->traceback);
    memset(e, 0, sizeof(*e));
}

cJSON *bh_luax_error_json(const bh_luax_error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", e->code ? e->code : "lua_error");
    cJSON_AddStringToObject(o, "message", e->message ? e->message : "");
    if (e->source) cJSON_AddStringToObject(o, "source", e->source);
    if (e->line > 0) cJSON_AddNumberToObject(o, "line", e->line);
    if (e->traceback) cJSON_AddStringToObject(o, "traceback", e->traceback);
    return o;
}

static int error_tostring(lua_State *L) {
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1)) lua_pushliteral(L, "error");
    return 1;
}

void bh_luax_init(lua_State *L) {
    if (luaL_newmetatable(L, ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "bulkhead.error");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

int bh_luax_raise(lua_State *L, const char *code, const char *fmt, ...) {
    bh_luax_checkstack(L, 5);
    if (!lua_istable(L, -1)) lua_newtable(L);
    /* luaL_where(L, 1): the Lua code that called the C primitive, unless
     * that is the engine's own wrapper (its place means nothing to the
     * runbook's author). */
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "S", &ar) &&
        strncmp(ar.source, "=bulkhead", 9) == 0)
        lua_pushliteral(L, "");
    else
        luaL_where(L, 1);
    /* Not a fixed buffer (a message cut short could cut a secret in half,
     * and the half would escape masking), and Lua's memory: if pushing
     * raises, nothing of ours leaks. */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *msg = lua_newuserdatauv(L, (size_t)n + 1, 0);
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    lua_pushstring(L, msg);
    lua_remove(L, -2);
    lua_concat(L, 2);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    luaL_setmetatable(L, ERROR_MT);
    return lua_error(L);
}

/* The innermost frame that runs Lua code: where the error happened from the
 * runbook author's point of view. */
static void innermost_lua_frame(lua_State *L, int level, bh_luax_error *err) {
    lua_Debug ar;
    for (; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar)) continue;
        if (ar.currentline > 0 && ar.what[0] != 'C') {
            err->source = bh_util_xstrdup(ar.short_src);
            err->line = ar.currentline;
            return;
        }
    }
}

/* Fill code and message from an error value at idx of L. */
static void describe_value(lua_State *L, int idx, bh_luax_error *err) {
    idx = lua_absindex(L, idx);
    /* Raw reads only: this runs outside any protected call (on a dead
     * coroutine, or inside a message handler), and a runbook's metamethod
     * that raises here would abort the engine. */
    if (lua_istable(L, idx)) {
        lua_pushliteral(L, "code");
        if (lua_rawget(L, idx) == LUA_TSTRING) err->code = dup_lua_string(L, -1);
        lua_pop(L, 1);
        lua_pushliteral(L, "message");
        if (lua_rawget(L, idx) == LUA_TSTRING) err->message = dup_lua_string(L, -1);
        lua_pop(L, 1);
    }
    if (!err->message) {
        int t = lua_type(L, idx);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            lua_pushvalue(L, idx); /* lua_tostring converts numbers in place */
            err->message = dup_lua_string(L, -1);
            lua_pop(L, 1);
        } else {
            err->message = bh_util_asprintf("(error object is a %s without a message field)",
                                            lua_typename(L, t));
        }
    }
    if (!err->code) err->code = bh_util_xstrdup("lua_error");
}

/* Message handler for bh_luax_pcall: wraps the error value into a table
 * {value, source, line, traceback} while the stack that failed still exists. */
static int msgh(lua_State *L) {
    bh_luax_error e = {0};
    describe_value(L, 1, &e);
    innermost_lua_frame(L, 1, &e);
    luaL_traceback(L, L, NULL, 1);
    lua_newtable(L);
    lua_insert(L, -2);
    lua_setfield(L, -2, "traceback");
    lua_pushstring(L, e.code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, e.message);
    lua_setfield(L, -2, "message");
    if (e.source) {
        lua_pushstring(L, e.source);
        lua_setfield(L, -2, "source");
        lua_pushinteger(L, e.line);
        lua_setfield(L, -2, "line");
    }
    bh_luax_error_free(&e);
    return 1;
}

static char *field_string(lua_State *L, int idx, const char *name) {
    char *out = NULL;
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) == LUA_TSTRING) out = bh_util_xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return out;
}

int bh_luax_pcall(lua_State *L, int nargs, int nresults, bh_luax_error *err) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);
    int st = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (st == LUA_OK) return st;
    if (err) {
        memset(err, 0, sizeof(*err));
        if (lua_istable(L, -1)) {
            err->code = field_string(L, -1, "code");
            err->message = field_string(L, -1, "message");
            err->source = field_string(L, -1, "source");
            err->traceback = field_string(L, -1, "traceback");
            lua_getfield(L, -1, "line");
            err->line = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        if (!err->message) {
            /* Memory errors skip the handler's work: the value is a string. */
            const char *s = lua_tostring(L, -1);
            err->message = dup_or_null(s ? s : "unknown error");
        }
        if (!err->code) err->code = bh_util_xstrdup(st == LUA_ERRMEM ? "memory" : "lua_error");
    }
    lua_pop(L, 1);
    return st;
}

void bh_luax_error_from_thread(lua_State *co, bh_luax_error *err) {
    memset(err, 0, sizeof(*err));
    describe_value(co, -1, err);
    innermost_lua_frame(co, 0, err);
    /* co's stack is still the one that failed: a traceback of it. */
    lua_State *L = co;
    luaL_traceback(L, co, NULL, 0);
    err->traceback = bh_util_xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
}

void bh_luax_checkstack(lua_State *L, int n) {
    if (!lua_checkstack(L, n)) luaL_error(L, "stack overflow (nesting too deep)");
}

/* --- Lua -> JSON ------------------------------------------------------- */

static cJSON *to_json(lua_State *L, int idx, int depth, char *path, size_t pathlen, char *why,
                      size_t whylen);

/* Values converted by the current bh_luax_to_json call (the engine is
 * single-threaded and the conversion never re-enters itself). */
static int json_nodes;

static void path_push(char *path, size_t pathlen, size_t *saved, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void path_push(char *path, size_t pathlen, size_t *saved, const char *fmt, ...) {
    *saved = strlen(path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path + *saved, pathlen - *saved, fmt, ap);
    va_end(ap);
}

/* n > 0 when the table at idx is a proper sequence 1..n and nothing else. */
static lua_Integer array_length(lua_State *L, int idx) {
    lua_Integer n = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return -1;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1) {
            lua_pop(L, 1);
            return -1;
        }
        if (k > max) max = k;
        n++;
    }
    return n == max ? n : -1;
}

static int key_cmp(const void *pa, const void *pb) {
    const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
    return strcmp(a->string, b->string);
}

/* A Lua table's keys come in an order that changes from one engine to the
 * next (string hashes are seeded): sorted, the same table is the same
 * JSON every time, in the journal, the plan and a drill's records. */
static void sort_keys(cJSON *obj) {
    size_t n = 0;
    for (cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2) return;
    cJSON **v = bh_util_xcalloc(n, sizeof(cJSON *));
    size_t k = 0;
    for (cJSON *c = obj->child; c; c = c->next)
        v[k++] = c;
    qsort(v, n, sizeof(cJSON *), key_cmp);
    for (k = 0; k < n; k++) {
        v[k]->prev = k ? v[k - 1] : v[n - 1]; /* cJSON: the head's prev is the tail */
        v[k]->next = k + 1 < n ? v[k + 1] : NULL;
    }
    obj->child = v[0];
    free(v);
}

static cJSON *table_to_json(lua_State *L, int idx, int depth, char *path, size_t pathlen, char *why,
                            size_t whylen) {
    bh_luax_checkstack(L, 4);
    lua_Integer n = array_length(L, idx);
    size_t saved;
    if (n > 0) {
        cJSON *arr = cJSON_CreateArray();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            path_push(path, pathlen, &saved, "[%lld]", (long long)i);
            cJSON *v = to_json(L, lua_gettop(L), depth + 1, path, pathlen, why, whylen);
            path[saved] = '\0';
            lua_pop(L, 1);
            if (!v) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, v);
        }
        return arr;
    }
    cJSON *obj = cJSON_CreateObject();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(why, whylen, "a table mixing list items and %s keys at %s",
                     luaL_typename(L, -2), path[0] ? path : "the top level");
            lua_pop(L, 2);
            cJSON_Delete(obj);
            return NULL;
        }
        const char *k = lua_tostring(L, -2);
        path_push(path, pathlen, &saved, ".%s", k);
        cJSON *v = to_json(L, lua_gettop(L), depth + 1, path, pathlen, why, whylen);
        path[saved] = '\0';
        lua_pop(L, 1);
        if (!v) {
            lua_pop(L, 1);
            cJSON_Delete(obj);
            return NULL;
        }
        char *key = dup_lua_string(L, -1); /* keys keep their NULs too */
        cJSON_AddItemToObject(obj, key, v);
        free(key);
    }
    sort_keys(obj);
    return obj;
}

static cJSON *to_json(lua_State *L, int idx, int depth, char *path, size_t pathlen, char *why,
                      size_t whylen) {
    /* Shared subtables are converted once per reference: without a cap a
     * small table can stand for billions of nodes. */
    if (++json_nodes > JSON_MAX_NODES) {
        snprintf(why, whylen, "more than %d values (shared subtables repeated?) at %s",
                 JSON_MAX_NODES, path[0] ? path : "the top level");
        return NULL;
    }
    if (depth > JSON_MAX_DEPTH) {
        snprintf(why, whylen, "nesting deeper than %d (a cycle?) at %s", JSON_MAX_DEPTH,
                 path[0] ? path : "the top level");
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) {
            snprintf(why, whylen, "a number that is not finite at %s",
                     path[0] ? path : "the top level");
            return NULL;
        }
        return cJSON_CreateNumber(d);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return bh_json_string(s, len);
    }
    case LUA_TTABLE:
        return table_to_json(L, idx, depth, path, pathlen, why, whylen);
    default:
        snprintf(why, whylen, "a %s at %s", luaL_typename(L, idx),
                 path[0] ? path : "the top level");
        return NULL;
    }
}

cJSON *bh_luax_to_json(lua_State *L, int idx, char *why, size_t whylen) {
    json_nodes = 0;
    char path[256] = "";
    why[0] = '\0';
    return to_json(L, lua_absindex(L, idx), 0, path, sizeof path, why, whylen);
}

/* --- JSON -> Lua ------------------------------------------------------- */

/* A string as the bytes it stands for (json.h: its NULs back). The bytes
 * are decoded into Lua's memory: a push that raises leaks nothing. */
static void push_bytes(lua_State *L, const char *s) {
    char *b = lua_newuserdatauv(L, strlen(s) + 1, 0);
    size_t len = bh_json_bytes(s, b);
    lua_pushlstring(L, b, len);
    lua_remove(L, -2);
}

void bh_luax_push_json(lua_State *L, const cJSON *v) {
    bh_luax_checkstack(L, 3);
    if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(v)) {
        push_bytes(L, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        lua_createtable(L, cJSON_GetArraySize(v), 0);
        lua_Integer i = 1;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            bh_luax_push_json(L, c);
            lua_rawseti(L, -2, i);
        }
    } else if (cJSON_IsObject(v)) {
        lua_newtable(L);
        for (const cJSON *c = v->child; c; c = c->next) {
            push_bytes(L, c->string);
            bh_luax_push_json(L, c);
            lua_rawset(L, -3);
        }
    } else {
        lua_pushnil(L);
    }
}
