"""websession_client -- a websession.v1 client for Python 3 (asyncio).

Reference implementation of the client side of docs/PROTOCOL.md: it keeps
its session across lost connections, resends what the server has not
acknowledged and drops nothing, so a caller sees every message exactly once
and in order.

    s = Session("http://host/path/script")          # WebSocket
    s = Session("http://host/path/script", transport="sse")   # or "poll"
    await s.start()
    await s.send("hello")          # str: text message, bytes: binary
    msg = await s.recv()           # str or bytes; raises SessionEnded at the end
    await s.close()

Transports: "websocket" (the default) needs the `websockets` package
(Debian: python3-websockets); "sse" (Server-Sent Events down, POST up) and
"poll" (long polling down, POST up) are the HTTP fallback of
docs/PROTOCOL.md and need nothing but the standard library.
"""

import asyncio
import base64
import random
import ssl as _ssl
import urllib.parse

PROTOCOL = "websession.v1"
ID_PREFIX = "websession.id."
ACK_EVERY = 16
ACK_DELAY = 0.02
FATAL = {4400: "protocol mismatch", 4409: "cannot resume", 4410: "session unknown or expired"}
TRANSPORTS = ("websocket", "sse", "poll")
# HTTP fallback
LINE_LIMIT = 1 << 26          # longest event line (base64 of a large message)
RESEND_PAUSE = 0.2            # before sending again what the server did not take
POST_RETRY = (0.1, 1.0)       # a failed POST again after 100 ms, backing off to 1 s
IDLE_TIMEOUT = 100            # a down response silent this long is lost
POST_START = 65536            # a POST's records: this many bytes at first,
POST_MIN = 512                # down to this after failures (or one record),
                              # up to the window after successes
# HTTP refusals that are in band (close codes) on a WebSocket
HTTP_ENDS = {"session-unknown": (4410, "session unknown or expired"),
             "session-id-malformed": (4400, "malformed session id")}


class _HTTPError(Exception):
    pass


class SessionEnded(Exception):
    """The session is over: the script ended, the server closed it, or it
    could not be resumed.  code/reason are the close frame's."""

    def __init__(self, code, reason):
        super().__init__("session ended: %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class Session:
    def __init__(self, url, ssl=None, max_backoff=1.0, connect_timeout=10.0,
                 on_event=None, extra_headers=None, transport="websocket",
                 idle_timeout=IDLE_TIMEOUT):
        if transport not in TRANSPORTS:
            raise ValueError("transport must be one of %s" % ", ".join(TRANSPORTS))
        self.transport = transport
        self.http = transport != "websocket"
        u = urllib.parse.urlsplit(url)
        if self.http:
            scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
            if scheme not in ("http", "https"):
                raise ValueError("not an http(s) or ws(s) URL: %s" % url)
            secure = scheme == "https"
            self.host = u.hostname
            self.port = u.port or (443 if secure else 80)
            self.host_header = u.netloc.rpartition("@")[2]
            self.target = (u.path or "/") + ("?" + u.query if u.query else "")
        else:
            scheme = {"http": "ws", "https": "wss"}.get(u.scheme, u.scheme)
            secure = scheme == "wss"
        self.url = urllib.parse.urlunsplit((scheme,) + tuple(u)[1:])
        if secure and ssl is None:
            ssl = _ssl.create_default_context()
        self.ssl = ssl if secure else None
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.on_event = on_event or (lambda *a: None)
        self.extra_headers = extra_headers or {}
        self.id = None
        self.rx = 0                   # data messages received
        self.rx_acked = 0             # the count we last acknowledged
        self.tx = 0                   # data messages queued (numbered 1..tx)
        self.tx_acked = 0             # acknowledged by the server
        self.unacked = []             # [(seq, payload)] not yet acknowledged
        self.unacked_bytes = 0
        self.window = 1 << 20
        self.inbox = asyncio.Queue()
        self.ws = None
        self.ready = asyncio.Event()  # connected and resumed
        self.room = asyncio.Event()   # unacked bytes below the window
        self.room.set()
        self.ended = None
        self.reconnects = 0
        self._closing = False
        self._task = None
        self._ack_task = None
        # HTTP fallback
        self._kick = asyncio.Event()  # the uploader has something to do
        self._force_ack = False       # a P asks for an A
        self._close_req = None        # (code, reason) to send as C
        self._conns = set()           # open HTTP connections (writers)
        self._poll_end = False        # the last poll answer ended with ": end"
        self._up_task = None
        self._post_cap = POST_START   # bytes of records per POST

    # -- public -------------------------------------------------------------

    async def start(self):
        self._task = asyncio.ensure_future(self._run())
        done, _ = await asyncio.wait([self._task, asyncio.ensure_future(self.ready.wait())],
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()

    async def send(self, payload):
        if self.ended:
            raise self.ended
        await self.room.wait()
        self.tx += 1
        self.unacked.append((self.tx, payload))
        self.unacked_bytes += len(payload)
        if self.unacked_bytes >= self.window:
            self.room.clear()
        if self.http:
            self._kick.set()
        elif self.ready.is_set():
            await self._send_data(payload)

    async def recv(self):
        item = await self.inbox.get()
        if isinstance(item, SessionEnded):
            self.inbox.put_nowait(item)
            raise item
        return item

    async def close(self, code=1000, reason=""):
        if self.http:
            await self._close_http(code, reason)
            return
        self._closing = True
        if self.ws is not None:
            try:
                await self.ws.close(code, reason)
            except Exception:
                pass
        if self._task:
            self._task.cancel()

    def drop(self):
        """Cut the current connection without a close frame (for tests);
        over HTTP, every request under way."""
        if self.ws is not None:
            self.ws.transport.abort()
        for w in list(self._conns):
            w.transport.abort()

    # -- internals ----------------------------------------------------------

    async def _send_data(self, payload):
        ws = self.ws
        try:
            if isinstance(payload, bytes):
                await ws.send(b"D" + payload)
            else:
                await ws.send("D" + payload)
        except Exception:
            pass                      # resent after the next resume

    def _acked(self, n):
        while self.unacked and self.unacked[0][0] <= n:
            self.unacked_bytes -= len(self.unacked.pop(0)[1])
        self.tx_acked = max(self.tx_acked, n)
        if self.unacked_bytes < self.window:
            self.room.set()

    async def _ack_later(self):
        await asyncio.sleep(ACK_DELAY)
        await self._ack()

    async def _ack(self, force=False):
        if self.http:
            # sse: an A in a POST; poll: the next poll acknowledges, a P
            # is answered all the same.
            if force:
                self._force_ack = True
            if force or self.transport == "sse":
                self._kick.set()
            return
        if self.ws is not None and (force or self.rx != self.rx_acked):
            self.rx_acked = self.rx
            try:
                await self.ws.send("A%d" % self.rx)
            except Exception:
                pass

    def _end(self, code, reason):
        self.ended = SessionEnded(code, reason)
        self.inbox.put_nowait(self.ended)
        self.ready.set()

    async def _run(self):
        if self.http:
            return await self._run_http()
        import websockets
        backoff = 0.02
        while not self._closing:
            protocols = [PROTOCOL] + ([ID_PREFIX + self.id] if self.id else [])
            try:
                self.ws = await asyncio.wait_for(websockets.connect(
                    self.url, subprotocols=protocols, ssl=self.ssl, max_size=None,
                    ping_interval=None, close_timeout=1, compression=None,
                    extra_headers=self.extra_headers), self.connect_timeout)
            except Exception as e:
                if isinstance(e, websockets.InvalidStatusCode) and e.status_code < 500 \
                        and e.status_code not in (408, 429):
                    self._end(e.status_code, "HTTP %d" % e.status_code)
                    return
                self.on_event("retry", repr(e))
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.02
            if self.ws.subprotocol != PROTOCOL:
                self._end(4400, "server did not agree to %s" % PROTOCOL)
                return
            end = await self._serve(self.ws)
            self.ready.clear()
            self.ws = None
            if end is not None:
                self._end(*end)
                return
            self.reconnects += 1
            self.on_event("reconnecting", self.reconnects)

    async def _serve(self, ws):
        """One connection.  Returns (code, reason) when the session is over,
        None when the connection was lost."""
        import websockets
        try:
            await ws.send("R%d" % self.rx)
            self.rx_acked = self.rx
            async for m in ws:
                if isinstance(m, bytes):
                    kind, body = m[:1], m[1:]
                    if kind != b"D":
                        return (1002, "binary control message")
                    await self._data(body)
                    continue
                kind, body = m[:1], m[1:]
                if kind == "D":
                    await self._data(body)
                elif kind == "A":
                    self._acked(int(body))
                elif kind == "P":
                    await self._ack(force=True)
                elif kind == "I":
                    self.id = body
                elif kind == "R":
                    n, _, w = body.partition(" ")
                    if w:
                        self.window = int(w)
                    self._acked(int(n))
                    # Resend from the server's count on, following the live
                    # queue: send() may add to it while this awaits.
                    seq = int(n) + 1
                    while self.unacked and seq <= self.unacked[-1][0]:
                        if seq >= self.unacked[0][0]:
                            await self._send_data(self.unacked[seq - self.unacked[0][0]][1])
                        seq += 1
                    self.ready.set()
                    self.on_event("resumed", self.reconnects)
                else:
                    return (1002, "unknown message %r" % kind)
        except websockets.ConnectionClosed:
            pass
        except Exception as e:
            self.on_event("error", repr(e))
        code = ws.close_code
        if self._closing:
            return (code or 1000, ws.close_reason or "")
        if code is None or code == 1006:
            return None               # lost without a close frame: resume
        # Every close frame the server sends ends the session: the script's
        # exit status, 1001 (server stopping), errors, FATAL codes.
        return (code, ws.close_reason)

    async def _data(self, body):
        self.rx += 1
        self.inbox.put_nowait(body)
        if self.transport == "poll":
            return                    # the next poll acknowledges
        if self.rx - self.rx_acked >= ACK_EVERY:
            await self._ack()
        elif self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.ensure_future(self._ack_later())

    # -- the HTTP fallback: sse and poll (docs/PROTOCOL.md) -------------------
    #
    # Down: a GET whose response is a text/event-stream (one long response
    # for sse, one per poll).  Up: POSTs of framed records, one at a time,
    # each answered with the server's count ("A<n>"), which is all the
    # uploader needs to know what to send next: everything above that
    # count, again if need be (the server drops what it already has).

    def _headers(self, extra):
        h = dict(self.extra_headers)
        h["WebSession-Transport"] = self.transport
        if self.id:
            h["Session-ID"] = self.id
        h.update(extra)
        return h

    async def _request(self, method, headers, body=None, timeout=None):
        """Send one request on a new connection.  Returns (status, headers
        with lower-case names, reader, writer) once the response's head is
        in; the caller closes the writer."""
        timeout = timeout or self.connect_timeout
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, limit=LINE_LIMIT,
            server_hostname=self.host if self.ssl else None), self.connect_timeout)
        self._conns.add(writer)
        try:
            lines = ["%s %s HTTP/1.1" % (method, self.target), "Host: " + self.host_header]
            lines += ["%s: %s" % kv for kv in headers.items()]
            if body is not None:
                lines.append("Content-Length: %d" % len(body))
            lines.append("Connection: close")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status_line, *hlines = head.decode("latin-1").split("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise _HTTPError("bad status line %r" % status_line)
            hdrs = {}
            for line in hlines:
                if ":" in line:
                    k, v = line.split(":", 1)
                    k = k.strip().lower()
                    hdrs[k] = (hdrs[k] + ", " if k in hdrs else "") + v.strip()
            return int(parts[1]), hdrs, reader, writer
        except BaseException:
            self._forget(writer)
            raise

    def _forget(self, writer, abort=True):
        """Done with a connection: cut it, or (after the response ended in
        order) close it in order, which tells the server it was all read."""
        self._conns.discard(writer)
        if abort:
            writer.transport.abort()
        else:
            writer.close()

    @staticmethod
    async def _body(reader, headers, timeout):
        """A (short) response body: Content-Length, chunked, or to the end."""
        async def read():
            if "chunked" in headers.get("transfer-encoding", "").lower():
                out = b""
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        return out
                    out += await reader.readexactly(size)
                    await reader.readexactly(2)
            if "content-length" in headers:
                return await reader.readexactly(int(headers["content-length"]))
            return await reader.read()
        return await asyncio.wait_for(read(), timeout)

    async def _run_http(self):
        backoff = 0.02
        fresh = True                  # poll: the first of a connection ("open")
        self._up_task = asyncio.ensure_future(self._uploader())
        try:
            while not self._closing and not self.ended:
                extra = {"WebSession-Received": str(self.rx), "Accept": "text/event-stream"}
                if self.transport == "poll" and fresh:
                    extra["WebSession-Poll"] = "open"
                writer = None
                got_r, end, clean = False, None, False
                try:
                    status, hdrs, reader, writer = await self._request(
                        "GET", self._headers(extra),
                        timeout=max(self.idle_timeout, self.connect_timeout))
                    if status != 200:
                        text = await self._body(reader, hdrs, self.connect_timeout)
                        err = hdrs.get("websession-error", "")
                        # stale-request: meant for an older request of ours
                        # than the newest the server saw; it ends nothing
                        if status < 500 and status not in (408, 429) and err != "stale-request":
                            code, reason = HTTP_ENDS.get(err, (status, "HTTP %d %s: %s" % (
                                status, err, text.decode("utf-8", "replace").strip())))
                            self._end(code, reason)
                            return
                        raise _HTTPError("HTTP %d %s" % (status, err))
                    if self.id is None and hdrs.get("session-id"):
                        self.id = hdrs["session-id"]
                    self.rx_acked = self.rx   # WebSession-Received acknowledges
                    got_r, end = await self._stream(
                        reader, announce=self.transport == "sse" or fresh)
                    if end is not None:
                        # The response ends after the close event: read to
                        # its end, then close in order (the server takes
                        # that as the event received).
                        await asyncio.wait_for(reader.read(), 1)
                    clean = reader.at_eof()
                except (OSError, EOFError, ValueError, asyncio.TimeoutError,
                        asyncio.IncompleteReadError, _HTTPError) as e:
                    self.on_event("retry", repr(e))
                finally:
                    if writer is not None:
                        self._forget(writer, abort=not clean)
                if end is not None:
                    self._end(*end)
                    return
                if self._closing:
                    return
                if got_r:
                    backoff = 0.02
                if self.transport == "poll" and got_r:
                    fresh = False     # a poll's normal end: poll again at once,
                    if not self._poll_end:
                        # but one without the end marker was cut: after a
                        # pause (the count is right: only whole events counted)
                        await asyncio.sleep(backoff * (0.5 + random.random()))
                    continue
                # An sse stream that ended without a close event, or a poll
                # that brought not even its R: lost.  Resume.
                self.reconnects += 1
                self.on_event("reconnecting", self.reconnects)
                fresh = True
                if not got_r:
                    await asyncio.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            self._up_task.cancel()

    async def _stream(self, reader, announce):
        """Read events until the response ends: (got an R, (code, reason)
        of a close event or None).  announce: report its R as a resume."""
        got_r = False
        self._poll_end = False
        data, event = [], None
        while True:
            line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
            if not line.endswith(b"\n"):
                return got_r, None    # the end, maybe inside an event: lost
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                # ": end", a comment, is the last line of a complete poll answer
                self._poll_end = line == b": end"
                if line.startswith(b":"):
                    continue          # comment
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data.append(value)
                elif name == b"event":
                    event = value.decode("utf-8", "replace")
                continue
            if not data:
                event = None
                continue
            kind, value = event, b"\n".join(data)
            data, event = [], None
            if kind == "close":
                code, _, reason = value.decode("utf-8", "replace").partition(" ")
                return got_r, (int(code), reason)
            if kind == "binary":
                m = base64.b64decode(value, validate=True)
                if m[:1] != b"D":
                    return got_r, (1002, "binary control message")
                await self._data(m[1:])
                continue
            if kind == "text64":
                m = base64.b64decode(value, validate=True).decode("utf-8")
            elif kind is None or kind == "message":
                m = value.decode("utf-8")
            else:
                continue              # an event type of a later version
            t, body = m[:1], m[1:]
            if t == "D":
                await self._data(body)
            elif t == "A":
                self._acked(int(body))
            elif t == "P":
                await self._ack(force=True)
            elif t == "I":
                self.id = body
            elif t == "R":
                n, _, w = body.partition(" ")
                if w:
                    self.window = int(w)
                self._acked(int(n))
                if not got_r and announce:
                    self.on_event("resumed", self.reconnects)
                got_r = True
                self.ready.set()
                self._kick.set()      # send what its count does not cover
            else:
                return got_r, (1002, "unknown message %r" % t)

    @staticmethod
    def _record(payload):
        if isinstance(payload, bytes):
            return b"B %d\n%s\n" % (len(payload), payload)
        p = payload.encode("utf-8")
        return b"T %d\n%s\n" % (len(p), p)

    def _batch(self):
        """The next POST's body: (body, sequence, last D, A count sent,
        whether it carries the close)."""
        recs, size, last = [], 0, None
        # The acknowledgement first: the server looks at no record after a
        # D it cannot take (its buffer toward the script is full).
        ack = None
        if self._force_ack or (self.transport == "sse" and self.rx > self.rx_acked):
            ack = self.rx
            recs.append(self._record("A%d" % ack))
        cap = self._post_cap
        for seq, payload in self.unacked:
            rec = self._record(b"D" + payload if isinstance(payload, bytes) else "D" + payload)
            if last is not None and size + len(rec) > cap:
                break
            recs.append(rec)
            size += len(rec)
            last = seq
        closing = bool(self._close_req) and \
            last == (self.unacked[-1][0] if self.unacked else None)
        if closing:
            code, reason = self._close_req
            recs.append(self._record(("C%d %s" % (code, reason)) if reason else "C%d" % code))
        seq = self.unacked[0][0] if self.unacked else self.tx_acked + 1
        return b"".join(recs), seq, last, ack, closing

    async def _uploader(self):
        backoff = POST_RETRY[0]
        while True:
            await self._kick.wait()
            self._kick.clear()
            if self.id is None or self.ended:
                continue              # kicked again once the id is known
            body, seq, last, ack, closing = self._batch()
            if not body:
                continue
            extra = {"WebSession-Sequence": str(seq),
                     "Content-Type": "application/octet-stream"}
            writer = None
            try:
                status, hdrs, reader, writer = await self._request(
                    "POST", self._headers(extra), body)
                text = (await self._body(reader, hdrs, self.connect_timeout)).decode(
                    "latin-1").strip()
            except (OSError, EOFError, ValueError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError, _HTTPError) as e:
                status, text = None, repr(e)
            finally:
                if writer is not None:
                    self._forget(writer, abort=status is None)
            if status == 200 and text[:1] == "A" and text[1:].isdigit():
                backoff = POST_RETRY[0]
                self._post_cap = min(self._post_cap * 2, max(self.window, POST_START))
                n = int(text[1:])
                self._acked(n)
                if ack is not None:
                    self.rx_acked = max(self.rx_acked, ack)
                    self._force_ack = False
                if closing and (last is None or n >= last):
                    self._close_req = None
                if last is not None and n < last:
                    # The server's buffer toward the script is full: the
                    # rest again after a pause.
                    await asyncio.sleep(RESEND_PAUSE)
                    self._kick.set()
                elif self.unacked:
                    self._kick.set()
                continue
            # Lost, refused or failed: the same again later (records the
            # server already took are dropped by number).  A session that
            # is over is reported by the down side.
            self.on_event("post-retry", "%s %s" % (status, text[:200]))
            # A connection that breaks inside long bodies gets shorter ones.
            self._post_cap = max(self._post_cap // 2, POST_MIN)
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, max(POST_RETRY[0], min(self.max_backoff, POST_RETRY[1]) / 2))
            self._kick.set()

    async def _close_http(self, code, reason):
        """Send what is unacknowledged, then C<code>; the close event on the
        down side ends the session (or, failing that, connect_timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        if not self.ended and self._task and not self._task.done():
            while self.unacked and not self.ended and loop.time() < deadline:
                await asyncio.sleep(0.02)
            self._close_req = (code, reason)
            self._kick.set()
            while not self.ended and not self._task.done() and loop.time() < deadline:
                await asyncio.sleep(0.02)
        self._closing = True
        if not self.ended:
            self._end(code, reason)
        if self._task:
            self._task.cancel()
        if self._up_task:
            self._up_task.cancel()
        for w in list(self._conns):
            self._forget(w)
