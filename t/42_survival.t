# websession.v1 sessions survive the loss of httpd worker processes: the
# session lives in its keeper (a child of the spawner), not in the worker
# that accepted the connection.
#
# (a) plain TCP: a session on /ws/count (reference client,
#     tools/websession_client.py); every httpd worker child is SIGKILLed
#     while it is open; the keeper owns the socket, so the same connection
#     goes on counting; then resumes through the replacement workers, also
#     right after killing them again.
# (b) TLS (the worker relays the connection): a wss:// session on
#     /ws/chaos-echo; the workers are SIGKILLed again and again while
#     numbered messages flow both ways; the relayed connection dies with
#     its worker, the client resumes, every number arrives exactly once
#     and in order.
# (c) child recycling: an httpd of its own, a copy of the harness's
#     configuration with MaxConnectionsPerChild 1 (own ports, logs, pid
#     file, runtime directory), so every connection lands in a fresh child:
#     a session with 30 forced reconnects counts on; stopping that httpd
#     leaves no process behind.
#
# The work is done by t/clients/survival.py, which prints a JSON list of
# named checks. Worker children are httpd's children that run threads,
# other than the session spawner; mod_cgid's daemon is left alone.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use Time::HiRes qw(sleep time);
use lib "$FindBin::Bin/lib";
use CheckRun;
use PrivateHttpd qw(get_ok alive poll_until);

my $vars     = Apache::Test::vars();
my $port     = $vars->{port};
my $tls_port = $vars->{websession_ssl_port};
my $t_logs   = $vars->{t_logs};
my $crt      = catfile($t_logs, 'ssl', 'server.crt');
my $pidfile  = catfile($t_logs, 'httpd.pid');
my $errlog   = catfile($t_logs, 'error_log');
my $python   = '/usr/bin/python3';
my $client   = catfile($vars->{top_dir}, 't', 'clients', 'survival.py');

my @PLAIN = (
    [ plain_before                => '(a) ws:// /ws/count: "p1".."p5" -> "1 p1".."5 p5"' ],
    [ plain_killed                => '... SIGKILL to every httpd worker child: they are gone within 10 s' ],
    [ plain_same_connection       => '... the same connection counts on: "6 p6".."10 p10", no reconnect' ],
    [ plain_replaced              => '... httpd starts new workers (within 20 s)' ],
    [ plain_resume_after          => '... dropped, resumed through them: "11 p11".."13 p13"' ],
    [ plain_resume_while_replaced => '... workers killed again and dropped at once: resumed, "14 p14".."16 p16"' ],
);
my @TLS = (
    [ tls_kills        => '(b) wss:// /ws/chaos-echo: every worker SIGKILLed, 5 times while messages flow' ],
    [ tls_resumed      => '... the relayed connection died and the client resumed' ],
    [ tls_echoes_exact => '... 2000 messages to the script came back exactly once, in order' ],
    [ tls_stream_exact => "... the script's own 2000 arrived exactly once, in order" ],
);
my @RECYCLE = (
    [ recycle_started    => '(c) an httpd with MaxConnectionsPerChild 1 starts' ],
    [ recycle_counts     => '... /ws/count with 30 forced reconnects: "1 r1".."31 r31"' ],
    [ recycle_reconnects => '... the client resumed 30 times' ],
    [ recycle_children   => '... the re-attaches were served by fresh children' ],
    [ recycle_stopped    => '... stopping it: httpd, spawner, keepers and scripts gone within 10 s' ],
);

plan tests => 2 + @PLAIN + 1 + @TLS + 1 + @RECYCLE, need
    need_module('websession'),
    { "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

# Run the client; one assertion per check it reports, one for its status.
sub run_client {
    my ($title, $checks, @args) = @_;
    my $r = run_python_checks(cmd => ['timeout', 120, $python, $client, @args],
                              checks => $checks);
    ok $r->{rc} == 0 && $r->{summary}{ok},
        sprintf '%s: client exits 0, no errors (%.1f s)', $title, $r->{seconds}
        or diag "client output:\n$r->{output}";
    return $r->{summary};
}

# ---------------------------------------------------------------------------
# (a) and (b) on the harness's httpd

run_client('(a)', \@PLAIN, 'plain', '--port', $port, '--pidfile', $pidfile,
           '--errlog', $errlog);
ok get_ok($port), '(a) httpd answers a GET afterwards';

SKIP: {
    skip 'no TLS virtual host or certificate', @TLS + 1 unless $tls_port && -s $crt;
    my $s = run_client('(b)', \@TLS, 'tls', '--tls-port', $tls_port, '--cafile', $crt,
                       '--pidfile', $pidfile, '--errlog', $errlog, '--messages', 2000);
    note "(b) $s->{kills} rounds, $s->{killed} workers killed, $s->{reconnects} resumes"
        if $s->{kills};
}
ok get_ok($port), '(b) httpd answers a GET afterwards';

# ---------------------------------------------------------------------------
# (c) child recycling, on an httpd of its own

my $recycled = PrivateHttpd->new(edit => \&recycle_edit);
diag 'recycling configuration: ' . PrivateHttpd->error unless $recycled;

SKIP: {
    skip 'cannot make the recycling configuration (see diag)', scalar @RECYCLE unless $recycled;
    my($conf, $r_errlog) = ($recycled->conf, $recycled->errlog);
    my $up = $recycled->start;
    ok $up, sprintf('(c) %s: answers on port %d', $recycled->command('start'), $recycled->port)
        or diag $recycled->output;
    skip 'the recycling httpd did not start', @RECYCLE - 1 unless $up;

    my $logpos = -s $r_errlog;
    my $t0 = time;
    my $r = run_python_checks(
        cmd => ['timeout', 120, $python, $client, 'resumes', '--port', $recycled->port,
                '--resumes', 30, '--leave-open'],
        checks => [ @RECYCLE[1, 2] ]);
    diag "client output:\n$r->{output}" if @{ $r->{failed} };
    # Each re-attach is logged by the worker that took it, with its pid.
    my %pids;
    my $reattached = 0;
    if (open my $fh, '<', $r_errlog) {
        seek $fh, $logpos, 0;
        while (<$fh>) {
            next unless /WS00013:/ && /\[pid (\d+)/;
            $reattached++;
            $pids{$1}++;
        }
    }
    my $distinct = keys %pids;
    ok $reattached >= 30 && $distinct == $reattached,
        sprintf '%s (%d re-attaches in %d processes, %.1f s)', $RECYCLE[3][1],
                $reattached, $distinct, time - $t0
        or diag "re-attaches per process: "
              . join ', ', map { "$_: $pids{$_}" } sort keys %pids;

    # What must end with this httpd: all its descendants (the spawner, the
    # keepers, the scripts; the client left its session waiting).
    my $parent = $recycled->pid;
    my @noted = descendants($parent);
    my ($spawner) = (slurp($r_errlog) // '') =~ /.*WS01004: spawner (\d+) ready/s;
    my @keepers = grep { ppid_of($_) == ($spawner // -1) } @noted;
    my %is_keeper = map { $_ => 1 } @keepers;
    my @scripts = grep { $is_keeper{ ppid_of($_) } } @noted;
    my $t1 = time;
    $recycled->stop;
    my $gone = poll_until(10, sub { !grep { alive($_) } $parent, @noted });
    my @left = grep { alive($_) } $parent, @noted;
    my @mention = grep { cmdline($_) =~ /\Q$conf\E/ } all_pids();
    ok $gone && !@mention && $spawner && @keepers && @scripts,
        sprintf '%s (%.1f s; spawner %s, %d keepers, %d scripts, %d processes in all)',
                $RECYCLE[4][1], time - $t1, $spawner // 'not found', scalar @keepers,
                scalar @scripts, scalar @noted
        or diag 'left: ' . join "\n  ", map { "$_ " . cmdline($_) } @left, @mention;
}

# ---------------------------------------------------------------------------
# helpers

# The recycling httpd's changes to a copy of the harness's configuration
# (PrivateHttpd): MaxConnectionsPerChild 1, and more children standing by:
# httpd replaces exited ones only once a second, so with two a reconnect
# would often wait for one.
sub recycle_edit {
    my($extra) = @_;
    my $m = $$extra =~ s/^(\s*MaxConnectionsPerChild\s+)\d+/${1}1/mg;
    my %more = (StartServers => 8, ServerLimit => 16, MaxRequestWorkers => 64,
                MinSpareThreads => 32, MaxSpareThreads => 64);
    my $k = 0;
    $k += $$extra =~ s/^(\s*$_\s+)\d+/$1$more{$_}/mg for sort keys %more;
    return $m == 1 && $k == keys %more ? ''
         : "$m MaxConnectionsPerChild lines, $k event MPM limits replaced";
}

sub slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    return <$fh>;
}

sub all_pids {
    opendir my $dh, '/proc' or return;
    return grep { /^\d+$/ } readdir $dh;
}

sub ppid_of {
    my $s = slurp("/proc/$_[0]/stat") // return 0;
    return $s =~ /\)\s+\S+\s+(\d+)/ ? $1 : 0;
}

sub cmdline {
    my $c = slurp("/proc/$_[0]/cmdline") // '';
    $c =~ tr/\0/ /;
    return $c;
}

sub descendants {
    my $root = shift or return;
    my %kids;
    push @{ $kids{ ppid_of($_) } }, $_ for all_pids();
    my (@out, @queue);
    @queue = ($root);
    while (@queue) {
        my $p = shift @queue;
        for (@{ $kids{$p} || [] }) { push @out, $_; push @queue, $_ }
    }
    return @out;
}
