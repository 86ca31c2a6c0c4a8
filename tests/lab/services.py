#!/usr/bin/python3
"""The lab's services: what a lab host serves, so that runbooks act on real
network services and tests check them from outside.

    services.py http    --bind ADDR --port N --root DIR [--tls CERT KEY]
    services.py tcp     --bind ADDR --port N [--banner TEXT]
    services.py smtp    --bind ADDR --port N --dir DIR [--tls CERT KEY]
                        [--require-starttls] [--auth USER PASSFILE]
    services.py webhook --bind ADDR --port N --dir DIR [--status CODE]

http serves the files under DIR (a health check reads /healthz); tcp
answers every connection with a banner line and echoes what it gets;
smtp is aiosmtpd (Debian's python3-aiosmtpd), a real SMTP server with
STARTTLS and AUTH, and keeps every message it accepts as DIR/N.eml (the
envelope: MAIL FROM and RCPT TO lines, "TLS: yes|no", "AUTH: LOGIN|none"
for who logged in; a blank line; the data) and its AUTH logins in
DIR/auth.log;
webhook keeps every request as DIR/N.json and answers CODE with a small
JSON body. Each logs one line per request on stderr. They run until
SIGTERM. Debian's /usr/bin/python3 runs them (aiosmtpd is installed for
it), never another python on PATH.
"""

import argparse
import http.server
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading


def log(*words):
    print(*words, file=sys.stderr, flush=True)


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Counter:
    """The next file number under a directory: 1, 2, ... (threads share it),
    after those already there: a service started again adds, never overwrites."""

    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        names = os.listdir(directory) if os.path.isdir(directory) else []
        self.n = max([int(f.split(".")[0]) for f in names if f.split(".")[0].isdigit()] or [0])

    def path(self, suffix):
        with self.lock:
            self.n += 1
            n = self.n
        return os.path.join(self.directory, "%d.%s" % (n, suffix))


def write_whole(path, data):
    """Write by rename, so a test never reads half a file."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_http(args):
    root = args.root

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

        def log_message(self, fmt, *a):
            log("http", self.client_address[0], fmt % a)

    srv = Server((args.bind, args.port), Handler)
    if args.tls:
        srv.socket = tls_context(*args.tls).wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


def serve_webhook(args):
    count = Counter(args.dir)
    status = args.status

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            rec = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            write_whole(count.path("json"), json.dumps(rec).encode())
            reply = json.dumps({"ok": status < 400}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_PUT = do_GET = handle_one

        def log_message(self, fmt, *a):
            log("webhook", self.client_address[0], fmt % a)

    Server((args.bind, args.port), Handler).serve_forever()


def serve_tcp(args):
    banner = (args.banner + "\n").encode()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            log("tcp connect", self.client_address[0])
            self.request.sendall(banner)
            while True:
                data = self.request.recv(4096)
                if not data:
                    return
                self.request.sendall(data)

    class TCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True

    TCP((args.bind, args.port), Handler).serve_forever()


def serve_smtp(args):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    count = Counter(args.dir)

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            head = "MAIL FROM:<%s>\n" % envelope.mail_from
            head += "".join("RCPT TO:<%s>\n" % r for r in envelope.rcpt_tos)
            head += "TLS: %s\n" % ("yes" if session.ssl else "no")
            # who logged in (AuthResult below carries the login), else none
            login = getattr(session.auth_data, "login", None) if session.authenticated else None
            head += "AUTH: %s\n\n" % (login.decode() if login else "none")
            data = envelope.original_content or b""
            write_whole(count.path("eml"), head.encode() + data)
            log("smtp message from", session.peer[0], "to", ",".join(envelope.rcpt_tos))
            return "250 OK: kept"

    kw = {}
    if args.tls:
        kw["tls_context"] = tls_context(*args.tls)
        kw["require_starttls"] = args.require_starttls
    if args.auth:
        user, passfile = args.auth
        with open(passfile) as f:
            password = f.read().strip()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            with open(os.path.join(args.dir, "auth.log"), "a") as f:
                f.write("%s %s tls=%s\n" % (auth_data.login.decode(), "ok" if ok else "refused",
                                            "yes" if session.ssl else "no"))
            return AuthResult(success=ok, auth_data=auth_data)

        kw["authenticator"] = authenticator
        kw["auth_require_tls"] = True
    else:
        kw["auth_require_tls"] = False
    ctl = Controller(Sink(), hostname=args.bind, port=args.port, server_hostname="lab", **kw)
    ctl.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    ctl.stop()


def main():
    p = argparse.ArgumentParser(description="the lab's services")
    p.add_argument("mode", choices=["http", "tcp", "smtp", "webhook"])
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--root")
    p.add_argument("--dir")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSFILE"))
    p.add_argument("--banner", default="lab tcp service")
    p.add_argument("--status", type=int, default=200)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    socket.setdefaulttimeout(None)
    {"http": serve_http, "tcp": serve_tcp, "smtp": serve_smtp, "webhook": serve_webhook}[args.mode](args)


if __name__ == "__main__":
    main()
