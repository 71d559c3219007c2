// Details of websession.js's observable behaviour that the mutation campaign
// (make mutate-js) found untested: exact limits, error names and messages,
// close reasons, event classes and properties, header values. On the fakes
// (no browser, no server): run with `node --test client/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

import { WebSession, makeFakeWebSocket, FakeServer, settle } from './fake.mjs';
import { ID, setup, handshake } from './helpers.mjs';

const { utf8Length, backoffDelay } = WebSession._internal;


/** The reason of the session's close event, and the error's message. */
function ends(s) {
    const out = { close: null, error: null };
    s.addEventListener('close', (e) => { out.close = e; });
    s.addEventListener('error', (e) => { out.error = e; });
    return out;
}

// ---- helpers ---------------------------------------------------------------------

test('utf8Length: every range boundary, surrogate pairs and lone surrogates', () => {
    const cases = [
        ['', 0], ['a', 1], ['\x7f', 1], ['\x80', 2], ['\u07ff', 2], ['\u0800', 3], ['\ud7ff', 3],
        ['\ud83d\ude00', 4], ['\ud800\udc00', 4], ['\udbff\udfff', 4], ['\udbff\udc00', 4],
        ['\ud800', 3], ['\udbff', 3], ['\udc00', 3], ['\udfff', 3], ['\ue000', 3], ['\uffff', 3],
        ['\ud800a', 4], ['a\ud800', 4], ['\ud800\ud800', 6], ['\udc00\ud800', 6],
        ['\ud800\ue000', 6], ['\ud800\udbff', 6], ['x\ud83d\ude00y', 6], ['é€😀', 9],
        // a low surrogate after a character that is not a high surrogate
        ['\u0800\udc00', 6], ['\ud7ff\udc00', 6], ['\udc00\udc00', 6], ['\ue000\udc00', 6],
        ['a\udc00', 4], ['\u07ff\udc00', 5],
    ];
    for (const [s, n] of cases) {
        assert.equal(utf8Length(s), n, JSON.stringify(s));
        assert.equal(utf8Length(s), Buffer.byteLength(s.toWellFormed ? s.toWellFormed() : s), JSON.stringify(s));
    }
});

test('backoffDelay: exact values at the edges of the jitter', () => {
    assert.equal(backoffDelay(1, 100, 10000, () => 0), 100);
    assert.equal(backoffDelay(1, 100, 10000, () => 1), 200);
    assert.equal(backoffDelay(3, 100, 10000, () => 0.5), 100 + 0.5 * 700);
    assert.equal(backoffDelay(20, 100, 10000, () => 1), 10000);
});

// ---- close() arguments ------------------------------------------------------------

test('close(): code limits are exact, with InvalidAccessError and its message', (t) => {
    for (const code of [999, 1001, 2999, 5000, 1e9, NaN]) {
        const { s } = setup(t);
        assert.throws(() => s.close(code), (e) => {
            assert.ok(e instanceof DOMException, 'a DOMException');
            assert.equal(e.name, 'InvalidAccessError');
            assert.equal(e.message, 'WebSession: close code must be 1000 or 3000-4999');
            return true;
        }, String(code));
        t.mock.timers.reset();
    }
    for (const code of [1000, 3000, 4999, '3000']) {
        const { s, log } = setup(t);
        s.close(code);
        assert.deepEqual(log, ['close:' + Number(code)]);
        t.mock.timers.reset();
    }
});

test('close(): the reason may have 123 bytes of UTF-8, not 124', (t) => {
    const ok = ['a'.repeat(123), 'é'.repeat(61) + 'a', '€'.repeat(41), '😀'.repeat(30) + 'abc'];
    const bad = ['a'.repeat(124), 'é'.repeat(62), '€'.repeat(41) + 'a', '😀'.repeat(31)];
    for (const r of ok) {
        const { s } = setup(t);
        const end = ends(s);
        s.close(1000, r);
        assert.equal(end.close.reason, r);
        t.mock.timers.reset();
    }
    for (const r of bad) {
        const { s } = setup(t);
        assert.throws(() => s.close(1000, r), (e) => e instanceof DOMException && e.name === 'SyntaxError'
                      && e.message === 'WebSession: close reason longer than 123 bytes');
        assert.equal(s.readyState, WebSession.CONNECTING);
        t.mock.timers.reset();
    }
});

test('close(): no reason is an empty reason; a second close() changes nothing', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    s.close(3001);
    assert.deepEqual(WS.last().closedWith, [3001, '']);
    s.close(3002, 'again');
    assert.deepEqual(WS.last().closedWith, [3001, '']);
    assert.equal(WS.instances.length, 1);
});

// ---- URLs and construction ----------------------------------------------------------

test('URLs: error messages name the URL; wss gives https for the HTTP transports', () => {
    assert.throws(() => new WebSession('ftp://h/a', { WebSocket: makeFakeWebSocket() }),
                  (e) => e instanceof DOMException && e.name === 'SyntaxError'
                  && e.message === 'WebSession: the URL must be http(s) or ws(s): ftp://h/a');
    assert.throws(() => new WebSession('nope', { WebSocket: makeFakeWebSocket() }),
                  (e) => e instanceof DOMException && e.name === 'SyntaxError'
                  && e.message === 'WebSession: invalid URL: nope');
    const { resolveUrls } = WebSession._internal;
    assert.deepEqual(resolveUrls('wss://h/a#x'), { ws: 'wss://h/a', http: 'https://h/a' });
    assert.deepEqual(resolveUrls('https://h/a'), { ws: 'wss://h/a', http: 'https://h/a' });
    assert.deepEqual(resolveUrls('ws://h/a'), { ws: 'ws://h/a', http: 'http://h/a' });
});

test('construction: error messages', () => {
    assert.throws(() => new WebSession('ws://h/a', { transport: 'websocket' }),
                  { name: 'TypeError', message: 'WebSession: no WebSocket implementation (pass options.WebSocket)' });
    assert.throws(() => new WebSession('ws://h/a', { WebSocket: makeFakeWebSocket(), transport: 'x' }),
                  { name: 'TypeError', message: 'WebSession: unknown transport x' });
    // websocket alone needs no fetch; with a fetch option and no global one,
    // auto still has the HTTP transports.
    const saved = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
        const s = new WebSession('ws://h/a', { fetch: async () => new Promise(() => {}) });
        assert.equal(s.transport, 'sse');
        s.close();
    } finally {
        globalThis.fetch = saved;
    }
});

test('construction: auto without a WebSocket option uses the global WebSocket when there is one', () => {
    const WS = makeFakeWebSocket();
    globalThis.WebSocket = WS;
    try {
        const s = new WebSession('ws://h/a');
        assert.equal(s.transport, 'websocket');
        assert.equal(WS.instances.length, 1, 'the global class was used');
        s.close();
        const s2 = new WebSession('ws://h/a', { transport: 'websocket' });
        assert.equal(WS.instances.length, 2);
        s2.close();
    } finally {
        delete globalThis.WebSocket;
    }
});

test('construction: undefined options mean the defaults', (t) => {
    const { s, WS } = setup(t, { connectTimeout: undefined, minBackoff: undefined });
    assert.equal(WS.instances.length, 1);
    t.mock.timers.tick(9999);
    assert.equal(WS.last().closedWith, null, 'connectTimeout is 10000 by default');
    t.mock.timers.tick(1);
    assert.ok(WS.last().closedWith);
    s.close();
});

test('webSocketOptions: a third constructor argument only when given', () => {
    const args = [];
    const Base = makeFakeWebSocket();
    class WS extends Base {
        constructor(...a) {
            super(...a);
            args.push(a.length);
        }
    }
    WS.instances = Base.instances;
    new WebSession('ws://h/a', { WebSocket: WS }).close();
    const opts = { headers: { x: 1 } };
    new WebSession('ws://h/a', { WebSocket: WS, webSocketOptions: opts }).close();
    assert.deepEqual(args, [2, 3]);
});

test('binaryType: the socket\'s is arraybuffer; only blob and arraybuffer are accepted', (t) => {
    const { s, WS } = setup(t);
    assert.equal(WS.last().binaryType, 'arraybuffer');
    assert.equal(s.binaryType, 'blob');
    s.binaryType = 'nonsense';
    assert.equal(s.binaryType, 'blob');
    s.binaryType = 'arraybuffer';
    assert.equal(s.binaryType, 'arraybuffer');
    s.binaryType = 'blob';
    assert.equal(s.binaryType, 'blob');
    assert.equal(s.extensions, '');
    assert.equal(s.protocol, '');
});

// ---- events ------------------------------------------------------------------------------

test('events: classes and enumerable properties (CustomEvent, MessageEvent, Event)', (t) => {
    const { s, WS, server } = setup(t);
    const got = {};
    for (const type of ['open', 'message', 'reconnecting', 'resumed', 'close']) {
        s.addEventListener(type, (e) => { got[type] = e; });
    }
    handshake(server);
    server.send('x');
    WS.last().drop();
    t.mock.timers.tick(100000);
    handshake(server);
    s.close(3000, 'bye');
    WS.last().serverClose(3000, 'bye');
    assert.ok(got.message instanceof MessageEvent);
    assert.equal(got.message.data, 'x');
    assert.equal(got.message.origin, 'ws://example.test');
    assert.ok(got.reconnecting instanceof CustomEvent);
    assert.equal(got.reconnecting.detail, 1);
    assert.deepEqual(Object.keys(got.reconnecting).sort(), ['attempt', 'delay']);
    assert.ok(!Object.hasOwn(got.reconnecting, 'detail'), 'detail is CustomEvent\'s own');
    assert.ok(got.resumed instanceof CustomEvent);
    assert.equal(got.resumed.detail, 1);
    assert.ok(!(got.open instanceof CustomEvent) && got.open instanceof Event);
    assert.deepEqual(Object.keys(got.close).sort(), ['code', 'reason', 'wasClean']);
    assert.deepEqual([got.close.code, got.close.reason, got.close.wasClean], [3000, 'bye', true]);
    assert.equal(got.close.type, 'close');
});

test('events: without CustomEvent and MessageEvent the properties are still there', (t) => {
    const saved = { CustomEvent: globalThis.CustomEvent, MessageEvent: globalThis.MessageEvent };
    delete globalThis.CustomEvent;
    delete globalThis.MessageEvent;
    try {
        const { s, WS, server } = setup(t);
        const got = {};
        for (const type of ['message', 'reconnecting', 'sessionlost']) {
            s.addEventListener(type, (e) => { got[type] = e; });
        }
        handshake(server);
        server.send('x');
        WS.last().drop();
        t.mock.timers.tick(100000);
        WS.last().accept();
        WS.last().serverClose(4410, 'gone');
        assert.equal(got.message.data, 'x');
        assert.equal(got.message.type, 'message');
        assert.equal(got.message.origin, 'ws://example.test');
        assert.equal(got.reconnecting.detail, 1);
        assert.deepEqual(got.sessionlost.detail, { code: 4410, reason: 'gone' });
    } finally {
        Object.assign(globalThis, saved);
    }
});

test('events: a CloseEvent class, where there is one, makes the close event', (t) => {
    class CloseEvent extends Event {
        constructor(type, init) {
            super(type);
            this.code = init.code;
            this.reason = init.reason;
            this.wasClean = init.wasClean;
        }
    }
    globalThis.CloseEvent = CloseEvent;
    try {
        const { s, WS, server } = setup(t);
        const got = [];
        for (const type of ['open', 'error', 'close']) s.addEventListener(type, (e) => got.push(e));
        handshake(server);
        WS.last().deliver('Xbad');
        assert.deepEqual(got.map((e) => e.type), ['open', 'error', 'close']);
        assert.ok(!(got[0] instanceof CloseEvent));
        assert.ok(!(got[1] instanceof CloseEvent));
        assert.ok(got[2] instanceof CloseEvent);
        assert.deepEqual([got[2].code, got[2].reason, got[2].wasClean],
                         [1002, 'websession.v1: unknown message type "X"', false]);
        assert.equal(got[1].message, 'websession.v1: unknown message type "X"');
    } finally {
        delete globalThis.CloseEvent;
    }
});

test('events: on<event> properties are configurable and enumerable; a non-function is null', (t) => {
    const { s, server } = setup(t);
    for (const type of ['open', 'message', 'close', 'error', 'reconnecting', 'resumed', 'sessionlost']) {
        const d = Object.getOwnPropertyDescriptor(WebSession.prototype, 'on' + type);
        assert.ok(d.configurable && d.enumerable, type);
        assert.equal(s['on' + type], null);
    }
    s.onopen = 'not a function';
    assert.equal(s.onopen, null);
    handshake(server);
    assert.equal(s.readyState, WebSession.OPEN);
    for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) {
        assert.ok(Object.getOwnPropertyDescriptor(WebSession, name).enumerable, name);
        assert.ok(Object.getOwnPropertyDescriptor(WebSession.prototype, name).enumerable, name);
    }
    assert.deepEqual(Object.keys(WebSession).filter((k) => /^[A-Z]+$/.test(k)),
                     ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']);
});

test('events: a server close without a reason has an empty reason', (t) => {
    const { s, WS, server } = setup(t);
    const end = ends(s);
    handshake(server);
    WS.last().onclose({ type: 'close', code: 1000, wasClean: true });   // no reason at all
    assert.equal(end.close.code, 1000);
    assert.equal(end.close.reason, '');
});

// ---- loading (as loading.test.mjs, but with `process` in the classic
// script's global, which lets Stryker's instrumented copy run its mutants) ----

test('loading: require() gives the class, also as .WebSession and .default', () => {
    const W = createRequire(import.meta.url)('../websession.js');
    assert.equal(typeof W, 'function');
    assert.equal(W.WebSession, W);
    assert.equal(W.default, W);
    assert.equal(W.OPEN, 1);
});

test('loading: a classic script (no module, no exports) defines the global WebSession', () => {
    const source = readFileSync(new URL('../websession.js', import.meta.url), 'utf8');
    const g = { URL, EventTarget, Event, setTimeout, clearTimeout, process };
    g.globalThis = g;
    vm.createContext(g);
    vm.runInContext(source, g, { filename: 'websession.js' });
    assert.equal(typeof g.WebSession, 'function');
    assert.equal(g.WebSession.CLOSED, 3);
    assert.equal(g.module, undefined);
    // No DOMException in that global: errors are Errors with the DOM name.
    assert.throws(() => new g.WebSession('ftp://h/a', { WebSocket: makeFakeWebSocket() }),
                  (e) => e.name === 'SyntaxError' && !(e instanceof DOMException)
                  && e.message === 'WebSession: the URL must be http(s) or ws(s): ftp://h/a');
});

// ---- the WebSocket transport ---------------------------------------------------------

/** A fake WebSocket class whose instances also record every send() call,
 *  whatever their state. */
function recordingWebSocket(extra = {}) {
    const Base = makeFakeWebSocket();
    class WS extends Base {
        constructor(...a) {
            super(...a);
            this.allSent = [];
            Object.assign(this, extra);
        }
        send(d) {
            this.allSent.push(d);
            super.send(d);
        }
    }
    WS.instances = Base.instances;
    WS.last = Base.last;
    return WS;
}

test('websocket: a close() that throws is retried without arguments', (t) => {
    const Base = makeFakeWebSocket();
    class WS extends Base {
        close(...a) {
            if (a.length) throw new Error('fake: bad close arguments');
            super.close(...a);
        }
    }
    WS.instances = Base.instances;
    WS.last = Base.last;
    const { s, server } = setup(t, {}, WS);
    handshake(server);
    s.close(3000);
    assert.deepEqual(WS.last().closedWith, [undefined, undefined]);
});

test('websocket: abort uses terminate() where there is one (no close frame)', (t) => {
    const WS = recordingWebSocket();
    WS.prototype.terminate = function () { this.terminated = true; this.readyState = 3; };
    setup(t, {}, WS);
    t.mock.timers.tick(10000);                      // connect timeout: abort
    assert.equal(WS.instances[0].terminated, true);
    assert.equal(WS.instances[0].closedWith, null);
});

test('websocket: a lost connection is not closed again by the session', (t) => {
    const { WS, server } = setup(t);
    handshake(server);
    WS.last().drop();
    assert.equal(WS.instances[0].closedWith, null);
});

test('websocket: a socket without a protocol property is not refused', (t) => {
    const Base = makeFakeWebSocket();
    class WS extends Base {
        get protocol() { return undefined; }
        set protocol(v) { /* an implementation without the property */ }
    }
    WS.instances = Base.instances;
    WS.last = Base.last;
    const { s, log } = setup(t, {}, WS);
    WS.last().accept();
    assert.deepEqual(WS.last().texts(), ['R0']);
    WS.last().deliver('I' + ID);
    WS.last().deliver('R0 100');
    assert.deepEqual(log, ['open']);
    assert.equal(s.protocol, 'websession.v1');
});

test('protocol: the server did not select websession.v1: exact reasons', (t) => {
    for (const [p, why] of [['other', 'the server did not select websession.v1 (it chose other)'],
                            ['', 'the server did not select websession.v1']]) {
        const { s, WS } = setup(t);
        const end = ends(s);
        WS.last().accept(p);
        assert.equal(end.close.reason, 'websession.v1: ' + why);
        assert.equal(end.close.wasClean, false);
        assert.deepEqual(WS.last().closedWith, [1000, 'websession.v1: ' + why]);
        t.mock.timers.reset();
    }
});

test('protocol errors: exact reasons, the socket closed with 1000 and at most 120 characters of them', (t) => {
    const long = '9'.repeat(150);
    for (const [msg, why] of [
        ['P1', 'bad heartbeat'], ['Ibad.id', 'bad session id'], ['Iab=', 'bad session id'],
        ['A7', 'bad acknowledgement A7'], ['A' + long, 'bad acknowledgement A' + long],
        ['Ax1', 'bad acknowledgement Ax1'], ['A1x', 'bad acknowledgement A1x'],
        ['R0 5', 'bad resume point R0 5'], ['R0 05', 'bad resume point R0 05'],
        ['Rx0 5', 'bad resume point Rx0 5'], ['R0 5x', 'bad resume point R0 5x'],
        ['R0 ', 'bad resume point R0 '],
    ]) {
        const { s, WS, server } = setup(t);
        const end = ends(s);
        handshake(server);
        WS.last().deliver(msg);
        const reason = 'websession.v1: ' + why;
        assert.equal(end.close.reason, reason, msg);
        assert.equal(end.close.code, 1002);
        assert.equal(end.close.wasClean, false);
        assert.equal(end.error.message, reason);
        assert.deepEqual(WS.last().closedWith, [1000, reason.slice(0, 120)], msg);
        t.mock.timers.reset();
    }
});

test('protocol: a first R with bad counts is refused with its exact reason', (t) => {
    for (const [r, why] of [
        ['R0 05', 'bad resume point R0 05'], ['R00 5', 'bad resume point R00 5'],
        ['Rx0 5', 'bad resume point Rx0 5'], ['R0 5x', 'bad resume point R0 5x'],
        ['R0 x5', 'bad resume point R0 x5'], ['R' + '1'.repeat(21), 'bad resume point R' + '1'.repeat(21)],
        ['R5 100', 'cannot resume from R5: 0 sent, 0 acknowledged'],
    ]) {
        const { s, WS } = setup(t);
        const end = ends(s);
        WS.last().accept();
        WS.last().deliver('I' + ID);
        WS.last().deliver(r);
        assert.equal(end.close && end.close.reason, 'websession.v1: ' + why, r);
        t.mock.timers.reset();
    }
});

test('close(): nothing goes out after our close frame, not even a Blob read since', async (t) => {
    const WS = recordingWebSocket();
    WS.prototype.close = function (...a) {
        this.allSent.push('<close>');
        Object.getPrototypeOf(WS.prototype).close.apply(this, a);
    };
    const { s, server } = setup(t, {}, WS);
    handshake(server);
    s.send(new Blob(['late']));
    s.close();
    await settle();
    const frames = WS.last().allSent;
    assert.ok(frames.includes('<close>'));
    assert.deepEqual(frames.slice(frames.indexOf('<close>') + 1), [], 'nothing after the close frame');
});

test('heartbeat: Infinity with real timers (setTimeout would fire at once)', async () => {
    const WS = makeFakeWebSocket();
    const s = new WebSession('ws://h/a', { WebSocket: WS, heartbeatTimeout: Infinity, transport: 'websocket' });
    const server = new FakeServer(WS, { id: ID });
    handshake(server);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(WS.instances.length, 1, 'no heartbeat timeout');
    assert.equal(WS.last().closedWith, null);
    s.close();
    WS.last().serverClose(1000);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('auto: with a global fetch, the HTTP transports are candidates too', (t) => {
    const saved = globalThis.fetch;
    globalThis.fetch = () => new Promise(() => {});
    try {
        t.mock.timers.enable({ apis: ['setTimeout'] });
        const WS = makeFakeWebSocket();
        const s = new WebSession('ws://h/a', { WebSocket: WS });
        assert.equal(s.transport, 'websocket');
        WS.last().drop();
        assert.equal(s.transport, 'sse');
        s.close();
    } finally {
        globalThis.fetch = saved;
    }
});

test('protocol: an empty binary frame is refused; a binary D frame during CLOSING still counts', (t) => {
    let x = setup(t);
    let end = ends(x.s);
    handshake(x.server);
    x.WS.last().deliver(new Uint8Array(0));
    assert.equal(end.close.reason, 'websession.v1: binary frames carry data only');
    t.mock.timers.reset();
    x = setup(t);
    end = ends(x.s);
    const got = [];
    x.s.binaryType = 'arraybuffer';
    x.s.onmessage = (e) => got.push(e.data);
    handshake(x.server);
    x.s.close();
    x.WS.last().deliver('Xignored');
    x.WS.last().deliver('P');
    x.WS.last().deliver(Uint8Array.from([0x44, 7]));
    x.WS.last().deliver('Dtext');
    assert.equal(end.close, null, 'no protocol error while closing');
    assert.equal(got.length, 2);
    assert.deepEqual([...new Uint8Array(got[0])], [7]);
    assert.equal(got[1], 'text');
});

test('resume: R without a window is fine; R below what was acknowledged is refused', (t) => {
    let x = setup(t);
    x.WS.last().accept();
    x.WS.last().deliver('I' + ID);
    x.WS.last().deliver('R0');
    assert.equal(x.s.readyState, WebSession.OPEN);
    x.s.send('a');
    assert.deepEqual(x.WS.last().data(), ['a'], 'no window: no limit');
    t.mock.timers.reset();
    x = setup(t);
    const end = ends(x.s);
    handshake(x.server);
    x.s.send('1'); x.s.send('2'); x.s.send('3');
    x.server.read();
    x.server.ack();                                  // A3: nothing kept
    x.WS.last().drop();
    t.mock.timers.tick(10000);
    x.WS.last().accept();
    x.WS.last().deliver('R2 100');
    assert.equal(end.close.reason, 'websession.v1: cannot resume from R2: 3 sent, 3 acknowledged');
    t.mock.timers.reset();
    x = setup(t);
    const end2 = ends(x.s);
    x.WS.last().accept();
    x.WS.last().deliver('R0 100');
    assert.equal(end2.close.reason, 'websession.v1: resume point without a session id');
});

test('close: a plain server close is clean; one before an id is not', (t) => {
    let x = setup(t);
    let end = ends(x.s);
    handshake(x.server);
    x.WS.last().serverClose(1000, 'done');
    assert.deepEqual([end.close.code, end.close.reason, end.close.wasClean], [1000, 'done', true]);
    t.mock.timers.reset();
    x = setup(t);
    end = ends(x.s);
    x.s.close(3000, 'early');
    assert.deepEqual([end.close.code, end.close.reason, end.close.wasClean], [3000, 'early', false]);
});

test('close(): a connection lost while closing ends it at once, not cleanly, with our code', (t) => {
    const { s, WS, server } = setup(t);
    const end = ends(s);
    handshake(server);
    s.close(3000, 'bye');
    WS.last().drop();
    assert.deepEqual([end.close.code, end.close.reason, end.close.wasClean], [3000, 'bye', false]);
});

test('close(): the server never answering ends it after connectTimeout, not cleanly', (t) => {
    const { s, server } = setup(t);
    const end = ends(s);
    handshake(server);
    s.close(3000, 'bye');
    t.mock.timers.tick(10000);
    assert.deepEqual([end.close.code, end.close.reason, end.close.wasClean], [3000, 'bye', false]);
});

test('close(): while a resume is under way, no extra connection; it says goodbye once open', (t) => {
    const { s, WS, server } = setup(t);
    handshake(server);
    WS.last().drop();
    t.mock.timers.tick(10000);                      // the reconnection attempt starts
    assert.equal(WS.instances.length, 2);
    s.close(3000);
    assert.equal(WS.instances.length, 2);
    WS.last().accept();
    assert.deepEqual(WS.last().closedWith, [3000, '']);
});

test('send(): discarded while CLOSING', (t) => {
    const { s, server } = setup(t);
    handshake(server);
    s.close();
    s.send('late');
    assert.equal(s.bufferedAmount, 0);
});

test('a transport close without a code is a lost connection', (t) => {
    for (const code of [undefined, null]) {
        const { s, WS, server, log } = setup(t);
        handshake(server);
        WS.last().onclose({ type: 'close', code, reason: '' });
        assert.deepEqual(log, ['open', 'reconnecting'], String(code));
        assert.equal(s.readyState, WebSession.OPEN);
        t.mock.timers.reset();
    }
});

test('heartbeat: Infinity turns it off too; before the R it is not armed', (t) => {
    let x = setup(t, { heartbeatTimeout: Infinity });
    handshake(x.server);
    t.mock.timers.tick(1e7);
    assert.equal(x.WS.instances.length, 1);
    t.mock.timers.reset();
    x = setup(t, { heartbeatTimeout: 1000, connectTimeout: 5000 });
    x.WS.last().accept();
    x.WS.last().deliver('I' + ID);
    t.mock.timers.tick(4999);
    assert.equal(x.WS.last().closedWith, null, 'only connectTimeout counts before the R');
});

test('timeouts: a lone transport gets connectTimeout; in auto, all but the last get fallbackTimeout', async (t) => {
    let x = setup(t, { fallbackTimeout: 4000 });
    t.mock.timers.tick(4000);
    assert.equal(x.WS.last().closedWith, null);
    t.mock.timers.tick(6000);
    assert.ok(x.WS.last().closedWith);
    t.mock.timers.reset();
    // auto: once the websocket opened the session, reconnections are alone too
    x = setup(t, { transport: 'auto', fetch: () => new Promise(() => {}) });
    assert.equal(x.s.transport, 'websocket');
    handshake(x.server);
    x.WS.last().drop();
    t.mock.timers.tick(200);
    assert.equal(x.WS.instances.length, 2);
    t.mock.timers.tick(4000);
    assert.equal(x.WS.last().closedWith, null, 'connectTimeout, not fallbackTimeout');
    assert.equal(x.s.transport, 'websocket');
});

test('acks: the 20 ms timer starts with the first unacknowledged message, also after an A at 16', (t) => {
    const { WS, server } = setup(t);
    handshake(server);
    const acks = () => WS.last().texts().filter((f) => f[0] === 'A');
    for (let i = 0; i < 16; i++) server.send('m' + i);
    assert.deepEqual(acks(), ['A16']);
    t.mock.timers.tick(1);
    server.send('m16');
    t.mock.timers.tick(19);
    assert.deepEqual(acks(), ['A16'], 'not yet: 19 ms since m16');
    t.mock.timers.tick(1);
    assert.deepEqual(acks(), ['A16', 'A17']);
});

test('acks: a ping answers at once and stops the pending timer', (t) => {
    const { WS, server } = setup(t);
    handshake(server);
    const acks = () => WS.last().texts().filter((f) => f[0] === 'A');
    server.send('a');
    t.mock.timers.tick(5);
    WS.last().deliver('P');
    assert.deepEqual(acks(), ['A1']);
    t.mock.timers.tick(5);
    server.send('b');
    t.mock.timers.tick(19);
    assert.deepEqual(acks(), ['A1'], '20 ms from b, not from a');
    t.mock.timers.tick(1);
    assert.deepEqual(acks(), ['A1', 'A2']);
});

test('acks: none after our close frame, even after 16 messages', (t) => {
    const WS = recordingWebSocket();
    const { s, server } = setup(t, {}, WS);
    handshake(server);
    s.close();
    for (let i = 0; i < 20; i++) WS.last().deliver('D' + i);
    t.mock.timers.tick(100);
    assert.deepEqual(WS.last().allSent.filter((f) => typeof f === 'string' && f[0] === 'A'), []);
});

test('window: nothing held is sent after our close frame', (t) => {
    const WS = recordingWebSocket();
    const { s, server } = setup(t, { window: 1 }, WS);
    handshake(server);
    s.send('a');
    s.send('b');
    s.close();
    server.read();
    server.ack();
    assert.deepEqual(WS.last().allSent.filter((f) => typeof f === 'string' && f[0] === 'D'), ['Da']);
});

test('no Blob class: binaryType arraybuffer, binary delivered as ArrayBuffer, other values as strings', (t) => {
    const saved = globalThis.Blob;
    delete globalThis.Blob;
    try {
        const { s, WS, server } = setup(t);
        assert.equal(s.binaryType, 'arraybuffer');
        const got = [];
        s.onmessage = (e) => got.push(e.data);
        handshake(server);
        s.binaryType = 'blob';
        WS.last().binaryType = 'arraybuffer';
        WS.last().deliver(Uint8Array.from([0x44, 1, 2]));
        assert.ok(got[0] instanceof ArrayBuffer);
        s.send(42);
        assert.deepEqual(WS.last().data(), ['42']);
    } finally {
        globalThis.Blob = saved;
    }
});

// ---- a first connection that failed: the explanation ---------------------------------

/** Fails the first connection and its two retries, the sockets dropped
 *  with the given close reasons (1006). */
async function failThreeTimes(t, WS, reasons = ['', '', '']) {
    for (const reason of reasons) {
        const ws = WS.last();
        ws.readyState = 3;
        ws.onclose({ type: 'close', code: 1006, reason, wasClean: false });
        t.mock.timers.tick(10000);
    }
    await settle();
}

const URL_ = 'http://example.test/ws/count';
const REFUSED = 'the server refused the upgrade: ' + URL_ + ' is a persistent WebSession'
    + ' script (HTTP 426 to a plain request), but it did not accept this'
    + ' WebSocket handshake (origin, session limit or script failure: see'
    + " the server's error log)";

test('explain: the HEAD request: method, cache, credentials, an abort after connectTimeout', async (t) => {
    const inits = [];
    const { WS, s } = setup(t, { fetch: (url, init) => { inits.push(init); return new Promise(() => {}); } });
    const end = ends(s);
    for (let i = 0; i < 3; i++) {
        WS.last().drop();
        if (i < 2) t.mock.timers.tick(10000);
    }
    await settle();
    assert.equal(inits.length, 1);
    assert.equal(inits[0].method, 'HEAD');
    assert.equal(inits[0].cache, 'no-store');
    assert.equal(inits[0].credentials, 'same-origin');
    assert.ok(inits[0].signal instanceof AbortSignal);
    assert.equal(inits[0].signal.aborted, false);
    t.mock.timers.tick(9999);
    assert.equal(inits[0].signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(inits[0].signal.aborted, true, 'given up after connectTimeout');
    await settle();
    assert.equal(end.close, null, 'this fetch ignores its signal: still waiting');
});

test('explain: without AbortController the HEAD has no signal', async (t) => {
    const AC = globalThis.AbortController;
    delete globalThis.AbortController;
    try {
        const inits = [];
        const { WS } = setup(t, { fetch: async (url, init) => { inits.push(init); return { status: 404 }; } });
        await failThreeTimes(t, WS);
        assert.equal(inits.length, 1);
        assert.equal('signal' in inits[0], false);
    } finally {
        globalThis.AbortController = AC;
    }
});

test('explain: exact reasons for 426 (with and without a refusal), 0, 404 with statusText, a redirect', async (t) => {
    const cases = [
        [{ status: 426 }, ['', '', ''], REFUSED],
        [{ status: 426 }, ['origin refused', '', ''], REFUSED + '; its last answer: origin refused'],
        [{ status: 426 }, ['', 'full', ''], REFUSED + '; its last answer: full'],
        [{ status: 0 }, ['', '', ''], 'target is not a persistent WebSession script (the server did not upgrade)'],
        [{ status: 404, statusText: 'Not Found' }, ['', '', ''],
         'target is not a persistent WebSession script: ' + URL_ + ' answers HTTP 404 Not Found'
         + ' to a plain request (the server did not upgrade)'],
        [{ status: 200, redirected: true }, ['', '', ''],
         'target is not a persistent WebSession script: ' + URL_ + ' answers HTTP 200 after a redirect'
         + ' to a plain request (the server did not upgrade)'],
    ];
    for (const [res, reasons, expected] of cases) {
        const { WS, s } = setup(t, { fetch: async () => res });
        const end = ends(s);
        await failThreeTimes(t, WS, reasons);
        assert.equal(end.close.reason, expected);
        assert.equal(end.error.message, expected);
        t.mock.timers.reset();
    }
});

test('explain: a WebSocket constructor that throws on a retry is a failed attempt, its message kept', async (t) => {
    const Base = makeFakeWebSocket();
    let n = 0;
    class WS extends Base {
        constructor(...a) {
            if (++n === 2) throw new Error('blocked port');
            super(...a);
        }
    }
    WS.instances = Base.instances;
    WS.last = Base.last;
    const { s } = setup(t, { fetch: async () => ({ status: 426 }) }, WS);
    const end = ends(s);
    WS.last().drop();
    t.mock.timers.tick(10000);                      // the retry throws: failed at once
    assert.equal(Base.instances.length, 1);
    t.mock.timers.tick(10000);                      // the third attempt
    assert.equal(Base.instances.length, 2);
    WS.last().drop();
    await settle();
    assert.equal(end.close.reason, REFUSED + '; its last answer: blocked port');
});

test('explain: the global fetch when no fetch option is given', async (t) => {
    const saved = globalThis.fetch;
    globalThis.fetch = async () => ({ status: 418 });
    try {
        const { WS, s } = setup(t, { fetch: undefined });
        const end = ends(s);
        await failThreeTimes(t, WS);
        assert.match(end.close.reason, /answers HTTP 418 to a plain request/);
    } finally {
        globalThis.fetch = saved;
    }
});

test('explain: a close() while the explanation is pending wins', async (t) => {
    let answer;
    const { WS, s } = setup(t, { fetch: () => new Promise((r) => { answer = r; }) });
    const log = [];
    s.addEventListener('close', (e) => log.push(e.code));
    // The first attempt got an id, then every attempt is lost before its R.
    WS.last().accept();
    WS.last().deliver('I' + ID);
    await failThreeTimes(t, WS);
    assert.equal(typeof answer, 'function');
    s.close(3000);                                  // a connection only to say goodbye
    answer({ status: 404 });
    await settle();
    assert.deepEqual(log, [], 'the goodbye decides, not the explanation');
});

test('websocket transport alone: no implementation is a TypeError', () => {
    const { TRANSPORTS } = WebSession._internal;
    assert.throws(() => TRANSPORTS.websocket({ ws: 'ws://h/a' }, ['websession.v1'], {}, {}),
                  { name: 'TypeError', message: 'WebSession: no WebSocket implementation (pass options.WebSocket)' });
});

test('send: a Blob that cannot be read: the error message', async (t) => {
    const { s, server } = setup(t);
    handshake(server);
    const errors = [];
    s.onerror = (e) => errors.push(e.message);
    const bad = new Blob(['x']);
    bad.arrayBuffer = () => Promise.reject(new Error('unreadable'));
    s.send(bad);
    await settle();
    assert.deepEqual(errors, ['WebSession: cannot read a Blob to send: Error: unreadable']);
});

test('explain: no fetch declared at all: the generic reason', async (t) => {
    const saved = globalThis.fetch;
    delete globalThis.fetch;
    try {
        const { WS, s } = setup(t, { fetch: undefined });
        const end = ends(s);
        await failThreeTimes(t, WS);
        assert.equal(end.close.reason, 'target is not a persistent WebSession script (the server did not upgrade)');
    } finally {
        globalThis.fetch = saved;
    }
});

test('acks: a lost connection takes its ack timer along; the new one starts its own', (t) => {
    const { WS, server } = setup(t, { minBackoff: 0 });
    handshake(server);
    const acks = () => WS.last().texts().filter((f) => f[0] === 'A');
    server.send('a');                               // ack timer: t = 20
    t.mock.timers.tick(5);
    WS.last().drop();
    t.mock.timers.tick(0);                          // minBackoff 0: reconnect at once
    assert.equal(WS.instances.length, 2);
    handshake(server);                              // R1: the server has our count
    t.mock.timers.tick(5);
    server.send('b');                               // t = 10: a new timer, t = 30
    t.mock.timers.tick(10);
    assert.deepEqual(acks(), [], 'not at t = 20');
    t.mock.timers.tick(10);
    assert.deepEqual(acks(), ['A2']);
});

// ---- timers that close() and the end leave behind (real timers) ------------------------

const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('close(): a scheduled reconnection does not stay behind (real timers)', async () => {
    const WS = makeFakeWebSocket();
    const base = activeTimers();
    const s = new WebSession('ws://h/a', { WebSocket: WS, transport: 'websocket', heartbeatTimeout: 0 });
    const server = new FakeServer(WS, { id: ID });
    handshake(server);
    WS.last().drop();                               // the retry timer
    assert.equal(activeTimers(), base + 1);
    s.close();                                      // a connection only to say goodbye
    assert.equal(WS.instances.length, 2);
    assert.equal(activeTimers(), base + 1, 'its connect timer, not the retry any more');
    WS.last().accept();
    WS.last().serverClose(1000);
    assert.equal(s.readyState, WebSession.CLOSED);
    assert.equal(activeTimers(), base);
});

test('close(): a pending ack timer does not stay behind (real timers)', async () => {
    const WS = makeFakeWebSocket();
    const base = activeTimers();
    const s = new WebSession('ws://h/a', { WebSocket: WS, transport: 'websocket', heartbeatTimeout: 0 });
    const server = new FakeServer(WS, { id: ID });
    handshake(server);
    assert.equal(activeTimers(), base);
    server.send('x');                               // the ack timer
    assert.equal(activeTimers(), base + 1);
    s.close();
    assert.equal(activeTimers(), base + 1, 'the close timer, not the ack timer any more');
    WS.last().serverClose(1000);
    assert.equal(activeTimers(), base);
});

test('explain: the HEAD\'s abort timer is cleared once it is answered (real timers)', async () => {
    const WS = makeFakeWebSocket();
    const inits = [];
    const base = activeTimers();
    const s = new WebSession('ws://h/a', {
        WebSocket: WS, transport: 'websocket', minBackoff: 1, maxBackoff: 1,
        fetch: async (url, init) => { inits.push(init); return { status: 404 }; },
    });
    const end = ends(s);
    for (let i = 0; i < 3; i++) {
        WS.last().drop();
        await new Promise((r) => setTimeout(r, 5));
    }
    await settle();
    assert.match(end.close.reason, /answers HTTP 404/);
    assert.equal(inits.length, 1);
    assert.equal(activeTimers(), base, 'no timer left');
    assert.equal(inits[0].signal.aborted, false);
});
