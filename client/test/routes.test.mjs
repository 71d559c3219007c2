// Routed session ids (<secret>.<route>, WebSessionRoute): the library keeps
// and returns them unchanged, refuses malformed ones, and with the
// routeParam option adds <routeParam>=.<route> (never the secret) to its
// re-attach URLs, for balancers that read a sticky route from the URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSession, FakeServer } from './fake.mjs';
import { ID, setup, handshake, transport, flush } from './helpers.mjs';

const ROUTED = ID + '.node-1_B';

/** A session whose server introduces itself with id, then loses the
 *  connection: returns the socket of the re-attach. */
function resumeAfterDrop(t, id, options = {}) {
    const { s, WS } = setup(t, options);
    const server = new FakeServer(WS, { id });
    handshake(server);
    WS.last().drop();
    t.mock.timers.tick(10000);
    return { s, WS, ws2: WS.last() };
}

test('routed id: resumed with the id unchanged in the protocol token; the URL untouched by default', (t) => {
    const { WS, ws2 } = resumeAfterDrop(t, ROUTED);
    assert.notEqual(ws2, WS.instances[0]);
    assert.deepEqual(ws2.protocols, ['websession.v1', 'websession.id.' + ROUTED]);
    assert.equal(ws2.url, 'ws://example.test/ws/count');
});

test('routeParam: re-attach URLs get <name>=.<route>, never the secret; the first connection none', (t) => {
    const { s, WS, ws2 } = resumeAfterDrop(t, ROUTED, { routeParam: 'ROUTEID' });
    assert.equal(WS.instances[0].url, 'ws://example.test/ws/count', 'a new session has no route yet');
    assert.equal(ws2.url, 'ws://example.test/ws/count?ROUTEID=.node-1_B');
    assert.ok(!ws2.url.includes(ID), 'no secret in the URL');
    assert.equal(s.url, 'ws://example.test/ws/count', 'the url property stays the one given');
});

test('routeParam: kept beside the URL\'s own query; an id without a route adds nothing', (t) => {
    const a = resumeAfterDrop(t, ID, { routeParam: 'ROUTEID' });
    assert.equal(a.ws2.url, 'ws://example.test/ws/count');
    t.mock.timers.reset();
    const { s, WS } = setup(t, { routeParam: 'r' });
    s.close();
    const WS2 = WS;
    const s2 = new WebSession('http://example.test/ws/count?x=1&r=old', {
        WebSocket: WS2, random: () => 0.5, transport: 'websocket', routeParam: 'r',
        fetch: async () => ({ status: 404 }),
    });
    const server = new FakeServer(WS2, { id: ROUTED });
    handshake(server);
    WS2.last().drop();
    t.mock.timers.tick(10000);
    assert.equal(WS2.last().url, 'ws://example.test/ws/count?x=1&r=.node-1_B');
    s2.close();
});

test('routed ids: malformed ones are protocol errors (route charset, length, a second dot, short secret)', (t) => {
    for (const bad of [ID + '.', ID + '.no.de', ID + '.n+1', ID + '.' + 'r'.repeat(33),
                       'short.node1', ID.slice(1) + '.node1', ID + 'X.node1']) {
        const { s, WS } = setup(t);
        let reason = null;
        s.addEventListener('close', (e) => { reason = [e.code, e.reason]; });
        const server = new FakeServer(WS, { id: bad });
        handshake(server);
        assert.equal(s.readyState, WebSession.CLOSED, bad);
        assert.deepEqual(reason, [1002, 'websession.v1: bad session id'], bad);
        t.mock.timers.reset();
    }
    const { s, WS } = setup(t);
    handshake(new FakeServer(WS, { id: ID + '.' + 'r'.repeat(32) }));
    assert.equal(s.readyState, WebSession.OPEN, 'a 32-character route is fine');
});

test('sse: a routed id from the Session-ID header is the id, sent back unchanged', async (t) => {
    const { tr, fetch, messages } = transport(t, 'sse');
    await flush();
    tr.send('R0');
    fetch.last().open({ 'Session-ID': ROUTED }).events('R0 1048576');
    await flush();
    assert.equal(messages()[0], 'I' + ROUTED);
    t.mock.timers.reset();
    const x = transport(t, 'sse', { id: ROUTED });
    await flush();
    x.tr.send('R3');
    assert.equal(x.fetch.last().headers['session-id'], ROUTED);
});
