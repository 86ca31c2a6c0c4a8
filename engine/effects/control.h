/* control: the local socket through which people steer a running engine
 * from another terminal (bulkhead approve / deny / done).
 *
 * The engine listens on RUNDIR/control.sock. By default the socket is 0600
 * in the 0700 run folder: only the engine's user (and root) can reach it.
 * With an approvers group (run --approvers-group GROUP) the socket is 0660
 * and the run folder 0710, both of that group: its members may pass
 * through the folder to the socket, and nothing more (they cannot list the
 * folder, and the journal, lock and out/ stay owner-only). One request per
 * connection: the client writes one JSON object and a newline, the engine
 * answers with one JSON object and a newline and closes. The peer's uid
 * and pid (SO_PEERCRED) are given to the handler: the uid is who the
 * caller is. A caller whose credentials cannot be read is refused.
 *
 * Unix socket paths are limited to 107 bytes; a run folder deep in a file
 * system can be longer, so both sides reach the socket through
 * /proc/self/fd/N/control.sock, N being a descriptor of the run folder
 * (O_PATH on the client's side: a group member may pass, not read). */
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

/* No approvers group: the socket is the engine's user's alone. */
#define BH_CONTROL_NO_GROUP ((gid_t)-1)

/* Listen in dir; members of group (or BH_CONTROL_NO_GROUP) may connect
 * too. Returns 0 or a negative errno (then *out is NULL). */
int bh_control_start(uv_loop_t *loop, const char *dir, gid_t group, bh_control_handler fn, void *ud,
                     bh_control **out);

/* Before a run or resume with --approvers-group: the group exists, this
 * engine may hand the run folder to it (root, or a member), and its
 * members can pass every directory from / down to dir (the folder that
 * holds run folders), judged by mode bits (ACLs are not read). Returns 0
 * with *gid, or -1 with why (every directory in the way, and what to do). */
int bh_control_check_group(const char *name, const char *dir, gid_t *gid, char *why, size_t whylen);
/* Stop listening, remove the socket; freed once libuv has closed it. */
void bh_control_stop(bh_control *c);

/* Client side: send req to the engine of the run in dir and wait (at most
 * timeout_ms) for its reply. Returns 0 with *reply set, or a negative
 * errno: -ENOENT / -ECONNREFUSED when no engine listens. */
int bh_control_call(const char *dir, const cJSON *req, int timeout_ms, cJSON **reply);

#endif
