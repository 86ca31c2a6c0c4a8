/* Unit tests for the lua layer: engine/lua/sandbox.c (what a runbook can
 * reach) and engine/lua/luax.c (structured errors, Lua <-> JSON). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "lua/luax.h"
#include "lua/sandbox.h"

static lua_State *fresh(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    bh_sandbox_harden(L);
    bh_luax_init(L);
    return L;
}

/* Run src in a sandboxed environment; returns the Lua status, with the
 * error (if any) in *err. */
static int run(lua_State *L, const char *src, bh_luax_error *err) {
    bh_sandbox_new_env(L);
    int env = lua_gettop(L);
    int st = bh_sandbox_load(L, src, strlen(src), "=test", env);
    if (st != LUA_OK) {
        err->message = strdup(lua_tostring(L, -1));
        lua_pop(L, 2);
        return st;
    }
    st = bh_luax_pcall(L, 0, 1, err);
    lua_remove(L, env);
    return st;
}

/* In a fresh runbook environment, what stands at name: nil, or a stand-in
 * that explains; never the real library or function, nor a table with
 * any of the real one's members. */
static void check_absent(lua_State *L, int env, const char *name) {
    lua_getglobal(L, name); /* the real one */
    int real = lua_gettop(L);
    lua_getfield(L, env, name);
    int mine = lua_gettop(L);
    if (lua_rawequal(L, real, mine) && !lua_isnil(L, mine))
        fail_msg("%s is the real one in a runbook's environment", name);
    if (lua_istable(L, real) && lua_istable(L, mine)) {
        lua_pushnil(L);
        while (lua_next(L, real)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, mine) != LUA_TNIL)
                fail_msg("%s.%s is reachable from a runbook", name, lua_tostring(L, -2));
            lua_pop(L, 1);
        }
    }
    lua_settop(L, real - 1);
}

static void test_sandbox_reaches_nothing(void **state) {
    (void)state;
    lua_State *L = fresh();
    static const char *const absent[] = {"io",     "debug",    "package",        "require", "load",
                                         "dofile", "loadfile", "collectgarbage", "print",   NULL};
    bh_sandbox_new_env(L);
    int env = lua_gettop(L);
    for (int i = 0; absent[i]; i++)
        check_absent(L, env, absent[i]);
    lua_getfield(L, env, "os");
    lua_getglobal(L, "os");
    assert_false(lua_rawequal(L, -1, -2));
    lua_getfield(L, -1, "execute"); /* the real os.execute */
    lua_pushnil(L);
    while (lua_next(L, -4)) { /* no member of the runbook's os is os.execute */
        assert_false(lua_rawequal(L, -1, -3));
        lua_pop(L, 1);
    }
    lua_settop(L, env - 1);
    bh_luax_error err = {0};
    /* and using them says why not */
    assert_int_equal(run(L, "local ok, e = pcall(function() return io.open end) return e", &err),
                     LUA_OK);
    assert_non_null(strstr(lua_tostring(L, -1), "programs run with ctx.exec"));
    lua_pop(L, 1);
    assert_int_equal(run(L,
                         "return not pcall(function() return os.execute('true') end) and "
                         "not pcall(function() return string.dump(print) end) and "
                         "type(os.time()) == 'number' and getmetatable('') ~= string",
                         &err),
                     LUA_OK);
    assert_true(lua_toboolean(L, -1));
    lua_pop(L, 1);
    /* a runbook's change to a library is its own */
    assert_int_equal(run(L, "string.upper = nil; return 1", &err), LUA_OK);
    lua_pop(L, 1);
    assert_int_equal(run(L, "return string.upper('a')", &err), LUA_OK);
    assert_string_equal(lua_tostring(L, -1), "A");
    lua_pop(L, 1);
    lua_close(L);
}

static void test_bytecode_is_refused(void **state) {
    (void)state;
    lua_State *L = fresh();
    bh_sandbox_new_env(L);
    const char bytecode[] = "\x1bLua\x54\x00";
    assert_int_not_equal(bh_sandbox_load(L, bytecode, sizeof bytecode - 1, "=bin", -1), LUA_OK);
    lua_close(L);
}

static void test_errors_are_structured(void **state) {
    (void)state;
    lua_State *L = fresh();
    bh_luax_error err = {0};
    assert_int_equal(run(L, "local x = nil\nreturn x.y", &err), LUA_ERRRUN);
    assert_string_equal(err.code, "lua_error");
    assert_non_null(strstr(err.message, "attempt to index"));
    assert_int_equal(err.line, 2);
    assert_non_null(err.traceback);
    cJSON *j = bh_luax_error_json(&err);
    assert_string_equal(cJSON_GetObjectItem(j, "code")->valuestring, "lua_error");
    cJSON_Delete(j);
    bh_luax_error_free(&err);
    lua_close(L);
}

static void test_json_round_trip(void **state) {
    (void)state;
    lua_State *L = fresh();
    bh_luax_error err = {0};
    assert_int_equal(run(L, "return { hosts = { 'a', 'b' }, n = 2, ok = true, e = {} }", &err),
                     LUA_OK);
    char why[128];
    cJSON *j = bh_luax_to_json(L, -1, why, sizeof why);
    assert_non_null(j);
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(text, "\"hosts\":[\"a\",\"b\"]"));
    assert_non_null(strstr(text, "\"e\":{}"));
    /* keys sorted: the same table is the same JSON in every engine */
    assert_string_equal(text, "{\"e\":{},\"hosts\":[\"a\",\"b\"],\"n\":2,\"ok\":true}");
    lua_pop(L, 1);
    bh_luax_push_json(L, j);
    lua_getfield(L, -1, "hosts");
    lua_rawgeti(L, -1, 2);
    assert_string_equal(lua_tostring(L, -1), "b");
    lua_pop(L, 3);
    free(text);
    cJSON_Delete(j);
    /* what JSON cannot hold is refused, saying where */
    assert_int_equal(run(L, "return { hosts = { 'a', function() end } }", &err), LUA_OK);
    assert_null(bh_luax_to_json(L, -1, why, sizeof why));
    assert_non_null(strstr(why, "hosts"));
    lua_pop(L, 1);
    assert_int_equal(run(L, "local t = {} t.self = t return t", &err), LUA_OK);
    assert_null(bh_luax_to_json(L, -1, why, sizeof why));
    lua_pop(L, 1);
    lua_close(L);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_reaches_nothing),
        cmocka_unit_test(test_bytecode_is_refused),
        cmocka_unit_test(test_errors_are_structured),
        cmocka_unit_test(test_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
