# The Debian package, as built and as it would be installed.
#
# `make deb` builds libapache2-mod-websession with dpkg-buildpackage (in a
# copy of the tree under build/deb/) and runs lintian, which must find no
# error. The package is unpacked into a scratch directory (dpkg-deb -x, no
# system install) and checked: its control fields and maintainer scripts
# (dh_apache2's a2enmod), every file it ships. Then a private Apache of its
# own (not the suite's; a minimal httpd.conf on a free port) loads the
# packaged module through the packaged websession.load (its path moved to
# the scratch directory) and Includes the packaged websession.conf as it is;
# a WebSocket session runs a script through it, the packaged browser library
# runs a websession.v1 session over a WebSocket and over Server-Sent Events
# (node), the module serves the same library as the package ships, and
# stopping that Apache leaves no process of it behind.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Cwd qw(abs_path);
use File::Spec::Functions qw(catfile catdir);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use lib catdir(Apache::Test::vars('top_dir'), 't', 'lib');
use WSClient;
use PrivateHttpd qw(poll_until free_ports);

my $top = abs_path(Apache::Test::vars('top_dir'));
my $pkg = 'libapache2-mod-websession';
my $NODE_WS = '/usr/share/nodejs/ws';

sub have { system("command -v $_[0] >/dev/null 2>&1") == 0 }

plan tests => 25, need
    { 'dpkg-buildpackage is not installed (dpkg-dev)' => have('dpkg-buildpackage'),
      'dh is not installed (debhelper)'                => have('dh'),
      'dh_apache2 is not installed (apache2-dev)'      => have('dh_apache2'),
      'lintian is not installed'                       => have('lintian'),
      'git is not installed'                           => have('git'),
      'node is not installed'                          => have('node'),
      'node-ws is not installed'                       => -d $NODE_WS };

# ---- make deb -----------------------------------------------------------------

my $t0 = time;
my $made = qx{make -C '$top' --no-print-directory deb 2>&1};
my $rc = $? >> 8;
my $took = time - $t0;
ok $rc == 0, sprintf 'make deb: dpkg-buildpackage and lintian succeed (%.0f s)', $took
    or diag $made;
note sprintf 'make deb took %.1f s', $took;

chomp(my $arch = qx{dpkg-architecture -qDEB_HOST_ARCH});
chomp(my $ver = qx{cd '$top' && dpkg-parsechangelog -SVersion});
my $deb = "$top/build/deb/${pkg}_${ver}_$arch.deb";
ok -f $deb, "build/deb/${pkg}_${ver}_$arch.deb exists"
    or do { diag "no package to test: the file fails here"; exit 1 };
ok !grep({ !m{^\Q$top\E/build/} } glob("$top/../${pkg}_* $top/${pkg}_* $top/*.deb $top/*.changes")),
    '... and no build output outside build/';

# lintian's output, kept by tools/build-deb
my @lint = do {
    open my $fh, '<', "$top/build/deb/lintian.txt" or die "build/deb/lintian.txt: $!\n";
    grep { /^[A-Z]: / } <$fh>;
};
my @errors = grep { /^E: / } @lint;
is scalar(@errors), 0, 'lintian: no error' or diag @errors;
note 'lintian: ' . (@lint ? join('', @lint) : "no tags\n");

# ---- what the package says about itself ----------------------------------------

my %f = map { $_ => scalar qx{dpkg-deb -f '$deb' $_} } qw(Package Architecture Depends Section);
chomp %f;
is $f{Package}, $pkg, "Package: $pkg";
like $f{Depends}, qr/(?:^|, )apache2-api-20120211(?:,|$)/,
    'Depends: apache2-api-20120211 (dh_apache2, ${misc:Depends})';
like $f{Depends}, qr/(?:^|, )apache2-bin \(>= 2\.4\.\d+\)/, '... and apache2-bin with a version';

my $scratch = tempdir('websession-deb.XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $scratch;                      # httpd's children run as nobody
my $root = "$scratch/root";
my $ctl  = "$scratch/control";
system('dpkg-deb', '-x', $deb, $root) == 0 or die "dpkg-deb -x $deb failed\n";
system('dpkg-deb', '-e', $deb, $ctl) == 0 or die "dpkg-deb -e $deb failed\n";
system('chmod', '-R', 'a+rX', $scratch) == 0 or die "chmod $scratch failed\n";

like slurp("$ctl/postinst"), qr/for conf in websession\s*; do\s+apache2_invoke enmod \$conf\b/,
    'postinst enables the module with apache2-maintscript-helper (a2enmod websession)';
like slurp("$ctl/prerm") . slurp("$ctl/postrm"), qr/for conf in websession\s*; do\s+apache2_invoke dismod \$conf\b/,
    '... prerm/postrm disable it';
is_deeply [sort split /\n/, slurp("$ctl/conffiles")],
    [ '/etc/apache2/mods-available/websession.conf', '/etc/apache2/mods-available/websession.load' ],
    'conffiles: websession.conf and websession.load';

# ---- what it ships ------------------------------------------------------------------

my $js  = "$root/usr/share/javascript/websession";
my $doc = "$root/usr/share/doc/$pkg";
my @missing = grep { !-f "$root/$_" } qw(
    usr/lib/apache2/modules/mod_websession.so
    etc/apache2/mods-available/websession.load
    etc/apache2/mods-available/websession.conf
    usr/share/javascript/websession/websession.js
    usr/share/javascript/websession/websession.mjs
    usr/share/javascript/websession/websession.d.ts
    usr/share/javascript/websession/websession.d.mts
), map { "usr/share/doc/$pkg/$_" } qw(copyright changelog.gz README.md.gz client/README.md.gz
    docs/DIRECTIVES.md.gz docs/PROTOCOL.md.gz docs/ARCHITECTURE.md.gz);
is_deeply \@missing, [], 'the module, its .load and .conf, the browser library and the docs are there';
is slurp("$root/etc/apache2/mods-available/websession.conf"), slurp("$top/websession.conf"),
    'websession.conf is the repository\'s';
is slurp("$js/websession.js"), slurp("$top/client/websession.js"),
    '/usr/share/javascript/websession/websession.js is client/websession.js';

my $load = slurp("$root/etc/apache2/mods-available/websession.load");
like $load, qr{\ALoadModule websession_module /usr/lib/apache2/modules/mod_websession\.so\n\z},
    'websession.load: one LoadModule line, for the packaged path';

# ---- a private Apache with the packaged module and conf ------------------------

my ($port) = free_ports(Apache::Test::vars('port'), 1) or die "no free port\n";
my $run = "$scratch/run";
mkdir $run, 0755 or die "mkdir $run: $!\n";
(my $scratch_load = $load) =~ s{ (/usr/lib/\S+\.so)$}{ "$root$1"}m;
write_file("$scratch/websession.load", $scratch_load);

my $script = "$scratch/hello-echo";
write_file($script, "#!/bin/sh\necho \"packaged hello\"\nexec cat\n");
chmod 0755, $script;

my $group = getgrnam('nogroup') ? 'nogroup' : 'nobody';
my $conf = "$scratch/httpd.conf";
write_file($conf, <<"EOF");
# Written by t/75_deb_package.t for one run.
ServerRoot "$scratch"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$run/httpd.pid"
DefaultRuntimeDir "$run"
DocumentRoot "$scratch"
User nobody
Group $group
ErrorLog "$scratch/error.log"
LogLevel info

LoadModule mpm_event_module  /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
<IfModule !log_config_module>
    LoadModule log_config_module /usr/lib/apache2/modules/mod_log_config.so
</IfModule>
StartServers        1
ServerLimit         1
ThreadLimit         16
ThreadsPerChild     16
MinSpareThreads     1
MaxSpareThreads     16
MaxRequestWorkers   16

# The packaged files, as a2enmod would link them (websession.load's path moved
# to where dpkg-deb -x put the module).
Include "$scratch/websession.load"
Include "$root/etc/apache2/mods-available/websession.conf"

<Location /pkg/hello>
    Require all granted
    WebSession On
    WebSessionCommand "$script"
</Location>
<LocationMatch "^/websession\\.m?js\$">
    Require all granted
    SetHandler websession-client
</LocationMatch>
EOF

chomp(my $httpd = qx{command -v apache2 || echo /usr/sbin/apache2});
my $syntax = qx{'$httpd' -t -f '$conf' 2>&1};
like $syntax, qr/Syntax OK/, "apache2 -t accepts the packaged module and websession.conf"
    or diag $syntax;

my $pid = fork // die "fork: $!\n";
if (!$pid) {
    open STDOUT, '>', "$scratch/stdout.log" or die;
    open STDERR, '>&', \*STDOUT or die;
    exec $httpd, '-f', $conf, '-DFOREGROUND' or die "exec $httpd: $!\n";
}
my $up = poll_until(15, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) });
ok $up, "the private Apache listens on 127.0.0.1:$port" or diag_logs();

# A WebSocket session with the script.
my $ws = eval { WSClient->connect('/pkg/hello', [], $port) };
diag "connect: $@" if $@;
ok $ws && $ws->status == 101 && $ws->session_id,
    'a WebSocket handshake to the script: 101 with a Session-ID';
my $first = $ws && $ws->recv_message(10);
is $first && $first->{payload}, 'packaged hello', "... the script's first line";
$ws->send_text('round trip') if $ws;
my $echo = $ws && $ws->recv_message(10);
is $echo && $echo->{payload}, 'round trip', '... and the echo of a message';
my $answer = $ws && $ws->close_clean(1000);
is $answer && $answer->{code}, 1000, '... closed cleanly (1000)';

# The packaged browser library, websession.v1 over each transport.
my $url = "ws://127.0.0.1:$port/pkg/hello";
for my $transport (qw(websocket sse)) {
    my $out = node_session("$js/websession.js", $url, $transport);
    is $out, 'open|packaged hello|v1 round trip|close 1000 true',
        "the packaged websession.js: a websession.v1 session over $transport";
}

# The module serves the library it was built with: the packaged one.
my $served = http_get($port, '/websession.js');
ok defined $served && $served eq slurp("$js/websession.js"),
    'the packaged module serves /websession.js, the same as the packaged file';

# Stopping that Apache ends everything it started.
kill TERM => $pid;
my $gone = poll_until(15, sub { waitpid($pid, WNOHANG) == $pid });
ok $gone, 'SIGTERM stops the private Apache';
my $left = poll_until(10, sub { !procs_under($scratch) });
ok $left, '... and leaves no process behind (spawner, keepers, scripts)'
    or diag "still running:\n" . join("\n", procs_under($scratch));
undef $pid if $gone;

END {
    if ($pid) {
        kill KILL => $pid;
        waitpid $pid, 0;
    }
}

# ---- helpers --------------------------------------------------------------------

sub slurp {
    my $file = shift;
    open my $fh, '<:raw', $file or return '';
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
}

sub diag_logs {
    for my $log ("$scratch/error.log", "$scratch/stdout.log") {
        my @lines = split /^/, slurp($log);
        diag "---- $log:\n" . join '', @lines[($#lines > 20 ? $#lines - 20 : 0) .. $#lines];
    }
}

# Processes whose command line or executable names the scratch directory:
# the httpd parent and workers (its -f), the script sessions.
sub procs_under {
    my $dir = shift;
    my @found;
    opendir my $dh, '/proc' or return;
    for my $p (grep { /^\d+$/ } readdir $dh) {
        next if $p == $$;
        my $cmd = slurp("/proc/$p/cmdline");
        next unless length $cmd;
        $cmd =~ tr/\0/ /;
        push @found, "$p $cmd" if index($cmd, $dir) >= 0;
    }
    return @found;
}

sub http_get {
    my($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10)
        or return undef;
    binmode $s;
    print $s "GET $path HTTP/1.0\r\nHost: 127.0.0.1:$port\r\n\r\n";
    local $/;
    my $res = <$s>;
    return undef unless defined $res && $res =~ m{\AHTTP/1\.\d 200 };
    $res =~ s/\A.*?\r\n\r\n//s;
    return $res;
}

# One websession.v1 session with the library at $lib (require()d as
# CommonJS): open, the script's greeting, one echo, close. Prints the events.
sub node_session {
    my($lib, $url, $transport) = @_;
    my $prog = <<'EOF';
const [lib, url, transport, wsPath] = process.argv.slice(1);
const WebSession = require(lib);
const seen = [];
const done = (why) => { console.log(why || seen.join('|')); process.exit(0); };
setTimeout(() => done('timeout: ' + seen.join('|')), 15000);
const s = new WebSession(url, { transport, WebSocket: require(wsPath) });
s.onopen = () => seen.push('open');
s.onmessage = (e) => {
    seen.push(e.data);
    if (e.data === 'packaged hello') s.send('v1 round trip');
    else s.close(1000);
};
s.onerror = (e) => seen.push('error ' + e.message);
s.onclose = (e) => { seen.push('close ' + e.code + ' ' + e.wasClean); done(); };
EOF
    open my $fh, '-|', 'node', '-e', $prog, $lib, $url, $transport, $NODE_WS
        or return "node: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\s+\z//;
    return $out;
}
