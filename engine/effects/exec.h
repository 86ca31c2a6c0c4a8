/* exec: run one child process on the libuv loop, the way an incident
 * runbook needs it run.
 *
 * - argv array, no shell (a runbook asks for one explicitly with ctx.sh);
 * - the child is started without fork (effects/spawn.h) and leads its own
 *   session and process group, so signals go to the whole group:
 *   kill(-pgid, sig); its exit is seen on the loop through a pidfd;
 * - stdin is /dev/null unless data is given; stdout and stderr are read
 *   through pipes, streamed to files (created only when there is output,
 *   hashed as they are written, capped at file_max bytes) and the first
 *   capture_max bytes are also kept in memory for the runbook;
 * - on timeout or bh_exec_cancel: SIGTERM to the group, SIGKILL after
 *   kill_grace_ms. When the leader exits and others remain in its group
 *   (a forgotten `&`), they get the same treatment ("swept");
 * - the callback runs once, after every handle is closed, from the loop and
 *   never from inside bh_exec_start; the bh_exec is freed right after it. */
#ifndef BH_EXEC_H
#define BH_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "base/util.h"

typedef struct {
    char **argv;            /* NULL-terminated, argv[0] looked up in PATH */
    char **env;             /* NULL-terminated "K=V" list: the child's whole environment */
    const char *cwd;        /* NULL: the engine's */
    const char *stdin_data; /* NULL: /dev/null */
    size_t stdin_len;
    double timeout_ms;              /* <= 0: none (the caller may still cancel) */
    double kill_grace_ms;           /* between SIGTERM and SIGKILL */
    size_t capture_max;             /* bytes of each stream kept in memory */
    size_t file_max;                /* bytes of each stream written to its file */
    const char *out_path[2];        /* files for stdout, stderr; NULL: not written */
    const struct bh_redact *redact; /* secrets masked in what is captured, or NULL */
    int raw_stdout;                 /* evidence: stdout stored exactly, never masked */
    const cJSON *sim_script;        /* dry run/drill: {exit, stdout, stderr} to give back */
    /* Each chunk of output as it arrives (stream 0: stdout, 1: stderr),
     * masked as the capture is; never raw stdout (evidence). NULL: none. */
    void (*on_output)(void *ud, int stream, const char *buf, size_t n);
    void *output_ud;
} bh_exec_req;

typedef struct {
    char *data;      /* first capture_max bytes, NUL-terminated, never NULL */
    size_t len;      /* bytes in data */
    uint64_t total;  /* bytes the child wrote to the stream */
    uint64_t stored; /* bytes written to the file */
    int truncated;   /* total > capture_max or > file_max */
    int file_error;  /* negative errno if writing (or syncing) the file failed, else 0: the
                        file then holds only the first `stored` bytes, and may not be durable */
    char sha256[BH_SHA256_HEX_LEN + 1]; /* of the stored bytes */
} bh_exec_stream;

typedef struct {
    int64_t pid;
    int64_t exit_code; /* valid when term_signal == 0 */
    int term_signal;   /* signal that ended the child, 0 if it exited */
    int timed_out;     /* its own timeout fired */
    int cancelled;     /* bh_exec_cancel was called */
    int killed;        /* SIGKILL was needed after the grace period */
    int swept;         /* other members of its group outlived it and were signalled */
    int escaped;       /* descendants that left the group, killed at the end (subreaper) */
    double duration_ms;
    bh_exec_stream out[2]; /* stdout, stderr */
} bh_exec_result;

typedef struct bh_exec bh_exec;
/* res and everything it points to (out[i].data, the bh_exec itself) are
 * freed as soon as the callback returns: copy what you need to keep, and do
 * not use the bh_exec (bh_exec_cancel, bh_exec_pid) from then on. */
typedef void (*bh_exec_cb)(const bh_exec_result *res, void *ud);

/* Spawn. Returns 0 (cb will be called exactly once) or a negative uv error
 * (nothing is left running, cb is never called). */
int bh_exec_start(uv_loop_t *loop, const bh_exec_req *req, bh_exec_cb cb, void *ud, bh_exec **out);
/* SIGTERM to the group and SIGKILL after the grace period; hard: SIGKILL
 * now. Safe to call more than once and after the child exited. */
void bh_exec_cancel(bh_exec *ex, int hard);
/* Call once before the first exec: make this process the child subreaper
 * (descendants that leave their process group are reparented here and
 * swept when an exec ends), and mark every inherited descriptor above 2
 * close-on-exec so children get only stdin, stdout and stderr. */
void bh_exec_prepare_engine(void);
/* Process id of the child. */
int64_t bh_exec_pid(const bh_exec *ex);

#endif
