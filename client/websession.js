/*
 * websession.js -- a browser client for mod_websession's websession.v1
 * subprotocol (docs/PROTOCOL.md), with the API of the browser's WebSocket.
 *
 * A WebSession keeps one session with a persistent script across any number
 * of lost connections: it reconnects by itself, resumes with the session id,
 * resends what the server did not acknowledge and never delivers a message
 * twice, so the application sees every message exactly once and in order.
 * Where no WebSocket gets through, the same session travels over plain HTTP
 * requests: Server-Sent Events or long polls down, POSTs up.
 *
 * No dependencies, no build step. This file is a classic script: loaded with
 * <script src="websession.js"> it defines the global WebSession; it also works
 * when imported as a module (it then sets globalThis.WebSession, which
 * websession.mjs re-exports) and with require() (module.exports).
 * It declares nothing at the top level, so it can be concatenated with an
 * ES module tail that exports globalThis.WebSession.
 */
(function (root, factory) {
    'use strict';
    const WebSession = factory();
    if (typeof module === 'object' && module && module.exports) {
        module.exports = WebSession;
        module.exports.WebSession = WebSession;
        module.exports.default = WebSession;
    }
    root.WebSession = WebSession;
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
    'use strict';

    const PROTOCOL = 'websession.v1';
    const ID_PREFIX = 'websession.id.';
    const ACK_EVERY = 16;            // acknowledge at once after this many
    const ACK_DELAY = 20;            // ... else within this many ms
    const PRE_OPEN_RETRIES = 2;      // retries before the first R, then give up
    const NOT_PERSISTENT = 'target is not a persistent WebSession script (the server did not upgrade)';
    const FATAL_CODES = new Set([4400, 4409, 4410]);
    const LOST_CODES = new Set([1006, 1015]);   // no close frame was received
    const BYTE_D = 0x44;
    // A session id: the secret (base64url), then optionally "." and the
    // route of the server that holds the session (WebSessionRoute).
    const ID_RE = /^[A-Za-z0-9_-]{32}(?:\.[A-Za-z0-9_-]{1,32})?$/;

    const CONNECTING = 0;
    const OPEN = 1;
    const CLOSING = 2;
    const CLOSED = 3;

    const DEFAULTS = {
        WebSocket: undefined,        // implementation; default globalThis.WebSocket
        webSocketOptions: undefined, // third constructor argument (e.g. Node's ws)
        fetch: undefined,            // HTTP transports, diagnosis; default globalThis.fetch
        minBackoff: 100,
        maxBackoff: 10000,
        connectTimeout: 10000,
        fallbackTimeout: 4000,
        heartbeatTimeout: 90000,
        transport: 'auto',
        routeParam: null,
        random: Math.random,
    };

    // ---- small helpers ------------------------------------------------------

    function domError(message, name) {
        if (typeof DOMException === 'function') {
            return new DOMException(message, name);
        }
        const e = new Error(message);
        e.name = name;
        return e;
    }

    /** Bytes of s in UTF-8 (lone surrogates count as U+FFFD, 3 bytes). */
    function utf8Length(s) {
        let n = 0;
        for (let i = 0; i < s.length; i++) {
            const c = s.charCodeAt(i);
            if (c < 0x80) {
                n += 1;
            } else if (c < 0x800) {
                n += 2;
            } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length
                       && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
                n += 4;
                i++;
            } else {
                n += 3;
            }
        }
        return n;
    }

    function isBlob(x) {
        return typeof Blob === 'function' && x instanceof Blob;
    }

    /** A view of the bytes of an ArrayBuffer or ArrayBufferView, or null. */
    function bytesOf(x) {
        if (x instanceof ArrayBuffer) {
            return new Uint8Array(x);
        }
        if (ArrayBuffer.isView(x)) {
            return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        }
        return null;
    }

    /** A binary data frame: 'D' (0x44), then a copy of the bytes. */
    function binaryFrame(bytes) {
        const frame = new Uint8Array(bytes.length + 1);
        frame[0] = BYTE_D;
        frame.set(bytes, 1);
        return frame;
    }

    /** A decimal count as the protocol writes it: 1-20 digits, no leading 0. */
    function parseCount(s) {
        if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) {
            return NaN;
        }
        return Number(s);
    }

    /**
     * Resolves url like the WebSocket constructor, but also accepts http(s):
     * returns { ws, http }, the same URL with a ws(s) and an http(s) scheme.
     */
    function resolveUrls(url) {
        const base = typeof location !== 'undefined' && location && location.href;
        let u;
        try {
            u = base ? new URL(String(url), base) : new URL(String(url));
        } catch (e) {
            throw domError('WebSession: invalid URL: ' + url, 'SyntaxError');
        }
        const schemes = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
        if (!schemes[u.protocol]) {
            throw domError('WebSession: the URL must be http(s) or ws(s): ' + url, 'SyntaxError');
        }
        u.hash = '';
        u.protocol = schemes[u.protocol];
        const ws = u.href;
        u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
        return { ws, http: u.href };
    }

    /** urls with name=.<route> added to their query, for a balancer that
     *  reads the route from a URL parameter (after its first '.'): only the
     *  route, never the secret, which such a parameter would put in logs. */
    function routedUrls(urls, name, id) {
        const dot = id ? id.indexOf('.') : -1;
        if (!name || dot < 0) {
            return urls;
        }
        const add = (href) => {
            const u = new URL(href);
            u.searchParams.set(name, id.slice(dot));
            return u.href;
        };
        return { ws: add(urls.ws), http: add(urls.http) };
    }

    /** Delay before reconnection attempt n (1, 2, ...): full jitter. */
    function backoffDelay(attempt, min, max, random) {
        const ceiling = Math.max(min, Math.min(max, min * Math.pow(2, attempt)));
        return min + random() * (ceiling - min);
    }

    /** An Event of the given type with extra read-only properties. */
    function makeEvent(type, props, Ctor) {
        let ev;
        if (Ctor === 'close' && typeof CloseEvent === 'function') {
            ev = new CloseEvent('close', props);
            return ev;
        }
        if (Ctor === 'message' && typeof MessageEvent === 'function') {
            return new MessageEvent('message', props);
        }
        if (props && 'detail' in props && typeof CustomEvent === 'function') {
            ev = new CustomEvent(type, { detail: props.detail });
        } else {
            ev = new Event(type);
        }
        for (const k of Object.keys(props || {})) {
            if (!(k in ev)) {
                Object.defineProperty(ev, k, { value: props[k], enumerable: true });
            }
        }
        return ev;
    }

    // ---- transports ---------------------------------------------------------
    //
    // A transport is one connection attempt. The session creates it with
    //   factory(urls, protocols, options, events)
    // where urls is { ws, http }, protocols is ['websession.v1'] on a new
    // session and ['websession.v1', 'websession.id.' + id] to resume, and
    // events is
    //   { open(), message(data: string | Uint8Array), close(code, reason, fatal) }.
    // It returns an object with
    //   protocol          the subprotocol the server selected (after open)
    //   send(data)        data: a string (text frame) or a Uint8Array (binary)
    //   close(code, why)  a clean close: the server ends the session
    //   abort()           drop the connection without a close frame, at once
    //                     and silently (no close event follows)
    // close(code) with code 1006 (or 1015) means the connection was lost
    // without a close frame; any other code is the server's close frame.
    // fatal (1006 only) says the target answered, and is not a WebSession
    // script at all: retrying cannot help.
    //
    // 'websocket' is websession.v1 over a WebSocket; 'sse' and 'poll' carry
    // the same messages over plain HTTP requests (the fallback transports).

    function websocketTransport(urls, protocols, options, events) {
        const Impl = options.WebSocket || (typeof WebSocket === 'function' ? WebSocket : null);
        if (!Impl) {
            throw new TypeError('WebSession: no WebSocket implementation (pass options.WebSocket)');
        }
        const ws = options.webSocketOptions === undefined
            ? new Impl(urls.ws, protocols)
            : new Impl(urls.ws, protocols, options.webSocketOptions);
        let live = true;
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => { if (live) events.open(); };
        ws.onmessage = (e) => {
            if (live) {
                events.message(typeof e.data === 'string' ? e.data : (bytesOf(e.data) || e.data));
            }
        };
        ws.onerror = () => {};      // a close event follows; it decides
        ws.onclose = (e) => {
            if (live) {
                live = false;
                events.close(e.code, e.reason || '');
            }
        };
        return {
            get protocol() {
                return ws.protocol;
            },
            send(data) {
                try {
                    ws.send(data);
                } catch (e) {
                    // the connection is going away; the data is resent on resume
                }
            },
            close(code, reason) {
                try {
                    ws.close(code, reason);
                } catch (e) {
                    ws.close();
                }
            },
            abort() {
                live = false;
                ws.onopen = ws.onmessage = ws.onclose = null;
                if (typeof ws.terminate === 'function') {
                    ws.terminate();             // Node's ws: no close frame
                } else if (ws.readyState === CONNECTING) {
                    ws.close();                 // fails it: no close frame either
                } else {
                    // A browser WebSocket cannot be dropped without a close
                    // frame; 4100 tells the server "this connection only,
                    // the session goes on" (docs/PROTOCOL.md).
                    try {
                        ws.close(4100, 'connection abandoned');
                    } catch (e) {
                        // already closing
                    }
                }
            },
        };
    }

    // ---- the HTTP fallback transports (PROTOCOL.md, "The HTTP fallback
    // transports"): one down request (an event stream, or a series of long
    // polls) brings the server's messages; POSTs of framed records carry
    // ours. The session sees the same messages as over a WebSocket.

    const POLL_RETRIES = 3;          // a failed poll is repeated this often
    const RESEND_MIN = 100;          // ms before re-sending what the server
    const RESEND_MAX = 1000;         // did not take, growing to this
    const UP_BUDGET = 65536;         // bytes per POST before the window is known
    const REASON_MAX = 200;          // characters of an error body in a reason
    const COUNT = '(0|[1-9][0-9]{0,19})';
    const R_MESSAGE = new RegExp('^R' + COUNT + '(?: ' + COUNT + ')?$');
    const POLL_END = 'end';          // the comment that ends a complete poll answer
    const CLOSE_DATA = /^([0-9]{1,5})(?: ([^]*))?$/;

    /**
     * An incremental text/event-stream parser. push() takes decoded text in
     * pieces cut anywhere; onEvent(type, data) is called for each complete
     * event with data ('' type when there is no event field). Lines end with
     * CRLF, LF or CR; data lines are joined with LF; other fields are
     * skipped; an event without data is not dispatched. Comments are
     * skipped too, after onComment(text), if given, has seen each (the text
     * after the colon, without one leading space).
     */
    function sseParser(onEvent, onComment) {
        let partial = '';            // a line not yet ended
        let afterCR = false;         // the last piece ended with CR: skip an LF
        let type = '';
        let data = null;             // the data lines so far, or null
        const LINE_END = /\r\n|\r|\n/g;

        function line(l) {
            if (l === '') {
                const t = type;
                const d = data;
                type = '';
                data = null;
                if (d) {
                    onEvent(t, d.join('\n'));
                }
                return;
            }
            const colon = l.indexOf(':');
            if (colon === 0) {
                if (onComment) {
                    onComment(l.charAt(1) === ' ' ? l.slice(2) : l.slice(1));
                }
                return;                        // a comment
            }
            const field = colon < 0 ? l : l.slice(0, colon);
            let value = colon < 0 ? '' : l.slice(colon + 1);
            if (value.charAt(0) === ' ') {
                value = value.slice(1);
            }
            if (field === 'data') {
                (data || (data = [])).push(value);
            } else if (field === 'event') {
                type = value;
            }
        }

        return {
            push(text) {
                let start = 0;
                if (afterCR && text.length) {
                    afterCR = false;
                    if (text.charAt(0) === '\n') {
                        start = 1;
                    }
                }
                LINE_END.lastIndex = start;
                let m;
                while ((m = LINE_END.exec(text))) {
                    const l = partial + text.slice(start, m.index);
                    partial = '';
                    start = m.index + m[0].length;
                    if (m[0] === '\r' && start === text.length) {
                        afterCR = true;         // CRLF may be cut between pieces
                    }
                    line(l);
                }
                partial += text.slice(start);
            },
        };
    }

    /** The bytes of standard base64 (atob's alphabet, padding optional). */
    function base64Bytes(s) {
        const bin = atob(s);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) {
            bytes[i] = bin.charCodeAt(i);
        }
        return bytes;
    }

    const encoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;

    /** One record of the framed format: "T <len>\n<payload>\n" for a string,
     *  "B <len>\n<bytes>\n" for bytes; len counts bytes. */
    function framedRecord(data) {
        const payload = typeof data === 'string' ? encoder.encode(data) : data;
        const head = encoder.encode((typeof data === 'string' ? 'T ' : 'B ') + payload.length + '\n');
        const rec = new Uint8Array(head.length + payload.length + 1);
        rec.set(head);
        rec.set(payload, head.length);
        rec[rec.length - 1] = 0x0a;
        return rec;
    }

    function concatBytes(parts) {
        let n = 0;
        for (const p of parts) {
            n += p.length;
        }
        const out = new Uint8Array(n);
        let at = 0;
        for (const p of parts) {
            out.set(p, at);
            at += p.length;
        }
        return out;
    }

    /** An error body as a one-line reason. */
    async function reasonText(res) {
        try {
            return (await res.text()).trim().replace(/\s+/g, ' ').slice(0, REASON_MAX);
        } catch (e) {
            return '';
        }
    }

    /**
     * One fallback "connection" (see the transports comment for the
     * interface). The session's first send is R<m>: it starts the down side
     * with WebSession-Received: m. The server's first R<n> <w> numbers our
     * uploads from n + 1; we keep each D until a count covers it.
     */
    class HttpTransport {
        constructor(variant, urls, protocols, options, events) {
            const f = options.fetch || (typeof fetch === 'function' ? fetch : null);
            if (!f || !encoder || typeof AbortController !== 'function') {
                throw new TypeError('WebSession: the ' + variant + ' transport needs fetch, '
                                    + 'AbortController and TextEncoder (pass options.fetch)');
            }
            // called as a plain function: a browser's fetch refuses any
            // other receiver than the window ("Illegal invocation")
            this._fetch = (url, init) => f(url, init);
            this._variant = variant;
            this._poll = variant === 'poll';
            this._url = urls.http;
            this._opts = options;
            this._events = events;
            const token = protocols[1];
            this._id = token ? (token.startsWith(ID_PREFIX) ? token.slice(ID_PREFIX.length) : token) : null;
            this._live = true;
            this._requests = new Set();      // AbortControllers of our fetches
            this._timers = new Set();
            // down
            this._rx = null;                 // server data messages received (from R<m>)
            this._gotR = false;              // this connection's first R arrived
            this._pollR = false;             // the current poll brought an R
            this._pollEnd = false;           // ... and its end marker: it is complete
            this._pollFailures = 0;          // failed polls since one brought an R
            // up
            this._firstSeq = null;           // the number of _pending[0], from the first R
            this._pending = [];              // framed records of D not yet covered
            this._ack = null;                // the latest A to send, or null
            this._closeRecord = null;        // C<code>[ <reason>], until it is sent
            this._closeSent = false;
            this._posting = false;           // a POST (or its retry) is under way
            this._pumpQueued = false;
            this._holding = false;           // re-sending waits (server flow control)
            this._holdDelay = 0;
            this._postFailures = 0;          // failed POSTs since the last answer
            this._failedFor = 0;             // ms of retry delays since then
            this._budget = UP_BUDGET;
            queueMicrotask(() => {
                if (this._live) {
                    events.open();
                }
            });
        }

        get protocol() {
            return PROTOCOL;
        }

        send(data) {
            if (!this._live) {
                return;
            }
            if (typeof data === 'string') {
                const type = data.charAt(0);
                if (type === 'R') {
                    if (this._rx === null) {
                        this._rx = parseCount(data.slice(1));
                        this._get(true);
                    }
                    return;
                }
                if (type === 'A') {
                    // In poll mode every poll states our count: no POST needed.
                    if (!this._poll) {
                        this._ack = data;
                        this._pump();
                    }
                    return;
                }
            }
            this._pending.push(framedRecord(data));
            this._pump();
        }

        close(code, reason) {
            if (this._live && this._closeRecord === null && !this._closeSent) {
                this._closeRecord = 'C' + code + (reason ? ' ' + reason : '');
                this._pump();
            }
        }

        abort() {
            this._stop();
        }

        // ---- plumbing ----

        _stop() {
            this._live = false;
            for (const ac of this._requests) {
                ac.abort();
            }
            this._requests.clear();
            for (const t of this._timers) {
                clearTimeout(t);
            }
            this._timers.clear();
        }

        /** Reports the end of this connection, once, and stops everything. */
        _finish(code, reason, fatal) {
            if (this._live) {
                this._stop();
                this._events.close(code, reason, fatal);
            }
        }

        /** Something from the server broke websession.v1: tell the server we
         *  leave (best effort), then report it like a server's close. */
        _broken(why) {
            const reason = 'websession.v1: ' + why;
            if (this._id) {
                const init = { method: 'POST', cache: 'no-store', keepalive: true,
                               body: framedRecord('C1000 ' + reason.slice(0, 120)),
                               headers: this._headers({ 'WebSession-Sequence': '1' }) };
                Promise.resolve().then(() => this._fetch(this._url, init)).catch(() => {});
            }
            this._finish(1002, reason);
        }

        _later(fn, ms) {
            const t = setTimeout(() => {
                this._timers.delete(t);
                if (this._live) {
                    fn();
                }
            }, ms);
            this._timers.add(t);
        }

        _headers(extra) {
            const h = { 'WebSession-Transport': this._variant };
            if (this._id) {
                h['Session-ID'] = this._id;
            }
            return Object.assign(h, extra);
        }

        /** fetch() with our AbortController; null once the transport is gone. */
        async _request(ac, init) {
            this._requests.add(ac);
            init.signal = ac.signal;
            init.cache = 'no-store';
            const res = await this._fetch(this._url, init);
            return this._live ? res : null;
        }

        _setId(id) {
            if (!this._id && ID_RE.test(id)) {
                this._id = id;
                this._pump();              // a close may wait for it
            }
        }

        // ---- down: the event stream or the polls ----

        async _get(first) {
            const extra = { 'WebSession-Received': String(this._rx), Accept: 'text/event-stream' };
            if (this._poll && first) {
                extra['WebSession-Poll'] = 'open';
            }
            const ac = new AbortController();
            this._pollR = false;
            this._pollEnd = false;
            let failure;
            try {
                const res = await this._request(ac, { method: 'GET', headers: this._headers(extra) });
                if (!res) {
                    return;
                }
                if (res.status !== 200
                    || !/^text\/event-stream\b/i.test(res.headers.get('Content-Type') || '')) {
                    failure = await this._refused(res, first);
                } else {
                    const id = res.headers.get('Session-ID');
                    if (id && !this._id) {
                        this._setId(id);
                        this._events.message('I' + id);    // before the body's messages
                    }
                    failure = await this._read(res);
                }
            } catch (e) {
                failure = 'request failed: ' + ((e && e.message) || e);
            } finally {
                this._requests.delete(ac);
            }
            if (!this._live || failure === null) {
                return;
            }
            this._downEnded(failure);
        }

        /** Reads the event stream; a reason why it ended, or null when it
         *  ended with a close event. */
        async _read(res) {
            if (!res.body) {
                return 'empty response';
            }
            const reader = res.body.getReader();
            const decoder = new TextDecoder();
            const parser = sseParser((type, data) => this._onEvent(type, data), (text) => {
                if (this._poll && text === POLL_END) {
                    this._pollEnd = true;
                }
            });
            for (;;) {
                const { done, value } = await reader.read();
                if (!this._live) {
                    reader.cancel().catch(() => {});   // for a fetch without abort
                    return null;
                }
                if (done) {
                    parser.push(decoder.decode());
                    return this._live ? '' : null;
                }
                parser.push(decoder.decode(value, { stream: true }));
            }
        }

        /** A down request ended without a close event: why, or '' after a
         *  response that ended in order. A poll's answer is complete only
         *  with its R and its end marker; one without is cut, a failed poll:
         *  it is repeated with the count of the messages it did deliver
         *  (each event it delivered was whole), so nothing comes twice. */
        _downEnded(why) {
            if (!this._poll) {
                this._finish(1006, 'the event stream ended' + (why ? ': ' + why : ''));
                return;
            }
            if (why === '' && this._pollR && this._pollEnd) {
                this._get(false);          // the next poll, at once
                return;
            }
            if (why === '') {
                why = this._pollR ? 'the answer was cut (no end marker)' : 'no resume point in the answer';
            }
            if (!this._gotR || ++this._pollFailures > POLL_RETRIES) {
                this._finish(1006, 'poll failed: ' + why);
                return;
            }
            const o = this._opts;
            this._later(() => this._get(false),
                        backoffDelay(this._pollFailures, o.minBackoff, o.maxBackoff, o.random));
        }

        /**
         * A down request answered without an event stream. Returns a reason
         * to retry (a later poll, through a proxy, or after 409
         * stale-request, which is meant for an older request than our
         * newest), or null after reporting the end of this connection.
         */
        async _refused(res, first) {
            const error = res.headers.get('WebSession-Error');
            const what = 'HTTP ' + res.status + (error ? ' ' + error : '');
            if (!error) {
                if (res.body) {
                    res.body.cancel().catch(() => {});
                }
                if (!first) {
                    return what;           // a proxy in the way, not the script
                }
                const type = res.headers.get('Content-Type');
                this._finish(1006, what + (type ? ' (' + type + ')' : '')
                             + ': not a WebSession script', true);
                return null;
            }
            if (error === 'stale-request') {
                // For a request the server has seen overtaken by a newer
                // one of ours: it ends nothing. Polls go on with the count.
                if (res.body) {
                    res.body.cancel().catch(() => {});
                }
                return what;
            }
            const text = await reasonText(res);
            if (res.status === 410 || error === 'session-unknown') {
                this._finish(4410, text || 'session unknown or expired');
            } else {
                this._finish(1006, what + (text ? ': ' + text : ''));
            }
            return null;
        }

        _onEvent(type, data) {
            if (!this._live) {
                return;
            }
            let msg = data;
            try {
                if (type === 'text64') {
                    msg = new TextDecoder('utf-8', { fatal: true }).decode(base64Bytes(data));
                } else if (type === 'binary') {
                    msg = base64Bytes(data);
                } else if (type === 'close') {
                    const m = CLOSE_DATA.exec(data);
                    if (!m) {
                        this._broken('bad close event ' + JSON.stringify(data.slice(0, 40)));
                        return;
                    }
                    this._finish(Number(m[1]), m[2] || '');
                    return;
                } else if (type !== '' && type !== 'message') {
                    this._broken('unknown event ' + JSON.stringify(type.slice(0, 40)));
                    return;
                }
            } catch (e) {
                this._broken('bad ' + type + ' event');
                return;
            }
            this._onMessage(msg);
        }

        _onMessage(msg) {
            if (typeof msg !== 'string') {
                this._rx++;
            } else {
                switch (msg.charAt(0)) {
                case 'D':
                    this._rx++;
                    break;
                case 'I':
                    this._setId(msg.slice(1));
                    break;
                case 'A':
                    this._covered(parseCount(msg.slice(1)));
                    break;
                case 'R': {
                    const m = R_MESSAGE.exec(msg);
                    if (!m) {
                        break;             // the session refuses it
                    }
                    const n = Number(m[1]);
                    this._pollR = true;
                    this._pollFailures = 0;    // this poll reached the server
                    if (this._gotR) {
                        // A poll's fresh R acknowledges. It is the count when
                        // the poll came, so it may be below an A a POST's
                        // answer brought since: counts are cumulative, and
                        // _covered and the session ignore a lower one.
                        msg = 'A' + m[1];
                        this._covered(n);
                        break;
                    }
                    this._gotR = true;
                    this._firstSeq = n + 1;
                    if (m[2] !== undefined) {
                        this._budget = Math.max(1, Number(m[2]));
                    }
                    break;
                }
                default:
                    break;
                }
            }
            this._events.message(msg);
            this._pump();
        }

        // ---- up: POSTs of framed records ----

        /** The server has n of our data messages: forget those. */
        _covered(n) {
            if (this._firstSeq === null || !(n >= this._firstSeq)) {
                return;
            }
            const k = Math.min(n - this._firstSeq + 1, this._pending.length);
            this._pending.splice(0, k);
            this._firstSeq += k;
        }

        /** Starts a POST if one is due and none is under way: in a
         *  microtask, so that what the session sends in one go (its resend
         *  after an R, a burst of send() calls) shares one POST. */
        _pump() {
            if (this._pumpQueued) {
                return;
            }
            this._pumpQueued = true;
            queueMicrotask(() => {
                this._pumpQueued = false;
                if (!this._live || this._posting || !this._id) {
                    return;
                }
                const data = this._firstSeq !== null && !this._holding && this._pending.length > 0;
                if (data || this._ack !== null || this._closeRecord !== null) {
                    this._post(data);
                }
            });
        }

        async _post(withData) {
            const parts = [];
            const ack = this._ack;
            this._ack = null;
            if (ack !== null) {
                parts.push(framedRecord(ack));
            }
            const first = this._firstSeq === null ? 1 : this._firstSeq;
            let count = 0;
            let size = 0;
            if (withData) {
                while (count < this._pending.length && (count === 0 || size < this._budget)) {
                    size += this._pending[count].length;
                    parts.push(this._pending[count++]);
                }
            }
            // C goes out behind every D the session gave us, never before.
            const close = this._closeRecord !== null && count === this._pending.length
                ? this._closeRecord : null;
            if (close !== null) {
                parts.push(framedRecord(close));
            }
            if (!parts.length) {
                return;                    // only a close, waiting behind held data
            }
            this._posting = true;
            const ac = new AbortController();
            let res = null;
            let text = '';
            try {
                res = await this._request(ac, {
                    method: 'POST',
                    headers: this._headers({ 'WebSession-Sequence': String(first),
                                             'Content-Type': 'application/octet-stream' }),
                    body: concatBytes(parts),
                });
                text = res ? await reasonText(res) : '';
            } catch (e) {
                text = 'request failed: ' + ((e && e.message) || e);
            } finally {
                this._requests.delete(ac);
            }
            if (!this._live) {
                return;
            }
            const n = res && res.status === 200 && /^A[0-9]+$/.test(text) ? parseCount(text.slice(1)) : NaN;
            if (!Number.isNaN(n)) {
                this._posted(n, first, count, close);
            } else if (res && res.status === 200) {
                this._broken('bad answer to a POST: ' + JSON.stringify(text.slice(0, 40)));
            } else if (res && res.status === 410) {
                this._finish(4410, text || 'session unknown or expired');
            } else if (res && res.status < 500) {
                const error = res.headers.get('WebSession-Error');
                this._finish(1002, 'websession.v1: ' + (text || 'HTTP ' + res.status
                                                        + (error ? ' ' + error : '')));
            } else {
                this._postFailed(res ? 'HTTP ' + res.status + (text ? ': ' + text : '') : text, ack);
            }
        }

        /** A POST was answered A<n>; it carried count D's from first on. */
        _posted(n, first, count, close) {
            this._postFailures = 0;
            this._failedFor = 0;
            this._covered(n);
            // A server whose buffer is full stops at the first D it cannot
            // take and reads no record after it: then C was not seen either.
            if (close !== null && n >= first + count - 1) {
                this._closeRecord = null;
                this._closeSent = true;
                if (this._rx === null) {
                    // No down request to bring the close event: the server
                    // took the close, which ends the session (as its echo).
                    this._finish(Number(close.slice(1).split(' ')[0]), '');
                    return;
                }
            }
            if (this._firstSeq !== null && this._firstSeq < first + count) {
                // The server did not take them all (its buffer toward the
                // script is full): send the rest again after a pause, which
                // grows while it takes nothing.
                if (this._firstSeq === first || !this._holdDelay) {
                    this._holdDelay = Math.min(RESEND_MAX, this._holdDelay ? this._holdDelay * 2 : RESEND_MIN);
                }
                this._holding = true;
                this._later(() => {
                    this._holding = false;
                    this._pump();
                }, this._holdDelay);
            } else if (count) {
                this._holdDelay = 0;
            }
            this._posting = false;
            if (this._gotR) {
                this._events.message('A' + n);     // a normal acknowledgement
            }
            this._pump();
        }

        _postFailed(why, ack) {
            if (this._ack === null) {
                this._ack = ack;           // unless a newer one came meanwhile
            }
            const o = this._opts;
            const delay = backoffDelay(++this._postFailures, o.minBackoff, o.maxBackoff, o.random);
            this._failedFor += delay;
            if (this._failedFor > o.connectTimeout) {
                this._finish(1006, 'POST failed: ' + why);
                return;
            }
            this._later(() => {             // _posting stays set until the retry
                this._posting = false;
                this._pump();
            }, delay);
        }
    }

    /** The factory of the 'sse' or the 'poll' transport. */
    function httpTransport(variant) {
        return (urls, protocols, options, events) =>
            new HttpTransport(variant, urls, protocols, options, events);
    }

    const TRANSPORTS = {
        websocket: websocketTransport,
        sse: httpTransport('sse'),
        poll: httpTransport('poll'),
    };
    /** What 'auto' tries before the session first opens, in this order. */
    const AUTO_ORDER = ['websocket', 'sse', 'poll'];
    const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'event stream', poll: 'long poll' };

    // ---- the session --------------------------------------------------------

    const EVENTS = ['open', 'message', 'close', 'error', 'reconnecting', 'resumed', 'sessionlost'];

    /**
     * A session with a persistent WebSession script, used like a WebSocket.
     *
     * Events: `open` (once, when the session is established), `message`
     * (`event.data`: a string, or a Blob or ArrayBuffer per `binaryType`),
     * `close` (`code`, `reason`, `wasClean`; once, at the end of the session),
     * `error`. Optional: `reconnecting` (`detail`: the attempt number,
     * `delay`: ms until it), `resumed` (`detail`: the attempts it took),
     * `sessionlost` (`detail`: { code, reason }; the server could not resume
     * the session: 4400, 4409, 4410).
     *
     * Lost connections are invisible: readyState stays OPEN, sends are queued
     * and nothing is lost or repeated. Only a close frame (or, over HTTP, a
     * close event) ends the session. See the `transport` option and property
     * for how the messages travel.
     */
    class WebSession extends EventTarget {
        /**
         * @param {string|URL} url  http(s):// or ws(s):// URL of the script;
         *   relative URLs are resolved against the page's location.
         * @param {object} [options]
         * @param {Function} [options.WebSocket]  the WebSocket implementation
         *   (default: globalThis.WebSocket)
         * @param {object} [options.webSocketOptions]  third argument to that
         *   constructor (for Node's ws: headers, TLS options, ...)
         * @param {number} [options.minBackoff=100]  ms, shortest reconnect delay
         * @param {number} [options.maxBackoff=10000]  ms, longest reconnect delay
         * @param {number} [options.connectTimeout=10000]  ms from a connection
         *   attempt to the server's resume point before it counts as failed
         * @param {number} [options.heartbeatTimeout=90000]  ms without anything
         *   from the server after which the connection is taken as dead:
         *   about 3 x WebSessionPing (default 30 s); 0 turns it off
         * @param {string} [options.transport='auto']  'auto' tries 'websocket',
         *   then 'sse', then 'poll' until one opens the session, and keeps
         *   that one; or one of the three, alone
         * @param {number} [options.fallbackTimeout=4000]  ms, in 'auto' mode,
         *   an attempt that is not the last of the round may take before the
         *   next transport is tried (instead of connectTimeout)
         * @param {Function} [options.fetch]  for the HTTP transports and to
         *   explain a failed first connection (default: globalThis.fetch)
         * @param {string} [options.routeParam]  when the session's id carries a
         *   route (`<secret>.<route>`, WebSessionRoute), every re-attach URL
         *   gets the query parameter `<routeParam>=.<route>`: for a balancer
         *   that takes its sticky route from a URL parameter (mod_proxy_balancer
         *   `stickysession=ROUTEID|<routeParam>`). Only the route: the secret
         *   never goes into a URL. Default: none
         * @param {Function} [options.random]  a Math.random replacement (tests)
         */
        constructor(url, options) {
            super();
            this._opts = Object.assign({}, DEFAULTS);
            for (const [k, v] of Object.entries(options || {})) {
                if (v !== undefined) {
                    this._opts[k] = v;          // undefined means "the default"
                }
            }
            const o = this._opts;
            const haveWebSocket = !!o.WebSocket || typeof WebSocket === 'function';
            const haveFetch = !!o.fetch || typeof fetch === 'function';
            if (o.transport === 'auto') {
                // What this environment has (Node 20: no WebSocket).
                this._candidates = AUTO_ORDER.filter((t) => (t === 'websocket' ? haveWebSocket : haveFetch));
                if (!this._candidates.length) {
                    throw new TypeError('WebSession: neither WebSocket nor fetch (pass options.WebSocket)');
                }
            } else if (Object.prototype.hasOwnProperty.call(TRANSPORTS, o.transport)) {
                this._candidates = [o.transport];
            } else {
                throw new TypeError('WebSession: unknown transport ' + o.transport);
            }
            this._candidate = 0;      // the index of the one in use or being tried
            this._urls = resolveUrls(url);
            if (o.transport === 'websocket' && !haveWebSocket) {
                throw new TypeError('WebSession: no WebSocket implementation (pass options.WebSocket)');
            }
            this._state = CONNECTING;
            this._binaryType = typeof Blob === 'function' ? 'blob' : 'arraybuffer';
            this._handlers = Object.create(null);
            this._id = null;          // the session id, from I
            this._opened = false;     // the first R arrived
            this._conn = null;        // the current connection (see _connect)
            this._failures = 0;       // failed attempts before the first R
            this._attempt = 0;        // reconnection attempts since the last R
            this._retryTimer = null;
            this._lastRefusal = '';   // what the last failed attempt was told
            // receiving
            this._rx = 0;             // data messages received
            this._rxAcked = 0;        // the count we last told the server
            this._ackTimer = null;
            // sending
            this._outbox = [];        // { frame, size, blob } not yet numbered
            this._queuedBytes = 0;
            this._unacked = [];       // { seq, frame, size } sent, not acknowledged
            this._unackedBytes = 0;
            this._tx = 0;             // data messages numbered (sent at least once)
            this._window = Infinity;  // from the server's R
            this._closeRequest = null;
            this._origin = new URL(this._urls.ws).origin;
            this._connect(true);
        }

        /** The ws(s):// URL the session connects to. */
        get url() {
            return this._urls.ws;
        }

        /** CONNECTING (0) until the session is established, then OPEN (1)
         *  across lost connections, CLOSING (2), CLOSED (3). */
        get readyState() {
            return this._state;
        }

        /** Bytes of data sent but not yet acknowledged by the server, plus
         *  bytes queued and not yet sent. */
        get bufferedAmount() {
            return this._unackedBytes + this._queuedBytes;
        }

        /** The transport in use: 'websocket', 'sse' (Server-Sent Events and
         *  POSTs) or 'poll' (long polls and POSTs). With transport 'auto',
         *  the one being tried until the session opens, then the one that
         *  opened it, which every reconnection uses. */
        get transport() {
            return this._candidates[this._candidate];
        }

        /** 'websession.v1' once open, '' before. */
        get protocol() {
            return this._opened ? PROTOCOL : '';
        }

        /** Always '': no extension is negotiated. */
        get extensions() {
            return '';
        }

        /** How binary messages are delivered: 'blob' (default) or 'arraybuffer'. */
        get binaryType() {
            return this._binaryType;
        }

        set binaryType(v) {
            if (v === 'blob' || v === 'arraybuffer') {
                this._binaryType = v;
            }
        }

        /**
         * Queues one message for the script: a string is sent as a text
         * message, an ArrayBuffer, a typed array, a DataView or a Blob as a
         * binary message, in the order of the calls. Never throws for lack of
         * a connection or of window: the message waits in bufferedAmount.
         * Messages sent before `open` go out once the session is established.
         * After close() they are discarded, as with a WebSocket.
         * @param {string|ArrayBuffer|ArrayBufferView|Blob} data
         */
        send(data) {
            if (this._state >= CLOSING) {
                return;
            }
            const item = this._outboxItem(data);
            this._outbox.push(item);
            this._queuedBytes += item.size;
            this._pump();
        }

        /**
         * Ends the session: sends a close frame (the script gets EOF on its
         * stdin), then fires `close` with the server's answer.
         * @param {number} [code=1000]  1000 or 3000-4999
         * @param {string} [reason='']  at most 123 bytes of UTF-8
         */
        close(code, reason) {
            code = code === undefined ? 1000 : Number(code);
            reason = reason === undefined ? '' : String(reason);
            if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
                throw domError('WebSession: close code must be 1000 or 3000-4999', 'InvalidAccessError');
            }
            if (utf8Length(reason) > 123) {
                throw domError('WebSession: close reason longer than 123 bytes', 'SyntaxError');
            }
            if (this._state >= CLOSING) {
                return;
            }
            this._state = CLOSING;
            this._closeRequest = { code, reason };
            this._clearTimer('_retryTimer');
            this._clearTimer('_ackTimer');
            const conn = this._conn;
            if (conn && conn.transportOpen) {
                this._sendClose(conn);
            } else if (!this._id) {
                this._finish(code, reason, false);    // no session to end yet
            } else if (!conn) {
                this._connect();          // a connection only to say goodbye
            }
            // else: the resume under way says goodbye once it is open
        }

        // ---- connections ----------------------------------------------------

        /** Starts a connection attempt with the current transport; the first
         *  one throws what the WebSocket constructor throws (a bad URL, a
         *  blocked port). */
        _connect(first) {
            const protocols = this._id ? [PROTOCOL, ID_PREFIX + this._id] : [PROTOCOL];
            const conn = { transport: null, transportOpen: false, resumed: false,
                           connectTimer: null, heartbeatTimer: null, closeTimer: null };
            this._conn = conn;
            // In a round of several, an attempt that stalls gives way sooner.
            const timeout = this._candidate < this._candidates.length - 1
                ? this._opts.fallbackTimeout : this._opts.connectTimeout;
            conn.connectTimer = setTimeout(() => this._onTimeout(conn), timeout);
            const events = {
                open: () => this._onTransportOpen(conn),
                message: (data) => this._onTransportMessage(conn, data),
                close: (code, reason, fatal) => this._onTransportClose(conn, code, reason, fatal),
            };
            try {
                const urls = routedUrls(this._urls, this._opts.routeParam, this._id);
                conn.transport = TRANSPORTS[this.transport](urls, protocols, this._opts, events);
            } catch (e) {
                if (first) {
                    this._dropConn(conn);
                    throw e;
                }
                this._onTransportClose(conn, 1006, String(e && e.message));
            }
        }

        _dropConn(conn, abort) {
            clearTimeout(conn.connectTimer);
            clearTimeout(conn.heartbeatTimer);
            clearTimeout(conn.closeTimer);
            if (abort && conn.transport) {
                conn.transport.abort();
            }
            if (this._conn === conn) {
                this._conn = null;
                this._clearTimer('_ackTimer');
            }
        }

        _onTransportOpen(conn) {
            if (conn !== this._conn) {
                return;
            }
            conn.transportOpen = true;
            if (this._state === CLOSING) {
                this._sendClose(conn);
                return;
            }
            const p = conn.transport.protocol;
            if (typeof p === 'string' && p !== PROTOCOL) {
                this._protocolError('the server did not select ' + PROTOCOL
                                    + (p ? ' (it chose ' + p + ')' : ''));
                return;
            }
            conn.transport.send('R' + this._rx);
            this._rxAcked = this._rx;
        }

        _onTimeout(conn) {
            if (conn !== this._conn) {
                return;
            }
            this._dropConn(conn, true);
            if (this._state === CLOSING) {
                const c = this._closeRequest;
                this._finish(c.code, c.reason, false);
            } else {
                this._onLost();
            }
        }

        _armHeartbeat(conn) {
            clearTimeout(conn.heartbeatTimer);
            const ms = this._opts.heartbeatTimeout;
            if (!(ms > 0 && ms < Infinity)) {
                return;                       // 0: off (for WebSessionPing 0)
            }
            conn.heartbeatTimer = setTimeout(() => this._onTimeout(conn), this._opts.heartbeatTimeout);
        }

        _onTransportClose(conn, code, reason, fatal) {
            if (conn !== this._conn) {
                return;
            }
            this._dropConn(conn);
            if (this._state === CLOSING) {
                const c = this._closeRequest;
                const clean = !LOST_CODES.has(code);
                this._finish(clean ? code : c.code, clean ? reason : c.reason, clean);
            } else if (fatal && !this._opened) {
                this._giveUp();         // the target answered: not a WebSession script
            } else if (code === undefined || code === null || LOST_CODES.has(code)) {
                if (reason && !this._opened) {
                    this._lastRefusal = reason;
                }
                this._onLost();
            } else {
                this._onServerClose(code, reason);
            }
        }

        /** The server's close frame: the session is over (PROTOCOL.md). */
        _onServerClose(code, reason) {
            if (FATAL_CODES.has(code)) {
                this._finish(code, reason, true, { lost: true, error: true });
            } else {
                this._finish(code, reason, true);
            }
        }

        /** A connection ended without a close frame, or timed out. */
        _onLost() {
            if (this._state >= CLOSING) {
                return;
            }
            if (!this._opened) {
                if (this._candidate < this._candidates.length - 1) {
                    this._candidate++;        // auto: the next transport, at once
                    this._connect();
                    return;
                }
                this._candidate = 0;          // a new round after the delay
                this._failures++;
                if (this._failures > PRE_OPEN_RETRIES) {
                    this._giveUp();
                    return;
                }
                this._scheduleRetry(this._failures, false);
                return;
            }
            this._attempt++;
            this._scheduleRetry(this._attempt, true);
        }

        _scheduleRetry(attempt, announce) {
            const o = this._opts;
            const delay = backoffDelay(attempt, o.minBackoff, o.maxBackoff, o.random);
            this._retryTimer = setTimeout(() => {
                this._retryTimer = null;
                if (this._state < CLOSING) {
                    this._connect();
                }
            }, delay);
            if (announce) {
                this._emit('reconnecting', { detail: attempt, attempt, delay });
            }
        }

        _sendClose(conn) {
            const c = this._closeRequest;
            clearTimeout(conn.connectTimer);
            clearTimeout(conn.heartbeatTimer);
            conn.closeTimer = setTimeout(() => this._onTimeout(conn), this._opts.connectTimeout);
            conn.transport.close(c.code, c.reason);
        }

        // ---- the first connection failed: explain why -----------------------

        _giveUp() {
            this._explainFailure().then((reason) => {
                if (this._state === CONNECTING) {
                    this._finish(1006, reason, false, { error: true });
                }
            });
        }

        /** Why the upgrade did not happen, as far as a plain request tells. */
        async _explainFailure() {
            const f = this._opts.fetch || (typeof fetch === 'function' ? fetch : null);
            if (!f) {
                return NOT_PERSISTENT;
            }
            const url = this._urls.http;
            let timer = null;
            try {
                const ac = typeof AbortController === 'function' ? new AbortController() : null;
                const init = { method: 'HEAD', cache: 'no-store', credentials: 'same-origin' };
                if (ac) {
                    init.signal = ac.signal;
                    timer = setTimeout(() => ac.abort(), this._opts.connectTimeout);
                }
                const res = await f(url, init);
                if (res.status === 426) {
                    return 'the server refused the upgrade: ' + url + ' is a persistent WebSession'
                        + ' script (HTTP 426 to a plain request), but it did not accept this'
                        + ' WebSocket handshake (origin, session limit or script failure: see'
                        + " the server's error log)"
                        + (this._lastRefusal ? '; its last answer: ' + this._lastRefusal : '');
                }
                if (!res.status) {
                    return NOT_PERSISTENT;
                }
                return 'target is not a persistent WebSession script: ' + url + ' answers HTTP '
                    + res.status + (res.statusText ? ' ' + res.statusText : '')
                    + (res.redirected ? ' after a redirect' : '')
                    + ' to a plain request (the server did not upgrade)';
            } catch (e) {
                const names = this._candidates.map((t) => TRANSPORT_NAMES[t]);
                const tried = names.length > 1
                    ? names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1] + ' connections'
                    : names[0] + ' connection';
                return 'the ' + tried + ' failed, and a plain HTTP request to ' + url
                    + ' failed too (the server is unreachable, or refuses cross-origin requests)';
            } finally {
                clearTimeout(timer);
            }
        }

        // ---- messages from the server ---------------------------------------

        _onTransportMessage(conn, data) {
            if (conn !== this._conn) {
                return;
            }
            if (this._state === CLOSING && typeof data === 'string' && data.charAt(0) !== 'D') {
                return;           // our close frame is out: only data still counts
            }
            if (conn.resumed) {
                this._armHeartbeat(conn);
            }
            if (typeof data !== 'string') {
                if (!(data instanceof Uint8Array) || data.length === 0 || data[0] !== BYTE_D) {
                    this._protocolError('binary frames carry data only');
                    return;
                }
                this._onData(data);
                return;
            }
            const type = data.charAt(0);
            const body = data.slice(1);
            switch (type) {
            case 'D': this._onData(body); break;
            case 'R': this._onResume(conn, body); break;
            case 'A': this._onAck(body); break;
            case 'P': this._onPing(body); break;
            case 'I': this._onId(body); break;
            default: this._protocolError('unknown message type ' + JSON.stringify(type));
            }
        }

        _onData(payload) {
            this._rx++;
            if (this._rx - this._rxAcked >= ACK_EVERY) {
                this._sendAck();
            } else if (!this._ackTimer) {
                this._ackTimer = setTimeout(() => this._sendAck(), ACK_DELAY);
            }
            let data = payload;
            if (typeof payload !== 'string') {
                const bytes = payload.subarray(1);
                data = this._binaryType === 'blob' && typeof Blob === 'function'
                    ? new Blob([bytes])
                    : bytes.slice().buffer;
            }
            this._emit('message', { data, origin: this._origin }, 'message');
        }

        _sendAck() {
            this._clearTimer('_ackTimer');
            const conn = this._conn;
            if (conn && conn.transportOpen && this._state <= OPEN && this._rx !== this._rxAcked) {
                this._rxAcked = this._rx;
                conn.transport.send('A' + this._rx);
            }
        }

        _onPing(body) {
            if (body !== '') {
                this._protocolError('bad heartbeat');
                return;
            }
            this._clearTimer('_ackTimer');
            this._rxAcked = this._rx;
            this._conn.transport.send('A' + this._rx);
        }

        _onId(body) {
            if (!ID_RE.test(body)) {
                this._protocolError('bad session id');
                return;
            }
            this._id = body;
        }

        _onAck(body) {
            const n = parseCount(body);
            if (Number.isNaN(n) || n > this._tx) {
                this._protocolError('bad acknowledgement A' + body);
                return;
            }
            this._dropAcked(n);
            this._pump();
        }

        _onResume(conn, body) {
            const m = /^([0-9]+)(?: ([0-9]+))?$/.exec(body);
            const n = m ? parseCount(m[1]) : NaN;
            const w = m && m[2] !== undefined ? parseCount(m[2]) : undefined;
            const firstKept = this._unacked.length ? this._unacked[0].seq : this._tx + 1;
            if (Number.isNaN(n) || Number.isNaN(w) || conn.resumed) {
                this._protocolError('bad resume point R' + body);
                return;
            }
            if (n > this._tx || n < firstKept - 1) {
                this._protocolError('cannot resume from R' + n + ': ' + this._tx
                                    + ' sent, ' + (firstKept - 1) + ' acknowledged');
                return;
            }
            if (!this._id) {
                this._protocolError('resume point without a session id');
                return;
            }
            if (w !== undefined) {
                this._window = w;
            }
            clearTimeout(conn.connectTimer);
            conn.resumed = true;
            this._armHeartbeat(conn);
            this._dropAcked(n);
            for (const m of this._unacked) {
                conn.transport.send(m.frame);        // the tail the server lacks
            }
            const first = !this._opened;
            const attempts = this._attempt;
            if (first) {
                this._candidates = [this.transport];    // reconnections use it
                this._candidate = 0;
            }
            this._opened = true;
            this._state = OPEN;
            this._attempt = 0;
            this._pump();
            if (first) {
                this._emit('open', {});
            } else {
                this._emit('resumed', { detail: attempts });
            }
        }

        _dropAcked(n) {
            let k = 0;
            while (k < this._unacked.length && this._unacked[k].seq <= n) {
                this._unackedBytes -= this._unacked[k++].size;
            }
            if (k) {
                this._unacked.splice(0, k);   // once per ack, not per message
            }
        }

        // ---- messages to the server -----------------------------------------

        _outboxItem(data) {
            if (typeof data === 'string') {
                return { frame: 'D' + data, size: utf8Length(data), blob: null };
            }
            const bytes = bytesOf(data);
            if (bytes) {
                return { frame: binaryFrame(bytes), size: bytes.length, blob: null };
            }
            if (isBlob(data)) {
                const item = { frame: null, size: data.size, blob: data };
                this._readBlob(item);
                return item;
            }
            return this._outboxItem(String(data));
        }

        _readBlob(item) {
            item.blob.arrayBuffer().then((buf) => {
                item.frame = binaryFrame(new Uint8Array(buf));
                item.blob = null;
                this._pump();
            }, (err) => {
                item.failed = true;
                item.blob = null;
                this._pump();
                this._emit('error', { message: 'WebSession: cannot read a Blob to send: ' + err });
            });
        }

        /** Sends queued messages while the session is resumed and the window
         *  has room, in the order of the send() calls. */
        _pump() {
            const conn = this._conn;
            if (!conn || !conn.resumed || this._state !== OPEN) {
                return;
            }
            const outbox = this._outbox;
            let k = 0;
            while (k < outbox.length && this._unackedBytes < this._window && !outbox[k].blob) {
                const item = outbox[k++];     // (a Blob still being read waits)
                this._queuedBytes -= item.size;
                if (!item.failed) {
                    const entry = { seq: ++this._tx, frame: item.frame, size: item.size };
                    this._unacked.push(entry);
                    this._unackedBytes += entry.size;
                    conn.transport.send(entry.frame);
                }
            }
            if (k) {
                outbox.splice(0, k);
            }
        }

        // ---- the end --------------------------------------------------------

        /** Something from the server broke websession.v1: end the session. */
        _protocolError(why) {
            const reason = 'websession.v1: ' + why;
            const conn = this._conn;
            if (conn) {
                this._dropConn(conn);
                if (conn.transportOpen) {
                    conn.transport.close(1000, reason.slice(0, 120));
                } else {
                    conn.transport.abort();
                }
            }
            this._finish(1002, reason, false, { error: true });
        }

        _finish(code, reason, wasClean, how) {
            if (this._state === CLOSED) {
                return;
            }
            if (this._conn) {
                this._dropConn(this._conn, true);
            }
            this._clearTimer('_retryTimer');
            this._clearTimer('_ackTimer');
            this._state = CLOSED;
            if (how && how.lost) {
                this._emit('sessionlost', { detail: { code, reason } });
            }
            if (how && how.error) {
                this._emit('error', { message: reason });
            }
            this._emit('close', { code, reason, wasClean }, 'close');
        }

        _clearTimer(name) {
            if (this[name]) {
                clearTimeout(this[name]);
                this[name] = null;
            }
        }

        _emit(type, props, kind) {
            this.dispatchEvent(makeEvent(type, props, kind));
        }
    }

    // on<event> properties, registered as listeners at their first
    // assignment, like the browser's event handler attributes.
    for (const type of EVENTS) {
        Object.defineProperty(WebSession.prototype, 'on' + type, {
            configurable: true,
            enumerable: true,
            get() {
                return this._handlers[type] || null;
            },
            set(fn) {
                if (!(type in this._handlers)) {
                    this.addEventListener(type, (e) => {
                        const h = this._handlers[type];
                        if (typeof h === 'function') {
                            h.call(this, e);
                        }
                    });
                }
                this._handlers[type] = typeof fn === 'function' ? fn : null;
            },
        });
    }

    for (const [name, value] of [['CONNECTING', CONNECTING], ['OPEN', OPEN],
                                 ['CLOSING', CLOSING], ['CLOSED', CLOSED]]) {
        Object.defineProperty(WebSession, name, { value, enumerable: true });
        Object.defineProperty(WebSession.prototype, name, { value, enumerable: true });
    }

    /** Internal pieces, for tests. */
    WebSession._internal = { backoffDelay, utf8Length, resolveUrls, sseParser, TRANSPORTS };

    return WebSession;
});
