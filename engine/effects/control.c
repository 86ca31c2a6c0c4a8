#include "effects/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"

#define SOCK_NAME "control.sock"
#define MAX_REQUEST 65536

typedef struct conn conn;

struct bh_control {
    uv_pipe_t server;
    int dirfd;
    conn *conns; /* open connections: closed with the server */
    int handles; /* server + connections not yet closed */
    int stopped;
    bh_control_handler fn;
    void *ud;
};

struct conn {
    uv_pipe_t pipe;
    conn *next, *prev;
    bh_control *ctl;
    bh_control_peer peer;
    char *buf;
    size_t len;
    int answered;
};

/* The socket's address, through the folder's descriptor (see control.h). */
static void sock_addr(int dirfd, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/" SOCK_NAME, dirfd);
}

static void release(bh_control *ctl) {
    if (--ctl->handles == 0) {
        close(ctl->dirfd);
        free(ctl);
    }
}

static void conn_closed(uv_handle_t *h) {
    conn *c = h->data;
    bh_control *ctl = c->ctl;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->buf);
    free(c);
    release(ctl);
}

/* Every way a connection ends (answered, refused, the engine stopping). */
static void close_conn(conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void write_done(uv_write_t *w, int status) {
    (void)status;
    conn *c = w->data;
    free(w);
    close_conn(c);
}

static void answer(conn *c, cJSON *reply) {
    c->answered = 1;
    if (uv_is_closing((uv_handle_t *)&c->pipe)) {
        cJSON_Delete(reply);
        return;
    }
    char *text = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    size_t n = strlen(text);
    /* The write request and its buffer in one allocation. */
    uv_write_t *w = bh_util_xmalloc(sizeof *w + n + 1);
    char *copy = (char *)(w + 1);
    memcpy(copy, text, n + 1); /* with its NUL, replaced by the newline */
    copy[n] = '\n';
    free(text);
    w->data = c;
    uv_buf_t b = uv_buf_init(copy, (unsigned)(n + 1));
    if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, write_done) != 0) {
        free(w);
        close_conn(c);
    }
}

static cJSON *error_reply(const char *msg) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", 0);
    cJSON_AddStringToObject(r, "error", msg);
    return r;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    buf->base = bh_util_xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    conn *c = s->data;
    if (c->ctl->stopped) {
        free(buf->base);
        return;
    }
    if (n > 0 && !c->answered) {
        if (c->len + (size_t)n > MAX_REQUEST) {
            uv_read_stop(s);
            answer(c, error_reply("request too long"));
            free(buf->base);
            return;
        }
        c->buf = realloc(c->buf, c->len + (size_t)n + 1);
        if (!c->buf) abort();
        memcpy(c->buf + c->len, buf->base, (size_t)n);
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
    free(buf->base);
    if (c->answered) return;
    char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl || n < 0) {
        uv_read_stop(s);
        if (!c->buf) {
            close_conn(c);
            return;
        }
        if (nl) *nl = '\0';
        cJSON *req = cJSON_Parse(c->buf);
        if (!req || !cJSON_IsObject(req))
            answer(c, error_reply("the request is not a JSON object"));
        else {
            /* The handler may end the run, which stops the server: this
             * connection is answered, not dropped. */
            c->answered = 1;
            answer(c, c->ctl->fn(req, &c->peer, c->ctl->ud));
        }
        cJSON_Delete(req);
    }
}

static void on_connection(uv_stream_t *server, int status) {
    bh_control *ctl = server->data;
    if (status < 0 || ctl->stopped) return;
    conn *c = bh_util_xcalloc(1, sizeof *c);
    c->ctl = ctl;
    c->next = ctl->conns;
    if (ctl->conns) ctl->conns->prev = c;
    ctl->conns = c;
    ctl->handles++;
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        close_conn(c);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        /* The uid is who the caller is: without it a decision would count
         * for nobody (or, left at 0, for root). */
        answer(c, error_reply("the engine cannot tell who is calling (SO_PEERCRED failed)"));
        return;
    }
    c->peer.uid = cred.uid;
    c->peer.pid = cred.pid;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Members of the approvers group may pass through the run folder (not
 * list it) and use the socket. The socket is theirs first, the folder
 * last: until then they cannot reach it. */
static int open_to_group(int dirfd, gid_t group) {
    if (group == BH_CONTROL_NO_GROUP) return 0;
    if (fchownat(dirfd, SOCK_NAME, (uid_t)-1, group, 0) != 0 ||
        fchmodat(dirfd, SOCK_NAME, 0660, 0) != 0 || fchown(dirfd, (uid_t)-1, group) != 0 ||
        fchmod(dirfd, 0710) != 0)
        return -errno;
    return 0;
}

int bh_control_start(uv_loop_t *loop, const char *dir, gid_t group, bh_control_handler fn, void *ud,
                     bh_control **out) {
    *out = NULL;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return -errno;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = -errno;
        close(dirfd);
        return err;
    }
    struct sockaddr_un a;
    sock_addr(dirfd, &a);
    unlinkat(dirfd, SOCK_NAME, 0); /* a stale socket of an engine that died */
    /* Born 0600: a resumed run's folder may already let a group through,
     * and no one else may connect in the moment before the chmod. */
    mode_t mask = umask(0177);
    int bound = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(mask);
    int err = 0;
    if (bound != 0 || fchmodat(dirfd, SOCK_NAME, 0600, 0) != 0 || listen(fd, 16) != 0) err = -errno;
    if (err == 0) err = open_to_group(dirfd, group);
    if (err != 0) {
        close(fd);
        unlinkat(dirfd, SOCK_NAME, 0);
        close(dirfd);
        return err;
    }
    bh_control *c = bh_util_xcalloc(1, sizeof *c);
    c->dirfd = dirfd;
    c->fn = fn;
    c->ud = ud;
    c->handles = 1;
    uv_pipe_init(loop, &c->server, 0);
    c->server.data = c;
    err = uv_pipe_open(&c->server, fd);
    if (err == 0) err = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
    if (err != 0) {
        bh_control_stop(c);
        return err;
    }
    *out = c;
    return 0;
}

static void server_closed(uv_handle_t *h) {
    release(h->data);
}

void bh_control_stop(bh_control *c) {
    if (!c) return;
    c->stopped = 1;
    unlinkat(c->dirfd, SOCK_NAME, 0);
    /* A client still connected must not keep the run alive, nor reach a
     * handler whose run is gone. */
    for (conn *k = c->conns; k; k = k->next)
        if (!k->answered) close_conn(k); /* an answer being written closes itself */
    uv_close((uv_handle_t *)&c->server, server_closed);
}

/* Wait for fd to be ready for events, within the deadline. */
static int wait_fd(int fd, short events, uint64_t deadline_ms) {
    for (;;) {
        int64_t left = (int64_t)deadline_ms - bh_util_now_ms();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return -errno;
    }
}

int bh_control_call(const char *dir, const cJSON *req, int timeout_ms, cJSON **reply) {
    *reply = NULL;
    /* O_PATH: a member of the approvers group may pass through the run
     * folder but not read it. */
    int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return -errno;
    struct sockaddr_un a;
    sock_addr(dirfd, &a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) err = -errno;
    close(dirfd);
    char *text = NULL;
    size_t len = 0;
    uint64_t deadline = (uint64_t)bh_util_now_ms() + (uint64_t)timeout_ms;
    if (err == 0) {
        char *line = cJSON_PrintUnformatted(req);
        size_t n = strlen(line);
        line = realloc(line, n + 2);
        if (!line) abort();
        line[n] = '\n';
        size_t off = 0;
        while (err == 0 && off < n + 1) {
            ssize_t w = write(fd, line + off, n + 1 - off);
            if (w < 0 && errno != EINTR)
                err = -errno;
            else if (w > 0)
                off += (size_t)w;
        }
        free(line);
    }
    while (err == 0) {
        err = wait_fd(fd, POLLIN, deadline);
        if (err) break;
        char chunk[4096];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) err = -errno;
        if (r <= 0) break;
        text = realloc(text, len + (size_t)r + 1);
        if (!text) abort();
        memcpy(text + len, chunk, (size_t)r);
        len += (size_t)r;
        text[len] = '\0';
        if (memchr(text, '\n', len)) break;
    }
    if (fd >= 0) close(fd);
    if (err == 0) {
        *reply = text ? cJSON_Parse(text) : NULL;
        if (!*reply) err = -EPROTO;
    }
    free(text);
    return err;
}

/* --- the approvers group ------------------------------------------------ */

static int is_member(gid_t gid) {
    if (getegid() == gid) return 1;
    int n = getgroups(0, NULL);
    if (n <= 0) return 0;
    gid_t *list = bh_util_xcalloc((size_t)n, sizeof *list);
    n = getgroups(n, list);
    int found = 0;
    for (int k = 0; k < n && !found; k++)
        found = list[k] == gid;
    free(list);
    return found;
}

/* May members of gid pass through this directory? The kernel uses the
 * group bits for a member when the directory is the group's, the other
 * bits when not (a member could be in the directory's group too; the
 * check cannot know every member's groups). */
static int group_passes(const struct stat *st, gid_t gid) {
    return st->st_gid == gid ? (st->st_mode & S_IXGRP) != 0 : (st->st_mode & S_IXOTH) != 0;
}

/* Append "PATH (mode 0700, owner root, group root)" to the list in why. */
static void add_blocker(char *why, size_t whylen, size_t *used, const char *path,
                        const struct stat *st) {
    const struct passwd *pw = getpwuid(st->st_uid);
    char owner[64], group[64];
    snprintf(owner, sizeof owner, "%s", pw ? pw->pw_name : "?");
    const struct group *gr = getgrgid(st->st_gid);
    snprintf(group, sizeof group, "%s", gr ? gr->gr_name : "?");
    if (*used < whylen)
        *used += (size_t)snprintf(why + *used, whylen - *used,
                                  "%s%s (mode %04o, owner %s, group %s)", *used ? ", " : "", path,
                                  (unsigned)(st->st_mode & 07777), owner, group);
}

static void check_passage(const char *path, gid_t gid, char *blockers, size_t len, size_t *used) {
    struct stat st;
    if (stat(path, &st) == 0 && !group_passes(&st, gid))
        add_blocker(blockers, len, used, path, &st);
}

int bh_control_check_group(const char *name, const char *dir, gid_t *gid, char *why,
                           size_t whylen) {
    const struct group *gr = getgrnam(name);
    if (!gr) {
        snprintf(why, whylen, "there is no group '%s' on this host (getent group lists them)",
                 name);
        return -1;
    }
    *gid = gr->gr_gid;
    if (geteuid() != 0 && !is_member(*gid)) {
        snprintf(why, whylen,
                 "you (uid %u) are not a member of group '%s', so the run folder cannot be "
                 "given to it",
                 (unsigned)geteuid(), name);
        return -1;
    }
    char *real = realpath(dir, NULL);
    if (!real) {
        snprintf(why, whylen, "cannot resolve %s: %s", dir, bh_util_strerror(-errno));
        return -1;
    }
    char blockers[1500] = "";
    size_t used = 0;
    size_t n = strlen(real);
    check_passage("/", *gid, blockers, sizeof blockers, &used);
    /* then "/a", "/a/b", ... down to the folder itself */
    for (size_t k = 1; n > 1 && k <= n; k++) {
        if (real[k] != '/' && real[k] != '\0') continue;
        char save = real[k];
        real[k] = '\0';
        check_passage(real, *gid, blockers, sizeof blockers, &used);
        real[k] = save;
    }
    free(real);
    if (used == 0) return 0;
    snprintf(why, whylen,
             "members of group '%s' could not reach the control socket: they may not pass %s. "
             "Let them through each (chgrp %s DIR && chmod g+x DIR, or chmod o+x DIR), or use a "
             "--state-dir they can reach",
             name, blockers, name);
    return -1;
}
