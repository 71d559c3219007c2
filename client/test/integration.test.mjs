// websession.js against a real mod_websession, with Node's ws (Debian's
// node-ws) as the WebSocket. Skipped unless WEBSESSION_TEST_URL names the
// count script, e.g.
//   cd /work/main && make && APACHE_TEST_PORT=9900 t/TEST -start-httpd -port 9900
//   WEBSESSION_TEST_URL=ws://127.0.0.1:9900/ws/count node --test client/test/
//   t/TEST -stop-httpd

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import WebSession from '../websession.mjs';

const URL_ = process.env.WEBSESSION_TEST_URL;
const skip = URL_ ? false : 'WEBSESSION_TEST_URL is not set';
const WS_MODULE = process.env.WEBSESSION_TEST_WS || '/usr/share/nodejs/ws';
// WEBSESSION_TEST_INSECURE=1: accept the test server's self-signed certificate
// (wss://127.0.0.1:9902/ws/count with Apache::Test's websession_ssl vhost).
const INSECURE = !!process.env.WEBSESSION_TEST_INSECURE;
const wsOptions = INSECURE ? { webSocketOptions: { rejectUnauthorized: false } } : {};

/** node-ws, with every socket it makes remembered so a test can cut it. */
function trackedWebSocket() {
    const Base = createRequire(import.meta.url)(WS_MODULE);
    const sockets = [];
    const stats = { dataFrames: 0 };
    class Tracked extends Base {
        constructor(...args) {
            super(...args);
            sockets.push(this);
        }

        send(data, ...rest) {
            if (typeof data === 'string' ? data[0] === 'D' : data[0] === 0x44) stats.dataFrames++;
            return super.send(data, ...rest);
        }
    }
    return { Tracked, sockets, stats };
}

/** Cuts the live connection without a close frame, as a network would. */
function cut(sockets) {
    const ws = sockets.at(-1);
    if (ws && ws._socket) {
        ws._socket.destroy();
        return true;
    }
    return false;
}

function closed(s) {
    return new Promise((resolve) => s.addEventListener('close', resolve, { once: true }));
}

test('real server: 500 messages across cut connections, every reply once and in order',
     { skip, timeout: 60000 }, async (t) => {
    const { Tracked, sockets, stats } = trackedWebSocket();
    const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked, minBackoff: 10, maxBackoff: 200 });
    t.after(() => s.close());
    const replies = [];
    let live = false;               // resumed, and not cut since
    let cuts = 0;
    let resumed = 0;
    const cutIfLive = () => {
        if (live && cut(sockets)) {
            live = false;
            cuts++;
        }
    };
    s.onreconnecting = () => { live = false; };
    s.onresumed = () => { live = true; resumed++; };
    const done = new Promise((resolve, reject) => {
        s.onmessage = (e) => {
            replies.push(e.data);
            if (replies.length % 50 === 0 && replies.length < 500) cutIfLive();        // cut while replies flow
            if (replies.length === 500) resolve();
        };
        s.onclose = (e) => reject(new Error(`closed early: ${e.code} ${e.reason}`));
    });
    await new Promise((resolve) => { s.onopen = resolve; });
    live = true;
    for (let i = 1; i <= 500; i++) {
        s.send('m' + i);
        if (i % 50 === 25) {                                  // cut with sends in flight
            while (!live) await new Promise((r) => setTimeout(r, 5));
            cutIfLive();
        }
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await done;
    assert.equal(replies.length, 500);
    for (let i = 0; i < 500; i++) {
        assert.equal(replies[i], `${i + 1} m${i + 1}`, 'reply ' + (i + 1));
    }
    t.diagnostic(`${cuts} cuts, ${sockets.length} connections, ${resumed} resumes for one session;`
                 + ` ${stats.dataFrames} data frames written for 500 messages`);
    assert.ok(cuts >= 10, `${cuts} cuts`);
    assert.equal(resumed, cuts, 'every cut was resumed');
    assert.ok(sockets.length >= cuts + 1, 'a new connection for each cut');
    assert.equal(s.readyState, WebSession.OPEN);
    // No duplicate comes late either.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(replies.length, 500);
    s.onclose = null;
    const end = closed(s);
    s.close(1000, 'done');
    const ev = await end;
    assert.equal(ev.code, 1000);
    assert.equal(ev.wasClean, true);
});

test('real server: close() ends the script (a new session starts from 1)', { skip, timeout: 20000 }, async (t) => {
    const { Tracked } = trackedWebSocket();
    for (let round = 0; round < 2; round++) {
        const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked });
        t.after(() => s.close());
        const first = new Promise((resolve) => { s.onmessage = (e) => resolve(e.data); });
        s.send('hi');
        assert.equal(await first, '1 hi');
        const end = closed(s);
        s.close();
        assert.equal((await end).code, 1000);
    }
});

test('real server: not a persistent target: error, then close 1006 saying why',
     { skip: skip || (INSECURE ? 'fetch() cannot skip certificate checks' : false), timeout: 20000 }, async (t) => {
    const { Tracked } = trackedWebSocket();
    const base = new URL(URL_);
    const http = (path) => `${base.protocol === 'wss:' ? 'https' : 'http'}://${base.host}${path}`;
    for (const [path, expected] of [
        ['/off/echo', /not a persistent WebSession script: .* answers HTTP 200/],
        ['/no/such/script', /not a persistent WebSession script: .* answers HTTP 404/],
    ]) {
        const s = new WebSession(http(path), { ...wsOptions, WebSocket: Tracked, minBackoff: 10, maxBackoff: 20 });
        t.after(() => s.close());
        const events = [];
        s.onopen = () => events.push('open');
        s.onerror = () => events.push('error');
        const ev = await closed(s);
        assert.deepEqual(events, ['error'], path);
        assert.equal(ev.code, 1006);
        assert.equal(ev.wasClean, false);
        assert.match(ev.reason, expected);
    }
});

test('real server: a session that expired while away is reported lost, never replaced',
     { skip: skip || (process.env.WEBSESSION_TEST_SLOW ? false : 'set WEBSESSION_TEST_SLOW=1 (waits past WebSessionResumeTimeout 5 s)'),
       timeout: 30000 }, async (t) => {
    const { Tracked, sockets } = trackedWebSocket();
    // The test configuration resumes within 5 s: come back after 6.
    const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked, minBackoff: 6000, maxBackoff: 6000 });
    t.after(() => s.close());
    await new Promise((resolve) => { s.onopen = resolve; });
    const lost = new Promise((resolve) => { s.onsessionlost = (e) => resolve(e.detail); });
    cut(sockets);
    const ev = await closed(s);
    assert.deepEqual(await lost, { code: 4410, reason: 'session unknown or expired' });
    assert.equal(ev.code, 4410);
});

test('no server at all: error, then close 1006 that says the server is unreachable',
     { skip: haveWs() ? false : 'no node-ws at ' + WS_MODULE, timeout: 20000 }, async (t) => {
    const { Tracked, sockets } = trackedWebSocket();
    // A port nothing listens on: every connection is refused at once.
    const port = await freePort();
    const s = new WebSession(`http://127.0.0.1:${port}/ws/count`,
                             { WebSocket: Tracked, minBackoff: 10, maxBackoff: 20 });
    t.after(() => s.close());
    const events = [];
    s.onerror = () => events.push('error');
    const ev = await closed(s);
    assert.deepEqual(events, ['error']);
    assert.equal(sockets.length, 3, 'the first attempt and two retries');
    assert.equal(ev.code, 1006);
    assert.match(ev.reason, /plain HTTP request to http:\/\/127\.0\.0\.1:\d+\/ws\/count failed too/);
});

function haveWs() {
    try {
        createRequire(import.meta.url).resolve(WS_MODULE);
        return true;
    } catch (e) {
        return false;
    }
}

/** A local port that was free a moment ago. */
async function freePort() {
    const net = await import('node:net');
    return new Promise((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}
