# Sessions across the server's life cycle. Runs late: it stops httpd and
# starts it again.
#
# (a) A graceful restart (SIGUSR1) keeps the spawner, the keepers and their
#     scripts: a plain ws:// connection opened before it (its socket is the
#     keeper's) goes on counting on the same connection, and a session whose
#     client leaves after the restart is resumed with its Session-ID
#     through the new generation of workers.
# (b) Child recycling (MaxConnectionsPerChild 1) needs its own httpd:
#     t/42_survival.t.
# (c) Stopping httpd (SIGTERM to the parent) ends everything within 10 s:
#     the spawner, every keeper, every script and whatever runs in the
#     scripts' process groups, including a script that ignores SIGTERM, one that
#     leaves a background child, and a session waiting for its client. Open clients get a close
#     frame with 1001 (plain TCP: the keeper owns the socket) or at least
#     EOF (TLS: the worker relaying it is gone). Then httpd is started again
#     with the same configuration, so the harness carries on and stops it.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec::Functions qw(catfile);
use Time::HiRes qw(sleep time);

my $vars     = Apache::Test::vars();
my $port     = $vars->{port};
my $tls_port = $vars->{websession_ssl_port};
my $crt      = catfile($vars->{t_logs}, 'ssl', 'server.crt');
my $docroot  = $vars->{documentroot};
my $pidfile  = catfile($vars->{t_logs}, 'httpd.pid');
my $errlog   = catfile($vars->{t_logs}, 'error_log');
my $stopped_by_us;     # httpd was stopped here: END makes sure it runs again
my $have_tls = $tls_port && -s $crt && eval { require IO::Socket::SSL; 1 };

plan tests => 33, need need_module('websession');

# ---------------------------------------------------------------------------
# (a) graceful restart keeps sessions

my $httpd = httpd_pid();
my $spawner = spawner_pid();
ok $httpd && $spawner, "httpd parent ($httpd) and its spawner (" . ($spawner // '?') . ") found";

my %count_before = map { $_ => 1 } script_pids('count');
my $s1 = WS->open(port => $port, path => '/ws/count');
my $s1_id = $s1 && $s1->{headers}{'session-id'};
ok $s1_id, 'S1: ws:// /ws/count: 101 with a Session-ID';
is_msg($s1, 'a', '1 a', 'S1: "a" -> "1 a"');

# S1's script and keeper (the script's parent, a child of the spawner)
my ($s1_script) = grep { !$count_before{$_} } script_pids('count');
my $procs = ps();
my $s1_keeper = $s1_script && $procs->{$s1_script}{ppid};
ok $s1_script && $s1_keeper && $procs->{$s1_keeper}{ppid} == ($spawner // -1),
    'S1: its script (' . ($s1_script // '?') . ') runs under a keeper ('
    . ($s1_keeper // '?') . ') that is a child of the spawner';

my $s2 = WS->open(port => $port, path => '/ws/count');
my $s2_id = $s2 && $s2->{headers}{'session-id'};
is_msg($s2, 'x', '1 x', 'S2: another /ws/count session: "x" -> "1 x"');

# Graceful restart. The new generation logs "resuming normal operations"
# (AH00489) again; wait for that and for a GET to be answered.
my @old_workers = worker_pids($httpd);
my $generations = count_in_log(qr/AH00489:/);
kill USR1 => $httpd;
my $up = poll_until(60, sub {
    count_in_log(qr/AH00489:/) > $generations && get_ok();
});
ok $up, 'graceful restart (SIGUSR1): the new generation answers GETs (within 60 s)';

ok httpd_pid() == $httpd && spawner_pid() && spawner_pid() == $spawner
        && kill(0, $spawner),
    '... httpd parent and spawner are the same processes as before';
ok $s1_keeper && alive($s1_keeper) && alive($s1_script),
    "... S1's keeper and script still run";

is_msg($s1, 'b', '2 b', 'S1, same connection as before the restart: "b" -> "2 b"');

# S2 leaves without a close frame, then comes back through the new workers.
$s2->abort if $s2;
my $s2b = $s2_id && WS->open(port => $port, path => '/ws/count',
                             headers => { 'Session-ID' => $s2_id });
is $s2b && $s2b->{status}, 101, 'S2: dropped, resumed with its Session-ID after the restart: 101';
is_msg($s2b, 'y', '2 y', 'S2: the count continues: "y" -> "2 y"');

# Sessions on plain TCP hold no worker: the old generation can go.
ok poll_until(30, sub { !grep { alive($_) } @old_workers }),
    'the old generation\'s worker processes exit (within 30 s) although sessions are open'
    or diag 'still running: ' . join ' ', grep { alive($_) } @old_workers;

# ---------------------------------------------------------------------------
# (c) stop ends everything

# c1: plain ws:// sessions only. S1 (open since before the restart) and S2
# are still open.
my $echo = WS->open(port => $port, path => '/ws/echo');
is_msg($echo, 'e', 'e', 'ws:// /ws/echo open: "e" echoed');
my $stubborn = WS->open(port => $port, path => '/ws/ignore-term');
is_msg($stubborn, 'i', 'i', 'ws:// /ws/ignore-term (ignores SIGTERM after EOF) open: "i" echoed');
my $bg = WS->open(port => $port, path => '/ws/bg-child');
is_msg($bg, 'g', 'g', 'ws:// /ws/bg-child (leaves a `sleep 600` in its group) open: "g" echoed');
# A session waiting for its client (WebSessionResumeTimeout 5: the stop
# must come well before that, so this is the last one made).
my $s3 = WS->open(port => $port, path => '/ws/count');
my $s3_ok = $s3 && $s3->{status} eq '101';
$s3->abort if $s3;

my $stop = stop_httpd(10);
ok $s3_ok && $stop->{keepers} >= 6 && $stop->{scripts} >= 6 && $stop->{members} >= 1,
    "before the stop: spawner, $stop->{keepers} keepers, $stop->{scripts} scripts,"
    . " $stop->{members} other processes in the scripts' groups (6 sessions are"
    . ' ours, one of them detached)';
ok $stop->{gone}, sprintf 'SIGTERM to httpd: httpd, spawner, keepers, scripts and the'
                        . ' processes in their groups are gone within 10 s (%.1f s)',
                          $stop->{secs}
    or diag "still there:\n  " . join "\n  ", @{ $stop->{left} };
my @left = grep { $_->{args} =~ /\Q$docroot\E/ } values %{ ps() };
ok !@left, "no process mentions $docroot any more"
    or diag join "\n", map { "$_->{pid} $_->{args}" } @left;
ok !@{ $stop->{escalated} }, 'httpd did not have to signal a child again or kill it'
    or diag join '', @{ $stop->{escalated} };
for ([ $s1, 'S1 (open since before the graceful restart)' ],
     [ $s2b, 'S2 (resumed after the graceful restart)' ],
     [ $echo, '/ws/echo' ],
     [ $stubborn, '/ws/ignore-term' ],
     [ $bg, '/ws/bg-child' ]) {
    my ($c, $name) = @$_;
    my ($kind, $code) = $c ? $c->recv(10) : ('none');
    ok $kind eq 'close' && $code == 1001, "$name got a close frame with 1001"
        or diag "got $kind " . ($code // '');
}
ok start_httpd(), 'httpd starts again (within 60 s)';

# c2: with a wss:// session open, which an httpd worker relays.
SKIP: {
    skip 'no TLS virtual host or IO::Socket::SSL', 6 unless $have_tls;

    my $tls = WS->open(port => $tls_port, path => '/ws/echo', tls => $crt);
    is_msg($tls, 't', 't', 'wss:// /ws/echo open (relayed by a worker): "t" echoed');
    my $plain = WS->open(port => $port, path => '/ws/echo');
    is_msg($plain, 'p', 'p', '... and a ws:// /ws/echo session: "p" echoed');

    my $stop = stop_httpd(30);
    {
        ok !@{ $stop->{escalated} },
            'SIGTERM with a wss:// session open: httpd did not have to signal'
            . ' a child again or kill it'
            or diag join '', @{ $stop->{escalated} };
    }
    ok $stop->{gone}, sprintf '... httpd, spawner, keepers and scripts are gone'
                            . ' within 30 s (%.1f s)', $stop->{secs}
        or diag "still there:\n  " . join "\n  ", @{ $stop->{left} };
    my ($kind, $code) = $tls ? $tls->recv(10) : ('none');
    ok +($kind eq 'close' && $code == 1001) || $kind eq 'eof',
        "... the wss:// client got a close frame with 1001 or EOF ($kind"
        . ($code ? " $code" : '') . ')';
    ($kind, $code) = $plain ? $plain->recv(10) : ('none');
    ok $kind eq 'close' && $code == 1001, '... the ws:// client got a close frame with 1001'
        or diag "got $kind " . ($code // '');
}
ok httpd_pid() || start_httpd(), 'httpd runs (started again after c2)';
{
    my $s = WS->open(port => $port, path => '/ws/count');
    is_msg($s, 'a', '1 a', 'a new session works on the restarted httpd: "a" -> "1 a"');
    $s->close_clean if $s;
}

# Note what must end (the spawner, its children the keepers, theirs the
# scripts, and every process in a script's process group, which the script
# leads),
# send SIGTERM to httpd's parent and wait up to $secs for all of it to go.
sub stop_httpd {
    my $secs = shift;
    my $parent = httpd_pid();
    my $sp = spawner_pid();
    my $p = ps();
    my @keepers = grep { $p->{$_}{ppid} == $sp } keys %$p;
    my %is_keeper = map { $_ => 1 } @keepers;
    my @scripts = grep { $is_keeper{ $p->{$_}{ppid} } } keys %$p;
    my %script_pgid = map { $_ => 1 } @scripts;
    my @members = grep { $script_pgid{ $p->{$_}{pgid} } && !$is_keeper{ $p->{$_}{ppid} } }
                  keys %$p;
    my @noted = grep { $_ } $parent, $sp, @keepers, @scripts, @members;
    my $logpos = -s $errlog;
    my $t0 = time;
    $stopped_by_us = 1;
    kill TERM => $parent;
    my $gone = poll_until($secs, sub { !grep { alive($_) } @noted });
    my $took = time - $t0;
    # let httpd finish (for the restart) even when the check failed
    poll_until(30, sub { !alive($parent) });
    my @escalated;
    if (open my $fh, '<', $errlog) {
        seek $fh, $logpos, 0;
        @escalated = grep { /AH0004[56]:/ } <$fh>;
    }
    return { gone => $gone, secs => $took, keepers => scalar @keepers,
             scripts => scalar @scripts, members => scalar @members,
             left => [ map { "$_ " . ($p->{$_}{args} // '') } grep { alive($_) } @noted ],
             escalated => \@escalated };
}

# Whatever happens above, leave a running httpd to the harness.
END {
    local $?;
    my $pid = httpd_pid();
    start_httpd() if $stopped_by_us && !($pid && alive($pid));
}

# Start httpd with the harness's command line; wait until it answers.
sub start_httpd {
    my $old = httpd_pid() // 0;
    my $cmd = Apache::Test::config()->server->start_cmd;
    my $out = qx{$cmd 2>&1};
    my $up = poll_until(60, sub { my $p = httpd_pid(); $p && $p != $old && get_ok() });
    diag "$cmd:\n$out" unless $up;
    return $up;
}

# ---------------------------------------------------------------------------
# helpers

sub is_msg {
    my ($c, $send, $want, $name) = @_;
    unless ($c && $c->{status} eq '101') {
        return fail $name . ' (no session: status ' . ($c ? $c->{status} : 'none') . ')';
    }
    $c->send_text($send);
    my ($kind, $data) = $c->recv(30);
    is +($kind eq 'text' ? $data : "<$kind " . ($data // '') . '>'), $want, $name;
}

sub httpd_pid {
    open my $fh, '<', $pidfile or return undef;
    my $pid = <$fh>;
    return $pid && $pid =~ /(\d+)/ ? $1 : undef;
}

sub count_in_log {
    my $re = shift;
    open my $fh, '<', $errlog or return 0;
    my $n = 0;
    while (<$fh>) { $n++ if $_ =~ $re }
    return $n;
}

# The spawner announces itself: "WS01004: spawner <pid> ready".
sub spawner_pid {
    open my $fh, '<', $errlog or return undef;
    my $pid;
    while (<$fh>) { $pid = $1 if /WS01004: spawner (\d+) ready/ }
    return $pid;
}

# { pid => { pid, ppid, pgid, state, args } }
sub ps {
    my %p;
    for (`ps -eo pid=,ppid=,pgid=,stat=,args=`) {
        my ($pid, $ppid, $pgid, $stat, $args) = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/
            or next;
        $p{$pid} = { pid => $pid, ppid => $ppid, pgid => $pgid, stat => $stat, args => $args };
    }
    return \%p;
}

# A process that exited but was not reaped yet (zombie) counts as gone.
sub alive {
    my $pid = shift;
    return 0 unless $pid && kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    return $stat !~ /^\d+ \(.*\) Z/s;
}

# Scripts of /ws/<name> (their command line names the file).
sub script_pids {
    my $name = shift;
    my $p = ps();
    return grep { $p->{$_}{args} =~ m{\Q$docroot\E/ws/\Q$name\E(?:\s|$)} } keys %$p;
}

# httpd's children other than the spawner (worker processes, mod_cgid's daemon).
sub worker_pids {
    my $parent = shift;
    my $p = ps();
    my $sp = spawner_pid() // 0;
    return grep { $p->{$_}{ppid} == $parent && $_ != $sp
                  && $p->{$_}{args} !~ /\bcgid\b/ } keys %$p;
}

sub get_ok {
    my $r = eval { Apache::TestRequest::GET('/ws/index.html') };
    return $r && $r->code == 200;
}

sub poll_until {
    my ($secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        return 1 if $cond->();
        return 0 if time > $end;
        sleep 0.2;
    }
}

# ---------------------------------------------------------------------------
# A minimal blocking WebSocket client (RFC 6455), enough for these checks:
# text messages, close frames, and leaving without a close frame.
package WS;

use IO::Socket::INET ();
use IO::Select ();
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1_base64);
use Time::HiRes qw(time);

# WS->open(port =>, path =>, headers => {}, tls => ca_file): an object with
# {status} and {headers} (lower-case names); frames only after a 101.
sub open {
    my ($class, %a) = @_;
    my $sock;
    if ($a{tls}) {
        $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $a{port},
                                     SSL_ca_file => $a{tls}, SSL_verifycn_name => 'localhost',
                                     SSL_verifycn_scheme => 'http', Timeout => 30);
    }
    else {
        $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $a{port},
                                      Proto => 'tcp', Timeout => 30);
    }
    return undef unless $sock;
    binmode $sock;
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $req = "GET $a{path} HTTP/1.1\r\nHost: localhost:$a{port}\r\n"
            . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n";
    $req .= "$_: $a{headers}{$_}\r\n" for keys %{ $a{headers} || {} };
    my $self = bless { sock => $sock, buf => '', tls => !!$a{tls} }, $class;
    $self->_write("$req\r\n") or return undef;
    my $end = time + 30;
    while ($self->{buf} !~ /\r\n\r\n/) {
        $self->_fill($end) > 0 or return undef;
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{buf} = $rest;
    my ($status_line, @lines) = split /\r\n/, $head;
    ($self->{status}) = $status_line =~ m{^HTTP/1\.\d (\d{3})};
    $self->{status} //= 0;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $self->{headers}{ lc $k } = $v;
    }
    if ($self->{status} == 101) {
        my $accept = sha1_base64($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11') . '=';
        $self->{status} = 'bad-accept'
            unless ($self->{headers}{'sec-websocket-accept'} // '') eq $accept;
    }
    return $self;
}

sub _write {
    my ($self, $data) = @_;
    while (length $data) {
        my $n = syswrite $self->{sock}, $data;
        return 0 unless defined $n && $n > 0;
        substr $data, 0, $n, '';
    }
    return 1;
}

# Read more into buf before $end: bytes read, 0 at EOF, -1 on timeout.
sub _fill {
    my ($self, $end) = @_;
    my $s = $self->{sock};
    unless ($self->{tls} && $s->pending) {
        my $left = $end - time;
        return -1 if $left <= 0;
        return -1 unless IO::Select->new($s)->can_read($left);
    }
    my $n = sysread $s, $self->{buf}, 65536, length $self->{buf};
    return $n // 0;
}

sub _frame {
    my ($self, $op, $payload) = @_;
    my $len = length $payload;
    my $h = chr(0x80 | $op);
    $h .= $len < 126 ? chr(0x80 | $len)
        : $len < 65536 ? chr(0x80 | 126) . pack('n', $len)
        : chr(0x80 | 127) . pack('Q>', $len);
    my $mask = pack 'N', int rand 2**32;
    my $m = $payload ^ substr($mask x (int($len / 4) + 1), 0, $len);
    return $self->_write($h . $mask . $m);
}

sub send_text { $_[0]->_frame(1, $_[1]) }

# ('text'|'binary', data), ('close', code, reason), ('eof') or ('timeout').
sub recv {
    my ($self, $secs) = @_;
    my $end = time + $secs;
    while (1) {
        my $b = $self->{buf};
        if (length $b >= 2) {
            my ($b0, $b1) = unpack 'CC', $b;
            my $len = $b1 & 0x7f;
            my $off = 2;
            if ($len == 126 && length $b >= 4) { $len = unpack 'n', substr $b, 2, 2; $off = 4 }
            elsif ($len == 127 && length $b >= 10) { $len = unpack 'Q>', substr $b, 2, 8; $off = 10 }
            elsif ($len >= 126) { $len = undef }
            my $mlen = $b1 & 0x80 ? 4 : 0;
            if (defined $len && length $b >= $off + $mlen + $len) {
                my $payload = substr $b, $off + $mlen, $len;
                if ($mlen) {
                    my $mask = substr $b, $off, 4;
                    $payload ^= substr($mask x (int($len / 4) + 1), 0, $len);
                }
                substr $self->{buf}, 0, $off + $mlen + $len, '';
                my $op = $b0 & 0x0f;
                return ('text', $payload) if $op == 1;
                return ('binary', $payload) if $op == 2;
                if ($op == 8) {
                    my ($code, $reason) = length $payload >= 2
                        ? (unpack('n', $payload), substr($payload, 2)) : (1005, '');
                    return ('close', $code, $reason);
                }
                $self->_frame(10, $payload) if $op == 9;    # ping -> pong
                next;
            }
        }
        my $n = $self->_fill($end);
        return ('timeout') if $n < 0;
        return ('eof') if $n == 0;
    }
}

# Leave without a close frame.
sub abort {
    my $self = shift;
    close $self->{sock};
}

sub close_clean {
    my $self = shift;
    $self->_frame(8, pack 'n', 1000);
    my @r = $self->recv(10);
    close $self->{sock};
    return @r;
}
