#!/usr/bin/env node
// cutproxy.mjs -- a TCP proxy that can cut every connection through it, the
// way a network failure does: no WebSocket close frame, on either side.
//
// A browser cannot drop its own WebSocket without sending a close frame (and
// a close frame ends a WebSession), so the demo (demo/run) and the browser
// tests (t/browser/) put this proxy between Chromium and Apache and cut here.
//
//   node demo/cutproxy.mjs --listen 127.0.0.1:8080 --target 127.0.0.1:8081
//
// It can also behave like the proxies that break WebSockets, to show and
// test the library's HTTP fallback (new connections only):
//   --strip-upgrade   remove Upgrade, Connection and Sec-WebSocket-* from
//                     requests (a proxy that knows nothing of WebSocket)
//   --buffer          hold each response until it is complete (the server
//                     closed the connection), then send it whole
//
// Control requests, answered by the proxy itself when they are the first
// request of a connection (JSON; every other request goes to Apache):
//   POST /demo-control/cut            drop every other connection (RST)
//   POST /demo-control/cut?mode=fin   ... with FIN instead of RST
//   POST /demo-control/mode?strip=1&buffer=0   switch those behaviours
//   GET  /demo-control/status         counters and behaviours
// For every other connection that is not a WebSocket upgrade, the proxy
// sets "Connection: close" on its first request, so a browser never sends a
// control request on a connection it already forwarded to Apache.
//
// As a module: new CutProxy({ targetPort }).listen() -> port; cut();
// refuse(true|false) (while true, new connections are reset at once);
// setMode({ stripUpgrade, buffer }); close().
import net from 'node:net';
import { pathToFileURL } from 'node:url';

const CONTROL = '/demo-control/';
const MAX_HEAD = 64 * 1024;

/** Drops a socket at once: RST when reset is true and node can, else FIN. */
function drop(sock, reset) {
    if (!sock || sock.destroyed) {
        return;
    }
    if (reset && typeof sock.resetAndDestroy === 'function') {
        sock.resetAndDestroy();
    } else {
        sock.destroy();
    }
}

/** The first request's head as [request line, header lines], or null. */
function parseHead(buf) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
        return null;
    }
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    return { end: end + 4, requestLine: lines[0], headers: lines.slice(1) };
}

export class CutProxy {
    /**
     * @param {object} o
     * @param {number} o.targetPort  Apache's port
     * @param {string} [o.targetHost='127.0.0.1']
     * @param {boolean} [o.control=true]  answer /demo-control/ requests
     * @param {boolean} [o.stripUpgrade=false]  remove the WebSocket upgrade
     *   headers from requests
     * @param {boolean} [o.buffer=false]  deliver responses only once complete
     * @param {Function} [o.log]  called with one line per event
     */
    constructor(o) {
        this.stripUpgrade = !!o.stripUpgrade;
        this.buffer = !!o.buffer;
        this.targetHost = o.targetHost || '127.0.0.1';
        this.targetPort = o.targetPort;
        this.control = o.control !== false;
        this.log = o.log || (() => {});
        this.pairs = new Set();       // { client, server, upgrade }
        this.refusing = false;
        this.stats = { connections: 0, upgrades: 0, cuts: 0, dropped: 0, refused: 0,
                       stripped: 0, buffered: 0 };
        this.server = net.createServer((c) => this._accept(c));
    }

    /** Starts listening; resolves to the port (0 picks a free one). */
    listen(port = 0, host = '127.0.0.1') {
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(port, host, () => {
                this.server.off('error', reject);
                resolve(this.server.address().port);
            });
        });
    }

    /** Drops every connection, both sides, without a close frame. Returns
     *  { dropped, websockets }: how many connections, how many of them
     *  WebSocket upgrades. */
    cut(opts = {}) {
        const reset = opts.mode !== 'fin';
        let dropped = 0;
        let websockets = 0;
        for (const p of [...this.pairs]) {
            if (p === opts.except) {
                continue;
            }
            this.pairs.delete(p);
            dropped++;
            if (p.upgrade) {
                websockets++;
            }
            drop(p.client, reset);
            drop(p.server, reset);
        }
        this.stats.cuts++;
        this.stats.dropped += dropped;
        this.log(`cut: ${dropped} connection(s), ${websockets} WebSocket(s), ${reset ? 'RST' : 'FIN'}`);
        return { dropped, websockets };
    }

    /** Behave (for new connections) like a proxy that strips the upgrade
     *  headers and/or buffers whole responses. */
    setMode(m) {
        if (m.stripUpgrade !== undefined) {
            this.stripUpgrade = !!m.stripUpgrade;
        }
        if (m.buffer !== undefined) {
            this.buffer = !!m.buffer;
        }
        this.log(`mode: strip-upgrade ${this.stripUpgrade ? 'on' : 'off'},`
                 + ` buffer ${this.buffer ? 'on' : 'off'}`);
    }

    /** While on, every new connection is reset as soon as it arrives (as
     *  if the network were down). */
    refuse(on) {
        this.refusing = !!on;
    }

    close() {
        this.cut();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }

    _accept(client) {
        this.stats.connections++;
        if (this.refusing) {
            this.stats.refused++;
            client.on('error', () => {});
            drop(client, true);
            return;
        }
        const pair = { client, server: null, upgrade: false };
        this.pairs.add(pair);
        let head = Buffer.alloc(0);
        const forget = () => {
            this.pairs.delete(pair);
            drop(pair.client, false);
            drop(pair.server, false);
        };
        client.on('error', forget);
        client.on('close', forget);
        const onData = (chunk) => {
            head = Buffer.concat([head, chunk]);
            const h = parseHead(head);
            if (!h) {
                if (head.length > MAX_HEAD) {
                    forget();
                }
                return;
            }
            client.off('data', onData);
            client.pause();
            this._route(pair, h, head, forget);
        };
        client.on('data', onData);
    }

    _route(pair, h, head, forget) {
        const [method, target] = h.requestLine.split(' ');
        if (this.control && target && target.startsWith(CONTROL)) {
            this._answer(pair, method, target);
            return;
        }
        pair.upgrade = h.headers.some((l) => /^upgrade\s*:/i.test(l));
        if (pair.upgrade && this.stripUpgrade) {
            h.headers = h.headers.filter((l) => !/^(upgrade|sec-websocket-[a-z]+)\s*:/i.test(l));
            pair.upgrade = false;
            this.stats.stripped++;
        }
        if (pair.upgrade) {
            this.stats.upgrades++;
        } else {
            // one request per connection: a browser then opens a new
            // connection for its next request (a control request included)
            const kept = h.headers.filter((l) => !/^(connection|keep-alive)\s*:/i.test(l));
            head = Buffer.concat([
                Buffer.from([h.requestLine, ...kept, 'Connection: close', '', ''].join('\r\n'), 'latin1'),
                head.subarray(h.end),
            ]);
        }
        const server = net.connect(this.targetPort, this.targetHost);
        pair.server = server;
        server.on('error', forget);
        server.on('close', forget);
        server.once('connect', () => {
            server.write(head);
            pair.client.pipe(server);
            if (this.buffer && !pair.upgrade) {
                this._buffered(pair, server);
            } else {
                server.pipe(pair.client);
            }
            pair.client.resume();
        });
    }

    /** The response reaches the client only when the server has ended it. */
    _buffered(pair, server) {
        const chunks = [];
        this.stats.buffered++;
        server.on('data', (c) => chunks.push(c));
        server.on('end', () => pair.client.end(Buffer.concat(chunks)));
    }

    _answer(pair, method, target) {
        const url = new URL(target, 'http://proxy');
        let status = 200;
        let body;
        if (url.pathname === CONTROL + 'cut' && method === 'POST') {
            const r = this.cut({ mode: url.searchParams.get('mode') || 'rst', except: pair });
            body = { ok: true, ...r };
        } else if (url.pathname === CONTROL + 'mode' && method === 'POST') {
            const flag = (k) => (url.searchParams.has(k) ? url.searchParams.get(k) === '1' : undefined);
            this.setMode({ stripUpgrade: flag('strip'), buffer: flag('buffer') });
            body = { ok: true, stripUpgrade: this.stripUpgrade, buffer: this.buffer };
        } else if (url.pathname === CONTROL + 'status' && method === 'GET') {
            body = { ok: true, ...this.stats, stripUpgrade: this.stripUpgrade, buffer: this.buffer };
        } else {
            status = 404;
            body = { ok: false, error: 'POST ' + CONTROL + 'cut, POST ' + CONTROL + 'mode or GET '
                     + CONTROL + 'status' };
        }
        const text = JSON.stringify(body);
        this.pairs.delete(pair);
        pair.client.end(`HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Not Found'}\r\n`
                        + 'Content-Type: application/json\r\n'
                        + 'Cache-Control: no-store\r\n'
                        + 'Connection: close\r\n'
                        + `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    }
}

function hostPort(s, what) {
    const m = /^(?:(.*):)?([0-9]+)$/.exec(s || '');
    if (!m) {
        throw new Error(`cutproxy: ${what} must be [HOST:]PORT, not '${s}'`);
    }
    return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

async function main(argv) {
    const args = {};
    for (let i = 0; i < argv.length; i++) {
        const name = argv[i].replace(/^--/, '');
        if (name === 'strip-upgrade' || name === 'buffer') {
            args[name] = true;
        } else {
            args[name] = argv[++i];
        }
    }
    const listen = hostPort(args.listen, '--listen');
    const target = hostPort(args.target, '--target');
    const proxy = new CutProxy({
        targetHost: target.host,
        targetPort: target.port,
        stripUpgrade: !!args['strip-upgrade'],
        buffer: !!args.buffer,
        log: (line) => console.error('cutproxy: ' + line),
    });
    await proxy.listen(listen.port, listen.host);
    const stop = () => proxy.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
    main(process.argv.slice(2)).catch((e) => {
        console.error(String(e && e.message || e));
        process.exit(1);
    });
}
