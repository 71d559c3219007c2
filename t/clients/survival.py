#!/usr/bin/python3
"""websession.v1 sessions survive the loss of httpd worker processes.
Used by t/42_survival.t; each mode prints one line of JSON
  {"ok": bool, "checks": [{"name", "ok", "detail"}, ...], "errors": [...], ...}
and exits 0 when every check passed.

  survival.py plain --port P --pidfile F --errlog L
      A session on /ws/count over plain TCP (the keeper owns the socket):
      SIGKILL every httpd worker child while it is open; the counts go on,
      on the same connection; then resumes through the new workers.
  survival.py tls --tls-port P --cafile C --pidfile F --errlog L [--messages N]
      wss:// (relayed by a worker) to /ws/chaos-echo: the workers are
      killed again and again while numbered messages flow both ways; the
      client resumes, every number arrives exactly once, in order.
  survival.py resumes --port P [--resumes N] [--leave-open]
      A /ws/count session with N forced reconnects (t/42_survival.t runs it
      against an httpd with MaxConnectionsPerChild 1): the count goes on.

Worker children are httpd's children (ppid = the pid in --pidfile) that
run threads (the event MPM's), other than the session spawner (the parent
of the keepers, "WS01004: spawner <pid> ready" in the error log).  mod_cgid's
daemon, single-threaded, is left alone.
"""

import argparse
import asyncio
import logging
import os
import re
import signal
import ssl
import sys
import time

from checkrun import CheckRun, emit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tools"))
from websession_client import Session, SessionEnded  # noqa: E402

from chaos_echo import Streams  # noqa: E402


# -- processes ------------------------------------------------------------------

def proc_table():
    """{pid: (ppid, state, threads)} of every process."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        t[int(d)] = (int(rest[1]), rest[0], int(rest[17]))
    return t


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return False
    return s[s.rindex(")") + 2] != "Z"


class Httpd:
    def __init__(self, pidfile, errlog):
        self.pidfile = pidfile
        self.errlog = errlog

    def parent(self):
        with open(self.pidfile) as f:
            return int(f.read().split()[0])

    def spawner(self, parent, table):
        pid = None
        with open(self.errlog, errors="replace") as f:
            for line in f:
                m = re.search(r"WS01004: spawner (\d+) ready", line)
                if m:
                    pid = int(m.group(1))
        if pid and table.get(pid, (None,))[0] == parent:
            return pid
        # otherwise the child of httpd that has children (the keepers)
        kids = {p for p, v in table.items() if v[0] == parent}
        for p, v in table.items():
            if v[0] in kids and table[v[0]][2] == 1:
                return v[0]
        return None

    def workers(self):
        table = proc_table()
        parent = self.parent()
        sp = self.spawner(parent, table)
        return [p for p, (pp, st, threads) in table.items()
                if pp == parent and p != sp and threads > 1 and st != "Z"], sp

    def kill_workers(self):
        pids, sp = self.workers()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids, sp


async def poll(secs, cond, step=0.1):
    end = time.monotonic() + secs
    while True:
        if cond():
            return True
        if time.monotonic() > end:
            return False
        await asyncio.sleep(step)


# -- the runs -------------------------------------------------------------------

class Run(CheckRun):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.t = a.timeout
        self.extra = {}

    async def recv(self, s):
        return await asyncio.wait_for(s.recv(), self.t)

    async def counts(self, s, lo, hi, tag):
        """Send tag<i> for i in lo..hi to /ws/count; the replies, or an error."""
        got = []
        for i in range(lo, hi + 1):
            await s.send("%s%d" % (tag, i))
            try:
                got.append(await self.recv(s))
            except (asyncio.TimeoutError, SessionEnded) as e:
                got.append("<%s>" % (type(e).__name__ if not isinstance(e, SessionEnded)
                                     else "ended %s %s" % (e.code, e.reason)))
                break
        want = ["%d %s%d" % (i, tag, i) for i in range(lo, hi + 1)]
        return got == want, "want %r..%r, got %r" % (want[0], want[-1], got[:3] + ["..."] + got[-3:]
                                                  if len(got) > 6 else got)

    async def plain(self):
        h = Httpd(self.a.pidfile, self.a.errlog)
        s = Session("http://127.0.0.1:%d/ws/count" % self.a.port, max_backoff=0.2)
        await asyncio.wait_for(s.start(), self.t)
        self.check("plain_before", *await self.counts(s, 1, 5, "p"))

        killed, sp = h.kill_workers()
        gone = await poll(10, lambda: not any(alive(p) for p in killed))
        self.check("plain_killed", killed and sp and gone,
                   "spawner %s; SIGKILL to workers %r: %s" % (
                       sp, killed, "gone" if gone else "still there after 10 s"))
        ok, detail = await self.counts(s, 6, 10, "p")
        self.check("plain_same_connection", ok and s.reconnects == 0,
                   "%s; reconnects %d" % (detail, s.reconnects))
        new = []

        def replaced():
            new[:] = [p for p in h.workers()[0] if p not in killed]
            return bool(new)
        self.check("plain_replaced", await poll(20, replaced),
                   "new workers %r" % new)
        s.drop()
        ok, detail = await self.counts(s, 11, 13, "p")
        self.check("plain_resume_after", ok and s.reconnects == 1,
                   "%s; reconnects %d" % (detail, s.reconnects))

        # Kill them again and drop at once: the resume waits for new workers.
        killed2, _ = h.kill_workers()
        s.drop()
        ok, detail = await self.counts(s, 14, 16, "p")
        self.check("plain_resume_while_replaced", ok and killed2 and s.reconnects == 2,
                   "killed %r; %s; reconnects %d" % (killed2, detail, s.reconnects))
        await s.close()

    async def tls(self):
        h = Httpd(self.a.pidfile, self.a.errlog)
        n = self.a.messages
        ctx = ssl.create_default_context(cafile=self.a.cafile)
        s = Session("https://127.0.0.1:%d/ws/chaos-echo?n=%d" % (self.a.tls_port, n),
                    ssl=ctx, max_backoff=0.2)
        await asyncio.wait_for(s.start(), self.t)
        got = Streams(n)
        state = {"writing": True, "kills": 0, "killed": 0, "during": 0}

        kills = self.a.kills

        async def writer():
            # In kills + 1 parts: each part waits (up to 10 s) for one more
            # round of kills, so every round lands while messages flow.
            for i in range(1, n + 1):
                await s.send("c%d" % i)
                if i % 25 == 0:
                    await asyncio.sleep(0.05)
                    end = time.monotonic() + 10
                    while state["kills"] < kills and i * (kills + 1) >= n * (state["kills"] + 1) \
                            and time.monotonic() < end:
                        await asyncio.sleep(0.05)
            state["writing"] = False

        async def killer():
            await asyncio.sleep(0.3)
            while state["kills"] < kills:
                pids, _ = h.kill_workers()
                if not pids:                # not replaced yet
                    await asyncio.sleep(0.2)
                    continue
                state["kills"] += 1
                state["killed"] += len(pids)
                if state["writing"]:
                    state["during"] += 1
                await asyncio.sleep(self.a.kill_every)

        t0 = time.monotonic()
        k = asyncio.ensure_future(killer())
        try:
            await asyncio.wait_for(asyncio.gather(got.read(s), writer()), self.a.deadline - 10)
        except Exception as e:
            self.error("tls", e)
        k.cancel()
        secs = time.monotonic() - t0
        self.extra.update(seconds_flow=round(secs, 1), reconnects=s.reconnects,
                          kills=state["kills"], killed=state["killed"])
        self.check("tls_kills", state["kills"] == kills and state["during"] == kills,
                   "%d rounds of SIGKILL (%d while the client was still sending), %d"
                   " worker processes killed" % (state["kills"], state["during"],
                                                 state["killed"]))
        self.check("tls_resumed", s.reconnects >= 1,
                   "the client resumed %d times" % s.reconnects)
        self.check("tls_echoes_exact", got.exact(got.echoes),
                   "%d echoes, first differences: %r" % (len(got.echoes), diff(got.echoes, n)))
        self.check("tls_stream_exact", got.exact(got.stream) and not got.other,
                   "%d of the script's stream, first differences: %r, other %r"
                   % (len(got.stream), diff(got.stream, n), got.other[:3]))
        await s.close()

    async def resumes(self):
        n = self.a.resumes
        s = Session("http://127.0.0.1:%d/ws/count" % self.a.port, max_backoff=0.2,
                    connect_timeout=self.t)
        await asyncio.wait_for(s.start(), self.t)
        got, want = [], []
        for i in range(1, n + 2):
            want.append("%d r%d" % (i, i))
            await s.send("r%d" % i)
            try:
                got.append(await self.recv(s))
            except (asyncio.TimeoutError, SessionEnded) as e:
                got.append("<%r>" % e)
                break
            if i <= n:
                s.drop()
        self.extra.update(reconnects=s.reconnects)
        self.check("recycle_counts", got == want,
                   "%d replies, last %r (want %r)" % (len(got), got[-3:], want[-1]))
        self.check("recycle_reconnects", s.reconnects == n,
                   "%d reconnects (%d forced)" % (s.reconnects, n))
        if self.a.leave_open:
            s.drop()                # a session left waiting for its client
            s._closing = True
            if s._task:
                s._task.cancel()
        else:
            await s.close()


def diff(seq, n):
    out = []
    for i, v in enumerate(seq):
        if v != i + 1:
            out.append((i + 1, v))
            if len(out) >= 3:
                break
    if len(seq) < n and len(out) < 3:
        out.append(("missing from", len(seq) + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["plain", "tls", "resumes"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--tls-port", type=int)
    ap.add_argument("--cafile")
    ap.add_argument("--pidfile")
    ap.add_argument("--errlog")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--kill-every", type=float, default=0.8)
    ap.add_argument("--resumes", type=int, default=30)
    ap.add_argument("--leave-open", action="store_true")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--deadline", type=float, default=90)
    a = ap.parse_args()
    # asyncio's "socket.send() raised exception." on killed connections
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    run = Run(a)
    t0 = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(getattr(run, a.mode)(), a.deadline))
    except Exception as e:
        run.error(a.mode, e)
    ok, checks = run.summary()
    out = {"ok": ok, "mode": a.mode, "checks": checks, "errors": run.errors,
           "seconds": round(time.monotonic() - t0, 1)}
    out.update(run.extra)
    emit(out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
