# A session whose program cannot be executed: the client gets 500 with
# WebSession-Error: script-failed, the error log says why (WS00004 from the
# worker, WS02043 from the keeper), and no slot is left behind: the next
# session on the server still starts.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use FindBin;
use lib "$FindBin::Bin/lib";
use WSClient;

plan tests => 8, need_module('websession');

my $port = Apache::Test::vars('port');
my $log  = WSClient::log_offset();
my $ws   = WSClient->connect('/broken', [], $port);
is $ws->status, 500, 'upgrade to /broken (program missing): 500';
is $ws->header('WebSession-Error'), 'script-failed', '... WebSession-Error: script-failed';
ok WSClient::wait_log(qr/WS02043: .*cannot execute \/nonexistent\/websession-program: No such file/, 10, $log),
    '... the keeper logs that it cannot execute the program, and why';
ok WSClient::wait_log(qr/WS00004: .*not started/, 10, $log), '... the worker logs the refusal';

# The same with a resource limit (RLimitCPU), where the keeper starts the
# script with fork and exec instead of posix_spawn: the exec failure still
# comes back at once.
$log = WSClient::log_offset();
$ws  = WSClient->connect('/broken-limited', [], $port);
is $ws->status, 500, 'upgrade to /broken-limited (program missing, RLimitCPU 5): 500';
is $ws->header('WebSession-Error'), 'script-failed', '... WebSession-Error: script-failed';
ok WSClient::wait_log(qr/WS02043: .*cannot execute \/nonexistent\/websession-program: No such file/, 10, $log),
    '... the keeper logs that it cannot execute the program, and why';

my $ok = WSClient->connect('/ws/echo', [], $port);
is $ok->status, 101, 'a session elsewhere still starts';
$ok->close_clean if $ok->status == 101;
