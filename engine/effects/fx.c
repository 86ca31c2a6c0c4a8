/* fx: the real effects. exec() is bh_exec itself; the bh_exec pointer is the
 * opaque operation handed back to the caller, so cancel() needs no lookup. */
#include "effects/fx.h"

#include <errno.h>
#include <stdlib.h>

static int real_exec(bh_fx *fx, const bh_exec_req *req, bh_exec_cb cb, void *ud, bh_fx_op **op) {
    bh_exec *ex = NULL;
    int r = bh_exec_start(fx->loop, req, cb, ud, &ex);
    if (op != NULL) *op = r == 0 ? (bh_fx_op *)ex : NULL;
    return r;
}

static void real_cancel(bh_fx *fx, bh_fx_op *op, int hard) {
    (void)fx;
    if (op != NULL) bh_exec_cancel((bh_exec *)op, hard);
}

static int64_t real_pid(bh_fx *fx, const bh_fx_op *op) {
    (void)fx;
    return op != NULL ? bh_exec_pid((const bh_exec *)op) : 0;
}

/* The run's requests share one curl multi handle, made on first use. */
typedef struct {
    bh_fx fx;
    bh_net *net;
} real_fx;

static int real_request(bh_fx *fx, const bh_net_req *req, bh_net_cb cb, void *ud, bh_fx_op **op) {
    real_fx *rf = (real_fx *)fx;
    if (!rf->net) rf->net = bh_net_new(fx->loop);
    *op = NULL;
    if (!rf->net) return -ELIBACC; /* bh_net_unavailable() says why */
    bh_net_op *o = NULL;
    int r = bh_net_start(rf->net, req, cb, ud, &o);
    *op = (bh_fx_op *)o;
    return r;
}

static void real_cancel_request(bh_fx *fx, bh_fx_op *op) {
    (void)fx;
    bh_net_cancel((bh_net_op *)op);
}

static void real_destroy(bh_fx *fx) {
    bh_net_close(((real_fx *)fx)->net);
    free(fx);
}

bh_fx *bh_fx_real(uv_loop_t *loop) {
    real_fx *rf = bh_util_xcalloc(1, sizeof *rf);
    bh_fx *fx = &rf->fx;
    fx->mode = "real";
    fx->request = real_request;
    fx->cancel_request = real_cancel_request;
    fx->exec = real_exec;
    fx->cancel = real_cancel;
    fx->destroy = real_destroy;
    fx->pid = real_pid;
    fx->loop = loop;
    return fx;
}
