# Keepers serve one session after another (pool.h): once a session is over
# its keeper waits at the spawner and serves the next new session, from
# fresh state (a new id, counts from zero, a new script with its own
# environment); the spawner refuses an offer to serve sessions that does
# not come from one of its keepers; a keeper left waiting exits after
# POOL_IDLE_SECONDS (10).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Socket qw(AF_UNIX SOCK_STREAM pack_sockaddr_un);
use WSClient;

plan tests => 18, need_module('websession');

my $vars = Apache::Test::vars();
my $port = $vars->{port};
my $V1   = [ 'Sec-WebSocket-Protocol' => 'websession.v1' ];

sub process_gone {
    my($pid) = @_;
    return 1 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $stat = <$fh> // '';
    return $stat =~ /^\d+ \(.*\) Z /s;
}

sub text { my $m = $_[0]->recv_message(10); return $m ? $m->{payload} : '(nothing)' }

# ---- a v1 session, then the next one in the same keeper ------------------------

my($s1, $fp_a, $keeper_a) = WSClient->connect_keeper('/ws/count', $V1, $port);
is $s1->status, 101, 'session A on /ws/count (websession.v1): 101';
my $id_a = text($s1);
like $id_a, qr/^I[A-Za-z0-9_-]{32}$/, '... introduced with its id';
is text($s1), 'R0 1048576', '... R0';
$s1->send_text('R0');
$s1->send_text("D$_") for qw(x y);
is text($s1), 'D1 x', '... its script counts: D1 x';
is text($s1), 'D2 y', '... D2 y';
$s1->close_clean;
ok $keeper_a && !process_gone($keeper_a), sprintf "... closed; its keeper (pid %s) stays", $keeper_a // "?";

my($s2, $fp_b) = WSClient->connect_in_keeper($keeper_a, '/ws/count', $V1, $port);
ok $s2, 'session B, started after A ended, runs in the same keeper';
$s2 or die "no session reached keeper $keeper_a\n";
isnt $fp_b, $fp_a, '... and its own public id';
my $id_b = text($s2);
ok $id_b =~ /^I[A-Za-z0-9_-]{32}$/ && $id_b ne $id_a, '... and its own session id';
is text($s2), 'R0 1048576', '... its counts start from zero: R0';
$s2->send_text('R0');
$s2->send_text('Dz');
is text($s2), 'D1 z', '... and a new script: D1 z';
$s2->close_clean;

my($s3, $fp_c) = WSClient->connect_in_keeper($keeper_a, '/cmd', [], $port);
ok $s3, 'session C (plain, another script) again in that keeper';
$s3 or die "no session reached keeper $keeper_a\n";
my %env;
for (1 .. 8) {
    my($k, $v) = text($s3) =~ /^(\w+)=(.*)$/ or last;
    $env{$k} = $v;
}
is $env{WEBSESSION_ID}, $fp_c, '... its script sees its own WEBSESSION_ID';
is $env{REQUEST_URI}, '/cmd', '... and its own request';
$s3->close_clean;

# ---- an offer that does not come from a keeper ----------------------------------

my $httpd = do { open my $fh, '<', "$vars->{t_logs}/httpd.pid" or die $!; local $/; <$fh> };
chomp $httpd;
my $off = WSClient::log_offset();
socket(my $fake, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
connect($fake, pack_sockaddr_un("\0" . (WSClient::spawner_socket($httpd) // 'none')))
    or die "connect to the spawner: $!";
syswrite $fake, pack('VVV', 0x57535331, 7, 32) . ("\0" x 32);
my $got = sysread $fake, my $buf, 64;
is $got, 0, 'an offer to serve sessions with a wrong token: the spawner closes it';
ok WSClient::wait_log(qr/WS04001: /, 5, $off), '... and logs WS04001';
close $fake;

my($s4, $fp_d, $keeper_d) = WSClient->connect_keeper('/ws/echo', [], $port);
$s4->send_text('after');
is text($s4), 'after', '... sessions go on';
$s4->close_clean;

# ---- a keeper left waiting ------------------------------------------------------------

ok $keeper_d && WSClient::eventually(16, sub { process_gone($keeper_d) }),
    sprintf "a keeper that waited 10 s for a session exits (pid %s)", $keeper_d // "?";
