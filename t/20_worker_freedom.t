# Worker freedom: a session on plain TCP holds no httpd worker thread once
# its socket is handed to the keeper. The test server has 8 worker threads
# in all (t/conf/extra.conf.in); 100 sessions to /ws/echo are opened and
# kept open, then every one of them must still echo, plain GETs must be
# answered (each within a few seconds) while they are all open, and all
# 100 must close with a complete close handshake. If sessions held worker
# threads, the 9th handshake would already wait forever.
#
# The client is node-ws (t/clients/many_sessions.js), a second client
# implementation next to the Perl tests; it prints a one-line JSON summary.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use JSON::PP ();
use Time::HiRes qw(sleep time);

my $SESSIONS = 100;
my $GETS     = 20;
my $GET_SECS = 10;      # each GET must be answered within this

my $vars   = Apache::Test::vars();
my $client = catfile($vars->{top_dir}, 't', 'clients', 'many_sessions.js');
my $node   = (grep { -x } map { catfile($_, 'node') } split /:/, $ENV{PATH} // '')[0];
my $nodews = '/usr/share/nodejs/ws';

plan tests => 14, need
    need_module('websession'),
    { "node is not installed"             => !!$node,
      "node-ws is not installed ($nodews)" => -d $nodews };

# The session table must leave room for 100 sessions (and what earlier
# tests may still hold for WebSessionResumeTimeout).
my $max = max_sessions();
ok defined $max && $max >= $SESSIONS + 20,
    "WebSessionMaxSessions (" . ($max // 'default') . ") leaves room for $SESSIONS sessions"
    or diag "t/conf/extra.conf.in must set WebSessionMaxSessions 128 (or more) for this test";

my $echo_before = count_echo_scripts();

my $port = $vars->{port};
my @cmd = ('timeout', '300', $node, $client,
           '--host', '127.0.0.1', '--port', $port,
           '--sessions', $SESSIONS, '--path', '/ws/echo', '--parallel', 10,
           '--gets', $GETS, '--get-path', '/ws/index.html', '--get-timeout', $GET_SECS,
           '--timeout', 90, '--deadline', 280);
my $t0  = time;
my $out = qx{@cmd 2>&1};
my $rc  = $? >> 8;
my $secs = time - $t0;
my ($line) = grep { /^\{/ } split /\n/, $out;
my $s = eval { JSON::PP->new->decode($line // '') };

is $rc, 0, sprintf 'node client exits 0 (%.1f s)', $secs
    or diag "client output:\n$out";
ok $s, 'client printed its JSON summary' or diag "client output:\n$out";
$s ||= {};
diag "client errors:\n  " . join("\n  ", @{ $s->{errors} }) if @{ $s->{errors} || [] };

is $s->{opened}, $SESSIONS, "$SESSIONS sessions opened with 8 worker threads in total"
    or diag 'refused handshakes by status: ' . JSON::PP->new->canonical->encode($s->{open_fail_status} || {});
is $s->{with_id}, $SESSIONS, '... each 101 carries a Session-ID';
is $s->{distinct_ids}, $SESSIONS, '... all different';
is $s->{echoed}, $SESSIONS, "with all $SESSIONS open, every one echoes its own message";
is $s->{gets_ok}, $GETS, "meanwhile $GETS GETs of /ws/index.html are answered (200, the page),"
                       . " each within $GET_SECS s";
is $s->{unexpected_close}, 0, '... no session is closed by the server meanwhile';
is $s->{open_after_echo}, $SESSIONS, "all $SESSIONS are still open afterwards";
is $s->{closed}, $SESSIONS, "all $SESSIONS close handshakes complete";
is $s->{close_codes}{1000}, $SESSIONS, '... each answered with close code 1000'
    or diag 'close codes: ' . JSON::PP->new->canonical->encode($s->{close_codes} || {});
note sprintf 'client timings (ms): %s; slowest GET %s ms',
    JSON::PP->new->canonical->encode($s->{ms} || {}), $s->{get_max_ms} // '?';

# The sessions end with their close handshakes: their scripts go away.
my $left = poll_until(20, sub { count_echo_scripts() <= $echo_before });
ok $left, "the echo scripts of the closed sessions exit (within 20 s)"
    or diag sprintf '%d echo scripts before, %d now', $echo_before, count_echo_scripts();

# And the server is still fine afterwards.
{
    require Apache::TestRequest;
    my $r = Apache::TestRequest::GET('/ws/index.html');
    is $r->code, 200, 'GET /ws/index.html afterwards: 200';
}

# WebSessionMaxSessions from the generated configuration (undef: not set,
# the module's default of 1024 applies).
sub max_sessions {
    my $conf = catfile($vars->{t_conf}, 'extra.conf');
    open my $fh, '<', $conf or return undef;
    my $v;
    while (<$fh>) {
        $v = $1 if /^\s*WebSessionMaxSessions\s+(\d+)/i;
    }
    return $v // 1024;
}

# Scripts of /ws/echo: `exec cat` children of keepers (the keeper is the
# script's parent, keepers are children of the spawner). Counted as cat
# processes whose parent's parent is the spawner, run by httpd's user.
sub count_echo_scripts {
    my %ppid;
    my %args;
    for (`ps -eo pid=,ppid=,args=`) {
        my ($pid, $ppid, $args) = /^\s*(\d+)\s+(\d+)\s+(.*)$/ or next;
        $ppid{$pid} = $ppid;
        $args{$pid} = $args;
    }
    my $spawner = spawner_pid() or return 0;
    return scalar grep {
        $args{$_} =~ m{^(?:/usr)?/bin/cat\s*$|^cat\s*$}
            && ($ppid{ $ppid{$_} // 0 } // 0) == $spawner
    } keys %args;
}

# The spawner announces itself in the error log ("WS01004: spawner <pid> ready").
sub spawner_pid {
    my $log = catfile($vars->{t_logs}, 'error_log');
    open my $fh, '<', $log or return undef;
    my $pid;
    while (<$fh>) {
        $pid = $1 if /WS01004: spawner (\d+) ready/;
    }
    return $pid && kill(0, $pid) ? $pid : undef;
}

sub poll_until {
    my ($secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        return 1 if $cond->();
        return 0 if time > $end;
        sleep 0.2;
    }
}
