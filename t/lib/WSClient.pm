# WSClient -- a small blocking WebSocket client for the Apache::Test suite.
#
#   use FindBin; use lib "$FindBin::Bin/lib"; use WSClient;
#
#   my $ws = WSClient->connect('/ws/count', [ 'Session-ID' => $id ], $port);
#   $ws->status, $ws->header('Session-ID'), $ws->body (non-101 answers)
#   $ws->send_text("a"); my $f = $ws->recv_frame(5);
#   $f: { opcode, type (text|binary|close|ping|pong), payload, code, reason }
#       or { eof => 1 } when the server closed the TCP connection,
#       or undef when nothing arrived within the timeout.
#   $ws->close_clean  (close frame 1000, wait for the answer and EOF)
#   $ws->drop         (close the TCP connection without a close frame)
#   my($ws, $fp, $keeper) = WSClient->connect_keeper($path, $headers, $port)
#   WSClient->connect_in_keeper($keeper, $path, $headers, $port): a session
#                     served by that (waiting) keeper
#   WSClient::spawner_socket($httpd_pid), WSClient::keeper_socket($keeper_pid):
#                     the abstract names of the module's sockets (no "@")
#
# connect() sends a complete, valid RFC 6455 handshake by default (to
# 127.0.0.1, Host: localhost:<port>). Headers given as name => value pairs
# replace the default header of the same name (case-insensitive); a value
# of undef removes it. Options after the port: method, proto ('HTTP/1.0'),
# key, timeout, host, from (the local address to connect from, e.g.
# 127.0.0.2 to be another client), early (bytes sent in the same write as
# the request, e.g. frames pipelined behind the handshake), sndbuf (bytes of
# send buffer for the socket, so that much of early is queued at once,
# before the server reads any of it; above net.core.wmem_max only as root).
#
# Every Session-ID seen in a 101 answer is appended to
# <t_logs>/websession-ids-seen, so a test can check that no secret ever
# reaches the server's logs.
package WSClient;

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select ();
use IO::Socket::INET ();
use Socket ();
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1_base64);
use Time::HiRes qw(time);
use Protocol::WebSocket::Frame ();

our $TIMEOUT = 10;
my %OPNAME = (0 => 'continuation', 1 => 'text', 2 => 'binary',
              8 => 'close', 9 => 'ping', 10 => 'pong');

sub port {
    require Apache::Test;
    return Apache::Test::vars('port');
}

sub ids_file {
    require Apache::Test;
    return Apache::Test::vars('t_logs') . '/websession-ids-seen';
}

sub random_key {
    return encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
}

sub expected_accept {
    my($key) = @_;
    return sha1_base64($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11') . '=';
}

sub connect {
    my($class, $path, $headers, $port, %opt) = @_;
    $port //= port();
    my $timeout = $opt{timeout} // $TIMEOUT;
    my $key = $opt{key} // random_key();
    my $sock = IO::Socket::INET->new(PeerAddr => $opt{host} // '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => $timeout,
                                     ($opt{from} ? (LocalAddr => $opt{from}) : ()))
        or die "connect to port $port: $@\n";
    binmode $sock;
    $sock->autoflush(1);
    if ($opt{sndbuf}) {
        # SO_SNDBUFFORCE (32 on Linux) passes wmem_max for root; else SO_SNDBUF
        setsockopt($sock, Socket::SOL_SOCKET(), 32, pack('i', $opt{sndbuf}))
            or setsockopt($sock, Socket::SOL_SOCKET(), Socket::SO_SNDBUF(),
                          pack('i', $opt{sndbuf}));
    }

    my @hdr = (Host => "localhost:$port", Upgrade => 'websocket',
               Connection => 'Upgrade', 'Sec-WebSocket-Key' => $key,
               'Sec-WebSocket-Version' => '13');
    my @extra = @{ $headers || [] };
    while (my($name, $value) = splice @extra, 0, 2) {
        my $replaced = 0;
        for (my $i = 0; $i < @hdr; $i += 2) {
            next unless lc $hdr[$i] eq lc $name;
            $hdr[$i + 1] = $value;
            $replaced = 1;
        }
        push @hdr, $name, $value unless $replaced;
    }
    my $req = sprintf "%s %s %s\r\n", $opt{method} // 'GET', $path,
                      $opt{proto} // 'HTTP/1.1';
    for (my $i = 0; $i < @hdr; $i += 2) {
        $req .= "$hdr[$i]: $hdr[$i + 1]\r\n" if defined $hdr[$i + 1];
    }
    $req .= "\r\n";
    $req .= $opt{early} if defined $opt{early};

    my $self = bless { sock => $sock, buf => '', key => $key, port => $port,
                       timeout => $timeout, eof => 0 }, $class;
    $self->_write_all($req) or die "sending the handshake failed: $!\n";

    # status line and headers
    my $deadline = time + $timeout;
    while ($self->{buf} !~ /\r\n\r\n/) {
        $self->_fill($deadline) > 0
            or die "no complete HTTP response header within ${timeout}s (got: "
                 . _printable($self->{buf}) . ")\n";
    }
    $self->{buf} =~ s/^(.*?)\r\n\r\n//s;
    my($status_line, @lines) = split /\r\n/, $1;
    $status_line =~ m{^HTTP/\d\.\d (\d{3})\s*(.*)$}
        or die "bad status line: $status_line\n";
    @$self{qw(status reason status_line)} = ($1, $2, $status_line);
    my %h;
    for (@lines) {
        my($n, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $n = lc $n;
        $h{$n} = exists $h{$n} ? "$h{$n}, $v" : $v;
    }
    $self->{headers} = \%h;

    if ($self->{status} == 101) {
        $self->{frame} = Protocol::WebSocket::Frame->new(max_payload_size => 0);
        if (defined(my $id = $h{'session-id'})) {
            if (open my $fh, '>>', ids_file()) {
                print $fh "$id\n";
                close $fh;
            }
        }
    }
    else {
        $self->{body} = $self->_read_body($deadline, $opt{method} // 'GET');
    }
    return $self;
}

sub sock        { $_[0]{sock} }
sub status      { $_[0]{status} }
sub status_line { $_[0]{status_line} }
sub body        { $_[0]{body} }
sub key         { $_[0]{key} }
sub headers     { $_[0]{headers} }
sub header      { $_[0]{headers}{ lc $_[1] } }
sub session_id  { $_[0]{headers}{'session-id'} }
sub local_port  { $_[0]{sock}->sockport }

sub _printable {
    my $s = substr($_[0], 0, 200);
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}

sub _write_all {
    my($self, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite $self->{sock}, $data, length($data) - $off, $off;
        if (!defined $n) {
            next if $! == EINTR;
            return 0;
        }
        $off += $n;
    }
    return 1;
}

# Read what is there into buf: >0 bytes read, 0 EOF (or an error), -1 timeout.
sub _fill {
    my($self, $deadline) = @_;
    return 0 if $self->{eof};
    my $sel = IO::Select->new($self->{sock});
    for (;;) {
        my $left = $deadline - time;
        return -1 if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $self->{sock}, my $chunk, 1 << 20;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            $self->{eof} = 1;
            $self->{error} = "$!";
            return 0;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return 0;
        }
        $self->{buf} .= $chunk;
        return $n;
    }
}

sub _read_body {
    my($self, $deadline, $method) = @_;
    my $h = $self->{headers};
    return '' if $method eq 'HEAD' || $self->{status} == 204 || $self->{status} == 304;
    if (defined(my $len = $h->{'content-length'})) {
        while (length $self->{buf} < $len) {
            last if $self->_fill($deadline) <= 0;
        }
        return substr($self->{buf}, 0, $len, '');
    }
    if (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
        my $body = '';
        for (;;) {
            while ($self->{buf} !~ /\r\n/) {
                return $body if $self->_fill($deadline) <= 0;
            }
            $self->{buf} =~ s/^([0-9a-fA-F]+)[^\r]*\r\n// or return $body;
            my $size = hex $1;
            while (length $self->{buf} < $size + 2) {
                return $body if $self->_fill($deadline) <= 0;
            }
            $body .= substr($self->{buf}, 0, $size, '');
            substr($self->{buf}, 0, 2, '');
            if ($size == 0) {
                # trailers, if any, end with an empty line: not needed here
                return $body;
            }
        }
    }
    1 while $self->_fill($deadline) > 0;     # until EOF
    my $body = $self->{buf};
    $self->{buf} = '';
    return $body;
}

# ---- frames --------------------------------------------------------------

sub frame_bytes {
    my($type, $payload, %opt) = @_;
    my $f = Protocol::WebSocket::Frame->new(masked => 1, max_payload_size => 0,
                                            type => $type, buffer => $payload // '');
    $f->fin($opt{fin}) if exists $opt{fin};
    $f->opcode($opt{opcode}) if exists $opt{opcode};
    return $f->to_bytes;
}

sub send_raw    { my $s = shift; return $s->_write_all($_[0]) }
sub send_text   { my($s, $d) = @_; return $s->send_raw(frame_bytes('text', $d)) }
sub send_binary { my($s, $d) = @_; return $s->send_raw(frame_bytes('binary', $d)) }
sub send_ping   { my($s, $d) = @_; return $s->send_raw(frame_bytes('ping', $d)) }

sub send_close {
    my($s, $code, $reason) = @_;
    my $payload = defined $code ? pack('n', $code) . ($reason // '') : '';
    return $s->send_raw(frame_bytes('close', $payload));
}

# Next complete frame (messages reassembled), {eof => 1} or undef on timeout.
sub recv_frame {
    my($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    for (;;) {
        my $f = $self->{frame};
        if (length $self->{buf}) {
            $f->append($self->{buf});
        }
        my $payload = $f->next_bytes;
        if (defined $payload) {
            my $op = $f->opcode;
            my %r = (opcode => $op, type => $OPNAME{$op} // "op$op",
                     payload => $payload);
            if ($op == 8) {
                if (length $payload >= 2) {
                    $r{code} = unpack 'n', $payload;
                    $r{reason} = substr $payload, 2;
                }
                else {
                    $r{code} = 1005;     # no status code present
                    $r{reason} = '';
                }
            }
            return \%r;
        }
        my $n = $self->_fill($deadline);
        return undef if $n < 0;
        return { eof => 1, error => $self->{error} } if $n == 0;
    }
}

# Next text/binary message, skipping pings/pongs; undef on timeout.
sub recv_message {
    my($self, $timeout) = @_;
    for (;;) {
        my $f = $self->recv_frame($timeout) or return undef;
        next if $f->{type} eq 'ping' || $f->{type} eq 'pong';
        return $f;
    }
}

# True when the server closes the TCP connection within the timeout; data
# that arrives first is discarded.
sub wait_eof {
    my($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    $self->{buf} = '';
    for (;;) {
        my $n = $self->_fill($deadline);
        return 1 if $n == 0;
        return 0 if $n < 0;
        $self->{buf} = '';
    }
}

# Clean close: our close frame, the server's close frame, then EOF.
# Returns the server's close frame (or what came instead).
sub close_clean {
    my($self, $code, $timeout) = @_;
    $self->send_close($code // 1000);
    my $deadline = time + ($timeout // $self->{timeout});
    my $answer;
    for (;;) {
        my $f = $self->recv_frame($deadline - time);
        $answer = $f;
        last if !$f || $f->{eof} || $f->{type} eq 'close';
    }
    $self->wait_eof(2) if $answer && !$answer->{eof};
    $self->drop;
    return $answer;
}

sub drop {
    my $self = shift;
    close $self->{sock} if $self->{sock};
    $self->{eof} = 1;
}

# ---- the server's logs --------------------------------------------------------

sub log_path {
    my($name) = @_;
    require Apache::Test;
    return Apache::Test::vars('t_logs') . '/' . ($name // 'error_log');
}

# Current size of a log: pass it to log_since / wait_log to see only what
# was written afterwards.
sub log_offset {
    my($name) = @_;
    return -s log_path($name) // 0;
}

sub log_since {
    my($offset, $name) = @_;
    open my $fh, '<', log_path($name) or return '';
    binmode $fh;
    seek $fh, $offset // 0, 0;
    local $/;
    my $text = <$fh>;
    return $text // '';
}

# Poll the log until $re matches what was written after $offset; returns
# the list of captures (or (1) without captures), or () on timeout.
sub wait_log {
    my($re, $timeout, $offset, $name) = @_;
    my $deadline = time + ($timeout // 10);
    for (;;) {
        my @m = log_since($offset, $name) =~ $re;
        return @m if @m;
        return () if time > $deadline;
        Time::HiRes::sleep(0.1);
    }
}

# Poll $cond->() until it is true (returns its value) or the timeout passes
# (returns false).
sub eventually {
    my($timeout, $cond) = @_;
    my $deadline = time + $timeout;
    for (;;) {
        my $v = $cond->();
        return $v if $v;
        return 0 if time > $deadline;
        Time::HiRes::sleep(0.1);
    }
}

# ---- the module's sockets ----------------------------------------------------------

# Their abstract names, as every local user can read them in /proc/net/unix:
# "mod_websession/<httpd>/spawner.<mac>" and
# "mod_websession/<httpd>/k<slot>.<gen>.<mac>" (ipc.h; the MAC is what makes
# the next name unguessable).  Returned without the leading "@".
my $NAME_MAC = qr/(?:\.[0-9a-f]{32})?/;

sub _unix_names {
    my($want) = @_;
    open my $fh, '<', '/proc/net/unix' or return;
    my @names;
    while (<$fh>) {
        my @f = split;
        push @names, [ $f[6], substr($f[7], 1) ] if @f >= 8 && $f[7] =~ $want;
    }
    return @names;
}

# The spawner's socket of the httpd whose parent is $httpd.
sub spawner_socket {
    my($httpd) = @_;
    my($n) = _unix_names(qr{^\@mod_websession/\Q$httpd\E/spawner$NAME_MAC$});
    return $n && $n->[1];
}

# The socket a keeper (pid $keeper) listens on for its session, found by the
# socket inodes among its descriptors.
sub keeper_socket {
    my($keeper) = @_;
    my %mine;
    opendir my $d, "/proc/$keeper/fd" or return;
    for (readdir $d) {
        my $l = readlink "/proc/$keeper/fd/$_" // next;
        $mine{$1} = 1 if $l =~ /^socket:\[(\d+)\]$/;
    }
    my($n) = grep { $mine{ $_->[0] } }
             _unix_names(qr{^\@mod_websession/\d+/k\d+\.\d+$NAME_MAC$});
    return $n && $n->[1];
}

# ---- keepers ---------------------------------------------------------------------

# A new session and its (public id, keeper pid), read from the worker's
# WS00005 line.
sub connect_keeper {
    my($class, $path, $headers, $port) = @_;
    my $off = log_offset();
    my $ws = $class->connect($path, $headers, $port);
    my $cp = $ws->local_port;
    my($fp, $keeper) = wait_log(
        qr/\[client 127\.0\.0\.1:$cp\] WS00005: \[([0-9a-f]{16})\] new session, keeper (\d+)/,
        5, $off);
    return ($ws, $fp, $keeper);
}

# A new session served by the keeper $keeper, which waits for a session
# (pool.h), or () if none came to it.  Other keepers may be waiting as well
# (the one that began last comes first): sessions are opened and held until
# one lands in $keeper, then the others are closed.
sub connect_in_keeper {
    my($class, $keeper, $path, $headers, $port) = @_;
    my(@held, @found);
    for (1 .. 40) {
        my($ws, $fp, $k) = $class->connect_keeper($path, $headers, $port);
        if (defined $k && $k == $keeper) {
            @found = ($ws, $fp, $k);
            last;
        }
        push @held, $ws;
    }
    $_->close_clean for @held;
    return @found;
}

1;
