// The scenarios of t/browser/websession.test.mjs and t/browser/bulk.test.mjs,
// run inside Chromium.
// Each function of window.wsTests opens a WebSession (the classic script's
// class or the ES module's, by `lib`), does its work, and resolves to a plain
// object of what it saw; the node side makes the assertions.
//
// The node side provides two functions (page.exposeFunction):
//   proxyCut(mode)    the TCP proxy between this page and Apache drops every
//                     connection, RST (mode 'rst') or FIN ('fin'): no close
//                     frame, like a network failure; resolves to
//                     { dropped, websockets }
//   proxyRefuse(on)   while on, the proxy resets every new connection
//   proxyMode(m)      { stripUpgrade, buffer }: the proxy strips the
//                     WebSocket upgrade from requests, or holds responses
//                     until they are complete (new connections)
// and for bulk (bulk.test.mjs, no proxy):
//   serverState(port) where a stalled session stands on the server's side
//                     (TCP and unix socket queues, the script's state)
"use strict";
(function () {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

    // A cut of the proxy's connections that finds a request under way
    // (between two polls there may be none for a moment on a loaded
    // machine): tried again until one does, for up to 2 s, so that each cut
    // a test counts really cut something.
    async function cutSomething(mode) {
        let r = await window.proxyCut(mode);
        for (let i = 0; i < 80 && !(r.dropped >= 1); i++) {
            await sleep(25);
            r = await window.proxyCut(mode);
        }
        return r;
    }

    function pick(lib) {
        const C = lib === "module" ? window.ModuleWebSession : window.ClassicWebSession;
        if (typeof C !== "function") {
            throw new Error("no WebSession class for " + lib);
        }
        return C;
    }

    /** Polls until cond() is true; false after ms. */
    async function waitFor(cond, ms) {
        const end = performance.now() + ms;
        while (!cond()) {
            if (performance.now() > end) {
                return false;
            }
            await sleep(5);
        }
        return true;
    }

    /** Every event of s except message, in order, with what it carried. */
    function record(s) {
        const t0 = performance.now();
        const rec = {
            events: [],
            count(type) {
                return this.events.filter((e) => e.type === type).length;
            },
            has(type) {
                return this.count(type) > 0;
            },
        };
        for (const type of ["open", "close", "error", "reconnecting", "resumed", "sessionlost"]) {
            s.addEventListener(type, (e) => {
                const ev = { type, t: Math.round(performance.now() - t0), readyState: s.readyState };
                if (type === "close") {
                    Object.assign(ev, { code: e.code, reason: e.reason, wasClean: e.wasClean,
                                        isCloseEvent: e instanceof CloseEvent });
                } else if (type === "error") {
                    ev.message = e.message;
                } else if (type === "reconnecting") {
                    Object.assign(ev, { attempt: e.detail, delay: Math.round(e.delay) });
                } else if (type === "resumed") {
                    ev.attempts = e.detail;
                } else if (type === "sessionlost") {
                    ev.detail = e.detail;
                }
                rec.events.push(ev);
            });
        }
        return rec;
    }

    const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

    function sameBytes(a, b) {
        if (a.length !== b.length) {
            return false;
        }
        for (let i = 0; i < a.length; i++) {
            if (a[i] !== b[i]) {
                return false;
            }
        }
        return true;
    }

    /** What a received message is, for the node side. */
    async function describe(data, expected) {
        if (typeof data === "string") {
            return { kind: "string", length: data.length, equal: data === expected, value: data.slice(0, 80) };
        }
        let bytes;
        let kind;
        if (data instanceof ArrayBuffer) {
            kind = "ArrayBuffer";
            bytes = new Uint8Array(data);
        } else if (data instanceof Blob) {
            kind = "Blob";
            bytes = new Uint8Array(await data.arrayBuffer());
        } else {
            return { kind: Object.prototype.toString.call(data), equal: false };
        }
        return { kind, length: bytes.length,
                 equal: expected instanceof Uint8Array && sameBytes(bytes, expected),
                 head: hex(bytes.subarray(0, 16)) };
    }

    /**
     * The messages of a bulk run: message i is its number in 7 digits, ":",
     * then letters of a fixed pseudo-random string from position i on, size
     * bytes in all. A message cut, shifted, swapped with another or altered
     * anywhere differs from the one expected.
     */
    function bulkMessages(count, size) {
        const letters = [];
        let x = 12345;
        for (let i = 0; i < count + size; i++) {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            letters.push(String.fromCharCode(97 + (x >>> 16) % 26));
        }
        const text = letters.join("");
        return (i) => String(i).padStart(7, "0") + ":" + text.substr(i, size - 8);
    }

    window.wsTests = {
        libraries() {
            return {
                classic: typeof window.ClassicWebSession,
                module: typeof window.ModuleWebSession,
                distinct: window.ClassicWebSession !== window.ModuleWebSession,
                moduleExportsAgree: window.moduleExportsAgree,
                constants: [0, 1, 2, 3].map((i) => ["CONNECTING", "OPEN", "CLOSING", "CLOSED"][i]
                                         + "=" + window.ModuleWebSession[["CONNECTING", "OPEN", "CLOSING", "CLOSED"][i]]),
            };
        },

        /**
         * Sends m1..mN to /ws/count (which answers line K with "K <line>"),
         * four at a time every 10 ms, and has the proxy cut the connection
         * right after sending each message number of cutAt, alternately with
         * RST and FIN, while messages and replies are in flight. A cut waits
         * (sending paused) until the previous one has been resumed, so each
         * one drops a live connection; with waitResume false (long polling,
         * whose transport repeats a cut poll by itself, without a resume) it
         * waits 150 ms instead. transport: the option (default: 'auto').
         */
        async countWithCuts({ lib, n = 200, cutAt = [30, 70, 110, 150], path = "/ws/count", transport,
                              waitResume = true }) {
            const WS = pick(lib);
            const s = new WS(path, { minBackoff: 20, maxBackoff: 250, transport });
            const rec = record(s);
            const replies = [];
            const cuts = [];
            let live = false;
            s.addEventListener("open", () => { live = true; });
            s.addEventListener("resumed", () => { live = true; });
            s.addEventListener("message", (e) => replies.push(e.data));
            if (!(await waitFor(() => rec.has("open") || rec.has("close"), 10000)) || !rec.has("open")) {
                return { failed: "never opened", events: rec.events };
            }
            const url = s.url;
            const protocol = s.protocol;
            let sent = 0;
            while (sent < n && !rec.has("close")) {
                for (let i = 0; i < 4 && sent < n; i++) {
                    s.send("m" + (++sent));
                    if (cuts.length < cutAt.length && sent >= cutAt[cuts.length]) {
                        if (!waitResume) {
                            await sleep(150);
                        } else if (!(await waitFor(() => live || rec.has("close"), 10000))) {
                            return { failed: "no resume within 10 s", events: rec.events, replies };
                        }
                        live = false;
                        const at = { sent, replies: replies.length };
                        const mode = cuts.length % 2 ? "fin" : "rst";
                        cuts.push(cutSomething(mode).then((r) => Object.assign({ at, mode }, r)));
                    }
                }
                await sleep(10);
            }
            await waitFor(() => replies.length >= n || rec.has("close"), 30000);
            // the last cut's resume, then a moment for anything extra (a
            // duplicate would arrive now)
            if (waitResume) {
                await waitFor(() => rec.count("resumed") >= cuts.length || rec.has("close"), 10000);
            }
            await sleep(250);
            const cutResults = await Promise.all(cuts);
            const used = s.transport;
            const before = { readyState: s.readyState, bufferedAmount: s.bufferedAmount,
                             closeEvents: rec.count("close") };
            s.close(1000, "done");
            await waitFor(() => rec.has("close"), 10000);
            return { url, protocol, transport: used, replies, events: rec.events, cuts: cutResults, before,
                     readyStateAfter: s.readyState };
        },

        /**
         * A new session with the default transport ('auto') while the proxy
         * behaves as told (mode); 20 lines to /ws/count and their replies.
         */
        async autoFallback({ lib, mode }) {
            await window.proxyMode(mode);
            try {
                const WS = pick(lib);
                const s = new WS("/ws/count", { minBackoff: 20, maxBackoff: 250 });
                const rec = record(s);
                const replies = [];
                s.addEventListener("message", (e) => replies.push(e.data));
                if (!(await waitFor(() => rec.has("open") || rec.has("close"), 20000)) || !rec.has("open")) {
                    return { failed: "never opened", events: rec.events };
                }
                const transport = s.transport;
                for (let i = 1; i <= 20; i++) {
                    s.send("m" + i);
                }
                await waitFor(() => replies.length >= 20 || rec.has("close"), 10000);
                await sleep(200);
                s.close(1000, "done");
                await waitFor(() => rec.has("close"), 10000);
                return { transport, replies, events: rec.events };
            } finally {
                await window.proxyMode({ stripUpgrade: false, buffer: false });
            }
        },

        /**
         * Binary and text messages through /framed (cat: an exact echo),
         * binaryType 'arraybuffer', with a cut while a 200 kB message is in
         * flight; then binaryType 'blob'.
         */
        async binary({ lib, transport }) {
            const WS = pick(lib);
            const s = new WS("/framed", { minBackoff: 20, maxBackoff: 250, transport });
            const rec = record(s);
            const got = [];
            s.binaryType = "arraybuffer";
            const binaryTypeSet = s.binaryType;
            s.addEventListener("message", (e) => got.push(e.data));
            if (!(await waitFor(() => rec.has("open") || rec.has("close"), 10000)) || !rec.has("open")) {
                return { failed: "never opened", events: rec.events };
            }
            const all = Uint8Array.from({ length: 256 }, (_, i) => i);
            const big = new Uint8Array(200000);
            for (let i = 0; i < big.length; i++) {
                big[i] = (i * 7 + (i >> 8)) & 255;
            }
            const backing = Uint8Array.from({ length: 16 }, (_, i) => 100 + i);
            const view = new Uint8Array(backing.buffer, 3, 5);      // a view into a larger buffer
            const text = "héllo wörld ☃ 𝄞 \u0000 end";
            const blobBytes = Uint8Array.from([0, 255, 10, 13, 0, 68]);
            const expected = [all, big, text, blobBytes, Uint8Array.from([103, 104, 105, 106, 107]),
                              all.subarray(250)];
            s.send(all);
            s.send(big);
            const cut = await window.proxyCut("rst");      // the big one is in flight
            s.send(text);
            s.send(new Blob([blobBytes]));
            s.send(view);
            s.send(new DataView(all.buffer, 250, 6));
            await waitFor(() => got.length >= expected.length || rec.has("close"), 15000);
            const results = [];
            for (let i = 0; i < got.length; i++) {
                results.push(await describe(got[i], expected[i]));
            }
            // binaryType 'blob': a Blob arrives
            s.binaryType = "blob";
            const small = Uint8Array.from([1, 2, 3, 0, 250]);
            s.send(small);
            await waitFor(() => got.length >= expected.length + 1 || rec.has("close"), 5000);
            const asBlob = got.length > expected.length ? await describe(got[expected.length], small) : null;
            await sleep(100);
            const extra = got.length - expected.length - 1;
            s.close(1000, "done");
            await waitFor(() => rec.has("close"), 10000);
            return { binaryTypeSet, results, asBlob, extra, cut, events: rec.events, transport: s.transport };
        },

        /**
         * Bulk through an echo (/limits-cat: /bin/cat, framed): count messages
         * of size bytes handed to send() back to back as soon as the session
         * is open (the library queues what its window does not take yet);
         * each echo must be exactly the next message sent. Measures the time
         * from the first send to the last echo and the longest interval
         * without an echo (the first one counted from the first send). Gives
         * up after stallMs without one. Then closes the session (cat gets EOF:
         * 1000).
         */
        async bulk({ lib = "classic", path = "/limits-cat", transport, count, size, stallMs = 3000 }) {
            const WS = pick(lib);
            const s = new WS(path, { minBackoff: 20, maxBackoff: 250, transport });
            const rec = record(s);
            if (!(await waitFor(() => rec.has("open") || rec.has("close"), 10000)) || !rec.has("open")) {
                return { failed: "never opened", events: rec.events };
            }
            const message = bulkMessages(count, size);
            let got = 0;
            let extra = 0;               // messages after the end (or after giving up)
            let done = false;
            let bad = null;
            let maxGap = 0;
            let gapBefore = 0;
            let firstMs = null;
            const t0 = performance.now();
            let last = t0;
            s.addEventListener("message", (e) => {
                const now = performance.now();
                if (done || bad !== null || got >= count) {
                    extra++;
                    return;
                }
                if (now - last > maxGap) {
                    maxGap = now - last;
                    gapBefore = got;
                }
                last = now;
                if (firstMs === null) {
                    firstMs = now - t0;
                }
                const want = message(got);
                if (e.data !== want) {
                    const d = String(e.data);
                    let at = 0;
                    while (at < d.length && d[at] === want[at]) {
                        at++;
                    }
                    bad = { index: got, length: d.length, differsAt: at, head: d.slice(0, 20),
                            expected: want.slice(0, 20) };
                    return;
                }
                got++;
            });
            for (let i = 0; i < count; i++) {
                s.send(message(i));
            }
            const sendMs = performance.now() - t0;
            let stalled = false;
            await waitFor(() => {
                stalled = performance.now() - last > stallMs;
                return got >= count || bad !== null || rec.has("close") || stalled;
            }, 60000);
            done = true;
            if (stalled) {
                maxGap = Math.max(maxGap, performance.now() - last);
                gapBefore = got;
            }
            const figures = { count, got, bad, stalled, totalMs: last - t0, sendMs, firstMs, maxGapMs: maxGap,
                              gapBefore };
            if (stalled && typeof window.serverState === "function") {
                figures.server = await window.serverState(Number(location.port));   // while it stalls
            }
            // a duplicate would arrive now; every message sent is acknowledged
            await waitFor(() => s.bufferedAmount === 0 || rec.has("close"), 2000);
            await sleep(200);
            const before = { readyState: s.readyState, bufferedAmount: s.bufferedAmount,
                             closeEvents: rec.count("close") };
            const used = { transport: s.transport, url: s.url, protocol: s.protocol };
            s.close(1000, "done");
            await waitFor(() => rec.has("close"), 5000);
            return Object.assign(used, figures, { extra, before, events: rec.events });
        },

        /** A URL that is an ordinary file: the upgrade never happens. */
        async notPersistent({ lib, path = "/ws/index.html" }) {
            const WS = pick(lib);
            const s = new WS(path, { minBackoff: 10, maxBackoff: 50 });
            const rec = record(s);
            const readyStateAtStart = s.readyState;
            let sawMessage = false;
            s.addEventListener("message", () => { sawMessage = true; });
            await waitFor(() => rec.has("close"), 20000);
            await sleep(100);
            return { readyStateAtStart, events: rec.events, readyState: s.readyState, sawMessage };
        },

        /** /ws/exit3 reads one line and exits with status 3. */
        async scriptExit({ lib }) {
            const WS = pick(lib);
            const s = new WS("/ws/exit3", { minBackoff: 20, maxBackoff: 250 });
            const rec = record(s);
            await waitFor(() => rec.has("open") || rec.has("close"), 10000);
            s.send("bye");
            await waitFor(() => rec.has("close"), 10000);
            await sleep(100);
            return { events: rec.events, readyState: s.readyState };
        },

        /**
         * The network is down (the proxy resets every connection) for longer
         * than WebSessionResumeTimeout (5 s in /ws): when it comes back the
         * server no longer has the session.
         */
        async sessionExpired({ lib, downMs = 7000 }) {
            const WS = pick(lib);
            const s = new WS("/ws/count", { minBackoff: 20, maxBackoff: 500 });
            const rec = record(s);
            const got = [];
            s.addEventListener("message", (e) => got.push(e.data));
            await waitFor(() => rec.has("open") || rec.has("close"), 10000);
            s.send("before");
            await waitFor(() => got.length >= 1, 5000);
            await window.proxyRefuse(true);
            const cut = await window.proxyCut("rst");
            await sleep(downMs);
            const attemptsWhileDown = rec.count("reconnecting");
            const readyStateWhileDown = s.readyState;
            s.send("queued while down");
            await window.proxyRefuse(false);
            await waitFor(() => rec.has("close"), 15000);
            await sleep(100);
            if (s.readyState < WS.CLOSING) {
                s.close(1000, "the test gave up waiting");
            }
            return { got, cut, attemptsWhileDown, readyStateWhileDown, events: rec.events,
                     readyState: s.readyState };
        },

        /**
         * /ws/exit5-later reads a line, sleeps a second and exits 5: here it
         * exits while the client is away. What does the client learn?
         */
        async exitWhileAway({ lib, downMs = 2500 }) {
            const WS = pick(lib);
            const s = new WS("/ws/exit5-later", { minBackoff: 20, maxBackoff: 250 });
            const rec = record(s);
            await waitFor(() => rec.has("open") || rec.has("close"), 10000);
            s.send("go");
            await sleep(50);
            await window.proxyRefuse(true);
            const cut = await window.proxyCut("rst");
            await sleep(downMs);
            await window.proxyRefuse(false);
            const closedByServer = await waitFor(() => rec.has("close"), 6000);
            const readyState = s.readyState;
            if (!closedByServer) {
                s.close(1000, "the test gave up waiting");
                await waitFor(() => rec.has("close"), 5000);
            }
            return { cut, closedByServer, events: rec.events, readyState };
        },
    };
    window.wsTestsReady = true;
})();
