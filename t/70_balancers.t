# Sessions routed by real load balancers (docs/BALANCERS.md): two nodes
# (httpd with this module, WebSessionRoute node1 / node2) behind Apache's
# mod_proxy_balancer, HAProxy and nginx, each configured with the recipe in
# docs/examples/. t/clients/balancers.py starts them all on loopback ports
# of its own (not this suite's httpd), opens 100 sessions per path through
# each front (Session-ID header WebSocket, websession.v1 WebSocket, sse,
# poll; t/browser/balancers.mjs: the library's WebSocket in Chromium), cuts
# every connection, re-attaches every session in random order (each must
# reach its node, its script's count must go on), then kills node2: its
# sessions end with 410 / 4410 at their first re-attach (the library fires
# sessionlost), node1's go on. No secret in any front's or node's log.
# Sizes: BALANCE_SESSIONS, BALANCE_BROWSER_SESSIONS, BALANCE_FAILOVER.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my $top = Apache::Test::vars('top_dir');
my @need = (
    { 'no haproxy (Debian package haproxy; tools/install-deps.sh installs it)' => !!grep { -x "$_/haproxy" } split(/:/, "$ENV{PATH}:/usr/sbin") },
    { 'no nginx (Debian package nginx; tools/install-deps.sh installs it)' => !!grep { -x "$_/nginx" } split(/:/, "$ENV{PATH}:/usr/sbin") },
    { 'no /usr/bin/python3 with websockets (python3-websockets)' =>
          system('/usr/bin/python3 -c "import websockets" 2>/dev/null') == 0 },
);
my @CHECKS = map { my $f = $_; (
    [ "${f}_open"        => "$f: 100 sessions per path opened through the front" ],
    [ "${f}_ids_routed"  => "$f: every id names the node that answered (<secret>.nodeN)" ],
    [ "${f}_reattach"    => "$f: every connection cut, every session re-attached in random order: 100/100 per path reach their node, no message lost" ],
    [ "browser_${f}_reattach" => "$f: the library's WebSocket in Chromium (routeParam; the cookie is the last session's): all re-attached to their node" ],
) } qw(apache haproxy nginx);
push @CHECKS, (
    [ failover_open       => 'failover: sessions on both nodes through every front and path' ],
    [ node2_crashed       => 'every process of node2 killed at once (a crash)' ],
    [ failover_node2_410  => "node2's sessions end with 410 (header) / 4410 (websession.v1, sse, poll) at their first re-attach, through every front" ],
    [ failover_node1_go_on => "node1's sessions carry on" ],
    (map { [ "browser_${_}_failover" => "$_: in Chromium, node2's sessions fire sessionlost (4410), node1's carry on" ] }
     qw(apache haproxy nginx)),
    [ no_secret_in_logs   => 'no secret (nor its first 24 characters) in any log of the fronts and nodes (httpd trace8 but http/proxy_http trace3, HAProxy http log, nginx info)' ],
);

plan tests => 2 + @CHECKS, need need_module('websession'), @need;

my $r = run_python_checks(
    cmd => ['timeout', '300', '/usr/bin/python3', catfile($top, 't', 'clients', 'balancers.py')],
    checks => \@CHECKS, assert_summary => 1);
ok $r->{rc} == 0 && !@{ $r->{summary}{errors} || [] },
   sprintf('balancers.py exited 0 without errors (%.0f s)', $r->{seconds})
    or client_diag($r);
# the routing counts per balancer and path, and the failover's
my ($counts) = $r->{output} =~ /^counts: (.*)$/m;
note "routing and failover counts: $counts" if $counts;
