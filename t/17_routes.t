# Routed session ids (docs/PROTOCOL.md, "Session ids"; docs/DIRECTIVES.md,
# WebSessionRoute and WebSessionRouteCookie) on two virtual hosts that stand
# for two nodes of a balanced site: websession_node1 (route node1, cookie
# ROUTEID) and websession_node2 (route node2, cookie WSROUTE, always
# Secure). Ids are <secret>.<route> in the Session-ID header, in the
# websession.v1 I message and on the HTTP fallback; the cookie carries only
# ".<route>", on the answer that starts a session and on no other; an id
# naming another route is answered as an unknown session (410, 4410 in
# band) even when its secret is a live session's; an id without its route
# still re-attaches; a malformed route is a malformed id. The multi-node
# runs behind real balancers are t/70_balancers.t.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use IO::Socket::INET;
use WSClient;

plan tests => 32, need_module('websession');

my $vars  = Apache::Test::vars();
my $port1 = $vars->{websession_node1_port};
my $port2 = $vars->{websession_node2_port};
my $SECRET = qr/[A-Za-z0-9_-]{32}/;

sub ws {
    my($port, @h) = @_;
    return WSClient->connect('/ws/echo', [@h], $port);
}

sub roundtrip {
    my($ws, $send) = @_;
    $ws->send_text($send);
    my $f = $ws->recv_message(10);
    return $f ? $f->{payload} : '(nothing)';
}

# A close frame's code, or undef.
sub close_code {
    my($ws) = @_;
    my $f = $ws->recv_frame(5);
    return undef unless $f && $f->{type} eq 'close';
    return unpack 'n', $f->{payload};
}

# The head of a plain HTTP request's answer: (status, {lower-case name =>
# [values]}).  The socket stays open (an event stream does not end).
sub http_head {
    my($port, $method, $headers, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 10) or die "connect: $!";
    my $req = "$method /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for @$headers;
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $req .= "\r\n" . ($body // '');
    print $s $req;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread $s, $head, 4096, length $head;
        last unless $n;
    }
    my($status) = $head =~ m{^HTTP/1\.\d (\d+)};
    my %h;
    for (split /\r\n/, $head) {
        push @{ $h{lc $1} }, $2 if /^([^:]+):\s*(.*)$/;
    }
    close $s;
    return ($status // 0, \%h);
}

# ---- ids, cookies -----------------------------------------------------------

my $a = ws($port1);
is $a->status, 101, 'node1: new plain session: 101';
my $id = $a->session_id // '';
like $id, qr/\A$SECRET\.node1\z/, "... its Session-ID is <secret>.node1 ($id)";
my($secret) = $id =~ /\A($SECRET)/;
$secret //= 'x';
is_deeply [ $a->header('set-cookie') ], ['ROUTEID=.node1; Path=/; HttpOnly; SameSite=Lax'],
    '... Set-Cookie ROUTEID=.node1; Path=/; HttpOnly; SameSite=Lax (no Secure on plain HTTP)';
unlike $a->header('set-cookie') // '', qr/\Q$secret\E/, '... the cookie holds nothing of the secret';
is roundtrip($a, 'one'), 'one', '... echoes';
$a->drop;

my $b = ws($port1, 'Session-ID' => $id);
is $b->status, 101, 're-attach with the routed id on its node: 101';
ok !defined $b->header('set-cookie') && !defined $b->session_id,
   '... without Set-Cookie or Session-ID (only a new session sets them)';
is roundtrip($b, 'two'), 'two', '... the same session echoes';
$b->drop;

my $c = ws($port1, 'Session-ID' => $secret);
is $c->status, 101, 'the id without its route still re-attaches (ids made before WebSessionRoute)';
$c->drop;

my $d = ws($port1, 'Session-ID' => "$secret.node2");
is $d->status, 410, 'the live secret under another route (node2) on node1: 410';
is $d->header('websession-error'), 'session-unknown', '... session-unknown, as for an unknown session';
my $e = ws($port1, 'Session-ID' => "$secret.none");
is $e->status, 410, '... and under a route no node has: 410';

for my $bad ("$secret.", "$secret.no.de", "$secret.n\x{2b}1", "$secret." . ('r' x 33)) {
    (my $show = $bad) =~ s/\A$SECRET/<secret>/;
    my $m = ws($port1, 'Session-ID' => $bad);
    is $m->status, 400, "malformed route '$show': 400";
}

my $f = ws($port1, 'Session-ID' => $id);
is roundtrip($f, 'three'), 'three', 'after all that, the session still runs';
$f->close_clean;

# ---- websession.v1: the I message, 4410 in band ----------------------------------

my $v = ws($port2, 'Sec-WebSocket-Protocol' => 'websession.v1');
is $v->status, 101, 'node2: new websession.v1 session: 101';
my $i = $v->recv_message(5);
my $vid = $i && $i->{payload} =~ /\AI(.*)\z/ ? $1 : '';
like $vid, qr/\A$SECRET\.node2\z/, '... its I message carries <secret>.node2';
is $v->session_id, $vid, '... the same id as its Session-ID header';
is_deeply [ $v->header('set-cookie') ], ['WSROUTE=.node2; Path=/; HttpOnly; SameSite=Lax; Secure'],
    '... Set-Cookie WSROUTE=.node2 with Secure (WebSessionRouteCookie WSROUTE Secure)';
$v->drop;

my($vsecret) = $vid =~ /\A($SECRET)/;
$vsecret //= 'x';
my $w = ws($port2, 'Sec-WebSocket-Protocol' => "websession.v1, websession.id.$vsecret.node1");
is $w->status . ' ' . (close_code($w) // 'none'), '101 4410',
   'its secret under route node1 on node2, in the protocol token: 101, then close 4410';
my $x = ws($port2, 'Sec-WebSocket-Protocol' => "websession.v1, websession.id.$vid");
is $x->status, 101, '... with its own route: resumed';
my $r = $x->recv_message(5);
like $r ? $r->{payload} : '', qr/\AR\d+/, '... (the server says R)';
$x->close_clean;

# ---- the HTTP fallback -----------------------------------------------------

my($st, $h) = http_head($port1, 'GET', [ ['WebSession-Transport', 'poll'],
                                         ['WebSession-Received', '0'],
                                         ['WebSession-Poll', 'open'] ]);
my $pid = ($h->{'session-id'} // [''])->[0];
ok $st == 200 && $pid =~ /\A$SECRET\.node1\z/, "new poll session on node1: 200, Session-ID <secret>.node1";
is_deeply $h->{'set-cookie'}, ['ROUTEID=.node1; Path=/; HttpOnly; SameSite=Lax'],
    '... the route cookie on the fallback\'s first answer';
my($psecret) = $pid =~ /\A($SECRET)/;
$psecret //= 'x';
($st, $h) = http_head($port1, 'POST', [ ['WebSession-Transport', 'poll'],
                                        ['Session-ID', "$psecret.node2"],
                                        ['WebSession-Sequence', '1'] ], "T 4\nDhi\n");
is "$st " . (($h->{'websession-error'} // [''])->[0]), '410 session-unknown',
   '... its secret under route node2 in a POST: 410 session-unknown';

# ---- logs ------------------------------------------------------------------

my $log = WSClient::log_since(0);
like $log, qr/WS00070: Session-ID is for route node2, this server's is node1/,
     'the error log says which route a refused id named (the route only)';
my @leaked = grep { index($log, $_) >= 0 || index(WSClient::log_since(0, 'access_log'), $_) >= 0 }
             ($secret, $vsecret, $psecret);
ok !@leaked, 'no secret of this file in error_log or access_log';

# The status page names each node's route (t/70_status.t tests the rest).
{
    my @auth = (username => 'admin', password => 'status-test');
    my $j = Apache::TestRequest::GET("http://127.0.0.1:$port1/websession-status?format=json", @auth);
    like $j->content, qr/"route": "node1"/, "node1's status page (JSON): route node1";
    my $p = Apache::TestRequest::GET("http://127.0.0.1:$port2/websession-status?format=prometheus",
                                     @auth);
    like $p->content, qr/^websession_node_info\{route="node2"\} 1$/m,
        "node2's (Prometheus): websession_node_info{route=\"node2\"} 1";
    my $h = Apache::TestRequest::GET("http://127.0.0.1:$port1/websession-status", @auth);
    like $h->content, qr{Route \(WebSessionRoute\): <code>node1</code>}, '... and its HTML page';
}
