/* Unit tests for exec.c and fx.c: real children on a private loop each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "effects/exec.h"
#include "effects/fx.h"

/* Short grace periods keep every test well under two seconds. */
#define GRACE_MS 200

typedef struct {
    int calls;
    int in_start; /* set around bh_exec_start: the callback must not run there */
    bh_exec_result res;
    char *data[2]; /* copies: the result is freed after the callback */
} outcome;

static void on_done(const bh_exec_result *res, void *ud) {
    outcome *o = ud;
    assert_false(o->in_start);
    o->calls++;
    o->res = *res;
    for (int i = 0; i < 2; i++) {
        assert_non_null(res->out[i].data);
        assert_int_equal(res->out[i].data[res->out[i].len], '\0');
        o->data[i] = malloc(res->out[i].len + 1);
        memcpy(o->data[i], res->out[i].data, res->out[i].len + 1);
        o->res.out[i].data = o->data[i];
    }
}

static void outcome_free(outcome *o) {
    free(o->data[0]);
    free(o->data[1]);
}

static bh_exec_req base_req(char **argv) {
    bh_exec_req req;
    memset(&req, 0, sizeof req);
    req.argv = argv;
    req.kill_grace_ms = GRACE_MS;
    req.capture_max = 1 << 20;
    req.file_max = 1 << 20;
    return req;
}

/* Runs one exec to completion on a fresh loop that must close cleanly. */
static void run(const bh_exec_req *req, outcome *o) {
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    bh_exec *ex = NULL;
    o->in_start = 1;
    int r = bh_exec_start(&loop, req, on_done, o, &ex);
    o->in_start = 0;
    assert_int_equal(r, 0);
    assert_non_null(ex);
    assert_true(bh_exec_pid(ex) > 1);
    assert_int_equal(o->calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o->calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void sha256_hex(const void *data, size_t len, char out[BH_SHA256_HEX_LEN + 1]) {
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, data, len);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

typedef struct {
    char dir[64];
    char path[2][96];
} tmpdir;

static void tmpdir_make(tmpdir *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/bh-test-exec-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path[0], sizeof t->path[0], "%s/out.stdout", t->dir);
    snprintf(t->path[1], sizeof t->path[1], "%s/out.stderr", t->dir);
}

static void tmpdir_remove(tmpdir *t) {
    unlink(t->path[0]);
    unlink(t->path[1]);
    assert_int_equal(rmdir(t->dir), 0);
}

/* The pid no longer names a live process: gone, or a zombie waiting for an
 * init that reaps lazily. Polls up to 2 s. */
static int process_dead(long pid) {
    for (int i = 0; i < 200; i++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL) return 1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ' && p[2] == 'Z') return 1;
        usleep(10000);
    }
    return 0;
}

static void test_echo_captured(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char *argv[] = {"echo", "hello", NULL};
    bh_exec_req req = base_req(argv);
    req.out_path[0] = t.path[0];
    req.out_path[1] = t.path[1];
    outcome o = {0};
    run(&req, &o);

    assert_string_equal(o.data[0], "hello\n");
    assert_int_equal(o.res.out[0].len, 6);
    assert_int_equal(o.res.out[0].total, 6);
    assert_int_equal(o.res.out[0].stored, 6);
    assert_int_equal(o.res.out[0].truncated, 0);
    assert_int_equal(o.res.out[0].file_error, 0);
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_int_equal(o.res.timed_out + o.res.cancelled + o.res.killed + o.res.swept, 0);
    assert_true(o.res.pid > 1);
    assert_true(o.res.duration_ms > 0);

    size_t len;
    char *file = slurp(t.path[0], &len);
    assert_non_null(file);
    assert_int_equal(len, 6);
    assert_memory_equal(file, "hello\n", 6);
    char hex[BH_SHA256_HEX_LEN + 1];
    sha256_hex(file, len, hex);
    assert_string_equal(o.res.out[0].sha256, hex);
    free(file);
    struct stat st;
    assert_int_equal(stat(t.path[0], &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* No output on stderr: no file, hash of nothing. */
    assert_string_equal(o.data[1], "");
    assert_int_equal(o.res.out[1].total, 0);
    assert_int_equal(o.res.out[1].stored, 0);
    assert_int_equal(access(t.path[1], F_OK), -1);
    sha256_hex("", 0, hex);
    assert_string_equal(o.res.out[1].sha256, hex);

    outcome_free(&o);
    tmpdir_remove(&t);
}

static void test_exit_code(void **state) {
    (void)state;
    char *argv[] = {"sh", "-c", "exit 3", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.exit_code, 3);
    assert_int_equal(o.res.term_signal, 0);
    /* Nothing written anywhere. */
    assert_int_equal(o.res.out[0].len, 0);
    assert_int_equal(o.res.out[0].stored, 0);
    outcome_free(&o);
}

static void test_not_found(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *argv[] = {"bulkhead-test-no-such-program", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    bh_exec *ex = (bh_exec *)&o; /* must be reset */
    int r = bh_exec_start(&loop, &req, on_done, &o, &ex);
    assert_int_equal(r, UV_ENOENT);
    assert_null(ex);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* A missing cwd fails the same way, with stdin pipe handles to close too. */
    assert_int_equal(uv_loop_init(&loop), 0);
    char *argv2[] = {"true", NULL};
    req = base_req(argv2);
    req.cwd = "/nonexistent/bulkhead-test";
    req.stdin_data = "x";
    req.stdin_len = 1;
    r = bh_exec_start(&loop, &req, on_done, &o, &ex);
    assert_true(r < 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stdin_cat(void **state) {
    (void)state;
    char *argv[] = {"cat", NULL};
    bh_exec_req req = base_req(argv);
    req.stdin_data = "line one\nline two\n";
    req.stdin_len = strlen(req.stdin_data);
    outcome o = {0};
    run(&req, &o);
    assert_string_equal(o.data[0], "line one\nline two\n");
    assert_int_equal(o.res.exit_code, 0);
    outcome_free(&o);

    /* More than a socket buffer: the write completes asynchronously. */
    size_t big = 3 << 20;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    req.stdin_data = data;
    req.stdin_len = big;
    req.capture_max = big;
    outcome o2 = {0};
    run(&req, &o2);
    assert_int_equal(o2.res.out[0].len, big);
    assert_memory_equal(o2.data[0], data, big);
    assert_int_equal(o2.res.exit_code, 0);
    outcome_free(&o2);

    /* Empty stdin: EOF at once. */
    req.stdin_data = "";
    req.stdin_len = 0;
    outcome o3 = {0};
    run(&req, &o3);
    assert_int_equal(o3.res.out[0].len, 0);
    assert_int_equal(o3.res.exit_code, 0);
    outcome_free(&o3);
    free(data);
}

static void test_stdin_not_read(void **state) {
    (void)state;
    /* The child exits without reading: EPIPE on our side, nothing else. */
    char *argv[] = {"true", NULL};
    bh_exec_req req = base_req(argv);
    size_t big = 4 << 20;
    char *data = calloc(1, big);
    req.stdin_data = data;
    req.stdin_len = big;
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_true(o.res.duration_ms < 1000);
    outcome_free(&o);
    free(data);
}

static void test_stdin_default_devnull(void **state) {
    (void)state;
    char *argv[] = {"cat", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.out[0].total, 0);
    assert_int_equal(o.res.exit_code, 0);
    outcome_free(&o);
}

static void test_stderr_separate(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; echo more >&2", NULL};
    bh_exec_req req = base_req(argv);
    req.out_path[0] = t.path[0];
    req.out_path[1] = t.path[1];
    outcome o = {0};
    run(&req, &o);
    assert_string_equal(o.data[0], "out\n");
    assert_string_equal(o.data[1], "err\nmore\n");
    assert_int_equal(o.res.out[1].stored, 9);
    size_t len;
    char *file = slurp(t.path[1], &len);
    assert_non_null(file);
    assert_int_equal(len, 9);
    assert_memory_equal(file, "err\nmore\n", 9);
    char hex[BH_SHA256_HEX_LEN + 1];
    sha256_hex(file, len, hex);
    assert_string_equal(o.res.out[1].sha256, hex);
    free(file);
    outcome_free(&o);
    tmpdir_remove(&t);
}

static void test_capture_truncation(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char *argv[] = {"head", "-c", "100000", "/dev/zero", NULL};
    bh_exec_req req = base_req(argv);
    req.capture_max = 1000;
    req.out_path[0] = t.path[0];
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.out[0].len, 1000);
    assert_int_equal(o.res.out[0].total, 100000);
    assert_int_equal(o.res.out[0].stored, 100000);
    assert_int_equal(o.res.out[0].truncated, 1);
    struct stat st;
    assert_int_equal(stat(t.path[0], &st), 0);
    assert_int_equal(st.st_size, 100000);
    outcome_free(&o);
    tmpdir_remove(&t);
}

static void test_file_truncation(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char *argv[] = {"head", "-c", "100000", "/dev/urandom", NULL};
    bh_exec_req req = base_req(argv);
    req.file_max = 1000;
    req.out_path[0] = t.path[0];
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.out[0].len, 100000);
    assert_int_equal(o.res.out[0].total, 100000);
    assert_int_equal(o.res.out[0].stored, 1000);
    assert_int_equal(o.res.out[0].truncated, 1);
    size_t len;
    char *file = slurp(t.path[0], &len);
    assert_non_null(file);
    assert_int_equal(len, 1000);
    /* The file holds the first file_max bytes, and the hash is of them. */
    assert_memory_equal(file, o.data[0], 1000);
    char hex[BH_SHA256_HEX_LEN + 1];
    sha256_hex(file, len, hex);
    assert_string_equal(o.res.out[0].sha256, hex);
    free(file);
    outcome_free(&o);
    tmpdir_remove(&t);
}

static void test_file_error(void **state) {
    (void)state;
    char *argv[] = {"head", "-c", "300000", "/dev/zero", NULL};
    bh_exec_req req = base_req(argv);
    req.out_path[0] = "/nonexistent/bulkhead-test/out";
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.out[0].file_error, -ENOENT);
    assert_int_equal(o.res.out[0].stored, 0);
    /* Still read to the end: the child was never blocked. */
    assert_int_equal(o.res.out[0].total, 300000);
    assert_int_equal(o.res.out[0].len, 300000);
    assert_int_equal(o.res.exit_code, 0);
    outcome_free(&o);
}

static void test_timeout(void **state) {
    (void)state;
    char *argv[] = {"sleep", "30", NULL};
    bh_exec_req req = base_req(argv);
    req.timeout_ms = 200;
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.timed_out, 1);
    assert_int_equal(o.res.cancelled, 0);
    assert_int_equal(o.res.killed, 0);
    assert_int_equal(o.res.swept, 0);
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_true(o.res.duration_ms >= 190 && o.res.duration_ms < 2000);
    assert_int_equal(kill((pid_t)o.res.pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    outcome_free(&o);
}

static void test_term_ignored_killed(void **state) {
    (void)state;
    char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30", NULL};
    bh_exec_req req = base_req(argv);
    req.timeout_ms = 200;
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.timed_out, 1);
    assert_int_equal(o.res.killed, 1);
    assert_int_equal(o.res.term_signal, SIGKILL);
    assert_true(o.res.duration_ms >= 390 && o.res.duration_ms < 2000);
    assert_int_equal(kill((pid_t)o.res.pid, 0), -1);
    outcome_free(&o);
}

static void test_grandchild_dies(void **state) {
    (void)state;
    char *argv[] = {"sh", "-c", "sleep 30 & echo $!; wait", NULL};
    bh_exec_req req = base_req(argv);
    req.timeout_ms = 200;
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.timed_out, 1);
    long grandchild = strtol(o.data[0], NULL, 10);
    assert_true(grandchild > 1);
    assert_true(process_dead(grandchild));
    assert_true(o.res.duration_ms < 2000);
    outcome_free(&o);
}

static void test_forgotten_background_swept(void **state) {
    (void)state;
    char *argv[] = {"sh", "-c", "sleep 30 & echo $!", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_int_equal(o.res.swept, 1);
    assert_int_equal(o.res.timed_out, 0);
    /* sleep dies on SIGTERM: no SIGKILL needed, and no waiting for the
     * whole grace period either. */
    assert_int_equal(o.res.killed, 0);
    assert_true(o.res.duration_ms < GRACE_MS);
    long bg = strtol(o.data[0], NULL, 10);
    assert_true(bg > 1);
    assert_true(process_dead(bg));
    outcome_free(&o);
}

static void test_swept_term_ignored(void **state) {
    (void)state;
    /* The straggler ignores SIGTERM (inherited SIG_IGN): SIGKILL after grace. */
    char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30 & echo $!", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.swept, 1);
    assert_int_equal(o.res.killed, 1);
    assert_true(o.res.duration_ms >= GRACE_MS - 10 && o.res.duration_ms < 2000);
    long bg = strtol(o.data[0], NULL, 10);
    assert_true(process_dead(bg));
    outcome_free(&o);
}

/* Starts a sleep in its own session, holding our stdout, and exits only
 * once it has left our group (field 5 of /proc/PID/stat is the pgrp), so
 * that the sweep cannot catch it on the way out. */
#define ESCAPE_SCRIPT                                                                              \
    "setsid sleep 30 & p=$!; echo $p; "                                                            \
    "while [ \"$(cut -d' ' -f5 /proc/$p/stat)\" = $$ ]; do sleep 0.01; done"

static void test_escaped_pipe_holder_drained(void **state) {
    (void)state;
    /* setsid puts the holder of stdout outside the group: it cannot be
     * swept, and the exec must not wait for its EOF for more than ~1 s. */
    char *argv[] = {"sh", "-c", ESCAPE_SCRIPT, NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_true(o.res.duration_ms >= 900 && o.res.duration_ms < 2000);
    long bg = strtol(o.data[0], NULL, 10);
    assert_true(bg > 1);
    kill((pid_t)bg, SIGKILL); /* ours to clean up: it escaped on purpose */
    outcome_free(&o);
}

typedef struct {
    bh_exec *ex;
    int hard;
    int twice;
} cancel_plan;

static void on_cancel_timer(uv_timer_t *t) {
    cancel_plan *p = t->data;
    bh_exec_cancel(p->ex, p->hard);
    if (p->twice) bh_exec_cancel(p->ex, p->hard);
    uv_close((uv_handle_t *)t, NULL);
}

static void run_cancelled(int hard, outcome *o) {
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *argv[] = {"sleep", "30", NULL};
    bh_exec_req req = base_req(argv);
    cancel_plan plan = {NULL, hard, 1};
    assert_int_equal(bh_exec_start(&loop, &req, on_done, o, &plan.ex), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &plan;
    uv_timer_start(&t, on_cancel_timer, 100, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o->calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_cancel_soft(void **state) {
    (void)state;
    outcome o = {0};
    run_cancelled(0, &o);
    assert_int_equal(o.res.cancelled, 1);
    assert_int_equal(o.res.timed_out, 0);
    assert_int_equal(o.res.killed, 0);
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_true(o.res.duration_ms < 1000);
    outcome_free(&o);
}

static void test_cancel_hard(void **state) {
    (void)state;
    outcome o = {0};
    run_cancelled(1, &o);
    assert_int_equal(o.res.cancelled, 1);
    /* SIGKILL was asked for, not needed after a grace period. */
    assert_int_equal(o.res.killed, 0);
    assert_int_equal(o.res.term_signal, SIGKILL);
    outcome_free(&o);
}

typedef struct {
    bh_exec *ex;
    outcome *o;
    uv_timer_t timer;
} late_cancel;

static void on_exit_seen(uv_timer_t *t) {
    late_cancel *lc = t->data;
    /* The child is long gone but its straggler keeps stdout open until the
     * drain: cancelling now must be harmless. */
    if (lc->o->calls == 0) {
        bh_exec_cancel(lc->ex, 0);
        bh_exec_cancel(lc->ex, 1);
    }
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_after_exit(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *argv[] = {"sh", "-c", ESCAPE_SCRIPT, NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    late_cancel lc = {NULL, &o, {0}};
    assert_int_equal(bh_exec_start(&loop, &req, on_done, &o, &lc.ex), 0);
    uv_timer_init(&loop, &lc.timer);
    lc.timer.data = &lc;
    uv_timer_start(&lc.timer, on_exit_seen, 300, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.res.cancelled, 1);
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.term_signal, 0);
    assert_int_equal(o.res.killed, 0);
    kill((pid_t)strtol(o.data[0], NULL, 10), SIGKILL);
    outcome_free(&o);
}

static void test_env_exact(void **state) {
    (void)state;
    char *argv[] = {"env", NULL};
    char *env[] = {"A=1", NULL};
    bh_exec_req req = base_req(argv);
    req.env = env;
    outcome o = {0};
    run(&req, &o);
    assert_string_equal(o.data[0], "A=1\n");
    outcome_free(&o);
}

static void test_cwd(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char real[PATH_MAX];
    assert_non_null(realpath(t.dir, real));
    char *argv[] = {"pwd", NULL};
    bh_exec_req req = base_req(argv);
    req.cwd = real;
    outcome o = {0};
    run(&req, &o);
    char expect[PATH_MAX + 2];
    snprintf(expect, sizeof expect, "%s\n", real);
    assert_string_equal(o.data[0], expect);
    outcome_free(&o);
    tmpdir_remove(&t);
}

/* What the child starts with, read by the child itself from
 * /proc/self/status: no blocked and no ignored signal (the engine ignores
 * SIGPIPE and blocks what it likes), its own session and group, and no fd
 * above 2 even when the engine holds one open without close-on-exec. */
static void test_child_starts_clean(void **state) {
    (void)state;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    assert_true(leak > 2);
    char *argv[] = {"sh", "-c",
                    "grep -E '^Sig(Blk|Ign):' /proc/self/status; "
                    "ps -o pid=,pgid=,sid= -p $$ | awk '{print ($1==$2 && $2==$3) ? \"leader\" : "
                    "\"not leader\"}'; ls /proc/self/fd | sort -n | tr '\\n' ' '",
                    NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    run(&req, &o);
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(leak);
    unsigned long long blocked = 0, ignored = 0;
    char rest[64] = "";
    assert_int_equal(
        sscanf(o.data[0], "SigBlk: %llx SigIgn: %llx %63[^\n]", &blocked, &ignored, rest), 3);
    assert_int_equal(blocked, 0);
    /* glibc's posix_spawn leaves its own two real-time signals (32, 33)
     * ignored; every C library sets a handler for them before it uses
     * them. Nothing else may be ignored. */
    assert_int_equal(ignored & ~((1ULL << 31) | (1ULL << 32)), 0);
    assert_string_equal(rest, "leader");
    assert_non_null(strstr(o.data[0], "\n0 1 2 3 "));
    outcome_free(&o);
}

/* argv[0] is looked up in the PATH of the child's environment, not the
 * engine's; a directory that is first in PATH but holds no runnable file
 * of that name is passed over. */
static void test_path_of_child_env(void **state) {
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    char dir[PATH_MAX], prog[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/bin", t.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(prog, sizeof prog, "%s/bh-only-here", dir);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho found me\n", f);
    fclose(f);
    assert_int_equal(chmod(prog, 0700), 0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "PATH=/nonexistent:%s", dir);
    char *env[] = {path, NULL};
    char *argv[] = {"bh-only-here", NULL};
    bh_exec_req req = base_req(argv);
    req.env = env;
    outcome o = {0};
    run(&req, &o);
    assert_string_equal(o.data[0], "found me\n");
    outcome_free(&o);
    /* The engine's own PATH does not have it. */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    bh_exec_req req2 = base_req(argv);
    bh_exec *ex = NULL;
    assert_int_equal(bh_exec_start(&loop, &req2, on_done, &o, &ex), UV_ENOENT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unlink(prog);
    rmdir(dir);
    tmpdir_remove(&t);
}

static void test_fx_real(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    bh_fx *fx = bh_fx_real(&loop);
    assert_string_equal(fx->mode, "real");
    assert_ptr_equal(fx->loop, &loop);

    char *argv[] = {"echo", "via fx", NULL};
    bh_exec_req req = base_req(argv);
    outcome o = {0};
    bh_fx_op *op = NULL;
    assert_int_equal(fx->exec(fx, &req, on_done, &o, &op), 0);
    assert_non_null(op);

    char *argv2[] = {"sleep", "30", NULL};
    bh_exec_req req2 = base_req(argv2);
    outcome o2 = {0};
    bh_fx_op *op2 = NULL;
    assert_int_equal(fx->exec(fx, &req2, on_done, &o2, &op2), 0);
    fx->cancel(fx, op2, 1);

    char *argv3[] = {"bulkhead-test-no-such-program", NULL};
    bh_exec_req req3 = base_req(argv3);
    bh_fx_op *op3 = (bh_fx_op *)&o;
    assert_int_equal(fx->exec(fx, &req3, on_done, &o, &op3), UV_ENOENT);
    assert_null(op3);

    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.calls, 1);
    assert_string_equal(o.data[0], "via fx\n");
    assert_int_equal(o2.calls, 1);
    assert_int_equal(o2.res.cancelled, 1);
    assert_int_equal(o2.res.term_signal, SIGKILL);
    fx->destroy(fx);
    assert_int_equal(uv_loop_close(&loop), 0);
    outcome_free(&o);
    outcome_free(&o2);
}

int main(void) {
    /* As the engine does: a child that closes its stdin must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_captured),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_stdin_cat),
        cmocka_unit_test(test_stdin_not_read),
        cmocka_unit_test(test_stdin_default_devnull),
        cmocka_unit_test(test_stderr_separate),
        cmocka_unit_test(test_capture_truncation),
        cmocka_unit_test(test_file_truncation),
        cmocka_unit_test(test_file_error),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_term_ignored_killed),
        cmocka_unit_test(test_grandchild_dies),
        cmocka_unit_test(test_forgotten_background_swept),
        cmocka_unit_test(test_swept_term_ignored),
        cmocka_unit_test(test_escaped_pipe_holder_drained),
        cmocka_unit_test(test_cancel_soft),
        cmocka_unit_test(test_cancel_hard),
        cmocka_unit_test(test_cancel_after_exit),
        cmocka_unit_test(test_env_exact),
        cmocka_unit_test(test_cwd),
        cmocka_unit_test(test_child_starts_clean),
        cmocka_unit_test(test_path_of_child_env),
        cmocka_unit_test(test_fx_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
