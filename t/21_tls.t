# wss:// on the TLS virtual host (websession_ssl in t/conf/extra.conf.in),
# where the keeper cannot take the socket and the worker relays: text echo,
# a 1 MiB text message, text and binary through /framed (a server-wide
# <Location> that must apply to the TLS vhost too), a 1 MiB binary message,
# resuming over TLS with the Session-ID (the count continues), and session
# ids refused across the TLS and plain vhosts (other scheme and port: 410).
#
# The client is Python's websockets (t/clients/tls_echo.py), which prints a
# JSON list of named checks; each becomes one assertion here.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my @CHECKS = (
    [ wss_handshake               => 'wss:// /ws/echo: 101 with a Session-ID over TLS' ],
    [ wss_text_echo               => '... a text message is echoed' ],
    [ wss_text_1mib               => '... a 1 MiB text message is echoed whole' ],
    [ wss_close_1000              => '... close handshake answered with 1000' ],
    [ framed_text                 => 'wss:// /framed (server-wide <Location>): text stays text' ],
    [ framed_binary               => '... binary with every byte value stays binary, intact' ],
    [ framed_binary_1mib          => '... a 1 MiB random binary message is echoed whole' ],
    [ framed_close_1000           => '... close handshake answered with 1000' ],
    [ count_first                 => 'wss:// /ws/count: "a" -> "1 a"' ],
    [ resume_101                  => '... dropped without a close frame, resumed with Session-ID: 101' ],
    [ resume_count_continues      => '... the count continues: "b" -> "2 b"' ],
    [ tls_id_refused_on_plain     => '... that Session-ID on ws:// (plain vhost): 410' ],
    [ tls_id_refused_error        => '... with WebSession-Error: session-unknown' ],
    [ tls_session_survives_refusal => '... and the TLS session goes on: "c" -> "3 c"' ],
    [ plain_id_refused_on_tls     => 'a ws:// session\'s Session-ID on wss://: 410' ],
    [ resumed_close_1000          => 'the resumed TLS session closes with 1000' ],
);

my $vars     = Apache::Test::vars();
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');
my $python   = '/usr/bin/python3';
my $client   = catfile($vars->{top_dir}, 't', 'clients', 'tls_echo.py');

plan tests => 2 + @CHECKS, need
    need_module('websession'),
    { 'no TLS virtual host (mod_ssl)'               => !!$tls_port,
      "no certificate $crt"                         => -s $crt,
      "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

my @cmd = ('timeout', '300', $python, $client,
           '--host', '127.0.0.1', '--tls-port', $tls_port,
           '--plain-port', $vars->{port}, '--cafile', $crt,
           '--timeout', 60, '--deadline', 280);
my $r = run_python_checks(cmd => \@cmd, checks => \@CHECKS, assert_summary => 1);
is $r->{rc}, 0, 'client exits 0, no unexpected errors'
    or client_diag($r);
