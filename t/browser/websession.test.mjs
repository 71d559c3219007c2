// websession.js in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) against the test Apache,
// through a TCP proxy (demo/cutproxy.mjs) that drops connections the way a
// network failure does. Run by t/60_browser.t (the environment it sets:
// chromium.mjs).
// By hand, with a test server running (t/TEST -start-httpd):
//   WEBSESSION_TEST_PORT=8529 node --test t/browser/
//
// The page is t/htdocs/browser/index.html: it loads /websession.js with a
// <script> tag and /websession.mjs as a module; tests.js in it runs the
// scenarios, this file makes the assertions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { CutProxy } from '../../demo/cutproxy.mjs';
import { PORT, ARTIFACTS, SKIP as skip, launchChromium } from './chromium.mjs';

let proxy;
let browser;
let context;
let page;
let base;
const consoleLines = [];

function logConsole(name, p) {
    p.on('console', (m) => consoleLines.push(`[${name}] ${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => consoleLines.push(`[${name}] PAGE ERROR: ${e && e.stack || e}`));
}

/** Runs window.wsTests[name](arg) in the test page; on a failed assertion
 *  the page is saved as a screenshot. */
async function run(name, arg) {
    return page.evaluate(([n, a]) => window.wsTests[n](a), [name, arg]);
}

async function withScreenshot(name, fn, p = () => page) {
    try {
        await fn();
    } catch (e) {
        const file = path.join(ARTIFACTS, `failed-${name}.png`);
        await p()?.screenshot({ path: file, fullPage: true }).catch(() => {});
        throw e;
    }
}

const types = (events) => events.map((e) => e.type);
const only = (events, type) => events.filter((e) => e.type === type);

/** A countWithCuts session, whatever its transport, went on to the end
 *  without error and the page's close ended it: one clean 1000. */
function assertEndedCleanly(r) {
    const ev = r.events;
    assert.equal(r.before.closeEvents, 0, 'no close event before the page closed');
    assert.equal(only(ev, 'error').length, 0, 'no error event');
    assert.equal(only(ev, 'sessionlost').length, 0, 'no sessionlost event');
    assert.equal(r.before.readyState, 1, 'OPEN at the end');
    assert.equal(r.before.bufferedAmount, 0, 'everything sent was acknowledged');
    const close = only(ev, 'close');
    assert.equal(close.length, 1, 'one close event');
    assert.deepEqual([close[0].code, close[0].wasClean, close[0].isCloseEvent], [1000, true, true],
                     `the page's close ends the session: the script exits 0 (${JSON.stringify(close[0])})`);
    assert.equal(ev.at(-1).type, 'close', 'close is the last event');
    assert.equal(r.readyStateAfter, 3, 'CLOSED');
}

before(async () => {
    if (skip) {
        return;
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    proxy = new CutProxy({ targetPort: PORT });
    base = `http://127.0.0.1:${await proxy.listen(0)}`;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.exposeFunction('proxyCut', (mode) => proxy.cut({ mode }));
    await context.exposeFunction('proxyRefuse', (on) => { proxy.refuse(on); return true; });
    await context.exposeFunction('proxyMode', (m) => { proxy.setMode(m); return true; });
    page = await context.newPage();
    logConsole('test page', page);
    await page.goto(`${base}/browser/index.html`);
    await page.waitForFunction(() => window.wsTestsReady && typeof window.ModuleWebSession === 'function',
                               null, { timeout: 10000 });
});

after(async () => {
    if (skip) {
        return;
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'console.log'), consoleLines.join('\n') + '\n');
    await browser?.close();
    await proxy?.close();
});

test('the library loads as a classic script (/websession.js) and as an ES module (/websession.mjs)',
     { skip }, async () => {
    const r = await run('libraries');
    assert.equal(r.classic, 'function', 'the <script> tag defines WebSession');
    assert.equal(r.module, 'function', 'the module exports WebSession');
    assert.ok(r.distinct, 'two separate copies: the module test does not reuse the classic one');
    assert.ok(r.moduleExportsAgree, 'default and named export are the same class');
    assert.deepEqual(r.constants, ['CONNECTING=0', 'OPEN=1', 'CLOSING=2', 'CLOSED=3']);
});

for (const lib of ['classic', 'module']) {
    test(`${lib}: 200 numbered messages to /ws/count across 4 cuts (RST and FIN) while messages are in flight: `
         + 'every reply once and in order, no close', { skip, timeout: 45000 }, async () => {
        await withScreenshot(`count-${lib}`, async () => {
            const r = await run('countWithCuts', { lib, n: 200, cutAt: [30, 70, 110, 150] });
            assert.equal(r.failed, undefined, JSON.stringify(r));
            assert.equal(r.protocol, 'websession.v1');
            assert.match(r.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws\/count$/);
            const expected = Array.from({ length: 200 }, (_, i) => `${i + 1} m${i + 1}`);
            assert.deepEqual(r.replies, expected, 'replies "N mN", each once, in order');

            assert.equal(r.cuts.length, 4, 'four cuts');
            for (const c of r.cuts) {
                assert.equal(c.websockets, 1, `the cut after sending m${c.at.sent} (${c.at.replies} replies in), `
                             + `${c.mode}, dropped the live connection`);
            }
            const ev = r.events;
            assert.equal(ev[0].type, 'open', 'open first');
            assert.equal(only(ev, 'open').length, 1, 'open once');
            assert.equal(only(ev, 'resumed').length, 4, `one resume per cut: ${JSON.stringify(ev)}`);
            assert.ok(only(ev, 'reconnecting').length >= 4, 'a reconnecting event for each cut');
            for (const e of only(ev, 'reconnecting')) {
                assert.equal(e.readyState, 1, 'readyState stays OPEN while reconnecting');
            }
            assertEndedCleanly(r);
        });
    });
}

// The HTTP fallback, forced: the same stream checks over server-sent events
// (a cut ends the stream: the session resumes on a new one) and long polling
// (a cut poll is repeated with the same count, no resume needed).
for (const transport of ['sse', 'poll']) {
    test(`${transport} (forced): 200 numbered messages to /ws/count across 4 cuts (RST and FIN): `
         + 'every reply once and in order', { skip, timeout: 60000 }, async () => {
        await withScreenshot(`count-${transport}`, async () => {
            const r = await run('countWithCuts', { lib: 'module', n: 200, transport,
                                                   waitResume: transport === 'sse' });
            assert.equal(r.failed, undefined, JSON.stringify(r));
            assert.equal(r.transport, transport, `the session used ${transport}`);
            assert.equal(r.protocol, 'websession.v1');
            const expected = Array.from({ length: 200 }, (_, i) => `${i + 1} m${i + 1}`);
            assert.deepEqual(r.replies, expected, 'replies "N mN", each once, in order');
            assert.equal(r.cuts.length, 4, 'four cuts');
            for (const c of r.cuts) {
                assert.equal(c.websockets, 0, 'no WebSocket on the way');
                assert.ok(c.dropped >= 1, `the cut after sending m${c.at.sent} dropped a request under way`);
            }
            const ev = r.events;
            assert.equal(ev[0].type, 'open', 'open first');
            assert.equal(only(ev, 'open').length, 1, 'open once');
            if (transport === 'sse') {
                assert.equal(only(ev, 'resumed').length, 4, `one resume per cut: ${JSON.stringify(ev)}`);
            }
            assertEndedCleanly(r);
        });
    });
}

test('automatic fallback: behind a proxy that strips the upgrade the session runs over sse, '
     + 'behind one that also buffers responses over poll', { skip, timeout: 60000 }, async () => {
    const expected = Array.from({ length: 20 }, (_, i) => `${i + 1} m${i + 1}`);
    for (const [mode, want] of [[{ stripUpgrade: true }, 'sse'],
                                [{ stripUpgrade: true, buffer: true }, 'poll'],
                                [{}, 'websocket']]) {
        const r = await run('autoFallback', { lib: 'classic', mode });
        const what = JSON.stringify(mode);
        assert.equal(r.failed, undefined, `${what}: ${JSON.stringify(r)}`);
        assert.equal(r.transport, want, `${what}: the session chose ${want}`);
        assert.deepEqual(r.replies, expected, `${what}: every reply once and in order`);
        assert.deepEqual(types(r.events), ['open', 'close'], `${what}: open, then the page's close`);
        assert.equal(r.events[1].code, 1000);
    }
});

for (const transport of ['websocket', 'sse']) {
    test(`${transport}: binary messages through /framed with binaryType "arraybuffer" (and "blob"), across a cut`,
         { skip, timeout: 30000 }, async () => {
        await withScreenshot(`binary-${transport}`, async () => {
            const r = await run('binary', { lib: 'module', transport });
            assert.equal(r.failed, undefined, JSON.stringify(r));
            assert.equal(r.binaryTypeSet, 'arraybuffer');
            assert.equal(r.transport, transport);
            assert.equal(r.cut.websockets, transport === 'websocket' ? 1 : 0,
                         'the cut dropped the live WebSocket, if any');
            assert.ok(r.cut.dropped >= 1, 'the cut dropped the live connection');
            const what = ['256 bytes 00..ff', '200,000 bytes (in flight at the cut)', 'text with non-ASCII and NUL',
                          'a Blob sent', 'a Uint8Array view at offset 3', 'a DataView'];
            const kinds = ['ArrayBuffer', 'ArrayBuffer', 'string', 'ArrayBuffer', 'ArrayBuffer', 'ArrayBuffer'];
            assert.equal(r.results.length, what.length, `all ${what.length} echoes: ${JSON.stringify(r.results)}`);
            r.results.forEach((x, i) => {
                assert.equal(x.kind, kinds[i], `${what[i]}: arrives as ${kinds[i]}`);
                assert.ok(x.equal, `${what[i]}: the same bytes back (${JSON.stringify(x)})`);
            });
            assert.ok(r.asBlob, 'an echo with binaryType "blob"');
            assert.equal(r.asBlob.kind, 'Blob');
            assert.ok(r.asBlob.equal, `the same bytes in the Blob (${JSON.stringify(r.asBlob)})`);
            assert.equal(r.extra, 0, 'no extra message');
            assert.ok(only(r.events, 'resumed').length >= 1, 'resumed after the cut');
            assert.equal(only(r.events, 'error').length, 0, 'no error');
            const close = only(r.events, 'close');
            assert.deepEqual(close.map((c) => [c.code, c.wasClean]), [[1000, true]], 'closed once, cleanly');
        });
    });
}

test('a target that is not a persistent script: error, then close saying so', { skip, timeout: 30000 },
     async () => {
    for (const lib of ['classic', 'module']) {
        const r = await run('notPersistent', { lib, path: '/ws/index.html' });
        assert.equal(r.readyStateAtStart, 0, 'CONNECTING at first');
        assert.deepEqual(types(r.events), ['error', 'close'], `${lib}: error then close (${JSON.stringify(r.events)})`);
        const [err, close] = r.events;
        assert.match(close.reason, /not a persistent WebSession script/, `${lib}: the reason says why`);
        assert.match(close.reason, /\/ws\/index\.html/, `${lib}: ... and names the URL`);
        assert.equal(close.code, 1006, 'code 1006: no session was ever opened');
        assert.equal(close.wasClean, false);
        assert.equal(err.message, close.reason, 'the error event carries the same explanation');
        assert.equal(r.readyState, 3, 'CLOSED');
        assert.equal(r.sawMessage, false);
    }
});

test('the script exits (status 3): close 4003 with its reason', { skip, timeout: 30000 }, async () => {
    const r = await run('scriptExit', { lib: 'classic' });
    assert.deepEqual(types(r.events), ['open', 'close'], JSON.stringify(r.events));
    const close = r.events[1];
    assert.equal(close.code, 4003);
    assert.equal(close.reason, 'script exited with status 3');
    assert.equal(close.wasClean, true);
    assert.equal(r.readyState, 3);
});

test('the network is down longer than WebSessionResumeTimeout: sessionlost, error, close 4410',
     { skip, timeout: 40000 }, async () => {
    const r = await run('sessionExpired', { lib: 'module', downMs: 7000 });
    assert.deepEqual(r.got, ['1 before']);
    assert.equal(r.cut.websockets, 1);
    assert.ok(r.attemptsWhileDown >= 2, `kept trying while the network was down (${r.attemptsWhileDown})`);
    assert.equal(r.readyStateWhileDown, 1, 'still OPEN for the application while down');
    const ev = r.events;
    assert.equal(only(ev, 'resumed').length, 0, 'never resumed');
    const tail = types(ev).filter((t) => t !== 'reconnecting');
    assert.deepEqual(tail, ['open', 'sessionlost', 'error', 'close'], JSON.stringify(ev));
    const lost = only(ev, 'sessionlost')[0];
    assert.deepEqual(lost.detail, { code: 4410, reason: 'session unknown or expired' });
    const close = only(ev, 'close')[0];
    assert.deepEqual([close.code, close.reason, close.wasClean], [4410, 'session unknown or expired', true]);
    assert.equal(r.readyState, 3);
});

// The keeper used to ignore the client's R while a close was queued, so a
// close that waits behind that R never went out (the client resumed for
// ever). Reproduction without a browser: t/browser/repro-exit-while-away.mjs.
test('the script exits while the client is away: the client gets its close (4005) on resume',
     { skip, timeout: 30000 },
     async () => {
    const r = await run('exitWhileAway', { lib: 'classic', downMs: 2500 });
    assert.equal(r.cut.websockets, 1);
    assert.ok(r.closedByServer, `closed by the server within 6 s of the resume: ${JSON.stringify(r.events)}`);
    const close = only(r.events, 'close');
    assert.deepEqual([close[0].code, close[0].reason, close[0].wasClean],
                     [4005, 'script exited with status 5', true], JSON.stringify(r.events));
});

test('the demo page (demo/htdocs): counters, cut button, no gap or duplicate; then behind a proxy that '
     + 'strips the upgrade and buffers, over long polling; screenshots',
     { skip, timeout: 60000 }, async (t) => {
    const probe = await fetch(`${base}/demo/`).catch((e) => ({ status: String(e) }));
    if (probe.status !== 200) {
        t.skip(`the test server does not serve the demo at /demo/ (GET answered ${probe.status}); `
               + 't/htdocs/demo should link to demo/htdocs');
        return;
    }
    const demo = await context.newPage();
    logConsole('demo', demo);
    const shot = path.join(ARTIFACTS, 'demo.png');
    const shotPoll = path.join(ARTIFACTS, 'demo-poll.png');
    await withScreenshot('demo', async () => {
        await demo.goto(`${base}/demo/`);
        const read = () => demo.evaluate(() => Object.fromEntries(
            ['state', 'fp', 'over', 'ticks', 'tickdetail', 'sent', 'echoed', 'echodetail', 'cuts', 'resumes',
             'check'].map((id) => [id, document.getElementById(id).textContent])));
        await demo.waitForFunction(() => Number(document.getElementById('ticks').textContent) >= 5,
                                   null, { timeout: 10000 });
        assert.match((await read()).fp, /^[0-9a-f]{16}$/, 'the session fingerprint is shown');
        const radios = await demo.evaluate(() => Array.from(
            document.querySelectorAll('input[name=transport]'), (r) => [r.value, r.checked, r.disabled]));
        assert.deepEqual(radios, [['auto', true, false], ['websocket', false, false], ['sse', false, false],
                                  ['poll', false, false]], 'automatic by default, every transport selectable');
        assert.equal((await read()).over, 'websocket', 'the automatic choice without a hostile proxy');
        await demo.fill('#text', 'hello from t/60_browser.t');
        await demo.press('#text', 'Enter');
        for (let i = 1; i <= 3; i++) {
            await demo.click('#burst');
            await demo.waitForTimeout(20 * i);
            await demo.click('#cut');
            await demo.waitForFunction((n) => Number(document.getElementById('resumes').textContent) >= n,
                                       i, { timeout: 10000 });
        }
        await demo.waitForFunction(() => document.getElementById('echoed').textContent === '151',
                                   null, { timeout: 10000 });
        const ticksNow = Number((await read()).ticks);
        await demo.waitForFunction((n) => Number(document.getElementById('ticks').textContent) >= n + 3,
                                   ticksNow, { timeout: 5000 });
        const c = await read();
        assert.equal(c.check, 'gaps: 0, duplicates: 0', JSON.stringify(c));
        assert.equal(c.tickdetail, 'gaps 0, duplicates 0');
        assert.equal(c.echodetail, 'gaps 0, duplicates 0, altered 0');
        assert.deepEqual([c.sent, c.echoed, c.cuts, c.resumes], ['151', '151', '3', '3'], JSON.stringify(c));
        assert.match(c.state, /^open/);
        await demo.screenshot({ path: shot });

        // The proxy now strips the upgrade and buffers whole responses: a
        // new session falls back to long polling, and a cut loses nothing.
        await demo.check('#strip');
        await demo.check('#buffer');
        await demo.waitForFunction(() => /buffers responses/.test(document.getElementById('log').textContent),
                                   null, { timeout: 5000 });
        await demo.click('#new');
        await demo.waitForFunction(() => document.getElementById('over').textContent === 'poll',
                                   null, { timeout: 20000 });
        await demo.waitForFunction(() => Number(document.getElementById('ticks').textContent) >= 5,
                                   null, { timeout: 10000 });
        await demo.click('#burst');
        await demo.click('#cut');
        await demo.waitForFunction(() => document.getElementById('echoed').textContent === '50',
                                   null, { timeout: 15000 });
        const p = await read();
        assert.equal(p.check, 'gaps: 0, duplicates: 0', JSON.stringify(p));
        assert.equal(p.echodetail, 'gaps 0, duplicates 0, altered 0');
        assert.match(p.state, /^open/);
        await demo.screenshot({ path: shotPoll });
        await demo.uncheck('#strip');
        await demo.uncheck('#buffer');
    }, () => demo);
    proxy.setMode({ stripUpgrade: false, buffer: false });
    await demo.close();
    assert.ok(fs.statSync(shot).size > 10000, `screenshot at ${shot}`);
    assert.ok(fs.statSync(shotPoll).size > 10000, `screenshot at ${shotPoll}`);
});
