// Details of the HTTP fallback transports that the mutation campaign (make
// mutate-js) found untested: header and init values, exact reasons, guards
// against a second close or a late send, the ids it accepts. On the fake
// fetch: run with `node --test client/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSession, makeFakeFetch } from './fake.mjs';
import { ID, URLS, flush, transport, opened } from './helpers.mjs';

const { TRANSPORTS } = WebSession._internal;


test('construction: the message names the transport; the global fetch is the default', async () => {
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
});

// ---- down: decoding and polls --------------------------------------------------------

test('down: a UTF-8 character cut between two chunks arrives whole', async (t) => {
    const { fetch, messages } = await opened(t, 'sse');
    const bytes = new TextEncoder().encode('data: Dé€\n\n');
    const get = fetch.last('GET');
    get.push(bytes.subarray(0, 8));                 // inside the é
    await flush();
    get.push(bytes.subarray(8));
    await flush();
    assert.equal(messages().at(-1), 'Dé€');
});

test('down: a refusal without a body and without WebSession-Error is still "not a WebSession script"', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().respond(404, {}, null);
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'HTTP 404: not a WebSession script', true]);
});

test('down: a refusal with WebSession-Error and an empty body', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().respond(503, { 'WebSession-Error': 'busy' }, '');
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'HTTP 503 busy', undefined]);
});

test('poll: an answer without R on the first poll: exact reason', async (t) => {
    const { tr, fetch, log } = transport(t, 'poll', { id: ID });
    await flush();
    tr.send('R0');
    fetch.last().open().push(': websession.v1\n\n').end();
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'poll failed: no resume point in the answer', undefined]);
});

test('poll: a poll that brought its R and then broke is retried after a backoff, not at once', async (t) => {
    const { fetch } = await opened(t, 'poll');
    assert.equal(fetch.gets().length, 1);
    fetch.last('GET').fail();
    await flush();
    assert.equal(fetch.gets().length, 1, 'not at once');
    t.mock.timers.tick(150);                        // backoffDelay(1): 100 + 0.5 * 100
    await flush();
    assert.equal(fetch.gets().length, 2);
});

test('down: a malformed R is passed on to the session as it is', async (t) => {
    const { fetch, messages, closes } = await opened(t, 'sse');
    fetch.last('GET').events('Rx');
    await flush();
    assert.equal(messages().at(-1), 'Rx');
    assert.deepEqual(closes(), []);
});

// ---- up: POSTs --------------------------------------------------------------------------

test('up: an R without a window: no budget, every D in one POST', async (t) => {
    const x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    await flush();
    x.fetch.last('GET').open().events('R0');
    await flush();
    for (const d of ['Da', 'Db', 'Dc']) x.tr.send(d);
    await flush();
    assert.deepEqual(x.fetch.last('POST').records().map((r) => r[1]), ['Da', 'Db', 'Dc']);
});

test('up: the budget is exact: records until it is reached, not one more', async (t) => {
    const { tr, fetch } = await opened(t, 'sse', { window: 14 });   // 'T 2\nDa\n' is 7 bytes
    for (const d of ['Da', 'Db', 'Dc']) tr.send(d);
    await flush();
    assert.deepEqual(fetch.last('POST').records().map((r) => r[1]), ['Da', 'Db']);
});

test('up: an A coming down before the first R covers nothing; a stale A does not renumber', async (t) => {
    let x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.tr.send('Dx');
    x.tr.send('Dy');
    await flush();
    x.fetch.last('GET').open().events('A1', 'R0 1000');
    await flush();
    assert.deepEqual(x.fetch.last('POST').records().map((r) => r[1]), ['Dx', 'Dy']);
    t.mock.timers.reset();
    x = await opened(t, 'sse', { n: 5 });
    x.fetch.last('GET').events('A2');
    await flush();
    x.tr.send('Dz');
    await flush();
    assert.equal(x.fetch.last('POST').headers['websession-sequence'], '6');
});

test('up: an A coming down drops a held D before its re-send', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    tr.send('Dx');
    await flush();
    fetch.last('POST').respond(200, {}, 'A0');      // the server took nothing
    await flush();
    fetch.last('GET').events('A1');                 // ... then it did, says the down side
    await flush();
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(fetch.posts().length, 1, 'nothing to send again');
});

test('up: re-sends keep their pause while the server takes some, and grow while it takes none', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    for (const d of ['D1', 'D2', 'D3']) tr.send(d);
    await flush();
    fetch.last('POST').respond(200, {}, 'A1');      // took one: pause 100
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.posts().length, 2);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '2');
    fetch.last('POST').respond(200, {}, 'A2');      // took one more: still 100
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.posts().length, 3);
    fetch.last('POST').respond(200, {}, 'A2');      // took none: 200
    await flush();
    t.mock.timers.tick(199);
    await flush();
    assert.equal(fetch.posts().length, 3);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(fetch.posts().length, 4);
});

test('up: an ack-only POST during a hold does not reset the growing pause', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    tr.send('Dx');
    await flush();
    fetch.last('POST').respond(200, {}, 'A0');      // took none: pause 100
    await flush();
    tr.send('A3');
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'A3']]);
    fetch.last('POST').respond(200, {}, 'A0');
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.posts().length, 3, 'the re-send');
    fetch.last('POST').respond(200, {}, 'A0');      // took none again: 200
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.posts().length, 3, 'not after 100');
    t.mock.timers.tick(100);
    await flush();
    assert.equal(fetch.posts().length, 4);
});

test('up: a close before the first R goes with Sequence 1; its answer is no acknowledgement', async (t) => {
    const x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.fetch.last('GET').open();
    await flush();
    x.tr.close(1000, 'early');
    await flush();
    const post = x.fetch.last('POST');
    assert.deepEqual(post.records(), [['T', 'C1000 early']]);
    assert.equal(post.headers['websession-sequence'], '1');
    post.respond(200, {}, 'A0');
    await flush();
    assert.deepEqual(x.messages(), []);
});

test('up: a hold is not started by a POST before the first R', async (t) => {
    const x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.fetch.last('GET').open();
    await flush();
    x.tr.send('A3');
    await flush();
    x.fetch.last('POST').respond(200, {}, 'A0');
    await flush();
    x.fetch.last('GET').events('R0 1000');
    await flush();
    x.tr.send('Dx');
    await flush();
    assert.equal(x.fetch.posts().length, 2, 'at once');
    assert.deepEqual(x.fetch.last('POST').records(), [['T', 'Dx']]);
});

test('up: answers: not 200 is no acknowledgement; bad ones have exact reasons', async (t) => {
    const long = 'Z'.repeat(100);
    for (const [status, headers, body, expected] of [
        [200, {}, 'A1x', [1002, 'websession.v1: bad answer to a POST: "A1x"']],
        [200, {}, 'xA1', [1002, 'websession.v1: bad answer to a POST: "xA1"']],
        [200, {}, long, [1002, 'websession.v1: bad answer to a POST: ' + JSON.stringify(long.slice(0, 40))]],
        [410, {}, '', [4410, 'session unknown or expired']],
        [400, {}, '', [1002, 'websession.v1: HTTP 400']],
        [409, { 'WebSession-Error': 'bad-sequence' }, '', [1002, 'websession.v1: HTTP 409 bad-sequence']],
        [404, {}, 'A1', [1002, 'websession.v1: A1']],
    ]) {
        const { tr, fetch, log } = await opened(t, 'sse');
        tr.send('Dx');
        await flush();
        fetch.last('POST').respond(status, headers, body);
        await flush();
        assert.deepEqual(log.at(-1), ['close', ...expected, undefined], body);
        t.mock.timers.reset();
    }
});

test('up: POSTs failing until connectTimeout: exact reasons', async (t) => {
    for (const [fail, reason] of [
        [(r) => r.fail(new TypeError('fetch failed')), 'POST failed: request failed: fetch failed'],
        [(r) => r.fail('boom'), 'POST failed: request failed: boom'],
        [(r) => r.respond(503, {}, 'busy'), 'POST failed: HTTP 503: busy'],
        [(r) => r.respond(502, {}, ''), 'POST failed: HTTP 502'],
    ]) {
        const { tr, fetch, log } = await opened(t, 'sse', { connectTimeout: 1000 });
        tr.send('Dx');
        await flush();
        for (let i = 0; i < 20 && log.at(-1)[0] !== 'close'; i++) {
            const p = fetch.last('POST');
            if (p.live && !p.answered) fail(p);
            await flush();
            t.mock.timers.tick(10000);
            await flush();
        }
        assert.deepEqual(log.at(-1), ['close', 1006, reason, undefined]);
        t.mock.timers.reset();
    }
});

test('up: a failed ack POST is retried with the newest ack', async (t) => {
    let x = await opened(t, 'sse');
    x.tr.send('A5');
    await flush();
    x.fetch.last('POST').fail();
    await flush();
    x.tr.send('A7');                               // newer, while the retry waits
    t.mock.timers.tick(10000);
    await flush();
    assert.deepEqual(x.fetch.last('POST').records(), [['T', 'A7']]);
    t.mock.timers.reset();
    x = await opened(t, 'sse');
    x.tr.send('A5');
    await flush();
    x.tr.send('A7');                               // newer, while the POST is under way
    x.fetch.last('POST').fail();
    await flush();
    t.mock.timers.tick(10000);
    await flush();
    assert.equal(x.fetch.posts().length, 2);
    assert.deepEqual(x.fetch.last('POST').records(), [['T', 'A7']]);
    t.mock.timers.reset();
    x = await opened(t, 'sse');
    x.tr.send('A5');
    await flush();
    x.fetch.last('POST').fail();
    await flush();
    t.mock.timers.tick(10000);
    await flush();
    assert.equal(x.fetch.posts().length, 2);
    assert.deepEqual(x.fetch.last('POST').records(), [['T', 'A5']], 'the same ack again');
});

test('sse parser: other fields do not set the type; a CR-LF cut once does not eat later LFs', () => {
    const { sseParser } = WebSession._internal;
    const got = [];
    let p = sseParser((type, data) => got.push([type, data]));
    p.push('retry: 10\nid: 7\ndata: x\n\n');
    assert.deepEqual(got, [['', 'x']]);
    got.length = 0;
    p = sseParser((type, data) => got.push([type, data]));
    p.push('data: a\r');
    p.push('\n');                                   // the LF of that CRLF
    p.push('\n');                                   // an empty line: dispatch
    assert.deepEqual(got, [['', 'a']]);
});

test('down: an R the transport cannot read does not start the uploads', async (t) => {
    const x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.tr.send('Dx');
    await flush();
    x.fetch.last('GET').open().events('R01 100');
    await flush();
    assert.equal(x.fetch.posts().length, 0);
    x.fetch.last('GET').events('R0 100');
    await flush();
    assert.equal(x.fetch.posts().length, 1);
});

test('no fetch declared at all (not even undefined): TypeErrors, not ReferenceErrors', () => {
    const saved = globalThis.fetch;
    delete globalThis.fetch;
    try {
        assert.throws(() => TRANSPORTS.sse(URLS, ['websession.v1'], {}, {}), TypeError);
        assert.throws(() => new WebSession('ws://h/a'), { name: 'TypeError' });
        assert.throws(() => new WebSession('ws://h/a', { transport: 'sse' }), TypeError);
    } finally {
        globalThis.fetch = saved;
    }
});

/** A Response whose body stream records its cancellation. */
function cancellableResponse(status, headers) {
    const state = { cancelled: false, controller: null };
    const body = new ReadableStream({
        start: (c) => { state.controller = c; },
        cancel: () => { state.cancelled = true; },
    });
    return { res: new Response(body, { status, headers }), state };
}

test('down: a refused answer\'s body is cancelled, not left open', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    const { res, state } = cancellableResponse(404, { 'Content-Type': 'text/html' });
    const r = fetch.last();
    r.answered = true;
    r.ended = true;
    r.resolve(res);
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'HTTP 404 (text/html): not a WebSession script', true]);
    assert.equal(state.cancelled, true);
});

test('down: after abort, a fetch that ignores its signal has its stream cancelled', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let answer;
    const fetch = () => new Promise((r) => { answer = r; });
    const log = [];
    const tr = TRANSPORTS.sse(URLS, ['websession.v1', 'websession.id.' + ID], { fetch, connectTimeout: 10000 }, {
        open: () => {}, message: (d) => log.push(d), close: (...a) => log.push(['close', ...a]),
    });
    await flush();
    tr.send('R0');
    const { res, state } = cancellableResponse(200, { 'Content-Type': 'text/event-stream' });
    answer(res);
    await flush();
    state.controller.enqueue(new TextEncoder().encode('data: R0 100\n\n'));
    await flush();
    assert.deepEqual(log, ['R0 100']);
    tr.abort();
    state.controller.enqueue(new TextEncoder().encode('data: Dlate\n\n'));
    await flush();
    assert.equal(state.cancelled, true);
    assert.deepEqual(log, ['R0 100'], 'nothing after abort');
});

test('poll: a retried poll is not an opening poll', async (t) => {
    const { fetch } = await opened(t, 'poll');
    assert.equal(fetch.last('GET').headers['websession-poll'], 'open');
    fetch.last('GET').fail();
    await flush();
    t.mock.timers.tick(150);
    await flush();
    assert.equal(fetch.gets().length, 2);
    assert.equal(fetch.last('GET').headers['websession-poll'], undefined);
    fetch.last('GET').respond(404, { 'Content-Type': 'text/html' }, 'proxy');
    await flush();
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(fetch.gets().length, 3, 'a later poll refused without WebSession-Error is retried, not fatal');
});

test('up: a 200 answer whose body cannot be read is a bad answer', async (t) => {
    const { tr, fetch, log } = await opened(t, 'sse');
    tr.send('Dx');
    await flush();
    const r = fetch.last('POST');
    r.answered = true;
    r.ended = true;
    r.resolve({ status: 200, headers: new Headers(), text: async () => { throw new TypeError('broken'); } });
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1002, 'websession.v1: bad answer to a POST: ""', undefined]);
});

test('down: aborted while a refusal\'s body is read: no close event after all', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    const { res, state } = cancellableResponse(410, { 'WebSession-Error': 'session-unknown' });
    const r = fetch.last();
    r.answered = true;
    r.ended = true;
    r.resolve(res);
    await flush();
    tr.abort();
    state.controller.enqueue(new TextEncoder().encode('gone'));
    state.controller.close();
    await flush();
    assert.deepEqual(log, [['open']]);
});

// ---- what stays behind after abort: timers and signals ---------------------------------

const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('abort: no timer of the transport stays behind (real timers)', async () => {
    const fetch = makeFakeFetch();
    const tr = TRANSPORTS.sse(URLS, ['websession.v1', 'websession.id.' + ID], {
        fetch, minBackoff: 100, maxBackoff: 10000, connectTimeout: 10000, random: () => 0.5,
    }, { open() {}, message() {}, close() {} });
    await flush();
    tr.send('R0');
    fetch.last('GET').open().events('R0 1000');
    await flush();
    const base = activeTimers();
    tr.send('Dx');
    await flush();
    fetch.last('POST').fail();                      // a retry after a backoff: a timer
    await flush();
    assert.equal(activeTimers(), base + 1);
    tr.abort();
    assert.equal(activeTimers(), base, 'abort cleared it');
});

test('abort: only requests still under way are aborted, not those that ended', async (t) => {
    const { tr, fetch } = await opened(t, 'poll');
    const firstPoll = fetch.last('GET');
    firstPoll.endPoll();                            // a complete poll: the next one starts
    await flush();
    tr.send('Dx');
    await flush();
    const post = fetch.last('POST');
    post.respond(200, {}, 'A1');
    await flush();
    const secondPoll = fetch.last('GET');
    assert.notEqual(secondPoll, firstPoll);
    tr.abort();
    assert.equal(firstPoll.init.signal.aborted, false);
    assert.equal(post.init.signal.aborted, false);
    assert.equal(secondPoll.init.signal.aborted, true);
});

test('abort: a POST or a poll under way leaves no retry timer behind (real timers)', async () => {
    for (const variant of ['sse', 'poll']) {
        const fetch = makeFakeFetch();
        const tr = TRANSPORTS[variant](URLS, ['websession.v1', 'websession.id.' + ID], {
            fetch, minBackoff: 100, maxBackoff: 10000, connectTimeout: 10000, random: () => 0.5,
        }, { open() {}, message() {}, close() {} });
        await flush();
        tr.send('R0');
        fetch.last('GET').open().events('R0 1000');
        await flush();
        tr.send('Dx');
        await flush();
        assert.ok(fetch.last('POST').live);
        const base = activeTimers();
        tr.abort();                                 // the POST (and a poll) fail with AbortError
        await flush();
        assert.equal(activeTimers(), base, variant);
    }
});
