// websession.d.ts is written by hand: these checks compare what it declares
// with what websession.js has at run time, so that a member, an event, an
// option, a transport or a constant added to (or removed from) one of them
// and not the other fails here. (tsc checks the declarations' types against
// a typed example: client/types-test/, run by t/76_npm_package.t.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

const read = (name) => readFileSync(new URL('../' + name, import.meta.url), 'utf8');
const source = read('websession.js');
const dts = read('websession.d.ts').replace(/\/\*[^]*?\*\//g, '').replace(/\/\/.*$/gm, '');

/** The text between `open` and the first line that is `close` alone. */
function block(text, open, close) {
    const start = text.indexOf(open);
    assert.notEqual(start, -1, `websession.d.ts has no "${open}"`);
    const end = text.indexOf('\n' + close + '\n', start);
    assert.notEqual(end, -1, `"${open}" is not closed`);
    return text.slice(start + open.length, end);
}

/** Names declared at the first level of a class or interface body. */
function members(body) {
    const found = { instance: new Set(), static: new Set(), literal: new Map() };
    for (const m of body.matchAll(/^ {4}(static )?(?:readonly )?(\w+)\??\s*(?:<[^>]*>)?\s*([(:])\s*([^;\n]*)/gm)) {
        (m[1] ? found.static : found.instance).add(m[2]);
        if (m[3] === ':' && /^\d+$/.test(m[4])) {
            found.literal.set((m[1] ? 'static ' : '') + m[2], Number(m[4]));
        }
    }
    return found;
}

const cls = members(block(dts, 'declare class WebSession extends EventTarget {', '}'));
const ns = block(dts, 'declare namespace WebSession {', '}') + '\n';
const sub = (name) => members(block(ns, `    export interface ${name} {`, '    }').replace(/^ {4}/gm, ''));
const union = (name) => new Set([...new RegExp(`export type ${name} =([^;]*);`).exec(ns)[1]
                                     .matchAll(/'([^']*)'/g)].map((m) => m[1]));

/** The library as a page's classic script gets it: no module, no require. */
function classic() {
    const g = { URL, EventTarget, Event, setTimeout, clearTimeout };
    g.globalThis = g;
    vm.createContext(g);
    vm.runInContext(source, g, { filename: 'websession.js' });
    return g.WebSession;
}

const WebSession = classic();
const publicNames = (o, skip) => Object.getOwnPropertyNames(o).filter((k) => !k.startsWith('_') && !skip.includes(k));

test('websession.d.ts declares exactly the public members of WebSession.prototype', () => {
    const runtime = new Set([...publicNames(WebSession.prototype, []),
                             // declared again for their typed overloads (inherited from EventTarget)
                             'addEventListener', 'removeEventListener']);
    assert.deepEqual([...cls.instance].sort(), [...runtime].sort());
});

test('websession.d.ts declares exactly the static members of WebSession (classic script)', () => {
    assert.deepEqual([...cls.static].sort(), publicNames(WebSession, ['length', 'name', 'prototype']).sort());
});

test('the readyState constants have the declared values, on the class and its instances', () => {
    const names = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
    assert.deepEqual(names.map((k) => cls.literal.get(k)), names.map((k) => WebSession.prototype[k]));
    assert.deepEqual(names.map((k) => cls.literal.get('static ' + k)), names.map((k) => WebSession[k]));
    assert.match(ns, /export type ReadyState = 0 \| 1 \| 2 \| 3;/);
});

test('every event has an on<event> property and an EventMap entry, and no other', () => {
    const handlers = publicNames(WebSession.prototype, []).filter((k) => k.startsWith('on'))
        .map((k) => k.slice(2)).sort();
    assert.deepEqual([...sub('EventMap').instance].sort(), handlers);
});

test('the declared options are the options the constructor takes (DEFAULTS)', () => {
    const defaults = /const DEFAULTS = \{([^]*?)\n {4}\};/.exec(source);
    assert.ok(defaults, 'websession.js has const DEFAULTS = { ... }');
    const keys = [...defaults[1].matchAll(/^\s+(\w+):/gm)].map((m) => m[1]).sort();
    assert.deepEqual([...sub('Options').instance].sort(), keys);
});

test('the declared transports are the registered ones', () => {
    assert.deepEqual([...union('TransportName')].sort(), Object.keys(WebSession._internal.TRANSPORTS).sort());
});

test('require(): the class, also as .WebSession and .default, as the namespace declares', () => {
    const W = createRequire(import.meta.url)('../websession.js');
    assert.equal(W.WebSession, W);
    assert.equal(W.default, W);
    assert.match(ns, /export \{ WebSession, WebSession as default \};/);
    assert.deepEqual(publicNames(W, ['length', 'name', 'prototype', 'WebSession', 'default']).sort(),
                     [...cls.static].sort());
});

test('websession.d.mts re-exports the class as a named and a default export, like websession.mjs', async () => {
    const dmts = read('websession.d.mts');
    assert.match(dmts, /^export \{ WebSession \};$/m);
    assert.match(dmts, /^export default WebSession;$/m);
    const m = await import('../websession.mjs');
    assert.deepEqual(Object.keys(m).sort(), ['WebSession', 'default']);
});
