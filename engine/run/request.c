#include "run/request.h"
#include "run/run.h"

#include "journal/schema.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "run/attempt.h"
#include "base/json.h"
#include "load/sim.h"
#include "base/util.h"

#define CAPTURE_MAX ((size_t)1 << 20)
#define FILE_MAX ((size_t)64 << 20)
#define RECORD_BODY_MAX ((size_t)64 << 10)
#define DEFAULT_TIMEOUT_MS 30000.0

/* What the callback needs once the request is done. */
typedef struct {
    bh_attempt *a;
    bh_net_kind kind;
    int n, check;
    int acts;       /* it may change something at the other end (not GET, not a connect) */
    char *what;     /* "POST https://..." for messages */
    char *out_path; /* where an HTTP response's body is kept */
} pending;

/* Headers whose values are credentials: never in the record, whatever the
 * secrets registered. */
static int sensitive_header(const char *name, size_t len) {
    static const char *const names[] = {"authorization", "proxy-authorization", "cookie",
                                        "x-api-key",     "x-auth-token",        NULL};
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0) return 1;
    return 0;
}

static const char *kind_name(bh_net_kind k) {
    return k == BH_NET_HTTP ? "http" : k == BH_NET_MAIL ? "mail" : "connect";
}

/* --- options -------------------------------------------------------------- */

static const char *opt_str(lua_State *L, int t, const char *k, const char *what) {
    int ty = lua_getfield(L, t, k);
    const char *v = NULL;
    if (ty == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: '%s' must be a string", what, k);
    lua_pop(L, 1); /* the table still holds it */
    return v;
}

static int opt_bool(lua_State *L, int t, const char *k, int def) {
    int ty = lua_getfield(L, t, k);
    int v = ty == LUA_TNIL ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static double opt_timeout(lua_State *L, int t, const char *what) {
    double ms = DEFAULT_TIMEOUT_MS;
    int ty = lua_getfield(L, t, "timeout");
    if (ty != LUA_TNIL &&
        (bh_util_parse_duration(lua_tostring(L, -1) ? lua_tostring(L, -1) : "", &ms) != 0 ||
         ms <= 0))
        luaL_error(L, "%s: 'timeout' must be a positive duration such as \"10s\"", what);
    lua_pop(L, 1);
    return ms;
}

static void check_fields(lua_State *L, int t, const char *const *known, const char *what) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) luaL_error(L, "%s: unknown field '%s'", what, k);
    }
}

/* headers = { ["Name"] = "value", ... } (or a list of "Name: value"): only
 * strings, no line breaks. Raises on misuse; allocates nothing. */
static void check_headers(lua_State *L, int t, const char *what) {
    int ty = lua_getfield(L, t, "headers");
    if (ty == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int kt = lua_type(L, -2), vt = lua_type(L, -1);
            const char *v = vt == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            const char *k = kt == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!v || (kt != LUA_TSTRING && kt != LUA_TNUMBER) || strpbrk(v, "\r\n") ||
                (k && (strpbrk(k, "\r\n:") || !*k)) || (!k && !strchr(v, ':')))
                luaL_error(L, "%s: headers are name = value strings (no line breaks)", what);
            lua_pop(L, 1);
        }
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "%s: 'headers' must be a table", what);
    }
    lua_pop(L, 1);
}

/* The checked headers into a NULL-terminated "Name: value" list, and into
 * the record (credentials redacted). *has_ct: a Content-Type was given.
 * Raises only on out-of-memory inside Lua, which cannot happen here (no
 * Lua allocation). */
static char **collect_headers(lua_State *L, int t, cJSON *rec_headers, int *has_ct) {
    size_t cap = 8, n = 0;
    char **v = bh_util_xcalloc(cap, sizeof *v);
    *has_ct = 0;
    if (lua_getfield(L, t, "headers") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            char *line = lua_type(L, -2) == LUA_TSTRING
                             ? bh_util_asprintf("%s: %s", lua_tostring(L, -2), lua_tostring(L, -1))
                             : bh_util_xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
            if (n + 1 >= cap) {
                cap *= 2;
                v = realloc(v, cap * sizeof *v);
                if (!v) abort();
            }
            v[n++] = line;
            size_t nlen = (size_t)(strchr(line, ':') - line);
            if (nlen == 12 && strncasecmp(line, "content-type", 12) == 0) *has_ct = 1;
            cJSON *h = cJSON_CreateObject();
            char *name = bh_util_xstrdup(line);
            name[nlen] = '\0';
            cJSON_AddStringToObject(h, "name", name);
            free(name);
            const char *value = line + nlen + 1;
            while (*value == ' ')
                value++;
            cJSON_AddStringToObject(h, "value",
                                    sensitive_header(line, nlen) ? "[redacted]" : value);
            cJSON_AddItemToArray(rec_headers, h);
        }
    }
    lua_pop(L, 1);
    v[n] = NULL;
    return v;
}

static void free_list(char **v) {
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* --- the record and the result --------------------------------------------- */

static cJSON *stream_json(const bh_net_result *res, const char *path, const char *rundir) {
    cJSON *o = cJSON_CreateObject();
    if (res->stored > 0 && path)
        cJSON_AddStringToObject(o, "path", bh_util_relative_to(path, rundir));
    cJSON_AddNumberToObject(o, "size", (double)res->total);
    cJSON_AddStringToObject(o, "sha256", res->sha256);
    cJSON_AddBoolToObject(o, "truncated", res->truncated);
    return o;
}

typedef struct {
    bh_attempt *a;
    const bh_net_result *res;
    bh_net_kind kind;
    int ok;
} pushed;

/* The result table, on the step's coroutine (protected: it allocates). */
static int push_result(lua_State *L) {
    pushed *p = lua_touserdata(L, 1);
    const bh_net_result *r = p->res;
    lua_State *co = p->a->co;
    bh_luax_checkstack(co, 6);
    lua_createtable(co, 0, 10);
    lua_pushboolean(co, p->ok);
    lua_setfield(co, -2, "ok");
    lua_pushinteger(co, r->status);
    lua_setfield(co, -2, "status");
    lua_pushnumber(co, r->duration_ms);
    lua_setfield(co, -2, "duration_ms");
    if (r->failed) {
        lua_pushstring(co, r->error);
        lua_setfield(co, -2, "error");
    }
    if (p->kind != BH_NET_HTTP) return 0;
    lua_pushlstring(co, r->body, r->body_len);
    lua_setfield(co, -2, "body");
    lua_pushboolean(co, r->truncated);
    lua_setfield(co, -2, "truncated");
    lua_newtable(co); /* headers: lower-case names */
    const char *line = r->headers ? r->headers : "";
    while (*line) {
        const char *end = strpbrk(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *colon = memchr(line, ':', len);
        if (colon && colon > line) {
            char name[128];
            size_t nl =
                (size_t)(colon - line) < sizeof name - 1 ? (size_t)(colon - line) : sizeof name - 1;
            for (size_t i = 0; i < nl; i++)
                name[i] = (char)tolower((unsigned char)line[i]);
            name[nl] = '\0';
            const char *v = colon + 1;
            while (v < line + len && *v == ' ')
                v++;
            lua_pushlstring(co, v, (size_t)(line + len - v));
            lua_setfield(co, -2, name);
        }
        line += len;
        while (*line == '\r' || *line == '\n')
            line++;
    }
    lua_setfield(co, -2, "headers");
    if (strstr(r->content_type, "json") && !r->truncated) {
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        if (j) {
            bh_luax_push_json(co, j);
            cJSON_Delete(j);
            lua_setfield(co, -2, "json");
        }
    }
    return 0;
}

/* An answer (any status) is definite: the server said what it did. No
 * answer after the request went out (a timeout, a reset, cancelled) is
 * not: a notification may have been delivered, a change made. */
static bh_effect request_effect(const bh_net_result *res, int ok) {
    if (ok) return BH_EFFECT_DONE;
    if (res->failed && res->sent) return BH_EFFECT_UNSURE;
    return BH_EFFECT_NONE;
}

static void request_done(const bh_net_result *res, void *ud) {
    pending *p = ud;
    bh_attempt *a = p->a;
    bh_run *run = a->run;
    cJSON *rec = bh_run_record(BH_REC_REQUEST_END, a);
    cJSON_AddStringToObject(rec, "kind", kind_name(p->kind));
    cJSON_AddNumberToObject(rec, "n", p->n);
    if (p->kind != BH_NET_CONNECT) cJSON_AddNumberToObject(rec, "status", (double)res->status);
    int ok =
        !res->failed && (p->kind == BH_NET_CONNECT || (res->status >= 200 && res->status < 400));
    cJSON_AddBoolToObject(rec, "ok", ok);
    if (res->failed) cJSON_AddStringToObject(rec, "error", res->error);
    if (res->timed_out) cJSON_AddBoolToObject(rec, "timed_out", 1);
    if (res->cancelled) cJSON_AddBoolToObject(rec, "cancelled", 1);
    cJSON_AddNumberToObject(rec, "duration_ms", res->duration_ms);
    if (p->kind == BH_NET_HTTP)
        cJSON_AddItemToObject(rec, "response", stream_json(res, p->out_path, run->dir));
    if (run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1);
    bh_effect effect = request_effect(res, ok);
    if (p->acts && effect == BH_EFFECT_UNSURE) cJSON_AddBoolToObject(rec, "in_doubt", 1);
    bh_run_append(run, rec);
    char why[300];
    snprintf(why, sizeof why,
             effect == BH_EFFECT_DONE ? "'%s' had been answered"
                                      : "'%s' was sent but got no answer",
             p->what ? p->what : "request");
    bh_run_effect_ended(a, p->acts, effect, why);
    free(p->out_path);
    a->waiting = BH_WAIT_NONE;
    a->request = NULL;
    if (a->timed_out || a->cancelled || a->over_budget) {
        free(p->what);
        free(p);
        a->run->sched->abandon(a);
        return;
    }
    pushed pp = {.a = a, .res = res, .kind = p->kind, .ok = ok};
    if (bh_run_protected(run, push_result, &pp) != LUA_OK) {
        free(p->what);
        free(p);
        a->run->sched->fail(
            a, "memory",
            "the request finished but its result could not be handed to the step: the "
            "runbook's Lua memory is exhausted");
        return;
    }
    /* The continuation learns how it went from the result table. */
    a->request_what = p->what;
    a->request_check = p->check;
    a->request_kind = (int)p->kind;
    free(p);
    a->run->sched->resume(a, 1);
}

/* After the resume: the result table is on top; raise if asked to check. */
static int request_k(lua_State *L, int status, lua_KContext kctx) {
    (void)status;
    (void)kctx;
    bh_attempt *a = bh_attempt_current(L);
    if (!a) return luaL_error(L, "ctx request: this step has already ended");
    char *what = a->request_what;
    a->request_what = NULL;
    int check = a->request_check;
    bh_net_kind kind = (bh_net_kind)a->request_kind;
    lua_getfield(L, -1, "ok");
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok || !check) {
        free(what);
        return 1;
    }
    int res = lua_gettop(L);
    char msg[600];
    lua_getfield(L, res, "error");
    const char *err = lua_tostring(L, -1);
    lua_getfield(L, res, "status");
    long st = (long)lua_tointeger(L, -1);
    lua_pop(L, 2);
    const char *code;
    if (err) {
        code = kind == BH_NET_HTTP   ? "http_failed"
               : kind == BH_NET_MAIL ? "mail_failed"
                                     : "connect_failed";
        snprintf(msg, sizeof msg, "%s failed: %s", what ? what : "request", err);
    } else {
        code = kind == BH_NET_HTTP ? "http_status" : "mail_failed";
        snprintf(msg, sizeof msg, "%s answered %ld", what ? what : "request", st);
    }
    free(what);
    lua_newtable(L);
    lua_pushinteger(L, st);
    lua_setfield(L, -2, "status");
    lua_getfield(L, res, "body");
    lua_setfield(L, -2, "body");
    return bh_luax_raise(L, code, "%s", msg);
}

/* Record what is about to be sent and start it. Returns 0 (the caller
 * frees its buffers and yields) or a negative errno (the caller frees and
 * raises). Never raises itself: whatever the caller allocated would leak. */
static int start(bh_attempt *a, bh_net_req *req, cJSON *rec, int check, char *what) {
    /* GET, HEAD and OPTIONS only ask; a connect only looks */
    const char *m = req->method ? req->method : "";
    int acts =
        req->kind == BH_NET_MAIL || (req->kind == BH_NET_HTTP && strcasecmp(m, "GET") != 0 &&
                                     strcasecmp(m, "HEAD") != 0 && strcasecmp(m, "OPTIONS") != 0);
    bh_run *run = a->run;
    int n = ++a->execs;
    char *out_path = req->kind == BH_NET_HTTP ? bh_attempt_out_path(a, n, "response") : NULL;
    req->out_path = out_path;
    req->capture_max = CAPTURE_MAX;
    req->file_max = FILE_MAX;
    req->redact = bh_keyring_mask(run->rb->keyring);
    if (run->opts->sim) req->sim_script = bh_sim_script(run->opts->sim, a->step);
    cJSON_AddNumberToObject(rec, "n", n);
    cJSON_AddNumberToObject(rec, "timeout_ms", req->timeout_ms);
    if (req->insecure) cJSON_AddBoolToObject(rec, "verify_tls", 0);
    if (run->opts->sim) cJSON_AddBoolToObject(rec, "simulated", 1); /* nothing was sent */
    pending *p = bh_util_xcalloc(1, sizeof *p);
    p->a = a;
    p->kind = req->kind;
    p->n = n;
    p->check = check;
    p->acts = acts;
    p->what = what;
    p->out_path = out_path;
    bh_fx_op *op = NULL;
    /* Everything the request needs is copied by now (libcurl copies the
     * URL, headers and addresses; net.c the body): the caller may free. */
    int err = run->fx->request(run->fx, req, request_done, p, &op);
    if (err < 0) {
        cJSON_Delete(rec);
        free(out_path);
        free(p); /* what stays with the caller, for the message */
        return err;
    }
    a->request = op;
    a->waiting = BH_WAIT_REQUEST;
    bh_run_append(run, rec);
    return 0;
}

/* After start(): yield, or raise why it could not start. what is freed. */
static int yield_or_raise(lua_State *L, int err, char *what) {
    if (err == 0) return lua_yieldk(L, 0, 0, request_k);
    char msg[400];
    const char *why = err == -ELIBACC ? bh_net_unavailable() : NULL;
    snprintf(msg, sizeof msg, "cannot start %s: %s", what, why ? why : strerror(-err));
    free(what);
    lua_newtable(L);
    return bh_luax_raise(L, "request_failed", "%s", msg);
}

static void record_body(cJSON *rec, const char *body, size_t len) {
    if (!body) return;
    char hex[BH_SHA256_HEX_LEN + 1];
    bh_util_sha256_hex(body, len, hex);
    cJSON_AddNumberToObject(rec, "body_size", (double)len);
    cJSON_AddStringToObject(rec, "body_sha256", hex);
    size_t keep = len < RECORD_BODY_MAX ? len : RECORD_BODY_MAX;
    /* as text, every byte of it (json.h); secrets masked on append */
    cJSON_AddItemToObject(rec, "body", bh_json_string(body, keep));
    if (keep < len) cJSON_AddBoolToObject(rec, "body_truncated", 1);
}

/* --- ctx.http -------------------------------------------------------------- */

/* A simulation without the secret gets its stand-in "<secret:NAME>" where a
 * webhook URL would be: nothing is sent, so it passes. */
static int standin(const bh_attempt *a, const char *url) {
    return a->run->opts->sim && url && strncmp(url, "<secret:", 8) == 0;
}

int bh_request_http(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "http");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const fields[] = {"url",     "method",  "headers", "body",
                                         "json",    "timeout", "check",   "verify_tls",
                                         "ca_file", "follow",  NULL};
    /* Everything that can raise first; allocations after. */
    check_fields(L, 1, fields, "ctx.http");
    const char *url = opt_str(L, 1, "url", "ctx.http");
    if (!url ||
        !(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0 || standin(a, url)))
        return luaL_error(L, "ctx.http: 'url' must be an http:// or https:// URL");
    const char *method = opt_str(L, 1, "method", "ctx.http");
    if (method && (!*method || strpbrk(method, " \t\r\n")))
        return luaL_error(L, "ctx.http: 'method' must be one word, such as \"POST\"");
    const char *body = opt_str(L, 1, "body", "ctx.http");
    bh_net_req req;
    memset(&req, 0, sizeof req);
    req.kind = BH_NET_HTTP;
    req.url = url;
    req.timeout_ms = opt_timeout(L, 1, "ctx.http");
    req.insecure = !opt_bool(L, 1, "verify_tls", 1);
    req.ca_file = opt_str(L, 1, "ca_file", "ctx.http");
    req.follow = opt_bool(L, 1, "follow", 0);
    int check = opt_bool(L, 1, "check", 1);
    check_headers(L, 1, "ctx.http");
    char *json_text = NULL;
    if (lua_getfield(L, 1, "json") != LUA_TNIL) {
        if (body) return luaL_error(L, "ctx.http: give 'body' or 'json', not both");
        char why[200];
        cJSON *j = bh_luax_to_json(L, -1, why, sizeof why);
        if (!j) return luaL_error(L, "ctx.http: 'json' cannot be sent as JSON: %s", why);
        json_text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        body = json_text;
    }
    lua_pop(L, 1);
    size_t body_len = body ? strlen(body) : 0;
    req.method = method ? method : (body ? "POST" : "GET");
    cJSON *rec = bh_run_record(BH_REC_REQUEST_START, a);
    cJSON_AddStringToObject(rec, "kind", "http");
    cJSON_AddStringToObject(rec, "method", req.method);
    cJSON_AddStringToObject(rec, "url", url);
    cJSON *rh = cJSON_AddArrayToObject(rec, "headers");
    int has_ct = 0;
    char **headers = collect_headers(L, 1, rh, &has_ct);
    if (json_text && !has_ct) {
        size_t n = 0;
        while (headers[n])
            n++;
        headers = realloc(headers, (n + 2) * sizeof *headers);
        if (!headers) abort();
        headers[n] = bh_util_xstrdup("Content-Type: application/json");
        headers[n + 1] = NULL;
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "name", "Content-Type");
        cJSON_AddStringToObject(h, "value", "application/json");
        cJSON_AddItemToArray(rh, h);
    }
    req.headers = (const char *const *)headers;
    req.body = body;
    req.body_len = body_len;
    record_body(rec, body, body_len);
    char *what = bh_util_asprintf("%s %s", req.method, url);
    int err = start(a, &req, rec, check, what);
    free_list(headers);
    cJSON_free(json_text);
    return yield_or_raise(L, err, what);
}

/* --- ctx.mail -------------------------------------------------------------- */

/* The message: headers, a blank line, the body with CRLF line ends. */
static char *build_message(const char *from, const char *to, const char *subject, const char *body,
                           char *const *extra, size_t *len) {
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char id[17];
    sodium_bin2hex(id, sizeof id, rnd, sizeof rnd);
    size_t cap = strlen(body) * 2 + 1024;
    for (char *const *h = extra; h && *h; h++)
        cap += strlen(*h) + 2;
    char *m = bh_util_xmalloc(cap + strlen(subject) + strlen(to) + strlen(from));
    size_t n = (size_t)sprintf(m,
                               "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\n"
                               "Message-ID: <%s@bulkhead>\r\nMIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n",
                               date, from, to, subject, id);
    for (char *const *h = extra; h && *h; h++)
        n += (size_t)sprintf(m + n, "%s\r\n", *h);
    m[n++] = '\r';
    m[n++] = '\n';
    for (const char *c = body; *c; c++) {
        if (*c == '\n' && (c == body || c[-1] != '\r')) m[n++] = '\r';
        m[n++] = *c;
    }
    if (n < 2 || m[n - 1] != '\n') {
        m[n++] = '\r';
        m[n++] = '\n';
    }
    m[n] = '\0';
    *len = n;
    return m;
}

static int header_safe(const char *s) {
    return !strchr(s, '\r') && !strchr(s, '\n');
}

int bh_request_mail(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "mail");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const fields[] = {"url",     "from",       "to",       "subject",  "body",
                                         "headers", "username",   "password", "starttls", "timeout",
                                         "check",   "verify_tls", "ca_file",  NULL};
    check_fields(L, 1, fields, "ctx.mail");
    const char *url = opt_str(L, 1, "url", "ctx.mail");
    if (!url ||
        !(strncmp(url, "smtp://", 7) == 0 || strncmp(url, "smtps://", 8) == 0 || standin(a, url)))
        return luaL_error(L, "ctx.mail: 'url' must be smtp://host:port or smtps://host:port");
    const char *from = opt_str(L, 1, "from", "ctx.mail");
    const char *subject = opt_str(L, 1, "subject", "ctx.mail");
    const char *body = opt_str(L, 1, "body", "ctx.mail");
    if (!from || !header_safe(from) || strpbrk(from, "<> "))
        return luaL_error(L, "ctx.mail: 'from' is required: one address");
    if (!subject || !header_safe(subject))
        return luaL_error(L, "ctx.mail: 'subject' is required: one line");
    if (!body) return luaL_error(L, "ctx.mail: 'body' is required");
    if (lua_getfield(L, 1, "to") != LUA_TTABLE || lua_rawlen(L, -1) == 0)
        return luaL_error(L, "ctx.mail: 'to' must be a list of addresses");
    int to_idx = lua_gettop(L);
    size_t nto = lua_rawlen(L, to_idx), tolen = 0;
    for (size_t i = 1; i <= nto; i++) {
        if (lua_rawgeti(L, to_idx, (lua_Integer)i) != LUA_TSTRING ||
            !header_safe(lua_tostring(L, -1)) || strpbrk(lua_tostring(L, -1), "<> ,"))
            return luaL_error(L, "ctx.mail: 'to' must be a list of addresses");
        tolen += strlen(lua_tostring(L, -1)) + 2;
        lua_pop(L, 1);
    }
    bh_net_req req;
    memset(&req, 0, sizeof req);
    req.kind = BH_NET_MAIL;
    req.url = url;
    req.timeout_ms = opt_timeout(L, 1, "ctx.mail");
    req.username = opt_str(L, 1, "username", "ctx.mail");
    req.password = opt_str(L, 1, "password", "ctx.mail");
    req.starttls = opt_bool(L, 1, "starttls", 0);
    req.insecure = !opt_bool(L, 1, "verify_tls", 1);
    req.ca_file = opt_str(L, 1, "ca_file", "ctx.mail");
    int check = opt_bool(L, 1, "check", 1);
    check_headers(L, 1, "ctx.mail");
    /* nothing raises from here on */
    cJSON *rec = bh_run_record(BH_REC_REQUEST_START, a);
    cJSON_AddStringToObject(rec, "kind", "mail");
    cJSON_AddStringToObject(rec, "url", url);
    cJSON_AddStringToObject(rec, "from", from);
    cJSON *to = cJSON_AddArrayToObject(rec, "to");
    char **rcpt = bh_util_xcalloc(nto + 1, sizeof *rcpt);
    char *to_line = bh_util_xcalloc(tolen + 1, 1);
    for (size_t i = 1; i <= nto; i++) {
        lua_rawgeti(L, to_idx, (lua_Integer)i);
        const char *addr = lua_tostring(L, -1);
        rcpt[i - 1] = bh_util_asprintf("<%s>", addr);
        if (i > 1) strcat(to_line, ", ");
        strcat(to_line, addr);
        cJSON_AddItemToArray(to, cJSON_CreateString(addr));
        lua_pop(L, 1);
    }
    cJSON_AddStringToObject(rec, "subject", subject);
    if (req.username) cJSON_AddStringToObject(rec, "username", req.username);
    if (req.starttls) cJSON_AddBoolToObject(rec, "starttls", 1);
    int has_ct;
    char **extra = collect_headers(L, 1, cJSON_AddArrayToObject(rec, "headers"), &has_ct);
    char *from_addr = bh_util_asprintf("<%s>", from);
    req.mail_from = from_addr;
    req.mail_rcpt = (const char *const *)rcpt;
    size_t mlen;
    char *message = build_message(from, to_line, subject, body, extra, &mlen);
    req.body = message;
    req.body_len = mlen;
    record_body(rec, body, strlen(body));
    char *what = bh_util_asprintf("mail to %s via %s", to_line, url);
    int err = start(a, &req, rec, check, what);
    free(to_line);
    free_list(extra);
    free(message);
    free(from_addr);
    free_list(rcpt);
    return yield_or_raise(L, err, what);
}

/* --- ctx.connect ----------------------------------------------------------- */

int bh_request_connect(lua_State *L) {
    bh_attempt *a = bh_attempt_of(L, "connect");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const fields[] = {"host", "port", "timeout", "check", NULL};
    check_fields(L, 1, fields, "ctx.connect");
    const char *host = opt_str(L, 1, "host", "ctx.connect");
    lua_getfield(L, 1, "port");
    lua_Integer port = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (!host || !*host || strpbrk(host, "/@ \t\r\n[]") || port < 1 || port > 65535)
        return luaL_error(L, "ctx.connect: give a host and a port from 1 to 65535");
    bh_net_req req;
    memset(&req, 0, sizeof req);
    req.kind = BH_NET_CONNECT;
    req.timeout_ms = opt_timeout(L, 1, "ctx.connect");
    int check = opt_bool(L, 1, "check", 1);
    char *hp = strchr(host, ':') ? bh_util_asprintf("[%s]:%lld", host, (long long)port)
                                 : bh_util_asprintf("%s:%lld", host, (long long)port);
    req.url = hp;
    cJSON *rec = bh_run_record(BH_REC_REQUEST_START, a);
    cJSON_AddStringToObject(rec, "kind", "connect");
    cJSON_AddStringToObject(rec, "url", hp);
    char *what = bh_util_asprintf("connect to %s", hp);
    int err = start(a, &req, rec, check, what);
    free(hp);
    return yield_or_raise(L, err, what);
}
