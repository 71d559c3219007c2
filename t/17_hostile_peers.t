# Hostile local users against the module's sockets (the findings of the
# review "Hostile clients and local users"; t/15 checks each door once).
# The names are listed in /proc/net/unix for every user, so the attacks
# below know them; processes drop to another uid (daemon, 1) or to httpd's
# User (nobody here) through t/clients/hostile_peers.py.
#
# On the harness's httpd:
#  (1) silent connections do not stall the spawner: 300 held open by uid 1
#      are refused as they are accepted (none read, no keeper forked: no
#      WS02053), 100 from httpd's own User are dropped after 1 s or pushed
#      out; a new session meanwhile starts within 2 s (it took 10 s and
#      ended in 503 spawner-unavailable when the spawner waited 200 ms for
#      each first message);
#  (3) a flood of 2,000 connections from uid 1 to the spawner and 2,000 to a
#      keeper adds at most 4 lines to the error log (it added one per
#      connection), the session goes on; the counts come in one summary
#      line per process within 10 s (WS01013, WS02081), and add up.
# On an httpd of its own with WebSessionMaxSessions 3 (t/lib/PrivateHttpd.pm):
#  (2) uid 1 binds every name it can work out for the next keepers (the old
#      predictable "k<slot>.<gen>", and the names it sees with the next
#      generations): new sessions start all the same.  Only with the name
#      key, read out of httpd's memory as root, can a name be taken; the
#      keeper then says so (WS02080) and the client gets 500 script-failed;
#  (5) the spawner is SIGKILLed (httpd's parent starts another), then a
#      keeper of a session started before it is SIGKILLed: nobody can reap
#      that keeper, yet the new spawner frees its slot (WS01014) within
#      10 s: 3 new sessions start at once, the old id gets 410.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use IPC::Open2 qw(open2);
use JSON::PP ();
use Time::HiRes qw(time sleep);
use PrivateHttpd qw(poll_until);
use WSClient;

plan tests => 35, need_module('websession');

my $vars   = Apache::Test::vars();
my $port   = $vars->{port};
my $python = '/usr/bin/python3';
my $helper = "$FindBin::Bin/clients/hostile_peers.py";
my $json   = JSON::PP->new;

my($stranger_uid, $stranger_gid) = (getpwnam 'daemon')[2, 3];
defined $stranger_uid or die "no user daemon\n";

my $httpd = do { open my $fh, '<', "$vars->{t_logs}/httpd.pid" or die $!; local $/; <$fh> };
chomp $httpd;
my $spawner_sock = WSClient::spawner_socket($httpd) or die "no spawner socket for httpd $httpd\n";

# ---- helpers ---------------------------------------------------------------------

# hostile_peers.py in the background: returns once it printed READY (or
# failed); finish() closes its stdin and returns its last JSON line.
sub start_client {
    my @args = @_;
    my $pid = open2(my $out, my $in, $python, $helper, @args);
    my $line = <$out> // '';
    my $ready = $line =~ /^READY (\{.*\})/ ? $json->decode($1) : undef;
    return { pid => $pid, out => $out, in => $in, ready => $ready, first => $line };
}

sub finish {
    my($c) = @_;
    close $c->{in};
    my @lines = readline $c->{out};
    waitpid $c->{pid}, 0;
    my($last) = grep { /^\{/ } reverse $c->{first}, @lines;
    return eval { $json->decode($last // '') } // { error => "no JSON: $c->{first} @lines" };
}

sub run_client {
    my $out = qx{$python $helper @_ 2>&1};
    my($line) = grep { /^\{/ } split /\n/, $out;
    return eval { $json->decode($line // '') } // { error => $out };
}

# A new session on $path at $port; its echo of one message, and how long
# the handshake and the echo took: (status, echoed text, seconds, client).
sub timed_session {
    my($port, $path, $word) = @_;
    my $t0 = time;
    my $ws = eval { WSClient->connect($path, [], $port, timeout => 15) };
    return (0, "no answer: $@", time - $t0) unless $ws;
    return ($ws->status, ($ws->header('websession-error') // ''), time - $t0, $ws)
        unless $ws->status == 101;
    $ws->send_text($word);
    my $m = $ws->recv_message(10);
    return (101, $m ? $m->{payload} : '(nothing)', time - $t0, $ws);
}

# timed_session's answer, its session closed (the slot is free again soon).
sub closed {
    my @r = @_;
    $r[3]->close_clean if $r[3] && $r[3]->status == 101;
    return \@r;
}

sub lines_since {
    my($off, $re, $path) = @_;
    open my $fh, '<', $path // WSClient::log_path() or return ();
    seek $fh, $off, 0;
    return grep { !$re || $_ =~ $re } <$fh>;
}

# What the refusal lines since $off report in all: a first line counts one,
# a summary its number.  $who restricts them to one process ("[pid N:").
sub refusals_reported {
    my($off, $first, $summary, $pid) = @_;
    my $n = 0;
    for (lines_since($off)) {
        next if defined $pid && !/\[pid \Q$pid\E:/;
        $n += 1 if /$first/;
        $n += $1 if /$summary/;
    }
    return $n;
}

# The first 10 of many log lines, for a diagnostic.
sub first_lines { return @_ > 10 ? (@_[0 .. 9], '... ' . (@_ - 10) . " more\n") : @_ }

sub wait_file {
    my($path, $re, $timeout, $off) = @_;
    my @m;
    poll_until($timeout, sub { @m = join('', lines_since($off, undef, $path)) =~ $re; @m });
    return @m;
}

# ---- (1) silent connections and the spawner's loop --------------------------------

my $off0 = WSClient::log_offset();
my $c = start_client('hold', '--socket', $spawner_sock, '--count', 300,
                     '--uid', $stranger_uid, '--gid', $stranger_gid);
ok $c->{ready} && $c->{ready}{opened} == 300,
    "uid $stranger_uid holds 300 silent connections to the spawner" or diag $c->{first};
my($st, $echo, $secs) = timed_session($port, '/ws/echo', 'while-300-wait');
ok $st == 101 && $echo eq 'while-300-wait' && $secs < 2,
    sprintf 'meanwhile a new session starts and echoes (%s, %s) in %.2f s (< 2 s)',
            $st, $echo, $secs;
my $r = finish($c);
is $r->{closed_by_server}, $r->{opened},
    "... the spawner had closed all $r->{opened} of them unread as it accepted them";
my @forked = lines_since($off0, qr/WS02053/);
is scalar @forked, 0, '... and forked no keeper for any (no WS02053)';
my @lines = lines_since($off0, qr/WS0101[23]:/);
ok @lines <= 1, sprintf '... refusals logged: %d line(s) (at most 1)', scalar @lines
    or diag first_lines(@lines);

# httpd's User, as the spawner announced it ("nobody" in the harness).
my($spawner_uid) = join('', lines_since(0)) =~ /.*WS01004: spawner \d+ ready, running keepers as uid (\d+)/s;
$spawner_uid //= -1;
my $user_gid = (getpwuid $spawner_uid)[3] // $spawner_uid;
my $off = WSClient::log_offset();
$c = start_client('hold', '--socket', $spawner_sock, '--count', 100,
                  '--uid', $spawner_uid, '--gid', $user_gid);
ok $c->{ready} && $c->{ready}{opened} == 100,
    "httpd's own User (uid $spawner_uid) holds 100 silent connections to the spawner"
    or diag $c->{first};
($st, $echo, $secs) = timed_session($port, '/ws/echo', 'while-100-wait');
ok $st == 101 && $echo eq 'while-100-wait' && $secs < 2,
    sprintf 'meanwhile a new session starts and echoes (%s, %s) in %.2f s (< 2 s)',
            $st, $echo, $secs;
sleep 1.5;                      # each may wait 1 s for its first message
$r = finish($c);
is $r->{closed_by_server}, $r->{opened},
    "... after 1.5 s the spawner had dropped all $r->{opened} (pushed out, or silent for 1 s)";
@lines = lines_since($off, qr/WS01015:/);
ok @lines <= 1, sprintf '... drops logged: %d line(s) (at most 1)', scalar @lines
    or diag first_lines(@lines);

# ---- (3) floods of refused connections and the log ----------------------------------

my($ws, $fp, $keeper) = WSClient->connect_keeper('/ws/count', [], $port);
$ws->send_text('a');
my $m = $ws->recv_message(10);
is $m && $m->{payload}, '1 a', 'a session on /ws/count: 1 a';
my $ksock = $keeper && WSClient::keeper_socket($keeper);
ok $ksock, "... its keeper $keeper listens on \@" . ($ksock // '?');

$off = WSClient::log_offset();
my $t0 = time;
my $fs = run_client('flood', '--socket', $spawner_sock, '--count', 2000,
                    '--uid', $stranger_uid, '--gid', $stranger_gid);
my $fk = run_client('flood', '--socket', $ksock // 'none', '--count', 2000,
                    '--uid', $stranger_uid, '--gid', $stranger_gid);
my $flood_secs = time - $t0;
is "$fs->{connected} $fk->{connected}", '2000 2000',
    sprintf "uid $stranger_uid connects 2,000 times to the spawner and 2,000 times to the"
          . ' keeper (%.1f s)', $flood_secs
    or diag explain [ $fs, $fk ];
sleep 0.5;
@lines = lines_since($off);
ok @lines <= 4, sprintf '... the error log grew by %d line(s) (at most 4)', scalar @lines
    or diag first_lines(@lines);
$ws->send_text('b');
$m = $ws->recv_message(10);
is $m && $m->{payload}, '2 b', '... the session goes on: 2 b';
($st, $echo, $secs) = timed_session($port, '/ws/echo', 'after-flood');
ok $st == 101 && $echo eq 'after-flood',
    sprintf '... a new session starts (%s, %s, %.2f s)', $st, $echo, $secs;

# Every refusal is in exactly one line: the summaries come within 10 s.
my $want_spawner = 300 + $fs->{connected};
my($got_s, $got_k) = (0, 0);
poll_until(13, sub {
    $got_s = refusals_reported($off0, qr/WS01012: refused a connection from uid $stranger_uid /,
                               qr/WS01013: refused (\d+) connection/);
    $got_k = refusals_reported($off, qr/WS02016: \[\Q$fp\E\] refused an attach/,
                               qr/WS02081: keeper refused (\d+) connection/, $keeper);
    $got_s >= $want_spawner && $got_k >= $fk->{connected};
});
is $got_s, $want_spawner,
    "the spawner's lines (WS01012, WS01013 summaries) report all $want_spawner refusals of this test";
is $got_k, $fk->{connected},
    "the keeper's lines (WS02016, WS02081 summaries) report all $fk->{connected} refusals";
@lines = lines_since($off0, qr/WS0101[23]:|WS02016:|WS02081:/);
ok @lines <= 6, sprintf '... in %d line(s) for 2,300 + 2,000 refusals (at most 6)',
                        scalar @lines or diag first_lines(@lines);
$ws->close_clean;

# ---- an httpd of our own: 3 slots --------------------------------------------------

my $h = PrivateHttpd->new(edit => sub {
    my($extra) = @_;
    my $n = $$extra =~ s/^(\s*WebSessionMaxSessions\s+)\d+/${1}3/mg;
    return $n == 1 ? '' : "$n WebSessionMaxSessions lines";
});
diag 'private httpd: ' . PrivateHttpd->error unless $h;

SKIP: {
    skip 'no private httpd (see diag)', 17 unless $h && $h->start;
    my($pport, $plog) = ($h->port, $h->errlog);
    my $parent = $h->pid;
    my $poff = -s $plog;
    my $psock = WSClient::spawner_socket($parent);
    ok $psock && $psock =~ m{^mod_websession/$parent/spawner\.[0-9a-f]{32}$},
        "private httpd $parent (WebSessionMaxSessions 3): its spawner listens on \@"
        . ($psock // '?') . ', a name with a MAC';

    # ---- (2) names taken in advance ----

    my($lst, $lecho, undef, $live) = timed_session($pport, '/ws/count', 'L');
    is "$lst $lecho", '101 1 L', 'session L on /ws/count: 1 L';
    my($lfp, $lkeeper) = wait_file($plog, qr/WS00005: \[([0-9a-f]{16})\] new session, keeper (\d+)/,
                                  5, $poff);
    my $lid = $live && $live->session_id;

    my $sq = start_client('squat', '--httpd', $parent, '--slots', 3, '--gens', '1-8',
                          '--uid', $stranger_uid, '--gid', $stranger_gid);
    ok $sq->{ready} && $sq->{ready}{bound} >= 24,
        "uid $stranger_uid binds every keeper name it can work out for slots 0-2,"
        . ' generations 1-8: ' . ($sq->{ready} ? "$sq->{ready}{bound} bound" : $sq->{first});
    my @got = map { closed(timed_session($pport, '/ws/echo', "squatted-$_")) } 1 .. 3;
    ok !(grep { $_->[0] != 101 || $_->[1] !~ /^squatted-/ } @got),
        '... 3 new sessions one after another all start and echo: '
        . join ', ', map { "$_->[0] $_->[1]" } @got;
    finish($sq);

    my $pofk = -s $plog;
    $sq = start_client('squat', '--httpd', $parent, '--slots', 3, '--gens', '1-40', '--keyed');
    ok $sq->{ready} && $sq->{ready}{key_found} && $sq->{ready}{bound} >= 100,
        'root, with the name key read out of the memory of httpd\'s parent, binds the real'
        . ' names of slots 0-2, generations 1-40: '
        . ($sq->{ready} ? "$sq->{ready}{bound} bound" : $sq->{first});
    my($kst, $kerr) = @{ closed(timed_session($pport, '/ws/echo', 'taken')) };
    is "$kst $kerr", '500 script-failed', '... a new session: 500 script-failed';
    ok wait_file($plog, qr/WS02080: \[[0-9a-f]{16}\] the session's socket name \(slot \d, generation \d+\) is taken by another process/,
                 5, $pofk),
        '... the keeper says why (WS02080)';
    ok wait_file($plog, qr/WS00004: \[[0-9a-f]{16}\] session for \S+ not started: the session's socket name is taken/,
                 5, $pofk),
        '... and so does the worker (WS00004)';
    finish($sq);
    ($kst, $kerr) = @{ closed(timed_session($pport, '/ws/echo', 'free-again')) };
    is "$kst $kerr", '101 free-again', '... once they are free again, a new session: 101';

    # ---- (5) the slot of a keeper nobody can reap ----

    my($sp) = wait_file($plog, qr/.*WS01004: spawner (\d+) ready/s, 1, 0);
    my $sp_off = -s $plog;
    ok $sp && kill('KILL', $sp), "SIGKILL to the private httpd's spawner (" . ($sp // '?') . ')';
    my($sp2) = wait_file($plog, qr/WS01006: spawner died.*WS01004: spawner (\d+) ready/s, 10, $sp_off);
    ok $sp2 && $sp2 != $sp, "... httpd's parent starts another (" . ($sp2 // 'none') . ')';
    $live->send_text('M');
    $m = $live->recv_message(10);
    is $m && $m->{payload}, '2 M',
        '... session L, whose keeper ' . ($lkeeper // '?') . ' the old spawner forked, goes on: 2 M';
    my $k_off = -s $plog;
    ok $lkeeper && kill('KILL', $lkeeper), "SIGKILL to that keeper";
    my $t1 = time;
    my($lfp_re, $lkeeper_re) = (quotemeta($lfp // 'none'), quotemeta($lkeeper // 0));
    ok wait_file($plog, qr/WS01014: \[$lfp_re\] keeper $lkeeper_re is gone; an earlier spawner forked it/,
                 10, $k_off),
        sprintf '... the new spawner frees its slot (WS01014, %.1f s)', time - $t1;
    my @three = map { [ timed_session($pport, '/ws/echo', "slot-$_") ] } 1 .. 3;
    ok !(grep { $_->[0] != 101 || $_->[1] !~ /^slot-/ } @three),
        '... 3 new sessions at once (WebSessionMaxSessions) all start: '
        . join ', ', map { "$_->[0] $_->[1]" } @three;
    my $gone = eval { WSClient->connect('/ws/count', [ 'Session-ID' => $lid // 'x' ], $pport) };
    is $gone && $gone->status, 410, "... session L's id: 410";
    $_->[3] && $_->[3]->status == 101 && $_->[3]->close_clean for @three;
    ok $h->stop, 'the private httpd stops';
}
