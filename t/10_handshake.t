# The WebSocket opening handshake: every malformed upgrade gets a specific
# 4xx answer, a valid one gets 101 with the RFC 6455 accept value; targets
# that are not persistent scripts are served normally; Origin policies.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use WSClient;

plan tests => 170, need_module('websession');

my $port = Apache::Test::vars('port');

# A handshake that must be refused: status, WebSession-Error, extra checks.
sub refused {
    my($name, $path, $headers, $status, $error, %opt) = @_;
    my $ws = WSClient->connect($path, $headers, $port, %opt);
    is $ws->status, $status, "$name: $status";
    is $ws->header('WebSession-Error'), $error, "... WebSession-Error: $error";
    ok !defined $ws->header('Sec-WebSocket-Accept'), '... no Sec-WebSocket-Accept'
        unless $opt{no_accept_check};
    $ws->drop;
    return $ws;
}

# A handshake that must succeed: 101, the right accept value, and a
# working session (one message echoed), closed cleanly afterwards.
sub accepted {
    my($name, $path, $headers, %opt) = @_;
    my $ws = WSClient->connect($path, $headers, $port, %opt);
    is $ws->status, 101, "$name: 101";
    is $ws->header('Sec-WebSocket-Accept'), WSClient::expected_accept($ws->key),
        '... Sec-WebSocket-Accept matches the key';
    if ($ws->status == 101) {
        $ws->send_text('ping-through');
        my $f = $ws->recv_message(10);
        is $f && $f->{payload}, 'ping-through', '... and the script echoes a message';
        my $c = $ws->close_clean;
        is $c && $c->{code}, 1000, '... clean close: 1000';
    }
    else {
        fail '... no session to talk to' for 1 .. 2;
        $ws->drop;
    }
    return $ws;
}

# ---- malformed upgrades ----------------------------------------------------

{
    my $ws = refused('Sec-WebSocket-Version: 8', '/ws/echo',
                     [ 'Sec-WebSocket-Version' => '8' ], 400, 'bad-handshake');
    is $ws->header('Sec-WebSocket-Version'), '13',
        '... and the answer names the supported version (Sec-WebSocket-Version: 13)';
    like $ws->body, qr/Sec-WebSocket-Version/, '... the body explains it';
}
{
    my $ws = refused('no Sec-WebSocket-Version', '/ws/echo',
                     [ 'Sec-WebSocket-Version' => undef ], 400, 'bad-handshake');
    is $ws->header('Sec-WebSocket-Version'), '13', '... with Sec-WebSocket-Version: 13';
}
{
    my $ws = refused('no Sec-WebSocket-Key', '/ws/echo',
                     [ 'Sec-WebSocket-Key' => undef ], 400, 'bad-handshake');
    like $ws->body, qr/Sec-WebSocket-Key/, '... the body names Sec-WebSocket-Key';
}
refused('short Sec-WebSocket-Key (12 bytes)', '/ws/echo',
        [ 'Sec-WebSocket-Key' => 'AAAAAAAAAAAAAAAA' ], 400, 'bad-handshake');
refused('Sec-WebSocket-Key of 17 bytes', '/ws/echo',
        [ 'Sec-WebSocket-Key' => 'AAAAAAAAAAAAAAAAAAAAAAA=' ], 400, 'bad-handshake');
refused('Connection without the upgrade token', '/ws/echo',
        [ Connection => 'keep-alive' ], 400, 'bad-handshake');
{
    my $ws = refused('POST with upgrade headers', '/ws/echo',
                     [ 'Content-Length' => 0 ], 405, 'bad-handshake', method => 'POST');
    is $ws->header('Allow'), 'GET', '... with Allow: GET';
}
{
    my $ws = refused('HTTP/1.0 upgrade', '/ws/echo', [], 400, 'bad-handshake',
                     proto => 'HTTP/1.0');
    like $ws->body, qr{HTTP/1\.1}, '... the body says HTTP/1.1 is needed';
}

# ---- valid upgrades -------------------------------------------------------

{
    # RFC 6455 section 1.3 example
    my $ws = WSClient->connect('/ws/echo',
                               [ 'Sec-WebSocket-Key' => 'dGhlIHNhbXBsZSBub25jZQ==' ], $port);
    is $ws->status, 101, 'RFC 6455 example key: 101';
    is $ws->header('Sec-WebSocket-Accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
        '... Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
    like $ws->header('Upgrade') // '', qr/^websocket$/i, '... Upgrade: websocket';
    like $ws->header('Connection') // '', qr/\bupgrade\b/i, '... Connection: Upgrade';
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close: 1000';
}
accepted('Connection: keep-alive, Upgrade (token list)', '/ws/echo',
         [ Connection => 'keep-alive, Upgrade' ]);
accepted('upper/lower case tokens (Upgrade: WebSocket, Connection: upgrade)', '/ws/echo',
         [ Upgrade => 'WebSocket', Connection => 'upgrade' ]);

# Frames sent right behind the handshake, before the 101 arrives, are not
# lost in the handover to the session's process (small, and more than
# httpd reads in one go).
for my $count (1, 300) {
    my @msgs = map { "early $_ " . ('e' x 1000) } 1 .. $count;
    my $early = join '', map { WSClient::frame_bytes('text', $_) } @msgs;
    my $ws = WSClient->connect('/framed', [], $port, early => $early);
    is $ws->status, 101, sprintf('handshake with %d frames (%d bytes) pipelined behind it: 101',
                                 $count, length $early);
    my @got;
    while (@got < $count) {
        my $f = $ws->recv_message(10) or last;
        last if $f->{eof} || $f->{type} ne 'text';
        push @got, $f->{payload};
    }
    is_deeply \@got, \@msgs, '... every pipelined message is echoed, in order';
    my $c = $ws->close_clean;
    is $c && $c->{code}, 1000, '... clean close: 1000';
}

# More right behind the handshake than an attach may carry (4 MiB): this
# connection gets the close frame 1008 with a reason (not a reset) and the
# error log one line that says so (WS03005); the session itself is not
# touched: resumed, it echoes the next message first, none of the flood.
# Whether httpd's first read after the 101 finds more than 4 MiB waiting is
# a race with the client's writes; with the 6 MiB queued at once in the
# client's send buffer it nearly always does, and an attempt where the
# frames fitted (they are echoed) is made again, up to 5 times.
{
    local $SIG{PIPE} = 'IGNORE';
    my $flood = WSClient::frame_bytes('binary', 'f' x 65536) x 96;     # 6 MiB
    my($ws, $f, $off, $tries);
    for my $try (1 .. 5) {
        $tries = $try;
        $off = WSClient::log_offset();
        $ws = eval { WSClient->connect('/framed', [], $port, early => $flood,
                                       sndbuf => 64 << 20) };
        last unless $ws && $ws->status == 101;
        $f = $ws->recv_frame(10);
        last unless $f && !$f->{eof} && $f->{type} eq 'binary';
        $ws->drop;                  # it all fitted: echoed; again
    }
    is $ws && $ws->status, 101, '6 MiB of frames right behind the handshake: 101';
    my $got = !$f ? 'nothing' : $f->{eof} ? 'EOF without a close frame'
            : $f->{type} eq 'close' ? "close $f->{code}" : "a $f->{type} frame";
    is $got, 'close 1008', "... then the close frame 1008 ($tries attempt(s))";
    is $f && $f->{reason}, 'more than 4 MiB sent right behind the handshake',
        '... with a reason that says why';
    my $cp = $ws ? $ws->local_port : 0;
    my @lines = grep { /\[client 127\.0\.0\.1:$cp\]/ }
                split /
/, WSClient::log_since($off);
    is scalar(grep { /WS03005: \[[0-9a-f]{16}\] the client sent more than 4194304 bytes/ } @lines),
        1, '... and one error log line that says so (WS03005)';
    ok !grep({ /No space left|WS03003/ } @lines), '... no misleading "(28) No space left on device"'
        or diag join "\n", @lines;
    my $sid = $ws && $ws->session_id;
    $ws->drop if $ws;
    my $re = WSClient->connect('/framed', [ 'Session-ID' => $sid // 'x' ], $port);
    is $re->status, 101, '... the session is not touched: it resumes (101)';
    if ($re->status == 101) {
        $re->send_text('after the flood');
        my $m = $re->recv_message(10);
        is $m && $m->{type} eq 'text' && $m->{payload}, 'after the flood',
            '... and echoes the next message first: none of the flood reached the script';
        my $c = $re->close_clean;
        is $c && $c->{code}, 1000, '... clean close: 1000';
    }
    else {
        fail '... no session to resume' for 1 .. 2;
        $re->drop;
    }
}

# ---- targets that are not persistent scripts --------------------------------
# The upgrade is ignored and the client gets the normal response, which a
# WebSocket client reports as a failed handshake.

for my $t ([ '/ws/index.html',  qr/websession test page/ ],
           [ '/ws/notexec.sh',  qr/NOTEXEC-FILE-CONTENT/ ],
           [ '/ws/classic.cgi', qr/\Aclassic cgi ok\n\z/ ],
           [ '/off/echo',       qr/OFF-SOURCE/ ]) {
    my($path, $body) = @$t;
    my $ws = WSClient->connect($path, [], $port);
    is $ws->status, 200, "WebSocket upgrade to $path (not persistent): plain 200";
    like $ws->body, $body, '... with the normal body';
    ok !defined $ws->header('Sec-WebSocket-Accept'), '... no Sec-WebSocket-Accept';
    ok !defined $ws->header('Session-ID'), '... no Session-ID';
    $ws->drop;
}

# A directory and a missing file in the WebSession On directory: the usual
# answers, not a session.
{
    my $ws = WSClient->connect('/ws/', [], $port);
    is $ws->status, 200, 'WebSocket upgrade to /ws/ (a directory): its index page, 200';
    like $ws->body, qr/websession test page/, '... index.html';
    $ws->drop;
    $ws = WSClient->connect('/ws/no-such-script', [], $port);
    is $ws->status, 404, 'WebSocket upgrade to /ws/no-such-script: 404';
    ok !defined $ws->header('Session-ID'), '... no Session-ID';
    $ws->drop;
}

# ---- Origin -----------------------------------------------------------------

accepted('same origin', '/ws/echo', [ Origin => "http://localhost:$port" ]);
accepted('same origin, other case', '/ws/echo', [ Origin => "HTTP://LocalHost:$port" ]);
accepted('no Origin header', '/ws/echo', []);
{
    my $ws = refused('foreign origin http://evil.example', '/ws/echo',
                     [ Origin => 'http://evil.example' ], 403, 'origin-refused');
    like $ws->body, qr/origin/i, '... the body explains it';
}
refused('same host, other port', '/ws/echo',
        [ Origin => 'http://localhost:' . ($port + 1000) ], 403, 'origin-refused');
refused('same host and port, https', '/ws/echo',
        [ Origin => "https://localhost:$port" ], 403, 'origin-refused');
refused('Origin: null', '/ws/echo', [ Origin => 'null' ], 403, 'origin-refused');

# WebSessionOrigin http://allowed.example https://also.example:8443
accepted('/origin-list: http://allowed.example', '/origin-list',
         [ Origin => 'http://allowed.example' ]);
accepted('/origin-list: http://allowed.example:80 (default port)', '/origin-list',
         [ Origin => 'http://allowed.example:80' ]);
accepted('/origin-list: https://also.example:8443', '/origin-list',
         [ Origin => 'https://also.example:8443' ]);
accepted('/origin-list: HTTP://Allowed.Example (case)', '/origin-list',
         [ Origin => 'HTTP://Allowed.Example' ]);
accepted('/origin-list: no Origin', '/origin-list', []);
# a listed origin matches only as a whole: not as the prefix of another
for my $o ('http://allowed.example:8080', 'http://allowed.example:800', 'https://also.example:84',
           'http://allowed.example/', 'http://allowed.examplex',
           'http://evil.example', 'https://allowed.example', 'http://also.example:8443',
           'https://also.example', 'http://allowed.example.evil.example',
           "http://localhost:$port", 'null') {
    refused("/origin-list: $o", '/origin-list', [ Origin => $o ], 403, 'origin-refused');
}

# WebSessionOrigin any
for my $o ('http://evil.example', 'https://anything.example:1234', 'null') {
    accepted("/origin-any: $o", '/origin-any', [ Origin => $o ]);
}
