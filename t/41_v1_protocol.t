# The server side of websession.v1 (docs/PROTOCOL.md, "The websession.v1
# subprotocol"), message by message: subprotocol selection, I and R on a
# new session, nothing before the client's R, data and acknowledgements,
# resuming with the id as a subprotocol token or with the Session-ID
# header, replay of what the client did not get, resume points that cannot
# be served (4409), refused resumes in band (4410, 4400), protocol errors
# (1002 naming the error), and heartbeats.
#
# The client is Python's websockets used directly (t/clients/v1_protocol.py),
# which prints a JSON list of named checks; each becomes one assertion here.
#
# The heartbeat checks need a scope with WebSessionPing 1, which
# t/conf/extra.conf.in must provide:
#     <IfModule websession_module>
#         <Location /ping>
#             WebSession On
#             WebSessionCommand /bin/cat
#             WebSessionPing 1
#             WebSessionResumeTimeout 5
#         </Location>
#     </IfModule>
# Without it (a plain GET /ping is not answered 426) they are skipped -- a
# failure under make test (WEBSESSION_REQUIRE_ALL, see t/run-suite). The
# time bounds are relative to that WebSessionPing (read from extra.conf).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my @CHECKS = (
    [ new_101_v1             => 'new session on /ws/count: the 101 selects exactly "websession.v1"' ],
    [ new_session_id         => '... with a Session-ID of 32 base64url characters' ],
    [ new_first_I            => '... first message "I<id>", the Session-ID' ],
    [ new_then_R0            => '... then "R0 1048576" (WebSessionBuffer default)' ],
    [ new_no_data_before_R   => '/ws/chaos-echo (writes at once): I, R, then no data for 1 s without the client\'s R' ],
    [ new_data_after_R       => '... after "R0" its messages arrive, in order' ],
    [ data_echo              => '"Dhello" to /ws/count -> "D1 hello"' ],
    [ ack_after_data         => '... and "A1" for it, on the server\'s own (promised within 20 ms; 5 s allowed)' ],
    [ data_more              => '"Db", "Dc" -> "D2 b", "D3 c"' ],
    [ token_101_v1_only      => 'resume with ["websession.v1", "websession.id.<id>"]: 101 selects "websession.v1" alone' ],
    [ token_no_I             => '... no "I": the first message is R' ],
    [ token_R_count          => '... "R3 1048576": the server has 3 data messages' ],
    [ token_continues        => '... "Dd" -> "D4 d"' ],
    [ header_101_v1          => 'resume with the Session-ID header: 101 with websession.v1' ],
    [ header_R_count         => '... "R4 1048576"' ],
    [ header_continues       => '... "De" -> "D5 e"' ],
    [ v1_close_1000          => '... a close from the client is answered with 1000' ],
    [ replay_R_count         => 'replay: 5 sent, 2 read, dropped; resume: "R5 1048576"' ],
    [ replay_tail            => '... after "R2": D3, D4, D5 again, in order, nothing more' ],
    [ replay_continues       => '... "Dm6" -> "D6 m6"' ],
    [ resume_beyond_4409     => 'R beyond what the server sent ("R5" after 1): close 4409' ],
    [ resume_below_ack_4409  => 'R below what the client acknowledged ("A5", then "R2"): close 4409' ],
    [ after_4409_gone        => '... the session is over: a resume gets 4410' ],
    [ unknown_id_101         => 'unknown id token: 101 with websession.v1 ...' ],
    [ unknown_id_4410        => '... then close 4410 "session unknown or expired"' ],
    [ malformed_id_4400      => '"websession.id.abc": close 4400 "malformed session id"' ],
    [ long_id_4400           => '... an id token of 400 characters: 4400 too, never a new session' ],
    [ detach_4100_resume     => 'a client close with 4100 leaves the connection only: the session resumes, "Dy" -> "D2 y"' ],
    [ v1_resumed_plain_4400  => 'v1 session resumed without the subprotocol: 101, close 4400 "resume with the protocol the session started with"' ],
    [ plain_resumed_v1_4400  => 'plain session resumed with websession.v1 (Session-ID header): close 4400' ],
    [ plain_resumed_v1_token_4400 => 'plain session resumed with websession.v1 (id token): close 4400' ],
    [ err_data_before_R      => 'data before R: close 1002 naming it' ],
    [ err_unknown_type       => '"X1": close 1002 naming the unknown type' ],
    [ err_binary_control     => '"A0" in a binary frame: close 1002 naming it' ],
    [ err_P_from_client      => '"P" from the client: close 1002 naming it' ],
    [ err_ack_too_many       => '"A2" after 1 message: close 1002 naming it' ],
    [ err_bad_number         => '"A01": close 1002 naming the bad number' ],
    [ err_second_R           => 'a second "R0" after a message: close 1002 (no replay of the stream)' ],
    [ err_I_from_client      => '"I<id>" from a client: close 1002 (a server message)' ],
    [ err_R_with_window      => '"R0 5" from a client: close 1002 (the window is the server\'s)' ],
    [ stale_ack_ignored      => '"A1" then "A0": the stale ack is ignored, the session goes on' ],
);
my @PING_CHECKS = (
    [ ping_v1_P              => '/ping (WebSessionPing N): a v1 client gets "P", not before N s after the attach (N + 5 s allowed)' ],
    [ ping_v1_answered_stays => '... answering each "P", it stays connected for 2N + 3 s (past the dead-connection time), at most one "P" per N s' ],
    [ ping_v1_silent_dropped => '... silent, it is dropped (no close frame), not before 2N + 1 s after its last message (2N + 6 s allowed)' ],
    [ ping_v1_resume         => '... and resumes: "R1 1048576", echo goes on' ],
    [ ping_plain_frames      => 'a plain client on /ping gets ping frames (the first not before N s), no "P" message' ],
);

my $vars   = Apache::Test::vars();
my $python = '/usr/bin/python3';
my $client = catfile($vars->{top_dir}, 't', 'clients', 'v1_protocol.py');

plan tests => 2 + @CHECKS + @PING_CHECKS, need
    need_module('websession'),
    { "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

# A persistent scope answers a plain GET with 426.
my $ping_code = GET('/ping')->code;
my $have_ping = $ping_code == 426;

# WebSessionPing of <Location /ping>, as configured (the client's time
# bounds are relative to it).
my $ping_interval = location_setting($vars, '/ping', 'WebSessionPing', 1);
note "WebSessionPing of /ping: $ping_interval s";

my @cmd = ('timeout', '200', $python, $client, '--host', '127.0.0.1',
           '--port', $vars->{port}, '--timeout', 10, '--deadline', 180,
           '--ping-interval', $ping_interval,
           ($have_ping ? () : '--no-ping'));
my %is_ping = map { $_->[0] => 1 } @PING_CHECKS;
my $r = run_python_checks(
    cmd => \@cmd, checks => [@CHECKS, @PING_CHECKS], assert_summary => 1,
    skip => sub {
        $is_ping{$_[0]} && !$have_ping
            && "no <Location /ping> with WebSessionPing 1 (GET /ping: $ping_code, not 426)";
    });

my $s = $r->{summary};
my @failed = grep { !$_->{ok} } @{ $s->{checks} || [] };
ok !@failed && !@{ $s->{errors} || [] }, 'no unexpected failures or errors in the client'
    or client_diag($r);
