# The HTTP fallback transports (docs/PROTOCOL.md, "The HTTP fallback
# transports"), rule by rule against the real server: new sessions over
# sse and poll (status, headers, the first bytes of the body), messages
# both ways (POSTed records, A<n> answers, duplicates dropped, gaps refused
# with 409), event encoding (text, text64, binary, several data lines),
# polls that answer at once, wait, wake, repeat a lost answer and end after
# 25 s, the end marker of every complete poll answer (and none on a cut
# one), heartbeats, a POST taken in part while the buffer toward the script
# is full, the client's C (last in its POST) and the script's exit as close
# events, resumes across sse, poll and WebSocket (4400 for plain WebSocket
# sessions, 400 protocol-mismatch for a POST to one, 4409 for a resume
# point never sent, 409 stale-request for a down request older than an
# acknowledgement), every refusal with its status and WebSession-Error
# token, TLS, 40 open streams with 8 worker
# threads, and the reference client (tools/websession_client.py,
# tools/websession-cat) over both transports.
#
# The requests are written raw by t/clients/http_fallback.py, which prints
# a JSON list of named checks; each becomes one assertion here.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my @CHECKS = (
    [ sse_new_200                 => 'new session over sse (GET /ws/count, WebSession-Received: 0): 200' ],
    [ sse_new_content_type        => '... Content-Type: text/event-stream' ],
    [ sse_new_connection_close    => '... Connection: close' ],
    [ sse_new_cache_control       => '... Cache-Control: no-cache, no-store and X-Accel-Buffering: no' ],
    [ sse_new_no_length           => '... neither Content-Length nor Transfer-Encoding' ],
    [ sse_new_session_id          => '... Session-ID of 32 base64url characters' ],
    [ sse_new_body_start          => '... body starts ": websession.v1", "data: I<id>", "data: R0 1048576", each followed by an empty line' ],
    [ sse_new_stays_open          => '... then the stream stays open, quiet, for 1 s' ],
    [ post_answer_A1              => 'POST "T 6\nDhello\n" with WebSession-Sequence 1: 200 text/plain "A1"' ],
    [ sse_echo                    => '... and "data: D1 hello" comes down the stream' ],
    [ post_batch_order            => 'ten records in one POST, then two more POSTs: A11, A12, A14 and D2..D14 in order' ],
    [ post_repeat_no_dup          => 'the first POST sent again: "A14", nothing delivered twice (the next is D15)' ],
    [ post_overlap_takes_new      => 'a POST of 14, 15 (had) and 16 (new): A16, only D16 comes down' ],
    [ post_gap_409                => 'a POST starting at count + 2: 409 sequence-gap' ],
    [ post_gap_nothing_taken      => '... and nothing of it is taken (the next in order is D17)' ],
    [ post_ack_only               => 'a POST of "A17" alone: 200 "A17"' ],
    [ sse_resume_headers          => 'resume over sse (Session-ID, Received 14): 200 without Session-ID' ],
    [ sse_resume_replay           => '... comment, "R17 1048576", then D15, D16, D17 again, nothing more' ],
    [ sse_evicted_by_newer        => 'a newer down request ends the older stream without a close event and carries on' ],
    [ sse_C1000_close_event       => 'POST "C1000": 200, then "event: close" with 1000 down the stream' ],
    [ sse_close_then_eof          => '... and the response ends after the close event' ],
    [ sse_no_end_marker           => '... an event stream (evicted or closed) never carries the poll end marker' ],
    [ after_close_410_get         => 'then a GET with that Session-ID: 410 session-unknown (asked again, for up to 5 s, while the keeper has not yet seen the in-order end)' ],
    [ after_close_410_post        => '... and a POST: 410 session-unknown' ],
    [ stale_get_409               => 'WebSession-Received below what the client acknowledged (3, then 1): 409 stale-request, text/plain, before any stream' ],
    [ stale_get_keeps_stream      => '... the current stream is left alone: nothing on it, and the next POST comes down it' ],
    [ C_code_echoed               => '"C3001 going" on /framed: the close event carries 3001' ],
    [ poll_new_headers            => 'new session over poll: 200, text/event-stream, Connection: close, Cache-Control, Session-ID, no length' ],
    [ poll_open_at_once           => '... with WebSession-Poll: open it ends at once (not waiting its 25 s; < 10 s allowed) after comment, I and R' ],
    [ poll_waits                  => 'a poll with nothing to say does not end within 1 s' ],
    [ poll_wakes_on_post          => '... a POST wakes it: it ends with "D1 x" at once (< 10 s allowed, not its 25 s timeout)' ],
    [ poll_fresh_R                => '... its R is the count when it came, "R0 1048576" (the spec\'s example)' ],
    [ poll_lost_repeat            => 'the same count again (a lost answer): R1 and D1 x again, then the end' ],
    [ poll_new_count_waits        => 'the new count acknowledges: that poll waits again' ],
    [ poll_batch                  => 'five messages in one POST arrive over polls, all, in order' ],
    [ poll_idle_25s               => 'a poll with nothing to say ends after 24-30 s with comment and R alone' ],
    [ poll_open_resume_at_once    => 'WebSession-Poll: open on a resumed session: comment, R and the end marker, at once (< 10 s allowed)' ],
    [ poll_cut_no_marker          => 'a waiting poll evicted by a newer one (cut): ends without ": end"' ],
    [ stale_get_poll_409          => 'a poll with Received 2 while one with 6 waits: 409 stale-request; the waiting poll is not evicted and ends with the next message' ],
    [ poll_close_event            => '"C1000" over poll: the next poll carries the close event 1000, then the end marker' ],
    [ poll_end_marker             => 'every complete poll answer above ends with ": end" and an empty line, once, last' ],
    [ framed_binary_all_bytes     => '/framed: a B record of all 256 byte values comes down as "event: binary", base64 of D + bytes' ],
    [ framed_text_cr_text64       => '... text with CR: "event: text64", base64 of the message\'s UTF-8 (D included)' ],
    [ framed_multiline            => '... text with LFs: one "data: " line per line' ],
    [ framed_trailing_lf          => '... text ending in LF: a last empty "data: " line' ],
    [ framed_empty_text           => '... the empty text message: "data: D"' ],
    [ framed_utf8                 => '... non-ASCII text: UTF-8 in the data line' ],
    [ framed_binary_large         => '... a 200 kB binary message, whole, in one data line' ],
    [ framed_binary_poll          => '... binary over poll: "event: binary"' ],
    [ post_binary_record_text_D   => '... a B record stays binary even when its bytes are text' ],
    [ exit0_bye_then_1000         => '/ws/exit0 over sse: "Dbye x", then the close event 1000' ],
    [ exit3_4003                  => '/ws/exit3: close event "4003 script exited with status 3"' ],
    [ killself_4309               => '/ws/killself: close event "4309 script killed by signal 9"' ],
    [ exit3_over_poll             => '/ws/exit3 over poll: the waiting poll ends with the close event 4003' ],
    [ exit_while_away_poll        => '/ws/exit5-later exits while no poll is there: the next poll carries R1 and the close event 4005' ],
    [ close_event_again_after_cut => '... that poll ended with a TCP reset (not in order): the close event is served again' ],
    [ close_event_once_in_order   => '... read to its end and closed in order: then 410 session-unknown (asked again, for up to 5 s, while the keeper has not yet seen that end)' ],
    [ binary_in_lines_1003        => 'a B record POSTed to /ws/count (lines mode): close event 1003 down the stream' ],
    [ binary_in_lines_1003_later  => '... POSTed between polls: the next poll carries the close event 1003 (not 410)' ],
    [ ws_v1_to_sse                => 'a websession.v1 WebSocket session resumes over sse: R1, then "Db" -> "D2 b"' ],
    [ sse_to_ws_v1                => '... and back over a WebSocket: R2, "Dc" -> "D3 c"' ],
    [ poll_to_sse                 => 'a session started over poll resumes over sse' ],
    [ sse_to_poll                 => '... and over poll again' ],
    [ plain_ws_to_sse_4400        => 'a plain WebSocket session resumed over sse: 200, close event 4400, no data' ],
    [ plain_ws_to_poll_4400       => '... over poll: the same' ],
    [ plain_ws_survives_4400      => '... and the plain session goes on ("b" -> "2 b")' ],
    [ post_plain_ws_400           => '... a POST with its Session-ID ("Dx", "C1000", sequence 1): 400 protocol-mismatch' ],
    [ post_plain_ws_nothing_taken => '... and none of its records is taken: "c" -> "3 c", no close' ],
    [ sse_to_plain_ws_4400        => 'a session started over sse resumed as a plain WebSocket: close 4400' ],
    [ resume_beyond_4409          => 'WebSession-Received above what the server sent: close event 4409' ],
    [ get_flood_1008              => '6 MiB right behind a new sse request: 200, the comment, the close event 1008 "more than 4 MiB sent right behind the handshake", the end' ],
    [ get_bad_transport_400       => 'WebSession-Transport: longpoll: 400 bad-request' ],
    [ get_transport_websocket_400 => 'WebSession-Transport: websocket: 400 bad-request' ],
    [ get_received_missing_400    => 'no WebSession-Received: 400 bad-request' ],
    [ get_received_malformed_400  => 'WebSession-Received 01, -1, 1x, x, empty, "1 2", 21 digits: 400 bad-request' ],
    [ get_received_nonzero_new_400 => 'WebSession-Received 3 for a new session: 400 bad-request' ],
    [ get_poll_bad_400            => 'WebSession-Poll yes, "open, open", opened, or open with sse: 400 bad-request' ],
    [ get_sid_malformed_400       => 'Session-ID "abc": 400 session-id-malformed' ],
    [ get_sid_unknown_410         => 'an unknown Session-ID: 410 session-unknown' ],
    [ put_405                     => 'PUT with WebSession-Transport: 405 bad-method' ],
    [ head_405                    => 'HEAD with WebSession-Transport: 405 bad-method, no session' ],
    [ plain_get_426               => 'a plain GET without upgrade or transport: still 426' ],
    [ origin_refused_403          => 'sse with a foreign Origin on /origin-list: 403 origin-refused' ],
    [ broken_script_500           => 'sse on /broken (no such program): 500 script-failed' ],
    [ errors_text_plain           => 'every refusal has a text/plain explanation' ],
    [ post_no_sequence_400        => 'POST without WebSession-Sequence: 400 bad-request' ],
    [ post_bad_sequence_400       => 'WebSession-Sequence x, 01, -1, 1.0, empty, 0: 400 bad-request' ],
    [ post_sid_malformed_400      => 'POST with Session-ID "abc": 400 session-id-malformed' ],
    [ post_sid_unknown_410        => 'POST with an unknown Session-ID: 410 session-unknown' ],
    [ post_origin_refused_403     => 'POST with a foreign Origin and the real Session-ID: 403 origin-refused, nothing delivered' ],
    [ post_malformed_record_400   => 'malformed records (short, bad type, leading zero, no space, no LF, ...): 400 protocol-error' ],
    [ post_R_400                  => 'an R record: 400 protocol-error' ],
    [ post_P_400                  => 'a P record: 400 protocol-error' ],
    [ post_I_400                  => 'an I record: 400 protocol-error' ],
    [ post_bad_C_400              => 'C, C999, C1005, C5000, Cx, C01000: 400 protocol-error' ],
    [ post_record_after_C_400     => 'a D, an A, a second C or bytes after a C: 400 protocol-error' ],
    [ post_record_after_C_1002    => '... the session closes with 1002: the C is not taken, the D after it not delivered' ],
    [ post_C_repeated             => 'a POST of D and C sent twice (a lost answer): A1 both times, the next poll R1 and one close event 1000' ],
    [ post_ack_too_many_400       => '"A1" when nothing was sent: 400 protocol-error' ],
    [ post_ack_unwritten_400      => 'an A acknowledging a message queued but never sent: 400 protocol-error, close 1002' ],
    [ post_error_ends_1002        => '... a protocol error ends the session: close event 1002 down the stream' ],
    [ post_too_large_413          => 'a body of 2 x WebSessionBuffer + WebSessionMaxMessage + 64 KiB + 1 bytes: 413 too-large' ],
    [ post_at_limit_taken         => 'a body of exactly 2 x WebSessionBuffer + WebSessionMaxMessage + 64 KiB bytes: 200 A<n>' ],
    [ buffer_full_partial_A       => '/ws/late-reader (reads nothing for 2 s): 15 records of 100 kB and C1000 in one POST: A<k>, 0 < k < 15' ],
    [ buffer_full_stops_at_D      => '... the C behind the first untaken D is not looked at: no close event (answers to what was taken may come)' ],
    [ buffer_full_resend_exact    => '... the rest sent again once the script reads: A15, all 15 answers once, in order' ],
    [ buffer_full_acks_taken      => 'an A behind a D left for a full queue is still taken (a resume below it: 409 stale-request)' ],
    [ ping_sse_P                  => '/ping (WebSessionPing N) over sse: "data: P", not before N s after the GET (N + 5 s allowed)' ],
    [ ping_sse_answered_stays     => '... answering each P with a POST of A<n>, the stream stays for 2N + 3 s (past the dead-connection time), at most one P per N s' ],
    [ ping_sse_silent_dropped     => '... silent, the stream is dropped without a close event, not before 2N + 1 s after the last POST (3N + 6 s allowed)' ],
    [ ping_sse_resume             => '... and resumes: R1, the echo goes on' ],
    [ ping_poll_P                 => '... a waiting poll on /ping ends with a P, not before N s (N + 5 s allowed)' ],
    [ ping_polls_keep_alive       => '... polling on for 2N + 3 s without any POST: every poll answered with a P, the session stays, at most one poll per N s' ],
    [ tls_sse_new                 => 'over TLS: a new sse session, comment, I, R0' ],
    [ tls_sse_messages            => '... three POSTs, three answers down the stream' ],
    [ tls_sse_close               => '... C1000: the close event 1000' ],
    [ tls_client_sse              => '... the reference client over https and sse: 40 messages exact across drops' ],
    [ tls_client_poll             => '... and over https and poll' ],
    [ workers_streams_open        => '40 sse streams open at once (8 worker threads in all)' ],
    [ workers_gets_answered       => '... meanwhile 10 GETs of /ws/index.html are answered, each at once (< 10 s allowed)' ],
    [ workers_streams_echo        => '... every stream echoes its message' ],
    [ workers_streams_close       => '... every one ends with the close event 1000 after C1000' ],
    [ workers_polls_waiting       => '40 polls waiting at once: 10 GETs still answered, then each poll ends with its echo' ],
    [ client_sse_exact            => 'reference client, sse: 40 messages to /ws/count exact across two drops' ],
    [ client_poll_exact           => 'reference client, poll: the same' ],
    [ client_buffer_full          => 'reference client, sse: 15 messages of 100 kB to /ws/late-reader, all answered in order' ],
    [ client_close_1000           => 'reference client on /framed: binary echo, close() ends with 1000' ],
    [ client_cat_sse              => 'websession-cat --transport sse: three lines counted, exit 0' ],
    [ client_cat_poll             => 'websession-cat --transport poll: the same' ],
);

my $vars     = Apache::Test::vars();
my $python   = '/usr/bin/python3';
my $client   = catfile($vars->{top_dir}, 't', 'clients', 'http_fallback.py');
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');

plan tests => 2 + @CHECKS, need
    need_module('websession'),
    { "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

# The TLS checks need the TLS virtual host (mod_ssl) of t/conf/extra.conf.in.
my $have_tls = $tls_port && -s $crt;

# WebSessionPing of <Location /ping>, as configured (the heartbeat checks'
# time bounds are relative to it).
my $ping_interval = location_setting($vars, '/ping', 'WebSessionPing', 1);
note "WebSessionPing of /ping: $ping_interval s";

my @cmd = ('timeout', '300', $python, $client, '--host', '127.0.0.1',
           '--port', $vars->{port}, '--timeout', 10, '--deadline', 280,
           '--ping-interval', $ping_interval,
           ($have_tls ? ('--tls-port', $tls_port, '--cafile', $crt) : ()));
my $r = run_python_checks(
    cmd => \@cmd, checks => \@CHECKS, assert_summary => 1,
    skip => sub {
        $_[0] =~ /^tls_/ && !$have_tls && 'no TLS virtual host (mod_ssl) or no certificate';
    });

# A check the client knows and this list does not would go unseen.
my @unlisted = @{ $r->{unlisted} };
ok !@unlisted && !@{ $r->{summary}{errors} || [] },
    'no unexpected errors in the client, no check left unlisted'
    or client_diag($r, "checks not in this file: @unlisted");
