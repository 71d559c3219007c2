# The browser library as the npm package websession-client (client/package.json).
#
# `make types`: tsc checks the hand-written declarations (websession.d.ts,
# websession.d.mts) against client/types-test/, a typed program that uses
# every part of them. `make npm-pack` makes the tarball; it holds exactly the
# library, its ES module face, the declarations and the README. A scratch
# project installs the tarball (offline: the package has no dependencies)
# and uses it the ways an application would: an ES module import (default
# and named), require(), the classic script's own path, a websession.v1
# session with this suite's server over a WebSocket and over Server-Sent
# Events; and tsc type-checks that project's code against the installed
# package, as a bundler resolves it and as Node does (ESM and CommonJS).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Cwd qw(abs_path);
use File::Temp qw(tempdir);

my $vars = Apache::Test::vars();
my $top  = abs_path($vars->{top_dir});
my $tsc  = "$top/node_modules/.bin/tsc";
my $NODE_WS = '/usr/share/nodejs/ws';

sub have { system("command -v $_[0] >/dev/null 2>&1") == 0 }

plan tests => 11, need
    need_module('websession'),
    { 'node is not installed'     => have('node'),
      'npm is not installed'      => have('npm'),
      'node-ws is not installed'  => -d $NODE_WS,
      'typescript is not installed (npm ci: tools/install-deps.sh)' => -x $tsc };

sub run {            # command... -> (exit code, output)
    my $cmd = join ' ', map { "'$_'" } @_;
    my $out = qx{$cmd 2>&1};
    return ($? >> 8, $out);
}

# ---- the declarations -----------------------------------------------------------

my ($rc, $out) = run('make', '-C', $top, '--no-print-directory', '-s', 'types');
is $rc, 0, 'make types: tsc --noEmit -p client/types-test accepts the typed example' or diag $out;

# ---- the tarball ------------------------------------------------------------------

($rc, $out) = run('make', '-C', $top, '--no-print-directory', '-s', 'npm-pack');
my ($tgz) = glob("$top/build/npm/websession-client-*.tgz");
ok $rc == 0 && $tgz, 'make npm-pack: build/npm/websession-client-<version>.tgz' or diag $out;
$tgz //= '/nonexistent';

my @files = sort split /\n/, scalar qx{tar tzf '$tgz'};
is_deeply \@files, [ map { "package/$_" } qw(README.md package.json websession.d.mts websession.d.ts
                                               websession.js websession.mjs) ],
    '... holding the library, its ES module, the declarations and the README, nothing else';

# ---- a project that installs it ---------------------------------------------------

my $app = tempdir('websession-npm.XXXXXX', TMPDIR => 1, CLEANUP => 1);
write_file("$app/package.json",
           qq({ "name": "websession-app", "private": true, "type": "module" }\n));
($rc, $out) = run('sh', '-c', "cd '$app' && npm install --offline --ignore-scripts --no-audit --no-fund '$tgz'");
ok $rc == 0 && -f "$app/node_modules/websession-client/websession.mjs",
    'npm install <tarball> --offline in a scratch project' or diag $out;

# Node: every entry point, and a session with this server over each transport.
my $url = "ws://127.0.0.1:$vars->{port}/ws/echo";
write_file("$app/main.mjs", <<'EOF');
import WebSession, { WebSession as Named } from 'websession-client';
import * as namespace from 'websession-client';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const checks = {
    defaultIsClass: typeof WebSession === 'function' && WebSession.OPEN === 1,
    namedIsDefault: Named === WebSession,
    onlyTwoExports: Object.keys(namespace).sort().join() === 'WebSession,default',
    requireGivesClass: require('websession-client') === WebSession,
    classicScriptPath: require('websession-client/websession.js') === WebSession,
    moduleSubpath: (await import('websession-client/websession.mjs')).default === WebSession,
};

function session(url, transport) {
    return new Promise((resolve) => {
        const seen = [];
        const timer = setTimeout(() => resolve('timeout: ' + seen.join('|')), 15000);
        const s = new WebSession(url, { transport, WebSocket: require(process.argv[3]) });
        s.onopen = () => { seen.push('open'); s.send('from the npm package'); };
        s.onmessage = (e) => { seen.push(e.data); s.close(); };
        s.onerror = (e) => seen.push('error ' + e.message);
        s.onclose = (e) => {
            seen.push('close ' + e.code + ' ' + e.wasClean);
            clearTimeout(timer);
            resolve(seen.join('|'));
        };
    });
}
checks.websocket = await session(process.argv[2], 'websocket');
checks.sse = await session(process.argv[2], 'sse');
console.log(JSON.stringify(checks));
EOF
($rc, $out) = run('node', "$app/main.mjs", $url, $NODE_WS);
my $got = eval { require JSON::PP; JSON::PP::decode_json((split /\n/, $out)[-1] // '') } // {};
diag $out if $rc;
is_deeply [ @$got{qw(defaultIsClass namedIsDefault onlyTwoExports)} ], [ (JSON::PP::true()) x 3 ],
    "node: import WebSession, { WebSession } from 'websession-client' (the class; no other export)";
is_deeply [ @$got{qw(requireGivesClass classicScriptPath moduleSubpath)} ], [ (JSON::PP::true()) x 3 ],
    "... require('websession-client'), 'websession-client/websession.js' and '/websession.mjs' are the same class";
is $got->{websocket}, 'open|from the npm package|close 1000 true',
    '... a websession.v1 session with /ws/echo over a WebSocket (node-ws)';
is $got->{sse}, 'open|from the npm package|close 1000 true',
    '... and over Server-Sent Events (fetch)';

# TypeScript in that project: the declarations as the package's exports give them.
write_file("$app/bundled.ts", <<'EOF');
import WebSession, { type WebSessionOptions, type WebSessionCloseEvent } from 'websession-client';
const options: WebSessionOptions = { transport: 'sse', heartbeatTimeout: 0 };
const s = new WebSession('/ws/echo', options);
s.onclose = (e: WebSessionCloseEvent) => console.log(e.code, e.wasClean);
s.addEventListener('reconnecting', (e) => console.log(e.detail, e.delay));
// @ts-expect-error: not a transport
s.transport === 'xhr';
EOF
write_file("$app/node.mts", <<'EOF');
import { WebSession, type WebSessionMessageEvent } from 'websession-client';
const s = new WebSession('ws://localhost/ws/echo', { transport: 'websocket' });
s.onmessage = (e: WebSessionMessageEvent) => { if (typeof e.data === 'string') s.send(e.data); };
// @ts-expect-error: send takes no number
s.send(1);
EOF
write_file("$app/node.cts", <<'EOF');
import WebSession = require('websession-client');
const o: WebSession.Options = { minBackoff: 50 };
const s = new WebSession.WebSession('ws://localhost/ws/echo', o);
const state: WebSession.ReadyState = s.readyState;
// @ts-expect-error: CLOSED is 3
const wrong: 4 = WebSession.CLOSED;
void [state, wrong];
EOF
my @common = ('--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom', '--types', '');
($rc, $out) = run('sh', '-c', "cd '$app' && '$tsc' @common --module esnext --moduleResolution bundler bundled.ts");
is $rc, 0, 'tsc, as a bundler resolves the package (moduleResolution bundler): the app type-checks'
    or diag $out;
($rc, $out) = run('sh', '-c', "cd '$app' && '$tsc' @common --module nodenext --moduleResolution nodenext node.mts node.cts");
is $rc, 0, '... and as Node does (nodenext), from an ES module and from CommonJS' or diag $out;

# The check can fail: a declaration that does not fit the example fails tsc.
my $broken = "$app/broken.mts";
write_file($broken, "import WebSession from 'websession-client';\n"
                  . "const s = new WebSession('/x', { transport: 'xhr' });\nvoid s;\n");
($rc, $out) = run('sh', '-c', "cd '$app' && '$tsc' @common --module nodenext --moduleResolution nodenext broken.mts");
ok $rc != 0 && $out =~ /TS2322|TS2769/, '... and rejects a program that uses an unknown transport';

sub write_file {
    my($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
}
