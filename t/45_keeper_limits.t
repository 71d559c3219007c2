# Robustness limits of a session's keeper (issue 10), measured against the
# real server by t/clients/keeper_limits.py, which prints a JSON list of
# named checks (each detail carries the figure measured); each becomes one
# assertion here.  The limits are named constants at the top of the client.
#
#  1. floods: a client that sends 125-byte pings back to back (200 MiB or
#     3 s) and reads nothing: the keeper's RSS (VmRSS, sampled every 20 ms)
#     stays within WebSessionBuffer + 1 MiB of what it was before, and the
#     session then echoes; plain and websession.v1, and pong and close-frame
#     floods (a close frame is answered once, then the connection ends);
#  2. the window: a websession.v1 client that never acknowledges receives at
#     most WebSessionBuffer (4096 here) bytes of data, plus
#     WINDOW_EXTRA_MESSAGES messages, from a script writing continuously
#     (/limits-firehose) and from cat echoing what the client sends
#     (/limits-small); acknowledging, more comes;
#  3. a root process connected to the keeper's abstract socket that sends
#     nothing for 5 s: the keeper's live session does a round trip every
#     100 ms meanwhile, each under 50 ms; and the same with 12 such
#     connections at once;
#  4. an sse session on /limits-ticker (writes a timestamped tick every
#     100 ms): while a POST's body trickles in over 5 s, every tick arrives
#     within 200 ms of being written (the keeper is not frozen), and the
#     POST gets 200 "A1" and its message comes down exactly once;
#  5. bulk: 300 x 32 KiB and 3,000 x 1 KiB back to back through /bin/cat
#     (framed; lines too for 1 KiB) with the reference client
#     (tools/websession_client.py) over WebSocket (websession.v1), sse and
#     poll, plain and TLS (5 runs each over WebSocket, 2 over HTTP): every message back in order, never
#     more than 1 s without one arriving (a run stalled for 3 s is given up;
#     its detail says where the session stands: TCP queues, what the script
#     is blocked in).
#
# Needs in t/conf/extra.conf.in the <Location /limits-*> blocks (small
# buffer framed cat, firehose, framed cat, lines cat, ticker) and the
# scripts t/htdocs/ws/firehose and t/htdocs/ws/ticker.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my @FLOOD = map {
    my($k, $what) = @$_;
    ([ "flood_${k}_rss"   => "$what, never reading: keeper RSS within WebSessionBuffer + 1 MiB of before" ],
     [ "flood_${k}_after" => $k eq 'close_plain'
           ? '... one close frame (1000) comes back, then the connection ends'
           : '... reading again: the session echoes' ]);
} [ ping_plain  => 'plain WebSocket on /limits-small: ping flood (125-byte pings, 200 MiB or 3 s)' ],
  [ ping_v1     => 'websession.v1 on /limits-small: ping flood' ],
  [ pong_plain  => 'plain WebSocket: unsolicited pong flood' ],
  [ close_plain => 'plain WebSocket: close-frame flood' ];

my @CHECKS = (
    @FLOOD,
    [ window_firehose         => 'v1 on /limits-firehose (WebSessionBuffer 4096), never acknowledging: at most the window (+ WINDOW_EXTRA_MESSAGES) of data' ],
    [ window_firehose_resumes => '... acknowledging what came, more comes' ],
    [ window_echo             => 'v1 on /limits-small, cat echoing what the client sends within its window, never acknowledging: at most the window of data' ],
    [ silent_local_rtt        => 'a root process connected to the keeper\'s socket, silent for 5 s: every round trip of the session (one per 100 ms) under 50 ms' ],
    [ silent_local_session    => '... and the session echoes afterwards' ],
    [ silent_local_dropped    => '... and the keeper closed the silent connection, unanswered, 3 s after it connected' ],
    [ silent_local_many       => '12 silent local connections at once for 4 s: every round trip under 50 ms, echo afterwards' ],
    [ silent_local_keeps_accepted => '... they push out only each other, never a peer past its HELLO (a worker about to attach)' ],
    [ slow_post_ticks         => 'sse on /limits-ticker, a POST body trickling in over 5 s: every tick meanwhile arrives within 200 ms' ],
    [ slow_post_200           => '... the slow POST is answered 200 "A1"' ],
    [ slow_post_once          => '... and its message comes down exactly once' ],
);
my @TRANSPORTS = ([ ws => 'WebSocket' ], [ sse => 'sse' ], [ poll => 'poll' ],
                  [ wss => 'WebSocket over TLS' ], [ sse_tls => 'sse over TLS' ],
                  [ poll_tls => 'poll over TLS' ]);
my @SHAPES = ([ '32k' => '300 x 32 KiB, framed' ], [ '1k' => '3,000 x 1 KiB, framed' ],
              [ '1k_lines' => '3,000 x 1 KiB, lines' ]);
for my $t (@TRANSPORTS) {
    push @CHECKS, map { [ "bulk_$t->[0]_$_->[0]" =>
        "bulk $_->[1], $t->[1]: all back in order, no gap over 1 s" ] } @SHAPES;
}

my $vars     = Apache::Test::vars();
my $python   = '/usr/bin/python3';
my $client   = catfile($vars->{top_dir}, 't', 'clients', 'keeper_limits.py');
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');

plan tests => 2 + @CHECKS, need
    need_module('websession'),
    { "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

my $have_tls = $tls_port && -s $crt;
my @cmd = ('timeout', '200', $python, $client, '--host', '127.0.0.1',
           '--port', $vars->{port}, '--logdir', $vars->{t_logs},
           '--timeout', 10, '--deadline', 180,
           ($have_tls ? ('--tls-port', $tls_port, '--cafile', $crt) : ()));
my $r = run_python_checks(
    cmd => \@cmd, checks => \@CHECKS, assert_summary => 1,
    skip => sub {
        $_[0] =~ /^bulk_(wss|\w+_tls)_/ && !$have_tls && 'no TLS virtual host (mod_ssl) or no certificate';
    });

# The figures of the checks that passed (those that failed are in the diag).
note "$_->{name}: $_->{detail}" for grep { $_->{ok} } @{ $r->{summary}{checks} || [] };

my @unlisted = @{ $r->{unlisted} };
ok !@unlisted && !@{ $r->{summary}{errors} || [] },
    'no unexpected errors in the client, no check left unlisted'
    or client_diag($r, "checks not in this file: @unlisted");
