/* clock: time as the scheduler sees it.
 *
 * A real run uses the loop's monotonic clock and libuv timers. Dry runs
 * and drills use virtual time: nothing real happens in them, so there is
 * nothing to wait for, and a drill must give the same figures every time
 * it is run with the same seed. Virtual timers fire in the order of their
 * due time (ties in the order they were started) as soon as the loop has
 * nothing else to do, and "now" jumps to each one's due time; a 30-minute
 * step estimate, a 2-minute backoff or a 30-minute cadence costs nothing
 * in wall time and is exact in the record.
 *
 * Every wait of the scheduler goes through here: step timeouts, retry
 * backoffs, ctx.sleep, cadences, approval timeouts, simulated work. What
 * guards the machine stays on real time: a child's own timeout and kill
 * grace (exec.c), the Lua instruction-count deadline hook.
 *
 * Timers never free themselves: the owner calls bh_timer_stop exactly once
 * (also after a one-shot fired), which may be done from the timer's own
 * callback. */
#ifndef BH_CLOCK_H
#define BH_CLOCK_H

#include <uv.h>

typedef struct bh_clock bh_clock;
typedef struct bh_timer bh_timer;
typedef void (*bh_timer_fn)(void *ud);

bh_clock *bh_clock_new(uv_loop_t *loop, int virtual_time);
/* Close the clock's own handle; it is freed from the close callback. Every
 * timer must have been stopped. */
void bh_clock_close(bh_clock *c);
int bh_clock_is_virtual(const bh_clock *c);
/* Milliseconds since the clock was made: real, or simulated. */
double bh_clock_now_ms(const bh_clock *c);
/* Virtual time only: move the clock forward to ms (a resumed or undone
 * simulation goes on from where its journal stopped). Never backwards. */
void bh_clock_set_now(bh_clock *c, double ms);

/* fn(ud) after ms (0: on a later loop turn, never from inside this call),
 * then every repeat ms when repeat > 0. */
bh_timer *bh_timer_start(bh_clock *c, double ms, double repeat, bh_timer_fn fn, void *ud);
/* Stop and free; NULL is ignored. */
void bh_timer_stop(bh_timer *t);

#endif
