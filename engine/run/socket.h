/* socket: a run's control socket (control.h), the way people steer it from
 * another terminal (bulkhead approve, deny, done) and ask what it waits on.
 *
 * It is a subscriber of the run's events like the console: what the run
 * waits on (approvals, manual tasks) and what is running, it knows from
 * the events it has heard, not from the run's insides. An answer from a
 * person goes to the gate (gate.h), which checks it against the run and
 * records it. Requests: {"op": "status"}, and {"op": "approve" | "deny" |
 * "done" | "fail", "step", "as", "reason", "note"}; replies: {"ok", and
 * "message" or "error"}, with status's "awaiting_approval", "manual" and
 * "running" lists and "output": the last 2 KiB each running attempt's
 * commands wrote, masked as all output is (masking holds back the last
 * bytes of a stream, as long as a secret's longest form, until more comes
 * or the stream ends: a secret cut between two chunks is masked too). */
#ifndef BH_SOCKET_H
#define BH_SOCKET_H

#include <sys/types.h>
#include <uv.h>

#include "run/events.h"
#include "run/handle.h"

typedef struct bh_socket bh_socket;

/* Listen in the folder dir of run run_id (members of group, or
 * BH_CONTROL_NO_GROUP, may connect too) and hear events from now on.
 * Returns 0, or a negative errno (nothing is left listening or
 * subscribed). */
int bh_socket_start(uv_loop_t *loop, const char *dir, gid_t group, bh_events *events, bh_run *run,
                    const char *run_id, bh_socket **out);
/* Stop listening and hearing; NULL is a no-op. */
void bh_socket_stop(bh_socket *s);

#endif
