# Server starts; non-persistent targets behave exactly as without the
# module; a plain HTTP request to a persistent script gets 426.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);

plan tests => 18;

my $have_ws = have_module('websession');

# --- works with or without mod_websession --------------------------------
{
    my $r = GET '/ws/index.html';
    is $r->code, 200, 'GET /ws/index.html: 200';
    like $r->content, qr/websession test page/, '... the HTML page';
    like $r->header('Content-Type') // '', qr{^text/html}, '... as text/html';
}
{
    my $r = GET '/ws/classic.cgi';
    is $r->code, 200, 'GET /ws/classic.cgi: 200 (classic CGI in a WebSession On dir)';
    is $r->content, "classic cgi ok\n", '... the CGI output';
}
{
    my $r = GET '/off/echo';
    is $r->code, 200, 'GET /off/echo: 200 (WebSession Off declines)';
    like $r->content, qr/OFF-SOURCE/, '... served as a plain file';
}
{
    # the second virtual host serves the same tree on its own port
    my $hostport = Apache::TestRequest::module2url('vhost2', { path => '/ws/index.html' });
    Apache::TestRequest::module('default');   # module2url switched it
    my $r = GET $hostport;
    is $r->code, 200, "second vhost: GET $hostport: 200";
    isnt Apache::Test::vars('vhost2_port'), Apache::Test::vars('port'),
        '... on a port of its own';
}

# --- need mod_websession -------------------------------------------------
SKIP: {
    skip 'mod_websession is not built (.libs/mod_websession.so)', 8
        unless $have_ws;

    for my $url ('/ws/echo', '/ws/count') {
        my $r = GET $url;
        is $r->code, 426, "GET $url without Upgrade: 426 Upgrade Required";
        like $r->header('Upgrade') // '', qr/^websocket$/i, '... with Upgrade: websocket';
        unlike $r->content, qr/SECRET-SOURCE/, '... and never the script source';
    }

    my $r = GET '/ws/notexec.sh';
    is $r->code, 200, 'GET /ws/notexec.sh: 200 (not executable, so not persistent)';
    like $r->content, qr/NOTEXEC-FILE-CONTENT/, '... served as a file';
}

# --- TLS virtual host (mod_ssl), for wss:// tests -------------------------
SKIP: {
    my $port = Apache::Test::vars('websession_ssl_port');
    skip 'no TLS virtual host', 1 unless $port;
    my $crt = Apache::Test::vars('t_logs') . '/ssl/server.crt';
    my $out = `curl -sS --cacert '$crt' https://localhost:$port/ws/index.html 2>&1`;
    like $out, qr/websession test page/, "https://localhost:$port/ws/index.html";
}
