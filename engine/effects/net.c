#include "effects/net.h"

/* No type-checking macros: the calls below go through pointers. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/redact.h"

#define HEADERS_MAX ((size_t)64 << 10)

/* libcurl is opened at the first request, not linked: with its TLS, HTTP/2,
 * LDAP and Kerberos libraries mapped, every fork of a command (libuv 1.44
 * forks) cost about a quarter more, and most runs send no request (make
 * bench measured it). The headers still come from libcurl4-openssl-dev. */
static struct {
    int tried, ok;
    char why[300];
    CURLcode (*global_init)(long);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} C;

/* curl.h defines these as macros even without type checks (variadic
 * wrappers): ours replace them */
#undef curl_multi_setopt
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init C.global_init
#define curl_multi_init C.multi_init
#define curl_multi_setopt C.multi_setopt
#define curl_multi_assign C.multi_assign
#define curl_multi_socket_action C.multi_socket_action
#define curl_multi_info_read C.multi_info_read
#define curl_multi_add_handle C.multi_add_handle
#define curl_multi_remove_handle C.multi_remove_handle
#define curl_multi_cleanup C.multi_cleanup
#define curl_easy_init C.easy_init
#define curl_easy_setopt C.easy_setopt
#define curl_easy_getinfo C.easy_getinfo
#define curl_easy_cleanup C.easy_cleanup
#define curl_easy_strerror C.easy_strerror
#define curl_slist_append C.slist_append
#define curl_slist_free_all C.slist_free_all

/* Resolve one symbol into *slot; 0 when missing (why is set). */
static int sym(void *lib, const char *name, void *slot) {
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(C.why, sizeof C.why, "libcurl.so.4 has no %s", name);
        return 0;
    }
    memcpy(slot, &p, sizeof p); /* object pointer to function pointer, as POSIX allows */
    return 1;
}

static int load_curl(void) {
    if (C.tried) return C.ok;
    C.tried = 1;
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(C.why, sizeof C.why, "cannot load libcurl (Debian: libcurl4): %s", dlerror());
        return 0;
    }
    C.ok = sym(lib, "curl_global_init", &C.global_init) &&
           sym(lib, "curl_multi_init", &C.multi_init) &&
           sym(lib, "curl_multi_setopt", &C.multi_setopt) &&
           sym(lib, "curl_multi_assign", &C.multi_assign) &&
           sym(lib, "curl_multi_socket_action", &C.multi_socket_action) &&
           sym(lib, "curl_multi_info_read", &C.multi_info_read) &&
           sym(lib, "curl_multi_add_handle", &C.multi_add_handle) &&
           sym(lib, "curl_multi_remove_handle", &C.multi_remove_handle) &&
           sym(lib, "curl_multi_cleanup", &C.multi_cleanup) &&
           sym(lib, "curl_easy_init", &C.easy_init) &&
           sym(lib, "curl_easy_setopt", &C.easy_setopt) &&
           sym(lib, "curl_easy_getinfo", &C.easy_getinfo) &&
           sym(lib, "curl_easy_cleanup", &C.easy_cleanup) &&
           sym(lib, "curl_easy_strerror", &C.easy_strerror) &&
           sym(lib, "curl_slist_append", &C.slist_append) &&
           sym(lib, "curl_slist_free_all", &C.slist_free_all);
    /* never dlclose'd: handles and callbacks live as long as the process */
    if (C.ok && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(C.why, sizeof C.why, "libcurl would not initialise");
        C.ok = 0;
    }
    return C.ok;
}

const char *bh_net_unavailable(void) {
    return C.tried && !C.ok ? C.why : NULL;
}

typedef struct sockctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct bh_net *net;
    struct sockctx *next, *prev;
} sockctx;

struct bh_net {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sockctx *socks;
    bh_net_op *ops; /* in flight */
};

struct bh_net_op {
    bh_net *net;
    CURL *easy;
    bh_net_cb cb;
    void *ud;
    bh_net_result res;
    struct curl_slist *headers, *rcpt;
    char *body;
    size_t body_len, body_off;
    size_t capture_max, file_max, cap, hlen;
    int fd;
    char *out_path;
    crypto_hash_sha256_state sha;
    bh_redact_stream *mask;
    uint64_t start_ns;
    uv_timer_t later;             /* delivers a cancellation from the loop */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's own words: which certificate, how long */
    int delivered;
    bh_net_op *next, *prev;
};

/* Let go of libcurl's side of a transfer: its easy handle and lists. */
static void drop_transfer(bh_net_op *op) {
    if (op->easy) {
        curl_multi_remove_handle(op->net->multi, op->easy);
        curl_easy_cleanup(op->easy);
        op->easy = NULL;
    }
    curl_slist_free_all(op->headers);
    curl_slist_free_all(op->rcpt);
    op->headers = op->rcpt = NULL;
}

/* --- sockets and the timer ----------------------------------------------- */

static void sock_closed(uv_handle_t *h) {
    free(h->data);
}

static void drop_sock(bh_net *n, sockctx *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        n->socks = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, sock_closed);
}

static void check_done(bh_net *n);

static void on_poll(uv_poll_t *h, int status, int events) {
    sockctx *c = h->data;
    bh_net *n = c->net;
    curl_socket_t fd = c->fd; /* c may be gone once curl has acted */
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(n->multi, fd, flags, &running);
    check_done(n);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)e;
    bh_net *n = userp;
    sockctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c) {
            curl_multi_assign(n->multi, s, NULL);
            drop_sock(n, c);
        }
        return 0;
    }
    if (!c) {
        c = bh_util_xcalloc(1, sizeof *c);
        c->fd = s;
        c->net = n;
        if (uv_poll_init_socket(n->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->poll.data = c;
        c->next = n->socks;
        if (n->socks) n->socks->prev = c;
        n->socks = c;
        curl_multi_assign(n->multi, s, c);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t) {
    bh_net *n = t->data;
    int running;
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(n);
}

static int on_timer_set(CURLM *m, long ms, void *userp) {
    (void)m;
    bh_net *n = userp;
    if (ms < 0)
        uv_timer_stop(&n->timer);
    else
        uv_timer_start(&n->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

bh_net *bh_net_new(uv_loop_t *loop) {
    if (!load_curl()) return NULL; /* once, before any other curl call; one thread */
    bh_net *n = bh_util_xcalloc(1, sizeof *n);
    n->loop = loop;
    n->multi = curl_multi_init();
    if (!n->multi) abort();
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
    return n;
}

/* --- a request ------------------------------------------------------------ */

static void store(bh_net_op *op, const char *buf, size_t len) {
    bh_net_result *r = &op->res;
    r->total += len;
    if (r->body_len < op->capture_max) {
        size_t take = len < op->capture_max - r->body_len ? len : op->capture_max - r->body_len;
        if (r->body_len + take + 1 > op->cap) {
            size_t cap = op->cap * 2;
            if (cap < r->body_len + take + 1) cap = r->body_len + take + 1;
            r->body = realloc(r->body, cap);
            if (!r->body) abort();
            op->cap = cap;
        }
        memcpy(r->body + r->body_len, buf, take);
        r->body_len += take;
        r->body[r->body_len] = '\0';
    }
    if (op->out_path && r->stored < op->file_max) {
        size_t take = len;
        if (r->stored + take > op->file_max) take = (size_t)(op->file_max - r->stored);
        if (op->fd < 0) op->fd = open(op->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (op->fd >= 0 && bh_util_write_all(op->fd, buf, take) == 0) {
            crypto_hash_sha256_update(&op->sha, (const unsigned char *)buf, take);
            r->stored += take;
        }
    }
    if (r->total > op->capture_max || r->total > op->file_max) r->truncated = 1;
}

static void masked(const char *buf, size_t len, void *ud) {
    store(ud, buf, len);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
    bh_net_op *op = ud;
    size_t len = size * nmemb;
    if (op->mask)
        bh_redact_stream_feed(op->mask, ptr, len);
    else
        store(op, ptr, len);
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    bh_net_op *op = ud;
    size_t len = size * nmemb;
    if (op->hlen + len < HEADERS_MAX) {
        op->res.headers = realloc(op->res.headers, op->hlen + len + 1);
        if (!op->res.headers) abort();
        memcpy(op->res.headers + op->hlen, ptr, len);
        op->hlen += len;
        op->res.headers[op->hlen] = '\0';
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
    bh_net_op *op = ud;
    size_t room = size * nmemb, left = op->body_len - op->body_off;
    size_t take = left < room ? left : room;
    memcpy(buf, op->body + op->body_off, take);
    op->body_off += take;
    return take;
}

static void unlink_op(bh_net *n, bh_net_op *op) {
    if (op->prev)
        op->prev->next = op->next;
    else if (n->ops == op)
        n->ops = op->next;
    if (op->next) op->next->prev = op->prev;
    op->next = op->prev = NULL;
}

static void later_closed(uv_handle_t *h) {
    bh_net_op *op = h->data;
    free(op->res.headers);
    free(op->res.body);
    free(op->body);
    free(op->out_path);
    free(op);
}

/* Hand the result over, once, and free the operation. */
static void deliver(bh_net_op *op) {
    if (op->delivered) return;
    op->delivered = 1;
    if (op->mask) {
        bh_redact_stream *m = op->mask;
        op->mask = NULL;
        bh_redact_stream_end(m); /* what it held back */
    }
    if (op->fd >= 0) {
        if (op->res.stored > 0 && fdatasync(op->fd) != 0 && !op->res.failed) {
            op->res.failed = 1;
            snprintf(op->res.error, sizeof op->res.error, "cannot store the response: %s",
                     strerror(errno));
        }
        close(op->fd);
        op->fd = -1;
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&op->sha, digest);
    bh_util_digest_hex(digest, op->res.sha256);
    op->res.duration_ms = (double)(uv_hrtime() - op->start_ns) / 1e6;
    drop_transfer(op);
    unlink_op(op->net, op);
    op->cb(&op->res, op->ud);
    uv_close((uv_handle_t *)&op->later, later_closed);
}

/* Did libcurl get as far as sending the request? Before that a failure
 * (no route, refused, a certificate) means nothing reached the server. */
static int began_transfer(bh_net_op *op) {
    curl_off_t t = 0;
    return curl_easy_getinfo(op->easy, CURLINFO_PRETRANSFER_TIME_T, &t) == CURLE_OK && t > 0;
}

static void finish(bh_net_op *op, CURLcode code) {
    bh_net_result *r = &op->res;
    r->sent = began_transfer(op);
    long status = 0;
    curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    const char *ct = NULL;
    if (curl_easy_getinfo(op->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r->content_type, sizeof r->content_type, "%s", ct);
    if (code != CURLE_OK) {
        r->failed = 1;
        r->timed_out = code == CURLE_OPERATION_TIMEDOUT;
        snprintf(r->error, sizeof r->error, "%s",
                 op->errbuf[0] ? op->errbuf : curl_easy_strerror(code));
    }
    deliver(op);
}

static void check_done(bh_net *n) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(n->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        bh_net_op *op = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&op);
        if (op) finish(op, m->data.result);
    }
}

static void later_fired(uv_timer_t *t) {
    deliver(t->data);
}

static bh_net_op *op_new(bh_net *n, CURL *e, const bh_net_req *req, bh_net_cb cb, void *ud) {
    bh_net_op *op = bh_util_xcalloc(1, sizeof *op);
    op->net = n;
    op->easy = e;
    op->cb = cb;
    op->ud = ud;
    op->fd = -1;
    op->capture_max = req->capture_max ? req->capture_max : (1u << 20);
    op->file_max = req->file_max ? req->file_max : ((size_t)64 << 20);
    op->out_path = req->out_path ? bh_util_xstrdup(req->out_path) : NULL;
    op->cap = 1;
    op->res.body = bh_util_xcalloc(1, 1);
    op->res.headers = bh_util_xcalloc(1, 1);
    crypto_hash_sha256_init(&op->sha);
    if (bh_redact_count(req->redact) > 0) op->mask = bh_redact_stream_new(req->redact, masked, op);
    uv_timer_init(n->loop, &op->later);
    op->later.data = op;
    op->start_ns = uv_hrtime();
    if (req->body) {
        op->body = bh_util_xmalloc(req->body_len ? req->body_len : 1);
        memcpy(op->body, req->body, req->body_len);
        op->body_len = req->body_len;
    }
    return op;
}

/* What every kind of request gets: TLS verification and a timeout (net.h's
 * safe defaults), the callbacks that store the response, and the header
 * list (only HTTP sends it). */
static void set_common_options(bh_net_op *op, const bh_net_req *req) {
    CURL *e = op->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, op);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L); /* no idle sockets left behind */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, op->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
    if (req->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bulkhead/" BH_VERSION);
    for (const char *const *h = req->headers; h && *h; h++)
        op->headers = curl_slist_append(op->headers, *h);
}

static void set_http_options(bh_net_op *op, const bh_net_req *req) {
    CURL *e = op->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    if (op->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)op->body_len);
    }
    if (req->method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->method && strcmp(req->method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (op->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
}

static void set_mail_options(bh_net_op *op, const bh_net_req *req) {
    CURL *e = op->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, req->mail_from ? req->mail_from : "");
    for (const char *const *r = req->mail_rcpt; r && *r; r++)
        op->rcpt = curl_slist_append(op->rcpt, *r);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, op->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, op);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)op->body_len);
    /* A login is never sent in the clear: with credentials, smtp://
     * must upgrade with STARTTLS or the request fails. */
    if (req->starttls || req->username || req->password)
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (req->username) curl_easy_setopt(e, CURLOPT_USERNAME, req->username);
    if (req->password) curl_easy_setopt(e, CURLOPT_PASSWORD, req->password);
}

/* Returns the URL it built: the caller frees it once the handle is added. */
static char *set_connect_options(bh_net_op *op, const bh_net_req *req) {
    CURL *e = op->easy;
    /* a TCP connect and nothing more: telnet:// is only the vehicle */
    char *url = bh_util_asprintf("telnet://%s", req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "telnet");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    return url;
}

/* The multi handle would not take the transfer: free the operation without
 * a callback (bh_net_start reports the error). */
static void drop_unstarted(bh_net_op *op) {
    drop_transfer(op); /* removing a handle never added is a no-op */
    if (op->mask) bh_redact_stream_end(op->mask);
    op->delivered = 1;
    uv_close((uv_handle_t *)&op->later, later_closed);
}

int bh_net_start(bh_net *n, const bh_net_req *req, bh_net_cb cb, void *ud, bh_net_op **out) {
    *out = NULL;
    if (!req->url || !(req->timeout_ms > 0)) return -EINVAL;
    CURL *e = curl_easy_init();
    if (!e) return -ENOMEM;
    bh_net_op *op = op_new(n, e, req, cb, ud);
    set_common_options(op, req);

    char *url = NULL;
    switch (req->kind) {
    case BH_NET_HTTP:
        set_http_options(op, req);
        break;
    case BH_NET_MAIL:
        set_mail_options(op, req);
        break;
    case BH_NET_CONNECT:
        url = set_connect_options(op, req);
        break;
    }
    CURLMcode mc = curl_multi_add_handle(n->multi, e);
    free(url);
    if (mc != CURLM_OK) {
        drop_unstarted(op);
        return -EIO;
    }
    op->next = n->ops;
    if (n->ops) n->ops->prev = op;
    n->ops = op;
    *out = op;
    return 0;
}

void bh_net_cancel(bh_net_op *op) {
    if (!op || op->delivered || op->res.cancelled) return;
    op->res.sent = op->easy && began_transfer(op);
    op->res.cancelled = 1;
    op->res.failed = 1;
    snprintf(op->res.error, sizeof op->res.error, "cancelled");
    drop_transfer(op);
    uv_timer_start(&op->later, later_fired, 0, 0); /* later, from the loop */
}

static void net_closed(uv_handle_t *h) {
    free(h->data);
}

void bh_net_close(bh_net *n) {
    if (!n) return;
    /* Nothing should be in flight when the run is over; if something is,
     * it is dropped without a callback (the run is gone). */
    while (n->ops) {
        bh_net_op *op = n->ops;
        unlink_op(n, op);
        drop_transfer(op);
        if (op->mask) bh_redact_stream_end(op->mask);
        if (op->fd >= 0) close(op->fd);
        op->delivered = 1;
        uv_close((uv_handle_t *)&op->later, later_closed);
    }
    curl_multi_cleanup(n->multi);
    while (n->socks)
        drop_sock(n, n->socks);
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, net_closed);
}
