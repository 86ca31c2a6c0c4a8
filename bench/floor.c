/* The floor the engine is measured against: what a runbook of N sequential
 * /bin/true steps must do at the least, with nothing of the engine's own.
 * Each step: posix_spawn /bin/true with stdout and stderr on pipes read to
 * EOF (the engine captures a command's output, so reading it is part of the
 * floor), waitpid, one JSON line appended to a journal, fdatasync (the
 * engine's write-ahead record). It prints nothing: bench/measure times it.
 *
 *   floor N JOURNAL
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Read fd to EOF and close it; the output itself is thrown away. */
static void drain(int fd) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0)
        if (n < 0 && errno != EINTR) break;
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor N JOURNAL\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    int jfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (jfd < 0) {
        perror(argv[2]);
        return 1;
    }
    char *child_argv[] = {"/bin/true", NULL};
    for (long i = 1; i <= n; i++) {
        int out[2], err[2];
        if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return perror("pipe"), 1;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        pid_t pid;
        int rc = posix_spawn(&pid, child_argv[0], &fa, NULL, child_argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(out[1]);
        close(err[1]);
        if (rc) return fprintf(stderr, "posix_spawn: %d\n", rc), 1;
        drain(out[0]);
        drain(err[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR) return perror("waitpid"), 1;
        char line[128];
        int len = snprintf(line, sizeof line, "{\"step\":\"s%ld\",\"exit\":%d}\n", i,
                           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        if (write(jfd, line, (size_t)len) != len || fdatasync(jfd)) return perror("journal"), 1;
    }
    return close(jfd) ? 1 : 0;
}
