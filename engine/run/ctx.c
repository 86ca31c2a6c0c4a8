#include "run/ctx.h"
#include "run/run.h"

#include "journal/schema.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/json.h"
#include "load/plugin.h"
#include "run/request.h"
#include "load/sim.h"
#include "base/util.h"

#define CAPTURE_MAX ((size_t)1 << 20)
#define FILE_MAX ((size_t)64 << 20)

extern char **environ;

/* Variables a child inherits from the engine; everything else it gets from
 * the step's own env. An engine started from a responder's shell carries
 * tokens and agent sockets that a runbook's commands have no business with. */
static const char *const ENV_ALLOWED[] = {"PATH", "HOME",    "LANG",   "LC_ALL", "LC_CTYPE", "TZ",
                                          "USER", "LOGNAME", "TMPDIR", "TERM",   NULL};

static void push_status_view(lua_State *L, bh_run *run);

void bh_ctx_log(bh_attempt *a, const char *text) {
    cJSON *rec = bh_run_record(BH_REC_LOG, a);
    cJSON_AddStringToObject(rec, "message", text);
    bh_run_append(a->run, rec);
    bh_events_log(a->run->events, a->step->id, text);
}

/* Join the arguments with tabs (print) or spaces (log) via tostring. */
static char *join_args(lua_State *L, int first, const char *sep) {
    int n = lua_gettop(L); /* before luaL_buffinit, which may push a slot */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = first; i <= n; i++) {
        if (i > first) luaL_addstring(&b, sep);
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *joined = lua_tolstring(L, -1, &len);
    char *s = bh_json_from_bytes(joined, len); /* a NUL inside is kept, not an end */
    lua_pop(L, 1);
    return s;
}

static int l_log(lua_State *L) {
    struct bh_ctx_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    if (!h->a) return luaL_error(L, "ctx.log: this ctx belongs to a step that has already ended");
    char *text = join_args(L, 1, " ");
    bh_ctx_log(h->a, text);
    free(text);
    return 0;
}

static int l_print(lua_State *L) {
    bh_run *run = lua_touserdata(L, lua_upvalueindex(1));
    char *text = join_args(L, 1, "\t");
    bh_attempt *a = bh_attempt_current(L);
    if (a && a->run == run)
        bh_ctx_log(a, text);
    else
        bh_events_notice(run->events, text);
    free(text);
    return 0;
}

/* After the run (finalizers during lua_close): the run is gone, use stderr. */
static int l_print_after_run(lua_State *L) {
    char *text = join_args(L, 1, "\t");
    void *ud;
    lua_getallocf(L, &ud);
    char *masked;
    fprintf(stderr, "print: %s\n",
            bh_redact_str(bh_keyring_mask(((const bh_runbook *)ud)->keyring), text, &masked));
    free(masked);
    free(text);
    return 0;
}

/* record(ctx, plugin, action, params, item, description): an action record
 * for the attempt running it (plugin.h). */
static int l_record_action(lua_State *L) {
    bh_attempt *a = bh_attempt_current(L);
    if (!a) return 0;
    cJSON *rec = bh_run_record(BH_REC_ACTION, a);
    cJSON_AddStringToObject(rec, "plugin", luaL_optstring(L, 2, "?"));
    cJSON_AddStringToObject(rec, "action", luaL_optstring(L, 3, "?"));
    if (lua_type(L, 6) == LUA_TSTRING)
        cJSON_AddStringToObject(rec, "description", lua_tostring(L, 6));
    char why[128];
    cJSON *p = bh_luax_to_json(L, 4, why, sizeof why);
    if (p) cJSON_AddItemToObject(rec, "params", p);
    if (a->run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1);
    bh_run_append(a->run, rec);
    return 0;
}

void bh_ctx_install(bh_run *run) {
    lua_State *L = run->L;
    bh_plugin_set_recorder(L, l_record_action);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->rb->env_ref);
    lua_pushlightuserdata(L, run);
    lua_pushcclosure(L, l_print, 1);
    lua_setfield(L, -2, "print");
    lua_pop(L, 1);
}

/* --- exec and sh ------------------------------------------------------- */

/* Append s to a NULL-terminated list, keeping room for the terminator. */
static char **strv_push(char **v, size_t *n, size_t *cap, char *s) {
    if (*n + 1 >= *cap) {
        *cap *= 2;
        v = realloc(v, *cap * sizeof *v);
        if (!v) abort();
    }
    v[(*n)++] = s;
    return v;
}

static char **build_env(lua_State *L, int opts, const char *run_id) {
    size_t cap = 16, n = 0;
    char **env = bh_util_xcalloc(cap, sizeof *env);
    for (char **e = environ; *e; e++) {
        for (int i = 0; ENV_ALLOWED[i]; i++) {
            size_t k = strlen(ENV_ALLOWED[i]);
            if (strncmp(*e, ENV_ALLOWED[i], k) == 0 && (*e)[k] == '=')
                env = strv_push(env, &n, &cap, bh_util_xstrdup(*e));
        }
    }
    if (opts && lua_getfield(L, opts, "env") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING &&
                (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                const char *k = lua_tostring(L, -2);
                char *kv = bh_util_asprintf("%s=%s", k, lua_tostring(L, -1));
                size_t klen = strlen(k);
                size_t i;
                /* The step's value replaces an inherited one of the same name. */
                for (i = 0; i < n; i++)
                    if (strncmp(env[i], kv, klen + 1) == 0) break;
                if (i < n) {
                    free(env[i]);
                    env[i] = kv;
                } else {
                    env = strv_push(env, &n, &cap, kv);
                }
            }
            lua_pop(L, 1);
        }
    }
    if (opts) lua_pop(L, 1);
    /* Last, so a step's env cannot hide it: `bulkhead resume` finds the
     * commands a dead engine left running by it. */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(env[i], "BULKHEAD_RUN_ID=", 16) == 0) {
            free(env[i]);
            env[i] = env[n - 1];
            env[--n] = NULL;
            break;
        }
    }
    env = strv_push(env, &n, &cap, bh_util_asprintf("BULKHEAD_RUN_ID=%s", run_id));
    env[n] = NULL;
    return env;
}

static void free_strv(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void pending_free(bh_pending_exec *p) {
    free(p->evidence);
    free_strv(p->not_started);
    p->not_started = NULL;
    free_strv(p->req.argv);
    free_strv(p->req.env);
    free((char *)p->req.cwd);
    free((char *)p->req.stdin_data);
    free((char *)p->req.out_path[0]);
    free((char *)p->req.out_path[1]);
    memset(&p->req, 0, sizeof p->req);
    p->op = NULL;
}

/* A program's arguments, environment and working directory are C strings:
 * execve would end one at a NUL byte and run something else than the
 * runbook says, silently. Refused, naming which one. */
static void check_no_nul(lua_State *L, int idx, const char *what, const char *which) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (s && strlen(s) != len)
        luaL_error(L,
                   "%s: %s holds a NUL byte (at byte %d): a program's arguments, environment "
                   "and directory cannot, so it would be cut short there",
                   what, which, (int)strlen(s) + 1);
}

static const char *const EXEC_OPTIONS[] = {"env",  "cwd",        "stdin",       "timeout", "check",
                                           "acts", "doubt_exit", "not_started", NULL};

/* Validate the option fields of the table at opts (string keys only);
 * extra: one more allowed option, or NULL. */
static void check_exec_options(lua_State *L, int opts, const char *what, const char *extra) {
    lua_pushnil(L);
    while (lua_next(L, opts)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            int known = extra && strcmp(k, extra) == 0;
            for (int i = 0; EXEC_OPTIONS[i]; i++)
                known |= strcmp(k, EXEC_OPTIONS[i]) == 0;
            if (!known)
                luaL_error(L,
                           "%s: unknown option '%s' (env, cwd, stdin, timeout, check, acts, "
                           "doubt_exit, not_started%s%s)",
                           what, k, extra ? ", " : "", extra ? extra : "");
        }
    }
    int t = lua_getfield(L, opts, "env");
    if (t != LUA_TNIL && t != LUA_TTABLE) luaL_error(L, "%s: 'env' must be a table", what);
    if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                check_no_nul(L, -2, what, "a name in 'env'");
                char which[80];
                snprintf(which, sizeof which, "'env' value %.40s", lua_tostring(L, -2));
                check_no_nul(L, -1, what, which);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "cwd");
    if (t != LUA_TNIL && t != LUA_TSTRING) luaL_error(L, "%s: 'cwd' must be a string", what);
    if (t == LUA_TSTRING) check_no_nul(L, -1, what, "'cwd'");
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "stdin");
    if (t != LUA_TNIL && t != LUA_TSTRING) luaL_error(L, "%s: 'stdin' must be a string", what);
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "doubt_exit");
    if (t != LUA_TNIL && t != LUA_TTABLE)
        luaL_error(L, "%s: 'doubt_exit' must be a list of exit codes", what);
    for (lua_Integer i = 1; t == LUA_TTABLE && i <= (lua_Integer)lua_rawlen(L, -1); i++) {
        int isint = 0;
        lua_rawgeti(L, -1, i);
        lua_Integer c = lua_tointegerx(L, -1, &isint);
        if (!isint || c < 1 || c > 255 || i > 8)
            luaL_error(L, "%s: 'doubt_exit' holds at most 8 exit codes, each 1-255", what);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "not_started");
    if (t != LUA_TNIL && t != LUA_TTABLE)
        luaL_error(L, "%s: 'not_started' must be a list of texts", what);
    for (lua_Integer i = 1; t == LUA_TTABLE && i <= (lua_Integer)lua_rawlen(L, -1); i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            luaL_error(L, "%s: 'not_started' must be a list of texts", what);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* acts and doubt_exit of the options at opts (already checked). */
static void read_doubt_options(lua_State *L, int opts, bh_pending_exec *p) {
    p->acts = 1;
    if (!opts) return;
    if (lua_getfield(L, opts, "acts") != LUA_TNIL) p->acts = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, opts, "doubt_exit") == LUA_TTABLE) {
        p->ndoubt = (int)lua_rawlen(L, -1);
        for (int i = 0; i < p->ndoubt; i++) {
            lua_rawgeti(L, -1, i + 1);
            p->doubt_exit[i] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (lua_getfield(L, opts, "not_started") == LUA_TTABLE) {
        size_t n = lua_rawlen(L, -1);
        p->not_started = bh_util_xcalloc(n + 1, sizeof *p->not_started);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            p->not_started[i] = bh_util_xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* Does what the command wrote on stderr say it never started? */
static int said_not_started(const bh_pending_exec *p, const bh_exec_result *res) {
    for (char **t = p->not_started; t && *t; t++)
        if (strstr(res->out[1].data, *t)) return 1;
    return 0;
}

/* How the command ended, for the attempt's in-doubt verdict: cut off
 * (its timeout, the step's, an interrupt) or killed, or an exit code it
 * declared doubtful (ssh's 255: the connection failed, perhaps after the
 * remote command started), is no answer. */
static bh_effect exec_effect(const bh_attempt *a, const bh_pending_exec *p,
                             const bh_exec_result *res, char *why, size_t len) {
    const char *what = p->what ? p->what : "?";
    if (res->timed_out || res->cancelled || a->timed_out || a->cancelled) {
        snprintf(why, len, "'%s' was cut off before it finished (%s)", what,
                 res->timed_out ? "its timeout"
                 : a->timed_out ? "the step's timeout"
                                : "the run stopped");
        return BH_EFFECT_UNSURE;
    }
    if (res->term_signal) {
        snprintf(why, len, "'%s' was killed by %s", what,
                 sigabbrev_np(res->term_signal) ? sigabbrev_np(res->term_signal) : "a signal");
        return BH_EFFECT_UNSURE;
    }
    for (int i = 0; i < p->ndoubt && !said_not_started(p, res); i++) {
        if (res->exit_code == p->doubt_exit[i]) {
            snprintf(why, len, "'%s' exited %lld, which says nothing about whether it acted", what,
                     (long long)res->exit_code);
            return BH_EFFECT_UNSURE;
        }
    }
    if (res->exit_code != 0) return BH_EFFECT_NONE;
    snprintf(why, len, "'%s' had completed", what);
    return BH_EFFECT_DONE;
}

/* Does the file of a captured stream lack what the program wrote, and why?
 * A limit cuts it by design; a write error (a full disk) loses output the
 * record should hold, and then the command did not succeed. */
static int stream_cut(const bh_exec_stream *s, char *why, size_t len) {
    if (s->file_error) {
        snprintf(why, len, "writing the file failed: %s (%llu of %llu bytes stored)",
                 bh_util_strerror(s->file_error), (unsigned long long)s->stored,
                 (unsigned long long)s->total);
        return 1;
    }
    if (s->stored < s->total) {
        snprintf(why, len, "the first %llu of %llu bytes stored: the limit of a captured stream",
                 (unsigned long long)s->stored, (unsigned long long)s->total);
        return 1;
    }
    return 0;
}

/* Paths in the journal are relative to the run folder, so the folder can
 * be copied elsewhere as evidence and still make sense. */
static cJSON *stream_json(const bh_exec_stream *s, const char *path, const char *rundir) {
    cJSON *o = cJSON_CreateObject();
    if (s->stored > 0 && path)
        cJSON_AddStringToObject(o, "path", bh_util_relative_to(path, rundir));
    cJSON_AddNumberToObject(o, "size", (double)s->total);
    if (s->stored != s->total) cJSON_AddNumberToObject(o, "stored", (double)s->stored);
    cJSON_AddStringToObject(o, "sha256", s->sha256);
    char why[200];
    int cut = stream_cut(s, why, sizeof why);
    cJSON_AddBoolToObject(o, "truncated", cut);
    if (cut) cJSON_AddStringToObject(o, "truncated_reason", why);
    return o;
}

/* "stdout could not be stored: ...": the first stream whose file lost
 * output to a write error, for the step's error; 0 when none did. */
static int output_lost(const bh_exec_result *res, char *why, size_t len) {
    for (int i = 0; i < 2; i++) {
        if (!res->out[i].file_error) continue;
        snprintf(why, len, "its %s could not be stored: %s (%llu of %llu bytes lost)",
                 i ? "stderr" : "stdout", bh_util_strerror(res->out[i].file_error),
                 (unsigned long long)(res->out[i].total - res->out[i].stored),
                 (unsigned long long)res->out[i].total);
        return 1;
    }
    return 0;
}

static const char *signal_name(int sig) {
    const char *n = sigabbrev_np(sig);
    static char buf[32];
    snprintf(buf, sizeof buf, "SIG%s", n ? n : "?");
    return buf;
}

typedef struct {
    bh_attempt *a;
    const bh_exec_result *res;
    const char *evidence_path; /* ctx.collect: where the evidence went */
} push_result;

/* The table exec and sh return, pushed on the step's coroutine (protected). */
static int push_exec_result(lua_State *L) {
    push_result *pr = lua_touserdata(L, 1);
    const bh_exec_result *res = pr->res;
    lua_State *co = pr->a->co;
    lua_createtable(co, 0, 13);
    char lost[200];
    int lost_output = output_lost(res, lost, sizeof lost);
    int ok = !res->term_signal && res->exit_code == 0 && !res->timed_out && !lost_output;
    lua_pushboolean(co, ok);
    lua_setfield(co, -2, "ok");
    if (lost_output) { /* exec_k raises it, whatever `check` says */
        lua_pushstring(co, lost);
        lua_setfield(co, -2, "output_lost");
    }
    if (res->term_signal) {
        lua_pushstring(co, signal_name(res->term_signal));
        lua_setfield(co, -2, "signal");
    } else {
        lua_pushinteger(co, (lua_Integer)res->exit_code);
        lua_setfield(co, -2, "code");
    }
    lua_pushboolean(co, res->timed_out);
    lua_setfield(co, -2, "timed_out");
    lua_pushlstring(co, res->out[0].data, res->out[0].len);
    lua_setfield(co, -2, "stdout");
    lua_pushlstring(co, res->out[1].data, res->out[1].len);
    lua_setfield(co, -2, "stderr");
    lua_pushboolean(co, res->out[0].truncated);
    lua_setfield(co, -2, "stdout_truncated");
    lua_pushboolean(co, res->out[1].truncated);
    lua_setfield(co, -2, "stderr_truncated");
    lua_pushinteger(co, (lua_Integer)res->pid);
    lua_setfield(co, -2, "pid");
    lua_pushnumber(co, res->duration_ms);
    lua_setfield(co, -2, "duration_ms");
    if (pr->evidence_path) {
        lua_createtable(co, 0, 3);
        lua_pushstring(co, pr->evidence_path);
        lua_setfield(co, -2, "path");
        lua_pushstring(co, res->out[0].sha256);
        lua_setfield(co, -2, "sha256");
        lua_pushinteger(co, (lua_Integer)res->out[0].stored);
        lua_setfield(co, -2, "size");
        lua_setfield(co, -2, "evidence");
    }
    return 0;
}

/* The chain of custody of what ctx.collect kept: what, where from, when,
 * by whom, how big, its SHA-256. The file becomes read-only. */
static void record_evidence(bh_attempt *a, const bh_exec_result *res) {
    bh_run *run = a->run;
    bh_pending_exec *p = &a->exec;
    const bh_exec_stream *s = &res->out[0];
    int ok = !res->term_signal && res->exit_code == 0 && !res->timed_out && !s->file_error;
    cJSON *rec = bh_run_record(BH_REC_EVIDENCE, a);
    cJSON_AddNumberToObject(rec, "n", p->n);
    cJSON_AddStringToObject(rec, "name", p->evidence);
    const char *path = p->req.out_path[0];
    if (s->stored > 0 && path)
        cJSON_AddStringToObject(rec, "path", bh_util_relative_to(path, run->dir));
    else
        cJSON_AddNullToObject(rec, "path");
    cJSON_AddNumberToObject(rec, "size", (double)s->stored);
    cJSON_AddStringToObject(rec, "sha256", s->sha256);
    /* only what did not reach the file counts: evidence is kept whole, not
     * in memory */
    char why[200];
    int cut = stream_cut(s, why, sizeof why);
    cJSON_AddBoolToObject(rec, "truncated", cut);
    if (cut) cJSON_AddStringToObject(rec, "truncated_reason", why);
    cJSON_AddBoolToObject(rec, "complete", ok && !cut);
    if (a->step->each_ref != LUA_NOREF) { /* which host of the fan-out */
        char key[64];
        bh_run_item_key(run, a->index, a->item, key, sizeof key);
        cJSON_AddStringToObject(rec, "key", key);
    }
    cJSON *src = cJSON_AddArrayToObject(rec, "source");
    for (char **v = p->req.argv; v && *v; v++)
        cJSON_AddItemToArray(src, bh_json_string(*v, strlen(*v)));
    cJSON_AddStringToObject(rec, "collected_by", run->operator_name);
    if (run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1);
    bh_run_append(run, rec);
    if (s->stored > 0 && path) chmod(path, 0400);
}

/* A chunk of a command's output, masked (exec.h), for whoever follows the
 * run live. The attempt outlives its command: exec_done comes last. */
static void output_arrived(void *ud, int stream, const char *buf, size_t n) {
    bh_attempt *a = ud;
    bh_events_output(a->run->events, a->label, stream, buf, n);
}

static void exec_done(const bh_exec_result *res, void *ud) {
    bh_attempt *a = ud;
    bh_run *run = a->run;
    bh_pending_exec *p = &a->exec;

    cJSON *rec = bh_run_record(BH_REC_EXEC_END, a);
    cJSON_AddNumberToObject(rec, "n", p->n);
    cJSON_AddNumberToObject(rec, "pid", (double)res->pid);
    if (run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1);
    if (res->term_signal) {
        cJSON_AddStringToObject(rec, "signal", signal_name(res->term_signal));
    } else {
        cJSON_AddNumberToObject(rec, "code", (double)res->exit_code);
    }
    cJSON_AddBoolToObject(rec, "timed_out", res->timed_out);
    cJSON_AddBoolToObject(rec, "cancelled", res->cancelled);
    cJSON_AddBoolToObject(rec, "killed", res->killed);
    cJSON_AddBoolToObject(rec, "swept", res->swept);
    if (res->escaped) cJSON_AddNumberToObject(rec, "escaped_killed", res->escaped);
    cJSON_AddNumberToObject(rec, "duration_ms", res->duration_ms);
    char why[200] = "";
    bh_effect effect = exec_effect(a, p, res, why, sizeof why);
    if (p->acts && effect == BH_EFFECT_UNSURE) cJSON_AddBoolToObject(rec, "in_doubt", 1);
    bh_run_effect_ended(a, p->acts, effect, why);
    cJSON_AddItemToObject(rec, "stdout", stream_json(&res->out[0], p->req.out_path[0], run->dir));
    cJSON_AddItemToObject(rec, "stderr", stream_json(&res->out[1], p->req.out_path[1], run->dir));
    bh_run_append(run, rec);
    char *evidence_path = NULL;
    if (p->evidence) {
        record_evidence(a, res);
        evidence_path = bh_util_xstrdup(bh_util_relative_to(p->req.out_path[0], run->dir));
    }
    pending_free(p);
    a->waiting = BH_WAIT_NONE;

    if (a->timed_out || a->cancelled || a->over_budget) {
        free(evidence_path);
        a->run->sched->abandon(a);
        return;
    }
    push_result pr = {.a = a, .res = res, .evidence_path = evidence_path};
    int pst = bh_run_protected(run, push_exec_result, &pr);
    free(evidence_path);
    if (pst != LUA_OK) {
        a->run->sched->fail(a, "memory",
                            "the command finished but its result could not be handed to the step: "
                            "the runbook's Lua memory is exhausted");
        return;
    }
    a->run->sched->resume(a, 1);
}

/* The last non-empty line of s, at most 200 bytes, for error messages. */
static void last_line(const char *s, char *out, size_t outlen) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    size_t start = n;
    while (start && s[start - 1] != '\n')
        start--;
    size_t len = n - start;
    if (len >= outlen) len = outlen - 1;
    memcpy(out, s + start, len);
    out[len] = '\0';
}

/* Continuation of exec/sh after the resume: the result table is on top. */
static int exec_k(lua_State *L, int status, lua_KContext kctx) {
    bh_attempt *a = bh_attempt_current(L);
    if (!a) /* a coroutine saved by the body and resumed after its step ended */
        return luaL_error(L, "ctx.exec: this step has already ended");
    int check = (int)kctx;
    char *what = a->exec.what;
    a->exec.what = NULL;
    lua_getfield(L, -1, "ok");
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int res = lua_gettop(L);
    /* Output the record should hold was lost (a full disk): the step did
     * not do what its record can show, even with check = false, which is
     * about the program's own exit. */
    if (lua_getfield(L, res, "output_lost") == LUA_TSTRING) {
        char how[64] = "ran";
        if (lua_getfield(L, res, "timed_out") == LUA_TBOOLEAN && lua_toboolean(L, -1))
            snprintf(how, sizeof how, "timed out");
        else if (lua_getfield(L, res, "signal") == LUA_TSTRING)
            snprintf(how, sizeof how, "was killed by %s", lua_tostring(L, -1));
        else if (lua_getfield(L, res, "code") == LUA_TNUMBER && lua_tointeger(L, -1) != 0)
            snprintf(how, sizeof how, "exited with code %lld", (long long)lua_tointeger(L, -1));
        lua_settop(L, res + 1);
        char msg[512];
        snprintf(msg, sizeof msg, "'%s' %s, but %s: the record of what it printed is incomplete",
                 what ? what : "?", how, lua_tostring(L, -1));
        free(what);
        lua_pop(L, 1);
        lua_newtable(L);
        lua_getfield(L, res, "stdout");
        lua_setfield(L, -2, "stdout");
        lua_getfield(L, res, "stderr");
        lua_setfield(L, -2, "stderr");
        return bh_luax_raise(L, "output_lost", "%s", msg);
    }
    lua_pop(L, 1);
    if (ok || !check) {
        free(what);
        return 1;
    }
    lua_getfield(L, res, "stderr");
    char tail[200];
    last_line(lua_tostring(L, -1), tail, sizeof tail);
    lua_pop(L, 1);
    char msg[512];
    const char *code;
    lua_newtable(L);
    lua_getfield(L, res, "timed_out");
    int timed_out = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (timed_out) {
        code = "exec_timeout";
        snprintf(msg, sizeof msg, "'%s' timed out and was terminated", what ? what : "?");
        lua_pushnil(L);
    } else if (lua_getfield(L, res, "signal") == LUA_TSTRING) {
        code = "exec_signaled";
        snprintf(msg, sizeof msg, "'%s' was killed by %s", what ? what : "?", lua_tostring(L, -1));
        lua_setfield(L, -2, "signal");
        lua_pushnil(L);
    } else {
        lua_getfield(L, res, "code");
        code = "exec_failed";
        snprintf(msg, sizeof msg, "'%s' exited with code %lld%s%s", what ? what : "?",
                 (long long)lua_tointeger(L, -1), tail[0] ? ": " : "", tail);
        lua_setfield(L, -3, "exit");
    }
    lua_pop(L, 1);
    lua_getfield(L, res, "stdout");
    lua_setfield(L, -2, "stdout");
    lua_getfield(L, res, "stderr");
    lua_setfield(L, -2, "stderr");
    free(what);
    (void)status;
    return bh_luax_raise(L, code, "%s", msg);
}

#define EVIDENCE_MAX ((size_t)1 << 30)

/* evidence (ctx.collect): its stdout goes whole, unmasked, to
 * evidence/STEP[.iK].A.N.NAME, hashed, and an evidence record says so. */
static int start_exec(lua_State *L, bh_attempt *a, char **argv, int opts, int shell,
                      const char *evidence) {
    bh_run *run = a->run;
    bh_pending_exec *p = &a->exec;
    memset(p, 0, sizeof *p);
    p->req.argv = argv;
    p->n = ++a->execs;
    p->shell = shell;
    p->check = 1;
    double timeout = 0;
    if (opts) {
        if (lua_getfield(L, opts, "check") != LUA_TNIL) p->check = lua_toboolean(L, -1);
        lua_pop(L, 1);
        int t = lua_getfield(L, opts, "timeout");
        if (t != LUA_TNIL && (bh_util_parse_duration(lua_tostring(L, -1) ? lua_tostring(L, -1) : "",
                                                     &timeout) != 0 ||
                              timeout <= 0)) {
            lua_pop(L, 1);
            free_strv(argv);
            p->req.argv = NULL;
            return luaL_error(L, "%s: 'timeout' must be a positive duration such as \"30s\"",
                              shell ? "ctx.sh" : "ctx.exec");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, opts, "cwd") == LUA_TSTRING)
            p->req.cwd = bh_util_xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (lua_getfield(L, opts, "stdin") == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            char *copy = bh_util_xmalloc(len + 1);
            memcpy(copy, s, len + 1);
            p->req.stdin_data = copy;
            p->req.stdin_len = len;
        }
        lua_pop(L, 1);
    }
    read_doubt_options(L, opts, p); /* nothing below raises before the exec is started */
    p->req.env = build_env(L, opts, run->id);
    p->req.timeout_ms = timeout;
    p->req.kill_grace_ms = run->rb->kill_grace_ms;
    p->req.redact = bh_keyring_mask(run->rb->keyring);
    p->req.on_output = output_arrived;
    p->req.output_ud = a;
    if (run->opts->sim) p->req.sim_script = bh_sim_script(run->opts->sim, a->step);
    p->req.capture_max = CAPTURE_MAX;
    p->req.file_max = FILE_MAX;
    for (int i = 0; i < 2; i++)
        p->req.out_path[i] = bh_attempt_out_path(a, p->n, i ? "stderr" : "stdout");
    if (evidence) {
        char *dir = bh_util_asprintf("%s/evidence", run->dir);
        if (mkdir(dir, 0700) == 0) bh_util_fsync_dir(run->dir);
        free(dir);
        free((char *)p->req.out_path[0]);
        p->req.out_path[0] = bh_attempt_path(a, "evidence", p->n, evidence);
        p->req.raw_stdout = 1;
        p->req.capture_max = 0;
        p->req.file_max = EVIDENCE_MAX;
        p->evidence = bh_util_xstrdup(evidence);
    }
    p->what = bh_util_xstrdup(shell ? "sh" : argv[0]);

    cJSON *argj = cJSON_CreateArray();
    for (char **v = argv; *v; v++)
        cJSON_AddItemToArray(argj, bh_json_string(*v, strlen(*v)));
    int err = run->fx->exec(run->fx, &p->req, exec_done, a, &p->op);
    if (err < 0) {
        cJSON *rec = bh_run_record(BH_REC_EXEC_ERROR, a);
        cJSON_AddNumberToObject(rec, "n", p->n);
        cJSON_AddItemToObject(rec, "argv", argj);
        cJSON_AddStringToObject(rec, "error", uv_strerror(err));
        bh_run_append(run, rec);
        char msg[300];
        snprintf(msg, sizeof msg, "cannot run '%s': %s", p->what, uv_strerror(err));
        free(p->what);
        p->what = NULL;
        pending_free(p);
        lua_newtable(L); /* the error object; not the caller's argv or opts table */
        return bh_luax_raise(L, "spawn_failed", "%s", msg);
    }
    /* Waiting before the record: if writing it fails, stopping the run
     * must find the child to cancel. */
    a->waiting = BH_WAIT_EXEC;
    cJSON *rec = bh_run_record(BH_REC_EXEC_START, a);
    cJSON_AddNumberToObject(rec, "n", p->n);
    cJSON_AddItemToObject(rec, "argv", argj);
    cJSON_AddNumberToObject(rec, "pid", (double)run->fx->pid(run->fx, p->op));
    if (p->req.cwd) cJSON_AddStringToObject(rec, "cwd", p->req.cwd);
    cJSON_AddBoolToObject(rec, "shell", shell);
    if (timeout > 0) cJSON_AddNumberToObject(rec, "timeout_ms", timeout);
    if (!p->acts) cJSON_AddBoolToObject(rec, "acts", 0);
    if (run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1); /* nothing was started */
    bh_run_append(run, rec);
    return lua_yieldk(L, 0, (lua_KContext)p->check, exec_k);
}

/* The list part of the table at index 1 as a NULL-terminated argv of
 * copies; empty: the error "WHAT: USAGE". */
static char **table_argv(lua_State *L, const char *what, const char *usage) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) luaL_error(L, "%s: %s", what, usage);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "%s: argument %d is a %s; arguments must be strings", what, (int)i,
                       lua_typename(L, t));
        char arg[32];
        snprintf(arg, sizeof arg, "argument %d", (int)i);
        check_no_nul(L, -1, what, arg);
        lua_pop(L, 1);
    }
    char **argv = bh_util_xcalloc((size_t)n + 1, sizeof *argv);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        argv[i - 1] = bh_util_xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return argv;
}

static int l_exec(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "exec");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_exec_options(L, 1, "ctx.exec", NULL);
    char **argv = table_argv(L, "ctx.exec",
                             "give the program and its arguments as a list, "
                             "e.g. ctx.exec { \"ls\", \"-l\", dir }");
    return start_exec(L, a, argv, 1, 0, NULL);
}

static int l_sh(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "sh");
    const char *script = luaL_checkstring(L, 1);
    check_no_nul(L, 1, "ctx.sh", "the script");
    int opts = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        opts = 2;
        check_exec_options(L, 2, "ctx.sh", NULL);
    }
    lua_settop(L, 2);
    char **argv = bh_util_xcalloc(4, sizeof *argv);
    argv[0] = bh_util_xstrdup("/bin/sh");
    argv[1] = bh_util_xstrdup("-c");
    argv[2] = bh_util_xstrdup(script);
    return start_exec(L, a, argv, opts, 1, NULL);
}

/* ctx.tmpdir(): a directory only this user can enter (mkdtemp, 0700), for
 * what must not sit in a shared /tmp: ssh's multiplexing sockets, which a
 * local user could otherwise plant to intercept commands. Short (a socket
 * path is at most 107 bytes), one per run, removed when the run ends. In a
 * simulation nothing is made. */
static int l_tmpdir(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "tmpdir");
    bh_run *run = a->run;
    if (run->opts->sim) {
        lua_pushliteral(L, "/tmp/bulkhead-simulated");
        return 1;
    }
    if (!run->tmpdir) {
        char tmpl[] = "/tmp/bulkhead-XXXXXX";
        if (!mkdtemp(tmpl))
            return bh_luax_raise(L, "tmpdir_failed", "ctx.tmpdir: cannot make %s: %s", tmpl,
                                 strerror(errno));
        run->tmpdir = bh_util_xstrdup(tmpl);
    }
    lua_pushstring(L, run->tmpdir);
    return 1;
}

/* ctx.collect { argv..., name = "auth.log", timeout =, ... }: run a command
 * (cat a file, dump a table, ssh host cat ...) and keep its standard output
 * as evidence, byte for byte. */
static int l_collect(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "collect");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_exec_options(L, 1, "ctx.collect", "name");
    const char *name = NULL;
    if (lua_getfield(L, 1, "name") == LUA_TSTRING) name = lua_tostring(L, -1);
    lua_pop(L, 1);
    int ok = name && *name && strlen(name) <= 100;
    for (const char *c = name; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '.' || *c == '-' || *c == '_';
    if (!ok || name[0] == '.')
        return luaL_error(L, "ctx.collect: 'name' names the evidence file: letters, digits, . - _");
    const char *secret = bh_redact_which(bh_keyring_mask(a->run->rb->keyring), name, strlen(name));
    if (secret) /* the name is refused, never shown */
        return luaL_error(L,
                          "ctx.collect: 'name' is built from secret(\"%s\"): it names the "
                          "evidence file, and a secret never goes into a file name",
                          secret);
    char **argv =
        table_argv(L, "ctx.collect", "give the command, e.g. { \"cat\", path, name = ... }");
    return start_exec(L, a, argv, 1, 0, name); /* copies name */
}

/* --- sleep ------------------------------------------------------------- */

static void sleep_fired(void *ud) {
    bh_attempt *a = ud;
    bh_timer_stop(a->sleep_timer);
    a->sleep_timer = NULL;
    a->waiting = BH_WAIT_NONE;
    if (a->timed_out || a->cancelled || a->over_budget)
        a->run->sched->abandon(a);
    else
        a->run->sched->resume(a, 0);
}

/* Yield the attempt for ms on the run's clock (simulated in a drill). */
static int wait_ms(lua_State *L, bh_attempt *a, double ms) {
    a->sleep_timer = bh_timer_start(a->run->clock, ms, 0, sleep_fired, a);
    a->waiting = BH_WAIT_SLEEP;
    return lua_yield(L, 0);
}

static int l_sleep(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "sleep");
    double ms;
    const char *text = lua_tostring(L, 1);
    if (!text || bh_util_parse_duration(text, &ms) != 0)
        return luaL_error(L, "ctx.sleep: expected a duration such as \"2s\" or a number of "
                             "seconds");
    return wait_ms(L, a, ms);
}

void bh_ctx_stop_sleep(bh_attempt *a) {
    if (!a->sleep_timer) return;
    bh_timer_stop(a->sleep_timer);
    a->sleep_timer = NULL;
    a->waiting = BH_WAIT_NONE;
}

/* --- the ctx table ----------------------------------------------------- */

void bh_ctx_push(bh_attempt *a) {
    lua_State *co = a->co;
    bh_run *run = a->run;
    /* Coroutines the body creates copy the main thread's extra space (and
     * the deadline hook from their creator); bh_attempt_enter points it at the
     * attempt being resumed, so their loops are bounded too. */
    bh_attempt_bind(co, a->serial);
    lua_createtable(co, 0, 12);
    struct bh_ctx_handle *h = lua_newuserdatauv(co, sizeof *h, 0);
    h->a = a;
    a->handle = h;
    /* Anchored in the registry: the body may drop ctx and the GC must not
     * free the handle before bh_ctx_release clears it. */
    lua_pushvalue(co, -1);
    a->handle_ref = luaL_ref(co, LUA_REGISTRYINDEX);
    static const struct {
        const char *name;
        lua_CFunction fn;
    } prims[] = {{"exec", l_exec},
                 {"sh", l_sh},
                 {"sleep", l_sleep},
                 {"log", l_log},
                 {"http", bh_request_http},
                 {"mail", bh_request_mail},
                 {"connect", bh_request_connect},
                 {"collect", l_collect},
                 {"tmpdir", l_tmpdir}};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++) {
        lua_pushvalue(co, -1);
        lua_pushcclosure(co, prims[i].fn, 1);
        lua_setfield(co, -3, prims[i].name);
    }
    lua_pop(co, 1);
    lua_rawgeti(co, LUA_REGISTRYINDEX, run->rb->params_ref);
    lua_setfield(co, -2, "params");
    lua_rawgeti(co, LUA_REGISTRYINDEX, run->results_ref);
    lua_setfield(co, -2, "results");
    lua_pushstring(co, a->step->id);
    lua_setfield(co, -2, "step");
    lua_pushstring(co, a->step->phase);
    lua_setfield(co, -2, "phase");
    lua_pushinteger(co, a->number);
    lua_setfield(co, -2, "attempt");
    lua_pushstring(co, run->id);
    lua_setfield(co, -2, "run_id");
    if (a->step->each_ref != LUA_NOREF) {
        lua_pushinteger(co, (lua_Integer)a->item + 1);
        lua_setfield(co, -2, "index");
    }
    if (a->step->every_ms > 0) {
        lua_pushinteger(co, (lua_Integer)a->item + 1);
        lua_setfield(co, -2, "rep");
    }
    lua_pushboolean(co, a->kind == BH_RUN_UNDO);
    lua_setfield(co, -2, "undoing");
    lua_pushstring(co, run->fx->mode); /* "real", "dry-run", "drill" */
    lua_setfield(co, -2, "mode");
    lua_pushstring(co, run->rb->id);
    lua_setfield(co, -2, "runbook");
    /* where every step stands now (notification templates say so): a live
     * view, not a copy, which would cost every attempt a table of every
     * step (a 1,000-step runbook: a million entries) */
    push_status_view(co, run);
    lua_setfield(co, -2, "status");
}

/* --- ctx.status -------------------------------------------------------- */

static bh_run *status_run(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* status[id]: the step's status now, or nil for no such step. */
static int l_status_index(lua_State *L) {
    bh_run *run = status_run(L);
    size_t i = bh_model_step_index(run->rb, lua_tostring(L, 2));
    if (i == (size_t)-1) return 0;
    lua_pushstring(L, bh_step_status_name(run->status[i]));
    return 1;
}

/* next(status, id) in step order. */
static int l_status_next(lua_State *L) {
    bh_run *run = status_run(L);
    size_t i = 0;
    if (!lua_isnil(L, 2)) {
        size_t prev = bh_model_step_index(run->rb, lua_tostring(L, 2));
        i = prev == (size_t)-1 ? run->rb->nsteps : prev + 1;
    }
    if (i >= run->rb->nsteps) return 0;
    lua_pushstring(L, run->rb->steps[i].id);
    lua_pushstring(L, bh_step_status_name(run->status[i]));
    return 2;
}

static int l_status_pairs(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(2)); /* the next function */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int l_status_newindex(lua_State *L) {
    return luaL_error(L, "ctx.status is read-only: it says where each step stands");
}

/* The run's one status view, made on first use and kept in the registry. */
static void push_status_view(lua_State *L, bh_run *run) {
    static char key;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, run);
    lua_pushcclosure(L, l_status_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushlightuserdata(L, run);
    lua_pushcclosure(L, l_status_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushlightuserdata(L, run);
    lua_pushlightuserdata(L, run);
    lua_pushcclosure(L, l_status_next, 1);
    lua_pushcclosure(L, l_status_pairs, 2);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "ctx.status");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
}

/* --- dry runs and drills ------------------------------------------------ */

/* sim("before"): the drill's fault for this attempt, and a scripted
 * result (true, value) if the step has one. sim("after"): take the rest of
 * the step's estimate. Called by the step wrapper only in a simulation. */
static int l_sim(lua_State *L) {
    struct bh_ctx_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    bh_attempt *a = h ? h->a : NULL;
    if (!a) return luaL_error(L, "simulation: this step has already ended");
    const bh_sim *sim = a->run->opts->sim;
    const char *phase = luaL_checkstring(L, 1);
    if (strcmp(phase, "after") == 0) {
        const char *src;
        double want = bh_sim_estimate(sim, a->step, &src) * (a->sim_factor > 0 ? a->sim_factor : 1);
        double left = want - (bh_clock_now_ms(a->run->clock) - a->started_ms);
        if (left > 0) return wait_ms(L, a, left);
        return 0;
    }
    bh_fault f = bh_run_draw_fault(a);
    a->sim_factor = f.kind == BH_FAULT_SLOW ? f.factor : 1;
    if (f.kind == BH_FAULT_FAIL) {
        lua_newtable(L);
        return bh_luax_raise(L, "injected_failure", "drill: a failure injected into step '%s' (%s)",
                             a->label, f.source);
    }
    if (f.kind == BH_FAULT_TIMEOUT) /* hangs until the step's own timeout ends it */
        return wait_ms(L, a, bh_run_hang_ms(a));
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(bh_sim_script(sim, a->step), "result");
    if (!result) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    bh_luax_push_json(L, result);
    return 2;
}

void bh_ctx_push_sim(bh_attempt *a) {
    lua_rawgeti(a->co, LUA_REGISTRYINDEX, a->handle_ref);
    lua_pushcclosure(a->co, l_sim, 1);
}

/* gate(n, ok, healthy, why): the step wrapper's health check bookkeeping.
 * Records try n; true when healthy; raises verify_failed once another try
 * would end past the gate's deadline. */
static int l_gate(lua_State *L) {
    struct bh_ctx_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    bh_attempt *a = h->a;
    if (!a) return luaL_error(L, "verify: this step has already ended");
    lua_Integer n = luaL_checkinteger(L, 1);
    int ok = lua_toboolean(L, 2);
    int healthy = ok && lua_toboolean(L, 3);
    double now = bh_clock_now_ms(a->run->clock);
    if (n == 1) a->verify_started_ms = now;
    char why[300] = "";
    const bh_redact *r = bh_keyring_mask(a->run->rb->keyring); /* masked before it is cut short */
    int said = !ok ? 3 : !healthy && lua_type(L, 4) == LUA_TSTRING ? 4 : !healthy ? 3 : 0;
    if (said) {
        size_t len;
        const char *s = luaL_tolstring(L, said, &len);
        char *text = bh_json_from_bytes(s, len); /* a NUL in it is kept */
        bh_redact_snprintf(r, why, sizeof why, "%s%s", ok && said == 3 ? "verify returned " : "",
                           text);
        free(text);
    }
    cJSON *rec = bh_run_record(BH_REC_VERIFY, a);
    cJSON_AddNumberToObject(rec, "try", (double)n);
    cJSON_AddBoolToObject(rec, "healthy", healthy);
    if (!healthy) cJSON_AddStringToObject(rec, "message", why);
    bh_run_append(a->run, rec);
    bh_events_gate_try(a->run->events, a->label, (size_t)n, healthy, healthy ? NULL : why);
    if (healthy) {
        lua_pushboolean(L, 1);
        return 1;
    }
    char line[400];
    snprintf(line, sizeof line, "verify try %lld: not healthy: %s", (long long)n, why);
    bh_events_log(a->run->events, a->label, line);
    double elapsed = now - a->verify_started_ms;
    if (elapsed + a->step->verify_interval_ms > a->step->verify_timeout_ms) {
        char t[32];
        bh_util_format_duration(a->step->verify_timeout_ms, t, sizeof t);
        lua_newtable(L);
        return bh_luax_raise(L, "verify_failed",
                             "health gate of step '%s' still failing after %lld tries (limit "
                             "%s): %s",
                             a->label, (long long)n, t, why);
    }
    lua_pushboolean(L, 0);
    return 1;
}

void bh_ctx_push_gate(bh_attempt *a) {
    lua_rawgeti(a->co, LUA_REGISTRYINDEX, a->handle_ref);
    lua_pushcclosure(a->co, l_gate, 1);
}

void bh_ctx_release(bh_attempt *a) {
    if (a->handle) {
        a->handle->a = NULL;
        luaL_unref(a->run->L, LUA_REGISTRYINDEX, a->handle_ref);
    }
    a->handle = NULL;
    if (a->co) bh_attempt_bind(a->co, 0);
}

void bh_ctx_uninstall(bh_run *run) {
    lua_State *L = run->L;
    bh_plugin_set_recorder(L, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->rb->env_ref);
    lua_pushcfunction(L, l_print_after_run);
    lua_setfield(L, -2, "print");
    lua_pop(L, 1);
}
