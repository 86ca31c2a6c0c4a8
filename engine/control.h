/* control: the local socket through which people steer a running engine
 * from another terminal (bulkhead approve / deny / done).
 *
 * The engine listens on RUNDIR/control.sock (mode 0600, in the run folder,
 * which is 0700: only the engine's user can reach it). One request per
 * connection: the client writes one JSON object and a newline, the engine
 * answers with one JSON object and a newline and closes. The peer's uid
 * and pid (SO_PEERCRED) are given to the handler, for the record.
 *
 * Unix socket paths are limited to 107 bytes; a run folder deep in a file
 * system can be longer, so both sides reach the socket through
 * /proc/self/fd/N/control.sock, N being a descriptor of the run folder. */
#ifndef BH_CONTROL_H
#define BH_CONTROL_H

#include <cjson/cJSON.h>
#include <sys/types.h>
#include <uv.h>

typedef struct bh_control bh_control;

typedef struct {
    uid_t uid;
    pid_t pid;
} bh_control_peer;

/* Handle a request; return the reply (the caller frees it). */
typedef cJSON *(*bh_control_handler)(const cJSON *req, const bh_control_peer *peer, void *ud);

/* Listen in dir. Returns 0 or a negative errno (then *out is NULL). */
int bh_control_start(uv_loop_t *loop, const char *dir, bh_control_handler fn, void *ud,
                     bh_control **out);
/* Stop listening, remove the socket; freed once libuv has closed it. */
void bh_control_stop(bh_control *c);

/* Client side: send req to the engine of the run in dir and wait (at most
 * timeout_ms) for its reply. Returns 0 with *reply set, or a negative
 * errno: -ENOENT / -ECONNREFUSED when no engine listens. */
int bh_control_call(const char *dir, const cJSON *req, int timeout_ms, cJSON **reply);

#endif
