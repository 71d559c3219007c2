#!/usr/bin/env node
// Many WebSocket sessions held open at once, with node-ws as the client
// (a second, independent client implementation next to the Perl tests).
// Used by t/20_worker_freedom.t.
//
//   node t/clients/many_sessions.js --port 8529 [--host 127.0.0.1]
//        [--sessions 100] [--path /ws/echo] [--parallel 10]
//        [--gets 20] [--get-path /ws/index.html] [--get-timeout 10]
//        [--timeout 60] [--deadline 240]
//        [--scheme wss --ws-port 8531 --ca server.crt]
//
// 1. opens --sessions sessions to ws://host:port/path (at most --parallel
//    handshakes in flight) and keeps every one of them open;
// 2. with all of them open, at the same time: sends one distinct text
//    message on every session and reads every echo, and makes --gets
//    sequential plain GETs of --get-path, each on a new connection and
//    each limited to --get-timeout seconds;
// 3. checks every session is still open, then closes all of them with
//    1000 and waits for each close handshake to finish.
// Each phase is limited to --timeout seconds, the whole run to --deadline.
// --scheme wss (sessions over TLS, trusting the certificate file --ca; GETs
// stay plain http on --port) is a negative control: TLS sessions are
// relayed by a worker thread each, so with 8 threads they cannot all open.
//
// Prints one line of JSON (a summary, see `summary` below) and exits 0 when
// every check passed, 1 otherwise.
'use strict';

const WebSocket = require('/usr/share/nodejs/ws');
const http = require('http');
const crypto = require('crypto');

const opt = {
    host: '127.0.0.1', port: 0, sessions: 100, path: '/ws/echo', parallel: 10,
    gets: 20, 'get-path': '/ws/index.html', 'get-timeout': 10, timeout: 60,
    deadline: 240, scheme: 'ws', ca: '', 'ws-port': 0,
};
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    if (!(k in opt) || i + 1 >= process.argv.length) {
        console.error(`usage: many_sessions.js --port N [--${Object.keys(opt).join(' --')}]`);
        process.exit(2);
    }
    const v = process.argv[i + 1];
    opt[k] = typeof opt[k] === 'number' ? Number(v) : v;
}
if (!opt.port) {
    console.error('many_sessions.js: --port is required');
    process.exit(2);
}

const summary = {
    ok: false,
    sessions: opt.sessions,
    opened: 0,              // handshakes answered with 101
    with_id: 0,             // ... that carried a Session-ID header
    distinct_ids: 0,
    open_fail_status: {},   // HTTP status of refused handshakes -> count
    echoed: 0,              // sessions whose echo came back exactly
    open_after_echo: 0,     // sessions still open after the echo round
    gets: opt.gets,
    gets_ok: 0,             // 200 with the page, within --get-timeout
    get_max_ms: 0,
    unexpected_close: 0,    // closes we did not ask for before phase 3
    closed: 0,              // close handshakes finished
    close_codes: {},        // code the server answered with -> count
    phase: 'start',
    errors: [],
    ms: {},
};
const t0 = Date.now();
let finished = false;

function err(msg) {
    if (summary.errors.length < 20) {
        summary.errors.push(msg);
    }
}

function finish() {
    if (finished) {
        return;
    }
    finished = true;
    summary.ms.total = Date.now() - t0;
    summary.ok = summary.opened === opt.sessions
        && summary.distinct_ids === opt.sessions
        && summary.echoed === opt.sessions
        && summary.open_after_echo === opt.sessions
        && summary.gets_ok === opt.gets
        && summary.unexpected_close === 0
        && summary.closed === opt.sessions
        && (summary.close_codes['1000'] || 0) === opt.sessions
        && summary.errors.length === 0;
    process.stdout.write(JSON.stringify(summary) + '\n', () => {
        process.exit(summary.ok ? 0 : 1);
    });
}

setTimeout(() => {
    err(`overall deadline of ${opt.deadline} s passed in phase ${summary.phase}`);
    finish();
}, opt.deadline * 1000).unref();

// Resolve with the promise's value, or reject after ms.
function within(ms, what, p) {
    let timer;
    return Promise.race([
        p,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

const sessions = [];    // { i, ws, id, closing, inbox: [], waiter }

function openOne(i) {
    return new Promise((resolve) => {
        const url = `${opt.scheme}://${opt.host}:${opt['ws-port'] || opt.port}${opt.path}`;
        const s = { i, ws: null, id: null, closing: false, inbox: [], waiter: null,
                    closeCode: null, closed: null };
        s.closed = new Promise((res) => { s.closedResolve = res; });
        const wsopt = { perMessageDeflate: false, handshakeTimeout: opt.timeout * 1000 };
        if (opt.ca) {
            wsopt.ca = require('fs').readFileSync(opt.ca);
        }
        const ws = new WebSocket(url, wsopt);
        s.ws = ws;
        let settled = false;
        const done = (good) => {
            if (!settled) {
                settled = true;
                resolve(good ? s : null);
            }
        };
        ws.on('upgrade', (res) => {
            s.id = res.headers['session-id'] || null;
        });
        ws.on('unexpected-response', (req, res) => {
            const st = String(res.statusCode);
            summary.open_fail_status[st] = (summary.open_fail_status[st] || 0) + 1;
            err(`session ${i}: handshake answered ${res.statusCode}`
                + ` (WebSession-Error: ${res.headers['websession-error'] || '-'})`);
            req.destroy();
            done(false);
        });
        ws.on('open', () => { s.wasOpen = true; done(true); });
        ws.on('message', (data, isBinary) => {
            const m = { data: data.toString('utf8'), isBinary };
            if (s.waiter) {
                const w = s.waiter;
                s.waiter = null;
                w(m);
            }
            else {
                s.inbox.push(m);
            }
        });
        ws.on('error', (e) => {
            err(`session ${i}: ${e.message}`);
            done(false);
        });
        ws.on('close', (code) => {
            s.closeCode = code;
            if (!s.closing && s.wasOpen) {
                summary.unexpected_close++;
                err(`session ${i}: closed by the server with ${code} before we closed it`);
            }
            s.closedResolve(code);
            done(false);
        });
    });
}

function nextMessage(s) {
    if (s.inbox.length) {
        return Promise.resolve(s.inbox.shift());
    }
    return new Promise((resolve) => { s.waiter = resolve; });
}

async function openAll() {
    summary.phase = 'open';
    const t = Date.now();
    let next = 0;
    async function lane() {
        while (next < opt.sessions) {
            const i = next++;
            const s = await openOne(i);
            if (s) {
                sessions.push(s);
                summary.opened++;
                if (s.id) {
                    summary.with_id++;
                }
            }
        }
    }
    const lanes = [];
    for (let l = 0; l < Math.max(1, opt.parallel); l++) {
        lanes.push(lane());
    }
    await within(opt.timeout * 1000, 'opening the sessions', Promise.all(lanes));
    summary.distinct_ids = new Set(sessions.filter((s) => s.id).map((s) => s.id)).size;
    summary.ms.open = Date.now() - t;
}

async function echoAll() {
    const t = Date.now();
    const nonce = crypto.randomBytes(6).toString('hex');
    await within(opt.timeout * 1000, 'the echo round', Promise.all(sessions.map(async (s) => {
        const msg = `session ${s.i} says ${nonce}`;
        s.ws.send(msg);
        const m = await nextMessage(s);
        if (!m.isBinary && m.data === msg) {
            summary.echoed++;
        }
        else {
            err(`session ${s.i}: sent ${JSON.stringify(msg)}, got ${JSON.stringify(m.data)}`);
        }
    })));
    summary.ms.echo = Date.now() - t;
}

function getOnce(n) {
    return new Promise((resolve) => {
        const t = Date.now();
        let over = false;
        const end = (good, why) => {
            if (over) {
                return;
            }
            over = true;
            const ms = Date.now() - t;
            summary.get_max_ms = Math.max(summary.get_max_ms, ms);
            if (good) {
                summary.gets_ok++;
            }
            else {
                err(`GET ${n}: ${why} after ${ms} ms`);
            }
            resolve();
        };
        const req = http.get({ host: opt.host, port: opt.port, path: opt['get-path'],
                               agent: false, headers: { Connection: 'close' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; });
            res.on('end', () => {
                if (res.statusCode !== 200) {
                    end(false, `status ${res.statusCode}`);
                }
                else if (!/websession test page/.test(body)) {
                    end(false, 'not the test page');
                }
                else {
                    end(true);
                }
            });
            res.on('error', (e) => end(false, e.message));
        });
        req.setTimeout(opt['get-timeout'] * 1000, () => {
            end(false, `no answer within ${opt['get-timeout']} s`);
            req.destroy();
        });
        req.on('error', (e) => end(false, e.message));
    });
}

async function getAll() {
    const t = Date.now();
    for (let n = 0; n < opt.gets; n++) {
        await getOnce(n);
    }
    summary.ms.gets = Date.now() - t;
}

async function closeAll() {
    summary.phase = 'close';
    const t = Date.now();
    for (const s of sessions) {
        s.closing = true;
        s.ws.close(1000, 'test done');
    }
    await within(opt.timeout * 1000, 'the close handshakes', Promise.all(sessions.map(async (s) => {
        const code = await s.closed;
        summary.closed++;
        summary.close_codes[String(code)] = (summary.close_codes[String(code)] || 0) + 1;
    })));
    summary.ms.close = Date.now() - t;
}

(async () => {
    try {
        await openAll();
        if (summary.opened === opt.sessions) {
            summary.phase = 'echo+get';
            await Promise.all([echoAll(), getAll()]);
            summary.open_after_echo = sessions.filter(
                (s) => s.ws.readyState === WebSocket.OPEN).length;
        }
        else {
            err(`only ${summary.opened} of ${opt.sessions} sessions opened; echo and GETs not tried`);
        }
    }
    catch (e) {
        err(`phase ${summary.phase}: ${e.message}`);
    }
    try {
        await closeAll();
    }
    catch (e) {
        err(`phase ${summary.phase}: ${e.message}`);
        for (const s of sessions) {
            s.ws.terminate();
        }
    }
    summary.phase = 'done';
    finish();
})();
