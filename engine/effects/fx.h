/* fx: the one layer every primitive that acts on the world goes through.
 *
 * ctx.exec and ctx.sh (and later http, notify and plugin actions) never call
 * bh_exec directly; they call the bh_fx of the run. A real run uses
 * bh_fx_real, which spawns. Dry runs and drills provide another bh_fx that
 * records what would have happened and returns a scripted result, so no
 * primitive needs a second implementation per mode.
 *
 * Contract for every implementation: exec() either fails at once (returns a
 * negative uv error, no callback) or returns 0 and calls cb exactly once,
 * later, from the loop. cancel() may be called at any time before cb. */
#ifndef BH_FX_H
#define BH_FX_H

#include <uv.h>

#include "effects/exec.h"
#include "effects/net.h"

typedef struct bh_fx bh_fx;
typedef struct bh_fx_op bh_fx_op;

struct bh_fx {
    const char *mode; /* "real", later "dry-run", "drill" */
    int (*exec)(bh_fx *fx, const bh_exec_req *req, bh_exec_cb cb, void *ud, bh_fx_op **op);
    void (*cancel)(bh_fx *fx, bh_fx_op *op, int hard);
    /* Process id of a started exec, for the record (0 when none is real). */
    int64_t (*pid)(bh_fx *fx, const bh_fx_op *op);
    /* A network request (net.h), same contract as exec. */
    int (*request)(bh_fx *fx, const bh_net_req *req, bh_net_cb cb, void *ud, bh_fx_op **op);
    void (*cancel_request)(bh_fx *fx, bh_fx_op *op);
    void (*destroy)(bh_fx *fx);
    uv_loop_t *loop;
};

/* Effects that really happen: bh_exec on the loop. */
bh_fx *bh_fx_real(uv_loop_t *loop);

#endif
