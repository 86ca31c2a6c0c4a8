#!/usr/bin/python3
"""Stand-ins for what the lab cannot run: the SaaS a runbook talks to and a
load balancer's API. Each behaves like the service as far as the shipped
runbooks rely on it, errors included, and keeps what it was sent so that a
test checks it from outside.

    standins.py saas --bind ADDR --port N --dir DIR --token-file F --tls CERT KEY
    standins.py lb   --bind ADDR --port N --dir DIR --token-file F

saas is three services on one HTTPS port, told apart by path:

  an identity provider's admin API, on the paths and with the answers of
  Okta's (/api/v1/...): the token is "Authorization: Bearer TOKEN" or
  "SSWS TOKEN", else 401 E0000011; a user is found by login, else 404
  E0000007; GET users/U (the user, with its status); POST
  users/U/lifecycle/suspend (200, only for an ACTIVE user, else 400
  E0000001) and .../unsuspend (200, only for a SUSPENDED one); DELETE
  users/U/sessions (204); GET logs?filter=actor.alternateId eq "U" (the
  events of DIR/events.json whose actor is U, and those of the calls
  above); another method 405 E0000022. The directory is DIR/users.json,
  {"login": {"status": "ACTIVE"}}, read at every request and rewritten
  (whole) when a user changes.

  a Slack incoming webhook, /services/T0BHLAB/B0BHLAB/TOKEN: 200 "ok";
  400 invalid_payload (not JSON), 400 no_text (no text), 403
  invalid_token (the wrong secret), 404 no_service (another webhook).

  a Teams workflow webhook (Power Automate), /workflows/bhlab/triggers/
  manual/paths/invoke?api-version=1&sig=TOKEN: 202 and an empty body, as
  the trigger answers; 401 DirectApiInvalidAuthorizationSignature (a
  wrong or missing sig), 404 WorkflowNotFound (another workflow), 400
  InvalidRequestContent (not JSON). Like Teams, it accepts any JSON and
  posts only a message with an Adaptive Card: the record says whether it
  was posted, and why not.

lb is a load balancer in front of pools of web servers: DIR/pools.json,
{"booking": ["web1:80", ...]}, read at every request. PUT and GET
/api/v2/pools/NAME/maintenance (token "Authorization: Bearer TOKEN", else
401; an unknown pool 404; a body that is not {"enabled": true|false, ...}
400) turn the pool's maintenance page on and off; the state is
DIR/state.json. Any other request is traffic: while the (first) pool is
in maintenance it gets 503 and the maintenance page, else it is passed to
the pool's servers in turn (502 when none answers).

Every request is kept as DIR/N.json: method, path, headers (Authorization
as "[present]"), body, the service it reached (idp, slack, teams, lb,
traffic), the status it got and, for Teams, whether the card was posted.
"""

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from services import Counter, Server, log, tls_context, write_whole  # noqa: E402

import http.server  # noqa: E402

STATE_LOCK = threading.Lock()


def read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_json(path, value):
    write_whole(path, json.dumps(value, indent=1, sort_keys=True).encode())


def okta_error(code, summary, causes=()):
    return {"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae%012d" % (time.time_ns() % 10**12),
            "errorCauses": [{"errorSummary": c} for c in causes]}


class Reply:
    """What a handler answers: a status, a body (JSON or text) and notes for the record."""

    def __init__(self, status, body=None, text=None, **notes):
        self.status, self.body, self.text, self.notes = status, body, text, notes


# --- the identity provider ---------------------------------------------------


def idp(args, method, path, query, headers, body):
    token = open(args.token_file).read().strip()
    auth = headers.get("authorization", "")
    if auth not in ("Bearer " + token, "SSWS " + token):
        return Reply(401, okta_error("E0000011", "Invalid token provided"))
    parts = path.split("/")[3:]  # after /api/v1
    users_file = os.path.join(args.dir, "users.json")
    with STATE_LOCK:
        users = read_json(users_file, {})
        if parts == ["logs"] and method == "GET":
            return idp_logs(args, query)
        if len(parts) < 2 or parts[0] != "users":
            return Reply(404, okta_error("E0000007", "Not found: Resource not found: %s" % path))
        login, rest = parts[1], parts[2:]
        user = users.get(login)
        if user is None:
            return Reply(404, okta_error("E0000007", "Not found: Resource not found: %s (User)" % login))
        ops = {
            ("GET", ()): lambda: Reply(200, {"id": "00u" + login, "status": user["status"],
                                              "profile": {"login": login}}),
            ("POST", ("lifecycle", "suspend")): lambda: lifecycle(users, users_file, login, "ACTIVE",
                                                                  "SUSPENDED", "suspend", args),
            ("POST", ("lifecycle", "unsuspend")): lambda: lifecycle(users, users_file, login, "SUSPENDED",
                                                                    "ACTIVE", "unsuspend", args),
            ("DELETE", ("sessions",)): lambda: sessions_ended(users, users_file, login, query, args),
        }
        op = ops.get((method, tuple(rest)))
        if op is None:
            known = any(r == tuple(rest) for _, r in ops)
            if known:
                return Reply(405, okta_error("E0000022", "The endpoint does not support the provided HTTP method"))
            return Reply(404, okta_error("E0000007", "Not found: Resource not found: %s (User)" % path))
        return op()


def add_event(args, event_type, login):
    events_file = os.path.join(args.dir, "events.json")
    events = read_json(events_file, [])
    events.append({"eventType": event_type, "published": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                   "actor": {"alternateId": "bulkhead", "type": "PublicClientApp"},
                   "target": [{"alternateId": login, "type": "User"}],
                   "outcome": {"result": "SUCCESS"}})
    write_json(events_file, events)


def lifecycle(users, users_file, login, want, becomes, verb, args):
    if users[login]["status"] != want:
        return Reply(400, okta_error("E0000001", "Api validation failed: %s" % verb,
                                     ["Cannot %s a user that is not %s" % (verb, want.lower())]))
    users[login]["status"] = becomes
    write_json(users_file, users)
    add_event(args, "user.lifecycle." + verb, login)
    return Reply(200, {})


def sessions_ended(users, users_file, login, query, args):
    users[login]["sessions"] = 0
    if query.get("oauthTokens") == ["true"]:
        users[login]["oauth_tokens"] = 0
    write_json(users_file, users)
    add_event(args, "user.session.clear", login)
    return Reply(204)


def idp_logs(args, query):
    f = (query.get("filter") or [""])[0]
    prefix, _, rest = f.partition(" eq ")
    if prefix not in ("actor.alternateId", "target.alternateId") or not (rest.startswith('"') and rest.endswith('"')):
        return Reply(400, okta_error("E0000031", "Invalid search criteria.", ["filter: %s" % f]))
    who = rest[1:-1]
    events = read_json(os.path.join(args.dir, "events.json"), [])
    if prefix == "actor.alternateId":
        found = [e for e in events if e.get("actor", {}).get("alternateId") == who]
    else:
        found = [e for e in events if any(t.get("alternateId") == who for t in e.get("target", []))]
    return Reply(200, found)


# --- Slack and Teams ------------------------------------------------------------


def slack(args, method, path, query, headers, body):
    token = open(args.token_file).read().strip()
    parts = path.split("/")
    if method != "POST" or len(parts) != 5 or parts[2:4] != ["T0BHLAB", "B0BHLAB"]:
        return Reply(404, text="no_service")
    if parts[4] != token:
        return Reply(403, text="invalid_token")
    try:
        msg = json.loads(body)
    except ValueError:
        return Reply(400, text="invalid_payload")
    if not isinstance(msg, dict):
        return Reply(400, text="invalid_payload")
    if not msg.get("text") and not msg.get("blocks"):
        return Reply(400, text="no_text")
    return Reply(200, text="ok", posted=True)


def teams(args, method, path, query, headers, body):
    token = open(args.token_file).read().strip()
    if path != "/workflows/bhlab/triggers/manual/paths/invoke" or method != "POST":
        return Reply(404, {"error": {"code": "WorkflowNotFound",
                                     "message": "The workflow '%s' could not be found." % path}})
    if query.get("sig") != [token]:
        return Reply(401, {"error": {"code": "DirectApiInvalidAuthorizationSignature",
                                     "message": "The provided authorization signature is not valid."}})
    try:
        msg = json.loads(body)
    except ValueError:
        return Reply(400, {"error": {"code": "InvalidRequestContent",
                                     "message": "The request content is not valid and could not be deserialized."}})
    why = card_problem(msg)
    return Reply(202, posted=why is None, not_posted=why)


def card_problem(msg):
    """Why Teams would not post this message (None: it would)."""
    if not isinstance(msg, dict) or msg.get("type") != "message":
        return "not a message (type is not \"message\")"
    atts = msg.get("attachments")
    if not isinstance(atts, list) or not atts:
        return "no attachments"
    for a in atts:
        if not isinstance(a, dict) or a.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return "an attachment is not an Adaptive Card"
        card = a.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not card.get("version"):
            return "an attachment's content is not an AdaptiveCard with a version"
        if not isinstance(card.get("body"), list) or not card["body"]:
            return "a card without a body"
    return None


# --- the load balancer -----------------------------------------------------------


def lb(args, method, path, query, headers, body):
    pools = read_json(os.path.join(args.dir, "pools.json"), {})
    state_file = os.path.join(args.dir, "state.json")
    parts = path.split("/")
    if path.startswith("/api/"):
        return lb_api(args, method, parts, headers, body, pools, state_file)
    with STATE_LOCK:
        state = read_json(state_file, {})
    pool = next(iter(sorted(pools)), None)
    if pool is None:
        return Reply(502, text="no pool\n", service="traffic")
    if state.get(pool, {}).get("maintenance"):
        return Reply(503, text="<h1>Maintenance</h1><p>%s</p>\n" % state[pool].get("reason", ""), service="traffic")
    return lb_forward(pools[pool], method, path, service="traffic")


def lb_api(args, method, parts, headers, body, pools, state_file):
    token = open(args.token_file).read().strip()
    if headers.get("authorization", "") != "Bearer " + token:
        return Reply(401, {"error": "unauthorized", "message": "a valid bearer token is required"})
    if len(parts) != 6 or parts[1:4] != ["api", "v2", "pools"] or parts[5] != "maintenance":
        return Reply(404, {"error": "not_found", "message": "no such resource"})
    pool = parts[4]
    if pool not in pools:
        return Reply(404, {"error": "not_found", "message": "no pool '%s'" % pool})
    with STATE_LOCK:
        state = read_json(state_file, {})
        if method == "GET":
            return Reply(200, {"pool": pool, "enabled": bool(state.get(pool, {}).get("maintenance"))})
        if method != "PUT":
            return Reply(405, {"error": "method_not_allowed", "message": "GET or PUT"})
        try:
            req = json.loads(body)
        except ValueError:
            return Reply(400, {"error": "bad_request", "message": "the body is not JSON"})
        if not isinstance(req, dict) or not isinstance(req.get("enabled"), bool):
            return Reply(400, {"error": "bad_request", "message": "\"enabled\" must be true or false"})
        state[pool] = {"maintenance": req["enabled"], "reason": str(req.get("reason", ""))}
        write_json(state_file, state)
        return Reply(200, {"pool": pool, "enabled": req["enabled"]})


NEXT = {"n": 0}


def lb_forward(servers, method, path, service):
    for _ in range(len(servers)):
        with STATE_LOCK:
            server = servers[NEXT["n"] % len(servers)]
            NEXT["n"] += 1
        host, _, port = server.partition(":")
        try:
            c = http.client.HTTPConnection(host, int(port or 80), timeout=3)
            c.request(method, path)
            r = c.getresponse()
            data = r.read()
            c.close()
            return Reply(r.status, text=data.decode("utf-8", "replace"), service=service, server=server)
        except OSError:
            continue
    return Reply(502, text="no server of the pool answered\n", service=service)


# --- serving -------------------------------------------------------------------


def saas(args, method, path, query, headers, body):
    if path.startswith("/api/v1/"):
        r = idp(args, method, path, query, headers, body)
        r.notes.setdefault("service", "idp")
    elif path.startswith("/services/"):
        r = slack(args, method, path, query, headers, body)
        r.notes.setdefault("service", "slack")
    elif path.startswith("/workflows/"):
        r = teams(args, method, path, query, headers, body)
        r.notes.setdefault("service", "teams")
    else:
        r = Reply(404, {"error": "not found"}, service="none")
    return r


def serve(args, route):
    count = Counter(args.dir)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                r = route(args, self.command, url.path, query, headers, body.decode("utf-8", "replace"))
            except Exception as e:  # a stand-in's own bug: a 500, and said
                log("standin error:", repr(e))
                r = Reply(500, {"error": "internal", "message": repr(e)})
            if r.body is not None:
                data, ctype = json.dumps(r.body).encode(), "application/json"
            else:
                data, ctype = (r.text or "").encode(), "text/html" if r.notes.get("service") == "traffic" else "text/plain"
            rec = {"method": self.command, "path": self.path, "body": body.decode("utf-8", "replace"),
                   "headers": {k: ("[present]" if k == "authorization" else v) for k, v in headers.items()},
                   "status": r.status}
            rec.update(r.notes)
            write_whole(count.path("json"), json.dumps(rec).encode())
            self.send_response(r.status)
            if r.status != 204:
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if r.status != 204 and self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_one

        def log_message(self, fmt, *a):
            log("standin", self.client_address[0], fmt % a)

    srv = Server((args.bind, args.port), Handler)
    if args.tls:
        srv.socket = tls_context(*args.tls).wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


def main():
    p = argparse.ArgumentParser(description="stand-ins for what the lab cannot run")
    p.add_argument("mode", choices=["saas", "lb"])
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args, {"saas": saas, "lb": lb}[args.mode])


if __name__ == "__main__":
    main()
