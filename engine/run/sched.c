#include "run/sched.h"
#include "run/run.h"

#include "journal/schema.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/ctx.h"
#include "run/gate.h"
#include "run/socket.h"
#include "journal/remain.h"
#include "report/scorecard.h"
#include "load/sim.h"
#include "run/rollback.h"
#include "base/util.h"

#define OUT_OF_MEMORY "the runbook's Lua memory is exhausted"

/* Returned by the step wrapper when the step's `when` said no. */
static char WHEN_FALSE;

static void stop_run(bh_run *run);
static void deliver_signals(bh_run *run);

static int final_status(bh_step_status st) {
    return st != BH_STEP_PENDING && st != BH_STEP_RUNNING;
}

/* A step that will not run: its status, the record and the console line.
 * cause is "when" (when = false), "after" (a dependency did not succeed) or
 * "halt" (the run stopped before its turn: a resumed run runs it). */
static void record_skipped(bh_run *run, size_t index, const char *cause, const char *reason) {
    const char *id = run->rb->steps[index].id;
    run->status[index] = BH_STEP_SKIPPED;
    cJSON *rec = bh_run_record(BH_REC_STEP_SKIPPED, NULL);
    cJSON_AddStringToObject(rec, "step", id);
    cJSON_AddStringToObject(rec, "cause", cause);
    cJSON_AddStringToObject(rec, "reason", reason);
    bh_run_append(run, rec);
    bh_events_step_skipped(run->events, id, reason);
}

/* --- the end of a step ------------------------------------------------- */

/* The step's failure policy takes effect: the run goes on, stops, or stops
 * and rolls back. A cancelled step (Ctrl-C, broken journal) always stops. */
static void apply_policy(bh_run *run, size_t index, bh_step_status status) {
    const bh_step *s = &run->rb->steps[index];
    /* unknown: the operator chose to go on without repeating it (resume) */
    if (status == BH_STEP_OK || status == BH_STEP_SKIPPED || status == BH_STEP_UNKNOWN) return;
    if (status != BH_STEP_CANCELLED && !run->stopping && !run->io_error &&
        s->on_failure == BH_FAIL_CONTINUE) {
        run->continued++;
        return;
    }
    run->failed = 1;
    if (s->on_failure == BH_FAIL_ROLLBACK && !run->io_error) run->rollback = 1;
}

static const char *policy_next(const bh_run *run, const bh_step *s, bh_step_status status) {
    int stoppable = status == BH_STEP_CANCELLED || run->stopping || run->io_error;
    if (stoppable || s->on_failure == BH_FAIL_ABORT) return "abort";
    return bh_model_policy_name(s->on_failure);
}

/* The status a step's policy sees: in doubt only because the operator
 * chose at a resume not to repeat what was cut off, it goes on as an
 * unknown outcome does. */
static bh_step_status policy_status(const bh_step_rt *rt, bh_step_status st) {
    if (st == BH_STEP_IN_DOUBT && rt->in_doubt <= rt->waived && !rt->failed && !rt->timed_out &&
        !rt->cancelled && !rt->not_started)
        return BH_STEP_UNKNOWN;
    return st;
}

/* A step whose instances have all ended (and whose cadence has stopped)
 * gets its final status. A fan-out or cadence also gets a step_done
 * record summing up its instances; a single attempt's step_end says it. */
static void maybe_end_step(bh_run *run, size_t index) {
    bh_step_rt *rt = &run->rt[index];
    const bh_step *s = &run->rb->steps[index];
    if (final_status(run->status[index]) || !rt->began || rt->awaiting) return;
    if ((rt->next_item < rt->nitems && !rt->halted) || rt->running > 0 || rt->cadence_timer) return;
    bh_step_status st;
    if (rt->in_doubt) /* what may remain matters more than how the rest ended */
        st = BH_STEP_IN_DOUBT;
    else if (rt->cancelled || rt->not_started)
        st = BH_STEP_CANCELLED;
    else if (rt->failed)
        st = BH_STEP_FAILED;
    else if (rt->timed_out)
        st = BH_STEP_TIMED_OUT;
    else if (rt->unknown && s->every_ms <= 0) /* a cadence's next repetition stood in */
        st = BH_STEP_UNKNOWN;
    else if (rt->nitems > 0 && rt->skipped == rt->nitems && s->every_ms <= 0)
        st = BH_STEP_SKIPPED;
    else
        st = BH_STEP_OK;
    run->status[index] = st;
    if (s->each_ref != LUA_NOREF || s->every_ms > 0) {
        cJSON *rec = bh_run_record(BH_REC_STEP_DONE, NULL);
        cJSON_AddStringToObject(rec, "step", s->id);
        cJSON_AddStringToObject(rec, "status", bh_step_status_name(st));
        cJSON_AddNumberToObject(rec, s->every_ms > 0 ? "reps" : "items",
                                (double)(s->every_ms > 0 ? (size_t)rt->reps : rt->nitems));
        cJSON_AddNumberToObject(rec, "ok", (double)rt->ok);
        cJSON_AddNumberToObject(rec, "failed",
                                (double)(rt->failed + rt->timed_out + rt->cancelled));
        cJSON_AddNumberToObject(rec, "skipped", (double)rt->skipped);
        if (rt->unknown) cJSON_AddNumberToObject(rec, "unknown", (double)rt->unknown);
        if (rt->in_doubt) cJSON_AddNumberToObject(rec, "in_doubt", (double)rt->in_doubt);
        if (rt->not_started) cJSON_AddNumberToObject(rec, "not_started", (double)rt->not_started);
        bh_step_status pst = policy_status(rt, st);
        if (pst != BH_STEP_OK && pst != BH_STEP_SKIPPED && pst != BH_STEP_UNKNOWN)
            cJSON_AddStringToObject(rec, "next", policy_next(run, s, st));
        bh_run_append(run, rec);
        char msg[256];
        char doubt[48] = "";
        if (rt->in_doubt) snprintf(doubt, sizeof doubt, ", %zu in doubt", rt->in_doubt);
        snprintf(msg, sizeof msg, "%s: %s (%zu ok, %zu failed%s, %zu skipped of %zu)", s->id,
                 bh_step_status_name(st), rt->ok, rt->failed + rt->timed_out + rt->cancelled, doubt,
                 rt->skipped, s->every_ms > 0 ? (size_t)rt->reps : rt->nitems);
        bh_events_notice(run->events, msg);
    }
    apply_policy(run, index, policy_status(rt, st));
}

/* End a step that never got to run an attempt: a denied approval, items
 * that could not be listed, a stop while it waited. */
static void sched_end_step(bh_run *run, size_t index, bh_step_status status, const char *code,
                           const char *message) {
    const bh_step *s = &run->rb->steps[index];
    bh_step_rt *rt = &run->rt[index];
    if (rt->awaiting) bh_events_approval_closed(run->events, s->id, bh_step_status_name(status));
    rt->awaiting = 0;
    rt->began = 1;
    run->status[index] = status;
    cJSON *rec = bh_run_record(BH_REC_STEP_END, NULL);
    cJSON_AddStringToObject(rec, "step", s->id);
    cJSON_AddNumberToObject(rec, "attempt", 0);
    cJSON_AddStringToObject(rec, "status", bh_step_status_name(status));
    cJSON_AddNumberToObject(rec, "duration_ms", 0);
    cJSON *e = cJSON_AddObjectToObject(rec, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(rec, "next", policy_next(run, s, status));
    bh_run_append(run, rec);
    bh_events_step_end(run->events, s->id, bh_step_status_name(status), 0, message);
    apply_policy(run, index, status);
    bh_sched_pump(run);
}

/* --- ending an attempt ------------------------------------------------- */

static void start_attempt(bh_run *run, size_t index, size_t item, int number, int ask_when,
                          const bh_doubt *before);
static int can_start(const bh_run *run, const bh_unit *u, size_t index);

static void unlink_retry(bh_run *run, bh_retry *r) {
    for (bh_retry **p = &run->retries; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

static void retry_fired(void *ud) {
    bh_retry *r = ud;
    r->due = 1; /* the pump starts it within the caps */
    bh_sched_pump(r->run);
}

static void drop_retry(bh_run *run, bh_retry *r) {
    unlink_retry(run, r);
    run->rt[r->index].running--;
    bh_timer_stop(r->timer);
    free(r);
}

/* The run stops: retries not started will not be, and the record says so. */
static void cancel_retries(bh_run *run) {
    while (run->retries) {
        bh_retry *r = run->retries;
        cJSON *rec = bh_run_record(BH_REC_RETRY_CANCELLED, NULL);
        const bh_step *s = &run->rb->steps[r->index];
        cJSON_AddStringToObject(rec, "step", s->id);
        if (s->each_ref != LUA_NOREF) cJSON_AddNumberToObject(rec, "item", (double)r->item + 1);
        cJSON_AddNumberToObject(rec, "attempt", r->number);
        bh_run_append(run, rec);
        size_t index = r->index, item = r->item;
        /* what the attempt before it may have left stays in doubt */
        int doubt = r->doubt.unsure; /* set when the attempt before it was in doubt */
        drop_retry(run, r);
        if (doubt) {
            run->rt[index].in_doubt++;
            bh_run_remember_done(run, index, item); /* so its undo runs */
        } else {
            run->rt[index].cancelled++;
        }
        maybe_end_step(run, index);
    }
}

/* Exponential backoff with jitter: base * 2^(k-1), capped, then scaled by
 * a random factor in [0.5, 1) so that many runs retrying the same service
 * do not hit it in step. */
static double backoff_delay(bh_run *run, const bh_step *s, size_t item, int retry) {
    double d = s->backoff_ms;
    for (int k = 1; k < retry && d < BH_MAX_BACKOFF_MS; k++)
        d *= 2;
    if (d > BH_MAX_BACKOFF_MS) d = BH_MAX_BACKOFF_MS;
    /* A drill's jitter comes from its seed: the same seed, the same drill. */
    double u = (double)randombytes_uniform(1000) / 1000.0;
    if (run->opts->sim) {
        char key[64];
        bh_run_item_key(run, (size_t)(s - run->rb->steps), item, key, sizeof key);
        u = bh_sim_uniform(run->opts->sim, "backoff", s->id, key, retry);
    }
    return d * (0.5 + u / 2.0);
}

/* Attempt number of instance (index, item) starts in delay ms, or later if
 * the caps say so; until then the instance is not over. */
static bh_retry *queue_retry(bh_run *run, size_t index, size_t item, int number, double delay) {
    bh_retry *r = bh_util_xcalloc(1, sizeof *r);
    r->run = run;
    r->index = index;
    r->item = item;
    r->number = number;
    r->next = run->retries;
    run->retries = r;
    run->rt[index].running++;
    r->timer = bh_timer_start(run->clock, delay, 0, retry_fired, r);
    return r;
}

static void schedule_retry(bh_attempt *a) {
    bh_run *run = a->run;
    const bh_step *s = a->step;
    int number = a->number + 1;
    double delay = backoff_delay(run, s, a->item, number - 1);
    cJSON *rec = bh_run_record(BH_REC_RETRY, NULL);
    cJSON_AddStringToObject(rec, "step", s->id);
    if (s->each_ref != LUA_NOREF) cJSON_AddNumberToObject(rec, "item", (double)a->item + 1);
    cJSON_AddNumberToObject(rec, "attempt", number);
    cJSON_AddNumberToObject(rec, "delay_ms", delay);
    bh_run_append(run, rec);
    char d[32], msg[256];
    bh_util_format_duration(delay, d, sizeof d);
    snprintf(msg, sizeof msg, "%s: attempt %d of %d in %s", a->label, number, s->retries + 1, d);
    bh_events_notice(run->events, msg);
    queue_retry(run, a->index, a->item, number, delay)->doubt = a->doubt;
}

static void unlink_attempt(bh_run *run, bh_attempt *a) {
    if (a->prev)
        a->prev->next = a->next;
    else
        run->attempts = a->next;
    if (a->next) a->next->prev = a->prev;
    run->running--;
    run->unit_running[a->step->unit]--;
}

/* Did an attempt that did not succeed perhaps act? One of its effects
 * was cut off or got no answer, or it was itself cut off (timeout,
 * interrupt) after an effect completed: then what it did may remain, and
 * it is in doubt rather than failed. An attempt that failed with an
 * answer of its own (an error, an exit code, a health gate) is failed. */
static int in_doubt(const bh_attempt *a, bh_step_status status) {
    if (a->kind == BH_RUN_UNDO) return 0;
    if (status != BH_STEP_FAILED && status != BH_STEP_TIMED_OUT && status != BH_STEP_CANCELLED)
        return 0;
    return a->doubt.unsure || (a->doubt.acted && status != BH_STEP_FAILED);
}

static void finish_attempt(bh_attempt *a, bh_step_status status, cJSON *result,
                           bh_luax_error *err) {
    bh_run *run = a->run;
    int doubt = in_doubt(a, status);
    if (doubt) status = BH_STEP_IN_DOUBT;
    bh_timer_stop(a->timer);
    a->timer = NULL;
    bh_gate_forget(a);
    double ms = bh_clock_now_ms(run->clock) - a->started_ms;
    const bh_step *s = a->step;
    bh_step_rt *rt = &run->rt[a->index];
    int undo = a->kind == BH_RUN_UNDO;
    cJSON *rec = bh_run_record(undo ? BH_REC_UNDO_END : BH_REC_STEP_END, a);
    cJSON_AddStringToObject(rec, "status", bh_step_status_name(status));
    cJSON_AddNumberToObject(rec, "duration_ms", ms);
    if (result) cJSON_AddItemToObject(rec, "result", result);
    char detail[400] = "";
    if (err) {
        cJSON_AddItemToObject(rec, "error", bh_luax_error_json(err));
        bh_redact_snprintf(bh_keyring_mask(run->rb->keyring), detail, sizeof detail, "%s",
                           err->message ? err->message : "");
    }
    /* What happens next is part of the record: an auditor reading a failed
     * attempt should not have to infer whether the run retried it. */
    const char *next = NULL;
    if (doubt) {
        char remain[200];
        bh_run_may_remain(run, a->index, a->item, remain, sizeof remain);
        cJSON_AddStringToObject(rec, "doubt", a->doubt.why);
        cJSON_AddStringToObject(rec, "may_remain", remain);
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, "%s%.190s (%.150s)", used ? "; " : "", remain,
                 a->doubt.why);
    }
    if (status == BH_STEP_SKIPPED) {
        cJSON_AddStringToObject(rec, "reason", "when: the condition is false");
        snprintf(detail, sizeof detail, "when: the condition is false");
    } else if (status != BH_STEP_OK && !undo) {
        int stoppable =
            status == BH_STEP_CANCELLED || run->stopping || run->io_error || run->failed;
        next = !stoppable && a->number <= s->retries ? "retry" : policy_next(run, s, status);
        cJSON_AddStringToObject(rec, "next", next);
        /* The run was already stopping for another reason: this failure did
         * not stop it, and a retry it had left was not taken. */
        if (run->stopping || run->io_error || run->failed) cJSON_AddBoolToObject(rec, "halted", 1);
    }
    bh_run_append(run, rec);
    char label[200];
    snprintf(label, sizeof label, "%s%s", undo ? "undo " : "", a->label);
    if (run->io_error) /* the record has no end: the screen must not show one */
        bh_events_step_unrecorded(run->events, label, bh_step_status_name(status), ms,
                                  run->io_error);
    else
        bh_events_step_end(run->events, label, bh_step_status_name(status), ms, detail);

    unlink_attempt(run, a);
    rt->running--;
    if (undo) {
        bh_rollback_ended(run, a, status);
    } else if (next && strcmp(next, "retry") == 0) {
        if (doubt) a->doubt.unsure = 1; /* what this attempt may have left stays in doubt */
        schedule_retry(a);
    } else {
        switch (status) {
        case BH_STEP_OK:
            rt->ok++;
            bh_run_remember_done(run, a->index, a->item);
            break;
        case BH_STEP_SKIPPED:
            rt->skipped++;
            break;
        case BH_STEP_TIMED_OUT:
            rt->timed_out++;
            break;
        case BH_STEP_CANCELLED:
            rt->cancelled++;
            break;
        case BH_STEP_IN_DOUBT: /* its undo stays registered: rollback and undo run it */
            rt->in_doubt++;
            bh_run_remember_done(run, a->index, a->item);
            break;
        default:
            rt->failed++;
            break;
        }
        maybe_end_step(run, a->index);
    }
    bh_ctx_release(a);
    luaL_unref(run->L, LUA_REGISTRYINDEX, a->co_ref);
    /* What a step that ran out of memory held is garbage now: give it back
     * before the next step needs it. */
    if (err && err->code && strcmp(err->code, "memory") == 0) lua_gc(run->L, LUA_GCCOLLECT);
    free(a->exec.what);
    free(a->request_what);
    free(a);
    bh_sched_pump(run);
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
    if (a->over_budget)
        fail_with(a, BH_STEP_FAILED, "instruction_budget",
                  "step '%s' ran more than %.0f Lua instructions (max_instructions)", a->label,
                  a->step->max_instructions);
    else if (a->timed_out)
        fail_with(a, BH_STEP_TIMED_OUT, "step_timeout", "step '%s' exceeded its timeout of %s",
                  a->label, t);
    else if (a->run->interrupt_signal)
        fail_with(a, BH_STEP_CANCELLED, "cancelled", "step '%s' was cancelled by %s", a->label,
                  a->run->interrupt_signal == SIGTERM ? "SIGTERM" : "SIGINT");
    else if (a->run->io_error)
        fail_with(a, BH_STEP_CANCELLED, "cancelled",
                  "step '%s' was cancelled: the journal could not be written", a->label);
    else
        fail_with(a, BH_STEP_CANCELLED, "cancelled", "step '%s' was cancelled: the run stopped",
                  a->label);
}

static void sched_abandon(bh_attempt *a) {
    end_abandoned(a);
}

static void sched_fail(bh_attempt *a, const char *code, const char *message) {
    fail_with(a, BH_STEP_FAILED, code, "%s", message);
}

typedef struct {
    bh_attempt *a;
    const cJSON *v;
} json_result;

static int store_json_result(lua_State *L) {
    json_result *jr = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, jr->a->run->results_ref);
    lua_pushstring(L, jr->a->step->id);
    bh_luax_push_json(L, jr->v);
    lua_rawset(L, -3); /* raw: a runbook's __newindex must not run here */
    return 0;
}

static void sched_finish(bh_attempt *a, int ok, cJSON *result, const char *code,
                         const char *message) {
    json_result jr = {.a = a, .v = result};
    if (ok && result && bh_run_protected(a->run, store_json_result, &jr) != LUA_OK) {
        cJSON_Delete(result);
        fail_with(a, BH_STEP_FAILED, "memory",
                  "step '%s' finished but its result could not be kept: " OUT_OF_MEMORY, a->label);
        return;
    }
    if (ok) {
        finish_attempt(a, BH_STEP_OK, result, NULL);
        return;
    }
    cJSON_Delete(result);
    fail_with(a, BH_STEP_FAILED, code, "%s", message);
}

/* Convert a finished body's first return value and keep it in results:
 * results[id] for a step, results[id][n] for item n of a fan-out. */
typedef struct {
    bh_attempt *a;
    int nres;
    cJSON *result;
    char why[256];
} stored_result;

static int store_result(lua_State *L) {
    stored_result *r = lua_touserdata(L, 1);
    bh_attempt *a = r->a;
    lua_State *co = a->co;
    r->result = bh_luax_to_json(co, -r->nres, r->why, sizeof r->why);
    if (!r->result || a->kind == BH_RUN_UNDO) return 0;
    bh_luax_checkstack(co, 4);
    lua_rawgeti(co, LUA_REGISTRYINDEX, a->run->results_ref);
    if (a->step->each_ref != LUA_NOREF) {
        lua_pushstring(co, a->step->id);
        if (lua_rawget(co, -2) != LUA_TTABLE) {
            lua_pop(co, 1);
            lua_newtable(co);
            lua_pushstring(co, a->step->id);
            lua_pushvalue(co, -2);
            lua_rawset(co, -4);
        }
        lua_pushvalue(co, -r->nres - 2);
        lua_rawseti(co, -2, (lua_Integer)a->item + 1);
        lua_pop(co, 2);
        return 0;
    }
    lua_pushstring(co, a->step->id);
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
 * children are gone (exec_done calls bh_sched_abandon); a sleep or a
 * person's answer ends now. */
static void interrupt_attempt(bh_attempt *a, int hard) {
    switch (a->waiting) {
    case BH_WAIT_EXEC:
        a->run->fx->cancel(a->run->fx, a->exec.op, hard);
        break;
    case BH_WAIT_REQUEST: /* the callback ends the attempt */
        a->run->fx->cancel_request(a->run->fx, a->request);
        break;
    case BH_WAIT_SLEEP:
        bh_ctx_stop_sleep(a);
        end_abandoned(a);
        break;
    case BH_WAIT_PERSON:
        a->waiting = BH_WAIT_NONE;
        end_abandoned(a);
        break;
    case BH_WAIT_NONE:
        break;
    }
}

static void step_timeout(void *ud) {
    bh_attempt *a = ud;
    if (a->cancelled) return;
    /* timed_out may already be set by the deadline hook's error (which the
     * body can catch): stop what the body waits on all the same. */
    a->timed_out = 1;
    interrupt_attempt(a, 0);
}

static void sched_resume(bh_attempt *a, int nargs) {
    bh_run *run = a->run;
    lua_State *co = a->co;
    int nres = 0;
    /* Coroutines the body makes copy the main thread's extra space: while
     * this attempt runs, it names this attempt (ctx.c). */
    bh_attempt_enter(a);
    bh_guard_enter(&a->guard, co);
    int st = lua_resume(co, run->L, nargs, &nres);
    bh_guard_leave(&a->guard);
    bh_attempt_leave(a);
    /* A signal that came while the body ran Lua is handled before anything
     * else happens: the run stops, this attempt is cancelled with the rest. */
    deliver_signals(run);
    if (st == LUA_YIELD) {
        if (a->waiting != BH_WAIT_NONE) return;
        lua_pop(co, nres);
        if (a->timed_out || a->cancelled || a->over_budget) { /* the hook or attempt_of yielded */
            end_abandoned(a);
            return;
        }
        fail_with(a, BH_STEP_FAILED, "bad_yield",
                  "step '%s' yielded outside a bulkhead primitive (coroutine.yield in the "
                  "body?)",
                  a->label);
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
                          a->label);
                return;
            }
            lua_pop(co, nres);
            if (!r.result) {
                fail_with(a, BH_STEP_FAILED, "bad_result",
                          "step '%s' returned something the journal cannot hold: %s", a->label,
                          r.why);
                return;
            }
            result = r.result;
        }
        if (a->timed_out || a->over_budget) {
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
    if (st == LUA_ERRMEM) {
        /* Describing it (a traceback) would need the memory that ran out. */
        e.code = bh_util_xstrdup("memory");
        char msg[300];
        snprintf(msg, sizeof msg, "step '%s' exhausted the runbook's Lua memory (%zu MiB)",
                 a->label, run->rb->mem_limit >> 20);
        e.message = bh_util_xstrdup(msg);
    } else if (bh_run_protected(run, describe_error, &d) != LUA_OK) {
        bh_luax_error_free(&e);
        e.code = bh_util_xstrdup(st == LUA_ERRMEM ? "memory" : "lua_error");
        e.message = bh_util_xstrdup("the step failed, and describing the error failed "
                                    "too: " OUT_OF_MEMORY);
    }
    bh_step_status status = BH_STEP_FAILED;
    if (a->over_budget) {
        free(e.code);
        e.code = bh_util_xstrdup("instruction_budget");
    } else if (a->timed_out) {
        status = BH_STEP_TIMED_OUT;
        free(e.code);
        e.code = bh_util_xstrdup("step_timeout");
    } else if (a->cancelled) { /* the interrupt's error reached the body's top */
        status = BH_STEP_CANCELLED;
        free(e.code);
        e.code = bh_util_xstrdup("cancelled");
    }
    finish_attempt(a, status, NULL, &e);
    bh_luax_error_free(&e);
}

/* --- starting attempts ------------------------------------------------- */

static double step_timeout_ms(const bh_run *run, const bh_step *s) {
    if (!s->timeout_set && run->opts->timeout_override_ms > 0)
        return run->opts->timeout_override_ms;
    return s->timeout_ms;
}

/* Every attempt runs this in its coroutine: the condition, the body, then
 * the health gate until it passes or gives up. Written in Lua so that all
 * three may wait on primitives (a yield from a C caller would need a
 * continuation); compiled by the host, outside the runbook's sandbox. The
 * gate (C) records each check and raises once its deadline has passed. */
static const char STEP_WRAPPER[] =
    "local run, when, ctx, skip, item, verify, gate, interval, sim = ...\n"
    "if when and not when(ctx, item) then return skip end\n"
    "local r\n"
    "if sim then\n"
    "  local scripted, value = sim('before')\n"
    "  if scripted then r = value else r = run(ctx, item) end\n"
    "else\n"
    "  r = run(ctx, item)\n"
    "end\n"
    "if verify then\n"
    "  local n = 0\n"
    "  while true do\n"
    "    n = n + 1\n"
    "    local ok, healthy, why = pcall(verify, ctx, r, item)\n"
    "    if gate(n, ok, healthy, why) then break end\n"
    "    ctx.sleep(interval)\n"
    "  end\n"
    "end\n"
    "if sim then sim('after') end\n"
    "return r\n";

static const char UNDO_WRAPPER[] = "local undo, ctx, item, result = ...\n"
                                   "return undo(ctx, item, result)\n";

static int compiled(bh_run *run, int *ref, const char *code, size_t len, const char *name) {
    if (*ref == LUA_NOREF) {
        if (luaL_loadbufferx(run->L, code, len, name, "t") != LUA_OK)
            lua_error(run->L); /* out of memory: caught by bh_run_protected */
        *ref = luaL_ref(run->L, LUA_REGISTRYINDEX);
    }
    return *ref;
}

static void push_item(bh_attempt *a) {
    const bh_step_rt *rt = &a->run->rt[a->index];
    if (a->step->each_ref != LUA_NOREF && rt->items_ref != LUA_NOREF) {
        lua_rawgeti(a->co, LUA_REGISTRYINDEX, rt->items_ref);
        lua_rawgeti(a->co, -1, (lua_Integer)a->item + 1);
        lua_remove(a->co, -2);
    } else {
        lua_pushnil(a->co);
    }
}

/* The attempt's coroutine, its hook and the wrapper's arguments
 * (protected: any of it can run out of Lua memory). */
static int setup_attempt(lua_State *L) {
    bh_attempt *a = lua_touserdata(L, 1);
    bh_run *run = a->run;
    int undo = a->kind == BH_RUN_UNDO;
    int wrapper = undo ? compiled(run, &run->undo_wrapper_ref, UNDO_WRAPPER,
                                  sizeof UNDO_WRAPPER - 1, "=bulkhead undo")
                       : compiled(run, &run->wrapper_ref, STEP_WRAPPER, sizeof STEP_WRAPPER - 1,
                                  "=bulkhead step");
    a->co = lua_newthread(L);
    a->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    a->guard.co = a->co; /* a tripped guard yields it: pcall cannot catch that */
    lua_State *co = a->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, wrapper);
    if (undo) {
        lua_rawgeti(co, LUA_REGISTRYINDEX, a->step->undo_ref);
        bh_ctx_push(a);
        push_item(a);
        bh_rollback_push_result(a); /* ctx.result too */
        return 0;
    }
    lua_rawgeti(co, LUA_REGISTRYINDEX, a->step->run_ref);
    /* The condition decides whether the step runs at all, so only the first
     * attempt asks it: a retry after a failure is not a new decision. */
    if (a->step->when_ref != LUA_NOREF && (a->number == 1 || a->ask_when))
        lua_rawgeti(co, LUA_REGISTRYINDEX, a->step->when_ref);
    else
        lua_pushnil(co);
    bh_ctx_push(a);
    lua_pushlightuserdata(co, &WHEN_FALSE);
    push_item(a);
    if (a->step->verify_ref != LUA_NOREF) {
        lua_rawgeti(co, LUA_REGISTRYINDEX, a->step->verify_ref);
        bh_ctx_push_gate(a);
        lua_pushnumber(co, a->step->verify_interval_ms / 1000.0);
    } else {
        lua_pushnil(co);
        lua_pushnil(co);
        lua_pushnil(co);
    }
    if (run->opts->sim)
        bh_ctx_push_sim(a);
    else
        lua_pushnil(co);
    return 0;
}

/* "isolate[web-2]": the step, and the item of a fan-out, for people. */
static void make_label(bh_attempt *a) {
    const bh_step *s = a->step;
    if (s->each_ref == LUA_NOREF) {
        if (s->every_ms > 0)
            snprintf(a->label, sizeof a->label, "%s#%zu", s->id, a->item + 1);
        else
            snprintf(a->label, sizeof a->label, "%s", s->id);
        return;
    }
    char key[64];
    bh_run_item_key(a->run, a->index, a->item, key, sizeof key);
    snprintf(a->label, sizeof a->label, "%s[%s]", s->id, key);
}

static void add_item_fields(bh_run *run, bh_attempt *a, cJSON *rec) {
    if (a->step->each_ref == LUA_NOREF || run->rt[a->index].items_ref == LUA_NOREF) return;
    char key[64];
    bh_run_item_key(run, a->index, a->item, key, sizeof key);
    cJSON_AddStringToObject(rec, "key", key);
    lua_State *L = run->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt[a->index].items_ref);
    lua_rawgeti(L, -1, (lua_Integer)a->item + 1);
    char why[128];
    cJSON *v = bh_luax_to_json(L, -1, why, sizeof why);
    lua_pop(L, 2);
    if (v) cJSON_AddItemToObject(rec, "value", v);
}

static bh_attempt *new_attempt(bh_run *run, size_t index, size_t item, int number,
                               bh_attempt_kind kind) {
    const bh_step *s = &run->rb->steps[index];
    bh_attempt *a = bh_util_xcalloc(1, sizeof *a);
    a->run = run;
    a->serial = ++run->next_serial;
    a->kind = kind;
    a->index = index;
    a->step = s;
    a->item = item;
    a->number = number;
    a->co_ref = LUA_NOREF;
    a->handle_ref = LUA_NOREF;
    a->timeout_ms = step_timeout_ms(run, s);
    make_label(a);
    return a;
}

/* From the guard's hook, as the attempt's Lua trips it: what the
 * scheduler sees when the coroutine yields (an interrupt is the run's to
 * handle, deliver_signals). */
static void attempt_tripped(bh_guard *g, bh_guard_trip why) {
    bh_attempt *a = g->ud;
    if (why == BH_GUARD_BUDGET) a->over_budget = 1;
    if (why == BH_GUARD_DEADLINE) a->timed_out = 1;
}

/* Put a new attempt in flight: its timer, its place in the run's lists. */
static void launch(bh_run *run, bh_attempt *a) {
    a->next = run->attempts;
    if (run->attempts) run->attempts->prev = a;
    run->attempts = a;
    run->running++;
    run->unit_running[a->step->unit]++;
    run->rt[a->index].running++;
    a->started_ms = bh_clock_now_ms(run->clock);
    snprintf(a->guard_what, sizeof a->guard_what, "step '%s'", a->label);
    bh_guard_init(&a->guard, a->guard_what, a->step->max_instructions, a->timeout_ms, 1);
    a->guard.on_trip = attempt_tripped;
    a->guard.ud = a;
    a->timer = bh_timer_start(run->clock, a->timeout_ms, 0, step_timeout, a);
}

/* Run the attempt's Lua: set it up, then resume it with its arguments. */
static void run_lua(bh_run *run, bh_attempt *a, int nargs) {
    if (bh_run_protected(run, setup_attempt, a) != LUA_OK) {
        if (a->co_ref == LUA_NOREF) a->co = NULL; /* not anchored: not ours to touch */
        fail_with(a, BH_STEP_FAILED, "memory", "step '%s' could not start: " OUT_OF_MEMORY,
                  a->label);
        return;
    }
    sched_resume(a, nargs);
}

static void start_attempt(bh_run *run, size_t index, size_t item, int number, int ask_when,
                          const bh_doubt *before) {
    const bh_step *s = &run->rb->steps[index];
    /* A cadence's later repetitions do not move the run to their phase. */
    if ((s->every_ms <= 0 || item == 0) &&
        (!run->last_phase || strcmp(run->last_phase, s->phase) != 0)) {
        free(run->last_phase);
        run->last_phase = bh_util_xstrdup(s->phase);
        bh_events_phase(run->events, s->phase);
    }
    bh_attempt *a = new_attempt(run, index, item, number, s->manual ? BH_RUN_MANUAL : BH_RUN_BODY);
    a->ask_when = ask_when;
    if (before) a->doubt = *before;
    cJSON *rec = bh_run_record(BH_REC_STEP_START, a);
    cJSON_AddStringToObject(rec, "phase", s->phase);
    cJSON_AddNumberToObject(rec, "timeout_ms", a->timeout_ms);
    /* what it leaves, should the engine die while it acts (remain.c) */
    if (s->effect) cJSON_AddStringToObject(rec, "effect", s->effect);
    add_item_fields(run, a, rec);
    bh_run_append(run, rec);
    /* Write-ahead: this sync also covers the previous step's end record. */
    if (bh_run_sync(run) != 0) {
        free(a);
        run->rt[index].cancelled++;
        maybe_end_step(run, index);
        return;
    }
    if (s->every_ms > 0 && number == 1) run->rt[index].reps++;
    run->status[index] = BH_STEP_RUNNING;
    bh_events_step_start(run->events, a->label);
    launch(run, a);
    if (a->kind == BH_RUN_MANUAL) {
        bh_gate_manual(a);
        return;
    }
    run_lua(run, a, 9);
}

static int sched_start_undo(bh_run *run, size_t index, size_t item) {
    bh_attempt *a = new_attempt(run, index, item, 1, BH_RUN_UNDO);
    cJSON *rec = bh_run_record(BH_REC_UNDO_START, a);
    add_item_fields(run, a, rec);
    bh_run_append(run, rec);
    if (bh_run_sync(run) != 0) {
        free(a);
        return 0;
    }
    char label[200];
    snprintf(label, sizeof label, "undo %s", a->label);
    bh_events_step_start(run->events, label);
    launch(run, a);
    run_lua(run, a, 4); /* may end (and free) the attempt at once */
    return 1;
}

static void cadence_start(bh_run *run, size_t index);

/* --- beginning a step -------------------------------------------------- */

/* each = function(ctx) ...: what it gets, and the list it returns. */
typedef struct {
    bh_run *run;
    size_t index;
    char why[256];
} listed_items;

static int list_items(lua_State *L) {
    listed_items *li = lua_touserdata(L, 1);
    bh_run *run = li->run;
    const bh_step *s = &run->rb->steps[li->index];
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->each_ref);
    if (s->each_fn) {
        lua_createtable(L, 0, 3); /* what it may look at: no primitives */
        lua_rawgeti(L, LUA_REGISTRYINDEX, run->rb->params_ref);
        lua_setfield(L, -2, "params");
        lua_rawgeti(L, LUA_REGISTRYINDEX, run->results_ref);
        lua_setfield(L, -2, "results");
        lua_pushstring(L, run->id);
        lua_setfield(L, -2, "run_id");
        lua_call(L, 1, 1);
    }
    if (!lua_istable(L, -1)) {
        snprintf(li->why, sizeof li->why, "'each' gave a %s, not a list", luaL_typename(L, -1));
        return 0;
    }
    run->rt[li->index].nitems = (size_t)lua_rawlen(L, -1);
    run->rt[li->index].items_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* An each function is the step's code too: its budget, its timeout and
 * Ctrl-C hold while it lists (a loop in it must not hang the engine). */
static int call_list_items(bh_run *run, listed_items *li, bh_guard *g, bh_luax_error *err) {
    const bh_step *s = &run->rb->steps[li->index];
    char what[200];
    snprintf(what, sizeof what, "the each function of step '%s'", s->id);
    bh_guard_init(g, what, s->max_instructions, step_timeout_ms(run, s), 1);
    lua_State *L = run->L;
    lua_pushcfunction(L, list_items);
    lua_pushlightuserdata(L, li);
    int st = bh_guard_pcall(L, g, 1, 0, err);
    deliver_signals(run);
    return st;
}

/* Its turn came and any approval is given: list the items, start the
 * cadence, and let the pump start its instances. */
static void step_go(bh_run *run, size_t index) {
    const bh_step *s = &run->rb->steps[index];
    bh_step_rt *rt = &run->rt[index];
    if (rt->went) return; /* once: a second listing or cadence timer would leak */
    rt->went = 1;
    rt->nitems = 1;
    if (s->each_ref != LUA_NOREF) {
        listed_items li = {.run = run, .index = index};
        bh_luax_error err = {0};
        bh_guard g;
        int st = call_list_items(run, &li, &g, &err);
        if (st != LUA_OK || li.why[0]) {
            char msg[512];
            snprintf(msg, sizeof msg, "step '%s': the items of 'each' could not be listed: %s",
                     s->id, st != LUA_OK ? (err.message ? err.message : "?") : li.why);
            bh_luax_error_free(&err);
            if (g.tripped == BH_GUARD_INTERRUPT)
                sched_end_step(run, index, BH_STEP_CANCELLED, "cancelled", msg);
            else
                sched_end_step(run, index, BH_STEP_FAILED, "bad_items", msg);
            return;
        }
        bh_luax_error_free(&err);
        cJSON *rec = bh_run_record(BH_REC_FANOUT, NULL);
        cJSON_AddStringToObject(rec, "step", s->id);
        cJSON_AddNumberToObject(rec, "items", (double)rt->nitems);
        cJSON_AddNumberToObject(rec, "concurrency", s->concurrency);
        bh_run_append(run, rec);
        if (rt->nitems == 0) {
            run->status[index] = BH_STEP_RUNNING;
            maybe_end_step(run, index);
        }
    }
    if (s->every_ms > 0) cadence_start(run, index);
}

static void begin_step(bh_run *run, size_t index) {
    const bh_step *s = &run->rb->steps[index];
    bh_step_rt *rt = &run->rt[index];
    rt->began = 1;
    if (s->when_false) {
        record_skipped(run, index, "when", "when = false");
        return;
    }
    if (s->approve && !rt->approved) {
        bh_gate_ask(run, index); /* may approve at once (--yes): then step_go ran */
        return;
    }
    step_go(run, index);
}

static void sched_approved(bh_run *run, size_t index) {
    bh_step_rt *rt = &run->rt[index];
    if (rt->awaiting) bh_events_approval_closed(run->events, run->rb->steps[index].id, "approved");
    rt->awaiting = 0;
    rt->approved = 1;
    step_go(run, index);
    bh_sched_pump(run);
}

/* --- cadences ---------------------------------------------------------- */

static void cadence_fired(void *ud) {
    bh_run *run = ((bh_step_ref *)ud)->run;
    size_t index = ((bh_step_ref *)ud)->index;
    bh_step_rt *rt = &run->rt[index];
    if (rt->running > 0) {
        cJSON *rec = bh_run_record(BH_REC_CADENCE_SKIPPED, NULL);
        cJSON_AddStringToObject(rec, "step", run->rb->steps[index].id);
        cJSON_AddNumberToObject(rec, "rep", rt->reps + 1);
        cJSON_AddStringToObject(rec, "reason", "the previous repetition is still running");
        bh_run_append(run, rec);
        return;
    }
    rt->nitems++;
    bh_sched_pump(run);
}

static void cadence_start(bh_run *run, size_t index) {
    bh_step_rt *rt = &run->rt[index];
    double every = run->rb->steps[index].every_ms;
    rt->cadence_timer = bh_timer_start(run->clock, every, every, cadence_fired, &run->refs[index]);
}

static void stop_cadences(bh_run *run) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        bh_step_rt *rt = &run->rt[i];
        if (!rt->cadence_timer) continue;
        bh_timer_stop(rt->cadence_timer);
        rt->cadence_timer = NULL;
        rt->nitems = rt->next_item; /* no repetition that has not started */
        maybe_end_step(run, i);
    }
}

/* --- the pump ---------------------------------------------------------- */

static const char *halt_reason(const bh_run *run) {
    if (run->io_error) return "the journal could not be written";
    if (run->abandoned) return "the run was abandoned to be undone (bulkhead undo --abandon)";
    if (run->stopping) return "the run was interrupted";
    return "an earlier step failed";
}

/* May another attempt of step index start now? */
static int can_start(const bh_run *run, const bh_unit *u, size_t index) {
    const bh_step *s = &run->rb->steps[index];
    const bh_step_rt *rt = &run->rt[index];
    int limit = run->cap;
    if (!run->cap_hard && s->concurrency > limit) limit = s->concurrency;
    if (run->running >= (size_t)limit) return 0;
    if (s->concurrency && rt->running >= (size_t)s->concurrency) return 0;
    if (s->each_ref == LUA_NOREF && rt->running > 0) return 0;
    if (u->concurrency && run->unit_running[s->unit] >= (size_t)u->concurrency) return 0;
    if (!u->parallel) {
        /* One step at a time: only this step's own fan-out may overlap. */
        for (size_t m = 0; m < u->nsteps; m++)
            if (u->steps[m] != index && run->rt[u->steps[m]].running > 0) return 0;
    }
    return 1;
}

/* Is every step this one waits for done? Sets *blocked_by when one did
 * not succeed (a step skipped by its own `when` counts as done). */
static int deps_done(const bh_run *run, size_t index, size_t *blocked_by) {
    const bh_step *s = &run->rb->steps[index];
    *blocked_by = (size_t)-1;
    for (size_t k = 0; k < s->nafter; k++) {
        size_t d = s->deps[k];
        bh_step_status st = run->status[d];
        if (!final_status(st)) return 0;
        /* in doubt at the operator's word (resume): they chose to go on */
        if (st == BH_STEP_OK || policy_status(&run->rt[d], st) == BH_STEP_UNKNOWN ||
            (st == BH_STEP_SKIPPED && !run->blocked[d]))
            continue;
        *blocked_by = d;
    }
    return 1;
}

/* Start what can start in the current unit. Returns 1 when the unit is
 * over: every step has ended, or is a cadence that has begun. */
static int advance_unit(bh_run *run) {
    const bh_unit *u = &run->rb->units[run->unit];
    int over;
    for (size_t m = 0; m < u->nsteps && !run->failed && !run->stopping && !run->io_error; m++) {
        size_t i = u->steps[m];
        const bh_step *s = &run->rb->steps[i];
        bh_step_rt *rt = &run->rt[i];
        if (final_status(run->status[i])) continue;
        if (s->every_ms > 0 && rt->began && !rt->awaiting) {
            while (rt->next_item < rt->nitems && can_start(run, u, i))
                start_attempt(run, i, rt->next_item++, 1, 0, NULL);
            continue;
        }
        if (!rt->began) {
            /* In a sequential unit (one step) its turn is now; in a parallel
             * one, when what it waits for is done. */
            size_t blocked_by;
            if (!deps_done(run, i, &blocked_by)) continue;
            if (blocked_by != (size_t)-1) {
                run->blocked[i] = 1;
                char reason[300];
                snprintf(reason, sizeof reason, "after: '%s' did not succeed",
                         run->rb->steps[blocked_by].id);
                rt->began = 1;
                record_skipped(run, i, "after", reason);
                continue;
            }
            if (!can_start(run, u, i)) continue;
            begin_step(run, i);
            if (final_status(run->status[i]) || rt->awaiting) continue;
        }
        if (rt->awaiting) continue;
        while (rt->next_item < rt->nitems && can_start(run, u, i) && !run->failed &&
               !run->stopping && !run->io_error)
            start_attempt(run, i, rt->next_item++, 1, 0, NULL);
    }
    if (run->failed || run->stopping || run->io_error) return 0;
    over = 1; /* steps may have ended above without waiting on the loop */
    for (size_t m = 0; m < u->nsteps && over; m++) {
        size_t i = u->steps[m];
        if (!final_status(run->status[i]) &&
            !(run->rb->steps[i].every_ms > 0 && run->rt[i].began && !run->rt[i].awaiting))
            over = 0;
    }
    return over;
}

/* Retries whose backoff is over, as the caps allow. Starting one can end
 * it at once and queue another retry: rescan after each start. */
static void start_due_retries(bh_run *run) {
    for (;;) {
        bh_retry *pick = NULL;
        for (bh_retry *r = run->retries; r && !pick; r = r->next) {
            if (!r->due) continue;
            bh_step_rt *rt = &run->rt[r->index];
            rt->running--; /* the waiting retry is the instance itself */
            if (can_start(run, &run->rb->units[run->rb->steps[r->index].unit], r->index)) pick = r;
            rt->running++;
        }
        if (!pick) return;
        size_t index = pick->index, item = pick->item;
        int number = pick->number, ask_when = pick->ask_when;
        bh_doubt before = pick->doubt;
        drop_retry(run, pick);
        start_attempt(run, index, item, number, ask_when, &before);
    }
}

/* Repetitions of cadences that are due, wherever their unit was. */
static void start_due_reps(bh_run *run) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        bh_step_rt *rt = &run->rt[i];
        if (!rt->cadence_timer) continue;
        const bh_unit *u = &run->rb->units[run->rb->steps[i].unit];
        while (rt->next_item < rt->nitems && can_start(run, u, i))
            start_attempt(run, i, rt->next_item++, 1, 0, NULL);
    }
}

/* The run is stopping: items not started will not be. A step none of
 * whose instances started ends as cancelled with a step_end of its own. */
static void halt_fanouts(bh_run *run) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        bh_step_rt *rt = &run->rt[i];
        if (final_status(run->status[i]) || !rt->began || rt->awaiting || rt->halted ||
            rt->next_item >= rt->nitems)
            continue;
        if (rt->next_item == 0 && rt->running == 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "step '%s' did not start: %s", run->rb->steps[i].id,
                     halt_reason(run));
            sched_end_step(run, i, BH_STEP_CANCELLED, "cancelled", msg);
            continue;
        }
        rt->halted = 1;
        rt->not_started = rt->nitems - rt->next_item;
        cJSON *rec = bh_run_record(BH_REC_FANOUT_STOPPED, NULL);
        cJSON_AddStringToObject(rec, "step", run->rb->steps[i].id);
        cJSON_AddNumberToObject(rec, "not_started", (double)rt->not_started);
        cJSON_AddStringToObject(rec, "reason", halt_reason(run));
        bh_run_append(run, rec);
        maybe_end_step(run, i);
    }
}

static void skip_rest(bh_run *run, const char *reason) {
    for (size_t p = 0; p < run->rb->nsteps; p++) {
        size_t i = run->rb->order[p];
        if (run->status[i] == BH_STEP_PENDING && !run->rt[i].began)
            record_skipped(run, i, "halt", reason);
    }
    run->unit = run->rb->nunits;
}

static void close_wake(uv_handle_t *h) {
    free(h);
}

static void finish_run(bh_run *run) {
    run->done = 1;
    if (run->wake) {
        /* from here on a signal does what it does without a run: ends us */
        bh_guard_set_notify(NULL, NULL);
        uv_close((uv_handle_t *)run->wake, close_wake);
        run->wake = NULL;
    }
    bh_socket_stop(run->socket);
    run->socket = NULL;
    bh_gate_close(run);
}

static void pump_once(bh_run *run) {
    while (!run->done) {
        if (run->undoing) {
            if (bh_rollback_next(run)) return; /* an undo is running */
            finish_run(run);
            return;
        }
        if (run->io_error || run->stopping || run->failed) {
            bh_gate_cancel_all(run, halt_reason(run));
            stop_cadences(run);
            cancel_retries(run);
            halt_fanouts(run);
            if (run->running || run->retries) return; /* wait for what is in flight */
            skip_rest(run, halt_reason(run));
            if (run->rollback && !run->stopping && !run->io_error) {
                bh_rollback_begin(run);
                continue;
            }
            finish_run(run);
            return;
        }
        start_due_retries(run);
        start_due_reps(run);
        if (run->unit < run->rb->nunits) {
            if (!advance_unit(run)) return;
            run->unit++;
            continue;
        }
        stop_cadences(run);
        if (run->running || run->retries) return;
        finish_run(run);
        return;
    }
}

/* Start what can start, or end the run. A call made while the pump runs
 * (an attempt that ends without waiting on the loop) only asks for another
 * round, so long chains of such steps loop instead of recursing. */
void bh_sched_pump(bh_run *run) {
    deliver_signals(run);
    if (run->pumping) {
        run->repump = 1;
        return;
    }
    run->pumping = 1;
    do {
        run->repump = 0;
        pump_once(run);
    } while (run->repump && !run->done);
    run->pumping = 0;
}

static void stop_run(bh_run *run) {
    run->stopping = 1;
    cancel_retries(run); /* waiting to retry: do not, and say so */
    /* Interrupting may end an attempt at once (and free it): collect the
     * serials first, then look each one up again. */
    size_t n = 0;
    for (bh_attempt *a = run->attempts; a; a = a->next)
        n++;
    uint64_t *serials = bh_util_xcalloc(n ? n : 1, sizeof *serials);
    n = 0;
    for (bh_attempt *a = run->attempts; a; a = a->next)
        serials[n++] = a->serial;
    for (size_t k = 0; k < n; k++) {
        bh_attempt *a = bh_run_attempt(run, serials[k]);
        if (a && !a->cancelled && !a->timed_out) {
            a->cancelled = 1;
            interrupt_attempt(a, 0);
        }
    }
    free(serials);
    bh_sched_pump(run);
}

static void on_io_error(bh_run *run) {
    stop_run(run);
}

static void on_signal(bh_run *run, int signum) {
    cJSON *rec = bh_run_record(BH_REC_INTERRUPT, NULL);
    const char *sig = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    cJSON_AddStringToObject(rec, "signal", sig);
    int hard = run->interrupt_signal != 0;
    cJSON_AddStringToObject(rec, "action", hard ? "kill" : "terminate");
    bh_run_append(run, rec);
    bh_events_interrupt(run->events, sig, hard ? "kill" : "terminate");
    if (!hard) {
        run->interrupt_signal = signum;
        bh_events_notice(run->events, run->running > 1
                                          ? "interrupted: stopping the running steps (again "
                                            "to kill at once)"
                                          : "interrupted: stopping (again to kill at once)");
        stop_run(run);
        return;
    }
    run->hard_kill = 1;
    for (bh_attempt *a = run->attempts; a; a = a->next)
        if (a->waiting == BH_WAIT_EXEC) run->fx->cancel(run->fx, a->exec.op, 1);
}

/* Signals the handler counted (guard.c) and the run has not acted on:
 * act on them now. Called from the loop (the handler's wake-up), after
 * every call into the runbook's Lua and before the pump starts anything,
 * so that a signal that came while Lua ran is acted on before anything
 * new begins. */
static void deliver_signals(bh_run *run) {
    while (!run->done && run->delivered != bh_guard_signals()) {
        run->delivered++;
        bh_guard_signal_handled();
        on_signal(run, bh_guard_last_signal());
    }
}

static void woken(uv_async_t *h) {
    deliver_signals(h->data);
}

/* From the signal handler: uv_async_send is async-signal-safe. */
static void wake_loop(void *ud) {
    uv_async_send(ud);
}

/* --- resume ------------------------------------------------------------ */

typedef struct {
    bh_run *run;
    size_t index, recorded, started;
    int old_ref;
    char *why;
    size_t whylen;
} relisted;

/* Protected: converting items to JSON allocates. */
static int compare_items(lua_State *L) {
    relisted *rl = lua_touserdata(L, 1);
    bh_run *run = rl->run;
    const bh_step *s = &run->rb->steps[rl->index];
    size_t n = run->rt[rl->index].nitems;
    if (n != rl->recorded) {
        snprintf(rl->why, rl->whylen,
                 "step '%s' had %zu items when it started, now 'each' gives %zu", s->id,
                 rl->recorded, n);
        return 0;
    }
    for (size_t k = 0; k < rl->started; k++) {
        char w1[64], w2[64];
        lua_rawgeti(L, LUA_REGISTRYINDEX, rl->old_ref);
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        cJSON *was = bh_luax_to_json(L, -1, w1, sizeof w1);
        lua_pop(L, 2);
        lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt[rl->index].items_ref);
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        cJSON *now = bh_luax_to_json(L, -1, w2, sizeof w2);
        lua_pop(L, 2);
        /* The journal holds items masked: compare like with like. */
        bh_redact_json(bh_keyring_mask(run->rb->keyring), now);
        int same = was && now && cJSON_Compare(was, now, 1);
        cJSON_Delete(was);
        cJSON_Delete(now);
        if (!same) {
            snprintf(rl->why, rl->whylen,
                     "item %zu of step '%s' is not the one the run started (its 'each' gives a "
                     "different list now)",
                     k + 1, s->id);
            return 0;
        }
    }
    return 0;
}

int bh_sched_relist(bh_run *run, size_t index, size_t recorded, size_t started, char *why,
                    size_t whylen) {
    bh_step_rt *rt = &run->rt[index];
    relisted rl = {.run = run,
                   .index = index,
                   .recorded = recorded,
                   .started = started,
                   .old_ref = rt->items_ref,
                   .why = why,
                   .whylen = whylen};
    why[0] = '\0';
    listed_items li = {.run = run, .index = index};
    bh_luax_error err = {0};
    lua_State *L = run->L;
    bh_guard g;
    int st = call_list_items(run, &li, &g, &err);
    if (st != LUA_OK || li.why[0]) {
        snprintf(why, whylen, "the items of step '%s' cannot be listed again: %s",
                 run->rb->steps[index].id,
                 st != LUA_OK ? (err.message ? err.message : "?") : li.why);
        bh_luax_error_free(&err);
        rt->items_ref = rl.old_ref;
        return -1;
    }
    bh_luax_error_free(&err);
    if (rl.old_ref != LUA_NOREF) {
        if (bh_run_protected(run, compare_items, &rl) != LUA_OK)
            snprintf(why, whylen, "comparing the items of step '%s': " OUT_OF_MEMORY,
                     run->rb->steps[index].id);
        luaL_unref(L, LUA_REGISTRYINDEX, rl.old_ref);
    }
    return why[0] ? -1 : 0;
}

void bh_sched_restore(bh_run *run, const bh_restored_step *steps) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        const bh_restored_step *p = &steps[i];
        const bh_step *s = &run->rb->steps[i];
        bh_step_rt *rt = &run->rt[i];
        if (p->skipped) {
            rt->began = 1;
            run->status[i] = BH_STEP_SKIPPED;
            run->blocked[i] = (unsigned char)p->blocked;
            continue;
        }
        if (p->failed_early) {
            rt->began = rt->went = 1;
            run->status[i] = BH_STEP_FAILED;
            apply_policy(run, i, BH_STEP_FAILED);
            continue;
        }
        /* Not begun, or waiting for approvals that were not all given: its
         * turn comes again and the approval is asked again; approvals given
         * before count (N approvers: the others are still needed). */
        if (!p->began || (s->approve && !p->approved)) {
            bh_gate_restore(run, i, p->approvers);
            continue;
        }
        rt->began = 1;
        rt->approved = 1;
        rt->ok = p->ok;
        rt->failed = p->failed;
        rt->skipped = p->skipped_items;
        rt->timed_out = p->timed_out;
        rt->unknown = p->unknown;
        rt->in_doubt = p->in_doubt;
        rt->waived = p->waived;
        rt->next_item = p->started;
        if (s->every_ms > 0) {
            rt->went = 1;
            rt->reps = (int)p->started;
            rt->nitems = p->started;
            cadence_start(run, i);
        } else if (s->each_ref != LUA_NOREF) {
            if (!p->listed) {
                step_go(run, i); /* approved, not yet listed */
            } else {
                rt->went = 1; /* bh_sched_relist listed them */
            }
        } else {
            rt->went = 1;
            rt->nitems = 1;
        }
        for (size_t k = 0; k < p->nreruns; k++) {
            /* the timer fires from the loop, after these are set */
            bh_retry *r = queue_retry(run, i, p->reruns[k].item, p->reruns[k].number, 0);
            r->ask_when = p->reruns[k].ask_when;
            r->due = 1;
            if (p->reruns[k].doubt) {
                r->doubt.unsure = 1;
                snprintf(r->doubt.why, sizeof r->doubt.why, "%s", p->reruns[k].doubt);
            }
        }
        if (p->done && strcmp(p->done, "cancelled") != 0 && rt->running == 0 &&
            rt->next_item >= rt->nitems && s->every_ms <= 0) {
            /* Its step_done is written: take its word, do not write another. */
            bh_step_status st = BH_STEP_OK;
            for (int k = 0; k < BH_STEP_NSTATES; k++)
                if (strcmp(p->done, bh_step_status_name((bh_step_status)k)) == 0)
                    st = (bh_step_status)k;
            run->status[i] = st;
            apply_policy(run, i, st);
            continue;
        }
        maybe_end_step(run, i);
    }
}

/* --- the run ----------------------------------------------------------- */

/* Each journal line as written, for the subscribers (--json shows them). */
static void journal_line(const char *line, size_t len, void *ud) {
    bh_run *run = ud;
    bh_events_emit(run->events, &(bh_event){.kind = BH_EV_LINE, .line = line, .len = len});
}

static const char *run_status(const bh_run *run) {
    if (run->io_error) return "error";
    if (run->abandoned) return "abandoned";
    if (run->interrupt_signal) return "interrupted";
    if (run->undo_only) return run->undo_failed ? "failed" : run->undo_left ? "incomplete" : "ok";
    if (run->undoing) return run->undo_failed ? "rollback_failed" : "rolled_back";
    return run->failed ? "failed" : "ok";
}

/* A dry run or drill ends with its scorecard, computed from the journal as
 * written so far, in the journal (so it is signed with the rest) and on
 * the console. */
static void write_scorecard(bh_run *run, double total_ms) {
    char *path = bh_util_asprintf("%s/journal.jsonl", run->dir);
    bh_history h;
    bh_history_read(&h, path, NULL);
    free(path);
    cJSON *sc = bh_scorecard_compute(&h, run->rb, total_ms, run_status(run));
    bh_history_free(&h);
    char *text = bh_scorecard_text(sc);
    if (text) bh_events_text(run->events, text);
    free(text);
    cJSON *rec = bh_run_record(BH_REC_SCORECARD, NULL);
    cJSON *f;
    while ((f = sc->child)) {
        cJSON_DetachItemViaPointer(sc, f);
        cJSON_AddItemToObject(rec, f->string, f);
    }
    cJSON_Delete(sc);
    bh_run_append(run, rec);
}

static void write_run_end(bh_run *run) {
    double ms = bh_clock_now_ms(run->clock) - run->started_ms + run->earlier_ms;
    if (run->opts->sim && !run->undo_only) write_scorecard(run, ms);
    cJSON *rec = bh_run_record(run->undo_only ? BH_REC_UNDO_FINISH : BH_REC_RUN_END, NULL);
    cJSON_AddStringToObject(rec, "status", run_status(run));
    cJSON_AddNumberToObject(rec, "duration_ms", ms);
    char summary[256] = "";
    if (!run->undo_only) {
        cJSON *counts = cJSON_AddObjectToObject(rec, "counts");
        bh_run_counts(run, counts, summary, sizeof summary);
    }
    if (run->undoing || run->undo_only) {
        cJSON_AddNumberToObject(rec, "undone", (double)run->undone);
        cJSON_AddNumberToObject(rec, "undo_failed", (double)run->undo_failed);
        size_t used = strlen(summary);
        snprintf(summary + used, sizeof summary - used, "%s%zu undone, %zu undo failed",
                 used ? "; " : "", run->undone, run->undo_failed);
        if (run->undo_left) {
            used = strlen(summary);
            snprintf(summary + used, sizeof summary - used, ", %zu in doubt with no undo",
                     run->undo_left);
            cJSON_AddNumberToObject(rec, "in_doubt_without_undo", (double)run->undo_left);
        }
    }
    bh_run_append(run, rec);
    bh_run_checkpoint(run); /* the end of the record, signed */
    bh_run_sync(run);
    /* The counts are the engine's; with a journal that could not be
     * written they are not the record's. */
    bh_events_run_end(run->events, run->id, run_status(run), ms,
                      run->io_error ? "the journal could not be written; `bulkhead show` has "
                                      "what it holds"
                                    : summary);
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

enum { BH_SIM_DEFAULT_CAP = 4 };

static int default_cap(void) {
    unsigned n = uv_available_parallelism();
    return n < 2 ? 2 : (int)n;
}

/* A step resolved a secret the run had not used before: name and source. */
static void record_secret(void *ud, const char *name, const char *source) {
    bh_run *run = ud;
    cJSON *rec = bh_run_record(BH_REC_SECRET, NULL);
    cJSON_AddStringToObject(rec, "name", name);
    cJSON_AddStringToObject(rec, "source", source);
    bh_run_append(run, rec);
}

static const bh_sched_entry ENTRY = {
    .resume = sched_resume,
    .abandon = sched_abandon,
    .fail = sched_fail,
    .finish = sched_finish,
    .approved = sched_approved,
    .end_step = sched_end_step,
    .start_undo = sched_start_undo,
};

void bh_sched_init(bh_run *run, const bh_runbook *rb, const bh_run_opts *opts, uv_loop_t *loop) {
    memset(run, 0, sizeof *run);
    run->sched = &ENTRY;
    run->loop = loop;
    run->clock = bh_clock_new(loop, opts->sim != NULL);
    run->rb = rb;
    run->L = rb->L;
    bh_attempt_set_run(rb->L, run);
    bh_keyring_listen(rb->keyring, record_secret, run);
    run->opts = opts;
    /* The command line resolved and checked the name (and refused one
     * that names no one), so this does not fail; if it did, the account
     * still says who it was. */
    char why[200];
    if (bh_run_operator(opts->operator_name, "--operator", run->operator_buf, why, sizeof why))
        snprintf(run->operator_buf, sizeof run->operator_buf, "uid %u", (unsigned)getuid());
    run->operator_name = run->operator_buf;
    run->fx = opts->sim ? bh_fx_sim(loop, run->clock, bh_sim_mode(opts->sim)) : bh_fx_real(loop);
    /* who hears of what happens: the journal first, so that a record is
     * written before anyone is told of it; then the console */
    run->events = bh_events_new();
    bh_run_subscribe_journal(run);
    run->console = bh_console_new(loop, opts->console_mode, stdout);
    bh_console_set_redact(run->console, bh_keyring_mask(rb->keyring));
    bh_console_subscribe(run->console, run->events);
    size_t n = rb->nsteps ? rb->nsteps : 1;
    run->status = bh_util_xcalloc(n, sizeof *run->status);
    run->rt = bh_util_xcalloc(n, sizeof *run->rt);
    run->refs = bh_util_xcalloc(n, sizeof *run->refs);
    for (size_t i = 0; i < rb->nsteps; i++) {
        run->rt[i].items_ref = LUA_NOREF;
        run->refs[i] = (bh_step_ref){run, i};
    }
    run->blocked = bh_util_xcalloc(n, 1);
    run->unit_running = bh_util_xcalloc(rb->nunits ? rb->nunits : 1, sizeof *run->unit_running);
    run->wrapper_ref = LUA_NOREF;
    run->undo_wrapper_ref = LUA_NOREF;
    run->results_ref = LUA_NOREF;
    run->started_ms = bh_clock_now_ms(run->clock);
    /* A simulation's default is the same on every machine, so the same
     * seed gives the same drill on a laptop and on a 64-core server. */
    run->cap = opts->concurrency > 0 ? opts->concurrency
               : opts->sim           ? BH_SIM_DEFAULT_CAP
                                     : default_cap();
    run->cap_hard = opts->concurrency > 0;
    run->on_io_error = on_io_error;
    run->lock_fd = -1;
    lua_newtable(run->L);
    run->results_ref = luaL_ref(run->L, LUA_REGISTRYINDEX);
    bh_exec_prepare_engine();
}

void bh_sched_listen(bh_run *run) {
    bh_journal_set_listener(run->journal, journal_line, run);
    bh_ctx_install(run);
    run->wake = bh_util_xmalloc(sizeof *run->wake);
    uv_async_init(run->loop, run->wake, woken);
    run->wake->data = run;
    run->delivered = bh_guard_signals(); /* what came before the run is not its business */
    bh_guard_set_notify(wake_loop, run->wake);
    const char *group = run->opts->approvers_group;
    int err =
        bh_socket_start(run->loop, run->dir, group ? run->opts->approvers_gid : BH_CONTROL_NO_GROUP,
                        run->events, run, run->id, &run->socket);
    if (err)
        fprintf(stderr,
                "bulkhead: cannot listen on the control socket in %s%s%s: %s (approve, deny and "
                "done from another terminal will not reach this run)\n",
                run->dir, group ? " for group " : "", group ? group : "", bh_util_strerror(err));
}

bh_run_outcome bh_sched_finish_run(bh_run *run) {
    uv_run(run->loop, UV_RUN_DEFAULT);
    write_run_end(run);
    bh_ctx_uninstall(run);
    luaL_unref(run->L, LUA_REGISTRYINDEX, run->results_ref);
    luaL_unref(run->L, LUA_REGISTRYINDEX, run->wrapper_ref);
    luaL_unref(run->L, LUA_REGISTRYINDEX, run->undo_wrapper_ref);
    for (size_t i = 0; i < run->rb->nsteps; i++)
        luaL_unref(run->L, LUA_REGISTRYINDEX, run->rt[i].items_ref);
    int err = bh_journal_close(run->journal);
    if (err && !run->io_error) run->io_error = err;
    run->journal = NULL;
    if (run->io_error) return BH_RUN_IO_ERROR;
    if (run->interrupt_signal) return BH_RUN_INTERRUPTED;
    if (run->undo_only) return run->undo_failed ? BH_RUN_FAILED : BH_RUN_OK;
    return run->failed ? BH_RUN_FAILED : BH_RUN_OK;
}

void bh_sched_cleanup(bh_run *run) {
    uv_loop_t *loop = run->loop;
    if (run->wake) { /* the run never finished: nobody may wake what is freed below */
        bh_guard_set_notify(NULL, NULL);
        uv_close((uv_handle_t *)run->wake, close_wake);
        run->wake = NULL;
    }
    if (run->journal) bh_journal_close(run->journal);
    bh_socket_stop(run->socket);
    run->socket = NULL;
    bh_console_close(run->console);
    bh_events_free(run->events);
    run->events = NULL;
    run->fx->destroy(run->fx);
    bh_clock_close(run->clock);
    uv_run(loop, UV_RUN_DEFAULT);
    /* Anything still open is a bug; close it so the loop can be freed, and
     * say so rather than leak quietly. */
    if (uv_loop_close(loop) != 0) {
        fprintf(stderr, "bulkhead: internal: handles left open at exit\n");
        uv_walk(loop, close_walk, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
    bh_gate_free_all(run);
    if (run->lock_fd >= 0) close(run->lock_fd);
    bh_attempt_set_run(run->L, NULL);
    bh_keyring_listen(run->rb->keyring, NULL, NULL);
    free(run->last_phase);
    free(run->status);
    free(run->rt);
    free(run->refs);
    free(run->blocked);
    free(run->unit_running);
    free(run->done_list);
    free(run->id);
    free(run->dir);
    if (run->tmpdir) bh_util_rmtree(run->tmpdir);
    free(run->tmpdir);
}

bh_run_outcome bh_sched_run(const bh_runbook *rb, const bh_run_opts *opts, char **run_id,
                            int *sig) {
    bh_run run_s;
    bh_run *run = &run_s;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bh_sched_init(run, rb, opts, &loop);
    *run_id = NULL;
    *sig = 0;
    run->id = bh_run_make_id(rb->id);
    bh_run_outcome outcome = BH_RUN_IO_ERROR;
    long holder;
    if (bh_run_create_dir(run) == 0 && bh_run_lock(run->dir, &run->lock_fd, &holder) == 0) {
        *run_id = bh_util_xstrdup(run->id);
        bh_sched_listen(run);
        bh_run_write_start(run);
        bh_events_run_start(run->events, run->id, rb->title, run->dir, rb->nsteps, run->fx->mode);
        bh_sched_pump(run);
        outcome = bh_sched_finish_run(run);
        *sig = run->interrupt_signal;
    }
    bh_sched_cleanup(run);
    return outcome;
}
