# The browser library's Node test suite (client/test/, node:test): its
# logic on a fake WebSocket and a fake fetch, and its integration tests
# against this test server (WEBSESSION_TEST_URL) over each transport
# (node-ws as the WebSocket, Node's fetch for sse and poll): hundreds of
# messages across cut connections, a non-persistent target, a session that
# expired, auto behind proxies that strip the upgrade or buffer.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);

my $vars = Apache::Test::vars();
my $dir  = catfile($vars->{top_dir}, 'client', 'test');

plan tests => 3, need
    need_module('websession'),
    { 'node is not installed'   => system('node --version >/dev/null 2>&1') == 0,
      'node-ws is not installed' => -d '/usr/share/nodejs/ws' };

local $ENV{WEBSESSION_TEST_URL}      = "ws://127.0.0.1:$vars->{port}/ws/count";
local $ENV{WEBSESSION_TEST_SLOW}     = 1;
my $out = qx{timeout 240 node --test $dir 2>&1};
my $rc  = $? >> 8;
my ($pass) = $out =~ /^# pass (\d+)/m;
my ($fail) = $out =~ /^# fail (\d+)/m;
my ($skip) = $out =~ /^# skipped (\d+)/m;
diag $out if $rc || !defined $pass;

is $rc, 0, 'node --test client/test/ exits 0';
is $fail, 0, "... no test failed ($pass passed)";
is $skip, 0, '... none skipped: the integration tests ran against this server';
