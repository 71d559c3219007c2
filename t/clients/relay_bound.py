#!/usr/bin/python3
"""WebSessionMaxRelays: relayed session connections (TLS here) are bounded so
that they can never take the worker threads ordinary requests need.
Used by t/22_relay_bound.t.

  /usr/bin/python3 t/clients/relay_bound.py --tls-port 8531 --plain-port 8529 \
      --cafile t/logs/ssl/server.crt --limit 4 [--host 127.0.0.1]

Holds --limit idle wss:// sessions, then checks (CHECKS below) and prints
one line of JSON like the other check clients (checkrun.py).
"""

import argparse
import asyncio
import base64
import os
import socket
import ssl
import sys
import time

from checkrun import CheckRun, run_and_report

CHECKS = [
    "held",                 # --limit wss sessions: 101 each
    "refused_503",          # one more: 503
    "refused_token",        # ... WebSession-Error: too-many-relays
    "refused_retry_after",  # ... Retry-After: 5
    "refused_sse",          # an sse down request over TLS is refused alike
    "plain_get_fast",       # a static GET on the plain port, answered < 1 s
    "tls_get_fast",         # ... and over TLS, < 1 s
    "plain_ws_unbounded",   # a ws:// session (no relay) is not refused
    "held_still_work",      # the held sessions still echo
    "freed_on_close",       # closing one lets a new wss session in
]
GET_LIMIT = 1.0             # seconds a page request may take while sessions are held


def request(host, port, ctx, head, timeout=10):
    """Send head (an HTTP request without body); return (status, headers,
    socket) once the response header is in, the socket left open."""
    s = socket.create_connection((host, port), timeout=timeout)
    if ctx:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(head.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head_part = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head_part.split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, s


def ws_head(path, port):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (path, port, key))


def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def echo(s, text, timeout=5):
    s.settimeout(timeout)
    s.sendall(frame(text))
    hdr = s.recv(2)
    n = hdr[1] & 0x7F
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return data.decode()


def timed_get(host, port, ctx):
    t0 = time.monotonic()
    status, _, s = request(host, port, ctx,
                           "GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    s.close()
    return status, time.monotonic() - t0


class Run(CheckRun):
    def __init__(self, a):
        super().__init__(CHECKS)
        self.a = a
        self.ctx = ssl.create_default_context(cafile=a.cafile)
        self.ctx.check_hostname = False

    def wss(self, path="/ws/echo"):
        return request(self.a.host, self.a.tls_port, self.ctx, ws_head(path, self.a.tls_port))

    async def main(self):
        await asyncio.get_running_loop().run_in_executor(None, self.sync)

    def sync(self):
        a = self.a
        held = []
        try:
            for _ in range(a.limit):
                status, _, s = self.wss()
                held.append((status, s))
            self.check("held", all(st == 101 for st, _ in held),
                       "statuses %s" % [st for st, _ in held])
            status, hdrs, s = self.wss()
            s.close()
            self.check("refused_503", status == 503, "status %d" % status)
            self.check("refused_token", hdrs.get("websession-error") == "too-many-relays",
                       "WebSession-Error %r" % hdrs.get("websession-error"))
            self.check("refused_retry_after", hdrs.get("retry-after") == "5",
                       "Retry-After %r" % hdrs.get("retry-after"))
            status, hdrs, s = request(a.host, a.tls_port, self.ctx,
                                      "GET /ws/echo HTTP/1.1\r\nHost: localhost\r\n"
                                      "WebSession-Transport: sse\r\nWebSession-Received: 0\r\n"
                                      "Accept: text/event-stream\r\n\r\n")
            s.close()
            self.check("refused_sse", status == 503
                       and hdrs.get("websession-error") == "too-many-relays",
                       "status %d, WebSession-Error %r" % (status, hdrs.get("websession-error")))
            st, secs = timed_get(a.host, a.plain_port, None)
            self.check("plain_get_fast", st == 200 and secs < GET_LIMIT,
                       "status %d in %.3f s (limit %g s)" % (st, secs, GET_LIMIT))
            st, secs = timed_get(a.host, a.tls_port, self.ctx)
            self.check("tls_get_fast", st == 200 and secs < GET_LIMIT,
                       "status %d in %.3f s (limit %g s)" % (st, secs, GET_LIMIT))
            status, _, s = request(a.host, a.plain_port, None, ws_head("/ws/echo", a.plain_port))
            s.close()
            self.check("plain_ws_unbounded", status == 101, "status %d" % status)
            answers = [echo(s, "x%d" % i) for i, (_, s) in enumerate(held)]
            self.check("held_still_work", answers == ["x%d" % i for i in range(len(held))],
                       "answers %r" % answers)
            held.pop()[1].close()
            deadline = time.monotonic() + 5
            status = 0
            while time.monotonic() < deadline:
                status, _, s = self.wss()
                s.close()
                if status == 101:
                    break
                time.sleep(0.1)
            self.check("freed_on_close", status == 101,
                       "a new wss session after one closed: %d" % status)
        finally:
            for _, s in held:
                s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--plain-port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--limit", type=int, required=True)
    ap.add_argument("--deadline", type=float, default=60)
    a = ap.parse_args()
    r = Run(a)
    sys.exit(run_and_report(r, r.main(), a.deadline, CHECKS))


if __name__ == "__main__":
    main()
