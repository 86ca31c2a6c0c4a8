/* bh_peer: a network peer for the end-to-end tests, on loopback only.
 *
 *   bh_peer MODE PORTFILE LOG [STATUS]
 *
 * Binds 127.0.0.1 on a free port (BH_PEER_ADDR and BH_PEER_PORT choose
 * others, for network namespaces the test made), writes the port number to PORTFILE (whole,
 * by rename), then serves one connection at a time until killed:
 *   silent  records "connect" and every byte received to LOG, answers
 *           nothing (a dry run must leave LOG empty)
 *   http    reads one HTTP/1.1 request per connection, writes its request
 *           line and headers to LOG.N.head and its body to LOG.N.body
 *           (N = 1, 2, ...), appends "N METHOD PATH" to LOG, answers STATUS
 *           (default 200) with a small JSON body
 *   smtp    speaks enough SMTP for libcurl: records each message to
 *           LOG.N.mail (the envelope as "MAIL FROM:..." and "RCPT TO:..."
 *           lines, a blank line, then the data as received), appends
 *           "N mail" to LOG
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *logpath;
static int status_code = 200;
static int counter;

static void append_log(const char *fmt, const char *a, const char *b) {
    FILE *f = fopen(logpath, "a");
    if (!f) return;
    fprintf(f, fmt, counter, a, b);
    fclose(f);
}

static void write_file(const char *suffix, const char *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%d.%s", logpath, counter, suffix);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static void serve_silent(int c) {
    FILE *f = fopen(logpath, "a");
    if (!f) return;
    fprintf(f, "connect\n");
    fflush(f);
    char buf[4096];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, f);
        fflush(f);
    }
    fclose(f);
}

/* Read until the buffer holds `need` (or the peer closes). */
static size_t fill(int c, char **buf, size_t *len, size_t *cap, size_t need) {
    while (*len < need) {
        if (*len + 4096 > *cap) {
            *cap = (*len + 4096) * 2;
            *buf = realloc(*buf, *cap);
            if (!*buf) exit(1);
        }
        ssize_t n = read(c, *buf + *len, *cap - *len - 1);
        if (n <= 0) break;
        *len += (size_t)n;
        (*buf)[*len] = '\0';
    }
    return *len;
}

/* Read until the buffer holds delim: a pointer to it, or NULL when the
 * peer closed first. */
static char *fill_until(int c, char **buf, size_t *len, size_t *cap, const char *delim) {
    char *at;
    while (!(at = strstr(*buf, delim))) {
        size_t before = *len;
        fill(c, buf, len, cap, *len + 1);
        if (*len == before) return NULL;
    }
    return at;
}

static void serve_http(int c) {
    size_t len = 0, cap = 8192;
    char *buf = calloc(1, cap);
    char *end = fill_until(c, &buf, &len, &cap, "\r\n\r\n");
    if (!end) {
        free(buf);
        return;
    }
    size_t head = (size_t)(end - buf) + 4;
    size_t body = 0;
    for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0) body = strtoul(h + 17, NULL, 10);
    fill(c, &buf, &len, &cap, head + body);
    counter++;
    write_file("head", buf, head - 4);
    write_file("body", buf + head, len > head ? len - head : 0);
    char method[16] = "", path[1024] = "";
    sscanf(buf, "%15s %1023s", method, path);
    append_log("%d %s %s\n", method, path);
    char resp[256];
    const char *payload = "{\"ok\":true}";
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status_code, strlen(payload), payload);
    if (write(c, resp, (size_t)n) < 0) perror("bh_peer");
    free(buf);
}

static int say(int c, const char *s) {
    return write(c, s, strlen(s)) < 0 ? -1 : 0;
}

static void serve_smtp(int c) {
    size_t len = 0, cap = 8192;
    char *buf = calloc(1, cap);
    size_t envcap = 4096, envlen = 0;
    char *env = calloc(1, envcap);
    say(c, "220 bh_peer ESMTP\r\n");
    for (;;) {
        char *nl = fill_until(c, &buf, &len, &cap, "\r\n");
        if (!nl) goto done;
        *nl = '\0';
        char line[1024];
        snprintf(line, sizeof line, "%s", buf);
        size_t used = (size_t)(nl - buf) + 2;
        memmove(buf, buf + used, len - used + 1);
        len -= used;
        if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
            say(c, "250-bh_peer\r\n250 8BITMIME\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0 ||
                   strncasecmp(line, "RCPT TO:", 8) == 0) {
            size_t l = strlen(line);
            if (envlen + l + 2 < envcap) {
                memcpy(env + envlen, line, l);
                envlen += l;
                env[envlen++] = '\n';
            }
            say(c, "250 OK\r\n");
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            say(c, "354 go on\r\n");
            char *stop = fill_until(c, &buf, &len, &cap, "\r\n.\r\n");
            if (!stop) goto done;
            counter++;
            size_t dlen = (size_t)(stop - buf) + 2;
            char *msg = malloc(envlen + 1 + dlen);
            memcpy(msg, env, envlen);
            msg[envlen] = '\n';
            memcpy(msg + envlen + 1, buf, dlen);
            write_file("mail", msg, envlen + 1 + dlen);
            free(msg);
            append_log("%d %s%s\n", "mail", "");
            size_t used2 = (size_t)(stop - buf) + 5;
            memmove(buf, buf + used2, len - used2 + 1);
            len -= used2;
            envlen = 0;
            say(c, "250 queued\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            say(c, "221 bye\r\n");
            break;
        } else if (strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0) {
            envlen = 0;
            say(c, "250 OK\r\n");
        } else {
            say(c, "502 not here\r\n");
        }
    }
done:
    free(buf);
    free(env);
}

int main(int argc, char **argv) {
    void (*serve)(int) = NULL;
    if (argc >= 4)
        serve = strcmp(argv[1], "http") == 0     ? serve_http
                : strcmp(argv[1], "smtp") == 0   ? serve_smtp
                : strcmp(argv[1], "silent") == 0 ? serve_silent
                                                 : NULL;
    if (!serve) {
        fprintf(stderr, "usage: bh_peer silent|http|smtp PORTFILE LOG [STATUS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    logpath = argv[3];
    if (argc > 4) status_code = atoi(argv[4]);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* BH_PEER_ADDR / BH_PEER_PORT: inside a network namespace of the test's
     * own, listen elsewhere than 127.0.0.1:random */
    if (getenv("BH_PEER_ADDR")) inet_pton(AF_INET, getenv("BH_PEER_ADDR"), &a.sin_addr);
    if (getenv("BH_PEER_PORT")) a.sin_port = htons((unsigned short)atoi(getenv("BH_PEER_PORT")));
    socklen_t alen = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
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
        serve(c);
        close(c);
    }
}
