// The browser library's WebSocket in Chromium through real load balancers:
// the browser part of t/clients/balancers.py (t/70_balancers.t), which
// starts the nodes and fronts and runs this with
//   BALANCE_FRONTS   {"apache": port, "haproxy": port, "nginx": port}
//   BALANCE_SESSIONS sessions per front for the routing part
//   BALANCE_FAILOVER sessions per front for the failover part
// It talks JSON lines on stdout ({"kind": "routing" | "ready" | "failover"})
// and waits for "go" on stdin (node2 has been killed) before the failover
// part. Not a *.test.mjs: t/60_browser.t does not run it.
//
// Each front gets a cut proxy (demo/cutproxy.mjs) between Chromium and it,
// so connections can be cut the way a network does (a page cannot drop its
// own WebSocket without a close frame). The page comes from the front
// (index.html of whichever node), the library from /websession.js; the
// sessions use { transport: 'websocket', routeParam: 'ROUTEID' }. The nodes
// also set the ROUTEID cookie: one per browser, the last session's, which a
// re-attach of another node's session must not follow.
import readline from 'node:readline';

import { CutProxy } from '../../demo/cutproxy.mjs';
import { launchChromium } from './chromium.mjs';

const FRONTS = JSON.parse(process.env.BALANCE_FRONTS || '{}');
const N = Number(process.env.BALANCE_SESSIONS) || 20;
const F = Number(process.env.BALANCE_FAILOVER) || 10;

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// Open n sessions, one echo each, in the page (window.group[tag]). The
// browser's cookies are cleared before each: a balancer sends a new session
// where the route cookie (the browser's last session's) points, and the
// sessions are to be spread over both nodes.
async function openSessions(context, page, n, tag, both = 0) {
    const list = () => page.evaluate((tag) => window.group[tag].map((r) => ({ id: r.id, node: r.node })), tag);
    for (let i = 0; i < n; i++) {
        await context.clearCookies();
        await openOne(page, i, tag);
    }
    // with `both`, more until each node holds that many (a balancer may
    // send a run of new sessions to one node), up to 4 n in all
    for (let i = n; both && i < 4 * n; i++) {
        const l = await list();
        if (['node1', 'node2'].every((x) => l.filter((o) => o.node === x).length >= both)) {
            break;
        }
        await context.clearCookies();
        await openOne(page, i, tag);
    }
    return list();
}

async function openOne(page, i, tag) {
    return page.evaluate(async ({ i, tag }) => {
        const one = (i) => new Promise((resolve) => {
            const s = new WebSession('/echo', { transport: 'websocket', routeParam: 'ROUTEID',
                                                minBackoff: 50, maxBackoff: 500 });
            const rec = { s, id: null, node: null, count: 0, events: [], replies: [] };
            s.addEventListener('message', (e) => {
                rec.replies.push(e.data);
                if (rec.wait) rec.wait();
            });
            for (const t of ['resumed', 'sessionlost', 'close', 'reconnecting']) {
                s.addEventListener(t, (e) => rec.events.push(t + (e.detail && e.detail.code ? ':' + e.detail.code : '')
                                                              + (t === 'close' ? ':' + e.code + ':' + e.reason : '')));
            }
            s.addEventListener('open', () => {
                rec.id = s._id;
                s.send(tag + i);
            }, { once: true });
            rec.wait = () => {
                rec.wait = null;
                const [node, c] = rec.replies[0].split(' ');
                rec.node = node;
                rec.count = Number(c);
                resolve(rec);
            };
            setTimeout(() => resolve(rec), 15000);
        });
        const rec = await one(i);
        window.group = window.group || {};
        (window.group[tag] = window.group[tag] || []).push(rec);
    }, { i, tag });
}

// In the page: each session of the group, in random order, sends text and
// waits for its echo; a session that ends instead is reported with its events.
async function echoAll(page, tag, text, timeoutMs) {
    return page.evaluate(async ({ tag, text, timeoutMs }) => {
        const recs = window.group[tag].slice();
        for (let i = recs.length - 1; i > 0; i--) {
            const j = Math.floor(Math.random() * (i + 1));
            [recs[i], recs[j]] = [recs[j], recs[i]];
        }
        const out = [];
        for (const r of recs) {
            const before = r.replies.length;
            const t0 = performance.now();
            const got = await new Promise((resolve) => {
                if (r.s.readyState >= 2) {
                    resolve(null);
                    return;
                }
                const timer = setTimeout(() => resolve(null), timeoutMs);
                r.wait = () => { clearTimeout(timer); r.wait = null; resolve(r.replies[before]); };
                r.s.addEventListener('close', () => { clearTimeout(timer); resolve(null); }, { once: true });
                r.s.send(text);
            });
            const route = (r.id || '').split('.')[1] || null;
            out.push({ route, node: r.node, reply: got, expected: `${r.node} ${r.count + 1} ${text}`,
                       events: r.events.slice(), state: r.s.readyState, ms: performance.now() - t0 });
            if (got) r.count += 1;
        }
        return out;
    }, { tag, text, timeoutMs });
}

async function main() {
    const browser = await launchChromium();
    const context = await browser.newContext();
    const fronts = {};
    const secrets = [];
    try {
        for (const [name, port] of Object.entries(FRONTS)) {
            const proxy = new CutProxy({ targetPort: port });
            const pport = await proxy.listen();
            const page = await context.newPage();
            await page.goto(`http://127.0.0.1:${pport}/index.html`);
            await page.waitForFunction(() => typeof WebSession === 'function', null, { timeout: 10000 });
            fronts[name] = { proxy, page };
        }
        // ---- routing: open, cut, re-attach in random order ----
        const routing = {};
        for (const [name, f] of Object.entries(fronts)) {
            const opened = await openSessions(context, f.page, N, 'r');
            secrets.push(...opened.filter((o) => o.id).map((o) => o.id.slice(0, 32)));
            const routed = opened.filter((o) => o.id && o.id.split('.')[1] === o.node).length;
            f.proxy.cut();
            const res = await echoAll(f.page, 'r', 'again', 15000);
            const resumed = res.filter((r) => r.reply === r.expected && r.events.includes('resumed')).length;
            routing[name] = { sessions: opened.filter((o) => o.node).length, routed, resumed,
                              lost: res.filter((r) => r.events.some((e) => e.startsWith('sessionlost'))).length,
                              perNode: { node1: opened.filter((o) => o.node === 'node1').length,
                                         node2: opened.filter((o) => o.node === 'node2').length },
                              bad: res.filter((r) => r.reply !== r.expected).slice(0, 3) };
            await f.page.evaluate(() => { for (const r of window.group.r) r.s.close(); });
        }
        say({ kind: 'routing', fronts: routing, secrets });
        // ---- failover: sessions on both nodes, then node2 is killed ----
        const fsecrets = [];
        for (const [, f] of Object.entries(fronts)) {
            const opened = await openSessions(context, f.page, F, 'f', Math.max(1, Math.floor(F / 4)));
            fsecrets.push(...opened.filter((o) => o.id).map((o) => o.id.slice(0, 32)));
        }
        say({ kind: 'ready', secrets: fsecrets });
        const rl = readline.createInterface({ input: process.stdin });
        await new Promise((resolve) => rl.once('line', resolve));
        const failover = {};
        for (const [name, f] of Object.entries(fronts)) {
            // the node2 sessions' connections died with node2; the others'
            // are cut here too, so that all of them re-attach
            f.proxy.cut();
            const res = await echoAll(f.page, 'f', 'after', 15000);
            const n2 = res.filter((r) => r.route === 'node2');
            const n1 = res.filter((r) => r.route === 'node1');
            failover[name] = {
                node2: n2.length,
                sessionlost: n2.filter((r) => r.events.includes('sessionlost:4410') && r.state === 3).length,
                node1: n1.length,
                kept: n1.filter((r) => r.reply === r.expected).length,
                bad: res.filter((r) => (r.route === 'node2') === !!r.reply
                                      || (r.route === 'node2' && !r.events.includes('sessionlost:4410')))
                    .slice(0, 3),
            };
        }
        say({ kind: 'failover', fronts: failover });
    } finally {
        for (const f of Object.values(fronts)) {
            f.proxy.close();
        }
        await browser.close();
    }
}

main().then(() => process.exit(0), (e) => {
    say({ kind: 'error', error: String(e && e.stack || e) });
    process.exit(1);
});
