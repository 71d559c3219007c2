// Test doubles for websession.js: a scriptable WebSocket (the server side is
// driven by the test) and a small websession.v1 server model on top of it.
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
