// Unit tests of websession.js's HTTP fallback transports ('sse', 'poll')
// and of the 'auto' choice, against a fake fetch (no server): run with
// `node --test client/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
    WebSession, makeFakeWebSocket, makeFakeFetch, FakeHttpServer, sseEvent, recordEvents,
} from './fake.mjs';
import { ID, URLS, flush, transport, opened } from './helpers.mjs';

const { TRANSPORTS, sseParser } = WebSession._internal;


// ---- the event-stream parser ---------------------------------------------------

const STREAM = ': websession.v1\r\n\r\n'
    + 'data: one\n\n'
    + 'data: two\r\ndata:lines\r\n\r\n'                 // no space after the colon: kept
    + 'event: text64\rdata: RCByCg==\r\r'              // CR line ends
    + 'id: 7\nretry: 10\nignored\ndata\n\n'            // a bare field name: empty data
    + 'event: close\n\n'                              // no data: not dispatched
    + 'data: ünïcødé €\n\n'
    + 'data:  two spaces\n\n'
    + 'data: never ended';
const EXPECTED = [['', 'one'], ['', 'two\nlines'], ['text64', 'RCByCg=='], ['', ''],
                  ['', 'ünïcødé €'], ['', ' two spaces']];

test('sse parser: fields, comments, CRLF/LF/CR, data lines joined with LF', () => {
    const got = [];
    const p = sseParser((type, data) => got.push([type, data]));
    p.push(STREAM);
    assert.deepEqual(got, EXPECTED);
});

test('sse parser: the same events wherever the text is cut, even between CR and LF', () => {
    for (let i = 0; i <= STREAM.length; i++) {
        for (const j of [i, Math.min(STREAM.length, i + 1), Math.min(STREAM.length, i + 7)]) {
            const got = [];
            const p = sseParser((type, data) => got.push([type, data]));
            p.push(STREAM.slice(0, i));
            p.push('');
            p.push(STREAM.slice(i, j));
            p.push(STREAM.slice(j));
            assert.deepEqual(got, EXPECTED, `cut at ${i} and ${j}`);
        }
    }
});

test('sse parser: comments go to onComment, without the colon and one space, and make no event', () => {
    const got = [];
    const comments = [];
    const p = sseParser((type, data) => got.push([type, data]), (c) => comments.push(c));
    p.push(': websession.v1\n\ndata: x\n:end\n:  two\n\n: end\r\n\r\n');
    assert.deepEqual(comments, ['websession.v1', 'end', ' two', 'end']);
    assert.deepEqual(got, [['', 'x']]);
});

// ---- the down side ----------------------------------------------------------------

test('down: open comes at once; R<m> starts a GET with the count, no id on a new session', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse');
    assert.deepEqual(log, [], 'asynchronously');
    assert.equal(tr.protocol, 'websession.v1');
    await flush();
    assert.deepEqual(log, [['open']]);
    assert.equal(fetch.requests.length, 0, 'nothing before the session\'s R');
    tr.send('R0');
    const get = fetch.last();
    assert.equal(get.url, URLS.http);
    assert.equal(get.method, 'GET');
    assert.deepEqual(get.headers, {
        'websession-transport': 'sse', 'websession-received': '0', accept: 'text/event-stream',
    });
    assert.equal(get.init.cache, 'no-store');
    assert.ok(get.init.signal, 'abortable');
});

test('down: a resume sends the id in Session-ID, never in the URL', async (t) => {
    const { tr, fetch } = transport(t, 'sse', { id: ID });
    await flush();
    tr.send('R42');
    const get = fetch.last();
    assert.equal(get.headers['session-id'], ID);
    assert.equal(get.headers['websession-received'], '42');
    assert.ok(!get.url.includes(ID));
});

test('down: Session-ID header first as I, then every event as a message, in any chunking', async (t) => {
    const bin = Uint8Array.from([0x44, 0, 0xff, 10, 13]);
    const body = ': websession.v1\n\n' + sseEvent('I' + ID) + sseEvent('R0 1048576')
        + sseEvent('Dplain') + sseEvent('Dtwo\nlines') + sseEvent('Dcr\r\nlf ünï €') + sseEvent(bin)
        + sseEvent('D') + sseEvent('P');
    const bytes = new TextEncoder().encode(body);
    const expected = ['I' + ID, 'I' + ID, 'R0 1048576', 'Dplain', 'Dtwo\nlines', 'Dcr\r\nlf ünï €', bin, 'D', 'P'];
    for (const cut of [1, 2, 3, 5, 17, bytes.length]) {          // chunks of `cut` bytes: cuts inside
        const { tr, fetch, messages } = transport(t, 'sse');     // characters and CRLF too
        await flush();
        tr.send('R0');
        const get = fetch.last().open({ 'Session-ID': ID });
        for (let i = 0; i < bytes.length; i += cut) get.push(bytes.slice(i, i + cut));
        await flush();
        assert.deepEqual(messages(), expected, 'chunks of ' + cut);
        t.mock.timers.reset();
    }
});

test('down: the close event ends the connection with its code and reason, and stops everything', async (t) => {
    const { tr, fetch, log } = await opened(t, 'sse');
    tr.send('Dup');
    await flush();
    const post = fetch.last('POST');
    fetch.last('GET').push('event: close\ndata: 4003 script exited with status 3\n\n' + sseEvent('Dlate'));
    await flush();
    assert.deepEqual(log.at(-1), ['close', 4003, 'script exited with status 3', undefined]);
    assert.equal(log.filter((e) => e[0] === 'close').length, 1);
    assert.ok(post.aborted, 'the POST under way is abandoned');
    assert.ok(!log.some((e) => e[1] === 'Dlate'), 'nothing after the close');
    tr.send('Dignored');
    await flush();
    assert.equal(fetch.posts().length, 1);
});

test('down: a close event without a reason, a bad one is a protocol error', async (t) => {
    let x = await opened(t, 'sse');
    x.fetch.last('GET').push('event: close\ndata: 1000\n\n');
    await flush();
    assert.deepEqual(x.log.at(-1), ['close', 1000, '', undefined]);
    t.mock.timers.reset();
    for (const bad of ['event: close\ndata: soon\n\n', 'event: text64\ndata: !!\n\n',
                       'event: text64\ndata: /w==\n\n', 'event: surprise\ndata: x\n\n']) {
        x = await opened(t, 'sse');
        x.fetch.last('GET').push(bad);
        await flush();
        assert.equal(x.log.at(-1)[1], 1002, bad);
        assert.match(x.log.at(-1)[2], /^websession\.v1: /);
        const bye = x.fetch.last('POST');
        assert.deepEqual(bye.records()[0][1].slice(0, 6), 'C1000 ', 'the server is told: ' + bad);
        t.mock.timers.reset();
    }
});

test('down: an sse stream that ends without a close event is a lost connection (1006)', async (t) => {
    const { fetch, log } = await opened(t, 'sse');
    fetch.last('GET').end();
    await flush();
    assert.equal(log.at(-1)[0], 'close');
    assert.equal(log.at(-1)[1], 1006);
    assert.equal(log.at(-1)[3], undefined, 'not fatal');
    assert.equal(fetch.gets().length, 1, 'the session, not the transport, reconnects');
});

test('down: a broken sse stream or request is a lost connection too', async (t) => {
    let x = await opened(t, 'sse');
    x.fetch.last('GET').fail();
    await flush();
    assert.deepEqual(x.log.at(-1).slice(0, 2), ['close', 1006]);
    t.mock.timers.reset();
    x = transport(t, 'sse');
    await flush();
    x.tr.send('R0');
    x.fetch.last('GET').fail();
    await flush();
    assert.deepEqual(x.log.at(-1).slice(0, 2), ['close', 1006]);
    assert.match(x.log.at(-1)[2], /request failed/);
});

test('down: refusals: 410 ends the session, other WebSession-Errors are retried, others are fatal', async (t) => {
    const cases = [
        [410, { 'WebSession-Error': 'session-unknown' }, 'session unknown or expired\n',
         [4410, 'session unknown or expired', undefined]],
        [503, { 'WebSession-Error': 'too-many-sessions', 'Retry-After': '5' }, 'too many sessions',
         [1006, 'HTTP 503 too-many-sessions: too many sessions', undefined]],
        [403, { 'WebSession-Error': 'origin-refused' }, 'origin http://evil refused',
         [1006, 'HTTP 403 origin-refused: origin http://evil refused', undefined]],
        [404, { 'Content-Type': 'text/html' }, '<h1>Not Found</h1>',
         [1006, 'HTTP 404 (text/html): not a WebSession script', true]],
        [200, { 'Content-Type': 'text/html' }, '<p>a page</p>',
         [1006, 'HTTP 200 (text/html): not a WebSession script', true]],
        [426, { 'Content-Type': 'text/plain' }, 'Upgrade Required', [1006, 'HTTP 426 (text/plain): not a WebSession script', true]],
    ];
    for (const variant of ['sse', 'poll']) {
        for (const [status, headers, body, expected] of cases) {
            const { tr, fetch, log } = transport(t, variant);
            await flush();
            tr.send('R0');
            fetch.last().respond(status, headers, body);
            await flush();
            assert.deepEqual(log, [['open'], ['close', ...expected]], variant + ' ' + status);
            t.mock.timers.reset();
        }
    }
});

// ---- poll -------------------------------------------------------------------------

test('poll: WebSession-Poll: open first; then at once again, counting what it delivered', async (t) => {
    const { tr, fetch, messages } = transport(t, 'poll');
    await flush();
    tr.send('R0');
    const first = fetch.last();
    assert.equal(first.headers['websession-poll'], 'open');
    assert.equal(first.headers['websession-transport'], 'poll');
    first.open({ 'Session-ID': ID }).events('I' + ID, 'R0 1048576').endPoll();
    await flush();
    const second = fetch.last();
    assert.notEqual(second, first, 'polled again at once');
    assert.deepEqual([second.headers['session-id'], second.headers['websession-received'],
                      second.headers['websession-poll']], [ID, '0', undefined]);
    second.open().events('R0 1048576', 'Done', 'Dtwo', Uint8Array.from([0x44, 1])).endPoll();
    await flush();
    const third = fetch.last();
    assert.equal(third.headers['websession-received'], '3', 'text and binary data count');
    third.open().events('R0 1048576', 'P').endPoll();
    await flush();
    assert.equal(fetch.last().headers['websession-received'], '3', 'R and P do not');
    assert.deepEqual(messages().map((m) => (typeof m === 'string' ? m : 'bin')),
                     ['I' + ID, 'I' + ID, 'R0 1048576', 'A0', 'Done', 'Dtwo', 'bin', 'A0', 'P'],
                     'every R after the first is delivered as an A');
    assert.equal(fetch.posts().length, 0);
});

test('poll: an answer without the end marker was cut: polled again after a backoff, with the count of the whole events it delivered', async (t) => {
    const { fetch, log, messages } = await opened(t, 'poll', { m: 4 });
    fetch.last('GET').events('D5').endPoll();
    await flush();
    assert.equal(fetch.gets().length, 2, 'a complete answer: polled again at once');
    // cut after its R and one whole event, inside the next event
    fetch.last('GET').open().push(': websession.v1\n\n').events('R0 1048576', 'D6').push('data: D7 cut her').end();
    await flush();
    assert.equal(fetch.gets().length, 2, 'not at once: a cut poll is a failed poll');
    t.mock.timers.tick(149);                        // backoffDelay(1): 100 + 0.5 * 100
    await flush();
    assert.equal(fetch.gets().length, 2);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(fetch.gets().length, 3);
    assert.equal(fetch.last('GET').headers['websession-received'], '6', 'D5 and D6, not the cut D7');
    assert.equal(fetch.last('GET').headers['websession-poll'], undefined, 'it had its R: not open');
    fetch.last('GET').open().events('R0 1048576', 'D7 whole').endPoll();
    await flush();
    assert.deepEqual(messages().filter((m) => m[0] === 'D'), ['D5', 'D6', 'D7 whole'], 'each once');
    assert.equal(fetch.gets().length, 4, 'complete again: at once');
    assert.deepEqual(log.filter((e) => e[0] === 'close'), []);
});

test('poll: cut answers count as failed polls: after POLL_RETRIES in a row the connection is lost', async (t) => {
    const { fetch, log } = await opened(t, 'poll');
    fetch.last('GET').endPoll();
    await flush();
    // Each of these brings no R (a proxy that cuts the answer early).
    for (let i = 1; i <= 4; i++) {
        fetch.last('GET').open().push(': websession.v1\n\n').end();
        await flush();
        if (i <= 3) {
            assert.deepEqual(log.filter((e) => e[0] === 'close'), [], 'retry ' + i);
            t.mock.timers.tick(10000);
            await flush();
        }
    }
    assert.deepEqual(log.at(-1), ['close', 1006, 'poll failed: no resume point in the answer', undefined]);
});

test('poll: the end marker on an sse stream means nothing: it goes on', async (t) => {
    const { fetch, log, messages } = await opened(t, 'sse');
    fetch.last('GET').push(': end\n\n').events('Dafter');
    await flush();
    assert.equal(messages().at(-1), 'Dafter');
    fetch.last('GET').end();
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'the event stream ended', undefined], 'no close event: lost');
});

test('poll: 409 stale-request (for an older request of ours) ends nothing: polled again with the same count', async (t) => {
    const { fetch, log } = await opened(t, 'poll', { m: 3 });
    fetch.last('GET').events('D4').endPoll();
    await flush();
    fetch.last('GET').respond(409, { 'Content-Type': 'text/plain', 'WebSession-Error': 'stale-request' },
                              'WebSession-Received is below what this client acknowledged.\n');
    await flush();
    assert.deepEqual(log.filter((e) => e[0] === 'close'), [], 'no close: the transport goes on');
    assert.equal(fetch.gets().length, 2, 'after a backoff, not at once');
    t.mock.timers.tick(150);
    await flush();
    assert.equal(fetch.gets().length, 3);
    assert.equal(fetch.last('GET').headers['websession-received'], '4');
    fetch.last('GET').open().events('R0 1048576', 'D5').endPoll();
    await flush();
    assert.equal(fetch.last('GET').headers['websession-received'], '5');
    assert.deepEqual(log.filter((e) => e[0] === 'close'), []);
});

test('sse: 409 stale-request is a lost stream, never the end of the session', async (t) => {
    const { tr, fetch, log } = transport(t, 'sse', { id: ID });
    await flush();
    tr.send('R2');
    fetch.last('GET').respond(409, { 'Content-Type': 'text/plain', 'WebSession-Error': 'stale-request' }, 'stale\n');
    await flush();
    assert.deepEqual(log.at(-1), ['close', 1006, 'the event stream ended: HTTP 409 stale-request', undefined]);
});

test('poll: the session\'s A is not posted: the polls carry the count', async (t) => {
    const { tr, fetch } = await opened(t, 'poll');
    tr.send('A5');
    await flush();
    assert.equal(fetch.posts().length, 0);
});

test('poll: a failed poll is repeated with the same count after a short backoff, a few times', async (t) => {
    const { fetch, log } = await opened(t, 'poll', { m: 7 });
    fetch.last('GET').events('D8').endPoll();
    await flush();
    assert.equal(fetch.gets().length, 2);
    for (let i = 1; i <= 3; i++) {
        fetch.last('GET').fail();
        await flush();
        assert.equal(fetch.gets().length, i + 1, 'not at once');
        t.mock.timers.tick(100 + 0.5 * (Math.min(10000, 100 * 2 ** i) - 100));
        await flush();
        assert.equal(fetch.gets().length, i + 2, 'retry ' + i);
        assert.equal(fetch.last('GET').headers['websession-received'], '8');
    }
    // A poll that succeeds resets the count of failures...
    fetch.last('GET').open().events('R0 1048576').endPoll();
    await flush();
    assert.equal(fetch.gets().length, 6);
    // ... and after POLL_RETRIES more failures the connection is lost.
    for (let i = 1; i <= 3; i++) {
        fetch.last('GET').fail();
        await flush();
        t.mock.timers.tick(10000);
        await flush();
    }
    assert.deepEqual(log.filter((e) => e[0] === 'close'), []);
    fetch.last('GET').fail();
    await flush();
    assert.deepEqual(log.at(-1).slice(0, 2), ['close', 1006]);
    assert.match(log.at(-1)[2], /^poll failed/);
});

test('poll: a poll cut after it brought its R starts the count of failures anew', async (t) => {
    const { fetch, log, messages } = await opened(t, 'poll');
    fetch.last('GET').endPoll();
    await flush();
    for (let i = 1; i <= 2 * 3 + 1; i++) {          // more cuts than POLL_RETRIES in a row
        fetch.last('GET').open().events('R0 1048576', 'Dm' + i);
        await flush();
        fetch.last('GET').fail();
        await flush();
        t.mock.timers.tick(1000);
        await flush();
    }
    assert.equal(log.filter((e) => e[0] === 'close').length, 0, 'each cut poll had reached the server');
    assert.equal(messages().filter((m) => m[0] === 'D').length, 7);
    assert.equal(fetch.last('GET').headers['websession-received'], '7');
});

test('poll: an answer without R (evicted, cut by a proxy) counts as a failed poll', async (t) => {
    const { fetch } = await opened(t, 'poll');
    fetch.last('GET').endPoll();
    await flush();
    const n = fetch.gets().length;
    fetch.last('GET').open().push(': websession.v1\n\n').end();
    await flush();
    assert.equal(fetch.gets().length, n, 'no tight loop');
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(fetch.gets().length, n + 1);
});

test('poll: a later answer from a proxy (502 without WebSession-Error) is retried, not fatal', async (t) => {
    const { fetch, log } = await opened(t, 'poll');
    fetch.last('GET').endPoll();
    await flush();
    fetch.last('GET').respond(502, { 'Content-Type': 'text/html' }, 'bad gateway');
    await flush();
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(fetch.gets().length, 3);
    assert.equal(log.filter((e) => e[0] === 'close').length, 0);
});

test('poll: the first poll failing is a failed attempt at once (the session moves on)', async (t) => {
    const { tr, fetch, log } = transport(t, 'poll');
    await flush();
    tr.send('R0');
    fetch.last().fail();
    await flush();
    assert.deepEqual(log.at(-1).slice(0, 2), ['close', 1006]);
    assert.equal(fetch.gets().length, 1);
});

// ---- the up side --------------------------------------------------------------------

test('up: D\'s wait for the server\'s R, then go numbered from n + 1 in one POST', async (t) => {
    const x = transport(t, 'sse', { id: ID });
    await flush();
    x.tr.send('R0');
    x.tr.send('Dearly');
    await flush();
    assert.equal(x.fetch.posts().length, 0, 'held until the server\'s R');
    x.fetch.last('GET').open().events('R5 1048576');
    await flush();
    const post = x.fetch.last('POST');
    assert.deepEqual(post.headers, {
        'websession-transport': 'sse', 'session-id': ID, 'websession-sequence': '6',
        'content-type': 'application/octet-stream',
    });
    assert.deepEqual(post.records(), [['T', 'Dearly']]);
    assert.equal(post.init.cache, 'no-store');
});

test('up: framed records, lengths in bytes; one POST at a time; A coalesced', async (t) => {
    const { tr, fetch, messages } = await opened(t, 'sse', { n: 2 });
    tr.send('Dhé€');
    tr.send(Uint8Array.from([0x44, 0, 10, 0xff]));
    tr.send('D');
    await flush();
    const p1 = fetch.last('POST');
    assert.equal(new TextDecoder().decode(p1.body.subarray(0, 12)), 'T 7\nDhé€\n', '7 bytes of UTF-8');
    assert.deepEqual(p1.records(), [['T', 'Dhé€'], ['B', Uint8Array.from([0x44, 0, 10, 0xff])], ['T', 'D']]);
    assert.equal(p1.headers['websession-sequence'], '3');
    tr.send('A1');
    tr.send('Dnext');
    tr.send('A2');
    await flush();
    assert.equal(fetch.posts().length, 1, 'one POST under way at most');
    p1.respond(200, { 'Content-Type': 'text/plain' }, 'A5');
    await flush();
    assert.equal(messages().at(-1), 'A5', 'the answer is an acknowledgement for the session');
    const p2 = fetch.last('POST');
    assert.deepEqual(p2.records(), [['T', 'A2'], ['T', 'Dnext']], 'only the latest A, before the data');
    assert.equal(p2.headers['websession-sequence'], '6');
});

test('up: a failed POST is sent again, same numbers, with backoff; lost after connectTimeout', async (t) => {
    const { tr, fetch, log } = await opened(t, 'sse', { connectTimeout: 3000, random: () => 1 });
    tr.send('Da');
    tr.send('Db');
    await flush();
    fetch.last('POST').fail();
    await flush();
    assert.equal(fetch.posts().length, 1, 'not at once');
    t.mock.timers.tick(200);
    await flush();
    assert.equal(fetch.posts().length, 2);
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Da'], ['T', 'Db']]);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '1');
    tr.send('Dc');                                  // joins the retry after the next failure
    fetch.last('POST').respond(502, {}, 'proxy error');
    await flush();
    t.mock.timers.tick(400);
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Da'], ['T', 'Db'], ['T', 'Dc']]);
    fetch.last('POST').respond(500, {}, '');
    await flush();
    t.mock.timers.tick(800);
    await flush();
    fetch.last('POST').fail();
    await flush();
    assert.equal(log.filter((e) => e[0] === 'close').length, 0, '200 + 400 + 800 ms so far');
    t.mock.timers.tick(1600);
    await flush();
    fetch.last('POST').fail();
    await flush();
    assert.deepEqual(log.at(-1).slice(0, 2), ['close', 1006], '3000 ms of failures');
    assert.match(log.at(-1)[2], /^POST failed/);
    assert.ok(fetch.last('GET').aborted, 'the down request is dropped too');
});

test('up: D\'s the server did not take are sent again after 100 ms, growing to 1 s', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    for (const m of ['Da', 'Db', 'Dc']) tr.send(m);
    await flush();
    const answer = (n) => fetch.last('POST').respond(200, {}, 'A' + n);
    answer(1);                                      // took Da only: its buffer is full
    await flush();
    assert.equal(fetch.posts().length, 1, 'not at once');
    const pauses = [];
    for (const n of [1, 1, 1, 1, 1]) {
        let waited = 0;
        while (fetch.posts().length === pauses.length + 1) {
            t.mock.timers.tick(50);
            await flush();
            waited += 50;
        }
        pauses.push(waited);
        assert.deepEqual(fetch.last('POST').records(), [['T', 'Db'], ['T', 'Dc']]);
        assert.equal(fetch.last('POST').headers['websession-sequence'], '2');
        answer(n);
        await flush();
    }
    assert.deepEqual(pauses, [100, 200, 400, 800, 1000]);
    t.mock.timers.tick(1000);
    await flush();
    answer(3);                                      // room again: progress resets the pause
    await flush();
    tr.send('Dd');
    await flush();
    answer(3);
    await flush();
    t.mock.timers.tick(99);
    await flush();
    assert.equal(fetch.posts().length, 8);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(fetch.posts().length, 9);
});

test('up: an A or R coming down drops what it covers from the re-sends', async (t) => {
    const { tr, fetch } = await opened(t, 'poll');
    for (const m of ['Da', 'Db', 'Dc', 'Dd']) tr.send(m);
    await flush();
    fetch.last('GET').events('A1').endPoll();           // while the POST is under way
    await flush();
    fetch.last('POST').respond(200, {}, 'A1');      // an answer that took nothing new
    await flush();
    fetch.last('GET').open().events('R3 1048576').endPoll();   // a poll's R acknowledges up to 3
    await flush();
    t.mock.timers.tick(100);
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Dd']]);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '4');
});

test('counts are cumulative: a slow poll\'s R below the A a POST\'s answer brought is stale and ignored', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = makeFakeFetch();
    const s = new WebSession(URLS.http, { transport: 'poll', fetch, random: () => 0.5 });
    const log = recordEvents(s);
    await flush();
    fetch.last('GET').open({ 'Session-ID': ID }).events('I' + ID, 'R0 1048576').endPoll();
    await flush();
    const slow = fetch.last('GET');                 // waits, its R will be 0
    for (const m of ['a', 'b', 'c']) s.send(m);
    await flush();
    fetch.last('POST').respond(200, { 'Content-Type': 'text/plain' }, 'A3');
    await flush();
    assert.equal(s.bufferedAmount, 0, 'A3 covers all three');
    slow.open().events('R0 1048576', 'Dx').endPoll();
    await flush();
    assert.deepEqual(log, ['open', 'message:x'], 'no protocol error, nothing lost');
    assert.equal(s.readyState, WebSession.OPEN);
    s.send('d');
    await flush();
    assert.equal(fetch.posts().length, 2, 'nothing sent again');
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Dd']]);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '4', 'numbered after the highest count');
    assert.equal(s.bufferedAmount, 1);
    fetch.last('POST').respond(200, { 'Content-Type': 'text/plain' }, 'A4');
    await flush();
    assert.equal(s.bufferedAmount, 0);
});

test('counts are cumulative: an A on the event stream below a POST\'s answer is stale and ignored', async (t) => {
    const { tr, fetch, messages } = await opened(t, 'sse');
    for (const m of ['Da', 'Db', 'Dc']) tr.send(m);
    await flush();
    fetch.last('POST').respond(200, {}, 'A3');
    await flush();
    fetch.last('GET').events('A1');                  // written before the POST was taken
    await flush();
    assert.deepEqual(messages().slice(-2), ['A3', 'A1'], 'passed on: the session ignores the lower one');
    tr.send('Dd');
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Dd']]);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '4');
});

test('up: a POST carries at most about the window (the server refuses bodies over 2w)', async (t) => {
    const { tr, fetch } = await opened(t, 'sse', { window: 1000 });
    for (let i = 0; i < 10; i++) tr.send('D' + 'x'.repeat(299));
    await flush();
    const sizes = () => fetch.posts().map((p) => p.records().length);
    assert.deepEqual(sizes(), [4], '4 x 307 bytes: the one that passes 1000 is the last');
    fetch.last('POST').respond(200, {}, 'A4');
    await flush();
    fetch.last('POST').respond(200, {}, 'A8');
    await flush();
    assert.deepEqual(sizes(), [4, 4, 2]);
    assert.equal(fetch.last('POST').headers['websession-sequence'], '9');
});

test('up: 410 ends the session; 400 and 409 break the protocol (1002)', async (t) => {
    for (const [status, error, text, expected] of [
        [410, 'session-unknown', 'session unknown or expired', [4410, 'session unknown or expired']],
        [409, 'sequence-gap', 'messages missing', [1002, 'websession.v1: messages missing']],
        [400, 'protocol-error', 'bad record', [1002, 'websession.v1: bad record']],
        [413, 'too-large', '', [1002, 'websession.v1: HTTP 413 too-large']],
    ]) {
        const { tr, fetch, log } = await opened(t, 'sse');
        tr.send('Dx');
        await flush();
        fetch.last('POST').respond(status, { 'WebSession-Error': error }, text);
        await flush();
        assert.deepEqual(log.at(-1), ['close', ...expected, undefined], String(status));
        assert.ok(fetch.last('GET').aborted);
        t.mock.timers.reset();
    }
    const { tr, fetch, log } = await opened(t, 'sse');
    tr.send('Dx');
    await flush();
    fetch.last('POST').respond(200, {}, 'OK');
    await flush();
    assert.deepEqual(log.at(-1).slice(0, 2), ['close', 1002], 'an answer that is not A<n>');
});

// ---- close and abort ----------------------------------------------------------------

test('close: the C is the last record of its POST, after the A and the data', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    tr.send('A0');
    tr.send('Dx');
    tr.send('Dy');
    tr.close(1000, 'bye');
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'A0'], ['T', 'Dx'], ['T', 'Dy'], ['T', 'C1000 bye']]);
});

test('close: a C record behind the data; the down side runs until the close event', async (t) => {
    const { tr, fetch, log, messages } = await opened(t, 'sse');
    tr.send('Dlast');
    tr.close(4000, 'done here');
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Dlast'], ['T', 'C4000 done here']]);
    fetch.last('POST').respond(200, {}, 'A1');
    await flush();
    fetch.last('GET').events('Dstill coming');
    await flush();
    assert.equal(messages().at(-1), 'Dstill coming');
    assert.equal(log.filter((e) => e[0] === 'close').length, 0);
    fetch.last('GET').push('event: close\ndata: 4000\n\n').end();
    await flush();
    assert.deepEqual(log.at(-1), ['close', 4000, '', undefined]);
    tr.close(1000);
    await flush();
    assert.equal(fetch.posts().length, 1, 'once');
});

test('close: C waits while the server holds back data, and goes with the last of it', async (t) => {
    const { tr, fetch } = await opened(t, 'sse');
    tr.send('Da');
    tr.send('Db');
    await flush();
    tr.close(1000);
    fetch.last('POST').respond(200, {}, 'A1');
    await flush();
    assert.equal(fetch.posts().length, 1, 'no C before Db is taken');
    t.mock.timers.tick(100);
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Db'], ['T', 'C1000']]);
    fetch.last('POST').respond(200, {}, 'A1');      // still full: it saw neither Db nor C
    await flush();
    t.mock.timers.tick(200);
    await flush();
    assert.deepEqual(fetch.last('POST').records(), [['T', 'Db'], ['T', 'C1000']], 'C again');
    fetch.last('POST').respond(200, {}, 'A2');
    await flush();
    t.mock.timers.tick(10000);
    await flush();
    assert.equal(fetch.posts().length, 3, 'done');
});

test('close: without a down request (a connection only to say goodbye), the POST\'s answer ends it', async (t) => {
    const { tr, fetch, log } = transport(t, 'poll', { id: ID });
    await flush();
    tr.close(1000, 'bye');
    await flush();
    assert.equal(fetch.gets().length, 0);
    const post = fetch.last('POST');
    assert.equal(post.headers['session-id'], ID);
    assert.deepEqual(post.records(), [['T', 'C1000 bye']]);
    post.respond(200, {}, 'A3');
    await flush();
    assert.deepEqual(log, [['open'], ['close', 1000, '', undefined]]);
});

test('close: a new session\'s close waits for its id', async (t) => {
    const { tr, fetch } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    tr.close(1000);
    await flush();
    assert.equal(fetch.posts().length, 0);
    fetch.last('GET').open({ 'Session-ID': ID });
    await flush();
    assert.equal(fetch.last('POST').headers['session-id'], ID);
});

test('abort: every request is abandoned, silently', async (t) => {
    const { tr, fetch, log } = await opened(t, 'sse');
    tr.send('Dx');
    await flush();
    const before = log.length;
    tr.abort();
    await flush();
    assert.ok(fetch.requests.every((r) => r.aborted));
    t.mock.timers.tick(60000);
    await flush();
    assert.equal(log.length, before, 'no close event, nothing at all');
    tr.send('Dy');
    tr.close(1000);
    await flush();
    assert.equal(fetch.requests.length, 2);
});

test('abort: before open, open never comes', async (t) => {
    const { tr, log } = transport(t, 'poll');
    tr.abort();
    await flush();
    assert.deepEqual(log, []);
});

test('fetch is called as a plain function, never as a method (window.fetch requires that)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fake = makeFakeFetch();
    const thisValues = new Set();
    const strict = function (url, init) {
        thisValues.add(this);
        return fake(url, init);
    };
    const tr = TRANSPORTS.sse(URLS, ['websession.v1', 'websession.id.' + ID], {
        fetch: strict, minBackoff: 100, maxBackoff: 1000, connectTimeout: 10000, random: () => 0.5,
    }, { open() {}, message() {}, close() {} });
    await flush();
    tr.send('R0');
    fake.last().open().events('R0 100');
    await flush();
    tr.send('Dx');
    await flush();
    fake.last().respond(200, {}, 'A1');
    fake.last('GET').push('event: nonsense\ndata: x\n\n');   // the farewell POST too
    await flush();
    assert.equal(fake.requests.length, 3);
    assert.deepEqual([...thisValues], [undefined]);
});

test('construction: no fetch, no transport', () => {
    const saved = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
        assert.throws(() => TRANSPORTS.sse(URLS, ['websession.v1'], {}, {}), /needs fetch/);
        assert.throws(() => new WebSession(URLS.http, { transport: 'poll' }), TypeError);
    } finally {
        globalThis.fetch = saved;
    }
});

// ---- whole sessions over the HTTP transports ----------------------------------------

/** A session over a fake fetch and FakeHttpServer, with mocked timers. */
function session(t, options = {}) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = makeFakeFetch();
    const server = new FakeHttpServer(fetch, { id: ID, capacity: options.capacity });
    const s = new WebSession(URLS.http, { fetch, random: () => 0.5, ...options });
    return { s, fetch, server, log: recordEvents(s) };
}

/** Lets the fake server answer until nothing moves. */
async function run(server, rounds = 4) {
    for (let i = 0; i < rounds; i++) {
        await flush();
        server.serve();
    }
    await flush();
}

for (const variant of ['sse', 'poll']) {
    test(`session over ${variant}: open, messages both ways, acknowledgements, close`, async (t) => {
        const { s, fetch, server, log } = session(t, { transport: variant });
        assert.equal(s.transport, variant);
        s.send('hello');
        s.send(Uint8Array.from([1, 2]));
        await run(server);
        assert.equal(s.readyState, WebSession.OPEN);
        assert.equal(s.protocol, 'websession.v1');
        assert.deepEqual(server.received, ['hello', Uint8Array.from([1, 2])]);
        assert.equal(s.bufferedAmount, 0, 'acknowledged by the POST\'s answer');
        server.send('one');
        server.send('two\r\nlines');
        await run(server);
        t.mock.timers.tick(20);                     // the session's ack delay
        await run(server);
        assert.equal(server.acked, 2, 'acknowledged ' + (variant === 'poll' ? 'by the next poll' : 'in a POST'));
        s.close(1000, 'bye');
        await run(server);
        assert.equal(server.closed, '1000 bye');
        assert.deepEqual(log, ['open', 'message:one', 'message:two\r\nlines', 'close:1000']);
        assert.equal(s.readyState, WebSession.CLOSED);
        assert.ok(fetch.requests.every((r) => !r.live), 'nothing left open');
    });

    test(`session over ${variant}: a lost connection resumes on a new one, nothing lost or repeated`, async (t) => {
        const { s, fetch, server, log } = session(t, { transport: variant });
        const got = [];
        s.onmessage = (e) => got.push(e.data);
        await run(server);
        s.send('a');
        await flush();
        fetch.last('POST').fail();                  // a lost POST ...
        fetch.last('GET').fail();                   // ... and a lost down request,
        server.send('x');                           // while the script writes
        await run(server);
        t.mock.timers.tick(10000);                  // retries, then the session's reconnection
        await run(server);
        t.mock.timers.tick(10000);
        await run(server);
        if (variant === 'sse') {
            assert.deepEqual(log, ['open', 'reconnecting', 'resumed', 'message:x'], 'a new event stream');
        } else {
            assert.deepEqual(log, ['open', 'message:x'], 'the failed poll was repeated within the connection');
        }
        s.send('b');
        server.send('y');
        await run(server);
        t.mock.timers.tick(1000);
        await run(server);
        assert.deepEqual(server.received, ['a', 'b']);
        assert.deepEqual(got, ['x', 'y']);
        assert.equal(s.transport, variant);
        assert.equal(s.readyState, WebSession.OPEN);
    });

    test(`session over ${variant}: random cuts and a slow script, every message once and in order`, async (t) => {
        const rng = mulberry32(variant === 'sse' ? 7 : 11);
        const { s, fetch, server } = session(t, { transport: variant, capacity: 3, random: rng, minBackoff: 10 });
        const got = [];
        s.onmessage = (e) => got.push(e.data);
        server.loseAnswer = () => rng() < 0.15;
        let c = 0;
        let d = 0;
        await run(server);
        for (let round = 0; round < 150; round++) {
            for (let i = Math.floor(rng() * 5); i > 0; i--) s.send('c' + ++c);
            for (let i = Math.floor(rng() * 5); i > 0; i--) server.send('s' + ++d);
            await flush();
            if (rng() < 0.25) {
                const live = fetch.requests.filter((r) => r.live);
                live[Math.floor(rng() * live.length)]?.fail();   // cut one request
            }
            server.serve();
            await flush();
            t.mock.timers.tick(Math.floor(rng() * 300));
        }
        for (let i = 0; i < 200 && (server.received.length < c || got.length < d); i++) {
            await run(server);
            t.mock.timers.tick(1000);
        }
        assert.equal(s.readyState, WebSession.OPEN);
        assert.deepEqual(server.received, Array.from({ length: c }, (_, i) => 'c' + (i + 1)));
        assert.deepEqual(got, Array.from({ length: d }, (_, i) => 's' + (i + 1)));
        t.diagnostic(`${c} up, ${d} down, ${fetch.requests.length} requests, `
                     + `${server.duplicates} D records dropped by number`);
        assert.ok(server.duplicates > 0, 're-sends happened, and the server deduplicated them');
    });
}

test('session: a POST taken but whose answer was lost is sent again; the server drops it by number', async (t) => {
    const { s, server } = session(t, { transport: 'sse' });
    await run(server);
    let lose = 1;
    server.loseAnswer = () => lose-- > 0;
    s.send('once');
    s.send('twice?');
    await run(server);
    assert.deepEqual(server.received, ['once', 'twice?']);
    assert.equal(s.bufferedAmount, 10, 'not acknowledged yet');
    t.mock.timers.tick(1000);
    await run(server);
    assert.deepEqual(server.received, ['once', 'twice?'], 'each once');
    assert.equal(server.duplicates, 2, 'sent again, under the same numbers');
    assert.equal(s.bufferedAmount, 0);
});

test('session: a resume whose id the server forgot: sessionlost, 4410', async (t) => {
    const { s, fetch, server, log } = session(t, { transport: 'sse' });
    await run(server);
    server.closed = 'expired';
    fetch.last('GET').end();
    await flush();
    t.mock.timers.tick(10000);
    await run(server);
    assert.deepEqual(log, ['open', 'reconnecting', 'sessionlost', 'error', 'close:4410']);
    assert.equal(s.readyState, WebSession.CLOSED);
});

// ---- auto -----------------------------------------------------------------------------

/** A session in auto mode with both a fake WebSocket and a fake fetch. */
function auto(t, options = {}) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const WS = makeFakeWebSocket();
    const fetch = makeFakeFetch();
    const s = new WebSession(URLS.http, { WebSocket: WS, fetch, random: () => 0.5, ...options });
    return { s, WS, fetch, log: recordEvents(s) };
}

test('auto: the default; websocket, then sse, then poll, each at once after a failure', async (t) => {
    const { s, WS, fetch, log } = auto(t);
    assert.equal(s.transport, 'websocket');
    assert.equal(WS.instances.length, 1);
    WS.last().drop();
    assert.equal(s.transport, 'sse');
    await flush();
    assert.equal(fetch.last().headers['websession-transport'], 'sse');
    fetch.last().fail();
    await flush();
    assert.equal(s.transport, 'poll');
    await flush();
    const poll = fetch.last();
    assert.equal(poll.headers['websession-transport'], 'poll');
    poll.open({ 'Session-ID': ID }).events('I' + ID, 'R0 1048576').endPoll();
    await flush();
    assert.deepEqual(log, ['open']);
    assert.equal(s.transport, 'poll');
    assert.equal(WS.instances.length, 1);
});

test('auto: sticks to the transport that opened the session when it reconnects', async (t) => {
    const { s, WS, fetch, log } = auto(t);
    WS.last().drop();
    await flush();
    fetch.last().open({ 'Session-ID': ID }).events('I' + ID, 'R0 1048576');
    await flush();
    assert.equal(s.transport, 'sse');
    fetch.last('GET').end();                        // lost ...
    for (let i = 0; i < 3; i++) {
        if (i) fetch.last('GET').fail();            // ... and the next attempts fail too
        await flush();
        t.mock.timers.tick(10000);
        await flush();
        assert.equal(fetch.last('GET').headers['websession-transport'], 'sse');
        assert.equal(fetch.last('GET').headers['session-id'], ID);
    }
    fetch.last('GET').open().events('R0 1048576');
    await flush();
    assert.equal(WS.instances.length, 1, 'no WebSocket tried again');
    assert.deepEqual(log, ['open', 'reconnecting', 'reconnecting', 'reconnecting', 'resumed']);
});

test('auto: a stall moves on after fallbackTimeout; the last transport gets connectTimeout', async (t) => {
    const { s, WS, fetch, log } = auto(t, { fallbackTimeout: 4000, connectTimeout: 10000 });
    t.mock.timers.tick(3999);
    assert.equal(s.transport, 'websocket');
    t.mock.timers.tick(1);
    assert.equal(s.transport, 'sse');
    assert.ok(WS.last().closedWith, 'the stalled WebSocket is given up');
    await flush();
    const sse = fetch.last();
    sse.open();                                     // a buffering proxy: nothing comes through
    await flush();
    t.mock.timers.tick(4000);
    assert.equal(s.transport, 'poll');
    assert.ok(sse.aborted);
    await flush();
    t.mock.timers.tick(9999);
    await flush();
    assert.equal(fetch.gets().length, 2, 'poll waits connectTimeout');
    t.mock.timers.tick(1);
    await flush();
    assert.ok(fetch.last().aborted);
    assert.equal(s.transport, 'websocket', 'a new round after the backoff');
    assert.deepEqual(log, [], 'nothing to report before open');
});

test('auto: rounds of all three, then the diagnosis of a failed first connection', async (t) => {
    const heads = [];
    const fetch = makeFakeFetch();
    let closeEv = null;
    const { s, WS, log } = auto(t, {
        fetch: (url, init) => {
            if (init.method === 'HEAD') {
                heads.push(url);
                return Promise.reject(new TypeError('fetch failed'));
            }
            return fetch(url, init);
        },
    });
    s.onclose = (e) => { closeEv = e; };
    for (let round = 0; round < 3; round++) {
        WS.last().drop();
        await flush();
        fetch.last().fail();                        // sse
        await flush();
        fetch.last().fail();                        // poll
        await flush();
        assert.equal(WS.instances.length, round + 1, 'the next round waits for the backoff');
        t.mock.timers.tick(10000);
        await flush();
    }
    assert.equal(WS.instances.length, 3, 'a WebSocket in each round');
    assert.equal(fetch.gets().length, 6);
    assert.deepEqual(heads, [URLS.http]);
    assert.deepEqual(log, ['error', 'close:1006']);
    assert.match(closeEv.reason, /^the WebSocket, event stream and long poll connections failed, and a plain HTTP request/);
    assert.equal(s.readyState, WebSession.CLOSED);
});

test('auto: a definitive answer (not a WebSession script) gives up at once, without poll', async (t) => {
    const heads = [];
    let closeEv = null;
    const fetch = makeFakeFetch();
    const { s, WS, log } = auto(t, {
        fetch: (url, init) => {
            if (init.method === 'HEAD') {
                heads.push(url);
                return Promise.resolve(new Response(null, { status: 404, statusText: 'Not Found' }));
            }
            return fetch(url, init);
        },
    });
    s.onclose = (e) => { closeEv = e; };
    WS.last().drop();
    await flush();
    fetch.last().respond(404, { 'Content-Type': 'text/html' }, '<h1>Not Found</h1>');
    await flush();
    assert.deepEqual(log, ['error', 'close:1006']);
    assert.equal(fetch.requests.length, 1, 'no poll');
    assert.deepEqual(heads, [URLS.http]);
    assert.match(closeEv.reason, /not a persistent WebSession script: .* answers HTTP 404 Not Found/);
    t.mock.timers.tick(60000);
    assert.equal(WS.instances.length, 1);
});

test('auto: a server refusal of every transport is explained with its last answer', async (t) => {
    const fetch = makeFakeFetch();
    let closeEv = null;
    const { s, WS } = auto(t, {
        fetch: (url, init) => (init.method === 'HEAD'
            ? Promise.resolve(new Response(null, { status: 426 })) : fetch(url, init)),
    });
    s.onclose = (e) => { closeEv = e; };
    for (let round = 0; round < 3; round++) {
        WS.last().drop();
        for (let k = 0; k < 2; k++) {
            await flush();
            fetch.last().respond(403, { 'WebSession-Error': 'origin-refused' }, 'origin refused');
            await flush();
        }
        t.mock.timers.tick(10000);
    }
    await flush();
    assert.match(closeEv.reason, /the server refused the upgrade/);
    assert.match(closeEv.reason, /its last answer: HTTP 403 origin-refused: origin refused$/);
});

test('auto: without a WebSocket implementation, the HTTP transports only', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = makeFakeFetch();
    const s = new WebSession(URLS.http, { fetch });
    assert.equal(s.transport, 'sse');
    await flush();
    assert.equal(fetch.requests.length, 1);
    s.close();
});

/** A small seeded PRNG, so the random tests are reproducible. */
function mulberry32(a) {
    return function () {
        a = (a + 0x6d2b79f5) | 0;
        let r = Math.imul(a ^ (a >>> 15), 1 | a);
        r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
        return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
}
