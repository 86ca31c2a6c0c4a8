/* exec: one child process on the libuv loop. See exec.h for the contract.
 *
 * Life of a bh_exec:
 *   start    -> bh_spawn (no fork); watch its pidfd; read stdout/stderr;
 *               write stdin; arm the timeout
 *   stopping -> (timeout or cancel) SIGTERM to the group, SIGKILL after grace
 *   exited   -> leader reaped; stragglers in its group are swept like a
 *               timeout; once the group is gone (or SIGKILLed) the pipes get
 *               at most BH_EXEC_DRAIN_MS more to reach EOF
 *   finishing-> every pipe closed: close the timers; when the last close
 *               callback runs, call cb once and free everything.
 *
 * Every libuv handle lives inside the bh_exec, so freeing the bh_exec only
 * after the last close callback is what keeps handle memory valid for libuv.
 * A counter of initialised-but-not-yet-closed handles decides that moment. */
#include "effects/exec.h"

#include "base/redact.h"
#include "effects/spawn.h"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* After the leader exited and its group is gone, a pipe may still be held
 * open by a process that left the group (setsid, setpgid). Its output is not
 * worth hanging the run for. */
#define BH_EXEC_DRAIN_MS 1000
/* While stragglers are being swept, how often to look whether they are gone,
 * so that a group that dies on SIGTERM does not cost the whole grace period. */
#define BH_EXEC_POLL_MS 20
#define BH_EXEC_READ_BUF 65536

typedef struct {
    uv_pipe_t pipe;
    int open; /* uv_close not yet called */
    int fd;   /* output file, -1 until the first stored byte */
    char *path;
    size_t cap; /* bytes allocated for result.out[i].data */
    crypto_hash_sha256_state sha;
    bh_redact_stream *mask; /* secrets masked before anything is kept, or NULL */
    struct bh_exec *owner;
    int index;
} bh_exec_sink;

struct bh_exec {
    uv_loop_t *loop;
    /* The child's exit: its pidfd turns readable; on a kernel without
     * pidfds, a timer looks every BH_EXEC_POLL_MS instead. */
    union {
        uv_poll_t poll;
        uv_timer_t timer;
    } exit_watch;
    int pidfd; /* -1: exit_watch is the timer */
    bh_exec_sink sink[2];
    uv_pipe_t in_pipe;
    uv_write_t in_write;
    uv_shutdown_t in_shutdown;
    uv_timer_t timeout_timer;
    uv_timer_t grace_timer;
    uv_timer_t drain_timer;

    bh_exec_cb cb;
    void *ud;
    bh_exec_result result;

    char *in_data; /* our copy: uv_write needs it until the write completes */
    size_t in_len;
    int in_open;

    size_t capture_max;
    uint64_t file_max;
    void (*on_output)(void *ud, int stream, const char *buf, size_t n); /* bh_exec_req's */
    void *output_ud;
    int raw_stdout;
    uint64_t timeout_ms;
    uint64_t grace_ms;
    uint64_t start_ns;
    uint64_t kill_at; /* loop time at which the grace period ends */

    pid_t pgid;
    int handles_open; /* initialised handles whose close callback has not run */
    int pipes_open;   /* pipes (stdin included) not yet uv_close'd */
    int exited;
    int term_sent;
    int kill_sent;
    int grace_active;
    int draining;
    int finishing;
    int group_gone; /* observed empty after the leader exit: never signal it again */

    char rbuf[BH_EXEC_READ_BUF];
    bh_exec *live_next; /* live_execs */
    pid_t proc_pid;
};

static void end_mask(bh_exec_sink *k) {
    bh_redact_stream *m = k->mask;
    k->mask = NULL;
    bh_redact_stream_end(m); /* what it held back goes out now */
}

static void exec_free(bh_exec *ex) {
    for (int i = 0; i < 2; i++) {
        end_mask(&ex->sink[i]); /* spawn failed: nothing was read */
        free(ex->result.out[i].data);
        free(ex->sink[i].path);
    }
    free(ex->in_data);
    free(ex);
}

/* Execs whose child may still be running: their processes are not strays. */
static bh_exec *live_execs;

static void live_remove(bh_exec *ex) {
    for (bh_exec **p = &live_execs; *p; p = &(*p)->live_next)
        if (*p == ex) {
            *p = ex->live_next;
            return;
        }
}

static int sweep_escaped(void);

static void on_handle_closed(uv_handle_t *h) {
    bh_exec *ex = h->data;
    if (--ex->handles_open > 0) return;
    live_remove(ex);
    /* Only once nothing else runs: a daemon that a running exec's command
     * started is that step's business until it ends. */
    if (!live_execs) ex->result.escaped = sweep_escaped();
    ex->result.duration_ms = (double)(uv_hrtime() - ex->start_ns) / 1e6;
    ex->cb(&ex->result, ex->ud);
    exec_free(ex);
}

/* ---- the process group ---------------------------------------------- */

/* Parse /proc/PID/stat: state, pgrp and num_threads. Returns 0 on success. */
static int read_proc_stat_full(const char *pid, char *state, long *ppid, long *pgrp,
                               long *threads) {
    char path[64];
    char buf[1024];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    /* comm may contain spaces and parentheses: the fields start after the
     * last ')'. Then: state ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0') return -1;
    *state = p[2];
    p += 3;
    long field[16];
    for (int i = 0; i < 16; i++) {
        char *end;
        field[i] = strtol(p, &end, 10);
        if (end == p) return -1;
        p = end;
    }
    *ppid = field[0];
    *pgrp = field[1];
    *threads = field[15];
    return 0;
}

static int read_proc_stat(const char *pid, char *state, long *pgrp, long *threads) {
    long ppid;
    return read_proc_stat_full(pid, state, &ppid, pgrp, threads);
}

/* ---- descendants that left their group -------------------------------- */

/* Our children's pids, from the main thread's /proc/self/task/PID/children.
 * The main thread is the one that spawns, and the kernel hands an orphan
 * to the first live thread of its subreaper, which is the main thread
 * while the engine runs; so the other threads' lists (libuv's thread
 * pool) need not be read, which saves a directory scan per command.
 * Returns how many, or -1 when the kernel has no such file (our_children
 * then reads /proc). Reading the few children beats opening every
 * process's stat file after each command (60 opens per step). */
static int list_children(pid_t *out, int max) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096];
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    int n = 0;
    if (len <= 0) return 0;
    buf[len] = '\0';
    for (char *p = buf, *end; n < max; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        out[n++] = (pid_t)pid;
    }
    return n;
}

/* Our children's pids, however the kernel can tell: from list_children,
 * else from every process's stat file. Returns how many (at most max). */
static int our_children(pid_t *out, int max) {
    int n = list_children(out, max);
    if (n >= 0) return n;
    n = 0;
    DIR *d = opendir("/proc");
    const struct dirent *de;
    long self = (long)getpid();
    while (d && n < max && (de = readdir(d)) != NULL) {
        char state;
        long ppid, pgrp, threads;
        if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
        if (read_proc_stat_full(de->d_name, &state, &ppid, &pgrp, &threads) == 0 && ppid == self)
            out[n++] = (pid_t)strtol(de->d_name, NULL, 10);
    }
    if (d) closedir(d);
    return n;
}

/* Children the engine had before its first exec (an entrypoint's sidecar):
 * not ours to sweep. */
static pid_t preexisting[64];
static int npreexisting;

void bh_exec_prepare_engine(void) {
    /* Orphaned descendants (a daemon that called setsid and left its
     * group) are reparented to us instead of init, so a step's end can find
     * and stop them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    npreexisting = our_children(preexisting, 64);
    /* Descriptors the engine inherited (from a shell, a CI runner, an agent)
     * must not reach the commands a runbook runs: only 0-2 are theirs. Ours
     * are all opened close-on-exec. */
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return;
    int self = dirfd(d);
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || fd <= 2 || fd == self) continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(d);
}

static int preexisting_child(long pid) {
    for (int i = 0; i < npreexisting; i++)
        if ((long)preexisting[i] == pid) return 1;
    return 0;
}

static int belongs_to_live_exec(long pid, long pgrp) {
    for (bh_exec *e = live_execs; e; e = e->live_next)
        if ((long)e->proc_pid == pid || (long)e->pgid == pgrp) return 1;
    return 0;
}

/* SIGKILL every child of ours that no running exec accounts for (they
 * escaped their process group, and were reparented to us as subreaper),
 * and reap them: libuv only reaps the children it spawned. Returns how
 * many were killed. */
static int sweep_escaped(void) {
    long self = (long)getpid();
    pid_t found[256], kids[256];
    int n = 0, killed = 0;
    int nkids = our_children(kids, 256);
    for (int k = 0; k < nkids; k++) {
        char name[32], state;
        long ppid, pgrp, threads, pid = (long)kids[k];
        snprintf(name, sizeof name, "%ld", pid);
        /* still ours: it may have been reaped and its pid reused */
        if (read_proc_stat_full(name, &state, &ppid, &pgrp, &threads) != 0) continue;
        if (ppid != self || pid <= 1 || belongs_to_live_exec(pid, pgrp) || preexisting_child(pid))
            continue;
        if (state != 'Z' && kill((pid_t)pid, SIGKILL) == 0) killed++;
        found[n++] = (pid_t)pid;
    }
    /* Reap without waiting: a killed process not dead yet is reaped as a
     * zombie by a later sweep; the loop never blocks here. */
    for (int i = 0; i < n; i++)
        waitpid(found[i], NULL, WNOHANG);
    return killed;
}

/* 1 if a process that is not a zombie belongs to the group, 0 if none, -1
 * if /proc cannot tell. */
static int group_has_live_member(pid_t pgid) {
    DIR *d = opendir("/proc");
    if (d == NULL) return -1;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
        char state;
        long pgrp, threads;
        if (read_proc_stat(de->d_name, &state, &pgrp, &threads) != 0) continue;
        if (pgrp != (long)pgid || state == 'X' || state == 'x') continue;
        /* A zombie leader thread with other threads alive is a live process. */
        if (state == 'Z' && threads <= 1) continue;
        found = 1;
    }
    closedir(d);
    return found;
}

/* Only meaningful after the leader was reaped (before that, the leader is a
 * member). kill(-pgid, 0) alone also counts zombies: members reparented to an
 * init that reaps late (or never, in some containers) would look alive
 * forever and cost a full grace period plus a pointless SIGKILL, so when it
 * says "exists" /proc decides. */
static int group_alive(bh_exec *ex) {
    if (ex->group_gone || ex->pgid <= 1) return 0;
    if (kill(-ex->pgid, 0) != 0 && errno == ESRCH) {
        ex->group_gone = 1;
        return 0;
    }
    return group_has_live_member(ex->pgid) != 0;
}

static int signal_group(bh_exec *ex, int sig) {
    /* kill(-1, sig) would signal every process we may signal, and kill(0)
     * our own group: never let a bad pgid reach kill(). */
    if (ex->pgid <= 1 || ex->group_gone) return UV_ESRCH;
    if (kill(-ex->pgid, sig) != 0) return -errno;
    return 0;
}

/* ---- pipes ---------------------------------------------------------- */

static void sink_finish(bh_exec *ex, int i) {
    bh_exec_sink *k = &ex->sink[i];
    bh_exec_stream *s = &ex->result.out[i];
    if (k->fd >= 0) {
        /* The file is evidence: on disk before anyone reads the result. */
        if (s->stored > 0 && fdatasync(k->fd) != 0 && s->file_error == 0) s->file_error = -errno;
        if (close(k->fd) != 0 && s->file_error == 0) s->file_error = -errno;
        k->fd = -1;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&k->sha, digest);
    bh_util_digest_hex(digest, s->sha256);
}

static void maybe_finish(bh_exec *ex);

static void close_pipes(int fd[3][2]) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (fd[i][j] >= 0) {
                close(fd[i][j]);
                fd[i][j] = -1;
            }
}

static void sink_close(bh_exec *ex, int i) {
    bh_exec_sink *k = &ex->sink[i];
    if (!k->open) return;
    end_mask(k);
    k->open = 0;
    ex->pipes_open--;
    sink_finish(ex, i);
    uv_close((uv_handle_t *)&k->pipe, on_handle_closed);
}

static void stdin_close(bh_exec *ex) {
    if (!ex->in_open) return;
    ex->in_open = 0;
    ex->pipes_open--;
    /* Cancels a pending write or shutdown; their callbacks run first. */
    uv_close((uv_handle_t *)&ex->in_pipe, on_handle_closed);
}

static void sink_store(bh_exec *ex, int i, const char *buf, size_t n) {
    bh_exec_sink *k = &ex->sink[i];
    bh_exec_stream *s = &ex->result.out[i];
    if (k->path == NULL || s->file_error != 0 || s->stored >= ex->file_max) return;
    uint64_t room = ex->file_max - s->stored;
    size_t take = (uint64_t)n < room ? n : (size_t)room;
    if (k->fd < 0) {
        /* Opened on the first byte: a stream with no output leaves no file. */
        k->fd = open(k->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (k->fd < 0) {
            s->file_error = -errno;
            return;
        }
    }
    int r = bh_util_write_all(k->fd, buf, take);
    if (r < 0) {
        /* Keep reading and discarding so the child never blocks on a full
         * pipe; the error is reported with the result. Part of the chunk
         * may have landed: cut it off, so the file is what the hash and
         * `stored` say it is. */
        s->file_error = r;
        if (ftruncate(k->fd, (off_t)s->stored) != 0) {
            /* nothing more to do: the stream is reported lost already */
        }
        close(k->fd);
        k->fd = -1;
        return;
    }
    crypto_hash_sha256_update(&k->sha, (const unsigned char *)buf, take);
    s->stored += take;
}

static void sink_feed(bh_exec *ex, int i, const char *buf, size_t n) {
    bh_exec_sink *k = &ex->sink[i];
    bh_exec_stream *s = &ex->result.out[i];
    if (ex->on_output && !(i == 0 && ex->raw_stdout)) ex->on_output(ex->output_ud, i, buf, n);
    s->total += n;
    if (s->len < ex->capture_max) {
        size_t room = ex->capture_max - s->len;
        size_t take = n < room ? n : room;
        if (s->len + take + 1 > k->cap) {
            size_t cap = k->cap * 2;
            if (cap < s->len + take + 1) cap = s->len + take + 1;
            if (cap > ex->capture_max + 1) cap = ex->capture_max + 1;
            char *data = realloc(s->data, cap);
            if (data == NULL) {
                fprintf(stderr, "bulkhead: out of memory\n");
                abort();
            }
            s->data = data;
            k->cap = cap;
        }
        memcpy(s->data + s->len, buf, take);
        s->len += take;
        s->data[s->len] = '\0';
    }
    sink_store(ex, i, buf, n);
    if (s->total > ex->capture_max || s->total > ex->file_max) s->truncated = 1;
}

static void masked_out(const char *buf, size_t n, void *ud) {
    bh_exec_sink *k = ud;
    sink_feed(k->owner, k->index, buf, n);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    bh_exec *ex = h->data;
    /* One buffer serves both pipes: libuv hands it to on_read before it asks
     * for another, and on_read consumes it synchronously. */
    buf->base = ex->rbuf;
    buf->len = sizeof ex->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    bh_exec *ex = st->data;
    int i = st == (uv_stream_t *)&ex->sink[0].pipe ? 0 : 1;
    if (nread > 0) {
        if (ex->sink[i].mask)
            bh_redact_stream_feed(ex->sink[i].mask, buf->base, (size_t)nread);
        else
            sink_feed(ex, i, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) return; /* EAGAIN */
    /* EOF, or an error that ends the stream just the same. */
    sink_close(ex, i);
    maybe_finish(ex);
}

static void on_stdin_written(uv_write_t *req, int status) {
    bh_exec *ex = req->data;
    /* EPIPE: the child does not read its stdin (or exited); that is its
     * business, not an engine error. ECANCELED: the pipe is being closed. */
    if (status < 0 && status != UV_ECANCELED) {
        stdin_close(ex);
        maybe_finish(ex);
    }
}

static void on_stdin_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    bh_exec *ex = req->data;
    stdin_close(ex);
    maybe_finish(ex);
}

static void stdin_feed(bh_exec *ex) {
    ex->in_write.data = ex;
    ex->in_shutdown.data = ex;
    if (ex->in_len > 0) {
        uv_buf_t b = uv_buf_init(ex->in_data, (unsigned int)ex->in_len);
        if (uv_write(&ex->in_write, (uv_stream_t *)&ex->in_pipe, &b, 1, on_stdin_written) != 0) {
            stdin_close(ex);
            return;
        }
    }
    /* Queued behind the write: the child sees EOF after the last byte. */
    if (uv_shutdown(&ex->in_shutdown, (uv_stream_t *)&ex->in_pipe, on_stdin_shutdown) != 0)
        stdin_close(ex);
}

/* ---- stopping ------------------------------------------------------- */

static void on_drain(uv_timer_t *t) {
    bh_exec *ex = t->data;
    sink_close(ex, 0);
    sink_close(ex, 1);
    stdin_close(ex);
    maybe_finish(ex);
}

static void start_drain(bh_exec *ex) {
    if (ex->draining || ex->finishing) return;
    ex->draining = 1;
    if (ex->pipes_open > 0) uv_timer_start(&ex->drain_timer, on_drain, BH_EXEC_DRAIN_MS, 0);
}

static void grace_stop(bh_exec *ex) {
    ex->grace_active = 0;
    uv_timer_stop(&ex->grace_timer);
}

static void on_grace(uv_timer_t *t);

/* Before the leader exits, its exit_cb tells us when it is gone, so one
 * timer at the end of the grace period is enough. After it exited, only
 * polling tells when the stragglers are gone. */
static void arm_grace(bh_exec *ex) {
    uint64_t now = uv_now(ex->loop);
    uint64_t wait = ex->kill_at > now ? ex->kill_at - now : 0;
    if (ex->exited && wait > BH_EXEC_POLL_MS) wait = BH_EXEC_POLL_MS;
    ex->grace_active = 1;
    uv_timer_start(&ex->grace_timer, on_grace, wait, 0);
}

static void send_term(bh_exec *ex) {
    ex->term_sent = 1;
    ex->kill_at = uv_now(ex->loop) + ex->grace_ms;
    signal_group(ex, SIGTERM);
}

/* killed reports a group that outlived its grace period; a hard cancel
 * asked for SIGKILL outright, which term_signal and cancelled already say. */
static void send_kill(bh_exec *ex, int grace_expired) {
    if (ex->kill_sent) return;
    ex->kill_sent = 1;
    if (signal_group(ex, SIGKILL) == 0 && grace_expired) ex->result.killed = 1;
}

static void on_grace(uv_timer_t *t) {
    bh_exec *ex = t->data;
    ex->grace_active = 0;
    if (ex->exited && !group_alive(ex)) {
        start_drain(ex);
    } else if (uv_now(ex->loop) >= ex->kill_at) {
        send_kill(ex, 1);
        /* Before the exit, exit_cb starts the drain. */
        if (ex->exited) start_drain(ex);
    } else {
        arm_grace(ex);
        return;
    }
    maybe_finish(ex);
}

/* SIGTERM then SIGKILL after the grace period, or SIGKILL now. */
static void exec_stop(bh_exec *ex, int hard) {
    if (ex->finishing || ex->kill_sent) return;
    if (ex->exited && !group_alive(ex)) return; /* nothing left to signal */
    if (hard) {
        send_kill(ex, 0);
        grace_stop(ex);
        if (ex->exited) start_drain(ex);
        maybe_finish(ex);
        return;
    }
    if (ex->term_sent) return; /* the grace period is already running */
    send_term(ex);
    arm_grace(ex);
}

static void on_timeout(uv_timer_t *t) {
    bh_exec *ex = t->data;
    ex->result.timed_out = 1;
    exec_stop(ex, 0);
}

static void on_watch_closed(uv_handle_t *h) {
    bh_exec *ex = h->data;
    if (ex->pidfd >= 0) close(ex->pidfd); /* only now: libuv polled it until uv_close */
    ex->pidfd = -1;
    on_handle_closed(h);
}

static void child_exited(bh_exec *ex, int status, int term_signal) {
    ex->exited = 1;
    ex->result.exit_code = status;
    ex->result.term_signal = term_signal;
    uv_timer_stop(&ex->timeout_timer);
    uv_close((uv_handle_t *)&ex->exit_watch, on_watch_closed);
    if (!ex->kill_sent && group_alive(ex)) {
        /* A forgotten `&`: treat the stragglers like a timeout. swept is
         * set only when nothing had signalled the group yet, so that a
         * timeout or a cancel is not also reported as a sweep. */
        if (!ex->term_sent) {
            ex->result.swept = 1;
            send_term(ex);
        }
        arm_grace(ex);
    } else {
        grace_stop(ex);
        start_drain(ex);
    }
    maybe_finish(ex);
}

/* Reap the leader if it has exited. A wait that fails (ECHILD: someone
 * else reaped it) still ends the exec: the child is gone either way. */
static void look_for_exit(bh_exec *ex) {
    if (ex->exited) return;
    int code = 0, sig = 0;
    int r = bh_spawn_reap(ex->proc_pid, ex->pidfd, &code, &sig);
    if (r == 0) return;
    if (r < 0) code = -1; /* reaped elsewhere: its status is lost, and -1 is no success */
    child_exited(ex, code, sig);
}

static void on_pidfd(uv_poll_t *p, int status, int events) {
    (void)status;
    (void)events;
    look_for_exit(p->data);
}

static void on_exit_poll(uv_timer_t *t) {
    look_for_exit(t->data);
}

/* Called whenever a pipe closes or the group state changes: once the leader
 * is reaped, every pipe is closed and no straggler is waiting for SIGKILL,
 * close the timers; the last close callback completes the exec. */
static void maybe_finish(bh_exec *ex) {
    if (ex->finishing || !ex->exited || ex->pipes_open > 0 || ex->grace_active) return;
    ex->finishing = 1;
    uv_close((uv_handle_t *)&ex->timeout_timer, on_handle_closed);
    uv_close((uv_handle_t *)&ex->grace_timer, on_handle_closed);
    uv_close((uv_handle_t *)&ex->drain_timer, on_handle_closed);
}

/* ---- public --------------------------------------------------------- */

static uint64_t ms_to_timer(double ms) {
    if (!(ms > 0)) return 0;
    if (ms >= 1e15) return (uint64_t)1e15; /* ~31000 years: "never" */
    return (uint64_t)ceil(ms);
}

/* One sink per output stream: its file, hash, mask and pipe. */
static void sink_init(bh_exec *ex, int i, const bh_exec_req *req) {
    bh_exec_sink *k = &ex->sink[i];
    k->fd = -1;
    k->path = req->out_path[i] ? bh_util_xstrdup(req->out_path[i]) : NULL;
    k->cap = 1;
    k->owner = ex;
    k->index = i;
    /* Evidence is kept byte for byte (its hash is its chain of custody);
     * everything else a child prints is masked. */
    if (bh_redact_count(req->redact) > 0 && !(i == 0 && req->raw_stdout))
        k->mask = bh_redact_stream_new(req->redact, masked_out, k);
    crypto_hash_sha256_init(&k->sha);
    ex->result.out[i].data = bh_util_xcalloc(1, 1);
}

static bh_exec *exec_new(uv_loop_t *loop, const bh_exec_req *req, bh_exec_cb cb, void *ud) {
    bh_exec *ex = bh_util_xcalloc(1, sizeof *ex);
    ex->loop = loop;
    ex->cb = cb;
    ex->ud = ud;
    /* capture_max + 1 bytes are allocated at most: keep that from wrapping. */
    ex->capture_max = req->capture_max < SIZE_MAX ? req->capture_max : SIZE_MAX - 1;
    ex->file_max = req->file_max;
    ex->on_output = req->on_output;
    ex->output_ud = req->output_ud;
    ex->raw_stdout = req->raw_stdout;
    ex->timeout_ms = ms_to_timer(req->timeout_ms);
    ex->grace_ms = ms_to_timer(req->kill_grace_ms);
    for (int i = 0; i < 2; i++)
        sink_init(ex, i, req);
    return ex;
}

/* The pipes to the child: fd[i][0] the child's end, fd[i][1] ours. No
 * stdin pipe without stdin data (the child gets /dev/null). Close-on-exec
 * on both: the child's end reaches it through dup2 only. Returns 0 or a
 * negative errno, with every pipe made so far closed. */
static int make_pipes(const bh_exec_req *req, int fd[3][2]) {
    for (int i = 0; i < 3; i++)
        fd[i][0] = fd[i][1] = -1;
    for (int i = req->stdin_data != NULL ? 0 : 1; i < 3; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            int err = -errno;
            close_pipes(fd);
            return err;
        }
        /* stdin: the child reads p[0]; stdout and stderr: it writes p[1]. */
        fd[i][0] = i == 0 ? p[0] : p[1];
        fd[i][1] = i == 0 ? p[1] : p[0];
    }
    return 0;
}

/* Our ends of the pipes become libuv pipes. uv_pipe_open cannot fail on a
 * fresh pipe of ours but for ENOMEM-like causes; then the stream is closed
 * at once and reads as empty. */
static void open_pipe(bh_exec *ex, uv_pipe_t *p, int fd) {
    uv_pipe_init(ex->loop, p, 0);
    p->data = ex;
    ex->handles_open++;
    if (uv_pipe_open(p, fd) != 0) close(fd);
}

/* Watch for the child's exit: its pidfd on the loop, or a timer. */
static void watch_exit(bh_exec *ex) {
    ex->pidfd = bh_spawn_pidfd(ex->proc_pid);
    if (ex->pidfd >= 0 && uv_poll_init(ex->loop, &ex->exit_watch.poll, ex->pidfd) == 0) {
        ex->exit_watch.poll.data = ex;
        uv_poll_start(&ex->exit_watch.poll, UV_READABLE, on_pidfd);
    } else {
        if (ex->pidfd >= 0) close(ex->pidfd);
        ex->pidfd = -1;
        uv_timer_init(ex->loop, &ex->exit_watch.timer);
        ex->exit_watch.timer.data = ex;
        uv_timer_start(&ex->exit_watch.timer, on_exit_poll, BH_EXEC_POLL_MS, BH_EXEC_POLL_MS);
    }
    ex->handles_open++;
}

/* Start the child in its own session and process group, with the pipes'
 * far ends as its stdio. Returns 0, or a negative errno after which ex is
 * freed and must not be used again (no libuv handle was made yet). */
static int spawn_child(bh_exec *ex, const bh_exec_req *req) {
    int fd[3][2];
    int r = make_pipes(req, fd);
    pid_t pid = 0;
    if (r == 0) {
        bh_spawn_req sr = {req->argv, req->env, req->cwd, {fd[0][0], fd[1][0], fd[2][0]}};
        ex->start_ns = uv_hrtime();
        r = bh_spawn(&sr, &pid);
    }
    for (int i = 0; i < 3; i++)
        if (fd[i][0] >= 0) close(fd[i][0]); /* the child has its copies */
    if (r != 0) {
        for (int i = 0; i < 3; i++)
            if (fd[i][1] >= 0) close(fd[i][1]);
        exec_free(ex); /* no handle was made: nothing for libuv to close */
        return r;
    }
    ex->proc_pid = pid;
    if (req->stdin_data != NULL) open_pipe(ex, &ex->in_pipe, fd[0][1]);
    for (int i = 0; i < 2; i++)
        open_pipe(ex, &ex->sink[i].pipe, fd[i + 1][1]);
    watch_exit(ex);
    return 0;
}

/* The child runs: note its group, count it among the live execs (its
 * processes are not strays) and set up the timers. */
static void track_child(bh_exec *ex) {
    ex->result.pid = ex->proc_pid;
    ex->pgid = ex->proc_pid; /* setsid: pgid == pid */
    ex->live_next = live_execs;
    live_execs = ex;
    uv_timer_t *timers[3] = {&ex->timeout_timer, &ex->grace_timer, &ex->drain_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(ex->loop, timers[i]);
        timers[i]->data = ex;
        ex->handles_open++;
    }
}

/* Read stdout and stderr, write stdin, arm the timeout. */
static void start_io(bh_exec *ex, const bh_exec_req *req) {
    for (int i = 0; i < 2; i++) {
        ex->sink[i].open = 1;
        ex->pipes_open++;
        if (uv_read_start((uv_stream_t *)&ex->sink[i].pipe, on_alloc, on_read) != 0)
            sink_close(ex, i);
    }
    if (req->stdin_data != NULL) {
        ex->in_len = req->stdin_len;
        ex->in_data = bh_util_xmalloc(ex->in_len > 0 ? ex->in_len : 1);
        memcpy(ex->in_data, req->stdin_data, ex->in_len);
        ex->in_open = 1;
        ex->pipes_open++;
        stdin_feed(ex);
    }
    if (ex->timeout_ms > 0) uv_timer_start(&ex->timeout_timer, on_timeout, ex->timeout_ms, 0);
}

int bh_exec_start(uv_loop_t *loop, const bh_exec_req *req, bh_exec_cb cb, void *ud, bh_exec **out) {
    if (out != NULL) *out = NULL;
    if (loop == NULL || req == NULL || cb == NULL || req->argv == NULL || req->argv[0] == NULL)
        return UV_EINVAL;
    /* uv_buf_t holds an unsigned int length. */
    if (req->stdin_data != NULL && req->stdin_len > UINT_MAX) return UV_E2BIG;
    if (sodium_init() < 0) return UV_EIO;

    bh_exec *ex = exec_new(loop, req, cb, ud);
    int r = spawn_child(ex, req);
    if (r != 0) return r;
    track_child(ex);
    start_io(ex, req);

    if (out != NULL) *out = ex;
    return 0;
}

void bh_exec_cancel(bh_exec *ex, int hard) {
    if (ex == NULL) return;
    ex->result.cancelled = 1;
    exec_stop(ex, hard);
}

int64_t bh_exec_pid(const bh_exec *ex) {
    return ex ? ex->result.pid : 0;
}
