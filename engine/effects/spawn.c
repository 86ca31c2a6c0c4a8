/* spawn: posix_spawn with the engine's guarantees, and pidfd reaping. See
 * spawn.h for what the child gets. */
#include "effects/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* PATH of the child's environment, or execvp's default. */
static const char *child_path(char *const *env) {
    const char *p = NULL;
    if (env == NULL) {
        p = getenv("PATH");
    } else {
        for (char *const *e = env; *e; e++)
            if (strncmp(*e, "PATH=", 5) == 0) p = *e + 5; /* the last one wins, as getenv */
    }
    return p ? p : "/bin:/usr/bin";
}

/* An executable regular file at path: 0, else a negative errno. */
static int runnable(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EACCES;
    return access(path, X_OK) == 0 ? 0 : -errno;
}

/* Where execvp would find name: the first directory of PATH that holds it
 * as a runnable file (an empty entry is the current directory). A name
 * with a slash is taken as it is. Returns 0 with out filled, or -ENOENT,
 * or -EACCES when only unrunnable ones were found. */
static int look_up(const char *name, char *const *env, char *out, size_t outsz) {
    if (strchr(name, '/')) {
        if (snprintf(out, outsz, "%s", name) >= (int)outsz) return -ENAMETOOLONG;
        return 0;
    }
    if (*name == '\0') return -ENOENT;
    int err = -ENOENT;
    for (const char *p = child_path(env);; p++) {
        const char *end = strchrnul(p, ':');
        int dlen = (int)(end - p);
        int n = dlen ? snprintf(out, outsz, "%.*s/%s", dlen, p, name)
                     : snprintf(out, outsz, "./%s", name);
        if (n > 0 && (size_t)n < outsz) {
            int r = runnable(out);
            if (r == 0) return 0;
            if (r == -EACCES) err = -EACCES; /* execvp goes on, and says so at the end */
        }
        if (*end == '\0') return err;
        p = end;
    }
}

/* The child's fds: 0-2 as asked, /dev/null where none is given, nothing
 * else. dup2 onto the same number clears close-on-exec too (glibc 2.29). */
static int file_actions(posix_spawn_file_actions_t *fa, const bh_spawn_req *req) {
    int r = posix_spawn_file_actions_init(fa);
    for (int i = 0; r == 0 && i < 3; i++)
        r = req->fd[i] >= 0
                ? posix_spawn_file_actions_adddup2(fa, req->fd[i], i)
                : posix_spawn_file_actions_addopen(fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
    if (r == 0 && req->cwd) r = posix_spawn_file_actions_addchdir_np(fa, req->cwd);
    if (r == 0) r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return r;
}

/* setsid, an empty mask, every signal at its default. */
static int attributes(posix_spawnattr_t *at) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int r = posix_spawnattr_init(at);
    if (r == 0) r = posix_spawnattr_setsigmask(at, &none);
    if (r == 0) r = posix_spawnattr_setsigdefault(at, &all);
    if (r == 0)
        r = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    return r;
}

int bh_spawn(const bh_spawn_req *req, pid_t *pid) {
    char path[PATH_MAX];
    int r = look_up(req->argv[0], req->env, path, sizeof path);
    if (r != 0) return r;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    r = file_actions(&fa, req);
    if (r == 0) r = attributes(&at);
    if (r == 0) {
        char *const *env = req->env ? req->env : environ;
        /* glibc waits until the child has exec'd or failed, and hands back
         * the exec's errno (a failed child is reaped before it returns). */
        r = posix_spawn(pid, path, &fa, &at, req->argv, env);
        posix_spawnattr_destroy(&at);
    }
    posix_spawn_file_actions_destroy(&fa);
    return -r;
}

int bh_spawn_pidfd(pid_t pid) {
    int fd = pidfd_open(pid, 0);
    return fd >= 0 ? fd : -errno;
}

int bh_spawn_reap(pid_t pid, int pidfd, int *exit_code, int *term_signal) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = pidfd >= 0 ? waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG)
                       : waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
    if (r != 0) return -errno;
    if (si.si_pid == 0) return 0; /* WNOHANG and still running */
    *exit_code = si.si_code == CLD_EXITED ? si.si_status : 0;
    *term_signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
    return 1;
}
