#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""wsconform.py -- RFC 6455 conformance suite for a WebSocket echo server.

    wsconform.py ws://host:port/path [--wss-insecure] [--max-message N]
                 [--case PREFIX]... [--timeout S] [--list]

The endpoint under test must echo every message exactly: text as text,
binary as binary, byte for byte (it may fragment its own frames as it likes).

The cases are modelled on the Autobahn|Testsuite "fuzzingclient" catalogue and
numbered like it (categories 1-7, 9 with small sizes, 10), plus checks that
Autobahn does not make, numbered 0.x: the opening handshake (0.1), client
masking and frame lengths (0.2) and the message size limit (0.3, with
--max-message).  Every case opens a fresh connection and judges:

  * echo correctness (type and bytes) and order;
  * on a protocol violation: the server must send a Close frame carrying the
    expected code (a TCP close without a Close frame is a failure), send
    nothing after it, and close the TCP connection within --timeout;
  * after a close handshake started by the client: the server answers with a
    Close frame (normally 1000 or the echoed code) and closes the TCP
    connection (EOF) within --timeout;
  * server frames themselves: unmasked, RSV bits clear, known opcodes, control
    frames unfragmented and <= 125 bytes.

Some behaviours RFC 6455 leaves to the implementation are accepted and marked
"non-strict" in the "ok" line (they count as passed), e.g. a pong answering
only the latest of several pings, an earlier message whose echo was dropped
because the connection failed right behind it, or UTF-8 errors inside a single
frame detected only once the frame is complete.

Output: one line per case, "ok <id> <description>" or
"FAIL <id> <description>: <why>" (or "skip ..."), then the last line
"conformance: N passed, M failed".  Exit status 0 only when M == 0.

Standard library only, raw sockets, so that deliberately invalid frames can
be sent.
"""

import argparse
import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
KNOWN_OPS = (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
OPNAMES = {OP_CONT: 'continuation', OP_TEXT: 'text', OP_BINARY: 'binary',
           OP_CLOSE: 'close', OP_PING: 'ping', OP_PONG: 'pong'}
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

# Autobahn's RSV numbering: the 3-bit value put in bits 6..4 of byte 0.
RSV1, RSV2, RSV3 = 4, 2, 1


class Fail(Exception):
    """The server misbehaved; the message says how."""


class Skip(Exception):
    """The case cannot run with the options given."""


# --------------------------------------------------------------------------
# frames

def opname(op):
    return OPNAMES.get(op, 'opcode 0x%X' % op)


def xor_mask(data, key):
    n = len(data)
    if not n:
        return b''
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, 'big') ^ int.from_bytes(k, 'big')).to_bytes(n, 'big')


def frame(op, payload=b'', fin=True, rsv=0, masked=True):
    """One client frame, masked unless masked=False."""
    payload = bytes(payload)
    n = len(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (op & 0xF)
    mbit = 0x80 if masked else 0
    if n < 126:
        hdr = struct.pack('!BB', b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack('!BBH', b0, mbit | 126, n)
    else:
        hdr = struct.pack('!BBQ', b0, mbit | 127, n)
    if not masked:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + xor_mask(payload, key)


def fragmented(op, pieces, rsv_first=0):
    """A message sent as one frame per element of pieces."""
    out = []
    last = len(pieces) - 1
    for i, p in enumerate(pieces):
        out.append(frame(op if i == 0 else OP_CONT, p, fin=(i == last),
                         rsv=rsv_first if i == 0 else 0))
    return b''.join(out)


def split(payload, size):
    """payload cut into pieces of size bytes (at least one piece)."""
    if not payload:
        return [b'']
    return [payload[i:i + size] for i in range(0, len(payload), size)]


def close_payload(code=None, reason=b''):
    if code is None:
        return b''
    if isinstance(reason, str):
        reason = reason.encode('utf-8')
    return struct.pack('!H', code) + reason


def close_frame(code=None, reason=b''):
    return frame(OP_CLOSE, close_payload(code, reason))


# --------------------------------------------------------------------------
# payloads

def tpay(n):
    """ASCII text of n bytes."""
    pat = b'The quick brown fox jumps over the lazy dog 0123456789. '
    return (pat * (n // len(pat) + 1))[:n]


def bpay(n):
    """Binary payload of n bytes: every byte value, repeatedly."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def upay(n):
    """Valid UTF-8 text of exactly n bytes, mostly multi-byte characters."""
    pat = 'κόσμε € 𝄞 µ@ßöäüàá ✓ '.encode('utf-8')
    s = (pat * (n // len(pat) + 2))[:n + 4]
    cut = n
    while cut > 0 and (s[cut] & 0xC0) == 0x80:
        cut -= 1
    return s[:cut] + b'x' * (n - cut)


def show(data, limit=24):
    """Short printable form of a payload for messages."""
    data = bytes(data)
    if len(data) > limit:
        return '%d bytes %s...' % (len(data), data[:limit].hex())
    return '%d bytes %s' % (len(data), data.hex()) if data else '0 bytes'


def msgdesc(op, payload):
    return '%s message of %s' % (opname(op), show(payload))


def codes_desc(codes):
    parts = ['no status' if c is None else str(c) for c in codes]
    if len(parts) == 1:
        return 'close ' + parts[0]
    return 'close ' + ' or '.join(parts)


# --------------------------------------------------------------------------
# connection

class Event:
    """Something the server did: message, ping, pong, close, eof, reset, timeout."""

    def __init__(self, kind, op=None, data=b'', code=None, reason=b'', waited=None):
        self.kind = kind
        self.op = op
        self.data = data
        self.code = code
        self.reason = reason
        self.waited = waited

    def describe(self):
        k = self.kind
        if k == 'message':
            return msgdesc(self.op, self.data)
        if k in ('ping', 'pong'):
            return '%s with %s' % (k, show(self.data))
        if k == 'close':
            if self.code is None:
                return 'close with no status'
            r = self.reason.decode('utf-8', 'replace')
            return 'close %d%s' % (self.code, (' "%s"' % r) if r else '')
        if k == 'eof':
            return 'a TCP close (EOF) without a close frame'
        if k == 'reset':
            return 'a TCP reset without a close frame'
        if k == 'timeout':
            return 'nothing within %gs' % self.waited
        return k


class Response:
    def __init__(self, status, line, headers):
        self.status = status
        self.line = line
        self.headers = headers          # [(lowercase name, value)]

    def get(self, name):
        vals = [v for n, v in self.headers if n == name.lower()]
        return ', '.join(vals) if vals else None

    def tokens(self, name):
        v = self.get(name) or ''
        return [t.strip().lower() for t in v.split(',') if t.strip()]


class Conn:
    def __init__(self, cfg):
        self.cfg = cfg
        self.sock = None
        self.buf = bytearray()
        self.eof = False            # the server closed (FIN, reset or TLS EOF)
        self.reset = False
        self.send_broken = False    # we gave up sending (peer gone or stalled)
        self.answered = False       # data arrived while we were still sending
        self.close_sent = False
        self.close_received = False
        self.ws_open = False
        self.finished = False
        self.notes = []
        self.frag_op = None
        self.frag = bytearray()
        self.nsync = 0

    # -- transport --------------------------------------------------------

    def connect(self):
        cfg = self.cfg
        try:
            s = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout)
        except OSError as e:
            raise Fail('cannot connect to %s:%d: %s' % (cfg.host, cfg.port, e))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cfg.tls:
            if cfg.ssl_context is None:     # once: loading the CA store is slow
                ctx = ssl.create_default_context()
                if cfg.insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                cfg.ssl_context = ctx
            try:
                s = cfg.ssl_context.wrap_socket(s, server_hostname=cfg.host)
            except (OSError, ssl.SSLError) as e:
                s.close()
                raise Fail('TLS handshake failed: %s' % e)
        self.sock = s

    def shutdown(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _fill(self, deadline):
        """Read once into buf.  True on progress (data or EOF), False on timeout."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            self.sock.settimeout(remaining)
            data = self.sock.recv(262144)
        except socket.timeout:
            return False
        except OSError:                 # reset, TLS error
            self.eof = self.reset = True
            return True
        if data:
            self.buf += data
        else:
            self.eof = True
        return True

    def _readable(self):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def send(self, data, chop=None, delay=0.0, stop_if_answered=False):
        """Send bytes, in pieces of chop bytes if given (1 = octet-wise),
        sleeping delay seconds between pieces.  Reads whatever the server
        sends meanwhile into the buffer, so neither side can block the other.
        Returns False (and sends nothing more on this connection) once the
        server closed, stopped reading for --timeout, or -- with
        stop_if_answered -- sent something before we were done."""
        if self.send_broken:
            return False
        data = memoryview(bytes(data))
        step = chop or 65536
        for i in range(0, len(data), step):
            if not self._send_piece(data[i:i + step], stop_if_answered):
                return False
            if chop and delay:
                time.sleep(delay)
        return True

    def _send_piece(self, view, stop_if_answered):
        deadline = time.monotonic() + self.cfg.timeout
        while len(view):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.send_broken = True
                return False
            if self._readable():
                before = len(self.buf)
                self._fill(time.monotonic() + 0.05)
                if self.eof:
                    self.send_broken = True
                    return False
                if len(self.buf) > before:
                    self.answered = True
                    if stop_if_answered:
                        self.send_broken = True
                        return False
                continue
            _, w, _ = select.select([self.sock], [self.sock], [], min(remaining, 0.25))
            if not w:
                continue
            try:
                self.sock.settimeout(remaining)
                n = self.sock.send(view)
            except socket.timeout:
                continue
            except OSError:
                self.send_broken = True
                return False
            view = view[n:]
        return True

    # -- HTTP -------------------------------------------------------------

    def request(self, method='GET', proto='HTTP/1.1', headers=None, extra=(), key=None):
        """Send an upgrade request.  headers: {name: value or None (omit)}
        overriding the defaults; extra: more (name, value) lines."""
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        hdrs = [('Host', self.cfg.hostport), ('Upgrade', 'websocket'),
                ('Connection', 'Upgrade'), ('Sec-WebSocket-Key', self.key),
                ('Sec-WebSocket-Version', '13')]
        headers = dict((k.lower(), (k, v)) for k, v in (headers or {}).items())
        lines = []
        for name, value in hdrs:
            if name.lower() in headers:
                name, value = headers.pop(name.lower())
            if value is not None:
                lines.append('%s: %s' % (name, value))
        for name, value in list(headers.values()) + list(extra):
            if value is not None:
                lines.append('%s: %s' % (name, value))
        req = '%s %s %s\r\n%s\r\n\r\n' % (method, self.cfg.path, proto, '\r\n'.join(lines))
        if not self.send(req.encode('latin-1')):
            raise Fail('could not send the HTTP request')
        return self.read_head()

    def read_head(self):
        """The response head, or None if the server closed without one."""
        deadline = time.monotonic() + self.cfg.timeout
        while b'\r\n\r\n' not in self.buf:
            if self.eof:
                if self.buf:
                    raise Fail('connection closed inside the HTTP response head: %r'
                               % bytes(self.buf[:80]))
                return None
            if len(self.buf) > 65536:
                raise Fail('HTTP response head larger than 64 KiB')
            if not self._fill(deadline):
                raise Fail('no complete HTTP response within %gs' % self.cfg.timeout)
        head, _, rest = bytes(self.buf).partition(b'\r\n\r\n')
        self.buf = bytearray(rest)
        lines = head.decode('latin-1').split('\r\n')
        parts = lines[0].split(' ', 2)
        if len(parts) < 2 or not parts[0].startswith('HTTP/1.') or not parts[1].isdigit():
            raise Fail('malformed HTTP status line %r' % lines[0])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(':')
            if not sep or not name or name != name.strip():
                raise Fail('malformed HTTP header line %r' % line)
            headers.append((name.lower(), value.strip()))
        return Response(int(parts[1]), lines[0], headers)

    def check_101(self, resp):
        if resp is None:
            raise Fail('handshake: server closed the connection without a response')
        if resp.status != 101:
            raise Fail('handshake: expected 101, got "%s"' % resp.line)
        if 'websocket' not in resp.tokens('Upgrade'):
            raise Fail('handshake: 101 without "Upgrade: websocket" (got %r)' % resp.get('Upgrade'))
        if 'upgrade' not in resp.tokens('Connection'):
            raise Fail('handshake: 101 without "Connection: Upgrade" (got %r)' % resp.get('Connection'))
        want = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
        got = resp.get('Sec-WebSocket-Accept')
        if got != want:
            raise Fail('handshake: Sec-WebSocket-Accept %r, expected %r' % (got, want))
        if resp.get('Sec-WebSocket-Extensions') is not None:
            raise Fail('handshake: server selected extensions %r that were never offered'
                       % resp.get('Sec-WebSocket-Extensions'))
        if resp.get('Sec-WebSocket-Protocol') is not None:
            raise Fail('handshake: server selected subprotocol %r that was never offered'
                       % resp.get('Sec-WebSocket-Protocol'))
        self.ws_open = True
        return resp

    def open(self, **kw):
        self.connect()
        return self.check_101(self.request(**kw))

    # -- frames from the server ---------------------------------------------

    def _take_frame(self):
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 0xF
        masked, n, pos = b1 >> 7, b1 & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack('!H', b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack('!Q', b[2:10])[0]
            pos = 10
        if masked:
            raise Fail('server sent a masked frame (%s)' % opname(op))
        if rsv:
            raise Fail('server sent a %s frame with RSV bits 0x%x set' % (opname(op), rsv << 4))
        if op not in KNOWN_OPS:
            raise Fail('server sent a frame with reserved opcode 0x%X' % op)
        if op >= 8 and (n > 125 or not fin):
            raise Fail('server sent an invalid %s frame (%d bytes, FIN=%d)' % (opname(op), n, fin))
        if len(b) < pos + n:
            return None
        payload = bytes(b[pos:pos + n])
        del b[:pos + n]
        return fin, op, payload

    def next_event(self, timeout=None):
        """The next thing the server does.  Pings from the server are answered
        (they are legal) and not reported, except after its close frame."""
        t = self.cfg.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            f = self._take_frame()
            if f is None:
                if self.eof:
                    return Event('reset' if self.reset else 'eof')
                if not self._fill(deadline):
                    return Event('timeout', waited=t)
                continue
            fin, op, payload = f
            if op == OP_PING:
                if self.close_received:
                    return Event('ping', data=payload)
                if not self.close_sent:
                    self.send(frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                return Event('pong', data=payload)
            if op == OP_CLOSE:
                if len(payload) == 1:
                    raise Fail('server sent a close frame with a 1-byte payload')
                code = struct.unpack('!H', payload[:2])[0] if payload else None
                reason = payload[2:]
                try:
                    reason.decode('utf-8')
                except UnicodeDecodeError:
                    raise Fail('server sent a close reason that is not UTF-8: %s' % show(reason))
                return Event('close', code=code, reason=reason)
            if op in (OP_TEXT, OP_BINARY):
                if self.frag_op is not None:
                    raise Fail('server started a new %s message inside a fragmented %s message'
                               % (opname(op), opname(self.frag_op)))
                if fin:
                    return Event('message', op=op, data=payload)
                self.frag_op, self.frag = op, bytearray(payload)
                continue
            # continuation
            if self.frag_op is None:
                raise Fail('server sent a continuation frame outside a fragmented message')
            self.frag += payload
            if fin:
                op, self.frag_op = self.frag_op, None
                return Event('message', op=op, data=bytes(self.frag))

    # -- expectations -------------------------------------------------------

    def expect_message(self, op, payload, what='echo'):
        ev = self.next_event()
        if ev.kind != 'message':
            raise Fail('expected %s (%s), got %s' % (what, msgdesc(op, payload), ev.describe()))
        same_message(ev, op, payload, what)

    def expect_pong(self, payload):
        ev = self.next_event()
        if ev.kind != 'pong':
            raise Fail('expected pong with %s, got %s' % (show(payload), ev.describe()))
        if ev.data != payload:
            raise Fail('pong payload %s differs from the ping payload %s'
                       % (show(ev.data), show(payload)))

    def expect_pongs(self, payloads):
        """Pongs for pings sent with these (distinct) payloads, in order.
        RFC 6455 5.5.3 lets a server answer only the latest of several
        pending pings, so missing pongs are non-strict, not failures."""
        idx = got = 0
        while idx < len(payloads):
            ev = self.next_event()
            if ev.kind != 'pong':
                raise Fail('expected pong with %s, got %s' % (show(payloads[idx]), ev.describe()))
            try:
                j = payloads.index(ev.data, idx)
            except ValueError:
                raise Fail('pong with %s matches no outstanding ping (next expected: %s)'
                           % (show(ev.data), show(payloads[idx])))
            idx, got = j + 1, got + 1
        if got < len(payloads):
            self.notes.append('non-strict: %d pongs for %d pings' % (got, len(payloads)))

    def sync(self):
        """Ping/pong round trip: everything sent before was processed and
        did not fail the connection."""
        self.nsync += 1
        payload = ('sync %d' % self.nsync).encode()
        self.send(frame(OP_PING, payload))
        ev = self.next_event()
        if ev.kind != 'pong' or ev.data != payload:
            raise Fail('after valid data the server answered a ping with %s' % ev.describe())

    def quiet(self, seconds):
        """Nothing may arrive within seconds."""
        ev = self.next_event(seconds)
        if ev.kind != 'timeout':
            raise Fail('expected nothing yet, got %s' % ev.describe())

    def send_close(self, code=None, reason=b'', payload=None):
        self.close_sent = True
        return self.send(frame(OP_CLOSE, close_payload(code, reason) if payload is None else payload))

    def expect_close(self, codes, context='', timeout=None, maybe=()):
        """The server's close frame with one of codes (None: no status), then
        EOF.  maybe: (op, payload) echoes of earlier messages that may come
        first (a missing one is non-strict)."""
        pending = list(maybe)
        while True:
            ev = self.next_event(timeout)
            if ev.kind == 'message' and pending:
                op, payload = pending.pop(0)
                same_message(ev, op, payload, 'echo of the earlier message')
                continue
            break
        if ev.kind != 'close':
            raise Fail('expected %s%s, got %s' % (codes_desc(codes), context, ev.describe()))
        self.close_received = True
        if ev.code not in codes:
            raise Fail('expected %s%s, got %s' % (codes_desc(codes), context, ev.describe()))
        if pending:
            self.notes.append('non-strict: %d earlier message(s) not echoed before the close'
                              % len(pending))
        if not self.close_sent:
            # answer the server's close, as a client does (best effort)
            self.send_close(payload=close_payload(ev.code))
        self.expect_eof()
        return ev

    def expect_eof(self):
        ev = self.next_event()
        if ev.kind in ('eof', 'reset'):
            self.finished = True
            return
        if ev.kind == 'timeout':
            raise Fail('server did not close the TCP connection within %gs after the close handshake'
                       % ev.waited)
        raise Fail('server sent %s after its close frame' % ev.describe())

    def close_normal(self):
        self.send_close(1000)
        self.expect_close([1000], ' in answer to our close 1000')


def same_message(ev, op, payload, what):
    if ev.op != op:
        raise Fail('%s: expected %s, got %s' % (what, msgdesc(op, payload), ev.describe()))
    if ev.data != payload:
        n = min(len(ev.data), len(payload))
        at = next((i for i in range(n) if ev.data[i] != payload[i]), n)
        raise Fail('%s differs: sent %d bytes, got %d bytes, first difference at offset %d'
                   % (what, len(payload), len(ev.data), at))


# --------------------------------------------------------------------------
# the catalogue

CASES = []


def add(cid, desc, fn, raw=False):
    """raw: fn gets an unopened connection (handshake cases)."""
    CASES.append((cid, desc, fn, raw))


def echo_case(op, payload, frames=None, chop=None, delay=0.0):
    """Send a message (frames: its bytes, default one frame) and expect the
    echo."""
    def run(c):
        c.send(frames if frames is not None else frame(op, payload), chop=chop, delay=delay)
        c.expect_message(op, payload)
    return run


def fail_case(data, code, chop=None, delay=0.0, maybe=(), before=None):
    """Send data (after optional valid messages `before`, each echoed first)
    and expect the connection to be failed with close `code`."""
    codes = code if isinstance(code, (list, tuple)) else [code]

    def run(c):
        for op, payload in before or ():
            c.send(frame(op, payload))
            c.expect_message(op, payload)
        c.send(data, chop=chop, delay=delay)
        c.expect_close(codes, maybe=maybe)
    return run


def send_steps(c, steps, mode):
    """mode None: all at once; 'frames': one write per frame with a short
    pause; 'octets': one write per octet."""
    if mode is None:
        c.send(b''.join(steps))
    elif mode == 'frames':
        for s in steps:
            c.send(s)
            time.sleep(0.005)
    else:
        c.send(b''.join(steps), chop=1)


MODES = [(None, ''), ('frames', ', frame-wise writes'), ('octets', ', octet-wise writes')]


def build_catalogue(cfg):
    maxm = cfg.max_message

    # ---- 0.1 opening handshake --------------------------------------------
    def hs_ok(c):
        c.open()
        c.send(frame(OP_TEXT, b'handshake ok'))
        c.expect_message(OP_TEXT, b'handshake ok')
    add('0.1.1', 'valid handshake: 101, Upgrade, Connection, Sec-WebSocket-Accept, no extension/subprotocol', hs_ok, raw=True)

    def hs_version8(c):
        c.connect()
        r = c.request(headers={'Sec-WebSocket-Version': '8'})
        if r is None:
            raise Fail('server closed the connection without an HTTP response')
        if r.status != 400:
            raise Fail('expected 400, got "%s"' % r.line)
        if '13' not in r.tokens('Sec-WebSocket-Version'):
            raise Fail('400 without a "Sec-WebSocket-Version: 13" header (got %r)'
                       % r.get('Sec-WebSocket-Version'))
    add('0.1.2', 'Sec-WebSocket-Version: 8 -> 400 with Sec-WebSocket-Version: 13', hs_version8, raw=True)

    def hs_status(headers=None, extra=(), method='GET', proto='HTTP/1.1', key=None, want=400):
        def run(c):
            c.connect()
            r = c.request(headers=headers, extra=extra, method=method, proto=proto, key=key)
            if want == 400:
                if r is None:
                    raise Fail('server closed the connection without an HTTP response')
                if r.status != 400:
                    raise Fail('expected 400, got "%s"' % r.line)
            elif want == 'reject':
                if r is not None and not 400 <= r.status < 500:
                    raise Fail('expected a 4xx refusal, got "%s"' % r.line)
            elif want == 101:
                c.check_101(r)
                c.send(frame(OP_TEXT, b'hello'))
                c.expect_message(OP_TEXT, b'hello')
        return run

    add('0.1.3', 'no Sec-WebSocket-Key -> 400', hs_status(headers={'Sec-WebSocket-Key': None}), raw=True)
    add('0.1.4', 'Sec-WebSocket-Key of 15 bytes -> 400',
        hs_status(key=base64.b64encode(os.urandom(15)).decode()), raw=True)
    add('0.1.5', 'Sec-WebSocket-Key not base64 -> 400', hs_status(key='not a base64 key!!!!!!!!'), raw=True)
    add('0.1.6', 'no Sec-WebSocket-Version -> 400',
        hs_status(headers={'Sec-WebSocket-Version': None}), raw=True)
    add('0.1.7', '"Connection: keep-alive, Upgrade" (token list) -> 101',
        hs_status(headers={'Connection': 'keep-alive, Upgrade'}, want=101), raw=True)
    add('0.1.8', 'tokens in other case ("Upgrade: WebSocket", "Connection: upgrade") -> 101',
        hs_status(headers={'Upgrade': 'WebSocket', 'Connection': 'upgrade'}, want=101), raw=True)
    add('0.1.9', 'Connection split over two header lines (keep-alive / Upgrade) -> 101',
        hs_status(headers={'Connection': 'keep-alive'}, extra=[('Connection', 'Upgrade')], want=101),
        raw=True)
    add('0.1.10', 'upgrade request with POST is refused (4xx, no 101)',
        hs_status(method='POST', extra=[('Content-Length', '0')], want='reject'), raw=True)
    add('0.1.11', 'upgrade request over HTTP/1.0 is refused (4xx, no 101)',
        hs_status(proto='HTTP/1.0', want='reject'), raw=True)

    # ---- 0.2 masking and frame length ------------------------------------
    add('0.2.1', 'unmasked text frame -> 1002',
        fail_case(frame(OP_TEXT, b'Hello', masked=False), 1002))
    add('0.2.2', 'unmasked ping -> 1002', fail_case(frame(OP_PING, b'Hello', masked=False), 1002))
    add('0.2.3', 'unmasked close -> 1002', fail_case(frame(OP_CLOSE, close_payload(1000), masked=False), 1002))
    add('0.2.4', 'valid message echoed, then unmasked binary frame -> 1002',
        fail_case(frame(OP_BINARY, b'\x00\x01', masked=False), 1002, before=[(OP_TEXT, b'first')]))
    add('0.2.5', '64-bit payload length with the most significant bit set -> 1002 (or 1009)',
        fail_case(struct.pack('!BBQ', 0x82, 0xFF, 1 << 63) + os.urandom(4) + b'x' * 16, [1002, 1009]))

    # ---- 0.3 message size limit ------------------------------------------
    def need_max(n_extra=0):
        if maxm is None:
            raise Skip('no --max-message given')
        if maxm + n_extra > 64 * 2**20:
            raise Skip('--max-message too large to test here')

    def lim_exact(c):
        need_max()
        p = bpay(maxm)
        c.send(frame(OP_BINARY, p))
        c.expect_message(OP_BINARY, p)
    add('0.3.1', 'binary message of exactly --max-message bytes echoed', lim_exact)

    def lim_over(op, fragsize=None):
        def run(c):
            need_max(1)
            p = (tpay if op == OP_TEXT else bpay)(maxm + 1)
            data = fragmented(op, split(p, fragsize)) if fragsize else frame(op, p)
            c.send(data, stop_if_answered=True)
            c.expect_close([1009])
        return run
    add('0.3.2', 'text message of --max-message + 1 bytes in one frame -> 1009', lim_over(OP_TEXT))
    add('0.3.3', 'binary message of --max-message + 1 bytes in one frame -> 1009', lim_over(OP_BINARY))
    add('0.3.4', 'binary message of --max-message + 1 bytes in 64 KiB fragments -> 1009',
        lim_over(OP_BINARY, 65536))
    add('0.3.5', 'text message of --max-message + 1 bytes in 4000-byte fragments -> 1009',
        lim_over(OP_TEXT, 4000))

    def lim_header(c):
        need_max(1)
        f = frame(OP_BINARY, bpay(maxm + 1))
        c.send(f[:14])          # the header: the length alone is over the limit
        ev = c.next_event()
        if ev.kind == 'timeout':
            c.send(f[14:], stop_if_answered=True)
            c.notes.append('non-strict: failed only after the payload, not on the frame header')
            c.expect_close([1009])
            return
        if ev.kind != 'close' or ev.code != 1009:
            raise Fail('expected close 1009, got %s' % ev.describe())
        c.close_received = True
        c.send_close(payload=close_payload(1009))
        c.expect_eof()
    add('0.3.6', 'frame header announcing --max-message + 1 bytes -> 1009 before the payload', lim_header)

    # ---- 1 framing -------------------------------------------------------
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for op, cat, gen in ((OP_TEXT, '1.1', tpay), (OP_BINARY, '1.2', bpay)):
        for i, n in enumerate(sizes, 1):
            add('%s.%d' % (cat, i), '%s message of %d bytes' % (opname(op), n), echo_case(op, gen(n)))
        add('%s.8' % cat, '%s message of 65536 bytes sent in chops of 997 octets' % opname(op),
            echo_case(op, gen(65536), chop=997))

    # ---- 2 pings and pongs -----------------------------------------------
    def ping_case(payload, chop=None):
        def run(c):
            c.send(frame(OP_PING, payload), chop=chop)
            c.expect_pong(payload)
        return run
    add('2.1', 'ping without payload -> pong without payload', ping_case(b''))
    add('2.2', 'ping with small text payload -> identical pong', ping_case(b'Hello, world!'))
    add('2.3', 'ping with small binary payload -> identical pong', ping_case(b'\x00\xff\xfe\xfd\xfc\xfb\x00\xff'))
    add('2.4', 'ping with 125-byte binary payload -> identical pong', ping_case(bpay(125)[::-1]))
    add('2.5', 'ping with 126-byte payload -> 1002', fail_case(frame(OP_PING, bpay(126)), 1002))
    add('2.6', 'ping with 125-byte payload sent octet-wise -> identical pong',
        ping_case(bpay(125), chop=1))

    def unsolicited(payload, ping=None):
        def run(c):
            c.send(frame(OP_PONG, payload))
            if ping is not None:
                c.send(frame(OP_PING, ping))
                c.expect_pong(ping)
            c.send(frame(OP_TEXT, b'after pong'))
            c.expect_message(OP_TEXT, b'after pong', 'echo (the unsolicited pong must be ignored)')
        return run
    add('2.7', 'unsolicited pong without payload is ignored', unsolicited(b''))
    add('2.8', 'unsolicited pong with payload is ignored', unsolicited(b'unsolicited pong payload'))
    add('2.9', 'unsolicited pong, then ping -> only the pong for the ping',
        unsolicited(b'unsolicited pong payload', ping=b'ping payload'))

    def many_pings(payloads, chop=None):
        def run(c):
            c.send(b''.join(frame(OP_PING, p) for p in payloads), chop=chop)
            c.expect_pongs(payloads)
        return run
    ten = [('payload-%d' % i).encode() for i in range(10)]
    add('2.10', '10 pings -> 10 identical pongs in order', many_pings(ten))
    add('2.11', '10 pings sent octet-wise -> 10 identical pongs in order', many_pings(ten, chop=1))
    add('2.12', '126 pings with payloads of 0..125 bytes -> identical pongs in order',
        many_pings([bpay(n)[::-1] for n in range(126)]))
    add('2.13', 'ping with a 65536-byte payload (64-bit length) -> 1002',
        fail_case(frame(OP_PING, bpay(65536)), 1002))

    def ping_then_text(c):
        for i in range(5):
            p = ('ping %d' % i).encode()
            c.send(frame(OP_PING, p) + frame(OP_TEXT, b'text %d' % i))
            c.expect_pong(p)
            c.expect_message(OP_TEXT, b'text %d' % i)
    add('2.14', 'pings interleaved with text messages: pongs and echoes in order', ping_then_text)

    # ---- 3 reserved bits -------------------------------------------------
    hello = b'Hello, world!'
    add('3.1', 'text with RSV=1 -> 1002', fail_case(frame(OP_TEXT, hello, rsv=1), 1002))
    add('3.2', 'text, text with RSV=2, ping -> echo of the first, 1002, no pong',
        fail_case(frame(OP_TEXT, hello) + frame(OP_TEXT, hello, rsv=2) + frame(OP_PING, b'p'),
                  1002, maybe=[(OP_TEXT, hello)]))
    add('3.3', 'text echoed, then text with RSV=3, ping -> 1002, no pong',
        fail_case(frame(OP_TEXT, hello, rsv=3) + frame(OP_PING, b'p'), 1002, before=[(OP_TEXT, hello)]))
    add('3.4', 'text, text with RSV=4, ping, octet-wise -> echo of the first, 1002',
        fail_case(frame(OP_TEXT, hello) + frame(OP_TEXT, hello, rsv=4) + frame(OP_PING, b'p'),
                  1002, chop=1, maybe=[(OP_TEXT, hello)]))
    add('3.5', 'binary with RSV=5 -> 1002', fail_case(frame(OP_BINARY, bpay(8), rsv=5), 1002))
    add('3.6', 'ping with RSV=6 -> 1002', fail_case(frame(OP_PING, hello, rsv=6), 1002))
    add('3.7', 'close with RSV=7 -> 1002', fail_case(frame(OP_CLOSE, close_payload(1000), rsv=7), 1002))
    rsv_kinds = [
        ('3.8', 'text', lambda r: frame(OP_TEXT, hello, rsv=r)),
        ('3.9', 'binary', lambda r: frame(OP_BINARY, bpay(16), rsv=r)),
        ('3.10', 'ping', lambda r: frame(OP_PING, b'ping', rsv=r)),
        ('3.11', 'pong', lambda r: frame(OP_PONG, b'pong', rsv=r)),
        ('3.12', 'close 1000', lambda r: frame(OP_CLOSE, close_payload(1000), rsv=r)),
        ('3.13', 'first fragment of a text message',
         lambda r: frame(OP_TEXT, b'frag1', fin=False, rsv=r) + frame(OP_CONT, b'frag2')),
        ('3.14', 'continuation frame',
         lambda r: frame(OP_TEXT, b'frag1', fin=False) + frame(OP_CONT, b'frag2', rsv=r)),
    ]
    for cat, what, mk in rsv_kinds:
        for j, (bitname, bit) in enumerate((('RSV1', RSV1), ('RSV2', RSV2), ('RSV3', RSV3)), 1):
            add('%s.%d' % (cat, j), '%s with %s set, after an echoed message -> 1002' % (what, bitname),
                fail_case(mk(bit), 1002, before=[(OP_TEXT, b'valid first')]))

    # ---- 4 reserved opcodes ------------------------------------------------
    for cat, ops in (('4.1', (3, 4, 5, 6, 7)), ('4.2', (0xB, 0xC, 0xD, 0xE, 0xF))):
        j = 0
        for op in ops:
            j += 1
            add('%s.%d' % (cat, j), 'reserved opcode 0x%X without payload -> 1002' % op,
                fail_case(frame(op), 1002))
            j += 1
            add('%s.%d' % (cat, j), 'reserved opcode 0x%X with payload -> 1002' % op,
                fail_case(frame(op, b'reserved opcode payload'), 1002))
            j += 1
            add('%s.%d' % (cat, j), 'text echoed, then reserved opcode 0x%X, ping -> 1002, no pong' % op,
                fail_case(frame(op, b'reserved') + frame(OP_PING, b'p'), 1002, before=[(OP_TEXT, hello)]))
    add('4.3.1', 'text, opcode 0x5, ping sent together octet-wise -> echo of the first, 1002',
        fail_case(frame(OP_TEXT, hello) + frame(5, b'x') + frame(OP_PING, b'p'), 1002, chop=1,
                  maybe=[(OP_TEXT, hello)]))
    add('4.3.2', 'text, opcode 0xD, ping sent together -> echo of the first, 1002',
        fail_case(frame(OP_TEXT, hello) + frame(0xD, b'x') + frame(OP_PING, b'p'), 1002,
                  maybe=[(OP_TEXT, hello)]))
    add('4.3.3', 'reserved opcode 0x3 inside a fragmented text message -> 1002',
        fail_case(frame(OP_TEXT, b'frag1', fin=False) + frame(3, b'x') + frame(OP_CONT, b'frag2'), 1002))

    # ---- 5 fragmentation ---------------------------------------------------
    add('5.1', 'ping fragmented into 2 frames -> 1002',
        fail_case(frame(OP_PING, b'fragment1', fin=False) + frame(OP_CONT, b'fragment2'), 1002))
    add('5.2', 'pong fragmented into 2 frames -> 1002',
        fail_case(frame(OP_PONG, b'fragment1', fin=False) + frame(OP_CONT, b'fragment2'), 1002))

    two = [frame(OP_TEXT, b'fragment1', fin=False), frame(OP_CONT, b'fragment2')]
    for i, (mode, mdesc) in enumerate(MODES):
        def run(c, mode=mode):
            send_steps(c, two, mode)
            c.expect_message(OP_TEXT, b'fragment1fragment2')
        add('5.%d' % (3 + i), 'text in 2 fragments -> one message' + mdesc, run)
    for i, (mode, mdesc) in enumerate(MODES):
        def run(c, mode=mode):
            send_steps(c, [two[0], frame(OP_PING, b'ping payload'), two[1]], mode)
            c.expect_pong(b'ping payload')
            c.expect_message(OP_TEXT, b'fragment1fragment2')
        add('5.%d' % (6 + i), 'text in 2 fragments with a ping between -> pong, then the message' + mdesc, run)
    for i, (mode, mdesc) in enumerate(MODES):
        steps = [frame(OP_CONT, b'non-continuation payload'), frame(OP_TEXT, hello)]

        def run(c, mode=mode, steps=steps):
            send_steps(c, steps, mode)
            c.expect_close([1002])
        add('5.%d' % (9 + i), 'continuation (FIN) without a message start, then text -> 1002' + mdesc, run)
    for i, (mode, mdesc) in enumerate(MODES):
        steps = [frame(OP_CONT, b'non-continuation payload', fin=False), frame(OP_TEXT, hello)]

        def run(c, mode=mode, steps=steps):
            send_steps(c, steps, mode)
            c.expect_close([1002])
        add('5.%d' % (12 + i), 'continuation (no FIN) without a message start, then text -> 1002' + mdesc, run)
    add('5.15', 'text in 2 fragments, then continuation (no FIN), text -> echo of the first, 1002',
        fail_case(fragmented(OP_TEXT, [b'fragment1', b'fragment2'])
                  + frame(OP_CONT, b'fragment3', fin=False) + frame(OP_TEXT, b'fragment4'),
                  1002, maybe=[(OP_TEXT, b'fragment1fragment2')]))
    add('5.16', '2x (continuation no FIN, text no FIN, continuation FIN) -> 1002',
        fail_case(2 * (frame(OP_CONT, b'fragment1', fin=False) + frame(OP_TEXT, b'fragment2', fin=False)
                       + frame(OP_CONT, b'fragment3')), 1002))
    add('5.17', '2x (continuation FIN, text no FIN, continuation FIN) -> 1002',
        fail_case(2 * (frame(OP_CONT, b'fragment1') + frame(OP_TEXT, b'fragment2', fin=False)
                       + frame(OP_CONT, b'fragment3')), 1002))
    add('5.18', 'text no FIN, then text FIN (new message inside a fragmented one) -> 1002',
        fail_case(frame(OP_TEXT, b'fragment1', fin=False) + frame(OP_TEXT, b'fragment2'), 1002))

    def five_with_pings(mode):
        def run(c):
            fr = [frame(OP_TEXT if i == 0 else OP_CONT, b'fragment%d' % (i + 1), fin=(i == 4))
                  for i in range(5)]
            send_steps(c, fr[:2] + [frame(OP_PING, b'pongme 1!')], mode)
            c.expect_pong(b'pongme 1!')
            send_steps(c, fr[2:4] + [frame(OP_PING, b'pongme 2!')], mode)
            c.expect_pong(b'pongme 2!')
            send_steps(c, fr[4:], mode)
            c.expect_message(OP_TEXT, b'fragment1fragment2fragment3fragment4fragment5')
        return run
    add('5.19', 'text in 5 fragments, pings after the 2nd and 4th answered before the message ends',
        five_with_pings(None))
    add('5.20', 'as 5.19, octet-wise writes', five_with_pings('octets'))
    add('5.21', 'binary in 2 fragments -> one binary message',
        echo_case(OP_BINARY, bpay(300), fragmented(OP_BINARY, [bpay(300)[:100], bpay(300)[100:]])))

    def bin3_pings(c):
        p = bpay(600)
        c.send(frame(OP_BINARY, p[:200], fin=False) + frame(OP_PING, b'a')
               + frame(OP_CONT, p[200:400], fin=False) + frame(OP_PING, b'b') + frame(OP_CONT, p[400:]))
        c.expect_pong(b'a')
        c.expect_pong(b'b')
        c.expect_message(OP_BINARY, p)
    add('5.22', 'binary in 3 fragments with pings between -> pongs, then the message', bin3_pings)
    add('5.23', 'close fragmented into 2 frames -> 1002',
        fail_case(frame(OP_CLOSE, close_payload(1000), fin=False) + frame(OP_CONT, b'xx'), 1002))
    add('5.24', 'text no FIN, then binary FIN -> 1002',
        fail_case(frame(OP_TEXT, b'fragment1', fin=False) + frame(OP_BINARY, b'fragment2'), 1002))
    add('5.25', 'binary no FIN, then text no FIN -> 1002',
        fail_case(frame(OP_BINARY, b'fragment1', fin=False) + frame(OP_TEXT, b'fragment2', fin=False)
                  + frame(OP_CONT, b'fragment3'), 1002))
    add('5.26', 'binary in 3 empty fragments -> empty binary message',
        echo_case(OP_BINARY, b'', fragmented(OP_BINARY, [b'', b'', b''])))
    add('5.27', 'binary: empty first fragment, payload, empty last fragment',
        echo_case(OP_BINARY, bpay(50), fragmented(OP_BINARY, [b'', bpay(50), b''])))
    add('5.28', 'text of 1000 bytes in 1000 one-byte fragments',
        echo_case(OP_TEXT, tpay(1000), fragmented(OP_TEXT, split(tpay(1000), 1))))
    add('5.29', 'binary of 256 bytes in 256 one-byte fragments',
        echo_case(OP_BINARY, bpay(256), fragmented(OP_BINARY, split(bpay(256), 1))))

    def pong_inside(c):
        c.send(frame(OP_TEXT, b'fragment1', fin=False) + frame(OP_PONG, b'unsolicited')
               + frame(OP_CONT, b'fragment2'))
        c.expect_message(OP_TEXT, b'fragment1fragment2', 'echo (the pong must be ignored)')
    add('5.30', 'unsolicited pong between fragments is ignored', pong_inside)

    def ten_frag_pings(c):
        pieces = [b'f%d;' % i for i in range(10)]
        data = b''
        pings = []
        for i, p in enumerate(pieces):
            data += frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == 9))
            if i < 9:
                pings.append(b'between %d' % i)
                data += frame(OP_PING, pings[-1])
        c.send(data)
        c.expect_pongs(pings)
        c.expect_message(OP_TEXT, b''.join(pieces))
    add('5.31', 'text in 10 fragments with a ping between each -> 9 pongs, then the message', ten_frag_pings)
    add('5.32', 'text echoed, then a continuation frame -> 1002',
        fail_case(frame(OP_CONT, b'stray'), 1002, before=[(OP_TEXT, hello)]))

    def two_fragmented(c):
        t, b = upay(500), bpay(500)
        c.send(fragmented(OP_TEXT, split(t, 97)) + fragmented(OP_BINARY, split(b, 89)))
        c.expect_message(OP_TEXT, t)
        c.expect_message(OP_BINARY, b)
    add('5.33', 'fragmented text then fragmented binary -> both echoed, in order', two_fragmented)

    # ---- 6 UTF-8 ------------------------------------------------------------
    add('6.1.1', 'empty text message', echo_case(OP_TEXT, b''))
    add('6.1.2', 'text in 3 empty fragments -> empty text message',
        echo_case(OP_TEXT, b'', fragmented(OP_TEXT, [b'', b'', b''])))
    add('6.1.3', 'text: empty fragment, payload, empty fragment',
        echo_case(OP_TEXT, b'middle frame payload', fragmented(OP_TEXT, [b'', b'middle frame payload', b''])))
    hu = 'Hello-µ@ßöäüàá-UTF-8!!'.encode('utf-8')
    add('6.2.1', 'valid UTF-8 text in one frame', echo_case(OP_TEXT, hu))
    add('6.2.2', 'valid UTF-8 text in 2 fragments split on a code point boundary',
        echo_case(OP_TEXT, hu, fragmented(OP_TEXT, [hu[:11], hu[11:]])))
    add('6.2.3', 'valid UTF-8 text in 1-octet fragments (splitting code points)',
        echo_case(OP_TEXT, hu, fragmented(OP_TEXT, split(hu, 1))))
    kosme = bytes.fromhex('cebae1bdb9cf83cebcceb5')
    add('6.2.4', '"κόσμε" in 1-octet fragments', echo_case(OP_TEXT, kosme, fragmented(OP_TEXT, split(kosme, 1))))
    bad = kosme + bytes.fromhex('eda080') + b'edited'
    add('6.3.1', 'invalid UTF-8 text in one frame -> 1007', fail_case(frame(OP_TEXT, bad), 1007))
    add('6.3.2', 'invalid UTF-8 text in 1-octet fragments -> 1007',
        fail_case(fragmented(OP_TEXT, split(bad, 1)), 1007))

    def failfast_frags(valid, invalid, rest=b'edited'):
        """valid: non-final fragments forming a valid prefix (checked with a
        ping round trip); invalid: the fragment with which the prefix stops
        being valid UTF-8; the server must close 1007 before the rest."""
        def run(c):
            first = True
            for p in valid:
                c.send(frame(OP_TEXT if first else OP_CONT, p, fin=False))
                first = False
                c.sync()
            c.send(frame(OP_TEXT if first else OP_CONT, invalid, fin=False))
            c.expect_close([1007], ' as soon as the invalid fragment arrived (fail fast)')
        return run

    def failfast_chops(frame_bytes, at):
        """One text frame written in 3 pieces: [..at[0]] valid, [at[0]..at[1]]
        makes the payload invalid, then the rest.  Failing before the rest is
        strict; failing only at the end of the frame is non-strict."""
        def run(c):
            c.send(frame_bytes[:at[0]])
            time.sleep(0.05)
            c.send(frame_bytes[at[0]:at[1]])
            ev = c.next_event(min(cfg.timeout, 0.5))
            if ev.kind == 'timeout':
                c.notes.append('non-strict: invalid UTF-8 detected only at the end of the frame')
                c.send(frame_bytes[at[1]:])
                c.expect_close([1007])
                return
            if ev.kind != 'close' or ev.code != 1007:
                raise Fail('expected close 1007, got %s' % ev.describe())
            c.close_received = True
            c.send_close(payload=close_payload(1007))
            c.expect_eof()
        return run

    add('6.4.1', 'fail fast: fragment 2 of 3 makes the text invalid (f4908080) -> 1007 before fragment 3',
        failfast_frags([kosme], bytes.fromhex('f4908080')))
    add('6.4.2', 'fail fast: fragment 2 is the single octet 0x90 after f4 -> 1007 before fragment 3',
        failfast_frags([kosme + b'\xf4'], b'\x90', b'\x80\x80edited'))
    f643 = frame(OP_TEXT, kosme + bytes.fromhex('f4908080') + b'edited')
    h = len(f643) - len(kosme) - 4 - 6
    add('6.4.3', 'fail fast within a frame: chop 2 of 3 makes it invalid (f4908080)',
        failfast_chops(f643, (h + len(kosme), h + len(kosme) + 4)))
    add('6.4.4', 'fail fast within a frame: chop 2 of 3 is the single octet 0x90',
        failfast_chops(f643, (h + len(kosme) + 1, h + len(kosme) + 2)))
    add('6.4.5', 'fail fast: "κόσμε\\xed" then fragment a080 (surrogate) -> 1007',
        failfast_frags([kosme + b'\xed'], b'\xa0', b'\x80edited'))
    add('6.4.6', 'fail fast: first fragment "hello\\xc0" (never valid) -> 1007',
        failfast_frags([], b'hello\xc0'))
    add('6.4.7', 'fail fast: "hello\\xe0" then 0x80 (overlong 3-byte) -> 1007',
        failfast_frags([b'hello\xe0'], b'\x80'))
    add('6.4.8', 'fail fast: "hello\\xf0" then 0x8f (overlong 4-byte) -> 1007',
        failfast_frags([b'hello\xf0'], b'\x8f'))
    add('6.4.9', 'fail fast: first fragment "hello\\xf5" (lead byte beyond U+10FFFF) -> 1007',
        failfast_frags([], b'hello\xf5'))
    add('6.4.10', 'fail fast: "hello\\xf4\\x8f\\xbf" then 0xc0 (truncated sequence) -> 1007',
        failfast_frags([b'hello\xf4\x8f\xbf'], b'\xc0'))
    add('6.4.11', 'fail fast: "hello" then a lone continuation octet 0x80 -> 1007',
        failfast_frags([b'hello'], b'\x80'))
    add('6.4.12', 'fail fast: 3 valid fragments ending mid-character, then 0x41 -> 1007',
        failfast_frags([b'ab\xf0', b'\x9d', b'\x84'], b'A'))
    add('6.4.13', 'text ending inside a character ("hello\\xe2\\x82" + empty final fragment) -> 1007',
        fail_case(fragmented(OP_TEXT, [b'hello\xe2\x82', b'']), 1007))
    add('6.4.14', 'character split across fragments ("hello\\xe2\\x82" + "\\xac world") is valid',
        echo_case(OP_TEXT, 'hello€ world'.encode(), fragmented(OP_TEXT, [b'hello\xe2\x82', b'\xac world'])))
    f615 = frame(OP_TEXT, b'hello' + bytes.fromhex('eda080') + b'edited')
    h = len(f615) - 14
    add('6.4.15', 'fail fast within a frame: chop 2 of 3 is "\\xed\\xa0" (surrogate)',
        failfast_chops(f615, (h + 5, h + 7)))

    for sub, (title, seqs) in enumerate(utf8_sequences(), 5):
        for j, (valid, s) in enumerate(seqs, 1):
            cid = '6.%d.%d' % (sub, j)
            hexs = s.hex() if len(s) <= 20 else s[:20].hex() + '...'
            if valid:
                add(cid, '%s: %s valid -> echoed' % (title, hexs), echo_case(OP_TEXT, s))
            else:
                add(cid, '%s: %s invalid -> 1007' % (title, hexs), fail_case(frame(OP_TEXT, s), 1007))

    add('6.24.1', 'binary message with invalid UTF-8 is echoed (binary is not validated)',
        echo_case(OP_BINARY, bad + b'\xff\xfe\xc0\x80'))
    add('6.24.2', 'ping with invalid UTF-8 payload -> identical pong', ping_case(b'\xff\xfe\xed\xa0\x80'))
    add('6.24.3', 'text with a leading BOM is echoed unchanged',
        echo_case(OP_TEXT, b'\xef\xbb\xbfBOM first'))
    s4 = 'x𝄞€κ𝄞y'.encode()
    add('6.24.4', '4-byte characters in 1-octet fragments', echo_case(OP_TEXT, s4, fragmented(OP_TEXT, split(s4, 1))))
    add('6.24.5', 'valid multi-byte text of 65536 bytes in one frame', echo_case(OP_TEXT, upay(65536)))
    add('6.24.6', 'valid text, then invalid text -> echo of the first, 1007',
        fail_case(frame(OP_TEXT, b'\xce'), 1007, before=[(OP_TEXT, kosme)]))

    # ---- 7 close handling --------------------------------------------------
    def c711(c):
        c.send(frame(OP_TEXT, b'Hello World!'))
        c.expect_message(OP_TEXT, b'Hello World!')
        c.send_close(1000)
        c.expect_close([1000], ' (close echoed with code 1000)')
    add('7.1.1', 'text echoed, then close 1000 -> close 1000, TCP closed', c711)

    def after_close(extra, desc_what):
        def run(c):
            c.send_close(1000)
            c.send(extra)
            c.expect_close([1000], ' (and nothing for the %s sent after our close)' % desc_what)
        return run
    add('7.1.2', 'close, then a second close -> one close reply, TCP closed', after_close(close_frame(1000), 'second close'))
    add('7.1.3', 'close, then ping -> close reply, no pong', after_close(frame(OP_PING, b'after close'), 'ping'))
    add('7.1.4', 'close, then text -> close reply, the text is not echoed',
        after_close(frame(OP_TEXT, b'after close'), 'text'))

    def c715(c):
        c.send(frame(OP_TEXT, b'fragment1', fin=False))
        c.send_close(1000)
        c.send(frame(OP_CONT, b'fragment2'))
        c.expect_close([1000], ' (the unfinished message must not be echoed)')
    add('7.1.5', 'text fragment, close, last fragment -> close reply, no message', c715)

    def c716(c):
        n = 256 * 1024
        if maxm is not None:
            n = min(n, maxm)
        big = tpay(n)
        c.send(frame(OP_TEXT, big) + frame(OP_TEXT, b'Hello World!'))
        c.send_close(1000)
        c.send(frame(OP_PING, b'after close'))
        c.expect_close([1000], maybe=[(OP_TEXT, big), (OP_TEXT, b'Hello World!')])
        if c.notes:
            c.notes[-1] = 'informational: close was processed before the echoes were sent'
    add('7.1.6', '256 KiB text, text, close, ping -> echoes (optional), close 1000, no pong', c716)

    def client_close(payload, codes, context=''):
        def run(c):
            c.send_close(payload=payload)
            c.expect_close(codes, context)
        return run
    add('7.3.1', 'close without payload -> close (no status or 1000)', client_close(b'', [None, 1000]))
    add('7.3.2', 'close with a 1-byte payload -> 1002', client_close(b'\x03', [1002]))
    add('7.3.3', 'close 1000 without reason -> 1000', client_close(close_payload(1000), [1000]))
    add('7.3.4', 'close 1000 with reason -> 1000', client_close(close_payload(1000, 'Hello World!'), [1000]))
    add('7.3.5', 'close 1000 with a 123-byte reason (125-byte payload) -> 1000',
        client_close(close_payload(1000, tpay(123)), [1000]))
    add('7.3.6', 'close 1000 with a 124-byte reason (126-byte payload) -> 1002',
        client_close(close_payload(1000, tpay(124)), [1002]))
    add('7.5.1', 'close 1000 with an invalid UTF-8 reason -> 1007',
        client_close(close_payload(1000, bad), [1007]))
    add('7.5.2', 'close 1000 with a reason ending mid-character -> 1007',
        client_close(close_payload(1000, kosme + b'\xce'), [1007]))
    add('7.5.3', 'close 1000 with a multi-byte UTF-8 reason -> 1000',
        client_close(close_payload(1000, 'κόσμε 𝄞 €'), [1000]))
    valid_codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    for j, code in enumerate(valid_codes, 1):
        add('7.7.%d' % j, 'close with valid code %d -> close %d (or 1000)' % (code, code),
            client_close(close_payload(code), [code, 1000]))
    invalid_codes = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015]
    for j, code in enumerate(invalid_codes, 1):
        add('7.9.%d' % j, 'close with invalid code %d -> 1002' % code,
            client_close(close_payload(code), [1002]))
    add('7.13.1', 'close with invalid code 5000 -> 1002', client_close(close_payload(5000), [1002]))
    add('7.13.2', 'close with invalid code 65535 -> 1002', client_close(close_payload(65535), [1002]))

    # ---- 9 bigger messages (small sizes only) -------------------------------
    def sized(n, fn):
        def run(c):
            if maxm is not None and n > maxm:
                raise Skip('%d bytes is over --max-message %d' % (n, maxm))
            fn(c)
        return run
    big_sizes = [64 * 1024, 256 * 1024, 1024 * 1024]
    for op, cat, gen in ((OP_TEXT, '9.1', upay), (OP_BINARY, '9.2', bpay)):
        for j, n in enumerate(big_sizes, 1):
            add('%s.%d' % (cat, j), '%s message of %d KiB' % (opname(op), n // 1024),
                sized(n, echo_case(op, gen(n))))
    n = 256 * 1024
    fsizes = [64, 256, 1024, 4096, 16384, 65536, 262144]
    for op, cat, gen in ((OP_TEXT, '9.3', upay), (OP_BINARY, '9.4', bpay)):
        for j, fs in enumerate(fsizes, 1):
            add('%s.%d' % (cat, j), '%s message of 256 KiB in fragments of %d bytes' % (opname(op), fs),
                sized(n, echo_case(op, gen(n), fragmented(op, split(gen(n), fs)))))
    csizes = [64, 128, 256, 512, 1024, 2048]
    for op, cat, gen in ((OP_TEXT, '9.5', upay), (OP_BINARY, '9.6', bpay)):
        for j, cs in enumerate(csizes, 1):
            add('%s.%d' % (cat, j), '%s message of 256 KiB written in chops of %d bytes' % (opname(op), cs),
                sized(n, echo_case(op, gen(n), chop=cs)))

    # ---- 10 fragmented (auto-fragmentation) ---------------------------------
    n = 65536
    for op, cat, gen, fsz in ((OP_TEXT, '10.1', tpay, [64, 256, 1024, 1300, 4096]),
                              (OP_BINARY, '10.2', bpay, [64, 256, 1024, 4096]),
                              (OP_TEXT, '10.3', upay, [64, 1300, 4096])):
        for j, fs in enumerate(fsz, 1):
            what = 'multi-byte text' if gen is upay else opname(op)
            add('%s.%d' % (cat, j), '%s message of 65536 bytes in fragments of %d bytes' % (what, fs),
                echo_case(op, gen(n), fragmented(op, split(gen(n), fs))))


def utf8_sequences():
    """(title, [(valid, bytes)]) for cases 6.5 ... 6.23: the groups of Markus
    Kuhn's UTF-8 decoder stress test, in Autobahn's order."""
    H = bytes.fromhex
    kosme = H('cebae1bdb9cf83cebcceb5')
    groups = []
    groups.append(('valid UTF-8', [
        (True, b'hello$world'), (True, b'hello\xc2\xa2world'), (True, b'hello\xe2\x82\xacworld'),
        (True, b'hello\xf0\xa4\xad\xa2world'), (True, kosme)]))
    prefixes = []
    for i in range(1, len(kosme) + 1):
        try:
            kosme[:i].decode('utf-8')
            prefixes.append((True, kosme[:i]))
        except UnicodeDecodeError:
            prefixes.append((False, kosme[:i]))
    groups.append(('prefix of "κόσμε"', prefixes))
    groups.append(('first sequence of a length', [
        (True, b'\x00'), (True, H('c280')), (True, H('e0a080')), (True, H('f0908080'))]))
    groups.append(('first 5/6-byte sequence', [(False, H('f888808080')), (False, H('fc8480808080'))]))
    groups.append(('last sequence of a length', [
        (True, b'\x7f'), (True, H('dfbf')), (True, H('efbfbf')), (True, H('f48fbfbf'))]))
    groups.append(('last 4/5/6-byte sequence beyond U+10FFFF', [
        (False, H('f7bfbfbf')), (False, H('fbbfbfbfbf')), (False, H('fdbfbfbfbfbf'))]))
    groups.append(('boundary', [
        (True, H('ed9fbf')), (True, H('ee8080')), (True, H('efbfbd')), (True, H('f48fbfbf')),
        (False, H('f4908080'))]))
    groups.append(('unexpected continuation', [
        (False, H('80')), (False, H('bf')), (False, H('80bf')), (False, H('80bf80')),
        (False, H('80bf80bf')), (False, H('80bf80bf80')), (False, H('80bf80bf80bf')),
        (False, bytes(range(0x80, 0xbf)))]))
    groups.append(('lonely start bytes', [
        (False, b''.join(bytes([i, 0x20]) for i in range(a, b)))
        for a, b in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd))]))
    missing = [H(x) for x in ('c0', 'e080', 'f08080', 'f8808080', 'fc80808080',
                              'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf')]
    groups.append(('last continuation missing', [(False, m) for m in missing]))
    groups.append(('concatenated incomplete sequences', [(False, b''.join(missing))]))
    groups.append(('impossible bytes', [(False, H('fe')), (False, H('ff')), (False, H('fefeffff'))]))
    groups.append(('overlong "/"', [(False, H(x)) for x in
                                    ('c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af')]))
    groups.append(('maximum overlong', [(False, H(x)) for x in
                                        ('c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf')]))
    groups.append(('overlong NUL', [(False, H(x)) for x in
                                    ('c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080')]))
    groups.append(('single UTF-16 surrogate', [(False, H(x)) for x in
                                               ('eda080', 'edadbf', 'edae80', 'edafbf', 'edb080',
                                                'edbe80', 'edbfbf')]))
    groups.append(('paired UTF-16 surrogates', [(False, H(x)) for x in
                                                ('eda080edb080', 'eda080edbfbf', 'edadbfedb080',
                                                 'edadbfedbfbf', 'edae80edb080', 'edae80edbfbf',
                                                 'edafbfedb080', 'edafbfedbfbf')]))
    nonchars = [(True, H('efbfbe')), (True, H('efbfbf'))]
    for z1 in (0xf0, 0xf1, 0xf2, 0xf3, 0xf4):
        for z2 in (0x8f, 0x9f, 0xaf, 0xbf):
            if z1 == 0xf4 and z2 != 0x8f:
                continue                  # beyond U+10FFFF
            for z3 in (0xbe, 0xbf):
                s = bytes([z1, z2, 0xbf, z3])
                if z1 == 0xf0 and z2 == 0x8f:
                    continue              # overlong
                nonchars.append((True, s))
    groups.append(('noncharacter (valid UTF-8)', nonchars))
    groups.append(('specials', [(True, H(x)) for x in
                                ('efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf')]))
    # the table must agree with a strict decoder
    for title, seqs in groups:
        for valid, s in seqs:
            try:
                s.decode('utf-8')
                ok = True
            except UnicodeDecodeError:
                ok = False
            assert ok == valid, (title, s.hex())
    return groups


# --------------------------------------------------------------------------
# running

class Config:
    pass


def parse_url(url):
    u = urlsplit(url)
    if u.scheme not in ('ws', 'wss') or not u.hostname:
        raise SystemExit('wsconform.py: URL must be ws://host[:port]/path or wss://...')
    cfg = Config()
    cfg.tls = u.scheme == 'wss'
    cfg.ssl_context = None
    cfg.host = u.hostname
    cfg.port = u.port or (443 if cfg.tls else 80)
    host = '[%s]' % cfg.host if ':' in cfg.host else cfg.host
    default = 443 if cfg.tls else 80
    cfg.hostport = host if cfg.port == default else '%s:%d' % (host, cfg.port)
    cfg.path = (u.path or '/') + ('?' + u.query if u.query else '')
    return cfg


def selected(cid, prefixes):
    if not prefixes:
        return True
    for p in prefixes:
        p = p.rstrip('.')
        if cid == p or cid.startswith(p + '.'):
            return True
    return False


def run_case(cfg, cid, desc, fn, raw):
    c = Conn(cfg)
    try:
        if not raw:
            c.open()
        fn(c)
        if c.ws_open and not c.finished:
            c.close_normal()
        note = (' (%s)' % '; '.join(c.notes)) if c.notes else ''
        return 'ok', 'ok %s %s%s' % (cid, desc, note)
    except Skip as e:
        return 'skip', 'skip %s %s: %s' % (cid, desc, e)
    except Fail as e:
        return 'fail', 'FAIL %s %s: %s' % (cid, desc, e)
    except Exception as e:                       # a bug here, or an odd socket error
        return 'fail', 'FAIL %s %s: unexpected %s: %s' % (cid, desc, type(e).__name__, e)
    finally:
        c.shutdown()


def main(argv=None):
    ap = argparse.ArgumentParser(description='RFC 6455 conformance suite for a WebSocket echo server')
    ap.add_argument('url', help='ws://host:port/path or wss://host:port/path of an echo endpoint')
    ap.add_argument('--wss-insecure', action='store_true',
                    help='with wss://, do not verify the server certificate')
    ap.add_argument('--max-message', type=int, metavar='N',
                    help="the server's message size limit in bytes: enables the 1009 cases (0.3) "
                         'and skips cases with bigger messages')
    ap.add_argument('--case', action='append', metavar='PREFIX',
                    help='run only cases whose id is PREFIX or starts with "PREFIX." (repeatable)')
    ap.add_argument('--timeout', type=float, default=2.0, metavar='S',
                    help='seconds to wait for an expected reply or TCP close (default 2)')
    ap.add_argument('--list', action='store_true', help='list the cases and exit')
    a = ap.parse_args(argv)

    cfg = parse_url(a.url)
    cfg.insecure = a.wss_insecure
    cfg.timeout = a.timeout
    if a.max_message is not None and a.max_message <= 0:
        ap.error('--max-message must be positive')
    cfg.max_message = a.max_message
    build_catalogue(cfg)

    cases = [cs for cs in CASES if selected(cs[0], a.case)]
    if a.list:
        for cid, desc, _, _ in cases:
            print('%s %s' % (cid, desc))
        return 0
    if not cases:
        print('no case matches %s' % ' '.join(a.case or []))

    passed = failed = 0
    for cid, desc, fn, raw in cases:
        res, line = run_case(cfg, cid, desc, fn, raw)
        print(line, flush=True)
        if res == 'ok':
            passed += 1
        elif res == 'fail':
            failed += 1
    print('conformance: %d passed, %d failed' % (passed, failed), flush=True)
    return 0 if failed == 0 and cases else 1


if __name__ == '__main__':
    sys.exit(main())
