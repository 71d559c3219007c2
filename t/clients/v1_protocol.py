#!/usr/bin/python3
"""Raw checks of the server side of websession.v1 (docs/PROTOCOL.md, "The
websession.v1 subprotocol"), with Python's `websockets` used directly, so
every message is exactly what the test sends (no reference client here).
Used by t/41_v1_protocol.t.

  /usr/bin/python3 t/clients/v1_protocol.py --port 8529 [--host 127.0.0.1]
      [--timeout 10] [--no-ping] [--ping-interval 1]

Needs /ws/count, /ws/echo and /ws/chaos-echo (t/htdocs/ws) and, unless
--no-ping, a <Location /ping> with WebSessionCommand /bin/cat and
WebSessionPing 1 (--ping-interval gives another value).  Runs the checks in CHECKS and prints one line of JSON:
  {"ok": bool, "checks": [{"name", "ok", "detail"}, ...], "errors": [...]}
Exit status 0 when every check passed, 1 otherwise.
"""

import argparse
import asyncio
import os
import re
import sys
import time
import base64

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatusCode
from websockets.frames import Opcode

from checkrun import CheckRun, run_and_report

V1 = "websession.v1"
ID_PREFIX = "websession.id."
WINDOW = 1048576                       # WebSessionBuffer's default
ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
# Upper bounds on "it arrives in time" are this much above what the
# server promises, so that a loaded machine (2 cores shared with builds)
# does not fail a correct server; a server that never does it still fails.
# Lower bounds come from the configuration and are exact.
SLACK = 5.0

CHECKS = [
    # a new session on /ws/count
    "new_101_v1",              # 101 selects exactly websession.v1
    "new_session_id",          # Session-ID: 32 base64url characters
    "new_first_I",             # first message: I<id>, the Session-ID
    "new_then_R0",             # then "R0 1048576"
    "new_no_data_before_R",    # /ws/chaos-echo writes at once: nothing before our R
    "new_data_after_R",        # ... and after "R0" its messages come, in order
    "data_echo",               # "Dhello" -> "D1 hello"
    "ack_after_data",          # and "A1", on its own (20 ms promised, SLACK allowed)
    "data_more",               # two more: "D2 b", "D3 c"
    # resume with the id as a subprotocol token
    "token_101_v1_only",       # 101 selects websession.v1 alone
    "token_no_I",              # first message is R, no I
    "token_R_count",           # "R3 1048576": the server got 3
    "token_continues",         # "Dd" -> "D4 d"
    # resume with the Session-ID header
    "header_101_v1",
    "header_R_count",          # "R4 1048576"
    "header_continues",        # "De" -> "D5 e"
    "v1_close_1000",           # a close from the client: answered with 1000
    # replay of what the client did not get
    "replay_R_count",          # 5 sent, 2 "read", dropped, R2 -> "R5 1048576"
    "replay_tail",             # then D3, D4, D5 again, in order, nothing else
    "replay_continues",        # "Dm6" -> "D6 m6"
    # resume points that cannot be served
    "resume_beyond_4409",      # R above what the server sent: close 4409
    "resume_below_ack_4409",   # R below what the client acknowledged: 4409
    "after_4409_gone",         # the session is over: resume -> 4410
    # refused resumes, in band
    "unknown_id_101",          # unknown id token: 101 with websession.v1 ...
    "unknown_id_4410",         # ... then close 4410 "session unknown or expired"
    "malformed_id_4400",       # "websession.id.abc": close 4400
    "long_id_4400",            # an id token far too long: 4400, not a new session
    "detach_4100_resume",      # a client close with 4100 keeps the session: resume continues
    "v1_resumed_plain_4400",   # v1 session, plain resume (Session-ID): 4400
    "plain_resumed_v1_4400",   # plain session, resumed with websession.v1: 4400
    "plain_resumed_v1_token_4400",  # ... with the id as a token: 4400
    # protocol errors: close 1002 naming the error
    "err_data_before_R",
    "err_unknown_type",        # "X1"
    "err_binary_control",      # "A0" in a binary frame
    "err_P_from_client",       # "P"
    "err_ack_too_many",        # "A2" when 1 was sent
    "err_bad_number",          # "A01"
    "err_second_R",            # a second "R" on one connection
    "err_I_from_client",       # "I<id>" is the server's
    "err_R_with_window",       # "R0 5": the window is the server's part
    "stale_ack_ignored",       # "A1" then "A0": the lower one is ignored
]
PING_CHECKS = [
    "ping_v1_P",               # a v1 client gets "P", not before one interval
    "ping_v1_answered_stays",  # answering each P, it stays connected past the
                               # dead-connection time, P at the configured rate
    "ping_v1_silent_dropped",  # silent: dropped without a close frame, not
                               # before 2 intervals + 1 s (nor far after)
    "ping_v1_resume",          # and then resumes: "R1 1048576", echo goes on
    "ping_plain_frames",       # a plain client gets ping frames, no "P" message
]

# What each protocol error's close reason must name.
ERRORS = {
    "err_data_before_R": r"before the resume point|before R\b",
    "err_unknown_type": r"unknown",
    "err_binary_control": r"binary",
    "err_P_from_client": r"server message|heartbeat|\bP\b",
    "err_ack_too_many": r"never sent|more than",
    "err_bad_number": r"acknowledgement|number",
    "err_second_R": r"second resume point",
    "err_I_from_client": r"server message",
    "err_R_with_window": r"no window",
}


class PingCounter(websockets.WebSocketClientProtocol):
    """Counts the ping frames the server sends (websockets answers them)."""

    ping_frames = 0             # (websockets' own `pings` is something else)
    first_ping_at = None        # time.monotonic() when the first one came

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == Opcode.PING:
            self.ping_frames += 1
            if self.first_ping_at is None:
                self.first_ping_at = time.monotonic()
        return frame


class Run(CheckRun):
    def __init__(self, args):
        super().__init__(CHECKS + PING_CHECKS)
        self.a = args
        self.t = args.timeout

    def url(self, path):
        return "ws://%s:%d%s" % (self.a.host, self.a.port, path)

    async def connect(self, path, protocols=(V1,), sid=None, proto_class=None):
        kw = dict(ping_interval=None, close_timeout=self.t, max_size=None,
                  compression=None, open_timeout=self.t)
        if protocols:
            kw["subprotocols"] = list(protocols)
        if sid:
            kw["extra_headers"] = {"Session-ID": sid}
        if proto_class:
            kw["create_protocol"] = proto_class
        return await websockets.connect(self.url(path), **kw)

    async def nxt(self, c, timeout=None):
        """('msg', m), ('closed', code, reason) or ('timeout',)."""
        try:
            return ("msg", await asyncio.wait_for(c.recv(), timeout or self.t))
        except asyncio.TimeoutError:
            return ("timeout",)
        except ConnectionClosed:
            return ("closed", c.close_code, c.close_reason)

    async def nxt_data(self, c, timeout=None, seen=None):
        """The next message that is not a server acknowledgement."""
        while True:
            r = await self.nxt(c, timeout)
            if r[0] == "msg" and isinstance(r[1], str) and r[1][:1] == "A":
                if seen is not None:
                    seen.append(r[1])
                continue
            return r

    async def until_close(self, c, timeout=None):
        """Read until the server closes: (messages, code, reason); code None
        on timeout."""
        msgs = []
        end = time.monotonic() + (timeout or self.t)
        while True:
            r = await self.nxt(c, max(0.01, end - time.monotonic()))
            if r[0] == "msg":
                msgs.append(r[1])
                continue
            if r[0] == "timeout":
                c.transport.abort()
                return msgs, None, "timeout"
            return msgs, r[1], r[2]

    @staticmethod
    def protos(c):
        return c.response_headers.get_all("Sec-WebSocket-Protocol")

    @staticmethod
    def drop(c):
        c.transport.abort()

    async def new_v1(self, path="/ws/count"):
        """A new v1 session, past the handshake: (conn, id)."""
        c = await self.connect(path)
        sid = c.response_headers.get("Session-ID")
        i = await self.nxt(c)
        r = await self.nxt(c)
        if i != ("msg", "I%s" % sid) or r != ("msg", "R0 %d" % WINDOW):
            raise AssertionError("new session on %s: got %r, %r" % (path, i, r))
        await c.send("R0")
        return c, sid

    async def exchange(self, c, send, want):
        await c.send(send)
        got = await self.nxt_data(c)
        return got == ("msg", want), "sent %r, want %r, got %r" % (send, want, got)

    # -- the checks ------------------------------------------------------------

    async def new_and_resume(self):
        c = await self.connect("/ws/count")
        protos = self.protos(c)
        self.check("new_101_v1", protos == [V1] and c.subprotocol == V1,
                   "Sec-WebSocket-Protocol: %r" % protos)
        sid = c.response_headers.get("Session-ID")
        self.check("new_session_id", sid and ID_RE.match(sid), "Session-ID: %r" % sid)
        first = await self.nxt(c)
        self.check("new_first_I", sid and first == ("msg", "I" + sid),
                   "first message %r, Session-ID %r" % (first, sid))
        second = await self.nxt(c)
        self.check("new_then_R0", second == ("msg", "R0 %d" % WINDOW),
                   "second message %r" % (second,))
        await c.send("R0")
        await c.send("Dhello")
        t0 = time.monotonic()
        # The reply (the script's) and the acknowledgement of "Dhello" (the
        # keeper's, due within 20 ms) come in either order.  Nothing else is
        # sent meanwhile, so an "A1" can only be the server acknowledging on
        # its own, as the protocol requires.
        got, ack, other = None, None, []
        end = t0 + SLACK
        while (got is None or ack is None) and time.monotonic() < end:
            r = await self.nxt(c, max(0.01, end - time.monotonic()))
            if r[0] != "msg":
                other.append(r)
                break
            if r[1] == "A1" and ack is None:
                ack = time.monotonic() - t0
            elif r[1][:1] == "D" and got is None:
                got = r
            else:
                other.append(r)
        acks = []
        self.check("data_echo", got == ("msg", "D1 hello"),
                   "sent 'Dhello', got %r, then %r" % (got, other))
        self.check("ack_after_data", ack is not None and not other,
                   ("A1 after %.3f s" % ack if ack is not None
                    else "no A1 within %g s" % SLACK) + ", other messages %r" % other)
        await c.send("Db")
        await c.send("Dc")
        r1 = await self.nxt_data(c, seen=acks)
        r2 = await self.nxt_data(c, seen=acks)
        self.check("data_more", (r1, r2) == (("msg", "D2 b"), ("msg", "D3 c")),
                   "got %r, %r" % (r1, r2))
        await c.send("A3")
        await asyncio.sleep(0.1)
        self.drop(c)

        # resume with the id as a second subprotocol token
        try:
            c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        except InvalidHandshake as e:
            self.check("token_101_v1_only", False, "handshake: %r" % e)
            return
        protos = self.protos(c)
        self.check("token_101_v1_only", protos == [V1] and c.subprotocol == V1,
                   "Sec-WebSocket-Protocol: %r" % protos)
        first = await self.nxt(c)
        self.check("token_no_I", first[0] == "msg" and first[1][:1] == "R",
                   "first message %r" % (first,))
        self.check("token_R_count", first == ("msg", "R3 %d" % WINDOW),
                   "first message %r" % (first,))
        await c.send("R3")
        self.check("token_continues", *await self.exchange(c, "Dd", "D4 d"))
        self.drop(c)

        # resume with the Session-ID header
        try:
            c = await self.connect("/ws/count", (V1,), sid=sid)
        except InvalidHandshake as e:
            self.check("header_101_v1", False, "handshake: %r" % e)
            return
        protos = self.protos(c)
        self.check("header_101_v1", protos == [V1], "Sec-WebSocket-Protocol: %r" % protos)
        first = await self.nxt(c)
        self.check("header_R_count", first == ("msg", "R4 %d" % WINDOW),
                   "first message %r" % (first,))
        await c.send("R4")
        self.check("header_continues", *await self.exchange(c, "De", "D5 e"))
        await asyncio.wait_for(c.close(1000), self.t)
        self.check("v1_close_1000", c.close_code == 1000,
                   "server's close: %s %r" % (c.close_code, c.close_reason))

    async def replay(self):
        c, sid = await self.new_v1("/ws/count")
        for i in range(1, 6):
            await c.send("Dm%d" % i)
        got = []
        for _ in range(5):
            r = await self.nxt_data(c)
            got.append(r[1] if r[0] == "msg" else r)
        want = ["D%d m%d" % (i, i) for i in range(1, 6)]
        if got != want:
            raise AssertionError("replay: the first 5 replies were %r" % got)
        # The client "read" D1 and D2 only and acknowledged nothing.
        self.drop(c)
        c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        first = await self.nxt(c)
        self.check("replay_R_count", first == ("msg", "R5 %d" % WINDOW),
                   "first message %r" % (first,))
        await c.send("R2")
        tail = []
        while True:
            r = await self.nxt_data(c, timeout=self.t if len(tail) < 3 else 0.5)
            if r[0] != "msg":
                break
            tail.append(r[1])
        self.check("replay_tail", tail == want[2:], "after R2 got %r" % tail)
        self.check("replay_continues", *await self.exchange(c, "Dm6", "D6 m6"))
        await asyncio.wait_for(c.close(1000), self.t)

    async def bad_resume_points(self):
        # R above what the server ever sent
        c, sid = await self.new_v1("/ws/count")
        ok, detail = await self.exchange(c, "Da", "D1 a")
        if not ok:
            raise AssertionError(detail)
        self.drop(c)
        c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        await c.send("R5")
        msgs, code, reason = await self.until_close(c)
        self.check("resume_beyond_4409", code == 4409 and "resume" in reason,
                   "messages %r, close %s %r" % (msgs, code, reason))

        # R below what the client acknowledged
        c, sid = await self.new_v1("/ws/count")
        for i in range(1, 6):
            await c.send("Dx%d" % i)
        for _ in range(5):
            await self.nxt_data(c)
        await c.send("A5")
        # The reply to this proves the server has read "A5" (in order).
        ok, detail = await self.exchange(c, "Dsync", "D6 sync")
        if not ok:
            raise AssertionError(detail)
        self.drop(c)
        c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        await c.send("R2")
        msgs, code, reason = await self.until_close(c)
        self.check("resume_below_ack_4409", code == 4409 and "resume" in reason,
                   "messages %r, close %s %r" % (msgs, code, reason))

        # A close frame from the server ends the session.
        c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        msgs, code, reason = await self.until_close(c)
        self.check("after_4409_gone", code == 4410,
                   "messages %r, close %s %r" % (msgs, code, reason))

    async def refusals(self):
        # an unknown (well-formed) id
        unknown = base64.urlsafe_b64encode(os.urandom(24)).decode()
        c = await self.connect("/ws/count", (V1, ID_PREFIX + unknown))
        self.check("unknown_id_101", self.protos(c) == [V1],
                   "Sec-WebSocket-Protocol: %r" % self.protos(c))
        msgs, code, reason = await self.until_close(c)
        self.check("unknown_id_4410", (code, reason) == (4410, "session unknown or expired")
                   and not msgs, "messages %r, close %s %r" % (msgs, code, reason))

        c = await self.connect("/ws/count", (V1, ID_PREFIX + "abc"))
        msgs, code, reason = await self.until_close(c)
        self.check("malformed_id_4400", code == 4400 and "malformed" in reason and not msgs,
                   "messages %r, close %s %r" % (msgs, code, reason))

        # 4100: this connection only; the session goes on
        c = await self.connect("/ws/count", (V1,))
        sid = c.response_headers["Session-ID"]
        await self.nxt(c)
        await self.nxt(c)
        await c.send("R0")
        first = await self.exchange(c, "Dx", "D1 x")
        await asyncio.wait_for(c.close(4100, "heartbeat timeout"), self.t)
        c = await self.connect("/ws/count", (V1, ID_PREFIX + sid))
        await self.nxt(c)
        await c.send("R1")
        again = await self.exchange(c, "Dy", "D2 y")
        self.check("detach_4100_resume", first[0] and again[0],
                   "before: %r, after the 4100 close: %r" % (first, again))
        await asyncio.wait_for(c.close(1000), self.t)

        c = await self.connect("/ws/count", (V1, ID_PREFIX + "x" * 400))
        msgs, code, reason = await self.until_close(c)
        self.check("long_id_4400", code == 4400 and "malformed" in reason and not msgs,
                   "messages %r (an I would mean a new session), close %s %r"
                   % (msgs, code, reason))

        mismatch = "resume with the protocol the session started with"
        # a v1 session resumed as a plain one
        c, sid = await self.new_v1("/ws/count")
        ok, detail = await self.exchange(c, "Da", "D1 a")
        if not ok:
            raise AssertionError(detail)
        self.drop(c)
        c = await self.connect("/ws/count", protocols=(), sid=sid)
        msgs, code, reason = await self.until_close(c)
        self.check("v1_resumed_plain_4400", (code, reason) == (4400, mismatch) and not msgs,
                   "101 with Sec-WebSocket-Protocol %r; messages %r, close %s %r"
                   % (self.protos(c), msgs, code, reason))

        # a plain session resumed with websession.v1 (Session-ID header, token)
        for name, kw in (("plain_resumed_v1_4400", {"sid": True}),
                         ("plain_resumed_v1_token_4400", {"token": True})):
            p = await self.connect("/ws/count", protocols=())
            psid = p.response_headers.get("Session-ID")
            await p.send("a")
            r = await self.nxt(p)
            if r != ("msg", "1 a"):
                raise AssertionError("plain /ws/count: 'a' -> %r" % (r,))
            self.drop(p)
            if kw.get("sid"):
                c = await self.connect("/ws/count", (V1,), sid=psid)
            else:
                c = await self.connect("/ws/count", (V1, ID_PREFIX + psid))
            msgs, code, reason = await self.until_close(c)
            self.check(name, (code, reason) == (4400, mismatch) and not msgs,
                       "messages %r, close %s %r" % (msgs, code, reason))

    async def protocol_errors(self):
        async def one(name, msgs_before, bad, send_r=True):
            c = await self.connect("/ws/echo")
            await self.nxt(c)
            await self.nxt(c)                  # I, R0
            if send_r:
                await c.send("R0")
            for m, want in msgs_before:
                ok, detail = await self.exchange(c, m, want)
                if not ok:
                    raise AssertionError("%s: %s" % (name, detail))
            await c.send(bad)
            msgs, code, reason = await self.until_close(c)
            data = [m for m in msgs if not (isinstance(m, str) and m[:1] == "A")]
            self.check(name, code == 1002 and re.search(ERRORS[name], reason or "", re.I)
                       and not data,
                       "sent %r: messages %r, close %s %r" % (bad, msgs, code, reason))

        await one("err_data_before_R", [], "Dx", send_r=False)
        await one("err_unknown_type", [], "X1")
        await one("err_binary_control", [], b"A0")
        await one("err_P_from_client", [], "P")
        await one("err_ack_too_many", [("Dhi", "Dhi")], "A2")
        await one("err_bad_number", [("Dhi", "Dhi")], "A01")
        # after R0 and a message, a second R0 would replay the stream
        await one("err_second_R", [("Dhi", "Dhi")], "R0")
        await one("err_I_from_client", [], "I" + "A" * 32)
        await one("err_R_with_window", [], "R0 5", send_r=False)
        await self.stale_ack()

    async def stale_ack(self):
        """A lower acknowledgement than one already sent is ignored, on a
        WebSocket as in a POST (an HTTP request may arrive late)."""
        c = await self.connect("/ws/echo")
        await self.nxt(c)
        await self.nxt(c)                      # I, R0
        await c.send("R0")
        ok1, d1 = await self.exchange(c, "Dhi", "Dhi")
        await c.send("A1")
        await c.send("A0")
        ok2, d2 = await self.exchange(c, "Dagain", "Dagain")
        self.check("stale_ack_ignored", ok1 and ok2 and c.close_code is None,
                   "%s; after A1, A0: %s, close %s" % (d1, d2, c.close_code))
        await c.close()

    async def no_data_before_R(self):
        # /ws/chaos-echo?n=3 writes "s1".."s3" as soon as it starts.
        c = await self.connect("/ws/chaos-echo?n=3")
        first = [await self.nxt(c), await self.nxt(c)]
        early = await self.nxt(c, 1.0)
        self.check("new_no_data_before_R",
                   [m[1][:1] if m[0] == "msg" else m for m in first] == ["I", "R"]
                   and early == ("timeout",),
                   "first %r, then within 1 s: %r" % (first, early))
        await c.send("R0")
        got = []
        for _ in range(3):
            r = await self.nxt_data(c)
            got.append(r[1] if r[0] == "msg" else r)
        self.check("new_data_after_R", got == ["Ds1", "Ds2", "Ds3"], "after R0: %r" % got)
        await asyncio.wait_for(c.close(1000), self.t)

    async def heartbeat(self):
        # The keeper sends its first P one WebSessionPing interval after the
        # attach and each next one an interval after the last; it drops a
        # connection that brought nothing for 2 intervals + 1 s, at its next
        # wake-up (docs/PROTOCOL.md, "Heartbeats").  Lower bounds are those
        # figures; upper bounds add SLACK.
        iv = self.a.ping_interval
        dead = 2 * iv + 1
        t_connect = time.monotonic()         # the attach is later than this
        c, sid = await self.new_v1("/ping")
        await c.send("Dbefore")
        # the echo and the first P, in either order (acknowledgements aside)
        echo, took, other = None, None, []
        end = t_connect + iv + SLACK
        while (echo is None or took is None) and time.monotonic() < end:
            r = await self.nxt(c, max(0.01, end - time.monotonic()))
            if r[0] != "msg":
                other.append(r)
                break
            if r[1] == "P" and took is None:
                took = time.monotonic() - t_connect
            elif r[1] == "Dbefore" and echo is None:
                echo = r[1]
            elif r[1][:1] != "A":
                other.append(r)
        if echo is None:
            raise AssertionError("/ping: sent 'Dbefore', no echo; other %r" % other)
        self.check("ping_v1_P", took is not None and took >= iv - 0.05 and not other,
                   "%s after the connect began (want P, not before %g s, within %g s);"
                   " other messages %r"
                   % ("P %.2f s" % took if took is not None else "no P", iv, iv + SLACK,
                      other))
        # Answer every P for longer than the dead-connection time: the
        # connection stays, and P keeps coming at the configured rate.
        await c.send("A1")
        last_sent = time.monotonic()
        window = dead + 2
        pings, end, closed = 0, time.monotonic() + window, None
        while time.monotonic() < end:
            r = await self.nxt(c, max(0.01, end - time.monotonic()))
            if r[0] == "closed":
                closed = r
                break
            if r == ("msg", "P"):
                pings += 1
                await c.send("A1")
                last_sent = time.monotonic()
        most = int(window / iv) + 2
        self.check("ping_v1_answered_stays",
                   closed is None and 2 <= pings <= most,
                   "%d P in %g s (want 2..%d at WebSessionPing %g), %s"
                   % (pings, window, most, iv, closed or "still connected"))
        if closed:
            return
        # Silence: nothing from us from now on.
        others = []
        end = last_sent + dead + SLACK
        r = ("timeout",)
        while time.monotonic() < end:
            r = await self.nxt(c, max(0.01, end - time.monotonic()))
            if r[0] != "msg":
                break
            if r[1] != "P":
                others.append(r[1])
        took = time.monotonic() - last_sent
        self.check("ping_v1_silent_dropped",
                   r[0] == "closed" and r[1] == 1006 and dead - 0.05 <= took <= dead + SLACK,
                   "%s %.2f s after our last message (want 1006 between %g and %g s;"
                   " other messages %r)" % (r, took, dead, dead + SLACK, others))
        c = await self.connect("/ping", (V1, ID_PREFIX + sid))
        first = await self.nxt(c)
        await c.send("R1")
        ok, detail = await self.exchange(c, "Dafter", "Dafter")
        self.check("ping_v1_resume", first == ("msg", "R1 %d" % WINDOW) and ok,
                   "first %r; %s" % (first, detail))
        await asyncio.wait_for(c.close(1000), self.t)

        # a plain client: ping frames (the first one an interval after the
        # attach), no "P"
        t_connect = time.monotonic()
        p = await self.connect("/ping", protocols=(), proto_class=PingCounter)
        await p.send("plain")
        msgs = []
        end = t_connect + iv + SLACK
        while time.monotonic() < end and p.ping_frames == 0:
            r = await self.nxt(p, 0.1)
            if r[0] == "msg":
                msgs.append(r[1])
            elif r[0] == "closed":
                break
        await asyncio.sleep(0.1)
        while True:
            r = await self.nxt(p, 0.1)
            if r[0] != "msg":
                break
            msgs.append(r[1])
        first = p.first_ping_at - t_connect if p.first_ping_at else None
        self.check("ping_plain_frames",
                   first is not None and first >= iv - 0.05 and msgs == ["plain"],
                   "first ping frame %s (want not before %g s, within %g s), messages %r"
                   % ("after %.2f s" % first if first is not None else "never",
                      iv, iv + SLACK, msgs))
        await asyncio.wait_for(p.close(1000), self.t)

    async def main(self):
        steps = [self.new_and_resume, self.no_data_before_R, self.replay,
                 self.bad_resume_points, self.refusals, self.protocol_errors]
        if self.a.ping:
            steps.append(self.heartbeat)
        await self.run_steps(steps, 60, self.a.steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--deadline", type=float, default=150)
    ap.add_argument("--no-ping", dest="ping", action="store_false",
                    help="skip the heartbeat checks (no <Location /ping>)")
    ap.add_argument("--ping-interval", type=float, default=1,
                    help="WebSessionPing of <Location /ping> (seconds, default 1)")
    ap.add_argument("--steps", help="run only these steps (comma-separated method names)")
    args = ap.parse_args()
    run = Run(args)
    return run_and_report(run, run.main(), args.deadline,
                          CHECKS + (PING_CHECKS if args.ping else []))


if __name__ == "__main__":
    sys.exit(main())
