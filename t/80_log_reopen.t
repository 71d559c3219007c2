# After a log rotation (the file renamed, then a graceful restart, as
# logrotate does), sessions started before the restart write to the new
# error log: httpd's parent hands the reopened log to the spawner, which
# hands it to every keeper (WS01008).  Without that, a script's stderr went
# to the rotated file for the rest of its session.  A keeper that waited at
# the spawner for its next session meanwhile (pool.h) gets it too.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use FindBin;
use lib "$FindBin::Bin/lib";
use WSClient;

plan tests => 11, need_module('websession');

my $vars    = Apache::Test::vars();
my $port    = $vars->{port};
my $log     = WSClient::log_path();
my $rotated = "$log.rotated-by-test";
my $tag     = "t80-$$";

my $ws = WSClient->connect('/ws/stderr', [], $port);
is $ws->status, 101, '/ws/stderr: a session';
$ws->send_text("before-$tag");
my $m = $ws->recv_message(10);
ok WSClient::wait_log(qr/script stderr: to-stderr before-\Q$tag\E/, 10),
    '... its stderr reaches the error log';

# A session that ends before the rotation: its keeper waits for the next.
my($before, undef, $pooled) = WSClient->connect_keeper('/ws/stderr', [], $port);
$before->close_clean;
ok $pooled, sprintf "a second session, closed before the rotation (keeper %s)", $pooled // "?";
sleep 1;                                        # its keeper is waiting by now

rename $log, $rotated or die "rename $log: $!";
my $pid = do { open my $fh, '<', "$vars->{t_logs}/httpd.pid" or die $!; local $/; <$fh> };
chomp $pid;
kill 'USR1', $pid;                              # graceful restart: reopens the log
ok WSClient::eventually(20, sub { -e $log && (GET '/ws/index.html')->code == 200 }),
    'rotated the log; after a graceful restart httpd writes a new one and answers';
ok WSClient::wait_log(qr/WS01008: /, 10, 0),
    '... and the spawner says sessions now write to it (WS01008)';

$ws->send_text("after-$tag");
$m = $ws->recv_message(10);
is $m && $m->{payload}, "after-$tag", 'the session from before the restart still echoes';
ok WSClient::wait_log(qr/script stderr: to-stderr after-\Q$tag\E/, 10, 0),
    '... and its stderr goes to the new error log';
my $old = do { open my $fh, '<', $rotated or die $!; local $/; <$fh> };
unlike $old, qr/to-stderr after-\Q$tag\E/, '... not to the rotated one';

my($next) = $pooled ? WSClient->connect_in_keeper($pooled, '/ws/stderr', [], $port) : ();
ok $next, 'a new session after the restart is served by that waiting keeper';
$next or die "no session reached keeper $pooled\n";
$next->send_text("pooled-$tag");
$m = $next->recv_message(10);
ok WSClient::wait_log(qr/script stderr: to-stderr pooled-\Q$tag\E/, 10, 0),
    '... and its stderr goes to the new error log';
$next->close_clean;
$old = do { open my $fh, '<', $rotated or die $!; local $/; <$fh> };
unlike $old, qr/to-stderr pooled-\Q$tag\E/, '... not to the rotated one';
$ws->close_clean;

# Later tests read the log from the server's start (the spawner's WS01004
# line, say): give the live log back what the rotation took away.
open my $live, '>>', $log or die "$log: $!";
print $live "--- $rotated, appended back by t/80_log_reopen.t:\n", $old;
close $live;
unlink $rotated;
