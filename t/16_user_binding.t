# A session belongs to the user who opened it. Behind Apache's
# authentication (Require valid-user in <Location /auth-user>, mod_auth_basic
# with a password file written here: alice and bob), a session alice opened
# resumes only under alice: bob with alice's Session-ID, and a request with
# no user at all (the same command in <Location /auth-none>, open to
# anyone), get exactly the answer an unknown id gets, on every path (a
# plain WebSocket resume, websession.v1 in band, the HTTP fallback's down
# GET and its POST), and nothing of theirs reaches alice's script.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use WSClient;

plan tests => 19, need_module('websession');

$SIG{PIPE} = 'IGNORE';      # a connection taken over must fail a check, not end the test
my $port = Apache::Test::vars('port');
my %password = (alice => 'alice-pw-7391', bob => 'bob-pw-2288');
my @b64url = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');
my @HOW = qw(plain v1 get post);

sub random_id { join '', map { $b64url[rand @b64url] } 1 .. 32 }

# The password file of <Location /auth-user>, as `htpasswd -s` writes it.
{
    my $file = Apache::Test::vars('t_logs') . '/websession-users';
    open my $fh, '>', $file or die "cannot write $file: $!\n";
    print $fh "$_:{SHA}" . encode_base64(sha1($password{$_}), '') . "\n" for sort keys %password;
    close $fh or die "cannot write $file: $!\n";
    chmod 0644, $file;
}

sub auth {
    my($user) = @_;
    return () unless $user;
    return (Authorization => 'Basic ' . encode_base64("$user:$password{$user}", ''));
}

sub describe_frame {
    my($f) = @_;
    return 'nothing' unless $f;
    return 'EOF' if $f->{eof};
    return "close $f->{code} $f->{reason}" if $f->{type} eq 'close';
    return "$f->{type} $f->{payload}";
}

# What a request got, in one line: "<status> <WebSession-Error> <body>", or
# "101 <first frame>" for an answer in band.
sub outcome {
    my($ws) = @_;
    my $got = $ws->status == 101
        ? '101 ' . describe_frame($ws->recv_frame(10))
        : join ' ', $ws->status, $ws->header('WebSession-Error') // '-', $ws->body // '';
    $ws->drop;
    $got =~ s/\s+\z//;
    return $got;
}

# Resume the session $id on $path as $user (undef: no credentials) over
# $how: plain (a WebSocket with the Session-ID header), v1 (websession.v1,
# the id as a protocol token), get (the fallback's sse down request), post
# (the fallback's POST of one D record, numbered as the session's next:
# the second, after alice's first).
sub resume {
    my($how, $path, $id, $user) = @_;
    my @h = auth($user);
    if ($how eq 'plain') {
        return outcome(WSClient->connect($path, [ @h, 'Session-ID' => $id ], $port));
    }
    if ($how eq 'v1') {
        return outcome(WSClient->connect(
            $path, [ @h, 'Sec-WebSocket-Protocol' => "websession.v1, websession.id.$id" ], $port));
    }
    my @fallback = (Upgrade => undef, Connection => undef, 'Sec-WebSocket-Key' => undef,
                    'Sec-WebSocket-Version' => undef, 'WebSession-Transport' => 'sse',
                    'Session-ID' => $id, @h);
    if ($how eq 'get') {
        return outcome(WSClient->connect($path, [ @fallback, 'WebSession-Received' => 0 ],
                                         $port, timeout => 3));
    }
    my $msg = 'Dfrom ' . ($user // 'nobody');
    my $body = sprintf "T %d\n%s\n", length $msg, $msg;
    return outcome(WSClient->connect(
        $path, [ @fallback, 'WebSession-Sequence' => 2,
                 'Content-Type' => 'application/octet-stream',
                 'Content-Length' => length $body ], $port, method => 'POST', early => $body));
}

# The next websession.v1 data message (acknowledgements skipped); $rx
# counts the data messages alice received, her resume point.
my $rx = 0;
sub next_data {
    my($ws) = @_;
    for (1 .. 20) {
        my $f = $ws->recv_message(10);
        return describe_frame($f) unless $f && !$f->{eof} && $f->{type} eq 'text';
        next if $f->{payload} =~ /^A\d+$/;
        $rx++ if $f->{payload} =~ /^D/;
        return $f->{payload};
    }
    return 'only acknowledgements';
}

# ---- alice opens a websession.v1 session --------------------------------------

my $ws = WSClient->connect('/auth-user', [ auth('alice'), 'Sec-WebSocket-Protocol' => 'websession.v1' ],
                           $port);
is $ws->status, 101, 'alice opens a websession.v1 session on /auth-user (Require valid-user): 101';
my $id = $ws->session_id // '';
my $intro = join ' | ', map { describe_frame($ws->recv_message(10)) } 1 .. 2;
is $intro, "text I$id | text R0 1048576", '... I<id> and R0';
$ws->send_text('R0');
$ws->send_text('Dhello');
is next_data($ws), 'Dalice: hello', '... her script runs with REMOTE_USER=alice';

# ---- what an unknown id gets --------------------------------------------------------

my %unknown = map { $_ => resume($_, '/auth-user', random_id(), 'bob') } @HOW;
like $unknown{plain}, qr/^410 session-unknown No such session/,
    "an unknown id, plain WebSocket: 410 session-unknown ($unknown{plain})";
is $unknown{v1}, '101 close 4410 session unknown or expired',
    '... websession.v1: 101, close 4410';

# ---- bob, and no user, with alice's id ---------------------------------------------

for my $how (@HOW) {
    is resume($how, '/auth-user', $id, 'bob'), $unknown{$how},
        "bob with alice's id, $how: answered as an unknown id";
}
my %unknown_anon = map { $_ => resume($_, '/auth-none', random_id(), undef) } @HOW;
for my $how (@HOW) {
    is resume($how, '/auth-none', $id, undef), $unknown_anon{$how},
        "no user (/auth-none, the same command) with alice's id, $how: answered as an"
        . ' unknown id';
}

# ---- alice's session saw none of it ----------------------------------------------

$ws->send_text('Dagain');
is next_data($ws), 'Dalice: again',
    "alice's connection was not taken over, and her script's next answer is to her"
    . ' message (nothing of bob\'s POST reached it)';
$ws->drop;

my $re = WSClient->connect('/auth-user', [ auth('alice'),
                                           'Sec-WebSocket-Protocol' => "websession.v1, websession.id.$id" ],
                           $port);
is $re->status, 101, 'alice resumes with her id: 101';
is describe_frame($re->recv_message(10)), 'text R2 1048576',
    '... the server counts two messages from the client (R2)';
$re->send_text("R$rx");         # what she has: anything else her script wrote comes now
my $body = "T 5\nDpost\n";
my $post = WSClient->connect('/auth-user', [ auth('alice'), Upgrade => undef, Connection => undef,
                                             'Sec-WebSocket-Key' => undef,
                                             'Sec-WebSocket-Version' => undef,
                                             'WebSession-Transport' => 'sse',
                                             'Session-ID' => $id, 'WebSession-Sequence' => 3,
                                             'Content-Type' => 'application/octet-stream',
                                             'Content-Length' => length $body ],
                             $port, method => 'POST', early => $body);
is $post->status . ' ' . ($post->body // ''), '200 A3', '... her own POST is taken: 200 A3';
$post->drop;
is next_data($re), 'Dalice: post',
    '... and answered by her script, the first thing it wrote since her last message';
$re->send_close(1000);
my $c = $re->recv_frame(10);
is describe_frame($c), 'close 1000 ', '... she ends the session: close 1000';
$re->drop;
