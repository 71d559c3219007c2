# Limits per client (docs/DIRECTIVES.md): WebSessionMaxSessionsPerClient
# counts a client address's sessions server-wide and refuses one more with
# 503 too-many-sessions-client and Retry-After; WebSessionUnusedTimeout ends
# a session whose client left its first connection without sending anything
# sooner than WebSessionResumeTimeout. Each client here connects from its
# own loopback address (127.0.0.2 ...), so that sessions other test files
# left behind on 127.0.0.1 do not count.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Time::HiRes qw(time sleep);
use WSClient;

plan tests => 22, need_module('websession');

my $port = Apache::Test::vars('port');

sub open_session {
    my($path, $from, @id) = @_;
    return WSClient->connect($path, [ @id ? ('Session-ID' => $id[0]) : () ], $port,
                             from => $from);
}

sub roundtrip {
    my($ws, $send) = @_;
    $ws->send_text($send);
    my $f = $ws->recv_message(10);
    return $f ? $f->{payload} : '(nothing)';
}

# ---- WebSessionMaxSessionsPerClient 2 --------------------------------------

my $log0 = WSClient::log_offset();
my $a = open_session('/limits-client', '127.0.0.2');
my $b = open_session('/limits-client', '127.0.0.2');
is $a->status . ' ' . $b->status, '101 101', 'client 127.0.0.2: two sessions (the limit)';
my $c = open_session('/limits-client', '127.0.0.2');
is $c->status, 503, '... a third: 503';
is $c->header('WebSession-Error'), 'too-many-sessions-client',
    '... WebSession-Error: too-many-sessions-client';
is $c->header('Retry-After'), '5', '... Retry-After: 5';
ok WSClient::wait_log(qr/WS00046: client 127\.0\.0\.2 has WebSessionMaxSessionsPerClient \(2\)/,
                      5, $log0),
    '... logged once, with the address (WS00046)';
my $other = open_session('/limits-client', '127.0.0.3');
is $other->status, 101, 'another client address is not held back';
$other->close_clean;
my $off = open_session('/limits-client-off', '127.0.0.2');
is $off->status, 101, 'the same client where the limit is off: 101';
$off->close_clean;
is roundtrip($a, 'x'), '1 x', 'the refusal left the first session working';

# A session that ends gives its place back.
$a->close_clean;
my $d;
my $ok = WSClient::eventually(10, sub {
    $d->drop if $d;
    $d = open_session('/limits-client', '127.0.0.2');
    return $d->status == 101;
});
ok $ok, 'once one of the two ends, the client may open another';
$d->close_clean if $ok;
$b->close_clean;

# ---- WebSessionUnusedTimeout 2 (WebSessionResumeTimeout 30) ----------------

# A client that leaves without a word is waited for 2 s, not 30.
$log0 = WSClient::log_offset();
my $silent = open_session('/limits-client', '127.0.0.4');
is $silent->status, 101, 'a session whose client sends nothing';
my $silent_id = $silent->session_id;
my $cp = $silent->local_port;
my($fp) = WSClient::wait_log(
    qr/\[client 127\.0\.0\.4:$cp\] WS00005: \[([0-9a-f]{16})\] new session/, 5, $log0);
$silent->drop;
my $t0 = time;
ok $fp && WSClient::wait_log(qr/WS02001: \[$fp\] session ending: client did not return within WebSessionUnusedTimeout/,
                             10, $log0),
    '... ends by itself (WS02001, WebSessionUnusedTimeout)';
my $waited = time - $t0;
cmp_ok $waited, '>=', 1.5, sprintf '... after the unused timeout (%.1f s >= 2 s less slack)', $waited;
cmp_ok $waited, '<', 8, '... well before WebSessionResumeTimeout (30 s)';
my $back = open_session('/limits-client', '127.0.0.4', $silent_id);
is $back->status, 410, '... and its id is then unknown: 410';
$back->drop;

# One message is enough to be waited for the whole WebSessionResumeTimeout.
$log0 = WSClient::log_offset();
my $spoke = open_session('/limits-client', '127.0.0.5');
is roundtrip($spoke, 'hello'), '1 hello', 'a session whose client sent a message';
my $spoke_port = $spoke->local_port;
my($spoke_fp) = WSClient::wait_log(
    qr/\[client 127\.0\.0\.5:$spoke_port\] WS00005: \[([0-9a-f]{16})\] new session/, 5, $log0);
my $spoke_id = $spoke->session_id;
$spoke->drop;
sleep 3.5;
my $again = open_session('/limits-client', '127.0.0.5', $spoke_id);
is $again->status, 101, '... resumes after 3.5 s (past the unused timeout)';
is roundtrip($again, 'again'), '2 again', '... in the same script';
$again->close_clean;
# The session log (docs/DIRECTIVES.md, Logging): one line when it ended.
my($line) = $spoke_fp ? WSClient::wait_log(qr/(WS02065: \[$spoke_fp\] session ended .*)/, 10, $log0)
                      : ();
like $line // '', qr{^WS02065: \[$spoke_fp\] session ended after \d+\.\d s: script \S+/ws/count, client 127\.0\.0\.5, transport websocket, from the client 2 messages \(10 bytes\), from the script 2 messages \(14 bytes\), 1 resumes, close 1000; client closed the session$},
    'its session log line: script, client, transport, messages and bytes each way, resumes, close';
my @lines = (WSClient::log_since($log0) =~ /WS02065: \[$spoke_fp\]/g);
is scalar @lines, 1, '... exactly one';

# A second connection counts as having come back: the unused timeout is
# for the first one only.
my $twice = open_session('/limits-client', '127.0.0.6');
my $twice_id = $twice->session_id;
$twice->drop;
my $twice2 = open_session('/limits-client', '127.0.0.6', $twice_id);
is $twice2->status, 101, 'a client that came back once, without a word';
$twice2->drop;
sleep 3.5;
my $twice3 = open_session('/limits-client', '127.0.0.6', $twice_id);
is $twice3->status, 101, '... is waited for longer than the unused timeout';
is roundtrip($twice3, 'late'), '1 late', '... in the same script';
$twice3->close_clean;
