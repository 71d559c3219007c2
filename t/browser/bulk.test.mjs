// Bulk transfers through the browser library in headless Chromium, the
// browser's side of t/45_keeper_limits.t's bulk checks: 300 x 32 KiB and
// 3,000 x 1 KiB through /bin/cat (/limits-cat, framed) over websocket, sse
// and poll, plain and TLS (the websession_ssl virtual host; its self-signed
// certificate is accepted with ignoreHTTPSErrors). The page (t/htdocs/
// browser/index.html, wsTests.bulk in tests.js) is loaded from the session's
// own origin, directly from Apache (no proxy), and hands every message to
// send() back to back. Every echo must be the next message sent, byte for
// byte, and the longest interval without one (the first counted from the
// first send) at most GAP_LIMIT_MS. Each case's figures are a diagnostic
// line "bulk ...", which t/60_browser.t shows as a note.
//
// By hand, with a test server running (t/TEST -start-httpd):
//   WEBSESSION_TEST_PORT=8529 WEBSESSION_TEST_TLS_PORT=8531 node --test t/browser/bulk.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { PORT, TLS_PORT, ARTIFACTS, SKIP, launchChromium } from './chromium.mjs';

const GAP_LIMIT_MS = 1000;     // the longest time without an echo
const STALL_MS = 3000;         // a run without an echo for this long is given up
const SHAPES = [{ name: '300 x 32 KiB', count: 300, size: 32768 },
                { name: '3,000 x 1 KiB', count: 3000, size: 1024 }];
const TRANSPORTS = ['websocket', 'sse', 'poll'];
const ORIGINS = [{ name: 'plain', scheme: 'http', port: PORT },
                 { name: 'TLS', scheme: 'https', port: TLS_PORT }];

let browser;
const pages = {};              // origin name -> its page
const consoleLines = [];

before(async () => {
    if (SKIP) {
        return;
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    await context.exposeFunction('serverState', serverState);
    for (const o of ORIGINS.filter((x) => x.port)) {
        const page = await context.newPage();
        page.on('console', (m) => consoleLines.push(`[bulk ${o.name}] ${m.type()}: ${m.text()}`));
        page.on('pageerror', (e) => consoleLines.push(`[bulk ${o.name}] PAGE ERROR: ${e && e.stack || e}`));
        await page.goto(`${o.scheme}://127.0.0.1:${o.port}/browser/index.html`);
        await page.waitForFunction(() => window.wsTestsReady, null, { timeout: 10000 });
        pages[o.name] = page;
    }
});

after(async () => {
    if (SKIP) {
        return;
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'console-bulk.log'), consoleLines.join('\n') + '\n');
    await browser?.close();
});

function sh(cmd, args) {
    try {
        return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000 }).trim().split('\n')
            .map((l) => l.replace(/\s+/g, ' '));
    } catch (e) {
        return [`${cmd} failed: ${e.message}`];
    }
}

/** Where a stalled session stands on the server's side: the TCP
 *  connections to the port (queues, processes); for each server process
 *  holding one (a keeper, or a worker relaying TLS), its unix sockets and
 *  its children (the script) with what they are blocked in. */
function serverState(port) {
    const tcp = sh('ss', ['-tnp', `( sport = :${port} )`]);
    const pids = new Set(tcp.flatMap((l) => [...l.matchAll(/"apache2",pid=(\d+)/g)].map((m) => m[1])));
    const unix = sh('ss', ['-xp']);
    const out = ['tcp: ' + tcp.join('; ')];
    for (const pid of pids) {
        out.push(`process ${pid} unix: ` + unix.filter((l) => l.includes(`pid=${pid},`) && /ESTAB/.test(l))
            .map((l) => l.split(' ').slice(0, 8).join(' ')).join('; '));
        for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
            try {
                const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
                const [state, ppid] = st.slice(st.lastIndexOf(')') + 2).split(' ');
                if (ppid === pid) {
                    const wchan = fs.readFileSync(`/proc/${d}/wchan`, 'utf8');
                    out.push(`child ${d} ${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}: `
                             + `state ${state} wchan ${wchan}`);
                }
            } catch (e) {
                // gone meanwhile
            }
        }
    }
    return out.join(' | ');
}

const only = (events, type) => events.filter((e) => e.type === type);
const secs = (ms) => (ms / 1000).toFixed(2);

for (const o of ORIGINS) {
    for (const transport of TRANSPORTS) {
        for (const shape of SHAPES) {
            const name = `bulk ${shape.name}, ${transport}, ${o.name}`;
            const skip = SKIP || (!o.port && 'no TLS virtual host (WEBSESSION_TEST_TLS_PORT is not set)');
            test(`${name}: every message back, in order, no gap over ${GAP_LIMIT_MS} ms`,
                 { skip, timeout: 90000 }, async (t) => {
                const page = pages[o.name];
                const r = await page.evaluate((a) => window.wsTests.bulk(a),
                                              { transport, count: shape.count, size: shape.size,
                                                stallMs: STALL_MS });
                assert.equal(r.failed, undefined, JSON.stringify(r));
                const mb = r.got * shape.size / 1e6;
                const figures = `${name}: ${r.got}/${r.count} back in ${secs(r.totalMs)} s `
                    + `(${(mb / (r.totalMs / 1000)).toFixed(1)} MB/s; all sent in ${secs(r.sendMs)} s); `
                    + `longest gap ${secs(r.maxGapMs)} s, before message ${r.gapBefore + 1} `
                    + `(first after ${r.firstMs === null ? '-' : secs(r.firstMs)} s)`;
                t.diagnostic(figures);
                const where = r.stalled ? `; stalled, server side: ${r.server}` : '';
                const what = `${figures}${where}; events ${JSON.stringify(r.events)}`;
                assert.equal(r.transport, transport, `the session used ${transport}`);
                assert.match(r.url, new RegExp(`^${o.scheme === 'https' ? 'wss' : 'ws'}://127\\.0\\.0\\.1:${o.port}/`));
                assert.equal(r.bad, null, `an echo differs from the message sent: ${JSON.stringify(r.bad)}; ${what}`);
                assert.equal(r.got, shape.count, `every echo arrived: ${what}`);
                assert.equal(r.extra, 0, `no message after the last one: ${what}`);
                assert.ok(r.maxGapMs <= GAP_LIMIT_MS, `longest gap over ${GAP_LIMIT_MS} ms: ${what}`);
                assert.deepEqual([r.before.closeEvents, r.before.readyState, r.before.bufferedAmount], [0, 1, 0],
                                 `open to the end, everything sent acknowledged: ${what}`);
                assert.equal(only(r.events, 'error').length, 0, `no error: ${what}`);
                assert.equal(only(r.events, 'reconnecting').length, 0, `no connection lost: ${what}`);
                const close = only(r.events, 'close');
                assert.deepEqual(close.map((c) => [c.code, c.wasClean]), [[1000, true]],
                                 `the page's close ends the session, cat exits 0: ${what}`);
            });
        }
    }
}
