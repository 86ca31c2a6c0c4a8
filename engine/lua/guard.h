/* guard: what bounds every call the engine makes into runbook Lua.
 *
 * A guard is an instruction budget, a wall-clock deadline and, when it
 * says so, the interrupt (SIGINT, SIGTERM). One count hook, installed on a
 * Lua state when it is made and inherited by every thread it makes, checks
 * the innermost guard in force every BH_GUARD_EVERY instructions. Code
 * running under no guard (the engine's own Lua work) is not counted.
 *
 * A guard that trips yields its coroutine when it has one and can (an
 * attempt's body: pcall cannot catch a yield, the scheduler ends the
 * attempt), and otherwise raises an error, again at every instruction
 * until the guarded call returns, so that a pcall in the runbook cannot
 * swallow it (as Redis does for a killed script).
 *
 * The hook cannot run inside a C function (a Lua string pattern that
 * backtracks for ever, a C module's loop): a watchdog timer (SIGALRM) ends
 * the engine when a guard is still in force BH_GUARD_STUCK_MS after its
 * deadline, saying why; the journal is whole and `resume` goes on.
 *
 * Signals: bh_guard_catch_signals installs SIGINT and SIGTERM handlers.
 * The handler only counts the signal, sets the hook on the state running
 * Lua (as lua.c's laction does), and calls the notifier the run set (an
 * async-signal-safe wake-up of its loop). With neither Lua running nor a
 * notifier, the signal does what it always did: the process ends. */
#ifndef BH_GUARD_H
#define BH_GUARD_H

#include <lua.h>
#include <stdint.h>

#include "lua/luax.h"

#define BH_GUARD_EVERY 1000 /* instructions between two looks */
/* Past a guard's deadline by this much, the engine is stuck in C (where
 * the hook cannot run) and ends itself (guard.c, the watchdog). */
#define BH_GUARD_STUCK_MS 5000

typedef enum {
    BH_GUARD_OK,
    BH_GUARD_BUDGET,    /* ran more than max_instructions */
    BH_GUARD_DEADLINE,  /* ran past deadline_ns */
    BH_GUARD_INTERRUPT, /* a signal came (interruptible guards only) */
} bh_guard_trip;

typedef struct bh_guard bh_guard;
struct bh_guard {
    const char *what;        /* for messages: "step 'x'", "loading the runbook" */
    const char *hint;        /* added to a budget or deadline message, or NULL */
    double max_instructions; /* <= 0: no budget */
    uint64_t deadline_ns;    /* uv_hrtime() clock; 0: no deadline */
    int interruptible;       /* a signal trips it (not the engine's own Lua work) */
    lua_State *co;           /* tripped: yield this coroutine when it runs and can */
    /* told once, when it trips (from inside the hook: set flags, no more) */
    void (*on_trip)(bh_guard *g, bh_guard_trip why);
    void *ud;
    /* kept by the guard */
    double instructions;
    bh_guard_trip tripped;
    bh_guard *outer;          /* in force before it, again after it */
    lua_State *outer_running; /* ... and what the handler hooked then */
    unsigned signals_seen;    /* signals before it was entered do not trip it */
};

/* Install the hook on a new Lua state (its threads inherit it). */
void bh_guard_install(lua_State *L);

/* g is in force until bh_guard_leave(g): guards nest, the innermost
 * holds. L is the thread about to run (the handler hooks it). */
void bh_guard_enter(bh_guard *g, lua_State *L);
void bh_guard_leave(bh_guard *g);

/* bh_luax_pcall under g (entered and left around it). A trip ends the
 * call with err->code "instruction_budget", "timeout" or "interrupted"
 * and a message naming g->what. */
int bh_guard_pcall(lua_State *L, bh_guard *g, int nargs, int nresults, bh_luax_error *err);

/* The message for a tripped guard, e.g. "step 'x' ran more than 1e+06
 * Lua instructions". */
void bh_guard_message(const bh_guard *g, char *out, size_t len);

/* A guard for `ms` from now (0: no deadline), with a budget. */
void bh_guard_init(bh_guard *g, const char *what, double max_instructions, double ms,
                   int interruptible);

/* --- signals ------------------------------------------------------------ */

/* SIGINT and SIGTERM from now on go to the guard's handler. */
void bh_guard_catch_signals(void);
/* Called from the signal handler (so: async-signal-safe only, such as
 * uv_async_send), or NULL: nobody listens, a signal ends the process
 * unless Lua is running under a guard. */
void bh_guard_set_notify(void (*notify)(void *ud), void *ud);
/* The run acted on one more signal. A third signal in a row that nobody
 * acted on ends the process as it would without the handler. */
void bh_guard_signal_handled(void);
/* Signals received so far, and the last one (SIGINT or SIGTERM). */
unsigned bh_guard_signals(void);
int bh_guard_last_signal(void);

#endif
