/* run: the state of one execution of a runbook, shared by the scheduler
 * (sched.c, which moves steps through their states) and the step context
 * (ctx.c, the primitives a step body calls). Everything else in the engine
 * sees a run only through bh_sched_run and the journal it leaves. */
#ifndef BH_RUN_H
#define BH_RUN_H

#include <cjson/cJSON.h>
#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "console.h"
#include "fx.h"
#include "journal.h"
#include "luax.h"
#include "runbook.h"

typedef enum {
    BH_STEP_PENDING,
    BH_STEP_RUNNING,
    BH_STEP_OK,
    BH_STEP_FAILED,
    BH_STEP_TIMED_OUT,
    BH_STEP_SKIPPED,
    BH_STEP_CANCELLED,
    BH_STEP_NSTATES
} bh_step_status;

const char *bh_step_status_name(bh_step_status s);

typedef struct bh_run bh_run;
typedef struct bh_attempt bh_attempt;

/* The primitive a suspended step is waiting on. */
typedef enum { BH_WAIT_NONE, BH_WAIT_EXEC, BH_WAIT_SLEEP } bh_wait_kind;

/* An exec in flight: the request's memory lives until the callback. */
typedef struct {
    bh_exec_req req;
    bh_fx_op *op;
    int n;      /* 1-based count within the attempt */
    int check;  /* raise on failure */
    int shell;  /* ctx.sh */
    char *what; /* argv[0] or "sh", for messages */
} bh_pending_exec;

struct bh_attempt {
    bh_run *run;
    size_t index; /* of the step in the runbook */
    const bh_step *step;
    int number;
    lua_State *co;
    int co_ref;
    struct bh_ctx_handle *handle; /* cleared when the attempt ends */
    int handle_ref;               /* registry anchor of the handle */
    uint64_t started_ns, deadline_ns;
    double timeout_ms; /* in force for this attempt (step, runbook or --timeout) */
    uv_timer_t *timer; /* the step's timeout */
    bh_wait_kind waiting;
    bh_pending_exec exec;
    uv_timer_t *sleep_timer;
    int execs;
    int timed_out, cancelled;
};

typedef struct {
    const char *state_dir;
    const char *operator_name;
    double timeout_override_ms; /* 0: none */
    bh_console_mode console_mode;
} bh_run_opts;

struct bh_run {
    uv_loop_t *loop;
    bh_runbook *rb;
    lua_State *L;
    bh_fx *fx;
    bh_journal *journal;
    bh_console *console;
    const bh_run_opts *opts;
    char *id, *dir;
    uint64_t started_ns;
    size_t next_step;
    bh_attempt *current;
    bh_step_status *status; /* per step */
    unsigned char *blocked; /* per step: skipped because a dependency failed */
    int results_ref;        /* registry: step id -> result */
    char *last_phase;
    int failed, stopping, interrupt_signal, hard_kill, done;
    int io_error; /* first journal error, negative errno */
    uv_signal_t *sig[2];
    uv_timer_t *retry_timer; /* backoff before the next attempt of retry_index */
    size_t retry_index;
    int retry_number;
    int continued;   /* failures let through by on_failure = "continue" */
    int wrapper_ref; /* registry: the Lua function every attempt runs */
};

/* Append a record to the run's journal; a failure stops the run (it is
 * remembered in run->io_error and nothing new starts). */
void bh_run_append(bh_run *run, cJSON *rec);
/* A new record object with its "type" first, ready for fields. */
cJSON *bh_run_record(const char *type, const bh_attempt *a);
/* Call fn(L) with ud as a light userdata at index 1, protected, on the
 * run's main thread. Lua work the engine does outside a step body (making
 * coroutines, result tables) can run out of Lua memory; unprotected that
 * would abort the engine. Returns the lua status (the error is dropped). */
int bh_run_protected(bh_run *run, lua_CFunction fn, void *ud);

#endif
