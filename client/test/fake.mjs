// Test doubles for websession.js: a scriptable WebSocket (the server side is
// driven by the test) and a small websession.v1 server model on top of it;
// a scriptable fetch and a model of the server's HTTP fallback side.
// Not a test file itself: the *.test.mjs files import it.

import WebSession from '../websession.mjs';

export { WebSession };

/**
 * A fake WebSocket class, browser-like: no terminate(), close() is the only
 * way to end it. Each call of makeFakeWebSocket() gives a class with its own
 * list of instances, so tests do not share state.
 */
export function makeFakeWebSocket() {
    class FakeWebSocket {
        constructor(url, protocols) {
            this.url = url;
            this.protocols = protocols;
            this.readyState = 0;
            this.protocol = '';
            this.binaryType = 'blob';
            this.sent = [];            // what the client wrote, in order
            this.closedWith = null;    // [code, reason] of the client's close()
            this.onopen = this.onmessage = this.onclose = this.onerror = null;
            FakeWebSocket.instances.push(this);
        }

        send(data) {
            if (this.readyState !== 1) {
                throw new Error('fake: send() while readyState ' + this.readyState);
            }
            // Keep a copy, as the wire would.
            this.sent.push(typeof data === 'string' ? data : Uint8Array.from(data));
        }

        close(code, reason) {
            this.closedWith = [code, reason];
            this.readyState = this.readyState === 0 ? 3 : 2;
        }

        // ---- the server's side ----

        /** The 101: selects a subprotocol and opens. */
        accept(protocol = 'websession.v1') {
            this.readyState = 1;
            this.protocol = protocol;
            if (this.onopen) this.onopen({ type: 'open' });
        }

        /** A message from the server: a string (text frame) or bytes. */
        deliver(data) {
            if (typeof data !== 'string') {
                const u8 = Uint8Array.from(data);
                data = this.binaryType === 'arraybuffer' ? u8.buffer : new Blob([u8]);
            }
            if (this.onmessage) this.onmessage({ type: 'message', data });
        }

        /** The connection breaks without a close frame (1006). */
        drop() {
            this.readyState = 3;
            if (this.onerror) this.onerror({ type: 'error' });
            if (this.onclose) this.onclose({ type: 'close', code: 1006, reason: '', wasClean: false });
        }

        /** The server's close frame (and the close handshake completing). */
        serverClose(code, reason = '') {
            this.readyState = 3;
            if (this.onclose) this.onclose({ type: 'close', code, reason, wasClean: true });
        }

        /** Text frames the client sent, as strings. */
        texts() {
            return this.sent.filter((d) => typeof d === 'string');
        }

        /** The data messages the client sent: text as string, binary as bytes
         *  after the 'D' byte. */
        data() {
            return this.sent
                .filter((d) => (typeof d === 'string' ? d[0] === 'D' : d[0] === 0x44))
                .map((d) => (typeof d === 'string' ? d.slice(1) : d.subarray(1)));
        }
    }
    FakeWebSocket.instances = [];
    FakeWebSocket.last = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    return FakeWebSocket;
}

/**
 * A websession.v1 server model over fake sockets: it counts what it received
 * (exactly once, in order), numbers what it sends, keeps the unacknowledged
 * tail and resends it after the client's R, like the real keeper.
 */
export class FakeServer {
    constructor(FakeWebSocket, { window = 1 << 20, id = 'A'.repeat(32) } = {}) {
        this.WS = FakeWebSocket;
        this.window = window;
        this.id = id;
        this.received = [];        // client data, in the order the script sees it
        this.sentLog = [];         // every server data message, seq = index + 1
        this.acked = 0;            // client's acknowledgement of our messages
        this.ws = null;
        this.consumed = 0;         // how many of ws.sent were processed
        this.awaitingR = true;
        this.introduced = false;
    }

    /** Accepts the client's latest socket: 101, I (new session), R n w. */
    attach() {
        this.ws = this.WS.last();
        this.consumed = 0;
        this.awaitingR = true;
        this.ws.accept();
        if (!this.introduced) {
            this.ws.deliver('I' + this.id);
            this.introduced = true;
        }
        this.ws.deliver('R' + this.received.length + ' ' + this.window);
    }

    /** Processes up to `max` frames the client wrote since the last call;
     *  the rest stays in flight (lost if the connection drops now). */
    read(max = Infinity) {
        const ws = this.ws;
        while (this.consumed < ws.sent.length && max-- > 0) {
            this.frame(ws.sent[this.consumed++]);
        }
    }

    frame(f) {
        if (typeof f !== 'string') {
            this.received.push(f.subarray(1));
            return;
        }
        const body = f.slice(1);
        switch (f[0]) {
        case 'D': this.received.push(body); break;
        case 'A': this.acked = Number(body); break;
        case 'R':
            this.acked = Number(body);
            this.awaitingR = false;
            for (let i = this.acked; i < this.sentLog.length; i++) {
                this.ws.deliver('D' + this.sentLog[i]);
            }
            break;
        default: throw new Error('fake server: unexpected frame ' + f);
        }
    }

    /** The script writes a text message. */
    send(text) {
        this.sentLog.push(text);
        if (this.ws && this.ws.readyState === 1 && !this.awaitingR) {
            this.ws.deliver('D' + text);
        }
    }

    ack() {
        this.ws.deliver('A' + this.received.length);
    }
}

/** Records the events of a session, in order, as short strings. */
export function recordEvents(s) {
    const log = [];
    for (const t of ['open', 'message', 'close', 'error', 'reconnecting', 'resumed', 'sessionlost']) {
        s.addEventListener(t, (e) => {
            if (t === 'message') log.push('message:' + (typeof e.data === 'string' ? e.data : '<bin>'));
            else if (t === 'close') log.push('close:' + e.code);
            else log.push(t);
        });
    }
    return log;
}

/** Lets pending promise jobs and I/O callbacks (Blob reads) run. */
export async function settle(n = 5) {
    for (let i = 0; i < n; i++) {
        await new Promise((r) => setImmediate(r));
    }
}

// ---- the HTTP fallback transports ----------------------------------------------

const enc = new TextEncoder();

/** The last lines of every complete poll answer. */
export const POLL_END = ': end\n\n';

/** A websession.v1 message as a text/event-stream event (PROTOCOL.md). */
export function sseEvent(msg) {
    if (typeof msg !== 'string') {
        return 'event: binary\ndata: ' + Buffer.from(msg).toString('base64') + '\n\n';
    }
    if (msg.includes('\r')) {
        return 'event: text64\ndata: ' + Buffer.from(msg, 'utf8').toString('base64') + '\n\n';
    }
    return msg.split('\n').map((l) => 'data: ' + l + '\n').join('') + '\n';
}

/** The records of a POST body: [['T', string] | ['B', Uint8Array], ...]. */
export function parseRecords(body) {
    const bytes = body instanceof Uint8Array ? body : enc.encode(String(body));
    const out = [];
    let at = 0;
    while (at < bytes.length) {
        const nl = bytes.indexOf(0x0a, at);
        const head = new TextDecoder().decode(bytes.subarray(at, nl));
        const m = /^([TB]) (0|[1-9][0-9]*)$/.exec(head);
        if (!m) throw new Error('fake: bad record header ' + JSON.stringify(head));
        const len = Number(m[2]);
        const payload = bytes.subarray(nl + 1, nl + 1 + len);
        if (bytes[nl + 1 + len] !== 0x0a) throw new Error('fake: record not followed by LF');
        out.push([m[1], m[1] === 'T' ? new TextDecoder('utf-8', { fatal: true }).decode(payload) : payload.slice()]);
        at = nl + 2 + len;
    }
    return out;
}

/**
 * One request made with the fake fetch; the test (or FakeHttpServer)
 * answers it. An abort through the request's signal rejects the answer, or
 * breaks the body stream once answered, with an AbortError, as fetch does.
 */
class FakeRequest {
    constructor(url, init) {
        this.url = url;
        this.init = init;
        this.method = init.method || 'GET';
        this.headers = {};
        for (const [k, v] of Object.entries(init.headers || {})) this.headers[k.toLowerCase()] = String(v);
        this.body = init.body;
        this.answered = false;
        this.ended = false;
        this.aborted = false;
        this.stream = null;        // the body's controller, when streaming
        this.promise = new Promise((resolve, reject) => {
            this.resolve = resolve;
            this.reject = reject;
        });
        if (init.signal) {
            init.signal.addEventListener('abort', () => this.fail(new DOMException('aborted', 'AbortError')));
        }
    }

    /** The records of a POST body. */
    records() {
        return parseRecords(this.body);
    }

    /** Answers with a complete body. */
    respond(status, headers = {}, body = '') {
        if (this.answered || this.aborted) return this;
        this.answered = true;
        this.ended = true;
        this.resolve(new Response(body, { status, headers }));
        return this;
    }

    /** Answers 200 text/event-stream and keeps the body open for push(). */
    open(headers = {}) {
        if (this.answered || this.aborted) return this;
        this.answered = true;
        const body = new ReadableStream({ start: (c) => { this.stream = c; } });
        this.resolve(new Response(body, {
            status: 200, headers: { 'Content-Type': 'text/event-stream', ...headers },
        }));
        return this;
    }

    /** Writes text or bytes to the open body. */
    push(chunk) {
        if (!this.ended && !this.aborted) this.stream.enqueue(typeof chunk === 'string' ? enc.encode(chunk) : chunk);
        return this;
    }

    /** Writes websession.v1 messages as events. */
    events(...msgs) {
        return this.push(msgs.map(sseEvent).join(''));
    }

    /** The server completes a poll's answer: the end marker, then the end
     *  of the body (PROTOCOL.md, "The end of a poll answer"). */
    endPoll() {
        return this.push(POLL_END).end();
    }

    /** The server closes the connection: the body ends. */
    end() {
        if (!this.stream) throw new Error('fake: end() before open()');
        if (!this.ended && !this.aborted) {
            this.ended = true;
            this.stream.close();
        }
        return this;
    }

    /** The request breaks (a network error, or an abort). */
    fail(err = new TypeError('fetch failed')) {
        if (this.aborted || (this.ended && this.answered)) return this;
        this.aborted = true;
        if (!this.answered) this.reject(err);
        else this.stream.error(err);
        return this;
    }

    get live() {
        return !this.aborted && !this.ended;
    }
}

/** A fetch whose requests the test answers; fetch.requests lists them all. */
export function makeFakeFetch() {
    const requests = [];
    function fetch(url, init = {}) {
        const req = new FakeRequest(url, init);
        requests.push(req);
        return req.promise;
    }
    fetch.requests = requests;
    fetch.gets = () => requests.filter((r) => r.method === 'GET');
    fetch.posts = () => requests.filter((r) => r.method === 'POST');
    fetch.last = (method) => requests.filter((r) => !method || r.method === method).at(-1);
    return fetch;
}

/**
 * The server's side of the HTTP fallback over a fake fetch, for one session:
 * counts what it received (each D once, by number), numbers what it sends,
 * resends from the client's count, takes at most `capacity` D records per
 * POST (its buffer toward the script: it then reads no further record), ends
 * polls as the module does (with the end marker), refuses a down request
 * below the acknowledged count (409 stale-request, nothing else changes) and
 * a POST with a record after its C (400 protocol-error, close 1002).
 */
export class FakeHttpServer {
    constructor(fetch, { id = 'A'.repeat(32), window = 1 << 20, capacity = Infinity } = {}) {
        this.fetch = fetch;
        this.id = id;
        this.window = window;
        this.capacity = capacity;
        this.received = [];        // client data, in the order the script sees it
        this.sentLog = [];         // every server data message, seq = index + 1
        this.acked = 0;            // the client's count of our messages
        this.started = false;
        this.closed = null;        // the close event, once the session ended
        this.down = null;          // the down request now being answered
        this.next = 0;             // the last data message written to it
        this.requestsSeen = new Set();
        this.duplicates = 0;       // D records dropped by number
        this.stale = 0;            // down requests refused as stale
        this.loseAnswer = null;    // (request) => true: the POST's answer is lost
    }

    /** Answers every request not seen yet (as a real server would, at once). */
    serve() {
        for (const r of this.fetch.requests) {
            if (this.requestsSeen.has(r) || r.aborted) continue;
            this.requestsSeen.add(r);
            if (r.method === 'GET') this.get(r);
            else this.post(r);
        }
    }

    refuse(r, status, error, text) {
        r.respond(status, { 'Content-Type': 'text/plain', 'WebSession-Error': error }, text);
    }

    get(r) {
        const m = Number(r.headers['websession-received']);
        const fresh = !r.headers['session-id'];
        if (fresh ? this.started : r.headers['session-id'] !== this.id || this.closed) {
            this.refuse(r, 410, 'session-unknown', 'session unknown or expired\n');
            return;
        }
        if (m < this.acked) {
            this.stale++;
            this.refuse(r, 409, 'stale-request', 'an older request than one already seen\n');
            return;                          // the current down request goes on
        }
        if (this.down) this.down.end();      // a newer down request evicts the old one (cut)
        this.down = r;
        this.poll = r.headers['websession-transport'] === 'poll';
        this.pollOpen = r.headers['websession-poll'] === 'open';
        r.open(fresh ? { 'Session-ID': this.id } : {});
        r.push(': websession.v1\n\n');
        if (fresh) {
            this.started = true;
            r.events('I' + this.id);
        }
        if (m > this.sentLog.length || m < this.acked) {
            r.push('event: close\ndata: 4409 websession.v1: cannot resume from that point\n\n').end();
            return;
        }
        this.acked = m;
        this.next = m;
        r.events('R' + this.received.length + ' ' + this.window);
        this.flush();
    }

    /** Writes what the current down request lacks; a poll ends after it. */
    flush() {
        const r = this.down;
        if (!r || !r.live) return;
        let wrote = false;
        while (this.next < this.sentLog.length) {
            r.events('D' + this.sentLog[this.next++]);
            wrote = true;
        }
        if (this.poll && (wrote || this.pollOpen)) {
            r.endPoll();
            this.down = null;
        }
    }

    /** The script writes a text message. */
    send(text) {
        this.sentLog.push(text);
        this.flush();
    }

    /** The session ends: the close event goes down the current request. */
    closeEvent(data, closed = data) {
        this.closed = closed;
        if (this.down && this.down.live) {
            this.down.push('event: close\ndata: ' + data + '\n\n');
            if (this.poll) this.down.endPoll();
            else this.down.end();
        }
    }

    post(r) {
        if (r.headers['session-id'] !== this.id || this.closed) {
            this.refuse(r, 410, 'session-unknown', 'session unknown or expired\n');
            return;
        }
        const records = r.records();
        let seq = Number(r.headers['websession-sequence']);
        const c = records.findIndex(([, p]) => p[0] === 'C');
        if (c >= 0 && c < records.length - 1) {
            this.refuse(r, 400, 'protocol-error', 'websession.v1: a record after C');
            this.closeEvent('1002 websession.v1: a record after C');
            return;
        }
        if (records.some(([, p]) => p[0] === 'D' || p[0] === 0x44) && seq > this.received.length + 1) {
            this.refuse(r, 409, 'sequence-gap', 'messages missing before ' + seq);
            return;
        }
        let taken = 0;
        for (const [type, p] of records) {
            if (type === 'B' || p[0] === 'D') {
                if (seq <= this.received.length) {
                    this.duplicates++;
                } else if (taken < this.capacity) {
                    this.received.push(type === 'B' ? p.subarray(1) : p.slice(1));
                    taken++;
                } else {
                    break;             // full: no record after this one is looked at
                }
                seq++;
            } else if (p[0] === 'A') {
                this.acked = Math.max(this.acked, Number(p.slice(1)));
            } else if (p[0] === 'C') {
                this.closeEvent(p.slice(1).split(' ')[0], p.slice(1));
            } else {
                throw new Error('fake server: unexpected record ' + p);
            }
        }
        if (this.loseAnswer && this.loseAnswer(r)) {
            r.fail();                  // taken, but the answer is lost on its way
        } else {
            r.respond(200, { 'Content-Type': 'text/plain' }, 'A' + this.received.length);
        }
    }
}
