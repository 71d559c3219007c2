# PrivateHttpd -- an httpd of a test's own, beside the harness's.
#
#   use FindBin; use lib "$FindBin::Bin/lib"; use PrivateHttpd;
#
#   my $h = PrivateHttpd->new(edit => sub { my($extra) = @_; ...; return '' });
#   $h or skip 'no private configuration: ' . PrivateHttpd->error;
#   $h->start or ...;          # true once it answers a GET
#   $h->port, $h->ports, $h->errlog, $h->pidfile, $h->dir, $h->conf, $h->pid
#   $h->stop;                  # also at the end of the test file
#   use PrivateHttpd qw(get_ok alive poll_until free_ports): the helpers below
#
# The configuration is a copy of the harness's generated httpd.conf and
# extra.conf with free ports instead of the harness's, and everything under
# t_logs (pid file, logs, runtime directory, cgid socket, TLS session cache)
# in a directory of its own, with a copy of the certificate.  The edit
# callback gets a reference to the copy of extra.conf to change and returns
# '' or what went wrong.  The session table, spawner and keepers are the
# private httpd's own, so a test may kill them or fill its table without
# disturbing the other tests.
package PrivateHttpd;

use strict;
use warnings;

use Apache::Test ();
use Exporter qw(import);
use File::Spec::Functions qw(catfile catdir);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(get_ok alive poll_until free_ports);

my $error = '';
my @running;

sub error { return $error }

sub new {
    my($class, %opt) = @_;
    my $vars   = Apache::Test::vars();
    my $t_logs = $vars->{t_logs};
    my $confdir = catdir($vars->{serverroot}, 'conf');
    my($main, $extra) = map { slurp(catfile($confdir, $_)) } 'httpd.conf', 'extra.conf';
    unless (defined $main && defined $extra) {
        $error = "cannot read $confdir/httpd.conf or extra.conf";
        return;
    }
    my $d = tempdir('websession-private-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $d;
    mkdir catdir($d, 'ssl');
    mkdir catdir($d, 'state');
    for (qw(server.crt server.key)) {
        my $src = catfile($t_logs, 'ssl', $_);
        system('cp', '-p', $src, catfile($d, 'ssl', $_)) if -e $src;
    }
    # every port of the harness's configuration: the main one and each
    # virtual host's (Apache::Test names them <vhost>_port)
    my @old = grep { $_ } $vars->{port},
              map { $vars->{$_} } sort grep { /_port$/ && $_ ne 'port' && ($vars->{$_} // '') =~ /^\d+$/ }
              keys %$vars;
    my @new = free_ports($vars->{port}, scalar @old) or do { $error = 'no free ports'; return };
    my $extra_path = catfile($d, 'extra.conf');
    my $state = catdir($vars->{serverroot}, 'state');
    for my $text ($main, $extra) {
        $text =~ s/\Q$t_logs\E/$d/g;
        $text =~ s/\Q$state\E/$d\/state/g;
        for my $i (0 .. $#old) {
            $text =~ s/:$old[$i]\b/:$new[$i]/g;
        }
    }
    my $n = $main =~ s/^(\s*Include\s+)"?\Q$confdir\E\/extra\.conf"?\s*$/$1"$extra_path"/mg;
    unless ($n == 1) {
        $error = "$n Include lines for extra.conf in httpd.conf";
        return;
    }
    if ($opt{edit}) {
        my $why = $opt{edit}->(\$extra);
        if ($why) {
            $error = $why;
            return;
        }
    }
    my $conf = catfile($d, 'httpd.conf');
    spew($conf, $main);
    spew($extra_path, $extra);
    return bless { vars => $vars, conf => $conf, dir => $d, ports => \@new,
                   pidfile => catfile($d, 'httpd.pid'), errlog => catfile($d, 'error_log') },
                 $class;
}

sub conf    { $_[0]{conf} }
sub dir     { $_[0]{dir} }
sub port    { $_[0]{ports}[0] }
sub ports   { @{ $_[0]{ports} } }
sub pidfile { $_[0]{pidfile} }
sub errlog  { $_[0]{errlog} }

sub pid {
    my $t = slurp($_[0]{pidfile}) // '';
    return $t =~ /(\d+)/ ? $1 : undef;
}

sub command {
    my($self, $what) = @_;
    my $v = $self->{vars};
    return "$v->{httpd} -d $v->{serverroot} -f $self->{conf} -k $what";
}

# Start it; true once it answers a GET within 30 s.  $self->{output} holds
# what httpd printed.
sub start {
    my($self) = @_;
    my $cmd = $self->command('start');
    $self->{output} = qx{$cmd 2>&1};
    push @running, $self;
    return poll_until(30, sub { -s $self->{pidfile} && get_ok($self->port) });
}

sub output { $_[0]{output} // '' }

# Stop it; true once its parent is gone (within 10 s).
sub stop {
    my($self) = @_;
    local $?;
    my $pid = $self->pid;
    my $cmd = $self->command('stop');
    qx{$cmd 2>&1};
    @running = grep { $_ != $self } @running;
    return poll_until(10, sub { !($pid && alive($pid)) });
}

END { $_->stop for @running }

# ---- helpers, also for the tests themselves ---------------------------------------

sub free_ports {
    my($from, $want) = @_;
    my @p;
    for my $p ($from + 20 .. $from + 200) {
        my $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => $p,
                                      Listen => 1, ReuseAddr => 1) or next;
        close $s;
        push @p, $p;
        return @p if @p == $want;
    }
    return;
}

sub get_ok {
    my $p = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p, Timeout => 5)
        or return 0;
    print $s "GET /ws/index.html HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my $line = <$s> // '';
    return $line =~ m{^HTTP/1\.\d 200};
}

# A process that exited but was not reaped yet (zombie) counts as gone.
sub alive {
    my $pid = shift;
    my $s = slurp("/proc/$pid/stat") // return 0;
    return $s !~ /^\d+ \(.*\) Z/s;
}

sub poll_until {
    my($secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        return 1 if $cond->();
        return 0 if time > $end;
        sleep 0.2;
    }
}

sub slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    return <$fh>;
}

sub spew {
    open my $fh, '>', $_[0] or die "$_[0]: $!";
    print $fh $_[1];
    close $fh or die "$_[0]: $!";
}

1;
