#!/usr/bin/python3
"""balancers.py -- sessions routed by real load balancers (t/70_balancers.t).

Starts two httpd nodes with the freshly built module (WebSessionRoute node1
and node2, WebSessionRouteCookie ROUTEID) and three fronts on loopback, each
with the recipe of docs/BALANCERS.md: Apache mod_proxy_balancer, HAProxy and
nginx. Everything logs at the highest level the test can set (httpd trace8,
HAProxy's http log, nginx's info; see NGINX_LOG for why not nginx's debug).

For each front: SESSIONS sessions per path (a plain WebSocket that
re-attaches with the Session-ID header; tools/websession_client.py over a
websession.v1 WebSocket, the id in Sec-WebSocket-Protocol; sse; poll), one
echo each, every connection cut, then every session re-attached in random
order: it must reach the node its id names and its script's count must go
on (no message lost). t/browser/balancers.mjs does the same with the
browser library in Chromium.

Then failover: FAILOVER sessions per path and front, every process of node2
killed (a crash: no close frame from it): each node2 session ends on its
next re-attach with 410 / 4410, at its first attempt, the node1 sessions go
on. Last, no secret of any id seen appears in any log of any front or node.

Prints one line of JSON (checkrun.py), and before it the routing counts
per front and path as a line "counts: {...}".
Needs: httpd (apache2), haproxy, nginx, python3-websockets; node and
Chromium for the browser part (skipped, and said so, without them).
"""

import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tools"))
sys.path.insert(0, HERE)
from checkrun import CheckRun  # noqa: E402
from websession_client import Session, SessionEnded  # noqa: E402
import websockets  # noqa: E402

SESSIONS = int(os.environ.get("BALANCE_SESSIONS", "100"))
FAILOVER = int(os.environ.get("BALANCE_FAILOVER", "10"))
BROWSER_SESSIONS = int(os.environ.get("BALANCE_BROWSER_SESSIONS", "100"))
MODDIR = "/usr/lib/apache2/modules"
HTTPD = shutil.which("apache2") or "/usr/sbin/apache2"
SO = os.path.join(TOP, ".libs", "mod_websession.so")
PATHS = ("header", "v1ws", "sse", "poll")
ROUTES = ("node1", "node2")
ID_RE = re.compile(r"^([A-Za-z0-9_-]{32})\.(node[12])$")
# nginx writes every request header to its debug log (as it does Cookie
# and Authorization): the highest level at which it keeps them out is info.
NGINX_LOG = "info"
# The same for httpd's http module (every request and response header at
# trace4) and mod_proxy_http (the backend's response headers at trace4):
# every other module at trace8, mod_proxy_balancer's debug (the sticky
# value it found) included.
HTTPD_LOG = "trace8 http:trace3"
FRONT_LOG = HTTPD_LOG + " proxy_http:trace3"


def free_ports(n):
    """n ports below 32768 that nobody listens on now."""
    out = []
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError("no free ports")


def wait_port(port, proc, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def descendants(pid):
    """pid and every process below it (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class Site:
    """The nodes and fronts, their configs and logs, in a temporary dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="websession-balance-")
        os.chmod(self.dir, 0o755)
        (self.p1, self.p2, self.papache, self.phaproxy, self.pnginx) = free_ports(5)
        self.procs = {}
        self.logs = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def node_conf(self, name, port):
        d = self.path(name)
        os.makedirs(self.path(name, "run"))
        os.makedirs(self.path(name, "htdocs"))
        for x in (d, self.path(name, "htdocs")):
            os.chmod(x, 0o755)
        script = self.path(name, "echo")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n# the node's name, a count, the line: a lost line shows as a gap\n"
                    "n=0\nwhile IFS= read -r l; do n=$((n+1)); echo \"%s $n $l\"; done\n" % name)
        os.chmod(script, 0o755)
        with open(self.path(name, "htdocs", "index.html"), "w") as f:
            f.write("<!doctype html><title>%s</title><script src=\"/websession.js\"></script>\n" % name)
        conf = self.path(name, "httpd.conf")
        self.logs += [self.path(name, "error.log"), self.path(name, "access.log")]
        group = "nogroup"
        with open(conf, "w") as f:
            f.write("""ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{d}/run/httpd.pid"
DefaultRuntimeDir "{d}/run"
DocumentRoot "{d}/htdocs"
User nobody
Group {group}
ErrorLog "{d}/error.log"
LogLevel {loglevel}
<IfModule !log_config_module>
    LoadModule log_config_module "{mods}/mod_log_config.so"
</IfModule>
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\" %{{Cookie}}i" full
CustomLog "{d}/access.log" full
LoadModule mpm_event_module  "{mods}/mod_mpm_event.so"
LoadModule authz_core_module "{mods}/mod_authz_core.so"
LoadModule mime_module       "{mods}/mod_mime.so"
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 2
ThreadsPerChild 64
MaxRequestWorkers 128
LoadModule websession_module "{so}"
WebSessionMaxSessions 2048
WebSessionRoute {name}
WebSessionRouteCookie ROUTEID
<Directory "{d}/htdocs">
    Require all granted
</Directory>
<Location /echo>
    Require all granted
    WebSession On
    WebSessionCommand {script}
    WebSessionResumeTimeout 60
    WebSessionMaxSessionsPerClient off
</Location>
<LocationMatch "^/websession\\.m?js$">
    Require all granted
    SetHandler websession-client
</LocationMatch>
""".format(d=d, port=port, group=group, mods=MODDIR, so=SO, name=name, script=script,
           loglevel=HTTPD_LOG))
        return conf

    def apache_front_conf(self):
        d = self.path("apache")
        os.makedirs(self.path("apache", "run"))
        os.chmod(d, 0o755)
        self.logs += [self.path("apache", "error.log"), self.path("apache", "access.log")]
        with open(os.path.join(TOP, "docs", "examples", "balancer-apache.conf")) as f:
            recipe = f.read()
        recipe = (recipe.replace(" modules/", " %s/" % MODDIR)
                  .replace("http://node1.example:80", "http://127.0.0.1:%d" % self.p1)
                  .replace("http://node2.example:80", "http://127.0.0.1:%d" % self.p2))
        conf = self.path("apache", "httpd.conf")
        with open(conf, "w") as f:
            f.write("""ServerRoot "{d}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{d}/run/httpd.pid"
DefaultRuntimeDir "{d}/run"
User nobody
Group nogroup
ErrorLog "{d}/error.log"
LogLevel {loglevel}
<IfModule !log_config_module>
    LoadModule log_config_module "{mods}/mod_log_config.so"
</IfModule>
LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\" %{{BALANCER_SESSION_ROUTE}}e %{{BALANCER_WORKER_ROUTE}}e" full
CustomLog "{d}/access.log" full
LoadModule mpm_event_module  "{mods}/mod_mpm_event.so"
LoadModule authz_core_module "{mods}/mod_authz_core.so"
StartServers 1
ServerLimit 2
ThreadsPerChild 256
MaxRequestWorkers 512
{recipe}
""".format(d=d, port=self.papache, mods=MODDIR, recipe=recipe, loglevel=FRONT_LOG))
        return conf

    def haproxy_conf(self):
        with open(os.path.join(TOP, "docs", "examples", "haproxy.cfg")) as f:
            recipe = f.read()
        recipe = (recipe.replace("node1.example:80", "127.0.0.1:%d" % self.p1)
                  .replace("node2.example:80", "127.0.0.1:%d" % self.p2)
                  .replace("bind :80", "bind 127.0.0.1:%d" % self.phaproxy))
        conf = self.path("haproxy.cfg")
        self.logs.append(self.path("haproxy.log"))
        with open(conf, "w") as f:
            f.write("global\n    log stdout format raw local0 debug\n\n" + recipe)
        return conf

    def nginx_conf(self):
        with open(os.path.join(TOP, "docs", "examples", "nginx.conf")) as f:
            recipe = f.read()
        recipe = (recipe.replace("node1.example:80", "127.0.0.1:%d" % self.p1)
                  .replace("node2.example:80", "127.0.0.1:%d" % self.p2)
                  .replace("listen 80;", "listen 127.0.0.1:%d;" % self.pnginx))
        d = self.path("nginx")
        os.makedirs(d)
        self.logs += [self.path("nginx", "error.log"), self.path("nginx", "access.log")]
        conf = self.path("nginx", "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log {level};
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{recipe}
}}
""".format(d=d, level=NGINX_LOG, recipe=recipe))
        return conf

    def start(self, name, cmd, port, stdout=None):
        out = open(stdout or self.path(name + ".stdout"), "w")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs[name] = p
        if not wait_port(port, p):
            raise RuntimeError("%s did not start: %s" % (name, open(out.name).read()[-2000:]))
        return p

    def start_all(self):
        for name, port in (("node1", self.p1), ("node2", self.p2)):
            self.start(name, [HTTPD, "-f", self.node_conf(name, port), "-DFOREGROUND"], port)
        self.start("apache", [HTTPD, "-f", self.apache_front_conf(), "-DFOREGROUND"],
                   self.papache)
        self.start("haproxy", ["haproxy", "-db", "-f", self.haproxy_conf()], self.phaproxy,
                   stdout=self.path("haproxy.log"))
        self.start("nginx", ["nginx", "-c", self.nginx_conf(), "-e",
                             self.path("nginx", "error.log")], self.pnginx)
        time.sleep(0.5)

    def crash(self, name):
        """Every process of that server, as in a crash: all stopped first
        (none can react to another's end: no close frame, no close event),
        then killed."""
        pids = descendants(self.procs[name].pid)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        self.procs[name].wait()
        return len(pids)

    def stop_all(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        for name, p in self.procs.items():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                for q in descendants(p.pid):
                    try:
                        os.kill(q, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                p.wait()


class Client:
    """One session through a front over one path: open, echo, cut,
    re-attach (echo again)."""

    def __init__(self, front, port, path):
        self.front, self.port, self.path = front, port, path
        self.url = "http://127.0.0.1:%d/echo" % port
        self.id = None
        self.node = None
        self.count = 0
        self.ws = None
        self.s = None
        self.retries = 0
        self.end = None

    @property
    def route(self):
        m = ID_RE.match(self.id or "")
        return m.group(2) if m else None

    def expect(self, reply, text):
        """reply is '<node> <count> <text>' from this session's script."""
        parts = (reply or "").split(" ", 2)
        if len(parts) != 3:
            raise AssertionError("bad reply %r" % reply)
        node, n, got = parts
        if self.node is None:
            self.node = node
        if node != self.node or int(n) != self.count + 1 or got != text:
            raise AssertionError("reply %r after %d from %s" % (reply, self.count, self.node))
        self.count += 1

    async def open(self):
        if self.path == "header":
            self.ws = await websockets.connect(self.url.replace("http:", "ws:"),
                                               ping_interval=None, compression=None)
            self.id = self.ws.response_headers.get("Session-ID")
        else:
            transport = "websocket" if self.path == "v1ws" else self.path
            self.s = Session(self.url, transport=transport, max_backoff=0.5,
                             on_event=self._event)
            await self.s.start()
            self.id = self.s.id
        await self.echo("hello")

    def _event(self, kind, *a):
        if kind == "retry":
            self.retries += 1

    async def echo(self, text):
        if self.path == "header":
            await self.ws.send(text)
            reply = await asyncio.wait_for(self.ws.recv(), 10)
        else:
            await self.s.send(text)
            reply = await asyncio.wait_for(self.s.recv(), 10)
        self.expect(reply, text)

    def cut(self):
        if self.path == "header":
            self.ws.transport.abort()
        else:
            self.s.drop()

    async def reattach(self, text):
        """Re-attach (the header client; the others resume by themselves)
        and echo text."""
        if self.path == "header":
            self.ws = await websockets.connect(self.url.replace("http:", "ws:"),
                                               extra_headers={"Session-ID": self.id},
                                               ping_interval=None, compression=None)
        await self.echo(text)

    async def reattach_end(self):
        """For a session whose node is gone: the code it ends with, or None
        when it goes on."""
        if self.path == "header":
            try:
                self.ws = await websockets.connect(
                    self.url.replace("http:", "ws:"), extra_headers={"Session-ID": self.id},
                    ping_interval=None, compression=None)
            except websockets.InvalidStatusCode as e:
                return e.status_code
            return None
        try:
            await self.s.send("after")
            await asyncio.wait_for(self.s.recv(), 10)
        except SessionEnded as e:
            return e.code
        return None

    async def close(self):
        try:
            if self.path == "header":
                if self.ws:
                    await self.ws.close()
            elif self.s and not self.s.ended:
                await asyncio.wait_for(self.s.close(), 5)
        except Exception:
            pass


async def gather_limited(coros, limit=32):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


class Run(CheckRun):
    def __init__(self):
        super().__init__()
        self.site = Site()
        self.fronts = [("apache", self.site.papache), ("haproxy", self.site.phaproxy),
                       ("nginx", self.site.pnginx)]
        self.counts = {}
        self.fails = {}
        self.secrets = set()

    async def routing(self, front, port):
        """One path after the other: a WebSocket or event stream through a
        front holds one of its connections (an Apache front: a thread)."""
        self.counts[front] = {}
        for path in PATHS:
            await self.routing_path(front, port, path)
        c = self.counts[front]
        self.check("%s_reattach" % front, all(c[p] == "%d/%d" % (SESSIONS, SESSIONS) for p in PATHS),
                   "%s %s" % (c, self.fails.get(front, [])[:3]))

    async def routing_path(self, front, port, path):
        clients = [Client(front, port, path) for _ in range(SESSIONS)]
        res = await gather_limited([c.open() for c in clients])
        opened = [c for c, r in zip(clients, res) if not isinstance(r, Exception)]
        for c in clients:
            if c.id:
                self.secrets.add(c.id[:32])
        errs = [repr(r) for r in res if isinstance(r, Exception)][:3]
        self.check("%s_open" % front, len(opened) == len(clients),
                   "%s: %d/%d opened %s" % (path, len(opened), len(clients), errs))
        routed = [c for c in opened if c.route and c.route == c.node]
        self.check("%s_ids_routed" % front, len(routed) == len(opened) == len(clients),
                   "%d/%d ids name the node that answered; per node: %s" % (
                       len(routed), len(opened),
                       {r: sum(1 for c in opened if c.node == r) for r in ROUTES}))
        for c in opened:
            c.cut()
        random.shuffle(opened)
        ok = 0
        for c in opened:
            try:
                await asyncio.wait_for(c.reattach("again"), 15)
                ok += 1
            except Exception as e:
                self.fails.setdefault(front, []).append("%s %s: %r" % (c.path, c.route, e))
        self.counts[front][path] = "%d/%d" % (ok, SESSIONS)
        await gather_limited([c.close() for c in clients])

    async def failover_open(self):
        self.fo = []
        for front, port in self.fronts:
            self.fo += [Client(front, port, p) for p in PATHS for _ in range(FAILOVER)]
        res = await gather_limited([c.open() for c in self.fo])
        for c in self.fo:
            if c.id:
                self.secrets.add(c.id[:32])
        bad = [repr(r) for r in res if isinstance(r, Exception)]
        self.check("failover_open", not bad, "%d sessions; %s" % (len(self.fo), bad[:3]))
        self.fo = [c for c, r in zip(self.fo, res) if not isinstance(r, Exception)]
        for c in self.fo:
            c.retries = 0

    async def failover_check(self, t_crash):
        results = await gather_limited([self._after_crash(c, t_crash) for c in self.fo])
        lost = {}
        kept = {}
        problems = []
        for c, r in zip(self.fo, results):
            key = "%s/%s" % (c.front, c.path)
            if isinstance(r, Exception):
                problems.append("%s %s: %r" % (key, c.route, r))
                continue
            code, secs = r
            if c.route == "node2":
                want = 4410 if c.path in ("v1ws", "sse", "poll") else 410
                if code == want and c.retries == 0:
                    lost[key] = lost.get(key, 0) + 1
                else:
                    problems.append("%s node2: ended %r after %d retries, %.2f s"
                                    % (key, code, c.retries, secs))
            else:
                if code is None:
                    kept[key] = kept.get(key, 0) + 1
                else:
                    problems.append("%s node1: ended %r" % (key, code))
        n2 = sum(1 for c in self.fo if c.route == "node2")
        n1 = len(self.fo) - n2
        self.check("failover_node2_410", sum(lost.values()) == n2 and n2 > 0,
                   "%d/%d node2 sessions ended 410/4410 at their first re-attach: %s %s"
                   % (sum(lost.values()), n2, lost, problems[:4]))
        self.check("failover_node1_go_on", sum(kept.values()) == n1 and n1 > 0,
                   "%d/%d node1 sessions carry on: %s" % (sum(kept.values()), n1, kept))
        self.failover_counts = {"node2_ended": "%d/%d" % (sum(lost.values()), n2),
                                "node1_kept": "%d/%d" % (sum(kept.values()), n1)}

    async def _after_crash(self, c, t_crash):
        if c.route == "node1" and c.path == "header":
            # its connection (through the front to node1) is untouched
            await c.echo("still")
            return None, time.time() - t_crash
        code = await asyncio.wait_for(c.reattach_end(), 20)
        return code, time.time() - t_crash

    def check_logs(self):
        texts = {}
        for path in self.site.logs:
            try:
                with open(path, errors="replace") as f:
                    texts[path] = f.read()
            except OSError:
                texts[path] = ""
        leaks = []
        for path, text in texts.items():
            for s in self.secrets:
                if s[:24] in text:
                    leaks.append("%s: %s..." % (os.path.relpath(path, self.site.dir), s[:6]))
                    break
        sizes = {os.path.relpath(p, self.site.dir): len(t) for p, t in texts.items()}
        self.check("no_secret_in_logs", self.secrets and not leaks
                   and all(sizes.values()),
                   "%d secrets, %d logs %s; leaks: %s" % (len(self.secrets), len(texts),
                                                         sizes, leaks[:6]))

    async def main(self):
        t0 = time.time()
        self.site.start_all()
        browser = BrowserPart(self, self.fronts) if BrowserPart.available() else None
        try:
            for front, port in self.fronts:
                await self.routing(front, port)
            if browser:
                await browser.start()
            await self.failover_open()
            if browser:
                await browser.wait_ready()
            n = self.site.crash("node2")
            t_crash = time.time()
            self.check("node2_crashed", n >= 2, "%d processes of node2 killed" % n)
            if browser:
                browser.go()
            await self.failover_check(t_crash)
            if browser:
                await browser.finish()
            else:
                self.check("browser", False, "skipped: " + BrowserPart.why_not())
        finally:
            for c in getattr(self, "fo", []):
                await c.close()
            self.site.stop_all()
        self.check_logs()
        print("counts: " + json.dumps({"routing": self.counts,
                          "failover": getattr(self, "failover_counts", {}),
                          "browser": browser.counts if browser else None,
                          "seconds": round(time.time() - t0, 1)}))


class BrowserPart:
    """t/browser/balancers.mjs: the library's WebSocket in Chromium."""

    SCRIPT = os.path.join(TOP, "t", "browser", "balancers.mjs")

    @staticmethod
    def why_not():
        if not shutil.which("node"):
            return "no node"
        if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
            return "no chromium"
        if not os.path.exists(os.path.join(TOP, "node_modules", "playwright-core")):
            return "no node_modules/playwright-core"
        return ""

    @classmethod
    def available(cls):
        return not cls.why_not()

    def __init__(self, run, fronts):
        self.run = run
        self.fronts = fronts
        self.counts = None

    async def start(self):
        env = dict(os.environ, BALANCE_FRONTS=json.dumps(dict(self.fronts)),
                   BALANCE_SESSIONS=str(BROWSER_SESSIONS), BALANCE_FAILOVER=str(FAILOVER))
        self.proc = await asyncio.create_subprocess_exec(
            "node", self.SCRIPT, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self.lines = []
        self.routing = await self._line("routing")

    async def _line(self, kind, timeout=180):
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise RuntimeError("browser part ended early: %s" % "".join(self.lines[-20:]))
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if line.startswith("{"):
                msg = json.loads(line)
                if msg.get("kind") == kind:
                    return msg

    async def wait_ready(self):
        r = self.routing
        for s in r.get("secrets", []):
            self.run.secrets.add(s)
        for front, c in r["fronts"].items():
            self.run.check("browser_%s_reattach" % front,
                           c["resumed"] == c["sessions"] == BROWSER_SESSIONS
                           and c["routed"] == c["sessions"] and c["lost"] == 0,
                           json.dumps(c))
        self.counts = {f: "%d/%d" % (c["resumed"], c["sessions"]) for f, c in r["fronts"].items()}
        self.ready = await self._line("ready")
        for s in self.ready.get("secrets", []):
            self.run.secrets.add(s)

    def go(self):
        self.proc.stdin.write(b"go\n")

    async def finish(self):
        fo = await self._line("failover", 60)
        for front, c in fo["fronts"].items():
            self.run.check("browser_%s_failover" % front,
                           c["node2"] > 0 and c["sessionlost"] == c["node2"]
                           and c["node1"] > 0 and c["kept"] == c["node1"],
                           json.dumps(c))
        self.counts = {"routing": self.counts, "failover": fo["fronts"]}
        await asyncio.wait_for(self.proc.wait(), 30)


def ok_to_remove(run):
    """Keep the servers' logs of a failed run (for whoever reads it)."""
    return run.results and all(c["ok"] for c in run.results.values()) and not run.errors


def stop_on_signal(site):
    """A run stopped from outside (timeout(1), ^C) takes its servers along."""
    def handler(signum, frame):
        site.stop_all()
        shutil.rmtree(site.dir, ignore_errors=True)
        os._exit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


if __name__ == "__main__":
    run = Run()
    stop_on_signal(run.site)
    try:
        asyncio.run(asyncio.wait_for(run.main(), float(os.environ.get("BALANCE_DEADLINE", "240"))))
    except Exception as e:
        run.error("main", e)
        run.site.stop_all()
    if ok_to_remove(run):
        shutil.rmtree(run.site.dir, ignore_errors=True)
    ok = run.results and all(c["ok"] for c in run.results.values()) and not run.errors
    print(json.dumps({"ok": bool(ok), "checks": list(run.results.values()),
                      "errors": run.errors}))
    sys.exit(0 if ok else 1)
