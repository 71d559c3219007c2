// websession.js must load every way a page or a program loads it: as a
// classic <script>, as an ES module (websession.mjs, or the module's
// /websession.mjs: the library followed by an export tail), and by require().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';

const LIB = new URL('../websession.js', import.meta.url);
const source = readFileSync(LIB, 'utf8');

test('classic script: defines the global WebSession, declares nothing else', () => {
    // A browser-like global: no module, no exports, no require.
    const g = { URL, EventTarget, Event, setTimeout, clearTimeout };
    g.globalThis = g;
    g.window = g;
    vm.createContext(g);
    const before = new Set(Object.keys(g));
    vm.runInContext(source, g, { filename: 'websession.js' });
    assert.equal(typeof g.WebSession, 'function');
    assert.equal(g.WebSession.OPEN, 1);
    assert.deepEqual(Object.keys(g).filter((k) => !before.has(k)), ['WebSession']);
});

test('classic script: no export or import statement', () => {
    assert.doesNotMatch(source, /^\s*(export|import)\b/m);
});

test('ES module: websession.mjs exports WebSession (named and default)', async () => {
    const m = await import('../websession.mjs');
    assert.equal(typeof m.WebSession, 'function');
    assert.equal(m.default, m.WebSession);
});

test('ES module: the library followed by the export tail the server appends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'websession-'));
    try {
        const file = join(dir, 'websession.mjs');
        writeFileSync(file, source + '\nexport const WebSession = globalThis.WebSession;\n'
                            + 'export default WebSession;\n');
        const m = await import(file);
        assert.equal(typeof m.default, 'function');
        assert.equal(m.default.CLOSED, 3);
    } finally {
        rmSync(dir, { recursive: true });
    }
});

test('CommonJS: require() returns the class', () => {
    const W = createRequire(import.meta.url)('../websession.js');
    assert.equal(typeof W, 'function');
    assert.equal(W.WebSession, W);
});
