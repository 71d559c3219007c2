# A hostile local process cannot use the module's Unix sockets.  They are
# abstract (no file mode), so every accepting side checks its peer's uid
# (ipc_peer_allowed): httpd's User or root.  Here processes of other users
# try each door and each gets a specific refusal:
#  - another user (daemon) that even holds a live session's id asks its
#    keeper to attach: closed without a reply, WS02016, the session goes on;
#  - another user sends the spawner a complete spawn request: the spawner
#    refuses it as it accepts it (WS01012, or counted into a later WS01013:
#    refusals are logged at a bounded rate), reads none of it and forks
#    nothing for it (no keeper logs WS02053; no script runs);
#  - httpd's own User (not root) hands the spawner a log descriptor, as
#    httpd's parent does after a restart: WS01011, and scripts' stderr
#    still reaches the real error log, not that file; handed to a live
#    keeper (as the spawner forwards it), it is refused too: WS02054;
#  - root gets past each check (another outcome: WS02017, WS02040, WS01008),
#    so the refusals above come from the uid check and nothing else.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use Errno qw(ECONNRESET EPIPE);
use File::Temp qw(tempdir);
use IO::Select ();
use MIME::Base64 qw(decode_base64url);
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM pack_sockaddr_un);
use CheckRun;
use WSClient;

plan tests => 26, need_module('websession');

my $vars   = Apache::Test::vars();
my $port   = $vars->{port};
my $python = '/usr/bin/python3';
my $helper = "$FindBin::Bin/clients/local_peers.py";
my $MAGIC  = 0x57535331;
my($IPC_SPAWN, $IPC_HELLO, $IPC_LOGFD) = (1, 2, 5);

my $httpd = do { open my $fh, '<', "$vars->{t_logs}/httpd.pid" or die $!; local $/; <$fh> };
chomp $httpd;
my $spawner = WSClient::spawner_socket($httpd) or die "no spawner socket for httpd $httpd\n";

sub text { my $m = $_[0]->recv_message(10); return $m ? $m->{payload} : '(nothing)' }

# uid and gid of a running process, from /proc.
sub proc_ids {
    my($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return;
    my %id;
    while (<$fh>) {
        $id{$1} = $2 if /^(Uid|Gid):\s+(\d+)/;
    }
    return ($id{Uid}, $id{Gid});
}

# Connect to an abstract socket, send $bytes, and tell what came back:
# "closed" (EOF or reset, nothing read; or closed before the write went),
# "reply N bytes", "timeout", or an error.
sub knock {
    my($name, $bytes, $timeout) = @_;
    local $SIG{PIPE} = 'IGNORE';
    socket(my $s, AF_UNIX, SOCK_STREAM, 0) or return "socket: $!";
    connect($s, pack_sockaddr_un("\0$name")) or return "connect: $!";
    my $w = syswrite $s, $bytes;
    return 'closed' if !defined $w && ($! == EPIPE || $! == ECONNRESET);
    return "write: $!" unless defined $w && $w == length $bytes;
    IO::Select->new($s)->can_read($timeout // 5) or return 'timeout';
    my $n = sysread $s, my $buf, 4096;
    return 'closed' if defined $n ? $n == 0 : $! == ECONNRESET;
    return defined $n ? "reply $n bytes" : "read: $!";
}

# Run $code in a child process that runs as uid:gid (no other groups);
# returns what $code returned, or "could not become uid:gid".
sub as_user {
    my($uid, $gid, $code) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my $out;
        $) = "$gid $gid";
        POSIX::setgid($gid);
        POSIX::setuid($uid);
        if ($< == $uid && $> == $uid && $( + 0 == $gid && $) + 0 == $gid) {
            $out = eval { $code->() } // "died: $@";
        }
        else {
            $out = "could not become $uid:$gid (now $<:$( )";
        }
        syswrite $w, $out;
        POSIX::_exit(0);
    }
    close $w;
    local $/;
    my $out = <$r>;
    waitpid $pid, 0;
    return $out // '';
}

# A log line that matches $re, written after $off, within $t seconds.
sub logged { my($re, $off, $t) = @_; return scalar WSClient::wait_log($re, $t // 5, $off) }

my($stranger_uid, $stranger_gid) = (getpwnam 'daemon')[2, 3];
defined $stranger_uid or die "no user daemon\n";
my $tmp = tempdir(CLEANUP => 1);
chmod 01777, $tmp;

# ---- another user holds a live session's id and asks its keeper to attach ----

my($ws, $fp, $keeper) = WSClient->connect_keeper('/ws/count', [], $port);
is $ws->status, 101, 'a session on /ws/count: 101';
$ws->send_text('a');
is text($ws), '1 a', '... round trip: 1 a';
my($user_uid, $user_gid) = $keeper ? proc_ids($keeper) : ();
my $ksock = $keeper && WSClient::keeper_socket($keeper);
ok $ksock && defined $user_uid && $user_uid != 0 && $user_uid != $stranger_uid,
    sprintf 'its keeper (pid %s) runs as httpd\'s User (uid %s) and listens on @%s',
            $keeper // '?', $user_uid // '?', $ksock // '?';
$ksock or die "no keeper socket for keeper ${\($keeper // '?')}\n";

# The id from the 101 is the very secret the HELLO carries (base64url).
my $secret = decode_base64url($ws->session_id // '');
my $hello = pack('VVV', $MAGIC, $IPC_HELLO, length $secret) . $secret;
my $off = WSClient::log_offset();
my $got = as_user($stranger_uid, $stranger_gid, sub { knock($ksock, $hello) });
is $got, 'closed',
    "a process of uid $stranger_uid presenting the session's id to its keeper: closed, no reply";
ok logged(qr/WS02016: \[\Q$fp\E\] refused an attach from a process of another user/, $off),
    '... WS02016 logged for that session';

# Control: root gets past the uid check, to the secret check (a wrong secret).
$off = WSClient::log_offset();
$got = knock($ksock, pack('VVV', $MAGIC, $IPC_HELLO, 24) . ("\0" x 24));
is $got, 'closed', 'root presenting a wrong id to that keeper: closed as well';
ok logged(qr/WS02017: \[\Q$fp\E\] refused an attach that did not present the session id/, $off),
    '... but refused by the secret check (WS02017), not the uid check';
unlike WSClient::log_since($off), qr/WS02016/, '... no WS02016 for root';

$ws->send_text('b');
is text($ws), '2 b', 'the session goes on in the same script: 2 b';
$ws->close_clean;

# ---- another user sends the spawner a complete spawn request ------------------------

my $marker = "$tmp/spawned-by-a-stranger";
my $pubid  = join '', map { chr int rand 256 } 1 .. 8;
my $forged_fp = unpack 'H*', $pubid;
my $strings = join '', map { "$_\0" } '/', '/usr/bin/touch', $marker;
my $spawn = pack('V11', 127, 0xfffffff0, 0, 65536, 1 << 20, 1000, 0, 0, 2, 0, length $strings)
          . $pubid . ("\x5a" x 24) . $strings;
$off = WSClient::log_offset();
$got = as_user($stranger_uid, $stranger_gid,
               sub { knock($spawner, pack('VVV', $MAGIC, $IPC_SPAWN, length $spawn) . $spawn) });
is $got, 'closed', "a spawn request from uid $stranger_uid: closed, no reply";
# The first refusal in 10 s is logged at once; otherwise it is counted into
# the next summary, due within 10 s.
ok logged(qr/WS01012: refused a connection from uid $stranger_uid \(pid \d+\): only httpd's User|WS01013: refused \d+ connection\(s\) from processes of other users since the last such line \(the latest from uid $stranger_uid,/,
          $off, 12),
    '... refused by the spawner as it accepted it (WS01012 or WS01013)';
select undef, undef, undef, 0.5;
unlike WSClient::log_since($off), qr/\Q$forged_fp\E|WS02053/,
    '... never read (no log line names its session), no keeper forked for it (no WS02053)';
# A backstop only: had the request been read, the keeper would start the
# command, find the slot not reserved for it (WS02044) and kill it, most
# often before it ran; the log line above is the deterministic check.
ok !-e $marker, '... its command did not run';

# Control: root's spawn request gets past the uid check and is read (WS02040: no body).
$off = WSClient::log_offset();
$got = knock($spawner, pack('VVV', $MAGIC, $IPC_SPAWN, 0));
ok logged(qr/WS02040: keeper got no valid spawn request/, $off),
    "root's spawn request without a body: read and refused as invalid (WS02040)";
unlike WSClient::log_since($off), qr/WS02053/, '... no WS02053 for root';

# ---- httpd's own User hands the spawner a log descriptor -----------------------------

my $trap = "$tmp/not-the-error-log";
{ open my $fh, '>', $trap or die "$trap: $!"; }
chown $user_uid, $user_gid, $trap;
$off = WSClient::log_offset();
my $r = run_json_client($python, $helper, '--socket', $spawner, '--file', $trap,
                        '--uid', $user_uid, '--gid', $user_gid);
my $s = $r->{summary} || {};
ok +($s->{uid} // -1) == $user_uid && ($s->{reply} // '') eq 'eof',
    "httpd's User (uid $user_uid, not root) offering the spawner a log descriptor: closed, no reply"
    or diag $r->{output};
ok logged(qr/WS01011: refused a log descriptor from a process that is not root/, $off),
    '... WS01011 logged';

my $word = 'stray-' . int rand 1e9;
my($se, $se_fp, $se_keeper) = WSClient->connect_keeper('/ws/stderr', [], $port);
$se->send_text($word);
is text($se), $word, 'a session started afterwards on /ws/stderr echoes';
ok logged(qr/to-stderr \Q$word\E/, $off, 10), '... its stderr is in the real error log';
is -s $trap, 0, '... and nothing went to the offered file';

# The spawner forwards the log to live keepers on their own sockets: there,
# too, a process of httpd's User that is not the spawner is refused.
my $se_sock = $se_keeper && WSClient::keeper_socket($se_keeper);
$off = WSClient::log_offset();
$r = run_json_client($python, $helper, '--socket', $se_sock // 'none', '--file', $trap,
                     '--uid', $user_uid, '--gid', $user_gid);
ok +($r->{summary}{reply} // '') eq 'eof'
   && logged(qr/WS02054: \[\Q$se_fp\E\] refused a log descriptor that did not come from the spawner/, $off),
    "httpd's User offering that session's keeper a log descriptor: refused (WS02054)"
    or diag $r->{output};
$word = 'stray-' . int rand 1e9;
$se->send_text($word);
is text($se), $word, '... the session echoes';
ok logged(qr/to-stderr \Q$word\E/, $off, 10), '... its stderr still in the real error log';
is -s $trap, 0, '... nothing in the offered file';
$se->close_clean;

# Control: root (as httpd's parent does) is listened to.  It hands over the
# real error log, so everything goes on as before.
$off = WSClient::log_offset();
$r = run_json_client($python, $helper, '--socket', $spawner,
                     '--file', WSClient::log_path());
ok +($r->{summary}{sent} // 0) == 12
   && logged(qr/WS01008: spawner and keepers now write to the reopened error log/, $off),
    "root's log descriptor is taken (WS01008)" or diag $r->{output};
unlike WSClient::log_since($off), qr/WS01011/, '... no WS01011 for root';
