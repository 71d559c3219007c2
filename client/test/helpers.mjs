// Helpers shared by the unit tests of websession.js (client/test/*.test.mjs):
// a session on a fake WebSocket, and one transport on a fake fetch, both
// with mocked timers.

import { WebSession, makeFakeWebSocket, makeFakeFetch, FakeServer, recordEvents, settle } from './fake.mjs';

export const ID = 'Xk_-0123456789abcdefghijklmnopqr';   // 32 base64url characters
export const URLS = { ws: 'ws://example.test/ws/count', http: 'http://example.test/ws/count' };
const { TRANSPORTS } = WebSession._internal;

/** Lets promise jobs run: fetch answers, body reads. */
export const flush = () => settle(30);

/** A session on a fresh fake WebSocket class (the websocket transport
 *  alone), with mocked timers. */
export function setup(t, options = {}, WS = makeFakeWebSocket()) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const s = new WebSession('http://example.test/ws/count', {
        WebSocket: WS, random: () => 0.5, fetch: async () => ({ status: 404, statusText: 'Not Found' }),
        transport: 'websocket',
        ...options,
    });
    const server = new FakeServer(WS, { id: ID, window: options.window || 1 << 20 });
    return { s, WS, server, log: recordEvents(s) };
}

/** Runs the handshake of the latest socket: open, I, R. */
export function handshake(server) {
    server.attach();
    server.read();
}

/**
 * One transport on a fake fetch, with mocked timers; log records its events
 * as ['open'], ['message', data], ['close', code, reason, fatal].
 */
export function transport(t, variant, { id = null, ...options } = {}) {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const fetch = makeFakeFetch();
    const log = [];
    const events = {
        open: () => log.push(['open']),
        message: (data) => log.push(['message', data]),
        close: (...args) => log.push(['close', ...args]),
    };
    const tr = TRANSPORTS[variant](URLS, id ? ['websession.v1', 'websession.id.' + id] : ['websession.v1'], {
        fetch, minBackoff: 100, maxBackoff: 10000, connectTimeout: 10000, random: () => 0.5, ...options,
    }, events);
    const messages = () => log.filter((e) => e[0] === 'message').map((e) => e[1]);
    const closes = () => log.filter((e) => e[0] === 'close');
    return { tr, fetch, log, messages, closes };
}

/** A transport past its handshake: open, R<m> sent, the server's R<n> in. */
export async function opened(t, variant, { m = 0, n = 0, window = 1 << 20, ...rest } = {}) {
    const x = transport(t, variant, { id: ID, ...rest });
    await flush();
    x.tr.send('R' + m);
    await flush();
    x.fetch.last('GET').open().push(': websession.v1\n\n').events('R' + n + ' ' + window);
    await flush();
    return x;
}
