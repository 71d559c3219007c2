// The status page in a browser (SetHandler websession-status, behind the
// site's Basic authentication in t/conf/extra.conf.in): with two sessions
// open from another page, it lists both by fingerprint, its screenshot is
// kept as an artifact (status.png), and its "end" button ends one: the page
// comes back without it and that session's client gets close 1001.
//
// By hand, with a test server running (t/TEST -start-httpd):
//   WEBSESSION_TEST_PORT=8529 node --test t/browser/status.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { PORT, ARTIFACTS, SKIP, launchChromium } from './chromium.mjs';

let browser, context;

before(async () => {
    if (SKIP) {
        return;
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
    context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'status-test' } });
});

after(async () => {
    await browser?.close();
});

test('the status page lists the sessions, shows in a screenshot, and ends one', { skip: SKIP }, async () => {
    const app = await context.newPage();
    await app.goto(`http://127.0.0.1:${PORT}/browser/index.html`);
    await app.waitForFunction(() => window.wsTestsReady, null, { timeout: 10000 });
    const ids = await app.evaluate(async () => {
        const opened = [];
        window.statusSessions = [];
        for (const word of ['first', 'second']) {
            const s = new window.ClassicWebSession('/ws/count', { minBackoff: 20, maxBackoff: 250 });
            const closes = [];
            s.addEventListener('close', (e) => closes.push(e.code));
            window.statusSessions.push({ s, closes });
            await new Promise((resolve) => {
                s.addEventListener('message', () => resolve(), { once: true });
                s.addEventListener('open', () => s.send(word), { once: true });
            });
            opened.push(word);
        }
        return opened;
    });
    assert.deepEqual(ids, ['first', 'second']);

    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${PORT}/websession-status`);
    assert.match(await page.title(), /^WebSession status: /);
    const rows = await page.$$eval('tr', (trs) => trs.map((tr) => tr.innerText));
    const sessionRows = rows.filter((r) => /\/ws\/count/.test(r) && /attached/.test(r));
    assert.ok(sessionRows.length >= 2, `two attached /ws/count sessions listed: ${rows.join(' | ')}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status.png'), fullPage: true });

    // End the first listed /ws/count session with its button.
    const fp = await page.$$eval('tr', (trs) => {
        const row = trs.find((tr) => /\/ws\/count/.test(tr.innerText) && /attached/.test(tr.innerText));
        return row.querySelector('code').innerText;
    });
    await Promise.all([page.waitForNavigation(), page.click(`input[value="${fp}"] + button`)]);
    assert.equal(new URL(page.url()).pathname, '/websession-status', 'back on the page (303)');
    const after = await page.$$eval('code', (cs) => cs.map((c) => c.innerText));
    assert.ok(!after.includes(fp), `the ended session ${fp} is no longer listed`);
    const codes = await app.evaluate(async () => {
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && !window.statusSessions.some((x) => x.closes.length)) {
            await new Promise((r) => setTimeout(r, 50));
        }
        const out = window.statusSessions.map((x) => x.closes);
        window.statusSessions.forEach((x) => x.s.close());
        return out;
    });
    assert.ok(codes.some((c) => c.includes(1001)), `one client got close 1001: ${JSON.stringify(codes)}`);
    await page.close();
    await app.close();
});
