// websession.js against a real mod_websession, with Node's ws (Debian's
// node-ws) as the WebSocket and Node's fetch for the HTTP fallback
// transports. Skipped unless WEBSESSION_TEST_URL names the count script, e.g.
//   make && APACHE_TEST_PORT=9900 t/TEST -start-httpd -port 9900
//   WEBSESSION_TEST_URL=ws://127.0.0.1:9900/ws/count node --test client/test/
//   t/TEST -stop-httpd

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import WebSession from '../websession.mjs';

const URL_ = process.env.WEBSESSION_TEST_URL;
const skip = URL_ ? false : 'WEBSESSION_TEST_URL is not set';
const WS_MODULE = process.env.WEBSESSION_TEST_WS || '/usr/share/nodejs/ws';
// WEBSESSION_TEST_INSECURE=1: accept the test server's self-signed certificate
// (wss://127.0.0.1:9902/ws/count with Apache::Test's websession_ssl vhost).
const INSECURE = !!process.env.WEBSESSION_TEST_INSECURE;
const wsOptions = INSECURE ? { webSocketOptions: { rejectUnauthorized: false } } : {};
// Node's fetch cannot be told to skip certificate checks: over TLS the tests
// that use fetch need the test certificate trusted, with
// NODE_EXTRA_CA_CERTS=t/logs/ssl/server.crt.
const httpSkip = skip || (INSECURE && !process.env.NODE_EXTRA_CA_CERTS
    ? 'fetch() cannot skip certificate checks (set NODE_EXTRA_CA_CERTS)' : false);
// demo/cutproxy.mjs speaks plain HTTP to the test server.
const proxySkip = httpSkip || (URL_ && URL_.startsWith('wss:') ? 'the proxy tests need a ws:// server' : false);
const TRANSPORTS = ['websocket', 'sse', 'poll'];
const skipFor = (transport) => (transport === 'websocket' ? skip : httpSkip);

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

/**
 * Node's fetch, with every request remembered so that a test can cut it:
 * its abort breaks the request or its response body as a network failure
 * would (the transport did not ask for it). A POST counts as over once its
 * (short) answer is read.
 */
function trackedFetch() {
    const requests = [];
    const tracked = async (url, init = {}) => {
        const ac = new AbortController();
        if (init.signal) {
            init.signal.addEventListener('abort', () => ac.abort(init.signal.reason), { once: true });
        }
        const entry = { method: init.method || 'GET', ac, cut: false, over: false, heldBack: false };
        requests.push(entry);
        const res = await fetch(url, { ...init, signal: ac.signal });
        if (entry.method !== 'POST') {
            return res;
        }
        const body = await res.text();
        entry.over = true;
        // The server took fewer of its D records than it carried.
        const first = Number(init.headers['WebSession-Sequence']);
        entry.heldBack = res.status === 200 && Number(body.slice(1)) < first + dataRecords(init.body) - 1;
        return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    };
    return { fetch: tracked, requests };
}

/** How many records of a POST body carry data (D). */
function dataRecords(body) {
    let n = 0;
    for (let at = 0; at < body.length;) {
        const nl = body.indexOf(0x0a, at);
        const len = Number(Buffer.from(body.subarray(at + 2, nl)).toString());
        if (body[nl + 1] === 0x44) n++;
        at = nl + 1 + len + 1;
    }
    return n;
}

/** Cuts the latest request of that method, unless it is over or cut already. */
function cutRequest(requests, method) {
    const r = requests.findLast((e) => e.method === method);
    if (!r || r.cut || r.over || r.ac.signal.aborted) {
        return false;
    }
    r.cut = true;
    r.ac.abort(new TypeError('cut by the test'));
    return true;
}

/** The http:// URL of a path on the test server. */
function httpUrl(path) {
    const base = new URL(URL_);
    return `${base.protocol === 'wss:' ? 'https' : 'http'}://${base.host}${path}`;
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

for (const transport of TRANSPORTS) {
    test(`real server, ${transport}: 500 messages across cut connections, every reply once and in order`,
         { skip: skipFor(transport), timeout: 60000 }, async (t) => {
        const { Tracked, sockets, stats } = trackedWebSocket();
        const { fetch, requests } = trackedFetch();
        const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked, fetch, transport,
                                         minBackoff: 10, maxBackoff: 200 });
        t.after(() => s.close());
        assert.equal(s.transport, transport);
        const replies = [];
        let live = false;               // resumed, and not cut since
        let cuts = 0;
        let postCuts = 0;
        let resumed = 0;
        let reconnecting = 0;
        // A cut: the socket (websocket), or the down request (sse: the
        // session resumes on a new stream; poll: the transport polls again,
        // and is live again once a poll has brought something).
        const cutIfLive = () => {
            if (live && (transport === 'websocket' ? cut(sockets) : cutRequest(requests, 'GET'))) {
                live = false;
                cuts++;
            }
        };
        s.onreconnecting = () => { live = false; reconnecting++; };
        s.onresumed = () => { live = true; resumed++; };
        const done = new Promise((resolve, reject) => {
            s.onmessage = (e) => {
                replies.push(e.data);
                if (transport === 'poll') live = true;
                if (replies.length % 50 === 0 && replies.length < 500) cutIfLive();    // cut while replies flow
                if (replies.length === 500) resolve();
            };
            s.onclose = (e) => reject(new Error(`closed early: ${e.code} ${e.reason}`));
        });
        await new Promise((resolve) => { s.onopen = resolve; });
        live = true;
        for (let i = 1; i <= 500; i++) {
            const cutPost = transport !== 'websocket' && i % 25 === 10;
            while (cutPost && !live) await new Promise((r) => setTimeout(r, 5));
            s.send('m' + i);
            if (cutPost) {
                await null;                                       // the transport's POST starts
                if (cutRequest(requests, 'POST')) postCuts++;     // an upload lost on its way
            }
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
        const conns = transport === 'websocket' ? sockets.length
            : requests.filter((r) => r.method === 'GET').length;
        t.diagnostic(`${cuts} cuts, ${transport === 'websocket' ? '' : postCuts + ' POSTs cut, '}`
                     + `${conns} connections or polls, ${resumed} resumes`
                     + ` for one session; ${transport === 'websocket' ? stats.dataFrames + ' data frames'
                         : requests.length - conns + ' POSTs'} for 500 messages`);
        assert.ok(cuts >= 10, `${cuts} cuts`);
        if (transport !== 'websocket') {
            assert.ok(postCuts >= 5, `${postCuts} POSTs cut`);
        }
        if (transport === 'poll') {
            assert.equal(reconnecting, 0, 'a cut poll is repeated within the connection');
        } else {
            assert.equal(resumed, cuts, 'every cut was resumed');
        }
        assert.ok(conns >= cuts + 1, 'a new connection or poll for each cut');
        assert.equal(s.transport, transport);
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
}

for (const transport of TRANSPORTS) {
    test(`real server, ${transport}: close() ends the script (a new session starts from 1)`,
         { skip: skipFor(transport), timeout: 20000 }, async (t) => {
        const { Tracked } = trackedWebSocket();
        for (let round = 0; round < 2; round++) {
            const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked, transport });
            t.after(() => s.close());
            const first = new Promise((resolve) => { s.onmessage = (e) => resolve(e.data); });
            s.send('hi');
            assert.equal(await first, '1 hi');
            const end = closed(s);
            s.close(4321, 'goodbye');
            const ev = await end;
            assert.equal(ev.code, 4321, 'the server echoes the code');
            assert.equal(ev.wasClean, true);
        }
    });
}

for (const transport of ['auto', ...TRANSPORTS]) {
    test(`real server, ${transport}: not a persistent target: error, then close 1006 saying why`,
         { skip: httpSkip, timeout: 20000 }, async (t) => {
        const { Tracked, sockets } = trackedWebSocket();
        const { fetch, requests } = trackedFetch();
        for (const [path, expected] of [
            ['/off/echo', /not a persistent WebSession script: .* answers HTTP 200/],
            ['/no/such/script', /not a persistent WebSession script: .* answers HTTP 404/],
        ]) {
            const s = new WebSession(httpUrl(path), { ...wsOptions, WebSocket: Tracked, fetch, transport,
                                                      minBackoff: 10, maxBackoff: 20 });
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
        const downs = requests.filter((r) => r.method === 'GET').length;
        if (transport === 'websocket') {
            assert.equal(sockets.length, 6, 'three WebSocket attempts for each');
        } else {
            // The first fallback request's answer is definitive: no retry.
            assert.equal(downs, 2, 'one down request for each');
            assert.equal(sockets.length, transport === 'auto' ? 2 : 0);
        }
    });
}

for (const transport of TRANSPORTS) {
    test(`real server, ${transport}: a session that expired while away is reported lost, never replaced`,
         { skip: skipFor(transport) || (process.env.WEBSESSION_TEST_SLOW ? false
             : 'set WEBSESSION_TEST_SLOW=1 (waits past WebSessionResumeTimeout 5 s)'),
           timeout: 30000 }, async (t) => {
        const { Tracked, sockets } = trackedWebSocket();
        const { fetch, requests } = trackedFetch();
        // The test configuration resumes within 5 s: come back after 6.
        const s = new WebSession(URL_, { ...wsOptions, WebSocket: Tracked, fetch, transport,
                                         minBackoff: 6000, maxBackoff: 6000 });
        t.after(() => s.close());
        await new Promise((resolve) => { s.onopen = resolve; });
        const lost = new Promise((resolve) => { s.onsessionlost = (e) => resolve(e.detail); });
        assert.ok(transport === 'websocket' ? cut(sockets) : cutRequest(requests, 'GET'));
        const ev = await closed(s);
        const detail = await lost;
        assert.equal(detail.code, 4410);
        assert.match(detail.reason, transport === 'websocket' ? /^session unknown or expired$/ : /unknown, expired/);
        assert.equal(ev.code, 4410);
    });
}

test('no server at all (auto): error, then close 1006 that says the server is unreachable',
     { skip: haveWs() ? false : 'no node-ws at ' + WS_MODULE, timeout: 20000 }, async (t) => {
    const { Tracked, sockets } = trackedWebSocket();
    // A port nothing listens on: every connection is refused at once.
    const port = await freePort();
    const s = new WebSession(`http://127.0.0.1:${port}/ws/count`,
                             { WebSocket: Tracked, minBackoff: 10, maxBackoff: 20 });
    assert.equal(s.transport, 'websocket', 'auto starts with a WebSocket');
    t.after(() => s.close());
    const events = [];
    s.onerror = () => events.push('error');
    const ev = await closed(s);
    assert.deepEqual(events, ['error']);
    assert.equal(sockets.length, 3, 'the first round and two more, each websocket, sse, poll');
    assert.equal(ev.code, 1006);
    assert.match(ev.reason, /^the WebSocket, event stream and long poll connections failed, and a plain HTTP request to http:\/\/127\.0\.0\.1:\d+\/ws\/count failed too/);
});

for (const [mode, expected] of [[{ stripUpgrade: true }, 'sse'],
                                 [{ stripUpgrade: true, buffer: true }, 'poll']]) {
    test(`real server, auto: behind a proxy that ${mode.buffer ? 'strips the upgrade and buffers responses'
        : 'strips the upgrade'}, the session opens over ${expected} and stays there`,
         { skip: proxySkip, timeout: 30000 }, async (t) => {
        const { Tracked, sockets } = trackedWebSocket();
        const proxy = await startProxy(t, mode);
        const s = new WebSession(`http://127.0.0.1:${proxy.port}/ws/count`, {
            WebSocket: Tracked, minBackoff: 10, maxBackoff: 50, fallbackTimeout: 1000,
        });
        t.after(() => s.close());
        const replies = [];
        const got = (n) => new Promise((resolve) => {
            s.onmessage = (e) => { replies.push(e.data); if (replies.length === n) resolve(); };
        });
        let reply = got(20);
        await new Promise((resolve) => { s.onopen = resolve; });
        assert.equal(s.transport, expected);
        for (let i = 1; i <= 20; i++) s.send('m' + i);
        await reply;
        reply = got(40);
        await proxy.cut();                      // every connection, both sides
        for (let i = 21; i <= 40; i++) s.send('m' + i);
        await reply;
        assert.deepEqual(replies, Array.from({ length: 40 }, (_, i) => `${i + 1} m${i + 1}`));
        assert.equal(s.transport, expected);
        assert.equal(sockets.length, 1, 'the WebSocket was tried once, before the session opened');
        const end = closed(s);
        s.close();
        assert.equal((await end).code, 1000);
    });
}

for (const transport of TRANSPORTS) {
    test(`real server, ${transport}: 12 MB of binary messages through the server's flow control, exactly`,
         { skip: skipFor(transport), timeout: 60000 }, async (t) => {
        // /framed echoes with /bin/cat; its buffers (WebSessionBuffer, 1 MiB)
        // fill, so the server holds back some of what comes up, and the
        // client sends it again.
        const { Tracked } = trackedWebSocket();
        const { fetch, requests } = trackedFetch();
        const s = new WebSession(httpUrl('/framed'), { ...wsOptions, WebSocket: Tracked, fetch, transport });
        t.after(() => s.close());
        s.binaryType = 'arraybuffer';
        const N = 60;
        const SIZE = 200000;
        const echoed = [];
        const all = new Promise((resolve, reject) => {
            s.onmessage = (e) => {
                echoed.push(new Uint8Array(e.data));
                if (echoed.length === N) resolve();
            };
            s.onclose = (e) => reject(new Error(`closed early: ${e.code} ${e.reason}`));
        });
        const pattern = new Uint8Array(SIZE).map((_, k) => (k * 31) & 0xff);
        const message = (i) => {
            const m = pattern.slice();
            m[0] = i;
            m[SIZE - 1] = 255 - i;
            return m;
        };
        for (let i = 0; i < N; i++) s.send(message(i));
        await all;
        for (let i = 0; i < N; i++) {
            assert.ok(Buffer.from(echoed[i]).equals(Buffer.from(message(i))), 'the bytes of message ' + i);
        }
        for (let i = 0; i < 100 && s.bufferedAmount; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(s.bufferedAmount, 0, 'every message acknowledged');
        if (transport !== 'websocket') {
            const held = requests.filter((r) => r.heldBack).length;
            t.diagnostic(`${requests.filter((r) => r.method === 'POST').length} POSTs, ${held} not taken whole`);
            assert.ok(held > 0, 'the server held some back, and they were sent again');
        }
        s.onclose = null;
    });
}

for (const transport of ['sse', 'poll']) {
    test(`real server, ${transport}: text with CR and LF, Unicode and binary, both ways, exactly`,
         { skip: httpSkip, timeout: 20000 }, async (t) => {
        // /framed runs /bin/cat on framed records: it echoes every message.
        const s = new WebSession(httpUrl('/framed'), { transport });
        t.after(() => s.close());
        s.binaryType = 'arraybuffer';
        const sent = ['plain', 'two\nlines', 'cr\r\nlf', 'trailing\r', '', 'D', 'ünïcødé € 𝄞',
                      Uint8Array.from([0, 1, 2, 10, 13, 0x44, 255]), new Uint8Array(0),
                      new Uint8Array(70000).map((_, i) => i * 7)];
        const echoed = [];
        const all = new Promise((resolve) => {
            s.onmessage = (e) => {
                echoed.push(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
                if (echoed.length === sent.length) resolve();
            };
        });
        for (const m of sent) s.send(m);
        await all;
        assert.deepEqual(echoed, sent);
    });

    test(`real server, ${transport}: heartbeats keep an idle session on the same connection`,
         { skip: httpSkip, timeout: 20000 }, async (t) => {
        // /ping: WebSessionPing 1, so the server drops a client that says
        // nothing for 3 s; sse answers each P in a POST, poll polls.
        const s = new WebSession(httpUrl('/ping'), { transport, heartbeatTimeout: 3000 });
        t.after(() => s.close());
        const events = [];
        s.onreconnecting = () => events.push('reconnecting');
        await new Promise((resolve) => { s.onopen = resolve; });
        await new Promise((r) => setTimeout(r, 4500));
        const echo = new Promise((resolve) => { s.onmessage = (e) => resolve(e.data); });
        s.send('still here');
        assert.equal(await echo, 'still here');
        assert.deepEqual(events, [], 'no reconnection');
    });
}

/**
 * demo/cutproxy.mjs in front of the test server, as a child process: an
 * in-process proxy that resets sockets leaves Node 20 spinning at exit.
 * Resolves to { port, cut() } once it answers; killed after the test.
 */
async function startProxy(t, { stripUpgrade, buffer }) {
    const port = await freePort();
    const script = fileURLToPath(new URL('../../demo/cutproxy.mjs', import.meta.url));
    const args = [script, '--listen', `127.0.0.1:${port}`, '--target', `127.0.0.1:${new URL(URL_).port}`];
    if (stripUpgrade) args.push('--strip-upgrade');
    if (buffer) args.push('--buffer');
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    const control = (method, what) => fetch(`http://127.0.0.1:${port}/demo-control/${what}`, { method })
        .then((res) => res.json());
    for (let i = 0; ; i++) {
        try {
            await control('GET', 'status');
            break;
        } catch (e) {
            if (i === 100) throw new Error('demo/cutproxy.mjs did not start');
            await new Promise((r) => setTimeout(r, 50));
        }
    }
    return { port, cut: () => control('POST', 'cut') };
}

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
