// Unit tests of websession.js against a fake WebSocket (no browser, no
// server): run with `node --test client/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSession, makeFakeWebSocket, FakeServer, recordEvents, settle } from './fake.mjs';
import { ID, setup, handshake } from './helpers.mjs';


// ---- URLs and construction ----------------------------------------------------

test('URLs: http(s) becomes ws(s), ws(s) stays, the fragment goes', () => {
    const WS = makeFakeWebSocket();
    const url = (u) => {
        const s = new WebSession(u, { WebSocket: WS });
        s.close();                  // nothing to say goodbye to: CLOSED at once
        assert.equal(s.readyState, WebSession.CLOSED);
        return s.url;
    };
    assert.equal(url('http://h:81/ws/count?x=1#frag'), 'ws://h:81/ws/count?x=1');
    assert.equal(url('https://h/a'), 'wss://h/a');
    assert.equal(url('ws://h/a'), 'ws://h/a');
    assert.equal(url('wss://h/a'), 'wss://h/a');
    assert.equal(WS.instances[0].url, 'ws://h:81/ws/count?x=1', 'the socket gets the ws URL');
    assert.throws(() => url('ftp://h/a'), { name: 'SyntaxError' });
    assert.throws(() => url('/relative/without/location'), { name: 'SyntaxError' });
});

test('URLs: relative ones resolve against location.href', () => {
    const WS = makeFakeWebSocket();
    globalThis.location = { href: 'https://site.example/app/page.html' };
    try {
        for (const [rel, abs] of [['/ws/count', 'wss://site.example/ws/count'],
                                  ['sub/x', 'wss://site.example/app/sub/x']]) {
            const s = new WebSession(rel, { WebSocket: WS });
            s.close();
            assert.equal(s.url, abs);
        }
    } finally {
        delete globalThis.location;
    }
});

test('construction: no WebSocket implementation, unknown transport', () => {
    assert.equal(typeof globalThis.WebSocket, 'undefined', 'node 20 has no global WebSocket');
    assert.throws(() => new WebSession('ws://h/a', { transport: 'websocket' }), TypeError);
    assert.throws(() => new WebSession('ws://h/a', { WebSocket: makeFakeWebSocket(), transport: 'carrier-pigeon' }),
                  TypeError);
    assert.throws(() => new WebSession('ws://h/a', { transport: 'toString' }), TypeError);
    const saved = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
        assert.throws(() => new WebSession('ws://h/a'), /neither WebSocket nor fetch/);
    } finally {
        globalThis.fetch = saved;
    }
});

test('constants like WebSocket', () => {
    assert.deepEqual([WebSession.CONNECTING, WebSession.OPEN, WebSession.CLOSING, WebSession.CLOSED], [0, 1, 2, 3]);
    assert.equal(WebSession.prototype.OPEN, 1);
});

// ---- the handshake --------------------------------------------------------------

test('handshake: offers websession.v1, sends R0 at once, OPEN on the first R', (t) => {
    const { s, WS, log } = setup(t);
    const ws = WS.last();
    assert.deepEqual(ws.protocols, ['websession.v1']);
    assert.equal(ws.binaryType, 'arraybuffer', 'binary frames are read synchronously');
    assert.equal(s.readyState, WebSession.CONNECTING);
    ws.accept();
    assert.deepEqual(ws.sent, ['R0'], 'R right after the 101');
    ws.deliver('I' + ID);
    assert.equal(s.readyState, WebSession.CONNECTING, 'still connecting before R');
    assert.equal(s.protocol, '');
    ws.deliver('R0 1048576');
    assert.equal(s.readyState, WebSession.OPEN);
    assert.equal(s.protocol, 'websession.v1');
    assert.deepEqual(log, ['open']);
});

test('handshake: sends before open wait for the R and keep their order', (t) => {
    const { s, WS, server } = setup(t);
    s.send('one');
    s.send('two');
    assert.equal(s.bufferedAmount, 6);
    WS.last().accept();
    assert.deepEqual(WS.last().sent, ['R0'], 'no data before our R, nor before the server\'s');
    WS.last().deliver('I' + ID);
    WS.last().deliver('R0 100');
    assert.deepEqual(WS.last().sent, ['R0', 'Done', 'Dtwo']);
    assert.equal(s.readyState, WebSession.OPEN);
    server.ws = WS.last();
});

test('handshake: a resume offers the id as a second subprotocol and states its count', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    server.send('a');
    server.send('b');
    WS.last().drop();
    t.mock.timers.tick(10000);
    const ws2 = WS.last();
    assert.notEqual(ws2, WS.instances[0]);
    assert.deepEqual(ws2.protocols, ['websession.v1', 'websession.id.' + ID]);
    ws2.accept();
    assert.deepEqual(ws2.sent, ['R2']);
    assert.equal(s.readyState, WebSession.OPEN);
});

test('handshake: a server that selects another subprotocol ends the session', (t) => {
    const { s, WS, log } = setup(t);
    WS.last().accept('chat');
    assert.equal(s.readyState, WebSession.CLOSED);
    assert.deepEqual(log, ['error', 'close:1002']);
    assert.ok(WS.last().closedWith, 'the socket is closed');
});

// ---- receiving and acknowledging ------------------------------------------------

test('messages: D strips the type byte; P is answered with A at once', (t) => {
    const { s, WS, server, log } = setup(t);
    const got = [];
    s.onmessage = (e) => got.push(e.data);
    handshake(server);
    const ws = WS.last();
    ws.deliver('Dhello');
    ws.deliver('D');
    ws.deliver('DD is data too');
    assert.deepEqual(got, ['hello', '', 'D is data too']);
    ws.deliver('P');
    assert.equal(ws.sent.at(-1), 'A3', 'heartbeat answered with the count');
    assert.deepEqual(log, ['open', 'message:hello', 'message:', 'message:D is data too']);
});

test('acks: within 20 ms, or at once after 16 messages', (t) => {
    const { WS, server } = setup(t);
    handshake(server);
    const ws = WS.last();
    const acks = () => ws.texts().filter((m) => m[0] === 'A');
    for (let i = 1; i <= 15; i++) ws.deliver('Dm' + i);
    assert.deepEqual(acks(), []);
    t.mock.timers.tick(19);
    assert.deepEqual(acks(), [], 'not before 20 ms');
    t.mock.timers.tick(1);
    assert.deepEqual(acks(), ['A15'], 'at 20 ms');
    for (let i = 16; i <= 31; i++) ws.deliver('Dm' + i);
    assert.deepEqual(acks(), ['A15', 'A31'], 'the 16th since the last ack: at once');
    t.mock.timers.tick(100);
    assert.deepEqual(acks(), ['A15', 'A31'], 'nothing more to acknowledge');
    ws.deliver('Dm32');
    t.mock.timers.tick(20);
    assert.deepEqual(acks(), ['A15', 'A31', 'A32']);
});

test('acks: the server\'s A drops acknowledged messages from bufferedAmount', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    s.send('12345');
    s.send('€');             // 3 bytes of UTF-8
    assert.equal(s.bufferedAmount, 8);
    server.read();
    WS.last().deliver('A1');
    assert.equal(s.bufferedAmount, 3);
    WS.last().deliver('A2');
    assert.equal(s.bufferedAmount, 0);
});

// ---- resending --------------------------------------------------------------------

test('resend: exactly from the server\'s R count, in both directions', (t) => {
    const { s, WS, server } = setup(t);
    const got = [];
    s.onmessage = (e) => got.push(e.data);
    handshake(server);
    for (let i = 1; i <= 5; i++) s.send('c' + i);
    server.read(3);                 // c4 and c5 are still in flight ...
    server.ack();                   // A3
    server.send('s1');
    server.send('s2');
    server.sentLog.push('s3');      // ... and s3 never reaches the client
    WS.last().drop();
    assert.equal(s.readyState, WebSession.OPEN, 'invisible');
    assert.equal(s.bufferedAmount, 4, 'c4 and c5 still unacknowledged');
    t.mock.timers.tick(10000);
    server.attach();                // R3
    const ws2 = WS.last();
    assert.deepEqual(ws2.sent, ['R2', 'Dc4', 'Dc5'], 'only what the server lacks');
    server.read();                  // R2: the server resends s3
    assert.deepEqual(server.received, ['c1', 'c2', 'c3', 'c4', 'c5']);
    assert.deepEqual(got, ['s1', 's2', 's3']);
});

test('resend: an R that covers unacknowledged messages drops them without resending', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    s.send('a');
    s.send('b');
    server.read();                  // received both, acknowledged neither
    WS.last().drop();
    t.mock.timers.tick(10000);
    server.attach();                // R2
    assert.deepEqual(WS.last().sent, ['R0']);
    assert.equal(s.bufferedAmount, 0);
    assert.deepEqual(server.received, ['a', 'b']);
});

test('resend: random drops, everything exactly once and in order (both ways)', (t) => {
    const rng = mulberry32(42);
    const { s, WS, server } = setup(t, { random: rng });
    const got = [];
    s.onmessage = (e) => got.push(e.data);
    handshake(server);
    let c = 0;
    let d = 0;
    for (let round = 0; round < 200; round++) {
        const n = Math.floor(rng() * 6);
        for (let i = 0; i < n; i++) s.send('c' + ++c);
        for (let i = 0; i < Math.floor(rng() * 6); i++) server.send('s' + ++d);
        server.read(Math.floor(rng() * 8));
        if (rng() < 0.3) server.ack();
        t.mock.timers.tick(Math.floor(rng() * 30));
        if (rng() < 0.2) {
            // Lose a random part of what the server wrote, then the connection.
            WS.last().drop();
            t.mock.timers.tick(1000);
            server.attach();
            server.read();
        }
    }
    server.read();
    assert.equal(s.readyState, WebSession.OPEN);
    assert.deepEqual(server.received, Array.from({ length: c }, (_, i) => 'c' + (i + 1)));
    assert.deepEqual(got, Array.from({ length: d }, (_, i) => 's' + (i + 1)));
});

// ---- flow control -----------------------------------------------------------------

test('window: sends wait while the unacknowledged bytes reach it, then go', (t) => {
    const { s, WS, server } = setup(t, { window: 10 });
    handshake(server);
    const ws = WS.last();
    for (let i = 0; i < 5; i++) s.send('aaaa');
    assert.equal(ws.data().length, 3, '0, 4, 8 bytes out: room; 12: hold');
    assert.equal(s.bufferedAmount, 20, 'held messages count too');
    server.read();
    ws.deliver('A1');
    assert.equal(ws.data().length, 4, '8 bytes unacknowledged: one more');
    ws.deliver('A3');
    assert.equal(ws.data().length, 5);
    assert.equal(s.bufferedAmount, 8);
    ws.deliver('A5');
    assert.equal(s.bufferedAmount, 0);
});

test('window: held messages survive a lost connection and keep their order', (t) => {
    const { s, WS, server } = setup(t, { window: 4 });
    handshake(server);
    for (const m of ['aaaa', 'bbbb', 'cccc']) s.send(m);
    assert.deepEqual(WS.last().data(), ['aaaa']);
    WS.last().drop();
    t.mock.timers.tick(1000);
    server.attach();
    server.read();
    assert.deepEqual(server.received, ['aaaa']);
    server.ack();
    server.read();
    server.ack();
    server.read();
    assert.deepEqual(server.received, ['aaaa', 'bbbb', 'cccc']);
});

// ---- reconnection -----------------------------------------------------------------

test('backoff: grows exponentially from minBackoff, capped by maxBackoff, jittered', (t) => {
    for (const r of [0, 0.5, 0.999]) {
        for (let attempt = 1; attempt <= 12; attempt++) {
            const d = WebSession._internal.backoffDelay(attempt, 100, 10000, () => r);
            const ceiling = Math.min(10000, 100 * 2 ** attempt);
            assert.ok(d >= 100 && d <= ceiling, `attempt ${attempt}: ${d} within [100, ${ceiling}]`);
            assert.equal(d, 100 + r * (ceiling - 100));
        }
    }
});

test('backoff: reconnecting events with growing delays, no attempt before the delay', (t) => {
    const { s, WS, server } = setup(t, { random: () => 1, minBackoff: 100, maxBackoff: 1000 });
    const delays = [];
    s.onreconnecting = (e) => delays.push([e.detail, e.delay]);
    handshake(server);
    for (let i = 0; i < 6; i++) {
        const before = WS.instances.length;
        WS.last().drop();
        const expected = Math.min(1000, 100 * 2 ** (i + 1));
        t.mock.timers.tick(expected - 1);
        assert.equal(WS.instances.length, before, 'not yet');
        t.mock.timers.tick(1);
        assert.equal(WS.instances.length, before + 1, 'attempt ' + (i + 1));
    }
    assert.deepEqual(delays, [[1, 200], [2, 400], [3, 800], [4, 1000], [5, 1000], [6, 1000]]);
    server.attach();
    WS.last().drop();
    assert.deepEqual(delays.at(-1), [1, 200], 'a resume resets the backoff');
});

test('reconnection: resumed after the new R, with the attempts it took', (t) => {
    const { s, WS, server, log } = setup(t);
    let resumed = null;
    s.onresumed = (e) => { resumed = e.detail; };
    handshake(server);
    WS.last().drop();
    t.mock.timers.tick(10000);
    WS.last().drop();               // the first attempt fails too
    t.mock.timers.tick(10000);
    WS.last().accept();
    assert.equal(resumed, null, 'not before the R');
    WS.last().deliver('R0 1048576');
    assert.equal(resumed, 2);
    assert.deepEqual(log, ['open', 'reconnecting', 'reconnecting', 'resumed']);
});

test('heartbeat: silence for heartbeatTimeout means dead: resume on a new connection', (t) => {
    const { s, WS, server, log } = setup(t, { heartbeatTimeout: 90000 });
    handshake(server);
    const ws1 = WS.last();
    t.mock.timers.tick(60000);
    ws1.deliver('P');               // anything from the server restarts the clock
    t.mock.timers.tick(89999);
    assert.deepEqual(log, ['open']);
    t.mock.timers.tick(1);
    assert.deepEqual(log, ['open', 'reconnecting']);
    assert.deepEqual(ws1.closedWith, [4100, 'connection abandoned'],
                     'closed with 4100: this connection only, the session goes on');
    ws1.deliver('Dlate');           // the abandoned socket is ignored
    t.mock.timers.tick(10000);
    server.attach();
    assert.deepEqual(log, ['open', 'reconnecting', 'resumed']);
    assert.equal(s.readyState, WebSession.OPEN);
});

test('connect timeout: an attempt that never opens is abandoned and retried', (t) => {
    const { WS, log } = setup(t, { connectTimeout: 5000 });
    t.mock.timers.tick(4999);
    assert.equal(WS.instances.length, 1);
    t.mock.timers.tick(1);
    assert.deepEqual(WS.instances[0].closedWith, [undefined, undefined], 'a connecting socket is failed');
    t.mock.timers.tick(10000);
    assert.equal(WS.instances.length, 2);
    assert.deepEqual(log, [], 'no reconnecting events before open');
});

// ---- the end of a session ---------------------------------------------------------

test('end: 4410 on resume fires sessionlost, error, close; no new session', async (t) => {
    const { s, WS, server, log } = setup(t);
    let lost = null;
    let closeEv = null;
    s.onsessionlost = (e) => { lost = e.detail; };
    s.onclose = (e) => { closeEv = e; };
    handshake(server);
    WS.last().drop();
    t.mock.timers.tick(10000);
    WS.last().accept();
    WS.last().serverClose(4410, 'session unknown or expired');
    assert.deepEqual(log, ['open', 'reconnecting', 'sessionlost', 'error', 'close:4410']);
    assert.deepEqual(lost, { code: 4410, reason: 'session unknown or expired' });
    assert.equal(closeEv.code, 4410);
    assert.equal(closeEv.reason, 'session unknown or expired');
    assert.equal(closeEv.wasClean, true);
    assert.equal(s.readyState, WebSession.CLOSED);
    const n = WS.instances.length;
    t.mock.timers.tick(60000);
    assert.equal(WS.instances.length, n, 'never reconnects');
});

test('end: 4409 and 4400 are session losses too; 1000 and 4003 are plain ends', (t) => {
    for (const [code, expected] of [
        [4409, ['open', 'sessionlost', 'error', 'close:4409']],
        [4400, ['open', 'sessionlost', 'error', 'close:4400']],
        [1000, ['open', 'close:1000']],
        [4003, ['open', 'close:4003']],
        [1001, ['open', 'close:1001']],
    ]) {
        const WS = makeFakeWebSocket();
        const s = new WebSession('ws://h/a', { WebSocket: WS });
        const log = recordEvents(s);
        const server = new FakeServer(WS, { id: ID });
        handshake(server);
        WS.last().serverClose(code, 'r');
        assert.deepEqual(log, expected, 'code ' + code);
        assert.equal(s.readyState, WebSession.CLOSED);
    }
});

test('end: a close frame before the first R ends it too (script failed at once)', (t) => {
    const { s, WS, log } = setup(t);
    WS.last().accept();
    WS.last().serverClose(4001, 'script exited with status 1');
    assert.deepEqual(log, ['close:4001']);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('close(): CLOSING, a close frame, then CLOSED with the server\'s echo', (t) => {
    const { s, WS, server, log } = setup(t);
    handshake(server);
    s.send('x');
    s.close(1000, 'bye');
    assert.equal(s.readyState, WebSession.CLOSING);
    assert.deepEqual(WS.last().closedWith, [1000, 'bye']);
    s.send('ignored');
    assert.equal(WS.last().data().length, 1);
    WS.last().deliver('Dstill delivered while closing');
    WS.last().serverClose(1000, '');
    assert.equal(s.readyState, WebSession.CLOSED);
    assert.deepEqual(log, ['open', 'message:still delivered while closing', 'close:1000']);
    assert.throws(() => s.close(1001), { name: 'InvalidAccessError' });
    assert.throws(() => s.close(1000, 'x'.repeat(124)), { name: 'SyntaxError' });
    s.close();                      // a second close is a no-op
});

test('close(): while disconnected, a connection only to say goodbye', (t) => {
    const { s, WS, server, log } = setup(t);
    handshake(server);
    WS.last().drop();
    s.close(4000, 'done');
    assert.equal(s.readyState, WebSession.CLOSING);
    const ws = WS.last();
    assert.deepEqual(ws.protocols, ['websession.v1', 'websession.id.' + ID]);
    ws.accept();
    assert.deepEqual(ws.sent, [], 'no R, no data: just the close frame');
    assert.deepEqual(ws.closedWith, [4000, 'done']);
    ws.serverClose(4000, '');
    assert.deepEqual(log, ['open', 'reconnecting', 'close:4000']);
    t.mock.timers.tick(60000);
    assert.equal(WS.instances.length, 2, 'the scheduled reconnection was cancelled');
});

test('close(): a server that never answers still ends it after connectTimeout', (t) => {
    const { s, WS, server, log } = setup(t, { connectTimeout: 3000 });
    handshake(server);
    s.close();
    t.mock.timers.tick(3000);
    assert.equal(s.readyState, WebSession.CLOSED);
    assert.deepEqual(log, ['open', 'close:1000']);
});

// ---- not a persistent target ------------------------------------------------------

async function failThreeTimes(t, WS) {
    for (let i = 0; i < 3; i++) {
        WS.last().drop();
        t.mock.timers.tick(10000);
    }
    await settle();
}

test('not persistent: two retries, then error and close 1006 with the HTTP status', async (t) => {
    const calls = [];
    const { s, WS, log } = setup(t, {
        fetch: async (url, init) => { calls.push([url, init.method]); return { status: 200, statusText: 'OK' }; },
    });
    let closeEv = null;
    s.onclose = (e) => { closeEv = e; };
    await failThreeTimes(t, WS);
    assert.equal(WS.instances.length, 3, 'the first attempt and two retries');
    assert.deepEqual(log, ['error', 'close:1006']);
    assert.equal(closeEv.wasClean, false);
    assert.match(closeEv.reason, /not a persistent WebSession script/);
    assert.match(closeEv.reason, /HTTP 200/);
    assert.match(closeEv.reason, /http:\/\/example\.test\/ws\/count/);
    assert.deepEqual(calls, [['http://example.test/ws/count', 'HEAD']]);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('not persistent: 426 means the server refused the upgrade', async (t) => {
    const { WS, s } = setup(t, { fetch: async () => ({ status: 426 }) });
    let reason = null;
    s.onclose = (e) => { reason = e.reason; };
    await failThreeTimes(t, WS);
    assert.match(reason, /the server refused the upgrade/);
});

test('not persistent? fetch fails too: the server may be unreachable, the reason says so', async (t) => {
    const { WS, s, log } = setup(t, { fetch: async () => { throw new TypeError('failed'); } });
    let reason = null;
    s.onclose = (e) => { reason = e.reason; };
    await failThreeTimes(t, WS);
    assert.deepEqual(log, ['error', 'close:1006']);
    assert.match(reason, /^the WebSocket connection failed, and a plain HTTP request to http:\/\/example\.test\/ws\/count failed too/);
});

test('not persistent: no fetch at all: the generic reason', async (t) => {
    const saved = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
        const { WS, s } = setup(t, { fetch: undefined });
        let reason = null;
        s.onclose = (e) => { reason = e.reason; };
        await failThreeTimes(t, WS);
        assert.equal(reason, 'target is not a persistent WebSession script (the server did not upgrade)');
    } finally {
        globalThis.fetch = saved;
    }
});

// ---- binary data ------------------------------------------------------------------

test('binaryType: blob by default, arraybuffer on request, the D byte stripped', async (t) => {
    const { s, WS, server } = setup(t);
    const got = [];
    s.onmessage = (e) => got.push(e.data);
    assert.equal(s.binaryType, 'blob');
    s.binaryType = 'nonsense';
    assert.equal(s.binaryType, 'blob', 'invalid values are ignored');
    handshake(server);
    WS.last().deliver([0x44, 0, 255, 10]);
    s.binaryType = 'arraybuffer';
    WS.last().deliver([0x44, 1, 2]);
    WS.last().deliver([0x44]);
    assert.ok(got[0] instanceof Blob);
    assert.deepEqual([...new Uint8Array(await got[0].arrayBuffer())], [0, 255, 10]);
    assert.ok(got[1] instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(got[1])], [1, 2]);
    assert.equal(got[2].byteLength, 0);
});

test('binary: a control message in a binary frame is a protocol error', (t) => {
    const { s, WS, server, log } = setup(t);
    handshake(server);
    WS.last().deliver([0x41, 0x31]);        // "A1" as binary
    assert.deepEqual(log, ['open', 'error', 'close:1002']);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('send: strings, ArrayBuffers, typed arrays and Blobs keep their order', async (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    s.send('first');
    s.send(new Blob([new Uint8Array([0xb1, 0xb2])]));
    s.send(backing.subarray(2, 5));
    s.send(new Uint8Array([7]).buffer);
    s.send(new Blob(['blob text']));
    s.send('last');
    backing[2] = 0;                          // a send copies, as WebSocket does
    assert.equal(s.bufferedAmount, 5 + 2 + 3 + 1 + 9 + 4);
    assert.deepEqual(WS.last().data(), ['first'], 'the rest waits for the first Blob');
    await settle();
    const data = WS.last().data().map((d) => (typeof d === 'string' ? d : [...d]));
    assert.deepEqual(data, ['first', [0xb1, 0xb2], [1, 2, 3], [7], [...Buffer.from('blob text')], 'last']);
    assert.equal(WS.last().sent[2][0], 0x44, 'binary frames start with the D byte');
});

test('send: other values are sent as their string, like WebSocket', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    s.send(42);
    assert.deepEqual(WS.last().data(), ['42']);
});

// ---- events ---------------------------------------------------------------------------

test('events: on<event> properties and addEventListener both work', (t) => {
    const { s, WS, server } = setup(t);
    const calls = [];
    s.addEventListener('message', (e) => calls.push('listener ' + e.data));
    s.onmessage = (e) => calls.push('old handler ' + e.data);
    s.onmessage = (e) => calls.push('handler ' + e.data);
    assert.equal(typeof s.onmessage, 'function');
    handshake(server);
    WS.last().deliver('Dx');
    s.onmessage = null;
    WS.last().deliver('Dy');
    assert.deepEqual(calls, ['listener x', 'handler x', 'listener y']);
});

test('events: open, messages, reconnecting/resumed, close: in that order', (t) => {
    const { s, WS, server, log } = setup(t);
    const states = [s.readyState];
    s.addEventListener('open', () => states.push(s.readyState));
    s.addEventListener('reconnecting', () => states.push(s.readyState));
    s.addEventListener('close', () => states.push(s.readyState));
    handshake(server);
    server.send('a');
    WS.last().drop();
    t.mock.timers.tick(10000);
    server.attach();
    server.read();
    server.send('b');
    s.close();
    states.push(s.readyState);
    WS.last().serverClose(1000);
    assert.deepEqual(log, ['open', 'message:a', 'reconnecting', 'resumed', 'message:b', 'close:1000']);
    assert.deepEqual(states, [0, 1, 1, 2, 3]);
});

test('protocol errors from the server end the session with 1002', (t) => {
    for (const bad of ['Xwhat', 'A7', 'R01 5', 'Rx', 'P1']) {
        const WS = makeFakeWebSocket();
        const s = new WebSession('ws://h/a', { WebSocket: WS });
        const log = recordEvents(s);
        handshake(new FakeServer(WS, { id: ID }));
        let reason = '';
        s.onclose = (e) => { reason = e.reason; };
        WS.last().deliver(bad);
        assert.deepEqual(log, ['open', 'error', 'close:1002'], bad);
        assert.match(reason, /^websession\.v1: /);
        assert.ok(WS.last().closedWith, 'the connection is closed: ' + bad);
    }
});

/** A small seeded PRNG, so the random test is reproducible. */
function mulberry32(a) {
    return function () {
        a = (a + 0x6d2b79f5) | 0;
        let r = Math.imul(a ^ (a >>> 15), 1 | a);
        r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
        return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
}

test('close(): during the first attempt, before any id, it ends at once', (t) => {
    const { s, WS, log } = setup(t);
    s.close();
    assert.equal(s.readyState, WebSession.CLOSED);
    assert.deepEqual(log, ['close:1000']);
    assert.ok(WS.last().closedWith, 'the attempt is given up');
    t.mock.timers.tick(60000);
    assert.equal(WS.instances.length, 1);
});

test('protocol: a first R without the session id is refused (a resume would be impossible)', (t) => {
    const { s, WS, log } = setup(t);
    WS.last().accept();
    WS.last().deliver('R0 1000');
    assert.deepEqual(log, ['error', 'close:1002']);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('send: inside onopen, as in the README example', (t) => {
    const { s, WS, server } = setup(t);
    s.send('queued before');
    s.onopen = () => s.send('hi');
    handshake(server);
    assert.deepEqual(WS.last().data(), ['queued before', 'hi']);
});

test('send: a Blob that cannot be read fires error and does not block the rest', async (t) => {
    const { s, WS, server, log } = setup(t);
    handshake(server);
    class BadBlob extends Blob {
        arrayBuffer() { return Promise.reject(new Error('gone')); }
    }
    s.send('a');
    s.send(new BadBlob(['xyz']));
    s.send('b');
    await settle();
    assert.deepEqual(WS.last().data(), ['a', 'b']);
    assert.deepEqual(log, ['open', 'error']);
    assert.equal(s.readyState, WebSession.OPEN);
    assert.equal(s.bufferedAmount, 2);
});

test('heartbeat: heartbeatTimeout 0 turns it off', (t) => {
    const { s, WS, server, log } = setup(t, { heartbeatTimeout: 0 });
    handshake(server);
    t.mock.timers.tick(3600 * 1000);
    assert.deepEqual(log, ['open']);
    assert.equal(WS.instances.length, 1);
    assert.equal(s.readyState, WebSession.OPEN);
});

test('many messages: a large queue drains in order as acknowledgements come', (t) => {
    const { s, WS, server } = setup(t, { window: 1000 });
    handshake(server);
    const N = 20000;
    for (let i = 0; i < N; i++) s.send('message ' + i);
    const sent = WS.last().data();
    const bytes = sent.reduce((sum, m) => sum + m.length, 0);
    assert.ok(bytes >= 1000 && bytes - sent.at(-1).length < 1000, 'sent until the window was reached');
    while (server.received.length < N) {
        server.read();
        server.ack();
    }
    assert.equal(s.bufferedAmount, 0);
    assert.equal(server.received[N - 1], 'message ' + (N - 1));
    assert.ok(server.received.every((m, i) => m === 'message ' + i));
});
