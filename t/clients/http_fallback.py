#!/usr/bin/python3
"""Wire-level checks of the HTTP fallback transports (docs/PROTOCOL.md, "The
HTTP fallback transports"): every request is written byte by byte here and
every response read raw, so a check sees exactly what the server sent (no
reference client, except in the checks named client_*).  Used by
t/43_http_fallback.t.

  /usr/bin/python3 t/clients/http_fallback.py --port 8529 [--host 127.0.0.1]
      [--tls-port 8531 --cafile t/logs/ssl/server.crt] [--timeout 10]
      [--ping-interval 1] [--steps sse,poll,...]

Needs /ws/count, /ws/echo, /ws/exit0, /ws/exit3, /ws/killself,
/ws/late-reader, /ws/index.html, /framed (cat, framed), /ping (cat,
WebSessionPing 1; --ping-interval gives another value), /origin-list and /broken of t/conf/extra.conf.in.  Runs the checks in
CHECKS and prints one line of JSON:
  {"ok": bool, "checks": [{"name", "ok", "detail"}, ...], "errors": [...]}
Exit status 0 when every check passed, 1 otherwise.
"""

import argparse
import asyncio
import base64
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time

from checkrun import CheckRun, run_and_report

HERE = os.path.dirname(os.path.realpath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
from websession_client import Session, SessionEnded  # noqa: E402

V1 = "websession.v1"
END = ("comment", "end")               # the last lines of every complete poll answer
END_RAW = b": end\n\n"
WINDOW = 1048576                       # WebSessionBuffer's default
ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
MAX_MESSAGE = 1048576                  # WebSessionMaxMessage's default
TOO_LARGE = 2 * WINDOW + MAX_MESSAGE + 65536   # the most a POST's body may have
# Upper bounds on "it arrives in time" are this much above what the server
# promises, so that a loaded machine (2 cores shared with builds) does not
# fail a correct server; a server that never does it still fails.  Lower
# bounds come from the configuration and the spec and are exact (as in
# t/clients/v1_protocol.py).
SLACK = 5.0
POLL_WAIT = 25                         # a poll with nothing to say ends then
# "At once" (a poll with news, a GET while streams are open): well before
# POLL_WAIT, so that a poll that waits for its timeout (or a worker held
# until a stream ends) fails, but no scheduling delay of a loaded machine.
AT_ONCE = 10.0

CHECKS = [
    # a new session over sse (/ws/count)
    "sse_new_200", "sse_new_content_type", "sse_new_connection_close",
    "sse_new_cache_control", "sse_new_no_length", "sse_new_session_id",
    "sse_new_body_start", "sse_new_stays_open",
    # messages both ways
    "post_answer_A1", "sse_echo", "post_batch_order", "post_repeat_no_dup",
    "post_overlap_takes_new", "post_gap_409", "post_gap_nothing_taken",
    "post_ack_only",
    # resume and eviction
    "sse_resume_headers", "sse_resume_replay", "sse_evicted_by_newer",
    "stale_get_409", "stale_get_keeps_stream", "stale_get_poll_409",
    # the client's close
    "sse_C1000_close_event", "sse_close_then_eof", "after_close_410_get",
    "after_close_410_post", "C_code_echoed",
    # poll
    "poll_new_headers", "poll_open_at_once", "poll_waits", "poll_wakes_on_post",
    "poll_fresh_R", "poll_lost_repeat", "poll_new_count_waits", "poll_batch",
    "poll_idle_25s", "poll_open_resume_at_once", "poll_close_event",
    "poll_end_marker", "poll_cut_no_marker", "sse_no_end_marker",
    # event encoding (framed mode, /framed)
    "framed_binary_all_bytes", "framed_text_cr_text64", "framed_multiline",
    "framed_trailing_lf", "framed_empty_text", "framed_utf8",
    "framed_binary_large", "framed_binary_poll", "post_binary_record_text_D",
    # scripts that end
    "exit0_bye_then_1000", "exit3_4003", "killself_4309", "exit3_over_poll",
    "exit_while_away_poll", "close_event_again_after_cut", "close_event_once_in_order",
    "binary_in_lines_1003", "binary_in_lines_1003_later",
    # resume across transports
    "ws_v1_to_sse", "sse_to_ws_v1", "poll_to_sse", "sse_to_poll",
    "plain_ws_to_sse_4400", "plain_ws_to_poll_4400", "plain_ws_survives_4400",
    "post_plain_ws_400", "post_plain_ws_nothing_taken", "sse_to_plain_ws_4400",
    "resume_beyond_4409",
    # more than 4 MiB behind a down request's head
    "get_flood_1008",
    # refused GETs
    "get_bad_transport_400", "get_transport_websocket_400",
    "get_received_missing_400", "get_received_malformed_400",
    "get_received_nonzero_new_400", "get_poll_bad_400", "get_sid_malformed_400",
    "get_sid_unknown_410", "put_405", "head_405", "plain_get_426", "origin_refused_403",
    "broken_script_500", "errors_text_plain",
    # refused POSTs
    "post_no_sequence_400", "post_bad_sequence_400", "post_sid_malformed_400",
    "post_sid_unknown_410", "post_origin_refused_403", "post_malformed_record_400", "post_R_400",
    "post_P_400", "post_I_400", "post_bad_C_400", "post_record_after_C_400",
    "post_record_after_C_1002", "post_C_repeated", "post_ack_too_many_400",
    "post_ack_unwritten_400",
    "post_error_ends_1002", "post_too_large_413", "post_at_limit_taken",
    # the buffer toward the script full (/ws/late-reader)
    "buffer_full_partial_A", "buffer_full_stops_at_D", "buffer_full_resend_exact",
    "buffer_full_acks_taken",
    # heartbeats (/ping, WebSessionPing 1)
    "ping_sse_P", "ping_sse_answered_stays", "ping_sse_silent_dropped",
    "ping_sse_resume", "ping_poll_P", "ping_polls_keep_alive",
    # TLS
    "tls_sse_new", "tls_sse_messages", "tls_sse_close", "tls_client_sse", "tls_client_poll",
    # worker freedom
    "workers_streams_open", "workers_gets_answered", "workers_streams_echo",
    "workers_streams_close", "workers_polls_waiting",
    # the reference client
    "client_sse_exact", "client_poll_exact", "client_buffer_full", "client_close_1000",
    "client_cat_sse", "client_cat_poll",
]


def rec(payload):
    """One framed record: str -> T, bytes -> B."""
    if isinstance(payload, str):
        p = payload.encode("utf-8")
        return b"T %d\n%s\n" % (len(p), p)
    return b"B %d\n%s\n" % (len(payload), payload)


def recs(*payloads):
    return b"".join(rec(p) for p in payloads)


def decode(lines):
    """A block of event-stream lines (bytes, without line ends) as
    ("comment", text), ("text", str), ("text64", str), ("binary", bytes),
    ("close", code, reason) or ("bad", why)."""
    event, data, comments = None, [], []
    for line in lines:
        if line.startswith(b":"):
            comments.append(line[1:].strip().decode("utf-8", "replace"))
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            return ("bad", "line without a colon %r" % line)
        if value.startswith(b" "):
            value = value[1:]
        if name == b"event":
            event = value.decode("utf-8", "replace")
        elif name == b"data":
            data.append(value)
        else:
            return ("bad", "unexpected field %r" % line)
    if not data and event is None:
        return ("comment", " ".join(comments))
    joined = b"\n".join(data)
    try:
        if event is None:
            return ("text", joined.decode("utf-8"))
        if event == "text64":
            return ("text64", base64.b64decode(joined, validate=True).decode("utf-8"))
        if event == "binary":
            return ("binary", base64.b64decode(joined, validate=True))
        if event == "close":
            code, _, reason = joined.decode("utf-8").partition(" ")
            return ("close", int(code), reason)
    except ValueError as e:
        return ("bad", "%s: %r" % (e, lines))
    return ("bad", "unknown event %r" % event)


class Resp:
    """One HTTP response, read raw: the head, then the body line by line."""

    def __init__(self, reader, writer, status, headers, head):
        self.reader, self.writer = reader, writer
        self.status, self.headers, self.head = status, headers, head
        self.partial = []             # lines of a block not yet complete
        self.raw = b""                # every body byte read so far
        self.eof = False

    def h(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    async def block(self, timeout):
        """The next block of lines up to an empty line: ("block", lines,
        raw bytes), ("eof", lines so far) or ("timeout",)."""
        end = time.monotonic() + timeout
        raw = b"".join(l + b"\n" for l in self.partial)
        while True:
            if self.eof:
                return ("eof", self.partial)
            try:
                line = await asyncio.wait_for(self.reader.readline(),
                                              max(0.001, end - time.monotonic()))
            except asyncio.TimeoutError:
                return ("timeout",)
            except (ConnectionError, OSError):
                line = b""
            self.raw += line
            if not line.endswith(b"\n"):
                self.eof = True
                if line:
                    self.partial.append(line)
                return ("eof", self.partial)
            raw += line
            line = line[:-1]
            if line == b"":
                lines, self.partial = self.partial, []
                if lines:
                    return ("block", lines, raw)
                raw = b""
                continue
            self.partial.append(line)

    async def msg(self, timeout):
        """The next event, decoded (see decode()), or ("eof",), ("timeout",)."""
        b = await self.block(timeout)
        if b[0] != "block":
            return (b[0],)
        return decode(b[1])

    async def msgs(self, timeout, count=None):
        """Events until the end of the response (or count of them, or the
        timeout): (list, how it ended: "eof", "timeout" or "count")."""
        out = []
        end = time.monotonic() + timeout
        while count is None or len(out) < count:
            m = await self.msg(max(0.001, end - time.monotonic()))
            if m[0] in ("eof", "timeout"):
                return out, m[0]
            out.append(m)
        return out, "count"

    async def body(self, timeout):
        """The whole (short) body of a refusal or a POST's answer."""
        n = self.h("Content-Length")
        try:
            if n is not None:
                return await asyncio.wait_for(self.reader.readexactly(int(n)), timeout)
            return await asyncio.wait_for(self.reader.read(), timeout)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
            return ("<%s>" % type(e).__name__).encode()

    def close(self):
        self.writer.transport.abort()

    def reset(self):
        """End the connection with a TCP reset, not in order."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


def data_msgs(ms):
    """Only the data messages (D...) of decoded events, as short tuples."""
    out = []
    for m in ms:
        if m[0] in ("text", "text64") and m[1][:1] == "D":
            out.append(m[1])
        elif m[0] == "binary":
            out.append(m[1])
    return out


def ended(r, how):
    """A poll answer read to its end is complete: it ended in order, its
    last lines the end marker, which it carries once."""
    return how == "eof" and r.raw.endswith(b"\n\n" + END_RAW) and r.raw.count(END_RAW) == 1


def before_end(ms):
    """The events of a poll answer without its end marker."""
    return ms[:-1] if ms[-1:] == [END] else ms


class Run(CheckRun):
    detail_max = 600

    def __init__(self, a):
        super().__init__(CHECKS)
        self.a = a
        self.t = a.timeout
        self.ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else None

    # -- HTTP, raw --------------------------------------------------------------

    async def request(self, method, path, headers=(), body=None, tls=False):
        port = self.a.tls_port if tls else self.a.port
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.a.host, port, ssl=self.ctx if tls else None, limit=1 << 26,
            server_hostname=self.a.host if tls else None), self.t)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: localhost:%d" % port]
        lines += ["%s: %s" % kv for kv in headers]
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body:
            writer.write(body)
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass                      # the answer may already be there (413)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 40)
        status_line, *hl = head.decode("latin-1").split("\r\n")
        hdrs = [tuple(x.strip() for x in l.split(":", 1)) for l in hl if ":" in l]
        return Resp(reader, writer, int(status_line.split(" ")[1]), hdrs, head)

    async def down(self, path, transport="sse", received=0, sid=None, poll_open=False,
                   extra=(), tls=False):
        h = [("WebSession-Transport", transport)]
        if received is not None:
            h.append(("WebSession-Received", str(received)))
        if sid:
            h.append(("Session-ID", sid))
        if poll_open:
            h.append(("WebSession-Poll", "open"))
        h.append(("Accept", "text/event-stream"))
        return await self.request("GET", path, h + list(extra), tls=tls)

    async def post(self, path, sid, seq, body, transport="sse", extra=(), tls=False):
        """(status, WebSession-Error, body text, Resp)."""
        h = [("WebSession-Transport", transport)]
        if sid:
            h.append(("Session-ID", sid))
        if seq is not None:
            h.append(("WebSession-Sequence", str(seq)))
        h.append(("Content-Type", "application/octet-stream"))
        r = await self.request("POST", path, h + list(extra), body, tls=tls)
        text = (await r.body(self.t)).decode("utf-8", "replace")
        r.close()
        return r.status, r.h("WebSession-Error"), text, r

    async def gone(self, path, transport, received, sid, code, pause):
        """A down request for a session whose close event (code) was read to
        its end and the connection closed in order: 410.  The keeper may
        notice that in-order close only after our next request (a loaded
        machine), and then rightly serves the close event again; such an
        answer is read to its end and closed in order too, and the request
        repeated after pause s, for up to SLACK s.  A server that keeps
        serving the close event still fails.  Returns (status,
        WebSession-Error, body or events, [(events, how) served before])."""
        end = time.monotonic() + SLACK
        again = []
        while True:
            await asyncio.sleep(pause)
            g = await self.down(path, transport, received, sid=sid)
            if g.status != 200:
                b = await g.body(self.t)
                g.close()
                return g.status, g.h("WebSession-Error"), b, again
            ms, how = await g.msgs(self.t)
            g.writer.close()
            last = before_end(ms) if transport == "poll" else ms
            if time.monotonic() >= end or how != "eof" or last[-1:] == [] or last[-1][:2] != ("close", code):
                return g.status, g.h("WebSession-Error"), ms, again
            again.append((ms, how))

    async def new(self, path, transport="sse", tls=False):
        """A new session, past comment, I and R0: (Resp, id)."""
        r = await self.down(path, transport, 0, poll_open=transport == "poll", tls=tls)
        sid = r.h("Session-ID")
        got = [await r.msg(self.t) for _ in range(3)]
        want = [("comment", V1), ("text", "I%s" % sid), ("text", "R0 %d" % WINDOW)]
        if r.status != 200 or got != want:
            raise AssertionError("new session on %s over %s: %s, %r" % (
                path, transport, r.status, got))
        if transport == "poll":
            r.close()
        return r, sid

    async def resume(self, path, sid, received, transport="sse", tls=False):
        """A resumed down request past its comment: (Resp, first message)."""
        r = await self.down(path, transport, received, sid=sid, tls=tls)
        c = await r.msg(self.t)
        if r.status != 200 or c != ("comment", V1):
            raise AssertionError("resume on %s: %s, %r" % (path, r.status, c))
        return r, await r.msg(self.t)

    async def data(self, r, n, timeout=None):
        """The next n data messages of a stream (other events skipped)."""
        out = []
        end = time.monotonic() + (timeout or self.t)
        while len(out) < n:
            m = await r.msg(max(0.001, end - time.monotonic()))
            if m[0] in ("eof", "timeout", "close", "bad"):
                out.append(m)
                break
            out += data_msgs([m])
        return out

    async def quiet(self, r, secs):
        """Data messages that arrive within secs (the stream should be quiet)."""
        ms, how = await r.msgs(secs)
        return data_msgs(ms), how

    async def ws(self, path, protocols=(V1,), sid=None):
        import websockets
        kw = dict(ping_interval=None, close_timeout=self.t, max_size=None,
                  compression=None, open_timeout=self.t)
        if protocols:
            kw["subprotocols"] = list(protocols)
        if sid:
            kw["extra_headers"] = {"Session-ID": sid}
        return await websockets.connect("ws://%s:%d%s" % (self.a.host, self.a.port, path), **kw)

    async def ws_next(self, c, skip_acks=True):
        import websockets
        while True:
            try:
                m = await asyncio.wait_for(c.recv(), self.t)
            except asyncio.TimeoutError:
                return ("timeout",)
            except websockets.ConnectionClosed:
                return ("closed", c.close_code, c.close_reason)
            if skip_acks and isinstance(m, str) and m[:1] == "A":
                continue
            return ("msg", m)

    # -- a new session over sse, messages, resume, close ---------------------------

    async def sse_basics(self):
        r = await self.down("/ws/count", "sse", 0)
        self.check("sse_new_200", r.status == 200, "status %s" % r.status)
        self.check("sse_new_content_type", r.h("Content-Type") == "text/event-stream",
                   "Content-Type: %r" % r.h("Content-Type"))
        self.check("sse_new_connection_close", (r.h("Connection") or "").lower() == "close",
                   "Connection: %r" % r.h("Connection"))
        self.check("sse_new_cache_control",
                   r.h("Cache-Control") == "no-cache, no-store" and r.h("X-Accel-Buffering") == "no",
                   "Cache-Control: %r, X-Accel-Buffering: %r"
                   % (r.h("Cache-Control"), r.h("X-Accel-Buffering")))
        self.check("sse_new_no_length",
                   r.h("Content-Length") is None and r.h("Transfer-Encoding") is None,
                   "Content-Length: %r, Transfer-Encoding: %r"
                   % (r.h("Content-Length"), r.h("Transfer-Encoding")))
        sid = r.h("Session-ID") or ""
        self.check("sse_new_session_id", ID_RE.match(sid), "Session-ID: %r" % sid)
        want = b": websession.v1\n\ndata: I%s\n\ndata: R0 %d\n\n" % (sid.encode(), WINDOW)
        blocks = [await r.block(self.t) for _ in range(3)]
        got = b"".join(b[2] for b in blocks if b[0] == "block")
        self.check("sse_new_body_start", got == want, "body began %r, want %r" % (got, want))
        rest, how = await r.msgs(1.0)
        self.check("sse_new_stays_open", not rest and how == "timeout",
                   "within 1 s: %r, %s" % (rest, how))

        st, err, text, p = await self.post("/ws/count", sid, 1, rec("Dhello"))
        self.check("post_answer_A1", (st, text) == (200, "A1")
                   and (p.h("Content-Type") or "").startswith("text/plain"),
                   "%s %r, Content-Type %r" % (st, text, p.h("Content-Type")))
        b = await r.block(self.t)
        self.check("sse_echo", b[0] == "block" and b[2] == b"data: D1 hello\n\n",
                   "down: %r" % (b,))

        # several records in one body, then two more POSTs
        st1, _, t1, _ = await self.post("/ws/count", sid, 2, recs(*("Dm%d" % i for i in range(2, 12))))
        st2, _, t2, _ = await self.post("/ws/count", sid, 12, rec("Dm12"))
        st3, _, t3, _ = await self.post("/ws/count", sid, 13, recs("Dm13", "Dm14"))
        got = await self.data(r, 13)
        want = ["D%d m%d" % (i, i) for i in range(2, 15)]
        self.check("post_batch_order", got == want and (t1, t2, t3) == ("A11", "A12", "A14"),
                   "answers %r; down %r" % ((st1, t1, st2, t2, st3, t3), got))

        # the very first POST again: taken before, dropped now
        st, _, text, _ = await self.post("/ws/count", sid, 1, rec("Dhello"))
        q, _ = await self.quiet(r, 0.5)
        st2, _, text2, _ = await self.post("/ws/count", sid, 15, rec("Dnext"))
        got = await self.data(r, 1)
        self.check("post_repeat_no_dup", (st, text) == (200, "A14") and not q
                   and got == ["D15 next"],
                   "repeat: %s %r, then down %r; the next message: %r %r"
                   % (st, text, q, text2, got))

        # 14, 15 again and a new 16 in one body: only 16 is taken
        st, _, text, _ = await self.post("/ws/count", sid, 14, recs("Dm14", "Dnext", "Dm16"))
        got = await self.data(r, 1)
        q, _ = await self.quiet(r, 0.3)
        self.check("post_overlap_takes_new", (st, text) == (200, "A16")
                   and got == ["D16 m16"] and not q,
                   "%s %r, down %r then %r" % (st, text, got, q))

        # a gap: the server has 16, the body starts at 18
        st, err, text, _ = await self.post("/ws/count", sid, 18, recs("Dm18", "Dm19"))
        self.check("post_gap_409", (st, err) == (409, "sequence-gap"),
                   "%s %s %r" % (st, err, text))
        q, _ = await self.quiet(r, 0.5)
        st2, _, text2, _ = await self.post("/ws/count", sid, 17, rec("Dm17"))
        got = await self.data(r, 1)
        self.check("post_gap_nothing_taken", not q and text2 == "A17" and got == ["D17 m17"],
                   "after the 409: down %r; then 17: %r, down %r" % (q, text2, got))

        # resume with Received 14: R17, then D15..D17 again, nothing before
        r.close()
        r2 = await self.down("/ws/count", "sse", 14, sid=sid)
        self.check("sse_resume_headers", r2.status == 200 and r2.h("Session-ID") is None
                   and r2.h("Content-Type") == "text/event-stream",
                   "%s, Session-ID %r, Content-Type %r"
                   % (r2.status, r2.h("Session-ID"), r2.h("Content-Type")))
        ms, _ = await r2.msgs(self.t, count=5)
        want = [("comment", V1), ("text", "R17 %d" % WINDOW), ("text", "D15 next"),
                ("text", "D16 m16"), ("text", "D17 m17")]
        q, _ = await self.quiet(r2, 0.3)
        self.check("sse_resume_replay", ms == want and not q,
                   "got %r then %r, want %r" % (ms, q, want))

        # an acknowledgement alone (no D: any sequence number)
        st, err, text, _ = await self.post("/ws/count", sid, 1, rec("A17"))
        self.check("post_ack_only", (st, text) == (200, "A17"), "%s %s %r" % (st, err, text))

        # a newer down request evicts this one: it ends without a close event
        r3, first = await self.resume("/ws/count", sid, 17)
        ms, how = await r2.msgs(self.t)
        st, _, text, _ = await self.post("/ws/count", sid, 18, rec("Dafter"))
        got = await self.data(r3, 1)
        self.check("sse_evicted_by_newer", how == "eof" and not any(m[0] == "close" for m in ms)
                   and first == ("text", "R17 %d" % WINDOW) and got == ["D18 after"],
                   "old stream: %r, %s; new: %r, %r" % (ms, how, first, got))

        # the client's close: C1000, the close event, the end
        st, err, text, _ = await self.post("/ws/count", sid, 19, rec("C1000"))
        ms, how = await r3.msgs(self.t)
        closes = [m for m in ms if m[0] == "close"]
        self.check("sse_C1000_close_event", st == 200 and closes and closes[0][1] == 1000,
                   "POST %s %r; down %r" % (st, text, ms))
        self.check("sse_close_then_eof", how == "eof" and ms and ms[-1][0] == "close",
                   "down %r, %s" % (ms, how))
        self.check("sse_no_end_marker", END_RAW not in r2.raw + r3.raw and END not in ms,
                   "an event stream carries no poll end marker: evicted %r, closed %r"
                   % (r2.raw[-60:], r3.raw[-60:]))
        r3.writer.close()
        st, err, gb, again = await self.gone("/ws/count", "sse", 18, sid, 1000, 0.3)
        self.check("after_close_410_get", (st, err) == (410, "session-unknown"),
                   "%s %s %r; the close event served again before: %d times"
                   % (st, err, gb, len(again)))
        st, err, text, _ = await self.post("/ws/count", sid, 19, rec("Dlate"))
        self.check("after_close_410_post", (st, err) == (410, "session-unknown"),
                   "%s %s %r" % (st, err, text))

        # A down request whose resume point is below what the client has
        # acknowledged is an older request that a proxy delivered late:
        # refused as stale before any stream, the session and its current
        # stream untouched (a WebSocket resume that low is 4409:
        # t/clients/v1_protocol.py).
        r, sid = await self.new("/ws/count")
        await self.post("/ws/count", sid, 1, recs("Da", "Db", "Dc"))
        got = await self.data(r, 3)
        r.close()
        r = await self.down("/ws/count", "sse", 3, sid=sid)     # acknowledges 3
        first = [await r.msg(self.t) for _ in range(2)]
        g = await self.down("/ws/count", "sse", 1, sid=sid)
        gb = (await g.body(self.t)).decode("utf-8", "replace")
        g.close()
        self.check("stale_get_409", (g.status, g.h("WebSession-Error")) == (409, "stale-request")
                   and (g.h("Content-Type") or "").startswith("text/plain") and gb.strip()
                   and g.h("Session-ID") is None,
                   "Received 1 after 3: %s %s, Content-Type %r, Session-ID %r, %r"
                   % (g.status, g.h("WebSession-Error"), g.h("Content-Type"),
                      g.h("Session-ID"), gb[:200]))
        q, qhow = await self.quiet(r, 0.3)
        st, _, text, _ = await self.post("/ws/count", sid, 4, rec("Dd"))
        after = await self.data(r, 1)
        self.check("stale_get_keeps_stream",
                   got == ["D1 a", "D2 b", "D3 c"]
                   and first == [("comment", V1), ("text", "R3 %d" % WINDOW)]
                   and not q and qhow == "timeout" and text == "A4" and after == ["D4 d"],
                   "before: %r, %r; after the stale request the stream brought %r, %s;"
                   " POST Dd: %r, then %r" % (got, first, q, qhow, text, after))
        await self.post("/ws/count", sid, 5, rec("C1000"))
        r.close()

        # another code: the close event carries the same code
        r, sid = await self.new("/framed")
        st, _, text, _ = await self.post("/framed", sid, 1, rec("C3001 going"))
        ms, how = await r.msgs(self.t)
        self.check("C_code_echoed", st == 200 and ms and ms[-1][:2] == ("close", 3001)
                   and how == "eof", "POST %s %r; down %r, %s" % (st, text, ms, how))
        r.writer.close()

    # -- poll -----------------------------------------------------------------

    async def poll(self):
        # "At once" below means: not waiting for the POLL_WAIT s a poll with
        # nothing to say waits (AT_ONCE s allowed, whatever the load); that
        # such a poll does wait is checked on its own (poll_waits,
        # poll_new_count_waits, poll_idle_25s).
        t0 = time.monotonic()
        r = await self.down("/ws/count", "poll", 0, poll_open=True)
        sid = r.h("Session-ID") or ""
        ms, how = await r.msgs(max(0.01, t0 + AT_ONCE - time.monotonic()))
        took = time.monotonic() - t0
        self.check("poll_new_headers",
                   r.status == 200 and r.h("Content-Type") == "text/event-stream"
                   and (r.h("Connection") or "").lower() == "close"
                   and r.h("Cache-Control") == "no-cache, no-store" and ID_RE.match(sid)
                   and r.h("Content-Length") is None,
                   "%s %r" % (r.status, r.headers))
        want = [("comment", V1), ("text", "I%s" % sid), ("text", "R0 %d" % WINDOW), END]
        self._polls = [("open", ended(r, how), r.raw[-40:])]
        self.check("poll_open_at_once", ms == want and how == "eof" and took < AT_ONCE,
                   "%r, %s after %.2f s (want the end within %g s, not the %d s wait)"
                   % (ms, how, took, AT_ONCE, POLL_WAIT))
        r.writer.close()

        # a poll with nothing to say waits
        r = await self.down("/ws/count", "poll", 0, sid=sid)
        ms, how = await r.msgs(1.0)
        self.check("poll_waits", how == "timeout" and not data_msgs(ms),
                   "within 1 s: %r, %s" % (ms, how))
        t0 = time.monotonic()
        st, _, text, _ = await self.post("/ws/count", sid, 1, rec("Dx"), transport="poll")
        more, how = await r.msgs(max(0.01, t0 + AT_ONCE - time.monotonic()))
        ms += more
        took = time.monotonic() - t0
        self.check("poll_wakes_on_post", text == "A1" and data_msgs(ms) == ["D1 x"]
                   and how == "eof" and took < AT_ONCE,
                   "POST %r; the poll: %r, %s, %.2f s after the POST (want the end within"
                   " %g s, not at the poll's %d s timeout)" % (text, ms, how, took, AT_ONCE,
                                                                POLL_WAIT))
        self._polls.append(("woken", ended(r, how), r.raw[-40:]))
        self.check("poll_fresh_R", [m for m in ms if m[0] != "comment"][:1] == [("text", "R0 %d" % WINDOW)],
                   "the poll's answer: %r" % ms)
        r.writer.close()

        # its answer was "lost": the same count again gets the same messages
        r = await self.down("/ws/count", "poll", 0, sid=sid)
        ms, how = await r.msgs(self.t)
        self.check("poll_lost_repeat", ms == [("comment", V1), ("text", "R1 %d" % WINDOW),
                                              ("text", "D1 x"), END] and how == "eof",
                   "%r, %s" % (ms, how))
        self._polls.append(("repeated", ended(r, how), r.raw[-40:]))
        r.writer.close()

        # the new count acknowledges: nothing to say, it waits again
        r = await self.down("/ws/count", "poll", 1, sid=sid)
        ms, how = await r.msgs(1.0)
        self.check("poll_new_count_waits", how == "timeout" and not data_msgs(ms),
                   "%r, %s" % (ms, how))
        # several at once: every one of them, in order, in as many polls as it takes
        st, _, text, _ = await self.post("/ws/count", sid, 2,
                                         recs(*("Dp%d" % i for i in range(2, 7))), "poll")
        got, polls, rx = [], 0, 1
        while len(got) < 5 and polls < 6:
            more, how = await r.msgs(self.t)
            r.writer.close()
            polls += 1
            self._polls.append(("batch %d" % polls, ended(r, how), r.raw[-40:]))
            got += data_msgs(more)
            rx = 1 + len(got)
            if len(got) < 5:
                r = await self.down("/ws/count", "poll", rx, sid=sid)
        self.check("poll_batch", text == "A6" and got == ["D%d p%d" % (i, i) for i in range(2, 7)],
                   "POST %r; %d polls: %r" % (text, polls, got))

        # a poll that waits, evicted by a newer one (the client's open poll
        # of a resume): cut, so no end marker
        cut = await self.down("/ws/count", "poll", 6, sid=sid)
        early = [await cut.msg(self.t) for _ in range(2)]     # attached: it waits
        # "open" on a resumed session: R suffices, at once
        t0 = time.monotonic()
        r = await self.down("/ws/count", "poll", 6, sid=sid, poll_open=True)
        ms, how = await r.msgs(max(0.01, t0 + AT_ONCE - time.monotonic()))
        took = time.monotonic() - t0
        self.check("poll_open_resume_at_once",
                   ms == [("comment", V1), ("text", "R6 %d" % WINDOW), END]
                   and how == "eof" and took < AT_ONCE,
                   "%r, %s after %.2f s (want the end within %g s, not the %d s wait)"
                   % (ms, how, took, AT_ONCE, POLL_WAIT))
        self._polls.append(("open resume", ended(r, how), r.raw[-40:]))
        r.writer.close()
        cms, chow = await cut.msgs(self.t)
        cms = early + cms
        self.check("poll_cut_no_marker", cms == [("comment", V1), ("text", "R6 %d" % WINDOW)]
                   and chow == "eof" and END_RAW not in cut.raw,
                   "the evicted poll: %r, %s, its last bytes %r" % (cms, chow, cut.raw[-40:]))
        cut.writer.close()

        # a poll older than the one that waits (its count, 2, below the 6
        # acknowledged), delivered late: refused, and the waiting poll waits on
        w = await self.down("/ws/count", "poll", 6, sid=sid)
        wfirst = [await w.msg(self.t) for _ in range(2)]        # attached: it waits
        g = await self.down("/ws/count", "poll", 2, sid=sid)
        gb = (await g.body(self.t)).decode("utf-8", "replace")
        g.close()
        q, qhow = await w.msgs(0.5)
        st, _, text, _ = await self.post("/ws/count", sid, 7, rec("Dz"), "poll")
        wms, whow = await w.msgs(self.t)
        self.check("stale_get_poll_409",
                   (g.status, g.h("WebSession-Error")) == (409, "stale-request")
                   and wfirst == [("comment", V1), ("text", "R6 %d" % WINDOW)]
                   and not q and qhow == "timeout" and text == "A7"
                   and wms == [("text", "D7 z"), END] and ended(w, whow),
                   "a poll with Received 2 while one with 6 waits: %s %s %r; the waiting poll:"
                   " %r, then %r, %s; after POST Dz (%r): %r, %s"
                   % (g.status, g.h("WebSession-Error"), gb[:120], wfirst, q, qhow, text,
                      wms, whow))
        w.writer.close()

        # C over poll: the next poll carries the close event
        st, _, text, _ = await self.post("/ws/count", sid, 8, rec("C1000"), "poll")
        r = await self.down("/ws/count", "poll", 7, sid=sid)
        ms, how = await r.msgs(self.t)
        self.check("poll_close_event", st == 200 and ms[-2:-1] and ms[-2][:2] == ("close", 1000)
                   and ms[-1] == END and how == "eof",
                   "POST %s %r; poll %r, %s (want the close event, then the end marker)"
                   % (st, text, ms, how))
        self._polls.append(("close event", ended(r, how), r.raw[-40:]))
        r.writer.close()
        bad = [(name, tail) for name, ok, tail in self._polls if not ok]
        self.check("poll_end_marker", not bad and len(self._polls) >= 6,
                   "%d complete poll answers; without '\\n\\n: end\\n\\n' as their last and only"
                   " marker: %r" % (len(self._polls), bad))

    async def poll_idle(self):
        """One poll with nothing to say, for its full 25 seconds (runs
        beside the other steps)."""
        r, sid = await self.new("/ws/echo", "poll")
        t0 = time.monotonic()
        r = await self.down("/ws/echo", "poll", 0, sid=sid)
        ms, how = await r.msgs(POLL_WAIT + 3 * SLACK)
        took = time.monotonic() - t0
        self.check("poll_idle_25s", ms == [("comment", V1), ("text", "R0 %d" % WINDOW), END]
                   and ended(r, how) and POLL_WAIT - 1 <= took <= POLL_WAIT + SLACK,
                   "%r, %s after %.1f s" % (ms, how, took))
        r.writer.close()
        await self.post("/ws/echo", sid, 1, rec("C1000"), "poll")

    # -- event encoding -----------------------------------------------------------

    async def framed(self):
        r, sid = await self.new("/framed")
        seq = [0]

        async def one(payload):
            seq[0] += 1
            st, _, text, _ = await self.post("/framed", sid, seq[0], rec(payload))
            b = await r.block(self.t)
            return (st, text), b

        allbytes = bytes(range(256))
        ans, b = await one(b"D" + allbytes)
        want = b"event: binary\ndata: " + base64.b64encode(b"D" + allbytes) + b"\n\n"
        self.check("framed_binary_all_bytes", ans == (200, "A1") and b[0] == "block" and b[2] == want,
                   "POST %r; down %r" % (ans, b))
        ans, b = await one("Da\rb\r\n")
        want = b"event: text64\ndata: " + base64.b64encode("Da\rb\r\n".encode()) + b"\n\n"
        self.check("framed_text_cr_text64", b[0] == "block" and b[2] == want,
                   "down %r, want %r (base64 of the whole message, D included)" % (b, want))
        ans, b = await one("Dtwo\nlines\nthree")
        self.check("framed_multiline",
                   b[0] == "block" and b[2] == b"data: Dtwo\ndata: lines\ndata: three\n\n",
                   "down %r" % (b,))
        ans, b = await one("Dend\n")
        self.check("framed_trailing_lf", b[0] == "block" and b[2] == b"data: Dend\ndata: \n\n",
                   "down %r" % (b,))
        ans, b = await one("D")
        self.check("framed_empty_text", b[0] == "block" and b[2] == b"data: D\n\n",
                   "down %r" % (b,))
        ans, b = await one("Dh\u00e9 \u2713 \U0001F600")
        self.check("framed_utf8", b[0] == "block"
                   and b[2] == "data: Dh\u00e9 \u2713 \U0001F600\n\n".encode(),
                   "down %r" % (b,))
        big = os.urandom(200000)
        ans, b = await one(b"D" + big)
        self.check("framed_binary_large", ans == (200, "A7") and b[0] == "block"
                   and decode(b[1]) == ("binary", b"D" + big) and len(b[1]) == 2,
                   "POST %r; down %s lines, %s" % (ans, len(b[1]) if b[0] == "block" else b,
                                                   decode(b[1])[:1] if b[0] == "block" else ""))
        # a text record carrying D is a text message, a B record a binary one
        ans, b = await one(b"Dbytes")
        self.check("post_binary_record_text_D", b[0] == "block"
                   and b[2] == b"event: binary\ndata: " + base64.b64encode(b"Dbytes") + b"\n\n",
                   "B record 'Dbytes' came down as %r" % (b,))
        r.close()
        # binary over poll
        p = await self.down("/framed", "poll", 8, sid=sid)
        ms, how = await p.msgs(1.0)
        st, _, text, _ = await self.post("/framed", sid, 9, rec(b"D\x00\n\xff"), "poll")
        more, how = await p.msgs(self.t)
        ms += more
        self.check("framed_binary_poll", ("binary", b"D\x00\n\xff") in ms and how == "eof",
                   "POST %r; poll %r, %s" % (text, ms, how))
        p.writer.close()
        await self.post("/framed", sid, 10, rec("C1000"))

    # -- scripts that end ---------------------------------------------------------

    async def exits(self):
        r, sid = await self.new("/ws/exit0")
        await self.post("/ws/exit0", sid, 1, rec("Dx"))
        ms, how = await r.msgs(self.t)
        self.check("exit0_bye_then_1000", data_msgs(ms) == ["Dbye x"]
                   and ms[-1][:2] == ("close", 1000) and how == "eof", "%r, %s" % (ms, how))
        r.writer.close()
        r, sid = await self.new("/ws/exit3")
        await self.post("/ws/exit3", sid, 1, rec("Dx"))
        ms, how = await r.msgs(self.t)
        self.check("exit3_4003", ms == [("close", 4003, "script exited with status 3")] and how == "eof",
                   "%r, %s" % (ms, how))
        r.writer.close()
        r, sid = await self.new("/ws/killself")
        await self.post("/ws/killself", sid, 1, rec("Dx"))
        ms, how = await r.msgs(self.t)
        self.check("killself_4309", ms == [("close", 4309, "script killed by signal 9")] and how == "eof",
                   "%r, %s" % (ms, how))
        r.writer.close()
        r, sid = await self.new("/ws/exit3", "poll")
        p = await self.down("/ws/exit3", "poll", 0, sid=sid)
        await self.post("/ws/exit3", sid, 1, rec("Dx"), "poll")
        ms, how = await p.msgs(self.t)
        self.check("exit3_over_poll", ms[-2:] == [("close", 4003, "script exited with status 3"), END]
                   and how == "eof", "%r, %s" % (ms, how))
        p.writer.close()

        # the script exits while no down request is there: the next poll
        # carries the close event
        r, sid = await self.new("/ws/exit5-later", "poll")
        st, _, text, _ = await self.post("/ws/exit5-later", sid, 1, rec("Dx"), "poll")
        await asyncio.sleep(1.8)
        p = await self.down("/ws/exit5-later", "poll", 0, sid=sid)
        ms, how = await p.msgs(self.t)
        self.check("exit_while_away_poll", ms == [("comment", V1), ("text", "R1 %d" % WINDOW),
                                                  ("close", 4005, "script exited with status 5"), END]
                   and how == "eof", "POST %r; 1.8 s later the poll: %r, %s" % (text, ms, how))
        # ... that connection ended with a reset, not in order: the close
        # event is served again
        p.reset()
        await asyncio.sleep(0.3)
        p = await self.down("/ws/exit5-later", "poll", 0, sid=sid)
        ms, how = await p.msgs(self.t)
        self.check("close_event_again_after_cut", ms[-2:] == [("close", 4005, "script exited with status 5"), END]
                   and how == "eof", "after a reset: %s %r, %s" % (p.status, ms, how))
        # ... read to its end and closed in order: the session is over
        p.writer.close()
        st, err, b, again = await self.gone("/ws/exit5-later", "poll", 0, sid, 4005, 0.5)
        self.check("close_event_once_in_order", (st, err) == (410, "session-unknown"),
                   "after an in-order end: %s %s %r; the close event served again before"
                   " (its in-order end not yet seen): %d times" % (st, err, b, len(again)))

    async def server_closes(self):
        """Closes the server decides on, as on a WebSocket: a binary
        message in lines mode is 1003."""
        r, sid = await self.new("/ws/count")
        st, err, text, _ = await self.post("/ws/count", sid, 1, rec(b"Dcd"))
        ms, how = await r.msgs(self.t)
        self.check("binary_in_lines_1003", ms[-1:] and ms[-1][:2] == ("close", 1003) and how == "eof",
                   "POST of a B record to /ws/count: %s %s %r; down %r, %s" % (st, err, text, ms, how))
        r.writer.close()
        # ... with no down request there at that moment (between polls): the
        # close event waits for the next one, as a script's exit status does
        _, sid = await self.new("/ws/count", "poll")
        st, err, text, _ = await self.post("/ws/count", sid, 1, rec(b"Dcd"), "poll")
        await asyncio.sleep(0.2)
        p = await self.down("/ws/count", "poll", 0, sid=sid)
        if p.status == 200:
            ms, how = await p.msgs(self.t)
        else:
            ms, how = [("status", p.status, p.h("WebSession-Error"))], (await p.body(self.t))
        self.check("binary_in_lines_1003_later", ms[-2:-1] and ms[-2][:2] == ("close", 1003)
                   and ms[-1] == END,
                   "POST of a B record between polls: %s %s %r; the next poll: %r, %r"
                   % (st, err, text, ms, how))
        p.close()

    # -- resume across transports -----------------------------------------------------

    async def cross(self):
        # a websession.v1 WebSocket session, resumed over sse
        c = await self.ws("/ws/count")
        sid = c.response_headers.get("Session-ID")
        await self.ws_next(c)
        await self.ws_next(c)                      # I, R0
        await c.send("R0")
        await c.send("Da")
        first = await self.ws_next(c)
        c.transport.abort()
        r, rr = await self.resume("/ws/count", sid, 1)
        st, _, text, _ = await self.post("/ws/count", sid, 2, rec("Db"))
        got = await self.data(r, 1)
        self.check("ws_v1_to_sse", first == ("msg", "D1 a") and rr == ("text", "R1 %d" % WINDOW)
                   and text == "A2" and got == ["D2 b"],
                   "ws %r; sse R %r, POST %r, down %r" % (first, rr, text, got))
        r.close()
        # ... and back over a WebSocket (Session-ID header)
        c = await self.ws("/ws/count", sid=sid)
        rr = await self.ws_next(c)
        await c.send("R2")
        await c.send("Dc")
        got = await self.ws_next(c)
        self.check("sse_to_ws_v1", c.subprotocol == V1 and rr == ("msg", "R2 %d" % WINDOW)
                   and got == ("msg", "D3 c"), "R %r, then %r" % (rr, got))
        await asyncio.wait_for(c.close(1000), self.t)

        # poll -> sse -> poll
        _, sid = await self.new("/ws/count", "poll")
        st, _, text, _ = await self.post("/ws/count", sid, 1, rec("Dp"), "poll")
        p = await self.down("/ws/count", "poll", 0, sid=sid)
        pm, _ = await p.msgs(self.t)
        p.writer.close()
        r, rr = await self.resume("/ws/count", sid, 1)
        await self.post("/ws/count", sid, 2, rec("Ds"))
        got = await self.data(r, 1)
        self.check("poll_to_sse", data_msgs(pm) == ["D1 p"] and rr == ("text", "R1 %d" % WINDOW)
                   and got == ["D2 s"], "poll %r; sse %r, %r" % (pm, rr, got))
        r.close()
        await self.post("/ws/count", sid, 3, rec("Dq"), "poll")
        p = await self.down("/ws/count", "poll", 2, sid=sid)
        pm, how = await p.msgs(self.t)
        self.check("sse_to_poll", pm == [("comment", V1), ("text", "R3 %d" % WINDOW),
                                         ("text", "D3 q"), END] and how == "eof",
                   "%r, %s" % (pm, how))
        p.writer.close()
        await self.post("/ws/count", sid, 4, rec("C1000"), "poll")

        # a plain WebSocket session cannot resume over HTTP: 4400 in band
        c = await self.ws("/ws/count", protocols=())
        psid = c.response_headers.get("Session-ID")
        await c.send("a")
        first = await self.ws_next(c, skip_acks=False)
        c.transport.abort()
        for name, tr in (("plain_ws_to_sse_4400", "sse"), ("plain_ws_to_poll_4400", "poll")):
            r = await self.down("/ws/count", tr, 0, sid=psid)
            ms, how = await r.msgs(self.t)
            # a poll answer ends with the marker after the close event
            last = ms[-2:] if tr == "poll" else ms[-1:] + [END]
            self.check(name, r.status == 200 and ms[:1] == [("comment", V1)]
                       and [m for m in ms[1:] if m[0] != "comment"][:1]
                       and last[:1] and last[0][:2] == ("close", 4400) and last[1:] == [END]
                       and (tr == "poll" or END not in ms)
                       and not data_msgs(ms) and not any(m[1][:1] in "IR" for m in ms
                                                         if m[0] == "text") and how == "eof",
                       "plain 'a' -> %r; %s %r, %s" % (first, r.status, ms, how))
            r.writer.close()
        c = await self.ws("/ws/count", protocols=(), sid=psid)
        await c.send("b")
        got = await self.ws_next(c, skip_acks=False)
        self.check("plain_ws_survives_4400", got == ("msg", "2 b"), "plain resume: 'b' -> %r" % (got,))
        # ... nor be reached by a POST: refused, and none of its records (a
        # D numbered as the first, a C) is taken
        st, err, text, _ = await self.post("/ws/count", psid, 1, recs("Dx", "C1000"))
        self.check("post_plain_ws_400", (st, err) == (400, "protocol-mismatch"),
                   "%s %s %r" % (st, err, text))
        try:
            await c.send("c")
        except Exception:
            pass                      # (closed: what ws_next reports)
        got = await self.ws_next(c, skip_acks=False)
        self.check("post_plain_ws_nothing_taken", got == ("msg", "3 c"),
                   "after the POST, plain 'c' -> %r (want '3 c': 'x' not delivered, no close)"
                   % (got,))
        await asyncio.wait_for(c.close(1000), self.t)

        # a session started over sse resumed as a plain WebSocket: 4400
        r, sid = await self.new("/ws/count")
        await self.post("/ws/count", sid, 1, rec("Da"))
        first = await self.data(r, 1)
        r.close()
        c = await self.ws("/ws/count", protocols=(), sid=sid)
        got = await self.ws_next(c, skip_acks=False)
        self.check("sse_to_plain_ws_4400", first == ["D1 a"] and got[:2] == ("closed", 4400),
                   "sse %r; plain WebSocket resume: %r" % (first, got))
        c.transport.abort()
        r, rr = await self.resume("/ws/count", sid, 1)
        await self.post("/ws/count", sid, 1, rec("C1000"))
        r.close()

        # a resume point beyond what the server sent
        r, sid = await self.new("/ws/count")
        await self.post("/ws/count", sid, 1, rec("Da"))
        await self.data(r, 1)
        r.close()
        r = await self.down("/ws/count", "sse", 5, sid=sid)
        ms, how = await r.msgs(self.t)
        self.check("resume_beyond_4409", r.status == 200 and ms and ms[-1][:2] == ("close", 4409)
                   and not data_msgs(ms) and how == "eof", "%s %r, %s" % (r.status, ms, how))
        r.writer.close()

    # -- a flood behind a down request ---------------------------------------------------

    async def flood(self):
        """6 MiB right behind a new sse request's head, more than an attach
        may carry (4 MiB): the stream is the comment and the close event 1008,
        then its end.  Whether httpd's first read after the headers finds
        more than 4 MiB waiting is a race with our writes; queued at once in
        a large send buffer it nearly always does, and an attempt where it
        all fitted (the stream goes on with I and R) is made again, up to 5
        times."""
        head = ("GET /ws/count HTTP/1.1\r\nHost: localhost:%d\r\nWebSession-Transport: sse\r\n"
                "WebSession-Received: 0\r\nAccept: text/event-stream\r\n\r\n"
                % self.a.port).encode()
        for attempt in range(1, 6):
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, 32, 64 << 20)   # SO_SNDBUFFORCE (root)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
            s.connect((self.a.host, self.a.port))
            s.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=s, limit=1 << 26)
            writer.write(head + b"x" * (6 << 20))
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.t)
            status = int(raw.split(b" ")[1])
            r = Resp(reader, writer, status, [], raw)
            ms, how = await r.msgs(self.t, count=2)
            if status != 200 or ms[1:2] == [] or ms[1][0] != "text" or ms[1][1][:1] != "I":
                break
            r.close()                 # it all fitted: the session started; again
        rest, how = await r.msgs(self.t)
        r.close()
        self.check("get_flood_1008", status == 200 and ms == [
                       ("comment", V1), ("close", 1008, "more than 4 MiB sent right behind the handshake")]
                   and not rest and how == "eof",
                   "%d attempt(s): %s %r, then %r, %s" % (attempt, status, ms, rest, how))

    # -- refusals ---------------------------------------------------------------------

    async def refused(self, name, st_want, err_want, method="GET", path="/ws/count",
                      headers=(), body=None):
        r = await self.request(method, path, list(headers), body)
        text = await r.body(self.t)
        r.close()
        ok = r.status == st_want and r.h("WebSession-Error") == err_want
        self.check(name, ok, "%s %s %r" % (r.status, r.h("WebSession-Error"), text[:200]))
        self._plain.append((name, r.h("Content-Type"), text))
        return r

    async def bad_gets(self):
        self._plain = []
        sse = ("WebSession-Transport", "sse")
        r0 = ("WebSession-Received", "0")
        await self.refused("get_bad_transport_400", 400, "bad-request",
                           headers=[("WebSession-Transport", "longpoll"), r0])
        await self.refused("get_transport_websocket_400", 400, "bad-request",
                           headers=[("WebSession-Transport", "websocket"), r0])
        await self.refused("get_received_missing_400", 400, "bad-request", headers=[sse])
        bad = []
        for v in ("01", "-1", "1x", "x", "", "1 2", "123456789012345678901"):
            r = await self.request("GET", "/ws/count", [sse, ("WebSession-Received", v)])
            await r.body(self.t)
            r.close()
            if (r.status, r.h("WebSession-Error")) != (400, "bad-request"):
                bad.append((v, r.status, r.h("WebSession-Error")))
        self.check("get_received_malformed_400", not bad, "not refused with 400 bad-request: %r" % bad)
        await self.refused("get_received_nonzero_new_400", 400, "bad-request",
                           headers=[sse, ("WebSession-Received", "3")])
        bad = []
        for tr, v in (("poll", "yes"), ("poll", "open, open"), ("poll", "opened"),
                      ("sse", "open")):
            r = await self.request("GET", "/ws/count", [("WebSession-Transport", tr), r0,
                                                        ("WebSession-Poll", v)])
            await r.body(self.t)
            r.close()
            if (r.status, r.h("WebSession-Error")) != (400, "bad-request"):
                bad.append((tr, v, r.status, r.h("WebSession-Error")))
        self.check("get_poll_bad_400", not bad,
                   "WebSession-Poll other than 'open', or on sse: not refused with 400"
                   " bad-request: %r" % bad)
        await self.refused("get_sid_malformed_400", 400, "session-id-malformed",
                           headers=[sse, r0, ("Session-ID", "abc")])
        unknown = base64.urlsafe_b64encode(os.urandom(24)).decode()
        await self.refused("get_sid_unknown_410", 410, "session-unknown",
                           headers=[sse, r0, ("Session-ID", unknown)])
        await self.refused("put_405", 405, "bad-method", method="PUT",
                           headers=[sse, r0], body=b"")
        await self.head_refused()
        await self.refused("plain_get_426", 426, "upgrade-required")
        await self.refused("origin_refused_403", 403, "origin-refused", path="/origin-list",
                           headers=[sse, r0, ("Origin", "http://evil.example")])
        await self.refused("broken_script_500", 500, "script-failed", path="/broken",
                           headers=[sse, r0])
        notplain = [(n, ct, t[:60]) for n, ct, t in self._plain
                    if not (ct or "").startswith("text/plain") or not t.strip()]
        self.check("errors_text_plain", not notplain,
                   "refusals without a text/plain explanation: %r" % notplain)

    async def head_refused(self):
        """HEAD is neither GET nor POST: 405, and no session."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.a.host, self.a.port), self.t)
        writer.write(("HEAD /ws/count HTTP/1.1\r\nHost: localhost:%d\r\n"
                      "WebSession-Transport: sse\r\nWebSession-Received: 0\r\n\r\n"
                      % self.a.port).encode())
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                more = await asyncio.wait_for(reader.read(4096), 3)
                if not more:
                    break
                got += more
        except asyncio.TimeoutError:
            pass
        writer.transport.abort()
        head = got.split(b"\r\n\r\n")[0].decode("latin-1")
        self.check("head_405", head.startswith("HTTP/1.1 405 ")
                   and "WebSession-Error: bad-method" in head and "Session-ID:" not in head,
                   "HEAD with WebSession-Transport: sse answered %r" % got[:300])

    async def bad_posts(self):
        self._plain = []
        r, sid = await self.new("/ws/count")
        tr = ("WebSession-Transport", "sse")
        s = ("Session-ID", sid)
        ct = ("Content-Type", "application/octet-stream")
        await self.refused("post_no_sequence_400", 400, "bad-request", "POST",
                           headers=[tr, s, ct], body=rec("Dx"))
        bad = []
        for v in ("x", "01", "-1", "1.0", "", "0"):
            st, err, text, _ = await self.post("/ws/count", sid, v, rec("Dx"))
            if (st, err) != (400, "bad-request"):
                bad.append((v, st, err, text))
        self.check("post_bad_sequence_400", not bad, "not refused with 400 bad-request: %r" % bad)
        st, err, text, _ = await self.post("/ws/count", "abc", 1, rec("Dx"))
        self.check("post_sid_malformed_400", (st, err) == (400, "session-id-malformed"),
                   "%s %s %r" % (st, err, text))
        unknown = base64.urlsafe_b64encode(os.urandom(24)).decode()
        st, err, text, _ = await self.post("/ws/count", unknown, 1, rec("Dx"))
        self.check("post_sid_unknown_410", (st, err) == (410, "session-unknown"),
                   "%s %s %r" % (st, err, text))
        # the session's real id from a foreign page (/ws/count: same origin only)
        evil = await self.post("/ws/count", sid, 1, rec("Devil"),
                               extra=[("Origin", "http://evil.example")])
        # none of the refusals above touched the session
        st, _, text, _ = await self.post("/ws/count", sid, 1, rec("Dok"))
        got = await self.data(r, 1)
        self.check("post_origin_refused_403",
                   evil[:2] == (403, "origin-refused") and got == ["D1 ok"],
                   "%s %s %r; then the session echoed %r" % (evil[0], evil[1], evil[2], got))
        if (text, got) != ("A1", ["D1 ok"]):
            raise AssertionError("after refused POSTs: %r, %r" % (text, got))
        r.close()

        async def proto_error(name, body):
            r, sid = await self.new("/ws/echo")
            st, err, text, _ = await self.post("/ws/echo", sid, 1, body)
            ok = (st, err) == (400, "protocol-error")
            ms, how = await r.msgs(self.t)
            detail = "%r: %s %s %r; down %r, %s" % (body[:40], st, err, text, ms, how)
            self.check(name, ok, detail)
            r.writer.close()
            return ms, how, detail

        bad, details = [], []
        for body in (b"T 5\nDab\n", b"X 1\nD\n", b"T 01\nD\n", b"T1\nD\n", b"T 2\nDab\n",
                     b"T 3\nDab", b"t 1\nD\n", b"B 2\nA0\n", b"T 2\nZ1\n"):
            r, sid = await self.new("/ws/echo")
            st, err, text, _ = await self.post("/ws/echo", sid, 1, body)
            r.close()
            details.append("%r: %s %s" % (body, st, err))
            if (st, err) != (400, "protocol-error"):
                bad.append(details[-1])
        self.check("post_malformed_record_400", not bad, "; ".join(bad or details))
        ms, how, detail = await proto_error("post_R_400", rec("R0"))
        await proto_error("post_P_400", rec("P"))
        await proto_error("post_I_400", rec("I" + "a" * 32))
        bad = []
        for c in ("C", "C999", "C1005", "C5000", "Cx", "C01000"):
            r, sid = await self.new("/ws/echo")
            st, err, text, _ = await self.post("/ws/echo", sid, 1, rec(c))
            r.close()
            if (st, err) != (400, "protocol-error"):
                bad.append("%r: %s %s %r" % (c, st, err, text))
        self.check("post_bad_C_400", not bad, "; ".join(bad))
        # C is the last record of a body: anything after it is refused whole
        bad, first = [], None
        for body in (recs("Dx", "C1000", "Dy"), recs("C1000", "A0"), recs("C1000", "C1000"),
                     rec("C1000") + b"junk"):
            r, sid = await self.new("/ws/echo")
            st, err, text, _ = await self.post("/ws/echo", sid, 1, body)
            cms, chow = await r.msgs(self.t)
            r.writer.close()
            first = first or (body, st, err, text, cms, chow)
            if (st, err) != (400, "protocol-error") or "after" not in text and b"junk" not in body:
                bad.append("%r: %s %s %r" % (body, st, err, text))
        self.check("post_record_after_C_400", not bad, "; ".join(bad))
        body, st, err, text, cms, chow = first
        self.check("post_record_after_C_1002",
                   cms[-1:] and cms[-1][:2] == ("close", 1002) and chow == "eof"
                   and "Dy" not in data_msgs(cms),
                   "%r: %s %s %r; down %r, %s (want the close event 1002: the C is not taken,"
                   " the D after it not delivered)" % (body, st, err, text, cms, chow))
        # a POST sent again after a lost answer repeats its C: no error, Da
        # taken once (R1), one close (no down request meanwhile, as between
        # polls; the script's answer to Da comes after the close: not sent)
        _, sid = await self.new("/ws/count", "poll")
        a1 = await self.post("/ws/count", sid, 1, recs("Da", "C1000"), "poll")
        a2 = await self.post("/ws/count", sid, 1, recs("Da", "C1000"), "poll")
        p = await self.down("/ws/count", "poll", 0, sid=sid)
        cms, chow = await p.msgs(self.t)
        p.writer.close()
        self.check("post_C_repeated", a1[:3] == (200, None, "A1") and a2[:3] == (200, None, "A1")
                   and cms == [("comment", V1), ("text", "R1 %d" % WINDOW),
                               ("close", 1000, ""), END] and chow == "eof",
                   "POST Da C1000: %r, again: %r; the poll: %r, %s" % (a1[:3], a2[:3], cms, chow))
        await proto_error("post_ack_too_many_400", rec("A1"))
        await self.ack_unwritten()
        self.check("post_error_ends_1002", ms and ms[-1][0] == "close" and ms[-1][1] == 1002
                   and how == "eof", "after the R record: " + detail)

        # a body over 2 x WebSessionBuffer + WebSessionMaxMessage + 64 KiB
        r, sid = await self.new("/ws/echo")
        body = b"T %d\nD%s\n" % (TOO_LARGE - 10, b"x" * (TOO_LARGE - 11))
        body += b"x" * (TOO_LARGE + 1 - len(body))
        try:
            st, err, text, _ = await self.post("/ws/echo", sid, 1, body)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            st, err, text = None, None, repr(e)
        self.check("post_too_large_413", (st, err) == (413, "too-large"),
                   "%d bytes: %s %s %r" % (len(body), st, err, text[:200]))
        r.close()
        # exactly the limit: taken (in part: more than the buffer toward
        # the script holds)
        r, sid = await self.new("/ws/late-reader")
        body, i = b"", 0
        while TOO_LARGE - len(body) > 100032:
            i += 1
            body += rec("D%02d" % i + "x" * 99997)
        left = TOO_LARGE - len(body)       # the last record: n + digits(n) + 4 bytes
        n = next(n for n in range(left - 12, left) if n + len(str(n)) + 4 == left)
        body += rec("D" + "x" * (n - 1))
        st, err, text, _ = await self.post("/ws/late-reader", sid, 1, body)
        self.check("post_at_limit_taken", len(body) == TOO_LARGE and st == 200 and text[:1] == "A",
                   "%d bytes: %s %s %r" % (len(body), st, err, text[:200]))
        r.close()

    # -- the buffer toward the script full ---------------------------------------

    async def ack_unwritten(self):
        """An A for a message the server has queued but never written (no
        down request since it was made) is an error, not a loss."""
        r, sid = await self.new("/ws/count", "poll")
        st, _, text, _ = await self.post("/ws/count", sid, 1, rec("Dx"), transport="poll")
        await asyncio.sleep(0.5)          # the script's answer "1 x" reaches the keeper
        st2, err2, text2, _ = await self.post("/ws/count", sid, 2, rec("A1"), transport="poll")
        d = await self.down("/ws/count", "poll", 0, sid=sid)
        ms, how = await d.msgs(self.t)
        d.writer.close()
        self.check("post_ack_unwritten_400",
                   (st, text) == (200, "A1") and (st2, err2) == (400, "protocol-error")
                   and ms[-2:-1] and ms[-2][:2] == ("close", 1002) and ms[-1] == END,
                   "POST Dx: %s %r; POST A1: %s %s %r; then the poll: %r, %s"
                   % (st, text, st2, err2, text2, ms, how))

    async def acks_behind_full(self):
        """The A records of a POST are taken even behind D records the
        server leaves because its queue toward the script is full
        (/limits-firehose: WebSessionBuffer 4096, a script that never reads
        and writes without end): the A frees the window toward the client."""
        r = await self.down("/limits-firehose", "sse", 0)
        sid = r.h("Session-ID")
        seen = await self.data(r, 10)
        line = "D" + "y" * 99
        k, last, posts = 0, -1, 0
        while k != last and posts < 40:           # until a POST takes nothing more
            last = k
            st, err, text, _ = await self.post("/limits-firehose", sid, k + 1,
                                               recs(*[line] * 500))
            posts += 1
            if st != 200 or not text[1:].isdigit():
                break
            k = int(text[1:])
        st, err, text, _ = await self.post("/limits-firehose", sid, k + 1,
                                           recs(line, "A10"))
        r.close()
        # Had the A10 been dropped with the D before it, messages 6 to 10
        # would still be held and a resume from 5 would be served; taken,
        # it makes a resume from 5 stale.
        d = await self.down("/limits-firehose", "sse", 5, sid=sid)
        if d.status != 200:
            await d.body(self.t)
        d.close()
        self.check("buffer_full_acks_taken",
                   len(seen) == 10 and k == last and text == "A%d" % k
                   and (d.status, d.h("WebSession-Error")) == (409, "stale-request"),
                   "saw %d, full at A%d after %d POSTs; D and A10 answered %s %r; a resume "
                   "from 5 then: %s %s" % (len(seen), k, posts, st, text, d.status,
                                          d.h("WebSession-Error")))

    async def buffer_full(self, n=15, size=100000):
        """/ws/late-reader reads nothing for 2 s: a POST of 1.5 MB (over
        WebSessionBuffer, 1 MiB) is taken only in part, and a C behind the
        D that did not fit is not looked at."""
        r, sid = await self.new("/ws/late-reader")
        lines = ["D%02d" % i + "x" * (size - 2) for i in range(1, n + 1)]
        st, err, text, _ = await self.post("/ws/late-reader", sid, 1, recs(*lines, "C1000"))
        k = int(text[1:]) if st == 200 and text[:1] == "A" and text[1:].isdigit() else None
        self.check("buffer_full_partial_A", k is not None and 0 < k < n,
                   "%d records of %d bytes, then C1000: %s %s %r" % (n, size, st, err, text))
        if k is None:
            r.close()
            return
        # Answers to what was taken may come (the script starts reading 2 s
        # after its start, which a loaded machine can reach by now): they
        # are kept for the next check.  No close event, no end.
        ms, how = await r.msgs(0.5)
        self.check("buffer_full_stops_at_D",
                   how == "timeout" and all(m[0] == "text" and m[1][:1] == "D" for m in ms),
                   "A%d; then within 0.5 s the stream brought %r, %s (a close event means the "
                   "C behind the untaken D was taken)" % (k, ms, how))
        # the client sends the rest again later, acknowledging what came down
        answers, got, rx = [text], data_msgs(ms), 0
        end = time.monotonic() + 15
        while (k < n or len(got) < n) and time.monotonic() < end:
            if k < n:
                await asyncio.sleep(0.3)
                st, err, text, _ = await self.post("/ws/late-reader", sid, k + 1,
                                                   recs(*lines[k:]))
                answers.append(text)
                if st == 200 and text[1:].isdigit():
                    k = max(k, int(text[1:]))
            while True:
                m = await r.msg(0.2)
                if m[0] != "text" or m[1][:1] != "D":
                    break
                got.append(m[1])
            if got and len(got) > rx:
                rx = len(got)
                await self.post("/ws/late-reader", sid, 1, rec("A%d" % rx))
        want = ["D%d %02dxx" % (size, i) for i in range(1, n + 1)]
        self.check("buffer_full_resend_exact", got == want and k == n,
                   "answers %r; came down %r" % (answers, got[:3] + ["..."] + got[-2:]))
        await self.post("/ws/late-reader", sid, n + 1, rec("C1000"))
        r.close()

    # -- heartbeats --------------------------------------------------------------

    async def ping(self):
        # The keeper sends its first P one WebSessionPing interval after a
        # down request attaches and each next one an interval after the
        # last; with neither a POST nor a poll for 2 intervals + 1 s it
        # drops the down connection, at its next wake-up (an interval at
        # most) (docs/PROTOCOL.md, "Heartbeats", "Liveness and the end").
        # Lower bounds are those figures; upper bounds add SLACK.
        iv = self.a.ping_interval
        dead = 2 * iv + 1
        t_connect = time.monotonic()         # the attach is later than this
        r, sid = await self.new("/ping")
        await self.post("/ping", sid, 1, rec("Dbefore"))
        # the echo and the first P, in either order
        echo, took, other = None, None, []
        end = t_connect + iv + SLACK
        while (echo is None or took is None) and time.monotonic() < end:
            m = await r.msg(max(0.01, end - time.monotonic()))
            if m == ("text", "P") and took is None:
                took = time.monotonic() - t_connect
            elif m == ("text", "Dbefore") and echo is None:
                echo = m
            elif m[0] == "text" and m[1][:1] == "A":
                pass                         # an acknowledgement, if one comes
            else:
                other.append(m)
                if m[0] not in ("text", "text64", "binary"):
                    break
        if echo is None:
            raise AssertionError("/ping: POSTed 'Dbefore', no echo; other %r" % other)
        self.check("ping_sse_P", took is not None and took >= iv - 0.05 and not other,
                   "%s after the GET began (want P, not before %g s, within %g s);"
                   " other events %r" % ("P %.2f s" % took if took is not None else "no P",
                                         iv, iv + SLACK, other))
        # answering each P with a POST of A1 for longer than the
        # dead-connection time: the stream stays, P comes at the configured rate
        last = time.monotonic()             # before the POST: <= the keeper's last traffic
        await self.post("/ping", sid, 2, rec("A1"))
        window = dead + 2
        pings, end, ended = 0, time.monotonic() + window, None
        while time.monotonic() < end:
            m = await r.msg(max(0.01, end - time.monotonic()))
            if m[0] in ("eof", "close"):
                ended = m
                break
            if m == ("text", "P"):
                pings += 1
                last = time.monotonic()
                await self.post("/ping", sid, 2, rec("A1"))
        most = int(window / iv) + 2
        self.check("ping_sse_answered_stays", ended is None and 2 <= pings <= most,
                   "%d P in %g s (want 2..%d at WebSessionPing %g), %s"
                   % (pings, window, most, iv, ended or "still open"))
        # silence: the server drops the stream, without a close event
        end = last + dead + iv + SLACK
        m = ("timeout",)
        while time.monotonic() < end:
            m = await r.msg(max(0.01, end - time.monotonic()))
            if m[0] != "text" or m[1] != "P":
                break
        took = time.monotonic() - last
        self.check("ping_sse_silent_dropped",
                   m == ("eof",) and dead - 0.05 <= took <= dead + iv + SLACK,
                   "%r %.2f s after our last POST began (want the end, no close event, between"
                   " %g and %g s)" % (m, took, dead, dead + iv + SLACK))
        r.close()
        r, rr = await self.resume("/ping", sid, 1)
        await self.post("/ping", sid, 2, rec("Dafter"))
        got = await self.data(r, 1)
        self.check("ping_sse_resume", rr == ("text", "R1 %d" % WINDOW) and got == ["Dafter"],
                   "R %r, then %r" % (rr, got))
        r.close()
        # a waiting poll is answered with P
        # (it ends with the P, one interval after it attached)
        t0 = time.monotonic()
        p = await self.down("/ping", "poll", 2, sid=sid)
        ms, how = await p.msgs(max(0.01, t0 + iv + SLACK - time.monotonic()))
        took = time.monotonic() - t0
        self.check("ping_poll_P", ("text", "P") in ms and how == "eof" and took >= iv - 0.05,
                   "%r, %s after %.2f s (want a P, not before %g s, within %g s)"
                   % (ms, how, took, iv, iv + SLACK))
        p.writer.close()
        # polling on and on, without a POST, for longer than the
        # dead-connection time: the polls are the traffic
        window = dead + 2
        results, end = [], time.monotonic() + window
        while time.monotonic() < end:
            p = await self.down("/ping", "poll", 2, sid=sid)
            ms, how = await p.msgs(iv + SLACK)
            p.writer.close()
            results.append((p.status, [m[1] if m[0] == "text" else m
                                       for m in before_end(ms)[1:]], how))
        bad = [x for x in results if x[0] != 200 or x[2] != "eof" or x[1][-1:] != ["P"]]
        most = int(window / iv) + 2
        self.check("ping_polls_keep_alive", 2 <= len(results) <= most and not bad,
                   "%d polls in %g s (want 2..%d at WebSessionPing %g); not a 200 ending"
                   " with P: %r; the first: %r" % (len(results), window, most, iv, bad,
                                                   results[:1]))
        await self.post("/ping", sid, 2, rec("C1000"), "poll")

    # -- TLS ----------------------------------------------------------------------

    async def tls(self):
        r = await self.down("/ws/count", "sse", 0, tls=True)
        sid = r.h("Session-ID") or ""
        ms, _ = await r.msgs(self.t, count=3)
        self.check("tls_sse_new", r.status == 200 and r.h("Content-Type") == "text/event-stream"
                   and ms == [("comment", V1), ("text", "I" + sid), ("text", "R0 %d" % WINDOW)],
                   "%s %r" % (r.status, ms))
        answers = []
        for i, m in enumerate(("Da", "Db", "Dc"), 1):
            st, _, text, _ = await self.post("/ws/count", sid, i, rec(m), tls=True)
            answers.append(text)
        got = await self.data(r, 3)
        self.check("tls_sse_messages", answers == ["A1", "A2", "A3"]
                   and got == ["D1 a", "D2 b", "D3 c"], "POSTs %r, down %r" % (answers, got))
        st, _, text, _ = await self.post("/ws/count", sid, 4, rec("C1000"), tls=True)
        ms, how = await r.msgs(self.t)
        self.check("tls_sse_close", ms and ms[-1][:2] == ("close", 1000) and how == "eof",
                   "%r, %s" % (ms, how))
        r.writer.close()
        for tr in ("sse", "poll"):
            ok, detail = await self.client_run(tr, tls=True)
            self.check("tls_client_%s" % tr, ok, detail)

    # -- worker freedom ----------------------------------------------------------

    async def workers(self, n=40, gets=10):
        streams = await asyncio.gather(*(self.new("/ws/echo") for _ in range(n)),
                                       return_exceptions=True)
        good = [s for s in streams if not isinstance(s, BaseException)]
        self.check("workers_streams_open", len(good) == n,
                   "%d of %d opened; %r" % (len(good), n,
                                            [repr(s) for s in streams if isinstance(s, BaseException)][:3]))
        slow = []
        for i in range(gets):
            t0 = time.monotonic()
            try:
                # no free worker would mean no answer while the streams stay
                g = await asyncio.wait_for(self.request("GET", "/ws/index.html"), AT_ONCE)
                await g.body(max(0.01, t0 + AT_ONCE - time.monotonic()))
                g.close()
                if g.status != 200 or time.monotonic() - t0 > AT_ONCE:
                    slow.append((i, g.status, round(time.monotonic() - t0, 2)))
            except Exception as e:
                slow.append((i, repr(e)))
            if slow:
                break                      # (the rest would wait as long: the step's time)
        self.check("workers_gets_answered", not slow,
                   "%d GETs with all %d streams open; failed or slow: %r" % (gets, len(good), slow))

        async def echo(i, r, sid):
            st, _, text, _ = await self.post("/ws/echo", sid, 1, rec("Dm%d" % i))
            return await self.data(r, 1) == ["Dm%d" % i]
        echoed = await asyncio.gather(*(echo(i, r, sid) for i, (r, sid) in enumerate(good)),
                                      return_exceptions=True)
        self.check("workers_streams_echo", sum(e is True for e in echoed) == n,
                   "%d of %d echoed" % (sum(e is True for e in echoed), n))

        async def close(r, sid):
            await self.post("/ws/echo", sid, 2, rec("C1000"))
            ms, how = await r.msgs(self.t)
            r.writer.close()
            return bool(ms) and ms[-1][:2] == ("close", 1000) and how == "eof"
        closed = await asyncio.gather(*(close(r, sid) for r, sid in good), return_exceptions=True)
        self.check("workers_streams_close", sum(c is True for c in closed) == n,
                   "%d of %d ended with the close event 1000" % (sum(c is True for c in closed), n))

        # polls that wait hold no worker either
        sessions = await asyncio.gather(*(self.new("/ws/echo", "poll") for _ in range(n)),
                                        return_exceptions=True)
        sids = [x[1] for x in sessions if not isinstance(x, BaseException)]
        polls = await asyncio.gather(*(self.down("/ws/echo", "poll", 0, sid=sid) for sid in sids),
                                     return_exceptions=True)
        waiting = [p for p in polls if not isinstance(p, BaseException) and p.status == 200]
        await asyncio.sleep(0.5)
        gets_ok = 0
        for i in range(gets):
            try:
                g = await asyncio.wait_for(self.request("GET", "/ws/index.html"), AT_ONCE)
                await g.body(AT_ONCE)
                g.close()
                gets_ok += g.status == 200
            except Exception:
                break                      # (the rest would wait as long: the step's time)
        still = 0
        for p in waiting:
            ms, how = await p.msgs(0.02)
            still += how == "timeout" and not data_msgs(ms)
        answered = 0
        for p, sid in zip(waiting, sids):
            await self.post("/ws/echo", sid, 1, rec("Dw"), "poll")
        for p in waiting:
            ms, how = await p.msgs(self.t)
            answered += data_msgs(ms) == ["Dw"] and how == "eof"
            p.writer.close()
        self.check("workers_polls_waiting", len(waiting) == n and gets_ok == gets and still == n
                   and answered == n,
                   "%d of %d polls waiting, %d of %d GETs answered meanwhile, %d still waiting, "
                   "%d answered with the echo" % (len(waiting), n, gets_ok, gets, still, answered))
        for sid in sids:
            await self.post("/ws/echo", sid, 2, rec("C1000"), "poll")

    # -- the reference client -------------------------------------------------------

    async def client_run(self, transport, tls=False):
        if tls:
            url = "https://%s:%d/ws/count" % (self.a.host, self.a.tls_port)
        else:
            url = "http://%s:%d/ws/count" % (self.a.host, self.a.port)
        events = []
        s = Session(url, transport=transport, ssl=self.ctx if tls else None,
                    max_backoff=0.2, idle_timeout=self.t, on_event=lambda *e: events.append(e[0]))
        await asyncio.wait_for(s.start(), self.t)
        got = []
        for i in range(1, 21):
            await s.send("m%d" % i)
        for _ in range(20):
            got.append(await asyncio.wait_for(s.recv(), self.t))
        s.drop()
        for i in range(21, 41):
            await s.send("m%d" % i)
            if i == 30:
                s.drop()
        for _ in range(20):
            got.append(await asyncio.wait_for(s.recv(), self.t))
        want = ["%d m%d" % (i, i) for i in range(1, 41)]
        await s.close()
        # A poll cut by drop() ends like any poll (the body has no length):
        # only a stream counts as a reconnect.
        return got == want and (s.reconnects >= 1 or transport == "poll"), \
            "reconnects %d, events %r; got %r" % (s.reconnects, sorted(set(events)), got)

    async def client(self):
        for tr in ("sse", "poll"):
            ok, detail = await self.client_run(tr)
            self.check("client_%s_exact" % tr, ok, detail)
        # 1.5 MB to a script that reads nothing for 2 s: the POSTs are
        # taken in part, the client sends the rest again
        events = []
        s = Session("http://%s:%d/ws/late-reader" % (self.a.host, self.a.port),
                    transport="sse", on_event=lambda *e: events.append(e[0]))
        await asyncio.wait_for(s.start(), self.t)
        t0 = time.monotonic()
        for i in range(1, 16):
            await asyncio.wait_for(s.send("%02d" % i + "y" * 99998), self.t)
        got = [await asyncio.wait_for(s.recv(), self.t) for _ in range(15)]
        took = time.monotonic() - t0
        await asyncio.wait_for(s.close(), self.t + 1)
        self.check("client_buffer_full", got == ["100000 %02dyy" % i for i in range(1, 16)],
                   "%.1f s; events %r; got %r" % (took, sorted(set(events)), got))

        s = Session("http://%s:%d/framed" % (self.a.host, self.a.port), transport="sse")
        await asyncio.wait_for(s.start(), self.t)
        await s.send(b"\x00bin")
        echo = await asyncio.wait_for(s.recv(), self.t)
        await asyncio.wait_for(s.close(), self.t + 1)
        try:
            await asyncio.wait_for(s.recv(), self.t)
            end = None
        except SessionEnded as e:
            end = (e.code, e.reason)
        self.check("client_close_1000", echo == b"\x00bin" and end and end[0] == 1000,
                   "echo %r; end %r" % (echo, end))
        cat = os.path.join(TOOLS, "websession-cat")
        for tr in ("sse", "poll"):
            p = await asyncio.create_subprocess_exec(
                "/usr/bin/python3", cat, "--transport", tr,
                "http://%s:%d/ws/count" % (self.a.host, self.a.port),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(p.communicate(b"a\nb\nc\n"), 30)
            self.check("client_cat_%s" % tr, out == b"1 a\n2 b\n3 c\n" and p.returncode == 0,
                       "stdout %r, exit %s, stderr %r" % (out, p.returncode, err[-300:]))

    async def main(self):
        steps = [self.sse_basics, self.poll, self.framed, self.exits, self.server_closes,
                 self.cross,
                 self.flood, self.bad_gets, self.bad_posts, self.buffer_full, self.acks_behind_full,
                 self.ping, self.workers,
                 self.client]
        if self.a.tls_port:
            steps.append(self.tls)
        side = None
        if not self.a.steps or "poll_idle" in self.a.steps.split(","):
            side = asyncio.ensure_future(self.poll_idle())
        await self.run_steps(steps, 90, self.a.steps)
        if side:
            try:
                await asyncio.wait_for(side, 60)
            except Exception as e:
                self.error("poll_idle", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-port", type=int)
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--deadline", type=float, default=240)
    ap.add_argument("--ping-interval", type=float, default=1,
                    help="WebSessionPing of <Location /ping> (seconds, default 1)")
    ap.add_argument("--steps", help="run only these steps (comma-separated method names)")
    args = ap.parse_args()
    run = Run(args)
    return run_and_report(run, run.main(), args.deadline,
                          [n for n in CHECKS if args.tls_port or not n.startswith("tls_")])


if __name__ == "__main__":
    sys.exit(main())
