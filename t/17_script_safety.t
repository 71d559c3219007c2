# Scripts others could change are not run (docs/DIRECTIVES.md, "Script
# safety"): a script, or a directory from its own up to the scope of
# WebSession On, writable by its group or by others; the file a symlink
# leads to and the directory it is in; a WebSessionCommand program; a
# directory above the scope writable by others without the sticky bit
# (group-writable directories above the scope, and sticky ones, are the
# administrator's).
# Each is refused with 500 and WebSession-Error: script-unsafe, on a
# WebSocket and on the HTTP fallback, before anything starts, and the error
# log gets one line (WS00006) that names what is unsafe. Safe scripts,
# safe symlinks and a scope below a sticky world-writable directory run.
#
# The files are made here, under <DocumentRoot>/tmp-safety (the <Directory>
# sections of t/conf/extra.conf.in), with the modes each case needs, and
# removed at the end: nothing world-writable is committed.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test qw(-withtestmore);
use File::Path qw(remove_tree);
use WSClient;

plan tests => 44, need_module('websession');

my $port = Apache::Test::vars('port');
my $top  = Apache::Test::vars('documentroot') . '/tmp-safety';

remove_tree($top);
END { remove_tree($top) if $top }

sub dir {
    my($path, $mode) = @_;
    mkdir "$top/$path" or die "mkdir $top/$path: $!\n";
    chmod $mode, "$top/$path" or die "chmod $top/$path: $!\n";
}

sub script {
    my($path, $mode) = @_;
    open my $fh, '>', "$top/$path" or die "$top/$path: $!\n";
    print $fh "#!/bin/sh\nexec cat\n";
    close $fh or die "$top/$path: $!\n";
    chmod $mode, "$top/$path" or die "chmod $top/$path: $!\n";
}

sub link_to {
    my($target, $path) = @_;
    symlink $target, "$top/$path" or die "symlink $top/$path: $!\n";
}

dir('', 0755);
dir('ws', 0755);                        # the scope: <Directory tmp-safety/ws>
script('ws/ok', 0755);
script('ws/other-w', 0757);
script('ws/group-w', 0775);
dir('ws/open-dir', 0777);
script('ws/open-dir/s', 0755);
dir('ws/deep', 0775);
dir('ws/deep/sub', 0755);
script('ws/deep/sub/s', 0755);
dir('out', 0777);                       # outside the scope
script('out/s', 0755);
dir('safe', 0755);
script('safe/w', 0777);
script('safe/ok', 0755);
link_to('../out/s', 'ws/link-out');
link_to('../safe/w', 'ws/link-w');
link_to('../safe/ok', 'ws/link-ok');
script('cmd', 0777);                    # WebSessionCommand of /unsafe-cmd
dir('open', 0777);                      # above <Directory tmp-safety/open/scope>
dir('open/scope', 0755);
script('open/scope/s', 0755);
dir('sticky', 01777);                   # above <Directory tmp-safety/sticky/scope>
dir('sticky/scope', 0755);
script('sticky/scope/s', 0755);
dir('group', 0775);                     # above <Directory tmp-safety/group/scope>
dir('group/scope', 0755);
script('group/scope/s', 0755);

my @FALLBACK = (Upgrade => undef, Connection => undef, 'Sec-WebSocket-Key' => undef,
                'Sec-WebSocket-Version' => undef, 'WebSession-Transport' => 'sse',
                'WebSession-Received' => 0);

# A request that must be refused as unsafe: 500 script-unsafe, one log line
# (WS00006) for it and no other, which matches $why.
sub refused {
    my($name, $path, $why, @headers) = @_;
    my $off = WSClient::log_offset();
    my $ws = WSClient->connect("/tmp-safety/$path", \@headers, $port);
    my $cp = $ws->local_port;
    is $ws->status . ' ' . ($ws->header('WebSession-Error') // '-'), '500 script-unsafe',
        "$name: 500 script-unsafe";
    $ws->drop;
    my($line) = WSClient::wait_log(qr/^(.*\[client 127\.0\.0\.1:$cp\] WS00006: .*)$/m, 5, $off);
    like $line // 'no WS00006 line', $why, "... the error log says why";
    my @ids = map { /\[client 127\.0\.0\.1:$cp\].*?\b(WS\d{5}):/ ? $1 : () }
              split /\n/, WSClient::log_since($off);
    is "@ids", 'WS00006', '... in that one line, and nothing was started (no WS00005)';
}

sub runs {
    my($name, $path) = @_;
    my $ws = WSClient->connect($path, [], $port);
    is $ws->status, 101, "$name: 101";
    if ($ws->status == 101) {
        $ws->send_text('safe');
        my $f = $ws->recv_message(10);
        is $f && $f->{payload}, 'safe', '... and the script echoes';
        $ws->close_clean;
    }
    else {
        fail '... no session';
        $ws->drop;
    }
}

my $ws_dir = "$top/ws";
runs('a script of mode 0755 in a scope of mode 0755', '/tmp-safety/ws/ok');
refused('a script writable by others (0757)', 'ws/other-w',
        qr/WS00006: script \Q$ws_dir\E\/other-w not run: the program \Q$ws_dir\E\/other-w is writable by others \(mode 0757\)$/);
refused('a script writable by its group (0775)', 'ws/group-w',
        qr/the program \Q$ws_dir\E\/group-w is writable by its group \(mode 0775\)$/);
refused('a script in a directory writable by others (0777)', 'ws/open-dir/s',
        qr/directory \Q$ws_dir\E\/open-dir is writable by others \(mode 0777\)$/);
refused('a script two levels below a directory writable by its group (0775)', 'ws/deep/sub/s',
        qr/directory \Q$ws_dir\E\/deep is writable by its group \(mode 0775\)$/);
refused('a symlink to a script in a directory outside the scope writable by others',
        'ws/link-out', qr/directory \Q$top\E\/out is writable by others \(mode 0777\)$/);
refused('a symlink to a script writable by others', 'ws/link-w',
        qr/the program \Q$top\E\/safe\/w is writable by others \(mode 0777\)$/);
runs('a symlink (mode 0777, as every symlink) to a safe script in a safe directory',
     '/tmp-safety/ws/link-ok');
refused('WebSessionCommand of a program writable by others', '../unsafe-cmd',
        qr/WS00006: script \Q$top\E\/cmd not run: the program \Q$top\E\/cmd is writable by others/);
refused('WebSessionCommand of a missing program in a directory writable by others',
        '../unsafe-missing', qr/directory \Q$top\E\/out is writable by others \(mode 0777\)$/);
refused('a scope below a directory writable by others, no sticky bit', 'open/scope/s',
        qr/directory \Q$top\E\/open, above the scope, is writable by others without the sticky bit \(mode 0777\)$/);
runs('a scope below a directory writable by others with the sticky bit (01777)',
     '/tmp-safety/sticky/scope/s');
runs('a scope (WebSession On inside <IfModule> in <Directory>) below a group-writable'
     . ' directory', '/tmp-safety/group/scope/s');
refused('websession.v1: a script writable by others', 'ws/other-w',
        qr/the program \Q$ws_dir\E\/other-w is writable by others/,
        'Sec-WebSocket-Protocol' => 'websession.v1');
refused('the HTTP fallback (sse): a script writable by others', 'ws/other-w',
        qr/the program \Q$ws_dir\E\/other-w is writable by others/, @FALLBACK);

# The scope's own directory counts too.
chmod 0775, $ws_dir;
refused('a safe script once its scope directory is writable by its group (0775)', 'ws/ok',
        qr/directory \Q$ws_dir\E is writable by its group \(mode 0775\)$/);
chmod 0755, $ws_dir;
