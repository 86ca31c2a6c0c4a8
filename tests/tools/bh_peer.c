/* bh_peer: a network peer for the end-to-end tests, on loopback only.
 *
 *   bh_peer MODE PORTFILE LOGFILE
 *
 * Binds 127.0.0.1 on a free port, writes the port number to PORTFILE, then
 * serves until killed, appending to LOGFILE what each connection sent:
 *   silent  accept, record "connect" and every byte received, answer nothing
 *           (a dry run must leave this log empty)
 * Written for the tests so that they need nothing beyond the C compiler the
 * build already uses. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static FILE *logf;

static void serve_silent(int c) {
    fprintf(logf, "connect\n");
    fflush(logf);
    char buf[4096];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, logf);
        fflush(logf);
    }
}

int main(int argc, char **argv) {
    if (argc != 4 || strcmp(argv[1], "silent") != 0) {
        fprintf(stderr, "usage: bh_peer silent PORTFILE LOGFILE\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    logf = fopen(argv[3], "a");
    if (!logf) return 1;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        perror("bh_peer");
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *pf = fopen(tmp, "w");
    if (!pf) return 1;
    fprintf(pf, "%d\n", ntohs(a.sin_port));
    fclose(pf);
    rename(tmp, argv[2]); /* the port file appears whole */
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        serve_silent(c);
        close(c);
    }
}
