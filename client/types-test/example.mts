// A typed program that uses every part of websession.d.ts (through
// websession.mjs, the ES module). Checked with `tsc --noEmit -p
// client/types-test` (t/76_npm_package.t), never run: each line must
// compile, and each line after a @ts-expect-error must not.
import WebSession, {
    WebSession as Named,
    type WebSessionOptions,
    type WebSessionReadyState,
    type WebSessionTransportName,
    type WebSessionBinaryType,
    type WebSessionWebSocketConstructor,
    type WebSessionWebSocketLike,
    type WebSessionEventMap,
    type WebSessionMessageEvent,
    type WebSessionCloseEvent,
    type WebSessionErrorEvent,
    type WebSessionReconnectingEvent,
    type WebSessionResumedEvent,
    type WebSessionSessionLostEvent,
} from '../websession.mjs';

const Same: typeof WebSession = Named;

// ---- options --------------------------------------------------------------

/** A WebSocket implementation of one's own (as Node's ws would be). */
class FakeSocket implements WebSessionWebSocketLike {
    binaryType = 'nodebuffer';
    readonly protocol = 'websession.v1';
    readonly readyState = 0;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: string | ArrayBuffer }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    constructor(readonly url: string, readonly protocols: string[], readonly options?: { headers: Record<string, string> }) {}
    send(data: string | Uint8Array<ArrayBuffer>): void { void data; }
    close(code?: number, reason?: string): void { void code; void reason; }
    terminate(): void {}
}

const impl: WebSessionWebSocketConstructor = FakeSocket;
const browserImpl: WebSessionWebSocketConstructor = WebSocket;   // the DOM's
const transports: WebSessionTransportName[] = ['websocket', 'sse', 'poll'];

const options: WebSessionOptions = {
    minBackoff: 100,
    maxBackoff: 10000,
    connectTimeout: 10000,
    fallbackTimeout: 4000,
    heartbeatTimeout: 0,
    transport: 'auto',
    WebSocket: impl,
    webSocketOptions: { headers: { Cookie: 'a=b' } },
    fetch: (input, init) => fetch(input, init),
    routeParam: 'ROUTEID',
    random: Math.random,
};
const defaults: WebSessionOptions = {
    minBackoff: undefined, maxBackoff: undefined, connectTimeout: undefined,
    fallbackTimeout: undefined, heartbeatTimeout: undefined, transport: undefined,
    WebSocket: undefined, webSocketOptions: undefined, fetch: undefined, routeParam: undefined,
    random: undefined,
};
const noRoute: WebSessionOptions = { routeParam: null };

// ---- construction, properties ---------------------------------------------

const s = new WebSession('/ws/echo');
const t = new Same(new URL('wss://example.org/chat'), options);
const u = new Named('http://localhost/ws/count', { transport: transports[1], WebSocket: browserImpl, fetch });
const v = new WebSession('ws://localhost/ws/count', defaults);
void new WebSession('/ws/count', noRoute);
void new WebSession('https://localhost/x', {});

const url: string = s.url;
const state: WebSessionReadyState = s.readyState;
const queued: number = s.bufferedAmount;
const protocol: '' | 'websession.v1' = s.protocol;
const extensions: '' = s.extensions;
const transport: WebSessionTransportName = t.transport;
let binaryType: WebSessionBinaryType = s.binaryType;
s.binaryType = 'arraybuffer';
s.binaryType = 'blob';
binaryType = u.binaryType;
void [url, state, queued, protocol, extensions, transport, binaryType];

const connecting: 0 = WebSession.CONNECTING;
const open: 1 = WebSession.OPEN;
const closing: 2 = s.CLOSING;
const closed: 3 = s.CLOSED;
const states: WebSessionReadyState[] = [connecting, open, closing, closed, s.CONNECTING, s.OPEN,
                                        WebSession.CLOSING, WebSession.CLOSED];
if (s.readyState === WebSession.OPEN) {
    const isOpen: 1 = s.readyState;
    void isOpen;
}
void states;

// ---- sending and closing ----------------------------------------------------

s.send('text');
s.send(new ArrayBuffer(4));
s.send(new Uint8Array([1, 2, 3]));
s.send(new DataView(new ArrayBuffer(2)));
s.send(new Float64Array(2));
s.send(new Blob(['bytes']));
s.close();
t.close(1000);
u.close(4000, 'bye');
v.close(undefined, 'no code');

// ---- events: on<event> properties -------------------------------------------

s.onopen = function (e) {
    const self: WebSession = this;
    const ev: Event = e;
    void [self, ev];
};
s.onmessage = function (e) {
    const data: string | Blob | ArrayBuffer = e.data;
    const origin: string = e.origin;
    if (typeof e.data === 'string') {
        this.send(e.data.toUpperCase());
    } else if (e.data instanceof ArrayBuffer) {
        this.send(new Uint8Array(e.data));
    } else {
        this.send(e.data);
    }
    void [data, origin];
};
s.onclose = (e) => {
    const code: number = e.code;
    const reason: string = e.reason;
    const wasClean: boolean = e.wasClean;
    void [code, reason, wasClean];
};
s.onerror = (e) => {
    const message: string = e.message;
    void message;
};
s.onreconnecting = (e) => {
    const attempt: number = e.detail;
    const same: number = e.attempt;
    const delay: number = e.delay;
    void [attempt, same, delay];
};
s.onresumed = (e) => {
    const attempts: number = e.detail;
    void attempts;
};
s.onsessionlost = (e) => {
    const code: number = e.detail.code;
    const reason: string = e.detail.reason;
    void [code, reason];
};
const h: ((this: WebSession, ev: WebSessionMessageEvent) => any) | null = s.onmessage;
s.onmessage = null;
s.onopen = s.onclose = s.onerror = s.onreconnecting = s.onresumed = s.onsessionlost = null;
void h;

// ---- events: addEventListener ----------------------------------------------

function onMessage(this: WebSession, e: WebSessionMessageEvent): void {
    void [this.readyState, e.data];
}
s.addEventListener('message', onMessage);
s.removeEventListener('message', onMessage);
s.addEventListener('open', (e: Event) => void e.type, { once: true });
s.addEventListener('close', (e: WebSessionCloseEvent) => void e.wasClean, true);
s.addEventListener('error', (e: WebSessionErrorEvent) => void e.message);
s.addEventListener('reconnecting', (e: WebSessionReconnectingEvent) => void e.delay);
s.addEventListener('resumed', (e: WebSessionResumedEvent) => void e.detail);
s.addEventListener('sessionlost', (e: WebSessionSessionLostEvent) => void e.detail.code);
s.addEventListener('something-else', (e: Event) => void e.type);
s.addEventListener('open', { handleEvent: (e: Event) => void e.type });
s.removeEventListener('close', null);
const fired: boolean = s.dispatchEvent(new Event('custom'));
const target: EventTarget = s;
void [fired, target];

type Events = { [K in keyof WebSessionEventMap]: WebSessionEventMap[K] };
const names: Array<keyof Events> = ['open', 'message', 'close', 'error', 'reconnecting', 'resumed', 'sessionlost'];
void names;

// ---- what must not compile ----------------------------------------------------

// @ts-expect-error: not a transport
void new WebSession('/x', { transport: 'xhr' });
// @ts-expect-error: not an option
void new WebSession('/x', { reconnect: true });
// @ts-expect-error: a number of ms, not a string
void new WebSession('/x', { connectTimeout: '10s' });
// @ts-expect-error: the name of a query parameter
void new WebSession('/x', { routeParam: true });
// @ts-expect-error: a URL is needed
void new WebSession();
// @ts-expect-error: read-only
s.readyState = WebSession.CLOSED;
// @ts-expect-error: read-only
s.transport = 'poll';
// @ts-expect-error: read-only
s.bufferedAmount = 0;
// @ts-expect-error: read-only
s.url = 'ws://elsewhere/';
// @ts-expect-error: binary messages come as Blob or ArrayBuffer only
s.binaryType = 'nodebuffer';
// @ts-expect-error: not a message
s.send({ text: 'hi' });
// @ts-expect-error: the reason is a string
s.close(1000, 42);
// @ts-expect-error: a close event's code is not a string
s.onclose = (e) => { const notString: string = e.code; void notString; };
// @ts-expect-error: a message event has no code
s.onmessage = (e) => void e.code;
// @ts-expect-error: reconnecting's detail is the attempt number
s.addEventListener('reconnecting', (e) => void e.detail.code);
// @ts-expect-error: no such method
s.reconnect();
// @ts-expect-error: no such constant
void WebSession.RECONNECTING;
