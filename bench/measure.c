/* Run a command and append one line to FILE: its wall time in ms
 * (CLOCK_MONOTONIC, from just before the fork to its reaping), its peak
 * RSS in KiB (ru_maxrss from wait4, the child alone) and its exit status.
 * GNU time would do the same but is one more package, and forks from a
 * bash wrapper would add their own noise to the wall time.
 *
 *   measure FILE COMMAND [ARGS...]     FILE gets "MS KIB STATUS\n"
 *
 * The command's own exit status is returned (128+N for signal N).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: measure FILE COMMAND [ARGS...]\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "a");
    if (!out) return perror(argv[1]), 2;
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) return perror("fork"), 2;
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) return perror("wait4"), 2;
    double ms = now_ms() - t0;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(out, "%.3f %ld %d\n", ms, ru.ru_maxrss, rc);
    return fclose(out) ? 2 : rc;
}
