// Details of the HTTP fallback transports that the mutation campaign (make
// mutate-js) found untested: header and init values, exact reasons, guards
// against a second close or a late send, the ids it accepts. On the fake
// fetch: run with `node --test client/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSession, makeFakeFetch, sseEvent, settle } from './fake.mjs';

const ID = 'Xk_-0123456789abcdefghijklmnopqr';
const { TRANSPORTS } = WebSession._internal;
const URLS = { ws: 'ws://example.test/ws/count', http: 'http://example.test/ws/count' };
const flush = () => settle(30);

function transport(t, variant, { id = null, ...options } = {}) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = makeFakeFetch();
    const log = [];
    const events = {
        open: () => log.push(['open']),
        message: (data) => log.push(['message', data]),
        close: (...args) => log.push(['close', ...args]),
    };
    const tr = TRANSPORTS[variant](URLS, id ? ['websession.v1', 'websession.id.' + id] : ['websession.v1'], {
        fetch, minBackoff: 100, maxBackoff: 10000, connectTimeout: 10000, random: () => 0.5, ...options,
    }, events);
    const messages = () => log.filter((e) => e[0] === 'message').map((e) => e[1]);
    const closes = () => log.filter((e) => e[0] === 'close');
    return { tr, fetch, log, messages, closes };
}

async function opened(t, variant, { m = 0, n = 0, window = 1 << 20, ...rest } = {}) {
    const x = transport(t, variant, { id: ID, ...rest });
    await flush();
    x.tr.send('R' + m);
    await flush();
    x.fetch.last('GET').open().push(': websession.v1\n\n').events('R' + n + ' ' + window);
    await flush();
    return x;
}

test('construction: the message names the transport; the global fetch is the default', async (t) => {
    const saved = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
        assert.throws(() => TRANSPORTS.poll(URLS, ['websession.v1'], {}, {}), {
            name: 'TypeError',
            message: 'WebSession: the poll transport needs fetch, AbortController and TextEncoder (pass options.fetch)',
        });
        const fake = makeFakeFetch();
        globalThis.fetch = fake;
        const tr = TRANSPORTS.sse(URLS, ['websession.v1'], {}, { open() {}, message() {}, close() {} });
        tr.send('R0');
        assert.equal(fake.requests.length, 1, 'the global fetch');
        tr.abort();
    } finally {
        globalThis.fetch = saved;
    }
    const AC = globalThis.AbortController;
    delete globalThis.AbortController;
    try {
        assert.throws(() => TRANSPORTS.sse(URLS, ['websession.v1'], { fetch: makeFakeFetch() }, {}), TypeError);
    } finally {
        globalThis.AbortController = AC;
    }
    void t;
});

test('down: the GET\'s method is GET; one R starts one GET; nothing after abort', async (t) => {
    const { tr, fetch } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    tr.send('R5');
    assert.equal(fetch.requests.length, 1);
    assert.equal(fetch.last().init.method, 'GET');
    t.mock.timers.reset();
    const y = transport(t, 'sse');
    await flush();
    y.tr.abort();
    y.tr.send('R0');
    y.tr.send('Dx');
    y.tr.close(1000, '');
    await flush();
    assert.equal(y.fetch.requests.length, 0, 'an aborted transport makes no request');
});

test('down: no Session-ID header, no I; one on a resume is not a new id', async (t) => {
    let x = transport(t, 'sse');
    await flush();
    x.tr.send('R0');
    x.fetch.last().open().push(': websession.v1\n\n');
    await flush();
    assert.deepEqual(x.messages(), []);
    x.tr.send('Dup');
    await flush();
    assert.equal(x.fetch.posts().length, 0, 'no id, no POST');
    t.mock.timers.reset();
    x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.fetch.last().open({ 'Session-ID': 'OtherId' }).events('R0 100');
    await flush();
    assert.deepEqual(x.messages(), ['R0 100']);
});

test('down: a status other than 200 is refused even with an event stream; so is no Content-Type', async (t) => {
    for (const [status, headers, reason] of [
        [500, { 'Content-Type': 'text/event-stream' }, 'HTTP 500 (text/event-stream): not a WebSession script'],
        [200, {}, 'HTTP 200: not a WebSession script'],
        [200, { 'Content-Type': 'x-text/event-stream' }, 'HTTP 200 (x-text/event-stream): not a WebSession script'],
    ]) {
        const { tr, fetch, log } = transport(t, 'sse');
        await flush();
        tr.send('R0');
        const r = fetch.last();
        r.answered = true;
        r.ended = true;
        r.resolve(new Response(status === 200 && !headers['Content-Type'] ? null : 'x', { status, headers }));
        await flush();
        assert.deepEqual(log.at(-1), ['close', 1006, reason, true], reason);
        t.mock.timers.reset();
    }
});

test('down: a body-less 200 event stream is an empty response', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().respond(200, { 'Content-Type': 'text/event-stream' }, null);
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'the event stream ended: empty response', undefined]);
});

test('down: a failed request gives its error message, or the error itself', async (t) => {
    for (const [err, reason] of [[new TypeError('fetch failed'), 'request failed: fetch failed'],
                                 ['boom', 'request failed: boom']]) {
        const { tr, fetch, log } = transport(t, 'sse');
        await flush();
        tr.send('R0');
        fetch.last().fail(err);
        await flush();
        assert.deepEqual(log.at(-1), ['close', 1006, 'the event stream ended: ' + reason, undefined]);
        t.mock.timers.reset();
    }
    const { fetch, log } = await opened(t, 'sse');
    fetch.last('GET').end();
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'the event stream ended', undefined]);
});

test('down: a refusal\'s body becomes a one-line reason of at most 200 characters', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().respond(503, { 'WebSession-Error': 'busy' }, ' \n too\t\n many \n' + 'x'.repeat(300));
    await flush();
    const reason = log.at(-1)[2];
    assert.equal(reason, 'HTTP 503 busy: ' + ('too many ' + 'x'.repeat(300)).slice(0, 200));
});

test('down: a refusal whose body cannot be read, and a session-unknown without 410', async (t) => {
    let x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R3');
    const r = x.fetch.last();
    r.answered = true;
    r.ended = true;
    r.resolve({ status: 410, headers: new Headers({ 'WebSession-Error': 'session-unknown' }),
                body: null, text: async () => { throw new TypeError('broken body'); } });
    await flush();
    assert.deepEqual(x.log.at(-1), ['close', 4410, 'session unknown or expired', undefined]);
    t.mock.timers.reset();
    x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R3');
    x.fetch.last().respond(404, { 'WebSession-Error': 'session-unknown' }, 'no such session');
    await flush();
    assert.deepEqual(x.log.at(-1), ['close', 4410, 'no such session', undefined]);
    t.mock.timers.reset();
    x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R3');
    x.fetch.last().respond(410, { 'WebSession-Error': 'gone' }, '');
    await flush();
    assert.deepEqual(x.log.at(-1), ['close', 4410, 'session unknown or expired', undefined]);
});

test('broken: the goodbye POST: C1000 with the reason cut to 120, Sequence 1, keepalive, no-store', async (t) => {
    const data = '\u0001'.repeat(100);
    const { fetch, log } = await opened(t, 'sse');
    fetch.last('GET').push('event: close\ndata: ' + data + '\n\n');
    await flush();
    const reason = 'websession.v1: bad close event ' + JSON.stringify(data.slice(0, 40));
    assert.deepEqual(log.at(-1), ['close', 1002, reason, undefined]);
    const bye = fetch.last('POST');
    assert.deepEqual(bye.records(), [['T', 'C1000 ' + reason.slice(0, 120)]]);
    assert.equal(bye.headers['websession-sequence'], '1');
    assert.equal(bye.headers['session-id'], ID);
    assert.equal(bye.headers['websession-transport'], 'sse');
    assert.equal(bye.init.keepalive, true);
    assert.equal(bye.init.cache, 'no-store');
    assert.equal(bye.init.method, 'POST');
});

test('broken: exact reasons; no goodbye POST without an id', async (t) => {
    const type = 'y'.repeat(60);
    for (const [ev, why] of [
        ['event: ' + type + '\ndata: x\n\n', 'unknown event ' + JSON.stringify(type.slice(0, 40))],
        ['event: binary\ndata: !!\n\n', 'bad binary event'],
        ['event: close\ndata: 123456\n\n', 'bad close event "123456"'],
        ['event: close\ndata: x1000\n\n', 'bad close event "x1000"'],
    ]) {
        const { fetch, log } = await opened(t, 'sse');
        fetch.last('GET').push(ev);
        await flush();
        assert.deepEqual(log.at(-1), ['close', 1002, 'websession.v1: ' + why, undefined], why);
        t.mock.timers.reset();
    }
    for (const ev of ['event: message\ndata: Dm\n\n', 'data: Dn\n\n']) {
        const { fetch, messages, closes } = await opened(t, 'sse');
        fetch.last('GET').push(ev);
        await flush();
        assert.equal(messages().at(-1), ev.includes('Dm') ? 'Dm' : 'Dn');
        assert.deepEqual(closes(), []);
        t.mock.timers.reset();
    }
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().open().push('event: nonsense\ndata: x\n\n');
    await flush();
    assert.equal(log.at(-1)[1], 1002);
    assert.equal(fetch.posts().length, 0, 'no id: nobody to tell');
});

test('ids: I sets the id once, only with base64url characters', async (t) => {
    const { tr, fetch } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    const get = fetch.last();
    get.open().events('Ibad.id', 'Iok!', 'R0 100');
    tr.send('Dx');
    await flush();
    assert.equal(fetch.posts().length, 0, 'no valid id yet: no POST');
    get.events('I' + ID, 'Ianother');
    await flush();
    assert.equal(fetch.posts().length, 1);
    assert.equal(fetch.last('POST').headers['session-id'], ID);
});

test('close: a second close() adds nothing; close() after the C went out neither', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    tr.close(3000, 'first');
    tr.close(3001, 'second');
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'C3000 first']]);
    fetch.last('POST').respond(200, {}, 'A0');
    await flush();
    tr.close(3002, 'third');
    await flush();
    assert.equal(fetch.posts().length, 1);
});

test('close: a close event\'s message tail is kept whole', async (t) => {
    const { fetch, log } = await opened(t, 'sse');
    fetch.last('GET').push('event: close\ndata: 4003 a: b\n\n');
    await flush();
    assert.deepEqual(log.at(-1), ['close', 4003, 'a: b', undefined]);
    void sseEvent;
});
