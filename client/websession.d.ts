// websession.d.ts -- hand-written TypeScript declarations for websession.js,
// the browser client of mod_websession (client/README.md is the manual).
//
// This file describes websession.js as CommonJS sees it (require(): the
// class itself, also as .WebSession and .default); websession.d.mts
// describes the ES module (websession.mjs: a named and a default export).
// Both need the DOM library (EventTarget, Event, Blob, fetch's types).
//
// Keep it in step with websession.js: client/types-test/ checks a typed
// example against it with tsc, and compares its members and events with
// the library's at run time (client/types-test/members.test.mjs).

/**
 * A session with a persistent WebSession script, used like a WebSocket. The
 * session survives lost connections: the library reconnects by itself,
 * resumes the session and resends what was in flight, so every message
 * arrives once and in order, both ways.
 *
 * Events, in this order: `open` (once), `message`s, `close` (once);
 * `reconnecting` and `resumed` may come between any number of times;
 * `sessionlost` and `error` come just before a `close` that ends a failed
 * session (`error` also when a Blob to send cannot be read).
 */
declare class WebSession extends EventTarget {
    /**
     * Opens a session. Throws a `SyntaxError` DOMException for a URL that
     * does not parse or is not http(s) or ws(s), and a `TypeError` for an
     * unknown `transport` or when the environment has neither the WebSocket
     * nor the fetch the transports need (pass `options.WebSocket` or
     * `options.fetch`).
     *
     * @param url `http(s)://` or `ws(s)://` URL of the script; relative URLs
     *   are resolved against the page's location. The session's id never
     *   appears in it.
     */
    constructor(url: string | URL, options?: WebSession.Options);

    /** The `ws(s)://` URL the session connects to. */
    readonly url: string;
    /**
     * `CONNECTING` (0) until the session is established, then `OPEN` (1),
     * also across lost connections, `CLOSING` (2) after `close()`, `CLOSED`
     * (3) after the `close` event.
     */
    readonly readyState: WebSession.ReadyState;
    /** Bytes sent but not yet acknowledged by the server, plus bytes queued
     *  and not sent yet. */
    readonly bufferedAmount: number;
    /** `"websession.v1"` once the session is open, `""` before. */
    readonly protocol: '' | 'websession.v1';
    /** Always `""`: no extension is negotiated. */
    readonly extensions: '';
    /**
     * The transport in use; while the first connection is being made in
     * `auto` mode, the one being tried.
     */
    readonly transport: WebSession.TransportName;
    /**
     * What binary messages are delivered as: `"blob"` (the default where
     * `Blob` exists, else `"arraybuffer"`) or `"arraybuffer"`. Assigning
     * any other value leaves it unchanged.
     */
    binaryType: WebSession.BinaryType;

    /**
     * Queues one message for the script: a string as a text message; an
     * ArrayBuffer, a typed array, a DataView or a Blob as a binary message.
     * Messages keep the order of the calls (a Blob is read first; later
     * messages wait for it). Never throws: before `open`, while
     * reconnecting or while the server's window is full, messages wait in
     * `bufferedAmount`. After `close()` they are discarded.
     */
    send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;

    /**
     * Ends the session: a close frame, the script gets EOF on its stdin; the
     * `close` event follows with the server's answer. If no connection is
     * up, a short one is made only to say goodbye. Does nothing once
     * closing or closed.
     *
     * Throws an `InvalidAccessError` DOMException for a code that is not
     * 1000 or 3000-4999, a `SyntaxError` one for a reason longer than 123
     * bytes of UTF-8.
     *
     * @param code 1000 (the default) or 3000-4999
     * @param reason at most 123 bytes of UTF-8 (default `""`)
     */
    close(code?: number, reason?: string): void;

    /** `open`: the session is established (the server's first resume point). */
    onopen: ((this: WebSession, ev: Event) => any) | null;
    /** `message`: one message from the script. */
    onmessage: ((this: WebSession, ev: WebSession.MessageEvent) => any) | null;
    /** `close`: the end of the session. */
    onclose: ((this: WebSession, ev: WebSession.CloseEvent) => any) | null;
    /** `error`: before `close` when the session failed, or a Blob to send
     *  could not be read. */
    onerror: ((this: WebSession, ev: WebSession.ErrorEvent) => any) | null;
    /** `reconnecting`: a connection was lost; another attempt follows. */
    onreconnecting: ((this: WebSession, ev: WebSession.ReconnectingEvent) => any) | null;
    /** `resumed`: the session continues on a new connection. */
    onresumed: ((this: WebSession, ev: WebSession.ResumedEvent) => any) | null;
    /** `sessionlost`: the server could not resume the session; `error` and
     *  `close` follow. */
    onsessionlost: ((this: WebSession, ev: WebSession.SessionLostEvent) => any) | null;

    addEventListener<K extends keyof WebSession.EventMap>(
        type: K,
        listener: (this: WebSession, ev: WebSession.EventMap[K]) => any,
        options?: boolean | AddEventListenerOptions): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | AddEventListenerOptions): void;
    removeEventListener<K extends keyof WebSession.EventMap>(
        type: K,
        listener: (this: WebSession, ev: WebSession.EventMap[K]) => any,
        options?: boolean | EventListenerOptions): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | EventListenerOptions): void;

    readonly CONNECTING: 0;
    readonly OPEN: 1;
    readonly CLOSING: 2;
    readonly CLOSED: 3;
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
}

declare namespace WebSession {
    // require('websession-client').WebSession and .default are the class too
    // (CommonJS only: the classic script in a page sets neither).
    export { WebSession, WebSession as default };

    /** `readyState`: CONNECTING, OPEN, CLOSING, CLOSED. */
    export type ReadyState = 0 | 1 | 2 | 3;

    /** How a session's messages travel (client/README.md, "Transports"). */
    export type TransportName = 'websocket' | 'sse' | 'poll';

    export type BinaryType = 'blob' | 'arraybuffer';

    /**
     * Options of the constructor. An option that is `undefined` takes its
     * default.
     */
    export interface Options {
        /** ms, the shortest delay before a reconnection attempt (default 100). */
        minBackoff?: number | undefined;
        /** ms, the longest delay before a reconnection attempt (default 10000). */
        maxBackoff?: number | undefined;
        /** ms an attempt may take until the server's resume point (default 10000). */
        connectTimeout?: number | undefined;
        /**
         * ms, in `auto` mode, that an attempt with a transport that is not
         * the last of the round may take before the next one is tried
         * (default 4000).
         */
        fallbackTimeout?: number | undefined;
        /**
         * ms without anything from the server before the connection counts
         * as dead (default 90000, about 3 x WebSessionPing); 0 turns it off.
         */
        heartbeatTimeout?: number | undefined;
        /**
         * `"auto"` (the default) tries `websocket`, then `sse`, then `poll`
         * (skipping those the environment lacks) until one opens the
         * session, and keeps that one; or one transport alone.
         */
        transport?: 'auto' | TransportName | undefined;
        /** The WebSocket implementation (default `globalThis.WebSocket`),
         *  e.g. Node's `ws`. */
        WebSocket?: WebSocketConstructor | undefined;
        /** A third argument for that constructor (`ws`: headers, TLS
         *  options); left out when undefined. */
        webSocketOptions?: unknown;
        /** For the HTTP transports, and the plain request that explains a
         *  failed first connection (default `globalThis.fetch`). */
        fetch?: ((input: string, init: RequestInit) => Promise<Response>) | undefined;
        /**
         * Behind a load balancer that reads a sticky route from a URL
         * parameter: once the session's id carries a route
         * (`<secret>.<route>`, the server's WebSessionRoute), every
         * re-attach URL gets the query parameter `<routeParam>=.<route>`,
         * the route only (default: none).
         */
        routeParam?: string | null | undefined;
        /** A `Math.random` replacement for the reconnection delays (tests). */
        random?: (() => number) | undefined;
    }

    /** What the library needs of a WebSocket implementation: the browser's
     *  WebSocket and Node's `ws` are such. */
    export type WebSocketConstructor =
        new (url: string, protocols: string[], options?: any) => WebSocketLike;

    export interface WebSocketLike {
        binaryType: string;
        readonly protocol: string;
        readonly readyState: number;
        onopen: ((ev: any) => any) | null;
        onmessage: ((ev: any) => any) | null;
        onerror: ((ev: any) => any) | null;
        onclose: ((ev: any) => any) | null;
        /** A string (text) or the bytes of a binary frame. */
        send(data: string | Uint8Array<ArrayBuffer>): void;
        close(code?: number, reason?: string): void;
        /** Node's `ws`: drops the connection without a close frame. */
        terminate?(): void;
    }

    /** `message`: a `MessageEvent` where the environment has one. */
    export interface MessageEvent extends Event {
        /** A string for a text message; a Blob or an ArrayBuffer for a
         *  binary one, as `binaryType` says. */
        readonly data: string | Blob | ArrayBuffer;
        /** The origin of the session's `ws(s)://` URL. */
        readonly origin: string;
    }

    /** `close`: a `CloseEvent` where the environment has one. */
    export interface CloseEvent extends Event {
        /**
         * With `wasClean`, the server's close code: 1000 (the script exited
         * with status 0, or the answer to `close()`), 4000+N (exit status
         * N), 4300+S (killed by signal S), 1001 (the server stops), 1002 (a
         * protocol error), 4400/4409/4410 (the session cannot be resumed).
         * Without: 1006 (the session could not be established, or an HTTP
         * transport gave up), 1002 (the server broke websession.v1), or the
         * code given to `close()` when no server answered it.
         */
        readonly code: number;
        /** The server's reason, or what went wrong. */
        readonly reason: string;
        /** true when the server's close frame (or, over HTTP, its close
         *  record) ended the session. */
        readonly wasClean: boolean;
    }

    /** `error`: a plain Event with the reason. */
    export interface ErrorEvent extends Event {
        readonly message: string;
    }

    /** `reconnecting`: a CustomEvent where the environment has one. */
    export interface ReconnectingEvent extends Event {
        /** The attempt number, from 1. */
        readonly detail: number;
        /** The same as `detail`. */
        readonly attempt: number;
        /** ms until the attempt. */
        readonly delay: number;
    }

    /** `resumed`: a CustomEvent where the environment has one. */
    export interface ResumedEvent extends Event {
        /** How many attempts it took. */
        readonly detail: number;
    }

    /** `sessionlost`: a CustomEvent where the environment has one. */
    export interface SessionLostEvent extends Event {
        /** The server's close code (4400, 4409 or 4410) and reason. */
        readonly detail: { readonly code: number; readonly reason: string };
    }

    export interface EventMap {
        open: Event;
        message: MessageEvent;
        close: CloseEvent;
        error: ErrorEvent;
        reconnecting: ReconnectingEvent;
        resumed: ResumedEvent;
        sessionlost: SessionLostEvent;
    }
}

export = WebSession;
