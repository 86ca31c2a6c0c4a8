/* run: what one execution of a runbook is, inside: the run, its attempts
 * in flight, retries and per-step state. Shared by the modules that carry
 * a run out: the scheduler (sched.c, which moves steps through their
 * states), the step primitives (ctx.c, request.c, gate.c), the journal
 * writer (run.c), undo, rollback and resume. Everything else holds a run
 * through handle.h, opaque, and hears of it through its events
 * (events.h): the console and the control socket read no field of it. */
#ifndef BH_RUN_H
#define BH_RUN_H

#include <cjson/cJSON.h>
#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "base/clock.h"
#include "run/console.h"
#include "run/events.h"
#include "run/handle.h"
#include "effects/fx.h"
#include "lua/guard.h"
#include "journal/journal.h"
#include "journal/schema.h"
#include "lua/luax.h"
#include "load/model.h"
#include "load/sim.h"
#include "base/util.h"

/* What a suspended attempt is waiting on. */
typedef enum {
    BH_WAIT_NONE,
    BH_WAIT_EXEC,
    BH_WAIT_SLEEP,
    BH_WAIT_PERSON,
    BH_WAIT_REQUEST
} bh_wait_kind;

/* What an attempt runs: the step's body (with its condition and health
 * gate), a manual task, or the step's undo. */
typedef enum { BH_RUN_BODY, BH_RUN_MANUAL, BH_RUN_UNDO } bh_attempt_kind;

/* An exec in flight: the request's memory lives until the callback. */
typedef struct {
    bh_exec_req req;
    bh_fx_op *op;
    int n;          /* 1-based count within the attempt */
    int check;      /* raise on failure */
    int shell;      /* ctx.sh */
    char *what;     /* argv[0] or "sh", for messages */
    char *evidence; /* ctx.collect: stdout is evidence, kept whole under evidence/ */
    int acts;       /* may change something (default); acts = false: it only looks */
    int ndoubt;     /* exit codes after which it is unknown whether it acted */
    int doubt_exit[8];
    char **not_started; /* ... unless stderr says one of these: it never started (NULL-ended) */
} bh_pending_exec;

/* Whether what an attempt did may have acted, for an attempt that does
 * not succeed: in doubt (BH_STEP_IN_DOUBT) rather than plain failed. */
typedef struct {
    int acted;     /* an acting command or request completed */
    int unsure;    /* one ended without a definite answer (cut off, ssh lost) */
    char why[240]; /* the first of those, for people */
} bh_doubt;

struct bh_attempt {
    bh_run *run;
    bh_attempt *next, *prev; /* the run's attempts in flight */
    uint64_t serial;         /* names the attempt to coroutines made by its body */
    bh_attempt_kind kind;
    size_t index; /* of the step in the runbook */
    const bh_step *step;
    size_t item; /* 0-based: fan-out item, or cadence repetition */
    int number;
    lua_State *co;
    int co_ref;
    struct bh_ctx_handle *handle; /* cleared when the attempt ends */
    int handle_ref;               /* registry anchor of the handle */
    double started_ms;            /* on the run's clock */
    bh_guard guard;               /* its Lua's budget, deadline (real time) and interrupt */
    double timeout_ms;            /* in force for this attempt (step, runbook or --timeout) */
    bh_timer *timer;              /* the attempt's timeout */
    bh_wait_kind waiting;
    bh_pending_exec exec;
    struct bh_fx_op *request;        /* a network request in flight (request.c) ... */
    char *request_what;              /* ... and, once done, for its continuation: */
    int request_check, request_kind; /* what it was, raise if it failed */
    bh_timer *sleep_timer;
    int execs;
    bh_doubt doubt; /* this attempt's, plus what earlier attempts of the instance left */
    int timed_out, cancelled;
    int over_budget;          /* ran more Lua instructions than allowed */
    int ask_when;             /* ask the step's `when` although this is not attempt 1 */
    double sim_factor;        /* drill: a slow fault's factor on the estimate */
    double verify_started_ms; /* first health check, on the run's clock */
    char label[160];          /* step id, with [item] for a fan-out: for people */
    char guard_what[180];     /* "step 'label'", for the guard's words */
};

/* A failed attempt waiting out its backoff before the next one. */
typedef struct bh_retry {
    bh_run *run;
    struct bh_retry *next;
    bh_timer *timer;
    size_t index, item;
    int number;
    int due;        /* the backoff is over: starts when the caps allow */
    int ask_when;   /* see bh_attempt */
    bh_doubt doubt; /* what the failed attempts before it may have left */
} bh_retry;

/* Where a step is, beyond its status: instances, approvals, cadence. */
typedef struct {
    size_t nitems;    /* instances to run: fan-out items, else 1 */
    int items_ref;    /* registry: the fan-out list, once evaluated */
    size_t next_item; /* next instance to start */
    size_t running;   /* attempts in flight or waiting to retry */
    size_t ok, failed, skipped, timed_out, cancelled;
    size_t in_doubt; /* instances that did not succeed but may have acted */
    size_t waived;   /* of those: the operator chose to go on (resume --skip-unknown) */
    size_t unknown;  /* instances whose outcome is unknown and that were not repeated */
    int began;       /* its turn came: approvals asked or instances started */
    int awaiting;    /* waiting for approvals */
    int approved;    /* approvals given (or none needed) */
    /* the approvals that counted, one per person (gate.c) */
    struct bh_approver *approvers;
    int napprovers;
    bh_timer *approval_timer;
    bh_timer *cadence_timer; /* every: the next repetition */
    int reps;                /* repetitions started */
    int went;                /* step_go ran: items listed, cadence started */
    int halted;              /* the run stopped before every item started */
    size_t not_started;      /* items the halt left out */
    int undo_failed;         /* an undo of one of its instances failed */
} bh_step_rt;

/* A step of a run, for callbacks that get one pointer (timers). */
typedef struct {
    bh_run *run;
    size_t index;
} bh_step_ref;

/* An instance that completed, for undo in reverse completion order. */
typedef struct {
    size_t index, item;
} bh_done;

/* The scheduler's entry points for what sits below it: the step
 * primitives (ctx, request, gate) and the rollback call these when what an
 * attempt waited on is over. sched.c sets them in bh_sched_init; calls go
 * up through this table, includes only down (docs/design.md). */
typedef struct {
    /* resume a suspended attempt with nargs values pushed on its coroutine,
     * and handle what the body does next */
    void (*resume)(bh_attempt *a, int nargs);
    /* what the attempt waited on finished, but the attempt was timed out or
     * cancelled meanwhile: end it */
    void (*abandon)(bh_attempt *a);
    /* end a suspended attempt as failed without resuming it */
    void (*fail)(bh_attempt *a, const char *code, const char *message);
    /* end an attempt that is not Lua's (a manual task) */
    void (*finish)(bh_attempt *a, int ok, cJSON *result, const char *code, const char *message);
    /* the step's approvals are complete: it may start */
    void (*approved)(bh_run *run, size_t index);
    /* end a step that never ran an attempt (denied, cancelled while
     * waiting): a step_end with attempt 0, and the step's policy */
    void (*end_step)(bh_run *run, size_t index, bh_step_status status, const char *code,
                     const char *message);
    /* start the undo of one completed instance; 0 when it could not start
     * (the journal failed) */
    int (*start_undo)(bh_run *run, size_t index, size_t item);
} bh_sched_entry;

struct bh_run {
    const bh_sched_entry *sched; /* set by bh_sched_init */
    uv_loop_t *loop;
    bh_clock *clock; /* real, or virtual for dry runs and drills */
    const bh_runbook *rb;
    lua_State *L;
    bh_fx *fx;
    bh_journal *journal;
    bh_console *console;
    bh_events *events;        /* what happens, for the journal writer, the console, ... */
    struct bh_socket *socket; /* the control socket, a subscriber (socket.h) */
    struct bh_gate *gate;     /* the terminal prompt, when there is one */
    const bh_run_opts *opts;
    const char *operator_name; /* points at operator_buf */
    char operator_buf[BH_UTIL_NAME_MAX + 1];
    char *id, *dir;
    char *tmpdir;      /* ctx.tmpdir(): made on first use, removed at the end */
    double started_ms; /* on the clock */
    double earlier_ms; /* resumed: from the run's start to this engine's */
    uint64_t next_serial;
    size_t unit;            /* the unit now running (rb->units) */
    bh_attempt *attempts;   /* in flight */
    size_t running;         /* attempts in flight */
    bh_retry *retries;      /* waiting out a backoff */
    bh_step_status *status; /* per step */
    bh_step_rt *rt;         /* per step */
    bh_step_ref *refs;      /* per step: {run, index} */
    unsigned char *blocked; /* per step: skipped because a dependency failed */
    bh_done *done_list;     /* completed instances, in completion order */
    size_t ndone, capdone;
    int results_ref; /* registry: step id -> result */
    char *last_phase;
    int cap;      /* attempts in flight at most (steps with their own cap may go above,
                     unless the operator set --concurrency) */
    int cap_hard; /* --concurrency given: nothing goes above it */
    int failed, stopping, interrupt_signal, hard_kill, done;
    int abandoned;   /* a dead run ended by `bulkhead undo --abandon` (resume.c) */
    int rollback;    /* a failed step asked for rollback */
    int undoing;     /* running undos (rollback or `bulkhead undo`) */
    size_t undo_pos; /* next entry of done_list to undo, counting down */
    size_t undone, undo_failed;
    size_t undo_left; /* `bulkhead undo`: in-doubt instances it cannot put back (no undo) */
    int undo_only;    /* this engine was started by `bulkhead undo` */
    int lock_fd;      /* RUNDIR/lock, held for the engine's life */
    int since_checkpoint, checkpointing;
    int io_error;       /* first journal error, negative errno */
    uv_async_t *wake;   /* the signal handler wakes the loop (guard.h) */
    unsigned delivered; /* signals handled so far (bh_guard_signals counts them) */
    int continued;      /* failures let through by on_failure = "continue" */
    int wrapper_ref;    /* registry: the Lua function every attempt runs */
    int undo_wrapper_ref;
    size_t *unit_running;             /* attempts in flight per unit */
    int pumping, repump;              /* pump() is running: a nested call only asks again */
    void (*on_io_error)(bh_run *run); /* the scheduler stops the run */
};

/* Append a record to the run's journal; a failure stops the run (it is
 * remembered in run->io_error and nothing new starts). */
void bh_run_append(bh_run *run, cJSON *rec);
/* A new record object with its "type" first, ready for fields. */
cJSON *bh_run_record(bh_rec type, const bh_attempt *a);
/* The journal writer hears the run's events (events.h): it appends each
 * record event's record to run->journal. */
void bh_run_subscribe_journal(bh_run *run);
/* Add operator, host, pid and engine {name, version} to a record. */
void bh_run_add_who(const bh_run *run, cJSON *rec);
/* Call fn(L) with ud as a light userdata at index 1, protected, on the
 * run's main thread. Lua work the engine does outside a step body (making
 * coroutines, result tables) can run out of Lua memory; unprotected that
 * would abort the engine. Returns the lua status (the error is dropped). */
int bh_run_protected(bh_run *run, lua_CFunction fn, void *ud);
/* The attempt in flight with this serial number, or NULL once it ended. */
bh_attempt *bh_run_attempt(bh_run *run, uint64_t serial);
/* A signed checkpoint over the journal so far (when a key is set). */
void bh_run_checkpoint(bh_run *run);
/* fdatasync the journal; a failure stops the run like a failed append. */
int bh_run_sync(bh_run *run);
/* The run folder (0700) with out/ and a new journal; reports errors. */
int bh_run_create_dir(bh_run *run);
void bh_run_write_start(bh_run *run);
/* Add a completed (or in-doubt) instance to run->done_list (undo order
 * comes from it); an instance already there moves to the end. */
void bh_run_remember_done(bh_run *run, size_t index, size_t item);
/* How an effect (a command or a request) of an attempt ended. */
typedef enum {
    BH_EFFECT_NONE,   /* it did not act: it failed with an answer (an exit code, a status) */
    BH_EFFECT_DONE,   /* it completed */
    BH_EFFECT_UNSURE, /* no definite answer: cut off, killed, its connection lost */
} bh_effect;
/* Note how an effect of attempt a ended, for the attempt's in-doubt
 * verdict. acts: the effect may change something (a read-only command or
 * request does not count). why: what happened, for people. */
void bh_run_effect_ended(bh_attempt *a, int acts, bh_effect e, const char *why);
/* Step statuses counted into counts (JSON) and summary (text). */
void bh_run_counts(const bh_run *run, cJSON *counts, char *summary, size_t len);

/* "web1 may still be isolated": what an in-doubt instance may have left
 * (remain.h), from the item's key (or the step) and the declared effect. */
void bh_run_may_remain(bh_run *run, size_t index, size_t item, char *out, size_t len);

/* A short name for item `item` of a fan-out, for people and records. */
void bh_run_item_key(bh_run *run, size_t index, size_t item, char *out, size_t len);

/* In a simulation: the drill's fault for this attempt, recorded as a
 * fault_injected record when there is one. */
bh_fault bh_run_draw_fault(bh_attempt *a);
/* How long an attempt with an injected timeout waits: longer than its own
 * timeout, which ends it. */
double bh_run_hang_ms(const bh_attempt *a);

#endif
