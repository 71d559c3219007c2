# WebSessionMaxRelays: a session connection the worker must relay (TLS
# here; HTTP/2 streams alike) holds an httpd worker thread while it lasts,
# so there may be at most that many at once, and ordinary requests keep
# being answered. The test server runs 8 worker threads (MaxRequestWorkers
# 8 in t/conf/extra.conf.in), so 'auto' allows 4: the client holds 4 idle
# wss:// sessions, sees the 5th (and an sse stream over TLS) refused with
# 503 too-many-relays and Retry-After, pages on both ports answered within
# 1 s, plain ws:// sessions not counted, and a closed session's place free.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;
use WSClient;

my @CHECKS = (
    [ held                => '4 idle wss:// sessions (WebSessionMaxRelays auto: half of 8 threads)' ],
    [ refused_503         => '... a 5th: 503' ],
    [ refused_token       => '... WebSession-Error: too-many-relays' ],
    [ refused_retry_after => '... Retry-After: 5' ],
    [ refused_sse         => '... an sse down request over TLS is refused alike' ],
    [ plain_get_fast      => 'a page on the plain port is answered within 1 s meanwhile' ],
    [ tls_get_fast        => '... and over TLS' ],
    [ plain_ws_unbounded  => 'a ws:// session (handed over, not relayed) is not refused' ],
    [ held_still_work     => 'the held sessions still echo' ],
    [ freed_on_close      => 'closing one lets a new wss:// session in' ],
);

my $vars     = Apache::Test::vars();
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');
my $python   = '/usr/bin/python3';
my $client   = catfile($vars->{top_dir}, 't', 'clients', 'relay_bound.py');

plan tests => 3 + @CHECKS, need
    need_module('websession'),
    { 'no TLS virtual host (mod_ssl)' => !!$tls_port,
      "no certificate $crt"           => -s $crt };

my $log0 = WSClient::log_offset();
my @cmd = ('timeout', '120', $python, $client, '--host', '127.0.0.1',
           '--tls-port', $tls_port, '--plain-port', $vars->{port}, '--cafile', $crt,
           '--limit', 4, '--deadline', 100);
my $r = run_python_checks(cmd => \@cmd, checks => \@CHECKS, assert_summary => 1);
is $r->{rc}, 0, 'client exits 0, no unexpected errors'
    or client_diag($r);
ok scalar(WSClient::wait_log(qr/(WS00048: WebSessionMaxRelays \(4\) connections are relayed)/,
                             5, $log0)),
    'the refusal is logged with the limit (WS00048)';
