/* spawn: start a program without fork(), and learn when it exits.
 *
 * libuv 1.44 spawns with fork(): each spawn copies the engine's page tables,
 * so it costs more the more memory the engine holds, and it blocks and
 * resets every signal on both sides. posix_spawn (a CLONE_VM|CLONE_VFORK
 * child in glibc) costs the same at 5 MiB or 1 GiB. What the child gets:
 *
 * - a new session and process group (setsid): the caller signals the group;
 * - an empty signal mask and every signal at its default disposition
 *   (an ignored SIGPIPE in the engine is not an ignored SIGPIPE in `tar`),
 *   but for glibc's own two real-time signals (32, 33), which its
 *   posix_spawn leaves ignored: a C library sets its handler for them
 *   before it uses them;
 * - fds 0-2 from the request (-1: /dev/null), and nothing above 2 (the
 *   engine opens its files close-on-exec; a close_range in the child makes
 *   sure of it for whatever a library opened without);
 * - the request's environment and working directory;
 * - argv[0] looked up in the PATH of the child's environment, as execvp
 *   does after libuv has set environ (so callers that pass env put a PATH
 *   in it; without PATH, /bin:/usr/bin).
 *
 * The exit is watched through a pidfd (Linux 5.3): it becomes readable
 * when the child exits, so the caller polls it on its loop; no SIGCHLD
 * handler is involved, and no other child is reaped by mistake. */
#ifndef BH_SPAWN_H
#define BH_SPAWN_H

#include <sys/types.h>

typedef struct {
    char *const *argv; /* NULL-terminated */
    char *const *env;  /* NULL: the engine's environment */
    const char *cwd;   /* NULL: the engine's */
    int fd[3];         /* the child's stdin, stdout, stderr; -1: /dev/null */
} bh_spawn_req;

/* Start the child. Returns 0 and its pid, or a negative errno (the
 * program's lookup or exec failed, or the cwd is missing): then no child
 * is left. */
int bh_spawn(const bh_spawn_req *req, pid_t *pid);

/* A pidfd for a child of ours not yet reaped (its pid cannot be reused
 * before that, so there is no race), or a negative errno. */
int bh_spawn_pidfd(pid_t pid);

/* Reap an exited child without blocking. Returns 1 with its status
 * (exit code, or the signal that ended it and 0), 0 if it still runs, or a
 * negative errno. pidfd may be -1: then pid alone is used. */
int bh_spawn_reap(pid_t pid, int pidfd, int *exit_code, int *term_signal);

#endif
