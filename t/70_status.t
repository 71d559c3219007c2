# The status page (SetHandler websession-status, docs/DIRECTIVES.md):
# checked against a known state. The test waits until sessions other files
# left behind have ended, then opens one session that talks, one that is
# dropped (detached), and ends one by each reason (client close, script
# exit, unused timeout, protocol error, the page itself); the JSON page must
# show each figure exactly, the Prometheus text must parse and agree, the
# HTML page must list the sessions, no answer may contain a secret id,
# access follows the site's Require rules, a POST from another site is
# refused, and ending a session from the page closes it with 1001.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET POST);
use JSON::PP ();
use Time::HiRes qw(time sleep);
use WSClient;

plan tests => 43, need_module('websession'), need_module('mod_auth_basic.c');

my $URL  = '/websession-status';
my @AUTH = (username => 'admin', password => 'status-test');

sub status_json {
    my $res = GET "$URL?format=json", @AUTH;
    return $res->code == 200 ? JSON::PP::decode_json($res->content) : undef;
}

sub session_of {
    my($j, $fp) = @_;
    return (grep { $_->{id} eq $fp } @{ $j->{sessions} })[0];
}

# ---- access ----------------------------------------------------------------
is GET($URL)->code, 401, 'no credentials: 401 (the site\'s Require rules)';
is GET($URL, username => 'viewer', password => 'viewer-test')->code, 401,
    'a user the rules do not name: 401';
is GET($URL, username => 'admin', password => 'wrong')->code, 401, 'a wrong password: 401';

# ---- a known state ---------------------------------------------------------
my $quiet = WSClient::eventually(30, sub { my $j = status_json(); $j && $j->{node}{used} == 0 });
ok $quiet, 'sessions other test files left behind have ended (used 0)';
my $t0 = status_json();
my @ids;

my($talk, $talk_fp, $talk_keeper) = WSClient->connect_keeper('/ws/count', []);
push @ids, $talk->session_id;
for my $w (qw(a b)) {
    $talk->send_text($w);
    $talk->recv_message(10);
}
my($away, $away_fp) = WSClient->connect_keeper('/ws/count', []);
push @ids, $away->session_id;
$away->send_text('x');
$away->recv_message(10);
$away->drop;
sleep 0.3;

my $j = status_json();
my $s = $j && session_of($j, $talk_fp);
ok $s, 'the talking session is listed by its fingerprint';
is_deeply $s && { map { $_ => $s->{$_} }
                  qw(state transport connections messages_in bytes_in messages_out bytes_out
                     keeper_pid client) },
    { state => 'attached', transport => 'websocket', connections => 1, messages_in => 2,
      bytes_in => 2, messages_out => 2, bytes_out => 6, keeper_pid => $talk_keeper,
      client => '127.0.0.1' },
    '... with its figures: attached over websocket, 2 messages of 1 byte in, 2 of 3 out,'
    . ' its keeper, its client';
like $s && $s->{target}, qr{^http://\S+:\d+ \S+/ws/count$}, '... and what it runs, where';
ok $s && $s->{script_pid} > 0 && kill(0, $s->{script_pid}), '... and its script\'s pid';
my $a = $j && session_of($j, $away_fp);
is $a && $a->{state}, 'detached', 'the dropped session is listed as detached';
is $j && $j->{node}{used}, 2, 'two slots in use';
is $j && $j->{totals}{started} - $t0->{totals}{started}, 2, 'two sessions started since';

# ---- ending a session from the page: the detached one ----------------------
my $res = POST $URL, [ end => $away_fp ], @AUTH, Origin => 'http://elsewhere.example';
is $res->code, 403, 'a POST with another site\'s Origin: 403';
ok session_of(status_json(), $away_fp), '... and the session is still there';
$res = POST $URL, [ end => 'zz' x 8 ], @AUTH;
is $res->code, 400, 'a POST with a malformed fingerprint: 400';
$res = POST $URL, [ end => '0123456789abcdef' ], @AUTH;
is $res->code, 404, 'a POST naming no session: 404';
$res = POST $URL, [ end => $away_fp ], @AUTH;
is $res->code, 303, 'a POST that ends the detached session: 303 to the page';
is $res->header('Location'), $URL, '... Location: the page';
my $back = WSClient->connect('/ws/count', [ 'Session-ID' => $ids[1] ]);
is $back->status, 410, '... its id is unknown at once (410)';
$back->drop;

# ---- one end by each reason --------------------------------------------------
my $c = $talk->close_clean;
is $c && $c->{code}, 1000, 'the client closes the talking session (1000)';
my $ex = WSClient->connect('/ws/exit-with?3', []);
push @ids, $ex->session_id;
$ex->send_text('go');
my $f = $ex->recv_frame(10);
$ex->drop;
ok $f && $f->{type} eq 'close', 'a script exits by itself';
my $unused = WSClient->connect('/limits-client', [], undef, from => '127.0.0.7');
push @ids, $unused->session_id;
$unused->drop;          # without a word: WebSessionUnusedTimeout 2
my $bad = WSClient->connect('/ws/echo', []);
push @ids, $bad->session_id;
$bad->send_raw("\x81\x03abc");      # unmasked: a protocol error
$f = $bad->recv_frame(10);
$bad->drop;
is $f && $f->{code}, 1002, 'a client breaks the protocol (1002)';
my $refused = WSClient->connect('/ws/count', [ 'Session-ID' => 'A' x 32 ]);
is $refused->status, 410, 'an unknown id is refused';

# An attached session ended from the page: the client sees 1001.
my($live, $live_fp) = WSClient->connect_keeper('/ws/count', []);
push @ids, $live->session_id;
$res = POST "$URL?format=json", [ end => $live_fp ], @AUTH;
is $res->code, 200, 'ending an attached session (format=json): 200';
is eval { JSON::PP::decode_json($res->content)->{ended} }, $live_fp, '... {"ended": fingerprint}';
$f = $live->recv_frame(10);
is $f && $f->{code}, 1001, '... its client gets close 1001';
is $f && $f->{reason}, "ended by the server's administrator", '... saying why';
$live->drop;

my $done = WSClient::eventually(20, sub { my $x = status_json(); $x && $x->{node}{used} == 0 });
ok $done, 'every session of this test has ended';
my $t1 = status_json();
my %d = map { $_ => $t1->{totals}{ended}{$_} - $t0->{totals}{ended}{$_} }
        keys %{ $t1->{totals}{ended} };
is_deeply \%d, { client => 1, script => 1, timeout => 1, error => 1, stop => 0, admin => 2 },
    'sessions ended, by reason: client 1, script 1, timeout 1, error 1, admin 2';
is $t1->{totals}{started} - $t0->{totals}{started}, 6, 'sessions started: 6';
is $t1->{totals}{refused}{'unknown-id'} - $t0->{totals}{refused}{'unknown-id'}, 2,
    'refused as unknown: the made-up id and the id of the session the page ended';

# ---- Prometheus ----------------------------------------------------------------
$res = GET "$URL?format=prometheus", @AUTH;
is $res->code, 200, 'Prometheus text: 200';
like $res->header('Content-Type'), qr{^text/plain; version=0\.0\.4}, '... its content type';
my(%type, %value, @bad);
for my $line (split /\n/, $res->content) {
    if ($line =~ /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/) {
        $type{$2} = $3 if $1 eq 'TYPE';
        push @bad, $line if $1 eq 'TYPE' && $3 !~ /^(counter|gauge)$/;
    }
    elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*)\})? (-?[0-9]+(\.[0-9]+)?)$/) {
        push @bad, "no TYPE before: $line" unless $type{$1};
        $value{$1 . ($2 // '')} = $5;
    }
    else {
        push @bad, $line;
    }
}
is_deeply \@bad, [], '... every line parses (HELP, TYPE, then samples with labels)';
is $value{'websession_sessions_ended_total{reason="admin"}'}, $t1->{totals}{ended}{admin},
    '... ended by the page: as in the JSON';
is $value{websession_sessions_started_total}, $t1->{totals}{started}, '... started: as in the JSON';
is $value{websession_table_slots}, $t1->{node}{capacity}, '... the table size';
is $value{'websession_sessions{state="attached"}'}, 0, '... no session attached now';
my $prom = $res->content;

# ---- HTML, mod_status, and no secret anywhere -----------------------------------------------
my($held, $held_fp) = WSClient->connect_keeper('/ws/count', []);
push @ids, $held->session_id;
my $html = GET $URL, @AUTH;
like $html->header('Content-Type'), qr{^text/html}, 'the HTML page';
like $html->content, qr{<code>$held_fp</code>}, '... lists a session by its fingerprint';
like $html->content, qr{<form method="post"><input type="hidden" name="end" value="$held_fp">},
    '... with a form to end it';
my $json = GET("$URL?format=json", @AUTH)->content;
my $ss = GET('/server-status');
like $ss->content, qr{<h2>mod_websession</h2>}, 'server-status has a mod_websession section';
like GET('/server-status?auto')->content, qr{^WebSessions: \d+$}m, '... and ?auto a line';
my @leaks = grep { my $id = $_; grep { index($_, $id) >= 0 } $html->content, $json, $prom }
            grep { defined } @ids;
is scalar @leaks, 0, 'no answer of the page contains a secret session id';
$held->close_clean;
