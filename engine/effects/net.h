/* net: network requests on the libuv loop, through libcurl's multi-socket
 * interface: HTTP(S), mail over SMTP(S), and plain TCP connects (health
 * checks).
 *
 * libcurl never blocks the loop here: it tells us which sockets to watch
 * (uv_poll) and when to wake it (one uv_timer), and we tell it what
 * happened (curl_multi_socket_action). The engine starts no thread of its
 * own; note that Debian's libcurl resolves host names in a short-lived
 * resolver thread of its own (its threaded resolver), which never touches
 * the engine's state.
 *
 * Safe defaults: TLS peer and host verification on (off only when a step
 * says verify_tls = false, and the record says so), a timeout on every
 * request, only the protocol the request is for (no redirects to file://),
 * redirects not followed unless asked, response bodies capped.
 *
 * Contract, as for bh_exec: bh_net_start either fails at once (negative
 * errno, no callback) or returns 0 and calls cb exactly once, later, from
 * the loop; bh_net_cancel may be called any time before cb. */
#ifndef BH_NET_H
#define BH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/util.h"

typedef enum { BH_NET_HTTP, BH_NET_MAIL, BH_NET_CONNECT } bh_net_kind;

typedef struct {
    bh_net_kind kind;
    const char *url;            /* http(s)://, smtp(s)://, or host:port for CONNECT */
    const char *method;         /* HTTP: GET, POST, ... (default GET, or POST with a body) */
    const char *const *headers; /* "Name: value", NULL-terminated, or NULL */
    const char *body;           /* request body / mail message (RFC 5322), or NULL */
    size_t body_len;
    double timeout_ms;              /* whole request; must be > 0 */
    int insecure;                   /* do not verify the TLS peer (the step asked) */
    const char *ca_file;            /* extra CA bundle, or NULL */
    int follow;                     /* follow redirects (same protocol family only) */
    size_t capture_max;             /* response bytes kept in memory */
    size_t file_max;                /* response bytes written to out_path */
    const char *out_path;           /* response body file, or NULL */
    const struct bh_redact *redact; /* secrets masked in the response, or NULL */
    /* mail */
    const char *mail_from;
    const char *const *mail_rcpt; /* NULL-terminated */
    const char *username, *password;
    int starttls;                   /* smtp://: require STARTTLS */
    const struct cJSON *sim_script; /* dry run/drill: {status, body} to give back */
} bh_net_req;

typedef struct {
    long status; /* HTTP status, SMTP final code, 0 for a connect */
    int failed;  /* the transfer itself failed (error says why) */
    int timed_out, cancelled;
    int sent; /* the request reached the server (libcurl began the transfer) */
    char error[256];
    char *headers; /* response header block, NUL-terminated, never NULL */
    char *body;    /* first capture_max bytes, NUL-terminated, never NULL */
    size_t body_len;
    uint64_t total;  /* response bytes received */
    uint64_t stored; /* written to out_path */
    int truncated;
    char sha256[BH_SHA256_HEX_LEN + 1]; /* of the stored (masked) bytes */
    char content_type[128];
    double duration_ms;
} bh_net_result;

typedef struct bh_net bh_net;
typedef struct bh_net_op bh_net_op;
/* res is freed when the callback returns. */
typedef void (*bh_net_cb)(const bh_net_result *res, void *ud);

/* NULL when libcurl cannot be loaded (it is opened at the first request):
 * bh_net_unavailable() says why. */
bh_net *bh_net_new(uv_loop_t *loop);
const char *bh_net_unavailable(void);
/* Drop what is still in flight, without calling its callback (the run is
 * over: nothing should be), then free everything from close callbacks. */
void bh_net_close(bh_net *n);
int bh_net_start(bh_net *n, const bh_net_req *req, bh_net_cb cb, void *ud, bh_net_op **op);
void bh_net_cancel(bh_net_op *op);

#endif
