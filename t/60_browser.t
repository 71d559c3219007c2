# websession.js in a real browser: runs t/browser/*.test.mjs (node:test),
# which drive Debian's headless Chromium with playwright-core against this
# server, through a TCP proxy that cuts connections (demo/cutproxy.mjs),
# and bulk transfers straight to it, plain and over TLS (bulk.test.mjs,
# whose figures are shown as notes). The files run one after the other,
# so that the bulk timings do not share the machine with the other tests.
# Each node test is one test here. Screenshots (the demo page: demo.png;
# a failed test's page: failed-*.png), the browser's console log
# (console.log) and node's full TAP output (node-test.tap) go to
# build/browser/ (WEBSESSION_ARTIFACTS to change).
#
# Needs /usr/bin/chromium (Debian package chromium) and node_modules/ from
# package-lock.json (npm ci): tools/install-deps.sh installs both.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile catdir);
use File::Path qw(make_path);

my $vars     = Apache::Test::vars();
my $top      = $vars->{top_dir};
my $chromium = $ENV{CHROMIUM} || '/usr/bin/chromium';
my ($node)   = grep { -x } map { catfile($_, 'node') } split /:/, $ENV{PATH} // '';
my $pw       = catfile($top, 'node_modules', 'playwright-core', 'package.json');
my @files    = sort glob catfile($top, 't', 'browser', '*.test.mjs');
my $out_dir  = $ENV{WEBSESSION_ARTIFACTS} || catdir($top, 'build', 'browser');
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');

my @need = (
    { "no $chromium (Debian package chromium; tools/install-deps.sh installs it)" => -x $chromium },
    { 'no node on PATH (Debian package nodejs)' => !!$node },
    { "no $pw (run tools/install-deps.sh: npm ci)" => -f $pw },
    { 'no t/browser/*.test.mjs' => !!@files },
);
my $can = have_module('websession') && !grep { !(values %$_)[0] } @need;

# Run the node tests first, then plan one test per node test.
my (@results, $output, $status);
if ($can) {
    make_path($out_dir);
    $ENV{WEBSESSION_TEST_PORT} = $vars->{port};
    $ENV{WEBSESSION_ARTIFACTS} = $out_dir;
    $ENV{CHROMIUM}             = $chromium;
    # without it the TLS cases of bulk.test.mjs skip (a failure under
    # WEBSESSION_REQUIRE_ALL)
    $ENV{WEBSESSION_TEST_TLS_PORT} = $tls_port if $tls_port && -s $crt;
    my @cmd = ('timeout', '300', $node, '--test', '--test-concurrency=1', '--test-reporter=tap', @files);
    $output = qx{@cmd 2>&1};
    $status = $?;
    if (open my $fh, '>', catfile($out_dir, 'node-test.tap')) {
        print $fh $output;
        close $fh;
    }
    # top-level TAP lines of node:test: "ok 1 - name" / "not ok 2 - name # SKIP why"
    for (split /\n/, $output) {
        next unless /^(not )?ok \d+ - (.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$/;
        push @results, { ok => !$1, name => $2, directive => $3 // '', why => $4 // '' };
    }
}

plan tests => (@results || 1) + 1, need need_module('websession'), @need;

for my $r (@results) {
    if ($r->{directive} eq 'SKIP') {
      SKIP: { skip "$r->{name}: $r->{why}", 1 }
        next;
    }
    if ($r->{directive} eq 'TODO') {
        our $TODO;
      TODO: {
            local $TODO = $r->{why};
            ok $r->{ok}, $r->{name};
        }
        next;
    }
    ok $r->{ok}, $r->{name};
}
fail 'node reported no test' unless @results;
# the figures of the bulk runs (t.diagnostic: "# bulk ...")
note $_ for ($output // '') =~ /^# (bulk .*)$/mg;
ok $status == 0, "node --test exited 0 (status $status); screenshots and logs in $out_dir";
diag $output if $status != 0 || !@results || ($ENV{TEST_VERBOSE} // '') eq '1';
