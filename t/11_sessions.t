# Sessions: the Session-ID of a 101 answer brings a later connection back
# to the same script process (whichever httpd child takes the connection:
# t/42_survival.t (c) forces a fresh child for each of 30 re-attaches with
# MaxConnectionsPerChild 1, and (a) re-attaches through replacement
# workers after killing them all; here the harness's two children take
# them as the kernel spreads connections), a new attach evicts
# the old connection, and every id that does not name a live session of
# this script on this virtual host is refused with a specific answer.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Time::HiRes qw(time sleep);
use WSClient;

plan tests => 52, need_module('websession');

my $port  = Apache::Test::vars('port');
my $port2 = Apache::Test::vars('vhost2_port');
my $ID_RE = qr/\A[A-Za-z0-9_-]{32}\z/;
my @b64url = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');

sub random_id { join '', map { $b64url[rand @b64url] } 1 .. 32 }

sub text_roundtrip {
    my($ws, $send, $want, $name) = @_;
    $ws->send_text($send);
    my $f = $ws->recv_message(10);
    is $f && ($f->{type} . ':' . $f->{payload}), "text:$want", $name;
}

sub attach {
    my($path, $id, $p) = @_;
    return WSClient->connect($path, [ 'Session-ID' => $id ], $p // $port);
}

# A refused attach: status and WebSession-Error.
sub refused_attach {
    my($name, $path, $id, $status, $error, $p) = @_;
    my $ws = attach($path, $id, $p);
    is $ws->status, $status, "$name: $status";
    is $ws->header('WebSession-Error'), $error, "... WebSession-Error: $error";
    $ws->drop;
    return $ws;
}

# ---- resume after a dropped connection ----------------------------------------

my $log0 = WSClient::log_offset();
my $ws = WSClient->connect('/ws/count', [], $port);
is $ws->status, 101, 'new session on /ws/count: 101';
my $id = $ws->session_id // '';
like $id, $ID_RE, '... Session-ID: 32 base64url characters';
my $client_port = $ws->local_port;
text_roundtrip($ws, 'a', '1 a', '... "a" -> "1 a"');
text_roundtrip($ws, 'b', '2 b', '... "b" -> "2 b"');
$ws->drop;      # no close frame: the session waits for the client

# The session's public fingerprint and its keeper, from the log line of
# its creation; the script is the keeper's child.
my($fp, $keeper) = WSClient::wait_log(
    qr/\[client 127\.0\.0\.1:$client_port\] WS00005: \[([0-9a-f]{16})\] new session, keeper (\d+)/,
    5, $log0);
ok $fp, "the error log names the new session's fingerprint ($fp)";
$keeper //= 0;
my @script = children_of($keeper);

# Re-attach 8 times; each round checks the count.
my $n = 2;
my(%children, @bad);
my $rounds = 0;
my $reattach_log = WSClient::log_offset();
while ($rounds < 8) {
    $rounds++;
    my $off = WSClient::log_offset();
    my $w = attach('/ws/count', $id);
    if ($w->status != 101) {
        push @bad, "round $rounds: status " . $w->status;
        last;
    }
    push @bad, "round $rounds: a new Session-ID on a resume"
        if defined $w->header('Session-ID');
    my $word = "r$rounds";
    $n++;
    $w->send_text($word);
    my $f = $w->recv_message(10);
    my $got = $f ? "$f->{type}:" . ($f->{payload} // '') : 'nothing';
    push @bad, "round $rounds: sent \"$word\", got $got, wanted text:$n $word"
        unless $got eq "text:$n $word";
    my $cp = $w->local_port;
    my($pid) = WSClient::wait_log(
        qr/\[pid (\d+):tid \d+\] \[client 127\.0\.0\.1:$cp\] WS00013: \[\Q$fp\E\] client re-attached/,
        5, $off);
    if ($pid) { $children{$pid}++ } else { push @bad, "round $rounds: no re-attach log line" }
    push @bad, "round $rounds: the re-attach was logged as a new session"
        if WSClient::log_since($off) =~ /\[client 127\.0\.0\.1:$cp\] WS00005:/;
    $w->drop;   # again without a close frame
}
is_deeply \@bad, [], "$rounds re-attaches with the Session-ID after dropped connections: "
    . "each 101 without a new Session-ID, and the count continues (the same process)";
# What serves a re-attach is the session's keeper and its script, whichever
# httpd child took the connection (these were: pids @{[ sort keys %children ]}).
my @script_after = children_of($keeper);
my $new_sessions = () = WSClient::log_since($reattach_log)
    =~ /WS00005: \[\Q$fp\E\]|WS00005: .*keeper $keeper\b/g;
ok $keeper && @script == 1 && process_alive($keeper) && "@script_after" eq "@script"
        && !$new_sessions,
    "after the re-attaches (taken by httpd children @{[ sort keys %children ]}) the session"
    . " is still its keeper (pid $keeper) and the same script (pid @script): no new"
    . " keeper, script or session"
    or diag "keeper $keeper, script before: @script, after: @script_after,"
          . " new-session lines for it: $new_sessions";

# ---- a new attach evicts the connection attached before ---------------------

my $old = attach('/ws/count', $id);
is $old->status, 101, 'attach A: 101';
$n++;
text_roundtrip($old, 'x', "$n x", "... A talks to the session (\"$n x\")");
my $new = attach('/ws/count', $id);
is $new->status, 101, 'attach B while A is still open: 101';
ok $old->wait_eof(10), '... A is evicted: its connection is closed';
$n++;
text_roundtrip($new, 'y', "$n y", "... B continues the count (\"$n y\")");

# ---- ids that name no session here -------------------------------------------

my $unknown = refused_attach('unknown id (32 random base64url characters)', '/ws/count',
                             random_id(), 410, 'session-unknown');
refused_attach('malformed id: 31 characters', '/ws/count',
               substr(random_id(), 0, 31), 400, 'session-id-malformed');
refused_attach('malformed id: 33 characters', '/ws/count',
               random_id() . 'A', 400, 'session-id-malformed');
refused_attach('malformed id: bad characters (+ and /)', '/ws/count',
               substr(random_id(), 0, 30) . '+/', 400, 'session-id-malformed');
refused_attach('malformed id: padding "="', '/ws/count',
               substr(random_id(), 0, 31) . '=', 400, 'session-id-malformed');
refused_attach('malformed id: empty', '/ws/count', '', 400, 'session-id-malformed');
refused_attach('truncated real id', '/ws/count', substr($id, 0, 31), 400,
               'session-id-malformed');
refused_attach('real id with one more character', '/ws/count', $id . 'A', 400,
               'session-id-malformed');
my $other = refused_attach('real id presented to another script (/ws/echo)', '/ws/echo',
                           $id, 410, 'session-unknown');
is $other->body, $unknown->body, '... the same answer as for an unknown id';
my $vh2 = refused_attach('real id presented on the second virtual host', '/ws/count', $id,
                         410, 'session-unknown', $port2);
is $vh2->body, $unknown->body, '... the same answer as for an unknown id';
# one character changed: in the middle, and at each end (the last one
# carries the secret's last bits; a compare that stops early misses it)
for my $pos (5, 0, 31) {
    my $bad = $id;
    substr($bad, $pos, 1) = substr($id, $pos, 1) eq 'A' ? 'B' : 'A';
    refused_attach("real id, character $pos changed", '/ws/count', $bad, 410,
                   'session-unknown');
}

# the refusals did not disturb the session
$n++;
text_roundtrip($new, 'z', "$n z", "after the refused attaches B still talks to the session");

# ---- a clean close ends the session ------------------------------------------

my $c = $new->close_clean;
is $c && $c->{code}, 1000, 'client closes with a close frame: 1000 back';
refused_attach('the id after a clean close', '/ws/count', $id, 410, 'session-unknown');

# ---- WebSessionMaxSessions ------------------------------------------------------
# The limit as configured for this server (t/conf/extra.conf.in).

my $max = do {
    my $conf = Apache::Test::vars('t_conf') . '/extra.conf';
    open my $fh, '<', $conf or die "$conf: $!";
    my($n) = join('', <$fh>) =~ /^\s*WebSessionMaxSessions\s+(\d+)/m;
    $n // 1024;
};
my(@open, $full);
for my $i (1 .. $max + 16) {
    my $w = WSClient->connect('/framed', [], $port);
    if ($w->status == 101) {
        push @open, $w;
        next;
    }
    $full = $w;
    last;
}
ok $full, 'opening sessions until the limit: one is refused, after '
        . scalar(@open) . ' were opened';
cmp_ok scalar(@open), '<=', $max, "... no more than WebSessionMaxSessions ($max) at once";
is $full && $full->status, 503, '... 503 Service Unavailable';
is $full && $full->header('WebSession-Error'), 'too-many-sessions',
    '... WebSession-Error: too-many-sessions';
like $full && $full->header('Retry-After') // '', qr/\A\d+\z/, '... with Retry-After';
$full->drop if $full;

my $closed = 0;
for my $w (@open) {
    my $cl = $w->close_clean(1000, 10);
    $closed++ if $cl && !$cl->{eof} && $cl->{code} == 1000;
}
is $closed, scalar(@open), '... every open session closes cleanly';

my $again = WSClient::eventually(15, sub {
    my $w = WSClient->connect('/framed', [], $port);
    return $w if $w->status == 101;
    $w->drop;
    return 0;
});
ok $again, 'after closing them a new session can be opened';
if ($again) {
    my $cl = $again->close_clean;
    is $cl && $cl->{code}, 1000, '... and closed cleanly';
}
else {
    fail '... and closed cleanly';
}

# The pids whose parent is $ppid (from /proc), sorted.
sub children_of {
    my($ppid) = @_;
    return () unless $ppid;
    opendir my $dh, '/proc' or return ();
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // '';
        push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

# A process that exists and is not a zombie.
sub process_alive {
    my($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return (<$fh> // '') !~ /^\d+ \(.*\) Z/s;
}
