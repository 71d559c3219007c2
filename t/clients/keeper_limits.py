#!/usr/bin/python3
"""Robustness limits of a session's keeper process, measured against the
real server (t/45_keeper_limits.t):

  1. a client that floods ping frames (or pongs, or close frames) and reads
     nothing: the keeper's memory stays bounded, and the session works
     afterwards;
  2. a websession.v1 client that never acknowledges gets at most the window
     (WebSessionBuffer) of unacknowledged data;
  3. a local process that connects to the keeper's socket and says nothing
     does not freeze the keeper's live session;
  4. a POST whose body trickles in does not freeze the keeper, and is taken;
  5. bulk transfers through /bin/cat, over every transport, plain and TLS:
     every byte back in order, never a long stall.

  /usr/bin/python3 t/clients/keeper_limits.py --port 8529 --logdir t/logs
      [--host 127.0.0.1] [--tls-port 8531 --cafile t/logs/ssl/server.crt]
      [--steps flood,window,...] [--deadline 170]

Needs the <Location /limits-*> blocks of t/conf/extra.conf.in and the
scripts t/htdocs/ws/firehose and t/htdocs/ws/ticker.  Prints one line of
JSON (see checkrun.py); every check's detail carries the figure measured.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import re
import select
import socket
import ssl
import struct
import sys
import time

from checkrun import CheckRun, run_and_report

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from websession_client import Session, SessionEnded  # noqa: E402

V1 = "websession.v1"

# ---- the limits asserted (tighten or loosen here) ------------------------------

SMALL_BUFFER = 4096            # WebSessionBuffer of /limits-small, /limits-firehose
MIB = 1 << 20
# 1. the keeper's RSS during a flood: at most this much above its RSS before.
FLOOD_RSS_ALLOWANCE = SMALL_BUFFER + MIB
FLOOD_SECONDS = 3.0            # a flood lasts this long ...
FLOOD_MAX_BYTES = 200 * MIB    # ... or until this much was sent
# 2. data a client that never acknowledges may receive: the window plus this
# many messages.  PROTOCOL.md says "at most WebSessionBuffer bytes
# unacknowledged" (0 messages); DIRECTIVES.md lets a queue pass its bound by
# one message.  Set to 0 to hold the server to PROTOCOL.md's wording.
WINDOW_EXTRA_MESSAGES = 1
# 3. round trips while a local connection to the keeper says nothing.
SILENT_SECONDS = 5.0
SILENT_RTT_LIMIT = 0.050
SILENT_DROP_AFTER = 3.0        # the keeper drops a connection that sent no whole request
SILENT_DROP_SLACK = 1.5        # ... by then (ATTACH_TIMEOUT_MS), give or take this
SILENT_MANY = 12               # ... and as many silent connections at once
SILENT_MANY_SECONDS = 4.0
# 4. how late a tick of /limits-ticker may arrive while a POST body trickles
# in (a frozen keeper makes it seconds; a loaded machine a few ms).
SLOW_POST_SECONDS = 5.0
TICK_LATE_LIMIT = 0.200
# 5. bulk: the longest time without a message arriving; a run with no
# progress for BULK_STALL_ABORT seconds is abandoned (and fails).
BULK_GAP_LIMIT = 1.0
BULK_STALL_ABORT = 3.0
# Each transport and shape runs this many times (a run takes well under 1 s
# when all is well; the WebSocket stalls come and go); a failing run is the last.
BULK_REPEATS = {"websocket": 5, "sse": 2, "poll": 2}
BULK_SHAPES = [                # (name, location, count, size)
    ("32k", "/limits-cat", 300, 32768),
    ("1k", "/limits-cat", 3000, 1024),
    ("1k_lines", "/limits-lines", 3000, 1024),
]
BULK_TRANSPORTS = [            # (name, transport, tls)
    ("ws", "websocket", False), ("sse", "sse", False), ("poll", "poll", False),
    ("wss", "websocket", True), ("sse_tls", "sse", True), ("poll_tls", "poll", True),
]

FLOOD_CHECKS = []
for _kind in ("ping_plain", "ping_v1", "pong_plain", "close_plain"):
    FLOOD_CHECKS += ["flood_%s_rss" % _kind, "flood_%s_after" % _kind]
CHECKS = FLOOD_CHECKS + [
    "window_firehose",         # /limits-firehose, no acks: at most the window
    "window_firehose_resumes",  # ... acknowledging it, more comes
    "window_echo",             # /limits-small, cat echoes, no acks: at most the window
    "silent_local_rtt",        # a silent local connection: every round trip fast
    "silent_local_session",    # ... and the session works afterwards
    "silent_local_dropped",    # ... and the keeper dropped the silent one after 3 s
    "silent_local_many",       # 12 silent local connections at once: the same
    "silent_local_keeps_accepted",  # ... and they never push out a peer past its HELLO
    "slow_post_ticks",         # a trickling POST: the down stream's ticks stay on time
    "slow_post_200",           # ... the POST is answered 200 "A1"
    "slow_post_once",          # ... and its message comes back exactly once
]
BULK_CHECKS = ["bulk_%s_%s" % (t[0], s[0]) for t in BULK_TRANSPORTS for s in BULK_SHAPES]

PING, PONG, CLOSE, TEXT, BINARY = 0x9, 0xA, 0x8, 0x1, 0x2


# ---- a raw, blocking WebSocket client ----------------------------------------------

def frame(opcode, payload, mask=b"\x37\xfa\x21\x3d"):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    m = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") \
        if n else b""
    return head + mask + masked


class RawWS:
    def __init__(self, host, port, path, protocols=(), timeout=10):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("EOF in the handshake: %r" % self.buf)
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        self.headers = {}
        for l in head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if self.status != 101 or self.headers.get("sec-websocket-accept") != want:
            raise ConnectionError("handshake: %r" % head)
        self.local_port = self.sock.getsockname()[1]
        self.eof = False
        self.dropped = 0                # control frames drop_controls() dropped

    def send(self, opcode, payload, timeout=10):
        self.send_draining(frame(opcode, payload), timeout)

    def send_draining(self, data, timeout):
        """Send data; while the socket takes nothing, read what the server
        sends (so that a server blocked on writing to us can go on) and drop
        the pings, pongs, A and P at the front of what was read."""
        sock = self.sock
        sock.setblocking(False)
        end = time.monotonic() + timeout
        view = memoryview(data)
        try:
            while view:
                if time.monotonic() > end:
                    raise TimeoutError("could not send %d bytes in %g s" % (len(view), timeout))
                r, w, _ = select.select([sock], [sock], [], 0.05)
                if w:
                    try:
                        view = view[sock.send(view):]
                    except BlockingIOError:
                        pass
                    continue
                if r and not self.eof:
                    try:
                        d = sock.recv(1 << 20)
                    except BlockingIOError:
                        d = None
                    except (ConnectionError, OSError):
                        d = b""
                    if d == b"":
                        self.eof = True
                    elif d:
                        self.buf += d
                        self.dropped += self.drop_controls()
        finally:
            sock.setblocking(True)
            sock.settimeout(None)

    def drop_controls(self):
        """Drop the pings, pongs, A and P messages at the front of buf."""
        n = 0
        while True:
            b = self.buf
            if len(b) < 2:
                return n
            ln, off = b[1] & 0x7F, 2
            if ln == 126:
                if len(b) < 4:
                    return n
                ln, off = struct.unpack("!H", b[2:4])[0], 4
            elif ln == 127:
                if len(b) < 10:
                    return n
                ln, off = struct.unpack("!Q", b[2:10])[0], 10
            if len(b) < off + ln:
                return n
            op = b[0] & 0x0F
            if not (op in (PING, PONG) or (op == TEXT and b[off:off + 1] in (b"A", b"P"))):
                return n
            self.buf = b[off + ln:]
            n += 1

    def recv_frame(self, timeout):
        """(opcode, payload), or None at the timeout; raises EOFError at the end."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, off = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
                elif n >= 126:
                    n = None
                if n is not None and len(self.buf) >= off + n:
                    payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
                    return b0 & 0x0F, payload
            left = end - time.monotonic()
            if left <= 0:
                return None
            if self.eof:
                raise EOFError("connection closed")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                try:
                    d = self.sock.recv(1 << 20)
                except (ConnectionError, OSError):
                    d = b""
                if not d:
                    self.eof = True
                self.buf += d

    def next_data(self, timeout, skip=(PING, PONG)):
        """The next frame that is not a ping/pong (nor, for v1, an A or a P):
        (opcode, payload, frames skipped) or (None, None, skipped)."""
        end = time.monotonic() + timeout
        skipped = 0
        while True:
            f = self.recv_frame(max(0, end - time.monotonic()))
            if f is None:
                return None, None, skipped
            if f[0] in skip or (f[0] == TEXT and f[1][:1] in (b"A", b"P")):
                skipped += 1
                continue
            return f[0], f[1], skipped

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pipe_bytes(pid, fd):
    """Bytes waiting in the pipe that is descriptor fd of process pid (FIONREAD
    on a descriptor of our own for it; nothing is read)."""
    import fcntl
    import termios
    try:
        f = os.open("/proc/%d/fd/%d" % (pid, fd), os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return "? (%s)" % e.strerror
    try:
        return struct.unpack("i", fcntl.ioctl(f, termios.FIONREAD, b"\0" * 4))[0]
    except OSError as e:
        return "? (%s)" % e.strerror
    finally:
        os.close(f)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---- the run ------------------------------------------------------------------

class Run(CheckRun):
    detail_max = 1500

    def __init__(self, a):
        super().__init__(CHECKS + BULK_CHECKS)
        self.a = a
        self.t = a.timeout
        self.log = os.path.join(a.logdir, "error_log")
        self.ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else None
        self.bulk_runs = {}            # check name -> [(ok, max gap, detail)]
        with open(os.path.join(a.logdir, "httpd.pid")) as f:
            self.httpd = f.read().strip()

    # -- the error log: a session's keeper --------------------------------------

    def log_offset(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def keeper_of(self, local_port, off, timeout=5):
        """(fingerprint, keeper pid) from the WS00005 line of the session made
        from local_port (as t/lib/WSClient.pm connect_keeper reads it)."""
        pat = re.compile(r"\[client 127\.0\.0\.1:%d\] WS00005: \[([0-9a-f]{16})\] "
                         r"new session, keeper (\d+)" % local_port)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.log, "rb") as f:
                f.seek(off)
                m = pat.search(f.read().decode("utf-8", "replace"))
            if m:
                return m.group(1), int(m.group(2))
            time.sleep(0.05)
        raise AssertionError("no WS00005 line for client port %d" % local_port)

    def first_keeper_since(self, off):
        """The keeper pid of the first new session logged after off (WS00005),
        or None: the bulk runs are the only sessions started meanwhile."""
        pat = re.compile(r"WS00005: \[[0-9a-f]{16}\] new session, keeper (\d+)")
        with open(self.log, "rb") as f:
            f.seek(off)
            m = pat.search(f.read().decode("utf-8", "replace"))
        return int(m.group(1)) if m else None

    def keeper_socket(self, pid):
        """The abstract name the keeper listens on (as t/lib/WSClient.pm finds it)."""
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                m = re.match(r"socket:\[(\d+)\]$", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
        pat = re.compile(r"^@mod_websession/%s/k\d+\.\d+\.[0-9a-f]{32}$" % re.escape(self.httpd))
        with open("/proc/net/unix") as f:
            for line in f:
                fl = line.split()
                if len(fl) >= 8 and fl[6] in inodes and pat.match(fl[7]):
                    return fl[7][1:]
        raise AssertionError("no listening socket of keeper %d in /proc/net/unix" % pid)

    def new_ws(self, path, v1=False):
        """A new raw session: (RawWS, fingerprint, keeper pid); a v1 one past
        I, R (and our R0)."""
        off = self.log_offset()
        c = RawWS(self.a.host, self.a.port, path, (V1,) if v1 else (), self.t)
        fp, pid = self.keeper_of(c.local_port, off)
        if v1:
            first = [c.recv_frame(self.t) for _ in range(2)]
            if not (first[0] and first[0][1][:1] == b"I" and first[1] and first[1][1][:1] == b"R"):
                raise AssertionError("v1 session on %s began %r" % (path, first))
            c.send(TEXT, b"R0")
        return c, fp, pid

    def round_trip(self, c, v1, word, timeout):
        """Send word, wait for its echo: (ok, seconds, frames skipped, what came)."""
        t0 = time.monotonic()
        payload = (b"D" if v1 else b"") + word
        c.send(TEXT, payload)
        op, got, skipped = c.next_data(timeout)
        return got == payload, time.monotonic() - t0, skipped, got if got is None else got[:60]

    # -- 1. floods -------------------------------------------------------------------

    def flood_sync(self, kind):
        v1 = kind == "ping_v1"
        c, fp, pid = self.new_ws("/limits-small", v1)
        ok, rtt, _, got = self.round_trip(c, v1, b"before", self.t)
        if not ok:
            raise AssertionError("no echo before the flood: %r" % got)
        time.sleep(0.2)
        base = rss_kib(pid)
        op = {"ping_plain": PING, "ping_v1": PING, "pong_plain": PONG,
              "close_plain": CLOSE}[kind]
        if op == CLOSE:
            one = frame(CLOSE, struct.pack("!H", 1000) + b"x" * 123)
        else:
            one = frame(op, b"p" * 125)
        chunk = one * 2000             # 262 kB
        sent, peak, samples, how = 0, base, 0, "time"
        sock = c.sock
        sock.setblocking(False)
        t0 = time.monotonic()

        last_sample = 0
        view = memoryview(chunk)
        pos = 0
        while True:
            now = time.monotonic()
            if now - t0 >= FLOOD_SECONDS:
                break
            if sent >= FLOOD_MAX_BYTES:
                how = "bytes"
                break
            if now - last_sample >= 0.02:
                r = rss_kib(pid)
                if r is None:
                    how = "keeper gone"
                    break
                peak = max(peak, r)
                samples += 1
                last_sample = now
            _, w, _ = select.select([], [sock], [], 0.02)
            if not w:
                continue
            try:
                n = sock.send(view[pos:])
            except BlockingIOError:
                continue
            except (ConnectionError, OSError) as e:
                how = "send: %s" % type(e).__name__
                break
            sent += n
            pos = (pos + n) % len(chunk)
        secs = time.monotonic() - t0
        # a few more samples: the keeper may still be working through it
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            r = rss_kib(pid)
            if r is not None:
                peak = max(peak, r)
                samples += 1
            time.sleep(0.02)
        # finish the frame under way (reading meanwhile) so the stream stays valid
        rem = (-pos) % len(one)
        if rem and not how.startswith("send"):
            try:
                c.send_draining(chunk[pos:pos + rem], 10)
                sent += rem
            except (ConnectionError, OSError, TimeoutError) as e:
                how += "; finishing the last frame: %r" % e
        grow = (peak - base) * 1024 if base is not None and peak is not None else None
        rss_ok = grow is not None and grow <= FLOOD_RSS_ALLOWANCE
        self.check("flood_%s_rss" % kind, rss_ok,
                   "keeper %d: RSS %s KiB before, peak %s KiB (+%s KiB; allowed +%d KiB) "
                   "over %d samples; sent %.1f MB of %s frames in %.2f s (ended by %s)"
                   % (pid, base, peak, None if grow is None else grow // 1024,
                      FLOOD_RSS_ALLOWANCE // 1024, samples, sent / 1e6,
                      "close" if op == CLOSE else "ping" if op == PING else "pong",
                      secs, how))
        # afterwards: read again
        t1 = time.monotonic()
        if op == CLOSE:
            # the first close frame ends a plain session: the server answers
            # with a close frame and ends the connection
            codes, frames = [], 0
            try:
                while time.monotonic() - t1 < 10:
                    f = c.recv_frame(10 - (time.monotonic() - t1))
                    if f is None:
                        break
                    frames += 1
                    if f[0] == CLOSE:
                        codes.append(struct.unpack("!H", f[1][:2])[0] if len(f[1]) >= 2 else None)
                res = "no EOF within 10 s"
            except EOFError:
                res = "EOF"
            took = time.monotonic() - t1
            self.check("flood_%s_after" % kind, res == "EOF" and codes[:1] == [1000]
                       and len(codes) == 1,
                       "%s after %.2f s; %d frames, close codes %r (want one close 1000, then EOF)"
                       % (res, took, frames, codes[:5]))
        else:
            try:
                ok, rtt, skipped, got = self.round_trip(c, v1, b"after-flood", 10)
                detail = "echo %s after %.2f s (%d pongs/acks read before it; got %r)" % (
                    "came" if ok else "did not come", rtt, skipped + c.dropped, got)
            except (EOFError, OSError) as e:
                ok, detail = False, "connection ended: %r" % e
            self.check("flood_%s_after" % kind, ok, detail)
        c.close()

    async def flood(self):
        for kind in ("ping_plain", "ping_v1", "pong_plain", "close_plain"):
            try:
                await asyncio.wait_for(asyncio.to_thread(self.flood_sync, kind), 30)
            except Exception as e:
                self.error("flood_%s" % kind, e)

    # -- 2. the window ---------------------------------------------------------------

    def window_firehose_sync(self):
        c, fp, pid = self.new_ws("/limits-firehose", v1=True)
        got, n, biggest = 0, 0, 0
        t0 = last = time.monotonic()
        # read without acknowledging, until nothing came for 1 s (4 s at most)
        while time.monotonic() - last < 1.0 and time.monotonic() - t0 < 4:
            f = c.recv_frame(0.2)
            if f is None:
                continue
            last = time.monotonic()
            if f[1][:1] == b"D":
                got += len(f[1]) - 1
                n += 1
                biggest = max(biggest, len(f[1]) - 1)
        allowed = SMALL_BUFFER + WINDOW_EXTRA_MESSAGES * max(biggest, 99)
        self.check("window_firehose", 0 < got <= allowed,
                   "%d data bytes in %d messages without an ack (allowed %d = %d + %d x %d); "
                   "window %d" % (got, n, allowed, SMALL_BUFFER, WINDOW_EXTRA_MESSAGES,
                                  max(biggest, 99), SMALL_BUFFER))
        c.send(TEXT, b"A%d" % n)
        more = 0
        end = time.monotonic() + 3
        while time.monotonic() < end and more <= n:
            f = c.recv_frame(0.2)
            if f and f[1][:1] == b"D":
                more += 1
        self.check("window_firehose_resumes", more > 0,
                   "after A%d: %d more data messages within %.1f s"
                   % (n, more, 3 - max(0, end - time.monotonic())))
        c.close()

    def window_echo_sync(self):
        """cat echoes what we send; we respect the server's window for our
        sends (its A messages) and never acknowledge what it sends."""
        c, fp, pid = self.new_ws("/limits-small", v1=True)
        size = 500
        sent = acked = rx_bytes = rx = 0
        sizes = {}
        t0 = last = time.monotonic()
        while time.monotonic() - last < 1.0 and time.monotonic() - t0 < 5:
            unacked = sum(sizes[i] for i in range(acked + 1, sent + 1))
            if unacked + size <= SMALL_BUFFER and sent < 200:
                sent += 1
                sizes[sent] = size
                c.send(TEXT, b"D" + (b"%05d" % sent) + b"e" * (size - 5))
                continue
            f = c.recv_frame(0.1)
            if f is None:
                continue
            last = time.monotonic()
            if f[1][:1] == b"A":
                acked = int(f[1][1:])
            elif f[1][:1] == b"D":
                rx += 1
                rx_bytes += len(f[1]) - 1
        allowed = SMALL_BUFFER + WINDOW_EXTRA_MESSAGES * size
        self.check("window_echo", 0 < rx_bytes <= allowed,
                   "sent %d messages of %d bytes (server acked %d); received %d data bytes "
                   "in %d messages without acking (allowed %d)"
                   % (sent, size, acked, rx_bytes, rx, allowed))
        c.close()

    async def window(self):
        for f in (self.window_firehose_sync, self.window_echo_sync):
            try:
                await asyncio.wait_for(asyncio.to_thread(f), 30)
            except Exception as e:
                self.error(f.__name__, e)

    # -- 3. a silent local connection ---------------------------------------------

    def silent_sync(self):
        c, fp, pid = self.new_ws("/limits-cat")
        name = self.keeper_socket(pid)
        base = []
        for i in range(5):
            ok, rtt, _, got = self.round_trip(c, False, b"base%d" % i, self.t)
            base.append(rtt)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect("\0" + name)
        u.setblocking(False)
        rtts, bad, fate = [], [], "still open after %g s" % SILENT_SECONDS
        closed_after = None
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < SILENT_SECONDS:
            i += 1
            ok, rtt, _, got = self.round_trip(c, False, b"rt%d" % i, self.t)
            rtts.append(rtt)
            if not ok:
                bad.append((i, got))
                break
            if fate.startswith("still"):
                try:
                    d = u.recv(4096)
                    closed_after = None if d else time.monotonic() - t0
                    fate = "closed by the keeper after %.2f s%s" % (
                        time.monotonic() - t0, " (%d bytes)" % len(d) if d else "")
                except BlockingIOError:
                    pass
                except OSError as e:
                    fate = "%s after %.2f s" % (type(e).__name__, time.monotonic() - t0)
            time.sleep(max(0, 0.1 - rtt))
        u.close()
        worst = max(rtts) if rtts else None
        slow = sum(1 for r in rtts if r >= SILENT_RTT_LIMIT)
        self.check("silent_local_rtt", rtts and not bad and worst < SILENT_RTT_LIMIT,
                   "keeper %d (@%s): %d round trips in %.1f s with a silent local connection, "
                   "max %.1f ms, %d at or over %.0f ms (before it: max %.1f ms); the silent "
                   "connection: %s%s"
                   % (pid, name, len(rtts), SILENT_SECONDS, (worst or 0) * 1e3, slow,
                      SILENT_RTT_LIMIT * 1e3, max(base) * 1e3, fate,
                      "; failed: %r" % bad if bad else ""))
        ok, rtt, _, got = self.round_trip(c, False, b"after", self.t)
        self.check("silent_local_session", ok, "echo after %.1f ms: %r" % (rtt * 1e3, got))
        self.check("silent_local_dropped", closed_after is not None
                   and SILENT_DROP_AFTER - 0.1 <= closed_after <= SILENT_DROP_AFTER + SILENT_DROP_SLACK,
                   "the silent connection: %s (want closed, no reply, %g s after it connected)"
                   % (fate, SILENT_DROP_AFTER))
        c.close()

    def silent_many_sync(self):
        """SILENT_MANY silent local connections at once (more than the keeper
        reads at a time)."""
        c, fp, pid = self.new_ws("/limits-cat")
        name = self.keeper_socket(pid)
        # A peer that presents the session id (HELLO) and is accepted, then
        # waits: as a worker between its HELLO and its ATTACH or POST.
        secret = base64.urlsafe_b64decode(c.headers.get("session-id", "") + "=" * 4)
        w = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        w.settimeout(self.t)
        w.connect("\0" + name)
        w.sendall(struct.pack("<III", 0x57535331, 2, len(secret)) + secret)
        reply = w.recv(12)
        accepted = len(reply) == 12 and struct.unpack("<III", reply)[1] == 3
        if accepted:                      # the ipc_reply body: status first, 0 = OK
            body = b""
            while len(body) < struct.unpack("<III", reply)[2]:
                body += w.recv(struct.unpack("<III", reply)[2] - len(body)) or b"?" * 999
            accepted = body[:4] == b"\0\0\0\0"
        us = []
        for _ in range(SILENT_MANY):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(1)
            try:
                u.connect("\0" + name)
            except OSError:
                u.close()
                continue
            us.append(u)
        # (well within the 3 s the keeper gives it for its request)
        time.sleep(0.5)
        w.setblocking(False)
        try:
            gone = w.recv(4096) is not None      # b"" (EOF) or anything: not waiting
            kept = False
        except BlockingIOError:
            kept, gone = True, False
        except OSError:
            kept, gone = False, True
        w.close()
        self.check("silent_local_keeps_accepted", accepted and kept,
                   "a peer past its HELLO (reply %s) while %d silent connections came: %s"
                   % ("IPC_REPLY" if accepted else repr(reply), len(us),
                      "still waiting for its request" if kept else "dropped" if gone else "?"))
        rtts, bad = [], []
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < SILENT_MANY_SECONDS:
            i += 1
            ok, rtt, _, got = self.round_trip(c, False, b"m%d" % i, self.t)
            rtts.append(rtt)
            if not ok:
                bad.append((i, got))
                break
            time.sleep(max(0, 0.1 - rtt))
        for u in us:
            u.close()
        worst = max(rtts) if rtts else None
        ok, rtt, _, got = self.round_trip(c, False, b"after", self.t)
        self.check("silent_local_many", rtts and not bad and worst < SILENT_RTT_LIMIT and ok,
                   "keeper %d: %d silent local connections (of %d tried), %d round trips in "
                   "%.1f s, max %.1f ms (limit %.0f ms); echo afterwards %s%s"
                   % (pid, len(us), SILENT_MANY, len(rtts), SILENT_MANY_SECONDS,
                      (worst or 0) * 1e3, SILENT_RTT_LIMIT * 1e3,
                      "ok" if ok else "missing: %r" % got, "; failed: %r" % bad if bad else ""))
        c.close()

    async def silent(self):
        await asyncio.wait_for(asyncio.to_thread(self.silent_sync), 30)
        await asyncio.wait_for(asyncio.to_thread(self.silent_many_sync), 30)

    # -- 4. a slow POST -------------------------------------------------------------

    async def http(self, method, path, headers, body=None):
        r, w = await asyncio.wait_for(asyncio.open_connection(
            self.a.host, self.a.port, limit=1 << 24), self.t)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.a.host, self.a.port)]
        lines += ["%s: %s" % kv for kv in headers]
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await w.drain()
        return r, w

    async def slow_post(self):
        path = "/limits-ticker"
        off = self.log_offset()
        r, w = await self.http("GET", path, [("WebSession-Transport", "sse"),
                                             ("WebSession-Received", "0"),
                                             ("Accept", "text/event-stream")])
        head = (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), self.t)).decode("latin-1")
        m = re.search(r"(?im)^Session-ID:\s*(\S+)", head)
        if not head.startswith("HTTP/1.1 200") or not m:
            raise AssertionError("sse GET: %r" % head)
        sid = m.group(1)
        events = []                    # (arrival wall time, data)

        async def reader():
            data = []
            while True:
                line = await r.readline()
                if not line:
                    events.append((time.time(), None))
                    return
                line = line.rstrip(b"\n")
                if line.startswith(b"data: "):
                    data.append(line[6:].decode("utf-8", "replace"))
                elif line == b"" and data:
                    events.append((time.time(), "\n".join(data)))
                    data = []
        rt = asyncio.ensure_future(reader())
        try:
            await asyncio.sleep(0.5)
            body = b"T 10\nDslow-post\n"
            pr, pw = await self.http("POST", path, [
                ("WebSession-Transport", "sse"), ("Session-ID", sid),
                ("WebSession-Sequence", "1"), ("Content-Type", "application/octet-stream")],
                body)
            t_start = time.time()
            pieces = 10
            step = SLOW_POST_SECONDS / pieces
            cut = [len(body) * i // pieces for i in range(pieces + 1)]
            write_err = None
            for i in range(pieces):
                await asyncio.sleep(step)
                try:
                    pw.write(body[cut[i]:cut[i + 1]])
                    await pw.drain()
                except (ConnectionError, OSError) as e:
                    write_err = "%s after %.2f s" % (type(e).__name__, time.time() - t_start)
                    break
            t_body = time.time()
            try:
                ans = await asyncio.wait_for(pr.readuntil(b"\r\n\r\n"), self.t)
                cl = re.search(rb"(?im)^Content-Length:\s*(\d+)", ans)
                ans += await asyncio.wait_for(pr.readexactly(int(cl.group(1)) if cl else 0),
                                              self.t)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
                ans = ("<%s>" % type(e).__name__).encode()
            t_ans = time.time()
            pw.close()
            await asyncio.sleep(1.5)
        finally:
            rt.cancel()
            w.close()
        status = ans.split(b"\r\n", 1)[0].decode("latin-1")
        abody = ans.split(b"\r\n\r\n", 1)[-1].decode("latin-1")
        # ticks written while the body trickled in, and how late each came
        ticks = []
        for at, d in events:
            if d and d.startswith("Dtick "):
                stamp = float(d.split()[1])
                if t_start <= stamp <= t_ans:
                    ticks.append((stamp, at - stamp))
        late = max((l for _, l in ticks), default=None)
        gaps = [b[0] - a[0] for a, b in zip(ticks, ticks[1:])]
        want_ticks = int((t_ans - t_start) / 0.1 * 0.5)
        self.check("slow_post_ticks", len(ticks) >= want_ticks and late is not None
                   and late < TICK_LATE_LIMIT,
                   "%d ticks written during the %.1f s POST (want >= %d), latest arrived "
                   "%s ms after it was written (limit %.0f ms); largest gap between ticks "
                   "written %.0f ms"
                   % (len(ticks), t_ans - t_start, want_ticks,
                      "%.0f" % (late * 1e3) if late is not None else "-",
                      TICK_LATE_LIMIT * 1e3, max(gaps, default=0) * 1e3))
        self.check("slow_post_200", status.startswith("HTTP/1.1 200") and abody.strip() == "A1",
                   "%r, body %r, %.2f s after the last byte (body over %.1f s%s)"
                   % (status, abody[:100], t_ans - t_body, t_body - t_start,
                      "; " + write_err if write_err else ""))
        datas = [d for _, d in events if d and not d.startswith("Dtick ")]
        self.check("slow_post_once", datas.count("Dslow-post") == 1
                   and all(d == "Dslow-post" or d[:1] in "IPAR" for d in datas),
                   "messages on the down stream other than ticks: %r" % datas[:10])

    # -- 5. bulk ----------------------------------------------------------------------

    def bulk_verdict(self, name):
        runs = self.bulk_runs.get(name, [])
        ok = bool(runs) and all(r[0] for r in runs)
        worst = max(runs, key=lambda r: (not r[0], r[1]))[2] if runs else "no run"
        return {"name": name, "ok": ok,
                "detail": ("%d run(s), max gaps %s s; %s: %s" % (
                    len(runs), " ".join("%.2f" % r[1] for r in runs),
                    "worst" if ok else "failed", worst))[:self.detail_max]}

    async def bulk_one(self, tname, transport, tls, shape, run=1):
        sname, loc, count, size = shape
        name = "bulk_%s_%s" % (tname, sname)
        if tls:
            url = "https://%s:%d%s" % (self.a.host, self.a.tls_port, loc)
        else:
            url = "http://%s:%d%s" % (self.a.host, self.a.port, loc)
        s = Session(url, transport=transport, ssl=self.ctx if tls else None,
                    max_backoff=0.2, idle_timeout=self.t)
        t0 = time.monotonic()
        off = self.log_offset()
        await asyncio.wait_for(s.start(), self.t)

        def msg(i):
            head = "%07d:" % i
            return head + chr(97 + i % 26) * (size - len(head))

        async def sender():
            for i in range(count):
                await s.send(msg(i))
        keeper = self.first_keeper_since(off)
        rss = {"base": rss_kib(keeper) if keeper else None, "peak": 0}

        async def sampler():        # the keeper's RSS while the run lasts
            while keeper:
                r = rss_kib(keeper)
                if r:
                    rss["peak"] = max(rss["peak"], r)
                await asyncio.sleep(0.02)
        st = asyncio.ensure_future(sender())
        sp = asyncio.ensure_future(sampler())
        got, bad, gap, gap_at, how = 0, None, 0.0, 0, "all"
        last = time.monotonic()
        try:
            while got < count:
                try:
                    m = await asyncio.wait_for(s.recv(), BULK_STALL_ABORT)
                except asyncio.TimeoutError:
                    how = "no message for %g s (stalled; %d sent; %s)" % (
                        BULK_STALL_ABORT, s.tx, self.stall_diag(s, off))
                    gap = max(gap, time.monotonic() - last)
                    gap_at = got
                    break
                except SessionEnded as e:
                    how = "session ended: %s" % e
                    break
                now = time.monotonic()
                if now - last > gap:
                    gap, gap_at = now - last, got
                last = now
                if m != msg(got):
                    bad = "message %d differs: %r" % (got, (m[:20] if m else m))
                    break
                got += 1
        finally:
            st.cancel()
            sp.cancel()
        secs = time.monotonic() - t0
        try:
            await asyncio.wait_for(s.close(), 2)  # a stalled one will not close
        except Exception:
            s.drop()
        ok = got == count and bad is None and gap <= BULK_GAP_LIMIT
        self.bulk_runs.setdefault(name, []).append((ok, gap, "run %d: " % run +
                   "%s %s%s: %d/%d messages of %d bytes back in order in %.2f s (%.1f MB/s); "
                   "max gap %.2f s (limit %g) before message %d; reconnects %d; "
                   "keeper RSS %s KiB at the start, peak %s KiB; %s%s"
                   % (loc, transport, " TLS" if tls else "", got, count, size, secs,
                      got * size / 1e6 / secs, gap, BULK_GAP_LIMIT, gap_at + 1, s.reconnects,
                      rss["base"], rss["peak"] or None, how, "; " + bad if bad else "")))
        self.results[name] = {"name": name, "ok": ok, "detail": ""}

    def stall_diag(self, s, off):
        """Where a stalled WebSocket session stands: the TCP connection's queues
        (ss), the keeper and what its script is blocked in, the client's
        unacknowledged sends."""
        out = ["client: %d unacked sends (%d bytes), received %d" % (
            len(s.unacked), s.unacked_bytes, s.rx)]
        try:
            port = s.ws.transport.get_extra_info("sockname")[1]
        except Exception:
            return "; ".join(out + ["no WebSocket connection"])
        try:
            ss = os.popen("ss -tnp 2>/dev/null").read().splitlines()
            out += ["ss: " + " ".join(l.split()[:5] + l.split()[5:6])
                    for l in ss if ":%d " % port in l + " "]
        except OSError:
            pass
        try:
            fp, pid = self.keeper_of(port, off, 0.5)
            out.append("keeper %d: %s" % (pid, self.wchan(pid)))
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        with open("/proc/%s/stat" % d) as f:
                            st = f.read()
                        if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                            out.append("script %s %s: %s, bytes in its stdin pipe %s, "
                                       "in its stdout pipe %s" % (
                                           d, st.split("(")[1].split(")")[0],
                                           self.wchan(int(d)), pipe_bytes(int(d), 0),
                                           pipe_bytes(int(d), 1)))
                    except (OSError, ValueError, IndexError):
                        pass
            ss = os.popen("ss -xp 2>/dev/null").read().splitlines()
            out += ["unix: " + " ".join(l.split()[:4])
                    for l in ss if "pid=%d," % pid in l and "ESTAB" in l]
        except AssertionError as e:
            out.append(str(e))
        return "; ".join(out)

    @staticmethod
    def wchan(pid):
        try:
            with open("/proc/%d/wchan" % pid) as f:
                w = f.read().strip()
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return "state %s wchan %s" % (state, w)
        except OSError as e:
            return str(e)

    async def bulk(self):
        for tname, transport, tls in BULK_TRANSPORTS:
            if tls and not self.a.tls_port:
                continue
            if self.a.bulk and tname not in self.a.bulk.split(","):
                continue
            for shape in BULK_SHAPES:
                name = "bulk_%s_%s" % (tname, shape[0])
                for i in range(BULK_REPEATS[transport]):
                    try:
                        await asyncio.wait_for(
                            self.bulk_one(tname, transport, tls, shape, i + 1), 30)
                    except Exception as e:
                        self.error("%s (run %d)" % (name, i + 1), e)
                        break
                    if not self.results[name]["ok"]:
                        break
                self.results[name] = self.bulk_verdict(name)

    async def main(self):
        steps = [self.flood, self.window, self.silent, self.slow_post, self.bulk]
        await self.run_steps(steps, None, self.a.steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--logdir", required=True, help="httpd's log directory (error_log, httpd.pid)")
    ap.add_argument("--tls-port", type=int)
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--deadline", type=float, default=170)
    ap.add_argument("--steps", help="only these steps (comma-separated method names)")
    ap.add_argument("--bulk", help="bulk: only these transports (ws,sse,poll,wss,sse_tls,poll_tls)")
    args = ap.parse_args()
    run = Run(args)
    names = CHECKS + [n for n in BULK_CHECKS if args.tls_port or
                      not any(n.startswith("bulk_%s_" % t[0]) for t in BULK_TRANSPORTS if t[2])]
    if args.steps:
        names = None
    return run_and_report(run, run.main(), args.deadline, names)


if __name__ == "__main__":
    sys.exit(main())
