#!/usr/bin/python3
"""wss:// sessions on the TLS virtual host (relayed by an httpd worker),
with Python's `websockets` (Debian's python3-websockets 10.4: run it with
/usr/bin/python3, a python3 elsewhere on PATH may not see it).
Used by t/21_tls.t.

  /usr/bin/python3 t/clients/tls_echo.py --tls-port 8531 --plain-port 8529 \
      --cafile t/logs/ssl/server.crt [--host 127.0.0.1] [--timeout 30]

Runs a fixed list of checks (CHECKS below) and prints one line of JSON:
  {"ok": bool, "checks": [{"name": ..., "ok": bool, "detail": ...}, ...]}
Exit status 0 when every check passed, 1 otherwise, 2 on bad usage.
"""

import argparse
import asyncio
import os
import ssl
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

from checkrun import CheckRun, run_and_report

CHECKS = [
    "wss_handshake",            # 101 over TLS with a Session-ID
    "wss_text_echo",            # /ws/echo (lines mode) text echo
    "wss_text_1mib",            # /ws/echo: a 1 MiB text message, echoed whole
    "wss_close_1000",           # close handshake answered with 1000
    "framed_text",              # /framed on the TLS vhost: text stays text
    "framed_binary",            # ... binary (all byte values) stays binary
    "framed_binary_1mib",       # ... a 1 MiB binary message of random bytes
    "framed_close_1000",
    "count_first",              # /ws/count: "a" -> "1 a"
    "resume_101",               # connection dropped without a close frame,
                                # reconnect with Session-ID -> 101
    "resume_count_continues",   # "b" -> "2 b"
    "tls_id_refused_on_plain",  # that id on ws:// (other scheme+port): 410
    "tls_id_refused_error",     # ... WebSession-Error: session-unknown
    "tls_session_survives_refusal",  # "c" -> "3 c" on the TLS connection
    "plain_id_refused_on_tls",  # and a ws:// session's id on wss://: 410
    "resumed_close_1000",
]


class Run(CheckRun):
    detail_max = 300

    def __init__(self, args):
        super().__init__(CHECKS)
        self.args = args
        self.ctx = ssl.create_default_context(cafile=args.cafile)
        self.t = args.timeout

    def wss(self, path):
        return "wss://%s:%d%s" % (self.args.host, self.args.tls_port, path)

    def ws(self, path):
        return "ws://%s:%d%s" % (self.args.host, self.args.plain_port, path)

    def connect(self, uri, headers=None):
        kw = dict(open_timeout=self.t, ping_interval=None, close_timeout=self.t,
                  max_size=None, compression=None, extra_headers=headers or {})
        if uri.startswith("wss:"):
            kw["ssl"] = self.ctx
        return websockets.connect(uri, **kw)

    async def recv(self, conn):
        return await asyncio.wait_for(conn.recv(), self.t)

    async def close(self, conn, name):
        await asyncio.wait_for(conn.close(1000, "done"), self.t)
        self.check(name, conn.close_code == 1000,
                   "server answered close code %s" % conn.close_code)

    async def echo(self):
        async with self.connect(self.wss("/ws/echo")) as c:
            sid = c.response_headers.get("Session-ID")
            self.check("wss_handshake", sid and len(sid) == 32,
                       "Session-ID: %r" % sid)
            msg = "hello over TLS \u2713 %d" % os.getpid()
            await c.send(msg)
            got = await self.recv(c)
            self.check("wss_text_echo", got == msg, "sent %r, got %r" % (msg, got))
            # ASCII, no newline: one line of exactly 1 MiB
            big = (b"0123456789abcdef" * (1 << 16)).decode()
            await c.send(big)
            got = await self.recv(c)
            self.check("wss_text_1mib", isinstance(got, str) and got == big,
                       "sent %d chars, got %s of %d" % (len(big), type(got).__name__,
                                                        len(got)))
            await self.close(c, "wss_close_1000")

    async def framed(self):
        async with self.connect(self.wss("/framed")) as c:
            text = "framed \u00e9 \u2713\nsecond line"
            await c.send(text)
            got = await self.recv(c)
            self.check("framed_text", got == text, "sent %r, got %r" % (text, got))
            data = bytes(range(256)) * 16 + b"\n\n\r\nB 3\nxyz\n"
            await c.send(data)
            got = await self.recv(c)
            self.check("framed_binary", got == data,
                       "sent %d bytes, got %s of %d" % (len(data), type(got).__name__,
                                                         len(got)))
            big = os.urandom(1 << 20)
            await c.send(big)
            got = await self.recv(c)
            self.check("framed_binary_1mib", got == big,
                       "sent %d bytes, got %s of %d" % (len(big), type(got).__name__,
                                                         len(got)))
            await self.close(c, "framed_close_1000")

    async def resume(self):
        c = await self.connect(self.wss("/ws/count"))
        sid = c.response_headers.get("Session-ID")
        await c.send("a")
        got = await self.recv(c)
        self.check("count_first", got == "1 a" and sid, "got %r, Session-ID %r" % (got, sid))
        # Leave without a close frame: the session waits for us.
        c.transport.abort()
        await asyncio.wait_for(c.wait_closed(), self.t)

        try:
            c = await self.connect(self.wss("/ws/count"), {"Session-ID": sid})
        except InvalidStatusCode as e:
            self.check("resume_101", False, "resume answered %d" % e.status_code)
            return
        self.check("resume_101", True)
        await c.send("b")
        got = await self.recv(c)
        self.check("resume_count_continues", got == "2 b", "got %r" % got)

        # The same id on the plain vhost: other scheme and port, other binding.
        try:
            p = await self.connect(self.ws("/ws/count"), {"Session-ID": sid})
            self.check("tls_id_refused_on_plain", False, "answered 101")
            self.check("tls_id_refused_error", False, "answered 101")
            await p.close()
        except InvalidStatusCode as e:
            self.check("tls_id_refused_on_plain", e.status_code == 410,
                       "answered %d" % e.status_code)
            err = e.headers.get("WebSession-Error")
            self.check("tls_id_refused_error", err == "session-unknown",
                       "WebSession-Error: %r" % err)

        await c.send("c")
        try:
            got = await self.recv(c)
        except ConnectionClosed as e:
            got = "closed: %s" % e
        self.check("tls_session_survives_refusal", got == "3 c", "got %r" % got)
        await self.close(c, "resumed_close_1000")

    async def plain_on_tls(self):
        async with self.connect(self.ws("/ws/count")) as p:
            sid = p.response_headers.get("Session-ID")
            try:
                c = await self.connect(self.wss("/ws/count"), {"Session-ID": sid})
                self.check("plain_id_refused_on_tls", False, "answered 101")
                await c.close()
            except InvalidStatusCode as e:
                self.check("plain_id_refused_on_tls", e.status_code == 410,
                           "answered %d" % e.status_code)
            await p.close()

    async def main(self):
        await self.run_steps([self.echo, self.framed, self.resume, self.plain_on_tls])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--plain-port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--deadline", type=float, default=240)
    args = ap.parse_args()
    run = Run(args)
    return run_and_report(run, run.main(), args.deadline, CHECKS)


if __name__ == "__main__":
    sys.exit(main())
