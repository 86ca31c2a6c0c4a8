#include "base/clock.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/util.h"

struct bh_timer {
    bh_clock *clock;
    bh_timer_fn fn;
    void *ud;
    /* real */
    uv_timer_t *uv;
    /* virtual */
    double due, repeat;
    uint64_t seq; /* start order: ties fire first come, first served */
    int armed;
    bh_timer *next; /* the clock's armed timers, by (due, seq) */
};

struct bh_clock {
    uv_loop_t *loop;
    int virtual_time;
    uint64_t start_ns; /* real */
    double now;        /* virtual */
    uint64_t seq;
    bh_timer *armed; /* virtual: sorted */
    uv_idle_t idle;  /* virtual: runs the next timer when the loop has nothing else */
};

static uint64_t ms_to_uv(double ms) {
    if (!(ms > 0)) return 0;
    if (ms > 9e15) return (uint64_t)9e15;
    return (uint64_t)ms;
}

static void on_idle(uv_idle_t *h);

bh_clock *bh_clock_new(uv_loop_t *loop, int virtual_time) {
    bh_clock *c = bh_util_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->virtual_time = virtual_time;
    c->start_ns = uv_hrtime();
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    return c;
}

static void clock_closed(uv_handle_t *h) {
    free(h->data);
}

void bh_clock_close(bh_clock *c) {
    if (!c) return;
    uv_idle_stop(&c->idle);
    uv_close((uv_handle_t *)&c->idle, clock_closed);
}

int bh_clock_is_virtual(const bh_clock *c) {
    return c->virtual_time;
}

double bh_clock_now_ms(const bh_clock *c) {
    if (c->virtual_time) return c->now;
    return (double)(uv_hrtime() - c->start_ns) / 1e6;
}

void bh_clock_set_now(bh_clock *c, double ms) {
    if (c->virtual_time && ms > c->now && isfinite(ms)) c->now = ms;
}

/* --- virtual ------------------------------------------------------------ */

static void unlink_armed(bh_clock *c, bh_timer *t) {
    for (bh_timer **p = &c->armed; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    t->next = NULL;
    t->armed = 0;
}

static void arm(bh_clock *c, bh_timer *t) {
    t->seq = ++c->seq;
    t->armed = 1;
    bh_timer **p = &c->armed;
    while (*p && ((*p)->due < t->due || ((*p)->due == t->due && (*p)->seq < t->seq)))
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    uv_idle_start(&c->idle, on_idle); /* a no-op when it already runs */
}

static void on_idle(uv_idle_t *h) {
    bh_clock *c = h->data;
    bh_timer *t = c->armed;
    if (!t) {
        uv_idle_stop(&c->idle);
        return;
    }
    unlink_armed(c, t);
    if (t->due > c->now) c->now = t->due;
    if (t->repeat > 0) {
        t->due = c->now + t->repeat;
        arm(c, t);
    }
    /* One timer per loop turn: what it starts gets its turn first. The
     * callback may stop (free) t. */
    t->fn(t->ud);
    if (!c->armed) uv_idle_stop(&c->idle); /* a no-op when it already stopped */
}

/* --- real --------------------------------------------------------------- */

static void on_uv_timer(uv_timer_t *h) {
    bh_timer *t = h->data;
    t->fn(t->ud);
}

static void uv_timer_closed(uv_handle_t *h) {
    free(h);
}

bh_timer *bh_timer_start(bh_clock *c, double ms, double repeat, bh_timer_fn fn, void *ud) {
    bh_timer *t = bh_util_xcalloc(1, sizeof *t);
    t->clock = c;
    t->fn = fn;
    t->ud = ud;
    if (c->virtual_time) {
        t->due = c->now + (ms > 0 ? ms : 0);
        t->repeat = repeat > 0 ? repeat : 0;
        arm(c, t);
        return t;
    }
    t->uv = bh_util_xmalloc(sizeof *t->uv);
    uv_timer_init(c->loop, t->uv);
    t->uv->data = t;
    /* From now, not from when the loop last woke: after a long call into
     * Lua its cached time is old, and a step's timeout would be cut short. */
    uv_update_time(c->loop);
    uv_timer_start(t->uv, on_uv_timer, ms_to_uv(ms), ms_to_uv(repeat));
    return t;
}

void bh_timer_stop(bh_timer *t) {
    if (!t) return;
    if (t->uv) {
        uv_timer_stop(t->uv);
        uv_close((uv_handle_t *)t->uv, uv_timer_closed);
    } else if (t->armed) {
        unlink_armed(t->clock, t);
    }
    free(t);
}
