#include "sched.h"

#include <errno.h>
#include <lauxlib.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "ctx.h"
#include "util.h"

static const char *const STATUS_NAMES[BH_STEP_NSTATES] = {
    "pending", "running", "ok", "failed", "timed_out", "skipped", "cancelled",
};

const char *bh_step_status_name(bh_step_status s) {
    return s < BH_STEP_NSTATES ? STATUS_NAMES[s] : "?";
}

cJSON *bh_run_record(const char *type, const bh_attempt *a) {
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", type);
    if (a) {
        cJSON_AddStringToObject(rec, "step", a->step->id);
        cJSON_AddNumberToObject(rec, "attempt", a->number);
    }
    return rec;
}

static void stop_run(bh_run *run);

/* Returned by the step wrapper when the step's `when` said no. */
static char WHEN_FALSE;

int bh_run_protected(bh_run *run, lua_CFunction fn, void *ud) {
    lua_State *L = run->L;
    lua_pushcfunction(L, fn); /* light C functions and pointers allocate nothing */
    lua_pushlightuserdata(L, ud);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) lua_pop(L, 1);
    return st;
}

#define OUT_OF_MEMORY "the runbook's Lua memory is exhausted"

void bh_run_append(bh_run *run, cJSON *rec) {
    if (!run->io_error) {
        int err = bh_journal_append(run->journal, rec);
        if (err) {
            run->io_error = err;
            fprintf(stderr, "bulkhead: cannot write the journal of run %s: %s; stopping\n", run->id,
                    bh_util_strerror(err));
            stop_run(run);
        }
    }
    cJSON_Delete(rec);
}

static int sync_journal(bh_run *run) {
    if (run->io_error) return run->io_error;
    int err = bh_journal_sync(run->journal);
    if (err) {
        run->io_error = err;
        fprintf(stderr, "bulkhead: cannot sync the journal of run %s: %s; stopping\n", run->id,
                bh_util_strerror(err));
        stop_run(run);
    }
    return err;
}

static void pump(bh_run *run);

/* A step that will not run: its status, the record and the console line. */
static void record_skipped(bh_run *run, size_t index, const char *reason) {
    const char *id = run->rb->steps[index].id;
    run->status[index] = BH_STEP_SKIPPED;
    cJSON *rec = bh_run_record("step_skipped", NULL);
    cJSON_AddStringToObject(rec, "step", id);
    cJSON_AddStringToObject(rec, "reason", reason);
    bh_run_append(run, rec);
    bh_console_step_skipped(run->console, id, reason);
}

/* --- ending an attempt ------------------------------------------------- */

static void start_attempt(bh_run *run, size_t index, int number);
static void timer_closed(uv_handle_t *h);

static void retry_fired(uv_timer_t *t) {
    bh_run *run = t->data;
    uv_close((uv_handle_t *)t, timer_closed);
    run->retry_timer = NULL;
    start_attempt(run, run->retry_index, run->retry_number);
    pump(run);
}

/* Exponential backoff with jitter: base * 2^(k-1), capped, then scaled by
 * a random factor in [0.5, 1) so that many runs retrying the same service
 * do not hit it in step. */
static double backoff_delay(const bh_step *s, int retry) {
    double d = s->backoff_ms;
    for (int k = 1; k < retry && d < BH_MAX_BACKOFF_MS; k++)
        d *= 2;
    if (d > BH_MAX_BACKOFF_MS) d = BH_MAX_BACKOFF_MS;
    return d * (0.5 + (double)randombytes_uniform(1000) / 2000.0);
}

static void schedule_retry(bh_run *run, size_t index, int number) {
    const bh_step *s = &run->rb->steps[index];
    double delay = backoff_delay(s, number - 1);
    cJSON *rec = bh_run_record("retry", NULL);
    cJSON_AddStringToObject(rec, "step", s->id);
    cJSON_AddNumberToObject(rec, "attempt", number);
    cJSON_AddNumberToObject(rec, "delay_ms", delay);
    bh_run_append(run, rec);
    char d[32], msg[128];
    bh_util_format_duration(delay, d, sizeof d);
    snprintf(msg, sizeof msg, "%s: attempt %d of %d in %s", s->id, number, s->retries + 1, d);
    bh_console_notice(run->console, msg);
    run->retry_index = index;
    run->retry_number = number;
    run->retry_timer = bh_util_xmalloc(sizeof *run->retry_timer);
    uv_timer_init(run->loop, run->retry_timer);
    run->retry_timer->data = run;
    uv_timer_start(run->retry_timer, retry_fired, (uint64_t)delay, 0);
}

static void timer_closed(uv_handle_t *h) {
    free(h);
}

static void finish_attempt(bh_attempt *a, bh_step_status status, cJSON *result,
                           bh_luax_error *err) {
    bh_run *run = a->run;
    if (a->timer) {
        uv_timer_stop(a->timer);
        uv_close((uv_handle_t *)a->timer, timer_closed);
        a->timer = NULL;
    }
    double ms = (double)(uv_hrtime() - a->started_ns) / 1e6;
    cJSON *rec = bh_run_record("step_end", a);
    cJSON_AddStringToObject(rec, "status", bh_step_status_name(status));
    cJSON_AddNumberToObject(rec, "duration_ms", ms);
    if (result) cJSON_AddItemToObject(rec, "result", result);
    char detail[400] = "";
    if (err) {
        cJSON_AddItemToObject(rec, "error", bh_luax_error_json(err));
        snprintf(detail, sizeof detail, "%s", err->message ? err->message : "");
    }
    /* What happens next is part of the record: an auditor reading a failed
     * attempt should not have to infer whether the run retried it. */
    const bh_step *s = a->step;
    const char *next = NULL;
    if (status == BH_STEP_SKIPPED) {
        cJSON_AddStringToObject(rec, "reason", "when: the condition is false");
        snprintf(detail, sizeof detail, "when: the condition is false");
    } else if (status != BH_STEP_OK) {
        int stoppable = status == BH_STEP_CANCELLED || run->stopping || run->io_error;
        if (!stoppable && a->number <= s->retries)
            next = "retry";
        else if (!stoppable && s->on_failure_continue)
            next = "continue";
        else
            next = "abort";
        cJSON_AddStringToObject(rec, "next", next);
    }
    bh_run_append(run, rec);
    bh_console_step_end(run->console, s->id, bh_step_status_name(status), ms, detail);

    run->status[a->index] = status;
    if (next && strcmp(next, "retry") == 0)
        schedule_retry(run, a->index, a->number + 1);
    else if (next && strcmp(next, "continue") == 0)
        run->continued++;
    else if (next)
        run->failed = 1;
    bh_ctx_release(a);
    if (a->co) lua_sethook(a->co, NULL, 0, 0);
    luaL_unref(run->L, LUA_REGISTRYINDEX, a->co_ref);
    free(a->exec.what);
    run->current = NULL;
    free(a);
    pump(run);
}

static void fail_with(bh_attempt *a, bh_step_status status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_with(bh_attempt *a, bh_step_status status, const char *code, const char *fmt,
                      ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bh_luax_error e = {0};
    e.code = bh_util_xstrdup(code);
    e.message = bh_util_xstrdup(msg);
    finish_attempt(a, status, NULL, &e);
    bh_luax_error_free(&e);
}

static void end_abandoned(bh_attempt *a) {
    char t[32];
    bh_util_format_duration(a->timeout_ms, t, sizeof t);
    if (a->timed_out)
        fail_with(a, BH_STEP_TIMED_OUT, "step_timeout", "step '%s' exceeded its timeout of %s",
                  a->step->id, t);
    else if (a->run->interrupt_signal)
        fail_with(a, BH_STEP_CANCELLED, "cancelled", "step '%s' was cancelled by %s", a->step->id,
                  a->run->interrupt_signal == SIGTERM ? "SIGTERM" : "SIGINT");
    else
        fail_with(a, BH_STEP_CANCELLED, "cancelled",
                  "step '%s' was cancelled: the journal could not be written", a->step->id);
}

void bh_sched_abandon(bh_attempt *a) {
    end_abandoned(a);
}

void bh_sched_fail(bh_attempt *a, const char *code, const char *message) {
    fail_with(a, BH_STEP_FAILED, code, "%s", message);
}

/* Convert a finished body's first return value and keep it in results. */
typedef struct {
    bh_attempt *a;
    int nres;
    cJSON *result;
    char why[256];
} stored_result;

static int store_result(lua_State *L) {
    stored_result *r = lua_touserdata(L, 1);
    lua_State *co = r->a->co;
    r->result = bh_luax_to_json(co, -r->nres, r->why, sizeof r->why);
    if (!r->result) return 0;
    bh_luax_checkstack(co, 3);
    lua_rawgeti(co, LUA_REGISTRYINDEX, r->a->run->results_ref);
    lua_pushstring(co, r->a->step->id);
    lua_pushvalue(co, -r->nres - 2);
    lua_rawset(co, -3); /* raw: a runbook's __newindex must not run here */
    lua_pop(co, 1);
    return 0;
}

typedef struct {
    lua_State *co;
    bh_luax_error *err;
} described_error;

static int describe_error(lua_State *L) {
    described_error *d = lua_touserdata(L, 1);
    bh_luax_error_from_thread(d->co, d->err);
    return 0;
}

/* Stop what the attempt waits on. With an exec the attempt ends when the
 * children are gone (exec_done calls bh_sched_abandon); a sleep ends now. */
static void interrupt_attempt(bh_attempt *a, int hard) {
    switch (a->waiting) {
    case BH_WAIT_EXEC:
        a->run->fx->cancel(a->run->fx, a->exec.op, hard);
        break;
    case BH_WAIT_SLEEP:
        bh_ctx_stop_sleep(a);
        end_abandoned(a);
        break;
    case BH_WAIT_NONE:
        break;
    }
}

static void step_timeout(uv_timer_t *t) {
    bh_attempt *a = t->data;
    if (a->cancelled) return;
    /* timed_out may already be set by the deadline hook's error (which the
     * body can catch): stop what the body waits on all the same. */
    a->timed_out = 1;
    interrupt_attempt(a, 0);
}

void bh_sched_resume(bh_attempt *a, int nargs) {
    bh_run *run = a->run;
    lua_State *co = a->co;
    int nres = 0;
    int st = lua_resume(co, run->L, nargs, &nres);
    if (st == LUA_YIELD) {
        if (a->waiting != BH_WAIT_NONE) return;
        lua_pop(co, nres);
        if (a->timed_out || a->cancelled) { /* the deadline hook or attempt_of yielded */
            end_abandoned(a);
            return;
        }
        fail_with(a, BH_STEP_FAILED, "bad_yield",
                  "step '%s' yielded outside a bulkhead primitive (coroutine.yield in the "
                  "body?)",
                  a->step->id);
        return;
    }
    if (st == LUA_OK) {
        cJSON *result = NULL;
        if (nres == 1 && lua_touserdata(co, -1) == &WHEN_FALSE && !a->timed_out) {
            lua_pop(co, 1);
            finish_attempt(a, BH_STEP_SKIPPED, NULL, NULL);
            return;
        }
        if (nres > 0) {
            stored_result r = {.a = a, .nres = nres};
            if (bh_run_protected(run, store_result, &r) != LUA_OK) {
                cJSON_Delete(r.result);
                fail_with(a, BH_STEP_FAILED, "memory",
                          "step '%s' finished but its result could not be kept: " OUT_OF_MEMORY,
                          a->step->id);
                return;
            }
            lua_pop(co, nres);
            if (!r.result) {
                fail_with(a, BH_STEP_FAILED, "bad_result",
                          "step '%s' returned something the journal cannot hold: %s", a->step->id,
                          r.why);
                return;
            }
            result = r.result;
        }
        if (a->timed_out) {
            /* The deadline passed in code that could not yield, and the body
             * caught the error: still a timeout. */
            cJSON_Delete(result);
            end_abandoned(a);
            return;
        }
        finish_attempt(a, BH_STEP_OK, result, NULL);
        return;
    }
    bh_luax_error e = {0};
    described_error d = {.co = co, .err = &e};
    if (bh_run_protected(run, describe_error, &d) != LUA_OK) {
        bh_luax_error_free(&e);
        e.code = bh_util_xstrdup(st == LUA_ERRMEM ? "memory" : "lua_error");
        e.message = bh_util_xstrdup("the step failed, and describing the error failed "
                                    "too: " OUT_OF_MEMORY);
    }
    bh_step_status status = BH_STEP_FAILED;
    if (a->timed_out) {
        status = BH_STEP_TIMED_OUT;
        free(e.code);
        e.code = bh_util_xstrdup("step_timeout");
    }
    finish_attempt(a, status, NULL, &e);
    bh_luax_error_free(&e);
}

/* --- starting steps ---------------------------------------------------- */

static double step_timeout_ms(const bh_run *run, const bh_step *s) {
    if (!s->timeout_set && run->opts->timeout_override_ms > 0)
        return run->opts->timeout_override_ms;
    return s->timeout_ms;
}

/* Every attempt runs this in its coroutine: the condition first, then the
 * body. Written in Lua so that both may wait on primitives (a yield from a
 * C caller would need a continuation); compiled by the host, outside the
 * runbook's sandbox. */
static const char STEP_WRAPPER[] = "local run, when, ctx, skip = ...\n"
                                   "if when and not when(ctx) then return skip end\n"
                                   "return run(ctx)\n";

static int wrapper_ref(bh_run *run) {
    if (run->wrapper_ref == LUA_NOREF) {
        if (luaL_loadbufferx(run->L, STEP_WRAPPER, sizeof STEP_WRAPPER - 1, "=bulkhead step",
                             "t") != LUA_OK)
            lua_error(run->L); /* out of memory: caught by bh_run_protected */
        run->wrapper_ref = luaL_ref(run->L, LUA_REGISTRYINDEX);
    }
    return run->wrapper_ref;
}

/* The attempt's coroutine, its hook, its body and its ctx (protected). */
static int setup_attempt(lua_State *L) {
    bh_attempt *a = lua_touserdata(L, 1);
    int wrapper = wrapper_ref(a->run);
    a->co = lua_newthread(L);
    a->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    bh_ctx_set_deadline_hook(a);
    lua_rawgeti(a->co, LUA_REGISTRYINDEX, wrapper);
    lua_rawgeti(a->co, LUA_REGISTRYINDEX, a->step->run_ref);
    /* The condition decides whether the step runs at all, so only the first
     * attempt asks it: a retry after a failure is not a new decision. */
    if (a->step->when_ref != LUA_NOREF && a->number == 1)
        lua_rawgeti(a->co, LUA_REGISTRYINDEX, a->step->when_ref);
    else
        lua_pushnil(a->co);
    bh_ctx_push(a);
    lua_pushlightuserdata(a->co, &WHEN_FALSE);
    return 0;
}

static void start_attempt(bh_run *run, size_t index, int number) {
    const bh_step *s = &run->rb->steps[index];
    if (s->when_false) {
        record_skipped(run, index, "when = false");
        return;
    }
    if (!run->last_phase || strcmp(run->last_phase, s->phase) != 0) {
        free(run->last_phase);
        run->last_phase = bh_util_xstrdup(s->phase);
        bh_console_phase(run->console, s->phase);
    }
    bh_attempt *a = bh_util_xcalloc(1, sizeof *a);
    a->run = run;
    a->index = index;
    a->step = s;
    a->number = number;
    double timeout = step_timeout_ms(run, s);
    a->timeout_ms = timeout;
    cJSON *rec = bh_run_record("step_start", a);
    cJSON_AddStringToObject(rec, "phase", s->phase);
    cJSON_AddNumberToObject(rec, "timeout_ms", timeout);
    bh_run_append(run, rec);
    /* Write-ahead: this sync also covers the previous step's end record. */
    if (sync_journal(run) != 0) {
        free(a);
        return;
    }
    run->status[index] = BH_STEP_RUNNING;
    run->current = a;
    bh_console_step_start(run->console, index, run->rb->nsteps, s->id);

    a->co_ref = LUA_NOREF;
    a->started_ns = uv_hrtime();
    a->deadline_ns = a->started_ns + (uint64_t)(timeout * 1e6);
    a->timer = bh_util_xmalloc(sizeof *a->timer);
    uv_timer_init(run->loop, a->timer);
    a->timer->data = a;
    uv_timer_start(a->timer, step_timeout, (uint64_t)timeout, 0);
    if (bh_run_protected(run, setup_attempt, a) != LUA_OK) {
        if (a->co_ref == LUA_NOREF) a->co = NULL; /* not anchored: not ours to touch */
        fail_with(a, BH_STEP_FAILED, "memory", "step '%s' could not start: " OUT_OF_MEMORY, s->id);
        return;
    }
    bh_sched_resume(a, 4);
}

static void skip_rest(bh_run *run, const char *reason) {
    for (size_t p = 0; p < run->rb->nsteps; p++) {
        size_t i = run->rb->order[p];
        if (run->status[i] == BH_STEP_PENDING) record_skipped(run, i, reason);
    }
    run->next_step = run->rb->nsteps;
}

static void close_signal(uv_handle_t *h) {
    free(h);
}

static void finish_run(bh_run *run) {
    run->done = 1;
    for (int i = 0; i < 2; i++) {
        if (run->sig[i]) {
            uv_signal_stop(run->sig[i]);
            uv_close((uv_handle_t *)run->sig[i], close_signal);
            run->sig[i] = NULL;
        }
    }
}

/* A step whose dependencies did not all succeed is skipped (and so are the
 * steps waiting for it); one skipped by its own `when` counts as done. */
static void start_or_block(bh_run *run, size_t index) {
    const bh_step *s = &run->rb->steps[index];
    for (size_t k = 0; k < s->nafter; k++) {
        size_t d = s->deps[k];
        bh_step_status st = run->status[d];
        if (st == BH_STEP_OK || (st == BH_STEP_SKIPPED && !run->blocked[d])) continue;
        run->blocked[index] = 1;
        char reason[300];
        snprintf(reason, sizeof reason, "after: '%s' did not succeed", run->rb->steps[d].id);
        record_skipped(run, index, reason);
        return;
    }
    start_attempt(run, index, 1);
}

/* Start the next step, or end the run. Loops rather than recursing when a
 * step finishes without waiting on the loop. */
static void pump(bh_run *run) {
    while (!run->current && !run->retry_timer && !run->done) {
        if (run->io_error) {
            skip_rest(run, "the journal could not be written");
            finish_run(run);
        } else if (run->stopping) {
            skip_rest(run, "the run was interrupted");
            finish_run(run);
        } else if (run->failed) {
            skip_rest(run, "an earlier step failed");
            finish_run(run);
        } else if (run->next_step >= run->rb->nsteps) {
            finish_run(run);
        } else {
            start_or_block(run, run->rb->order[run->next_step++]);
        }
    }
}

static void stop_run(bh_run *run) {
    run->stopping = 1;
    if (run->retry_timer) { /* waiting to retry: do not, and say so */
        cJSON *rec = bh_run_record("retry_cancelled", NULL);
        cJSON_AddStringToObject(rec, "step", run->rb->steps[run->retry_index].id);
        cJSON_AddNumberToObject(rec, "attempt", run->retry_number);
        bh_run_append(run, rec);
        uv_timer_stop(run->retry_timer);
        uv_close((uv_handle_t *)run->retry_timer, timer_closed);
        run->retry_timer = NULL;
        pump(run);
        return;
    }
    if (run->current && !run->current->cancelled && !run->current->timed_out) {
        run->current->cancelled = 1;
        interrupt_attempt(run->current, 0);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    bh_run *run = h->data;
    cJSON *rec = bh_run_record("interrupt", NULL);
    cJSON_AddStringToObject(rec, "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    int hard = run->interrupt_signal != 0;
    cJSON_AddStringToObject(rec, "action", hard ? "kill" : "terminate");
    bh_run_append(run, rec);
    if (!hard) {
        run->interrupt_signal = signum;
        bh_console_notice(run->console,
                          "interrupted: stopping the running step (again to kill at once)");
        stop_run(run);
    } else if (run->current) {
        run->hard_kill = 1;
        interrupt_attempt(run->current, 1);
    }
}

/* --- the run folder ---------------------------------------------------- */

static char *make_run_id(const bh_runbook *rb) {
    int64_t now = bh_util_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    unsigned char rnd[3];
    randombytes_buf(rnd, sizeof rnd);
    /* Milliseconds in the id so that ids sort by start time ("last"). */
    return bh_util_asprintf("%s.%03dZ-%s-%02x%02x%02x", stamp, (int)(now % 1000), rb->id, rnd[0],
                            rnd[1], rnd[2]);
}

static int create_run_dir(bh_run *run) {
    char *runs = bh_util_asprintf("%s/runs", run->opts->state_dir);
    int err = bh_util_mkdir_p(runs);
    if (err == 0) {
        run->dir = bh_util_asprintf("%s/%s", runs, run->id);
        if (mkdir(run->dir, 0700) != 0) err = -errno;
    }
    if (err == 0) err = bh_util_fsync_dir(runs);
    if (err == 0) {
        char *out = bh_util_asprintf("%s/out", run->dir);
        if (mkdir(out, 0700) != 0) err = -errno;
        free(out);
    }
    if (err == 0) {
        char *path = bh_util_asprintf("%s/journal.jsonl", run->dir);
        err = bh_journal_create(path, &run->journal);
        free(path);
    }
    if (err)
        fprintf(stderr, "bulkhead: cannot create the run folder under %s: %s\n", runs,
                bh_util_strerror(err));
    free(runs);
    return err;
}

static void journal_to_console(const char *line, size_t len, void *ud) {
    bh_console_record(ud, line, len);
}

static const char *operator_name(const bh_run_opts *opts) {
    if (opts->operator_name) return opts->operator_name;
    const char *env = getenv("BULKHEAD_OPERATOR");
    if (env && *env) return env;
    struct passwd *pw = getpwuid(geteuid());
    return pw ? pw->pw_name : "unknown";
}

static void write_run_start(bh_run *run) {
    const bh_runbook *rb = run->rb;
    cJSON *rec = bh_run_record("run_start", NULL);
    cJSON_AddStringToObject(rec, "run_id", run->id);
    cJSON *r = cJSON_AddObjectToObject(rec, "runbook");
    cJSON_AddStringToObject(r, "path", rb->path);
    char *abs = realpath(rb->path, NULL);
    if (abs) cJSON_AddStringToObject(r, "realpath", abs);
    free(abs);
    cJSON_AddStringToObject(r, "sha256", rb->sha256);
    cJSON_AddStringToObject(r, "id", rb->id);
    cJSON_AddStringToObject(r, "title", rb->title);
    cJSON_AddStringToObject(r, "severity", rb->severity);
    if (rb->owner) cJSON_AddStringToObject(r, "owner", rb->owner);
    cJSON_AddItemToObject(rec, "params", cJSON_Duplicate(rb->param_values, 1));
    cJSON_AddStringToObject(rec, "operator", operator_name(run->opts));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(rec, "host", host);
    cJSON_AddNumberToObject(rec, "pid", getpid());
    cJSON *eng = cJSON_AddObjectToObject(rec, "engine");
    cJSON_AddStringToObject(eng, "name", "bulkhead");
    cJSON_AddStringToObject(eng, "version", BH_VERSION);
    cJSON_AddStringToObject(rec, "mode", run->fx->mode);
    cJSON *steps = cJSON_AddArrayToObject(rec, "steps");
    for (size_t i = 0; i < rb->nsteps; i++)
        cJSON_AddItemToArray(steps, cJSON_CreateString(rb->steps[i].id));
    bh_run_append(run, rec);
}

static const char *run_status(const bh_run *run) {
    if (run->io_error) return "error";
    if (run->interrupt_signal) return "interrupted";
    return run->failed ? "failed" : "ok";
}

static void write_run_end(bh_run *run) {
    double ms = (double)(uv_hrtime() - run->started_ns) / 1e6;
    cJSON *rec = bh_run_record("run_end", NULL);
    cJSON_AddStringToObject(rec, "status", run_status(run));
    cJSON_AddNumberToObject(rec, "duration_ms", ms);
    cJSON *counts = cJSON_AddObjectToObject(rec, "counts");
    size_t n[BH_STEP_NSTATES] = {0};
    for (size_t i = 0; i < run->rb->nsteps; i++)
        n[run->status[i]]++;
    char summary[256] = "";
    for (int s = 0; s < BH_STEP_NSTATES; s++) {
        if (!n[s]) continue;
        cJSON_AddNumberToObject(counts, STATUS_NAMES[s], (double)n[s]);
        size_t used = strlen(summary);
        snprintf(summary + used, sizeof summary - used, "%s%zu %s", used ? ", " : "", n[s],
                 STATUS_NAMES[s]);
    }
    bh_run_append(run, rec);
    sync_journal(run);
    bh_console_run_end(run->console, run->id, run_status(run), ms, summary);
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

bh_run_outcome bh_sched_run(bh_runbook *rb, const bh_run_opts *opts, char **run_id, int *sig) {
    bh_run run_s;
    bh_run *run = &run_s;
    memset(run, 0, sizeof *run);
    *run_id = NULL;
    *sig = 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    run->loop = &loop;
    run->rb = rb;
    run->L = rb->L;
    run->opts = opts;
    run->fx = bh_fx_real(&loop);
    run->console = bh_console_new(&loop, opts->console_mode, stdout);
    run->id = make_run_id(rb);
    run->status = bh_util_xcalloc(rb->nsteps ? rb->nsteps : 1, sizeof *run->status);
    run->wrapper_ref = LUA_NOREF;
    run->blocked = bh_util_xcalloc(rb->nsteps ? rb->nsteps : 1, 1);
    run->started_ns = uv_hrtime();

    bh_run_outcome outcome;
    if (create_run_dir(run) != 0) {
        outcome = BH_RUN_IO_ERROR;
        goto out;
    }
    *run_id = bh_util_xstrdup(run->id);
    bh_journal_set_listener(run->journal, journal_to_console, run->console);
    lua_newtable(run->L);
    run->results_ref = luaL_ref(run->L, LUA_REGISTRYINDEX);
    bh_ctx_install_print(run);

    write_run_start(run);
    bh_console_run_start(run->console, run->id, rb->title, run->dir, rb->nsteps, run->fx->mode);
    int signums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        run->sig[i] = bh_util_xmalloc(sizeof *run->sig[i]);
        uv_signal_init(&loop, run->sig[i]);
        run->sig[i]->data = run;
        uv_signal_start(run->sig[i], on_signal, signums[i]);
    }
    pump(run);
    uv_run(&loop, UV_RUN_DEFAULT);
    write_run_end(run);
    bh_ctx_uninstall_print(run);
    luaL_unref(run->L, LUA_REGISTRYINDEX, run->results_ref);
    luaL_unref(run->L, LUA_REGISTRYINDEX, run->wrapper_ref);
    int err = bh_journal_close(run->journal);
    if (err && !run->io_error) run->io_error = err;
    run->journal = NULL;
    if (run->io_error)
        outcome = BH_RUN_IO_ERROR;
    else if (run->interrupt_signal)
        outcome = BH_RUN_INTERRUPTED;
    else
        outcome = run->failed ? BH_RUN_FAILED : BH_RUN_OK;
    *sig = run->interrupt_signal;
out:
    if (run->journal) bh_journal_close(run->journal);
    bh_console_close(run->console);
    run->fx->destroy(run->fx);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Anything still open is a bug; close it so the loop can be freed, and
     * say so rather than leak quietly. */
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "bulkhead: internal: handles left open at exit\n");
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    free(run->last_phase);
    free(run->status);
    free(run->blocked);
    free(run->id);
    free(run->dir);
    return outcome;
}
