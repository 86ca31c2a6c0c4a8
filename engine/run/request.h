/* request: the step primitives that talk to the network, through the run's
 * bh_fx (so a dry run sends nothing): ctx.http, ctx.mail and ctx.connect.
 *
 *   ctx.http { url =, method =, headers = {}, body = | json = {}, timeout =,
 *              verify_tls = true, ca_file =, follow = false, check = true }
 *     -> { status, ok, headers = {lower-case name = value}, body, json,
 *          truncated, duration_ms }
 *   ctx.mail { url = "smtp://host:port" | "smtps://...", from =, to = {},
 *              subject =, body =, headers = {}, username =, password =,
 *              starttls = false, timeout =, check = true } -> { ok, status }
 *              (a username or password forces STARTTLS on smtp://)
 *   ctx.connect { host =, port =, timeout =, check = true } -> { ok }
 *
 * Each is a request_start record (what is sent: method, URL, headers with
 * credentials redacted, the body as text; secrets masked like everything
 * else) and a request_end record (status, duration, the response stored
 * under out/ with its SHA-256). With check (the default) a transport error
 * raises http_failed / mail_failed / connect_failed and an HTTP status of
 * 400 or more raises http_status, like exec's set -e. */
#ifndef BH_REQUEST_H
#define BH_REQUEST_H

#include <lua.h>

/* lua_CFunctions for the ctx table; upvalue 1 is the ctx handle (ctx.c). */
int bh_request_http(lua_State *L);
int bh_request_mail(lua_State *L);
int bh_request_connect(lua_State *L);

#endif
