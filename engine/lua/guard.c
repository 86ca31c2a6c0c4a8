#include "lua/guard.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "base/util.h"

/* The engine runs Lua on one thread: the innermost guard in force, and
 * what the signal handler needs, are process-wide. */
static bh_guard *current;
static lua_State *volatile running; /* under an interruptible guard: the handler hooks it */
static volatile sig_atomic_t nsignals, last_signal, handled;
static void (*volatile notify_fn)(void *);
static void *volatile notify_ud;

static void hook(lua_State *L, lua_Debug *ar);

static void look_every(lua_State *L, int n) {
    lua_sethook(L, hook, LUA_MASKCOUNT, n);
}

void bh_guard_install(lua_State *L) {
    look_every(L, BH_GUARD_EVERY);
}

void bh_guard_init(bh_guard *g, const char *what, double max_instructions, double ms,
                   int interruptible) {
    memset(g, 0, sizeof *g);
    g->what = what;
    g->max_instructions = max_instructions;
    /* fresh time: a long call before this one must not shorten it */
    g->deadline_ns = ms > 0 ? uv_hrtime() + (uint64_t)(ms * 1e6) : 0;
    g->interruptible = interruptible;
}

/* --- the watchdog ---------------------------------------------------------
 * The hook runs between Lua instructions, never inside a C function: a Lua
 * string pattern that backtracks for hours, or a C module that loops,
 * holds the engine where no guard and no loop can act. So while a guard
 * with a deadline is in force, an interval timer waits for that deadline
 * plus BH_GUARD_STUCK_MS; had the hook been able to run, the guarded call
 * would have ended long before. If the timer fires, the engine is stuck:
 * it says so and ends as SIGTERM would end it. The journal is whole (every
 * record is one write), and `bulkhead resume` takes the run up. */

/* When the interval timer fires (loop time in ns), 0 when disarmed. Set
 * lazily: a timer that fires too early is re-armed by its handler, one
 * that fires too late would miss a stuck engine. So a guard re-arms only
 * when it needs the timer sooner than it is set, and leaving a guard
 * never disarms: two setitimer calls per Lua callback were a fifth of the
 * engine's system calls per exec step. */
static volatile uint64_t armed_due;

/* The innermost deadline in force, plus the grace: when the engine is
 * stuck if the guard is still in force then; 0 without a deadline. */
static uint64_t stuck_at(const bh_guard *g) {
    for (; g && !g->deadline_ns; g = g->outer) {
    }
    return g ? g->deadline_ns + (uint64_t)BH_GUARD_STUCK_MS * 1000000u : 0;
}

static void set_timer(uint64_t due, uint64_t now) {
    struct itimerval t;
    memset(&t, 0, sizeof t);
    uint64_t us = due > now ? (due - now) / 1000 : 1;
    t.it_value.tv_sec = (time_t)(us / 1000000);
    t.it_value.tv_usec = (suseconds_t)(us % 1000000);
    if (!t.it_value.tv_sec && !t.it_value.tv_usec) t.it_value.tv_usec = 1;
    armed_due = due;
    setitimer(ITIMER_REAL, &t, NULL);
}

static void arm_watchdog(const bh_guard *g) {
    uint64_t due = stuck_at(g);
    if (due && (armed_due == 0 || armed_due > due)) set_timer(due, uv_hrtime());
}

static void say(const char *s) {
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n;
}

/* SIGALRM: the engine is stuck if a guard's deadline has passed by the
 * grace; an early alarm (set for a guard that has ended) waits for the
 * one in force now, if any. */
static void on_stuck(int sig) {
    (void)sig;
    int saved_errno = errno;
    const bh_guard *g = current;
    uint64_t due = stuck_at(g), now = uv_hrtime();
    armed_due = 0;
    if (due == 0 || now < due) {
        if (due) set_timer(due, now);
        errno = saved_errno;
        return;
    }
    say("bulkhead: ");
    say(g && g->what ? g->what : "the runbook's code");
    say(" is stuck inside a C function (a Lua string pattern that backtracks, a C module) "
        "past its deadline, where no timeout or Ctrl-C can stop it: the engine stops now; "
        "`bulkhead resume RUN` goes on from the journal\n");
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
}

void bh_guard_enter(bh_guard *g, lua_State *L) {
    g->outer = current;
    current = g;
    g->outer_running = running;
    g->signals_seen = (unsigned)nsignals; /* only signals from now on trip it */
    if (g->interruptible) running = L;
    if (g->deadline_ns) arm_watchdog(g);
}

void bh_guard_leave(bh_guard *g) {
    running = g->outer_running;
    current = g->outer;
    g->outer = NULL;
    /* An outer guard's deadline is never later than it was when it armed
     * the timer, and the timer is never set later than any deadline in
     * force: nothing to do. */
}

static const char *trip_code(bh_guard_trip why) {
    switch (why) {
    case BH_GUARD_BUDGET:
        return "instruction_budget";
    case BH_GUARD_DEADLINE:
        return "timeout";
    case BH_GUARD_INTERRUPT:
        return "interrupted";
    case BH_GUARD_OK:
        break;
    }
    return "lua_error";
}

void bh_guard_message(const bh_guard *g, char *out, size_t len) {
    const char *what = g->what ? g->what : "the runbook's code";
    switch (g->tripped) {
    case BH_GUARD_BUDGET:
        snprintf(out, len, "%s ran more than %.0f Lua instructions%s%s%s", what,
                 g->max_instructions, g->hint ? " (" : "", g->hint ? g->hint : "",
                 g->hint ? ")" : "");
        break;
    case BH_GUARD_DEADLINE:
        snprintf(out, len, "%s did not finish in time%s%s%s", what, g->hint ? " (" : "",
                 g->hint ? g->hint : "", g->hint ? ")" : "");
        break;
    case BH_GUARD_INTERRUPT:
        snprintf(out, len, "%s was interrupted by %s", what,
                 last_signal == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    case BH_GUARD_OK:
        snprintf(out, len, "%s", what);
        break;
    }
}

static bh_guard_trip check(bh_guard *g) {
    g->instructions += BH_GUARD_EVERY;
    if (g->interruptible && (unsigned)nsignals != g->signals_seen) return BH_GUARD_INTERRUPT;
    if (g->max_instructions > 0 && g->instructions > g->max_instructions) return BH_GUARD_BUDGET;
    if (g->deadline_ns && uv_hrtime() >= g->deadline_ns) return BH_GUARD_DEADLINE;
    return BH_GUARD_OK;
}

/* " (in plugins/spin.lua:3)": where the code that ran on was, when that
 * is not the place the error names anyway (its caller: bh_luax_raise). */
static void running_at(lua_State *L, char *out, size_t len) {
    lua_Debug here, caller;
    if (!lua_getstack(L, 0, &here) || !lua_getinfo(L, "Sl", &here) || here.currentline <= 0) return;
    if (lua_getstack(L, 1, &caller) && lua_getinfo(L, "Sl", &caller) &&
        strcmp(caller.short_src, here.short_src) == 0)
        return;
    snprintf(out, len, " (in %s:%d)", here.short_src, here.currentline);
}

static void hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    bh_guard *g = current;
    if (!g) {
        look_every(L, BH_GUARD_EVERY); /* the handler may have asked for every instruction */
        return;
    }
    if (!g->tripped) {
        bh_guard_trip why = check(g);
        if (why == BH_GUARD_OK) {
            look_every(L, BH_GUARD_EVERY);
            return;
        }
        g->tripped = why;
        if (g->on_trip) g->on_trip(g, why);
    }
    /* A yield, not an error, where it can be: pcall cannot catch a yield.
     * In a hook lua_yield returns; the yield happens when the hook does. */
    if (g->co && L == g->co && lua_isyieldable(L)) {
        look_every(L, BH_GUARD_EVERY);
        lua_yield(L, 0);
        return;
    }
    /* Otherwise an error, raised again at every instruction: a pcall that
     * catches it returns into code that raises it again at once. */
    look_every(L, 1);
    char msg[400];
    bh_guard_message(g, msg, sizeof msg);
    char at[300] = "";
    running_at(L, at, sizeof at);
    lua_newtable(L); /* bh_luax_raise fills the table on top: ours, not the code's */
    bh_luax_raise(L, trip_code(g->tripped), "%s%s", msg, at);
}

int bh_guard_pcall(lua_State *L, bh_guard *g, int nargs, int nresults, bh_luax_error *err) {
    bh_guard_enter(g, L);
    int st = bh_luax_pcall(L, nargs, nresults, err);
    bh_guard_leave(g);
    look_every(L, BH_GUARD_EVERY);
    if (!g->tripped) return st;
    if (st == LUA_OK) { /* finished at the very instruction it tripped: still a trip */
        lua_pop(L, nresults == LUA_MULTRET ? 0 : nresults);
        st = LUA_ERRRUN;
        if (err) memset(err, 0, sizeof *err);
    }
    if (err) {
        /* the guard's words, whatever the code made of its error */
        char msg[400];
        bh_guard_message(g, msg, sizeof msg);
        free(err->code);
        err->code = bh_util_xstrdup(trip_code(g->tripped));
        if (!err->message || !strstr(err->message, msg)) {
            free(err->message);
            err->message = bh_util_xstrdup(msg);
        }
    }
    return st;
}

/* --- signals ----------------------------------------------------------- */

static void on_signal(int sig) {
    int saved_errno = errno;
    last_signal = sig;
    nsignals++;
    lua_State *L = running;
    void (*notify)(void *) = notify_fn;
    /* as lua.c's laction: a hook at the next instruction of what runs */
    if (L) look_every(L, 1);
    if (notify) notify(notify_ud);
    /* Nobody to tell, or three signals nobody acted on (the engine is stuck
     * where neither hook nor loop runs): what the signal always did. */
    if ((!L && !notify) || nsignals - handled >= 3) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    errno = saved_errno;
}

void bh_guard_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_stuck;
    sigaction(SIGALRM, &sa, NULL);
}

void bh_guard_set_notify(void (*notify)(void *ud), void *ud) {
    notify_fn = NULL; /* never a new function with the old argument */
    notify_ud = ud;
    notify_fn = notify;
}

void bh_guard_signal_handled(void) {
    handled++;
}

unsigned bh_guard_signals(void) {
    return (unsigned)nsignals;
}

int bh_guard_last_signal(void) {
    return (int)last_signal;
}
