# CheckRun -- run a test client that prints one line of JSON (the clients
# in t/clients/, see checkrun.py there) and turn the named checks it
# reports into Test::More assertions.
#
#   use FindBin; use lib "$FindBin::Bin/lib"; use CheckRun;
#
# run_json_client(@cmd): runs "@cmd 2>&1" through the shell and returns
#   { output  => all it printed,  rc => its exit status,
#     seconds => how long it ran,
#     line    => its first output line that starts with "{" (or undef),
#     summary => that line decoded (undef if none, or not JSON) }.
#   It asserts nothing.
#
# location_setting($vars, $location, $directive, $default): the value of a
#   directive in a <Location> block of the generated extra.conf (the
#   clients' time bounds are relative to what the server was given), or
#   $default when the block or the directive is not there.
#
# run_python_checks(cmd => [@cmd], checks => [[name => text], ...],
#                   skip => sub { reason or false }, assert_summary => 1)
#   runs the client as run_json_client does, then asserts:
#   - with assert_summary, first that it printed its JSON summary;
#   - for each of checks, in order, ok(text) when the summary's "checks"
#     has one of that name with a true "ok" (diag "name: detail", or "name:
#     not reported"), or a skip when skip->(name) gives a reason.
#   It returns what run_json_client does, with summary {} for none, plus
#   got (name => check, as reported), failed (the names of the checks
#   asserted that failed) and unlisted (names reported but not in checks,
#   sorted).  Its exit status and errors are the caller's to assert;
#   client_diag($r, @lines) writes the errors, @lines and the output.
package CheckRun;

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP ();
use Test::More ();
use Time::HiRes qw(time);

our @EXPORT = qw(run_json_client run_python_checks client_diag location_setting);

sub run_json_client {
    my @cmd = @_;
    my $t0  = time;
    my $out = qx{@cmd 2>&1};
    my %r = (output => $out, rc => $? >> 8, seconds => time - $t0);
    ($r{line}) = grep { /^\{/ } split /\n/, $out;
    $r{summary} = eval { JSON::PP->new->decode($r{line} // '') };
    return \%r;
}

sub run_python_checks {
    my %opt = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = run_json_client(@{ $opt{cmd} });
    if ($opt{assert_summary}) {
        Test::More::ok($r->{summary},
                       sprintf 'client printed its JSON summary (%.1f s)', $r->{seconds})
            or Test::More::diag("client output:\n$r->{output}");
    }
    $r->{summary} ||= {};
    my %got = map { $_->{name} => $_ } @{ $r->{summary}{checks} || [] };
    my @failed;
    for (@{ $opt{checks} }) {
        my ($name, $text) = @$_;
        if (my $why = $opt{skip} && $opt{skip}->($name)) {
            Test::More->builder->skip($why);
            next;
        }
        next if Test::More::ok($got{$name} && $got{$name}{ok}, $text);
        push @failed, $name;
        Test::More::diag("$name: " . ($got{$name} ? $got{$name}{detail} : 'not reported'));
    }
    my %listed = map { $_->[0] => 1 } @{ $opt{checks} };
    $r->{got}      = \%got;
    $r->{failed}   = \@failed;
    $r->{unlisted} = [ grep { !$listed{$_} } sort keys %got ];
    return $r;
}

sub location_setting {
    my ($vars, $location, $directive, $default) = @_;
    my $conf = "$vars->{t_conf}/extra.conf";
    open my $fh, '<', $conf or die "$conf: $!";
    my ($block) = join('', <$fh>) =~ m{<Location\s+\Q$location\E>(.*?)</Location>}s;
    return ($block // '') =~ /^\s*\Q$directive\E\s+(\S+)/m ? $1 : $default;
}

sub client_diag {
    my ($r, @lines) = @_;
    Test::More::diag(join "\n", 'client errors:', @{ $r->{summary}{errors} || [] },
                     @lines, 'output:', $r->{output});
    return;
}

1;
