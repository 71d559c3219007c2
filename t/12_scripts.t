# The scripts' side: CGI environment (and no session secret in it), user,
# exit status as close code, stderr to the error log, framed and lines
# message modes, message size limit, the end of an abandoned session
# (EOF -> SIGTERM -> SIGKILL), the script's process group and what it
# started in it ending with the session, flow control with a slow client, and no
# Session-ID secret in any log.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select ();
use Time::HiRes qw(time sleep);
use WSClient;

plan tests => 142, need_module('websession');

my $port = Apache::Test::vars('port');
my $user = Apache::Test::vars('user') || 'nobody';

sub rand_word { join '', map { ('a' .. 'z')[rand 26] } 1 .. 12 }

# Messages until (and including) the one matching $last_re, as a list.
sub read_until {
    my($ws, $last_re, $timeout) = @_;
    my @msgs;
    my $deadline = time + ($timeout // 10);
    while (time < $deadline) {
        my $f = $ws->recv_message($deadline - time) or last;
        last if $f->{eof} || $f->{type} eq 'close';
        push @msgs, $f->{payload};
        last if $f->{payload} =~ $last_re;
    }
    return @msgs;
}

# The close frame the server sends next (skipping data messages); we answer
# it and expect the server to close the connection.
sub expect_close {
    my($ws, $code, $reason_re, $name) = @_;
    my $f;
    for (1 .. 100) {
        $f = $ws->recv_frame(10);
        last if !$f || $f->{eof} || $f->{type} eq 'close';
    }
    my $got = !$f ? 'nothing (timeout)' : $f->{eof} ? 'EOF without a close frame'
            : "close $f->{code} \"$f->{reason}\"";
    is $f && !$f->{eof} && $f->{type} eq 'close' ? $f->{code} : $got, $code,
        "$name: close frame with code $code";
    like $f && $f->{reason} // '', $reason_re, "... reason matches $reason_re";
    $ws->send_close($f->{code}) if $f && !$f->{eof} && $f->{type} eq 'close';
    ok $ws->wait_eof(10), '... then the server closes the connection';
    $ws->drop;
}

sub fingerprint_of {
    my($ws, $offset) = @_;
    my $cp = $ws->local_port;
    my($fp) = WSClient::wait_log(
        qr/\[client 127\.0\.0\.1:$cp\] WS00005: \[([0-9a-f]{16})\] new session/, 5, $offset);
    return $fp // '';
}

sub process_gone {
    my($pid) = @_;
    return 1 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $stat = <$fh> // '';
    return $stat =~ /^\d+ \(.*\) Z /s;     # a zombie is gone as well
}

sub vmrss_kib {
    my($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

# ---- an abandoned session: started first, checked near the end ---------------
# /ws has WebSessionResumeTimeout 5: 5 s after the drop the script gets EOF,
# 2 s later SIGTERM (which it ignores), 2 s later SIGKILL.

my $abandon_log = WSClient::log_offset();
my $ab = WSClient->connect('/ws/pid-ignore-term', [], $port);
is $ab->status, 101, '/ws/pid-ignore-term: 101';
my $ab_id = $ab->session_id // '';
my $first = $ab->recv_message(10);
my($ab_pid, $ab_fp) = ($first && $first->{payload} // '') =~ /^(\d+) ([0-9a-f]{16})$/;
ok $ab_pid, "... the script reports its pid ($ab_pid) and WEBSESSION_ID ($ab_fp)";
$ab->send_text('still here');
my $echo = $ab->recv_message(10);
is $echo && $echo->{payload}, 'still here', '... and echoes';
$ab->drop;                          # no close frame: the session waits
my $ab_dropped = time;
ok !process_gone($ab_pid), '... the script keeps running after the connection drops';

# ---- the CGI environment ----------------------------------------------------

{
    my $off = WSClient::log_offset();
    my $ws = WSClient->connect('/ws/env/extra/path?x=1', [], $port);
    is $ws->status, 101, '/ws/env/extra/path?x=1: 101';
    my $sid = $ws->session_id // '';
    my @lines = read_until($ws, qr/^USER=/);
    my %env = map { /^([A-Z_]+)=(.*)$/s ? ($1, $2) : () } @lines;
    is $env{REQUEST_URI}, '/ws/env/extra/path?x=1', '... REQUEST_URI=/ws/env/extra/path?x=1';
    is $env{SCRIPT_NAME}, '/ws/env', '... SCRIPT_NAME=/ws/env';
    is $env{PATH_INFO}, '/extra/path', '... PATH_INFO=/extra/path';
    is $env{QUERY_STRING}, 'x=1', '... QUERY_STRING=x=1';
    is $env{REMOTE_ADDR}, '127.0.0.1', '... REMOTE_ADDR=127.0.0.1';
    is $env{SERVER_NAME}, 'localhost', '... SERVER_NAME=localhost';
    like $env{WEBSESSION_ID} // '', qr/\A[0-9a-f]{16}\z/, '... WEBSESSION_ID: 16 hex digits';
    isnt $env{WEBSESSION_ID}, $sid, '... and not the Session-ID';
    is $env{WEBSESSION_ID}, fingerprint_of($ws, $off),
        '... the fingerprint the error log uses for this session';
    is $env{USER}, $user, "... the script runs as the httpd User ($user)";
    my $all = join "\n", @lines;
    ok length($sid) == 32 && index($all, $sid) < 0,
        '... the Session-ID secret appears nowhere in the output';
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# The whole environment, on the first connection and after a resume.
{
    my $ws = WSClient->connect('/ws/envall', [ 'X-Probe' => 'probe-value' ], $port);
    is $ws->status, 101, '/ws/envall: 101';
    my $sid = $ws->session_id // '';
    my @env = read_until($ws, qr/^--end--$/);
    my %env = map { /^([^=]+)=(.*)$/s ? ($1, $2) : () } @env;
    is $env{HTTP_X_PROBE}, 'probe-value',
        '... request headers reach the script (HTTP_X_PROBE)';
    ok !exists $env{HTTP_SESSION_ID}, '... no HTTP_SESSION_ID';
    ok length($sid) == 32 && !grep({ index($_, $sid) >= 0 } @env),
        '... the Session-ID secret is nowhere in the environment';
    $ws->drop;

    my $re = WSClient->connect('/ws/envall', [ 'Session-ID' => $sid, 'X-Probe' => 'again' ],
                               $port);
    is $re->status, 101, '... resume with the Session-ID: 101';
    $re->send_text('env');
    my @env2 = read_until($re, qr/^--end--$/);
    ok @env2 > 3 && !grep({ /^HTTP_SESSION_ID=/ } @env2),
        '... after the resume the script still has no HTTP_SESSION_ID';
    ok !grep({ index($_, $sid) >= 0 } @env2),
        '... and the secret is nowhere in its environment';
    my $c = $re->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# WebSessionCommand in <Location /cmd>: SCRIPT_NAME is the location.
{
    my $ws = WSClient->connect('/cmd/a/b?q=2', [], $port);
    is $ws->status, 101, '/cmd/a/b?q=2: 101';
    my %env = map { /^([A-Z_]+)=(.*)$/s ? ($1, $2) : () } read_until($ws, qr/^USER=/);
    is $env{SCRIPT_NAME}, '/cmd', '... SCRIPT_NAME=/cmd';
    is $env{PATH_INFO}, '/a/b', '... PATH_INFO=/a/b';
    is $env{QUERY_STRING}, 'q=2', '... QUERY_STRING=q=2';
    is $env{USER}, $user, "... runs as $user";
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# ---- exit status -> close code ------------------------------------------------

{
    my $ws = WSClient->connect('/ws/exit3', [], $port);
    is $ws->status, 101, '/ws/exit3: 101';
    $ws->send_text('one');
    expect_close($ws, 4003, qr/status 3\b/, '... exits with status 3 after one message');
}
# 1, the most common failure status, and the ends of the range
for my $st (1, 2, 255) {
    my $ws = WSClient->connect("/ws/exit-with?$st", [], $port);
    is $ws->status, 101, "/ws/exit-with?$st: 101";
    $ws->send_text('one');
    expect_close($ws, 4000 + $st, qr/^script exited with status $st$/,
                 "... exits with status $st: close " . (4000 + $st));
}
{
    my $ws = WSClient->connect('/ws/exit0', [], $port);
    is $ws->status, 101, '/ws/exit0: 101';
    $ws->send_text('one');
    my $f = $ws->recv_message(10);
    is $f && $f->{payload}, 'bye one', '... answers before it exits';
    expect_close($ws, 1000, qr/status 0\b/, '... exits with status 0');
}
{
    # The close handshake the script's end started is complete once the
    # client answers the close frame: the id is gone. The client keeps its
    # TCP connection open for a moment, as it may (the server closes first).
    my $ws = WSClient->connect('/ws/exit3', [], $port);
    my $sid = $ws->session_id // '';
    $ws->send_text('one');
    my $f = $ws->recv_frame(10);
    is $f && $f->{type} eq 'close' && $f->{code}, 4003, '/ws/exit3 again: close 4003';
    $ws->send_close(4003);
    ok $ws->wait_eof(10), '... we answer it, the server closes its side';
    my $re = WSClient->connect('/ws/exit3', [ 'Session-ID' => $sid ], $port);
    is $re->status, 410, '... the id right after the close handshake: 410';
    $re->drop;
    $ws->drop;
}
{
    # The same with the client closing TCP: wait until the session has ended.
    my $off = WSClient::log_offset();
    my $ws = WSClient->connect('/ws/exit3', [], $port);
    my $sid = $ws->session_id // '';
    my $fp = fingerprint_of($ws, $off);
    $ws->send_text('one');
    my $f = $ws->recv_frame(10);
    $ws->send_close($f->{code}) if $f && $f->{type} eq 'close';
    $ws->wait_eof(10);
    $ws->drop;
    ok scalar(WSClient::wait_log(qr/WS02001: \[\Q$fp\E\] session ending/, 10, $off)),
        '/ws/exit3, close handshake and TCP closed: the session ends (error log)';
    my $re = WSClient->connect('/ws/exit3', [ 'Session-ID' => $sid ], $port);
    is $re->status, 410, '... its id: 410';
    is $re->header('WebSession-Error'), 'session-unknown', '... session-unknown';
    $re->drop;
}
{
    # A script that ends while its client is away: the close frame with its
    # status waits for the client's return.
    my $ws = WSClient->connect('/ws/exit5-later', [], $port);
    is $ws->status, 101, '/ws/exit5-later: 101';
    my $sid = $ws->session_id // '';
    $ws->send_text('one');          # it exits with status 5 a second later
    $ws->drop;
    sleep 2;
    my $re = WSClient->connect('/ws/exit5-later', [ 'Session-ID' => $sid ], $port);
    is $re->status, 101, '... resumed after the script ended while the client was away: 101';
    expect_close($re, 4005, qr/status 5\b/, '... the status waited for the client');
}
{
    my $ws = WSClient->connect('/ws/killself', [], $port);
    is $ws->status, 101, '/ws/killself: 101';
    $ws->send_text('one');
    expect_close($ws, 4309, qr/signal 9\b/, '... killed by SIGKILL (4300 + 9)');
}

# ---- resource limits: RLimitCPU, RLimitMEM, RLimitNPROC, as for CGI ------------

{
    my $ws = WSClient->connect('/rlimits', [], $port);
    is $ws->status, 101, '/rlimits (RLimitCPU 7 9, RLimitMEM 805306368 1073741824,'
                         . ' RLimitNPROC 1000 1100): 101';
    my @lines = read_until($ws, qr/^--end--$/);
    my %lim = map { /^(Max \S+(?: \S+)*?)\s{2,}(\S+)\s+(\S+)/ ? ($1, "$2 $3") : () } @lines;
    is $lim{'Max cpu time'}, '7 9', '... the script runs with RLimitCPU (cpu time, soft and hard)';
    is $lim{'Max address space'}, '805306368 1073741824',
        '... with RLimitMEM as its address space (as mod_cgid)';
    is $lim{'Max processes'}, '1000 1100', '... with RLimitNPROC';
    my($ids) = grep { /^pid / } @lines;
    like $ids // '', qr/^pid (\d+) pgrp \1 session (?!\1$)\d+$/,
        '... and, as without limits, leads its own process group in the keeper\'s session';
    is join(' ', grep { /^Sig(?:Blk|Ign):/ } @lines),
       "SigBlk:\t0000000000000000 SigIgn:\t0000000000000000",
       '... with no signal blocked or ignored (the keeper ignores SIGPIPE and others)';
    expect_close($ws, 1000, qr/status 0/, '... then it exits');
}
{
    my $t0 = time;
    my $ws = WSClient->connect('/rlimit-cpu', [], $port);
    is $ws->status, 101, '/rlimit-cpu (RLimitCPU 1 1, a script that spins): 101';
    my $f = $ws->recv_message(10);
    is $f && $f->{payload}, 'spinning', '... it starts spinning';
    expect_close($ws, 4309, qr/^script killed by signal 9$/,
                 '... the kernel kills it at 1 s of CPU (SIGKILL at the hard limit)');
    my $took = time - $t0;
    ok $took < 15, sprintf '... %.1f s after the handshake (under 15 s on a loaded machine)',
                           $took;
}

# ---- stderr goes to the error log -------------------------------------------

{
    my $off = WSClient::log_offset();
    my $word = rand_word();
    my $ws = WSClient->connect('/ws/stderr', [], $port);
    is $ws->status, 101, '/ws/stderr: 101';
    $ws->send_text("hello $word");
    my $f = $ws->recv_message(10);
    is $f && $f->{payload}, "hello $word", '... echoes';
    my $fp = fingerprint_of($ws, $off);
    my($line) = WSClient::wait_log(qr/^(.*to-stderr hello \Q$word\E.*)$/m, 10, $off);
    ok $line, '... the error log gets the stderr line';
    like $line // '', qr/script stderr/, '... marked "script stderr"';
    like $line // '', qr/\[\Q$fp\E\]/, "... with the session's fingerprint [$fp]";
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# ---- framed mode: binary-safe -----------------------------------------------

{
    my $ws = WSClient->connect('/framed', [], $port);
    is $ws->status, 101, '/framed: 101';
    my $bytes = join '', map { chr } 0 .. 255;
    my $mib = join '', map { chr int rand 256 } 1 .. 4096;
    $mib x= 256;                                    # 1 MiB
    substr($mib, $_ * 4096, 4, pack 'N', $_) for 0 .. 255;
    for my $t ([ 'binary', $bytes, 'all 256 byte values' ],
               [ 'text', "line one\nline two\n\n\r\nlast\n", 'text with embedded newlines' ],
               [ 'text', '', 'empty text message' ],
               [ 'binary', '', 'empty binary message' ],
               [ 'text', "caf\xc3\xa9 \xe2\x82\xac", 'UTF-8 text' ],
               [ 'binary', $mib, '1 MiB binary message' ]) {
        my($type, $data, $name) = @$t;
        $type eq 'text' ? $ws->send_text($data) : $ws->send_binary($data);
        my $f = $ws->recv_message(20);
        ok $f && $f->{type} eq $type && $f->{payload} eq $data,
            "... $name: echoed exactly, as $type";
    }
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# ---- lines mode refuses binary messages ----------------------------------------

{
    my $ws = WSClient->connect('/ws/echo', [], $port);
    is $ws->status, 101, '/ws/echo (lines mode): 101';
    $ws->send_binary("\x00\x01binary");
    expect_close($ws, 1003, qr/framed/, '... a binary message');
}

# ---- WebSessionMaxMessage 1024 ------------------------------------------------

{
    my $ws = WSClient->connect('/small', [], $port);
    is $ws->status, 101, '/small: 101';
    my $ok = 'k' x 1000;
    $ws->send_text($ok);
    my $f = $ws->recv_message(10);
    is $f && $f->{payload}, $ok, '... a 1000-byte message is echoed';
    $ws->send_text('x' x 2000);
    expect_close($ws, 1009, qr/./, '... a 2000-byte message (limit 1024)');
}

# ---- flow control: a client that does not read ---------------------------------

{
    my $off = WSClient::log_offset();
    my $ws = WSClient->connect('/framed', [], $port);
    is $ws->status, 101, 'flow control: /framed: 101';
    my $cp = $ws->local_port;
    my($keeper) = WSClient::wait_log(
        qr/\[client 127\.0\.0\.1:$cp\] WS00005: \[[0-9a-f]{16}\] new session, keeper (\d+)/,
        5, $off);
    ok $keeper && !process_gone($keeper), "... the session's keeper (pid $keeper) runs";

    my $MSG = 65536;
    my $COUNT = 320;                                # 20 MiB
    my $block = join '', map { chr int rand 256 } 1 .. 65536;
    $block x= 18;
    my $payload = sub {
        my $i = shift;
        return pack('N', $i) . substr($block, ($i * 7919) % (1 << 20), $MSG - 4);
    };
    my $sock = $ws->sock;
    $sock->blocking(0);
    my($next, $out, $sent_bytes, $max_rss) = (0, '', 0, 0);
    my $sample = sub {
        my $r = vmrss_kib($keeper) // 0;
        $max_rss = $r if $r > $max_rss;
    };
    my $write_some = sub {
        if ($out eq '' && $next < $COUNT) {
            $out = WSClient::frame_bytes('binary', $payload->($next++));
        }
        return 0 if $out eq '';
        my $n = syswrite $sock, $out;
        return 0 unless defined $n && $n > 0;
        substr($out, 0, $n, '');
        $sent_bytes += $n;
        return $n;
    };

    # Phase 1: write without reading, until the server stops taking data
    # for 1.5 s (or everything is written).
    my $wsel = IO::Select->new($sock);
    my $last_progress = time;
    while (time - $last_progress < 1.5 && ($next < $COUNT || $out ne '')) {
        if ($write_some->()) {
            $last_progress = time;
            next;
        }
        $wsel->can_write(0.2);
    }
    sleep 0.5;
    $sample->();
    my $stalled = $next < $COUNT || $out ne '';
    diag sprintf 'flow control: the server took %.1f MiB before the client read anything%s',
        $sent_bytes / 2**20, $stalled ? ' (then it stopped taking more)' : '';

    # Phase 2: read everything (and write the rest).
    my($got, @bad) = (0);
    my $deadline = time + 60;
    my $rsel = IO::Select->new($sock);
    while ($got < $COUNT && time < $deadline && !$ws->{eof}) {
        my($r, $w) = IO::Select->select($rsel, ($next < $COUNT || $out ne '') ? $wsel : undef,
                                        undef, 1);
        $write_some->() if $w && @$w;
        if ($r && @$r) {
            my $n = sysread $sock, my $chunk, 1 << 20;
            if (defined $n && $n == 0) {
                $ws->{eof} = 1;
            }
            elsif (defined $n) {
                $ws->{buf} .= $chunk;
            }
            while (my $f = $ws->recv_frame(0)) {
                last if $f->{eof};
                if ($f->{type} ne 'binary' || $f->{payload} ne $payload->($got)) {
                    push @bad, "message $got: $f->{type}, " . length($f->{payload}) . ' bytes'
                        . ($f->{type} eq 'close' ? " (close $f->{code} $f->{reason})" : '');
                }
                $got++;
            }
        }
        $sample->() if $got % 16 == 0;
    }
    is $got, $COUNT, "... all $COUNT messages of 64 KiB (20 MiB) come back";
    is_deeply [ @bad[0 .. ($#bad < 4 ? $#bad : 4)] ], [], '... intact and in order';
    ok $stalled, '... while the client read nothing the server stopped taking data'
               . ' before all 20 MiB were in (how much it took: the diag above)';
    ok $max_rss > 0 && $max_rss < 64 * 1024,
        "... the keeper's memory stays bounded (VmRSS peak $max_rss KiB < 64 MiB)";
    $sock->blocking(1);
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
}

# ---- the script's process group ---------------------------------------------
# A script leads a process group of its own in the keeper's session (not a
# session of its own: its own session would be a scheduler autogroup of its
# own, docs/ARCHITECTURE.md). What it starts in that group ends with the
# session, whether the script exits at EOF (the keeper kills the rest of the
# group) or has to be signalled (SIGTERM, with SIGCONT for what is stopped,
# and SIGKILL go to the group), and the keeper, which is not in the group,
# runs on.

# (ppid, process group, session, state) of a process, from /proc; () if gone.
sub proc_ids {
    my($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return ();
    my $stat = <$fh> // '';
    my($state, @ids) = $stat =~ /^\d+ \(.*\) (\S) (\d+) (\d+) (\d+) /s or return ();
    return (@ids, $state);
}

# /ws/group: (connection, pids of the script, `sleep 1000`, the shell that
# reports SIGTERM, the one that stopped itself first).
sub group_session {
    my($path) = @_;
    my $ws = WSClient->connect($path, [], $port);
    is $ws->status, 101, "$path: 101";
    my $f = $ws->recv_message(10);
    my @pids = ($f && $f->{payload} // '') =~ /^(\d+) (\d+) (\d+) (\d+)$/;
    ok @pids == 4, "... the script reports its pid and its three children's (@pids)";
    ok WSClient::eventually(5, sub { ((proc_ids($pids[3] // 0))[3] // '') eq 'T' }),
        '... the one that sent itself SIGTSTP is stopped';
    return ($ws, @pids);
}

sub all_gone {
    my $gone = !grep { !process_gone($_) } @_;
    diag join ' ', map { "$_: " . (process_gone($_) ? 'gone' : 'running') } @_ unless $gone;
    return $gone;
}

{
    my($ws, $script, @kids) = group_session('/ws/group');
    my($keeper, $pgrp, $sess) = proc_ids($script);
    my(undef, $k_pgrp, $k_sess) = proc_ids($keeper // 0);
    is $pgrp, $script, '... the script leads its own process group';
    ok $sess && $sess != $script && $k_sess && $sess == $k_sess,
        "... but not a session: it is in its keeper's (" . ($keeper // '?') . ') session';
    ok $k_pgrp && $k_pgrp != $script, "... and the keeper is not in the script's group";
    is_deeply [ map { (proc_ids($_))[1] // 'gone' } @kids ], [ ($script) x 3 ],
        "... the script's children are in its group";
    $ws->send_text('x');
    my $f = $ws->recv_message(10);
    is $f && $f->{payload}, 'x', '... echoes';
    my $t0 = time;
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close';
    ok WSClient::eventually(10, sub { process_gone($script) }), '... the script exits at EOF';
    ok WSClient::eventually(10, sub { !grep { !process_gone($_) } @kids }) || all_gone(@kids),
        sprintf '... and the children it left in its group are gone %.1f s after the close',
                time - $t0;
    ok !process_gone($keeper), '... the keeper, which killed them, runs on';
}
{
    my $off = WSClient::log_offset();
    my($ws, $script, $sleeper, $trapper, $stopped) = group_session('/ws/group?stay');
    my $fp = fingerprint_of($ws, $off);
    my($keeper) = proc_ids($script);
    my $t0 = time;
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close; the script stays after EOF and ignores SIGTERM';
    ok scalar(WSClient::wait_log(
        qr/\[\Q$fp\E\] script stderr: group: child \Q$trapper\E got TERM/, 10, $off)),
        "... SIGTERM reached the script's child (its stderr line in the error log)";
    ok scalar(WSClient::wait_log(
        qr/\[\Q$fp\E\] script stderr: group: child \Q$stopped\E got TERM/, 5, $off)),
        '... and the stopped child, which SIGCONT let see it';
    my @all = ($script, $sleeper, $trapper, $stopped);
    ok WSClient::eventually(10, sub { !grep { !process_gone($_) } @all }) || all_gone(@all),
        sprintf '... the script (SIGKILL) and its children are gone %.1f s after the close',
                time - $t0;
    ok scalar(WSClient::wait_log(qr/WS02023: \[\Q$fp\E\] script killed by signal 9$/m, 5, $off)),
        '... SIGKILL ended the script (error log)';
    ok !process_gone($keeper), '... the keeper, which signalled the group, runs on';
}

# ---- the abandoned session ended ---------------------------------------------

{
    my $gone = WSClient::eventually(25 - (time - $ab_dropped), sub { process_gone($ab_pid) });
    ok $gone, sprintf('abandoned session: its script (pid %d, ignores SIGTERM) is gone'
                      . ' %.1f s after the drop', $ab_pid, time - $ab_dropped);
    my($term) = WSClient::wait_log(
        qr/\[\Q$ab_fp\E\] script stderr: (pid-ignore-term: got TERM)/, 5, $abandon_log);
    ok $term, '... it got SIGTERM first (its stderr says so in the error log)';
    ok scalar(WSClient::wait_log(qr/WS02003: \[\Q$ab_fp\E\] script ignored SIGTERM, sending SIGKILL/,
                                 5, $abandon_log)),
        '... then SIGKILL (error log)';
    # logged after the keeper reaped it: what really ended it
    ok scalar(WSClient::wait_log(qr/WS02023: \[\Q$ab_fp\E\] script killed by signal 9$/m,
                                 5, $abandon_log)),
        '... and SIGKILL is what ended it (the reaped status, error log)';
    my $ws = WSClient->connect('/ws/pid-ignore-term', [ 'Session-ID' => $ab_id ], $port);
    is $ws->status, 410, '... its Session-ID: 410';
    is $ws->header('WebSession-Error'), 'session-unknown', '... session-unknown';
    $ws->drop;
}

# ---- no Session-ID secret in any log ------------------------------------------------
# WSClient records every Session-ID a 101 answer carried (this file and the
# tests before it).

{
    my %ids;
    if (open my $fh, '<', WSClient::ids_file()) {
        while (<$fh>) {
            chomp;
            # the secret of an id, routed (<secret>.<route>) or not
            $ids{$1} = 1 if /^([A-Za-z0-9_-]{32})(?:\.[A-Za-z0-9_-]{1,32})?$/;
        }
    }
    ok $ids{$ab_id} && WSClient::log_since(0) =~ /WS00005: \[\Q$ab_fp\E\] new session/,
        "the error log names a new session by its fingerprint ($ab_fp for the abandoned"
        . ' session); its Session-ID is among the ' . scalar(keys %ids) . ' checked here';
    for my $log ('error_log', 'access_log') {
        my $text = WSClient::log_since(0, $log);
        # whole ids, and their first 24 characters (a truncated id, as
        # 11_sessions.t sends one, is still most of the secret)
        my @leaked = grep { index($text, substr($_, 0, 24)) >= 0 } sort keys %ids;
        ok length($text) > 0 && !@leaked,
            "no Session-ID secret (nor its first 24 characters) appears in $log"
            . (@leaked ? " (leaked: @leaked)" : '');
    }
}
