"""websession_client -- a websession.v1 client for Python 3 (asyncio).

Reference implementation of the client side of docs/PROTOCOL.md: it keeps
its session across lost connections, resends what the server has not
acknowledged and drops nothing, so a caller sees every message exactly once
and in order.  It needs the `websockets` package (Debian: python3-websockets).

    s = Session("http://host/path/script")
    await s.start()
    await s.send("hello")          # str: text message, bytes: binary
    msg = await s.recv()           # str or bytes; raises SessionEnded at the end
    await s.close()
"""

import asyncio
import random
import ssl as _ssl
import urllib.parse

import websockets

PROTOCOL = "websession.v1"
ID_PREFIX = "websession.id."
ACK_EVERY = 16
ACK_DELAY = 0.02
FATAL = {4400: "protocol mismatch", 4409: "cannot resume", 4410: "session unknown or expired"}


class SessionEnded(Exception):
    """The session is over: the script ended, the server closed it, or it
    could not be resumed.  code/reason are the close frame's."""

    def __init__(self, code, reason):
        super().__init__("session ended: %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class Session:
    def __init__(self, url, ssl=None, max_backoff=1.0, connect_timeout=10.0,
                 on_event=None, extra_headers=None):
        u = urllib.parse.urlsplit(url)
        scheme = {"http": "ws", "https": "wss"}.get(u.scheme, u.scheme)
        self.url = urllib.parse.urlunsplit((scheme,) + tuple(u)[1:])
        if scheme == "wss" and ssl is None:
            ssl = _ssl.create_default_context()
        self.ssl = ssl
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
        if self.ready.is_set():
            await self._send_data(payload)

    async def recv(self):
        item = await self.inbox.get()
        if isinstance(item, SessionEnded):
            self.inbox.put_nowait(item)
            raise item
        return item

    async def close(self, code=1000, reason=""):
        self._closing = True
        if self.ws is not None:
            try:
                await self.ws.close(code, reason)
            except Exception:
                pass
        if self._task:
            self._task.cancel()

    def drop(self):
        """Cut the current connection without a close frame (for tests)."""
        if self.ws is not None:
            self.ws.transport.abort()

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
        if self.rx - self.rx_acked >= ACK_EVERY:
            await self._ack()
        elif self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.ensure_future(self._ack_later())
