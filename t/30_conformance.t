# RFC 6455 conformance of the WebSocket endpoint: runs the Autobahn-style
# suite t/conformance/wsconform.py (Python 3, standard library only) against
# /framed, where the module runs /bin/cat in framed mode so that every text
# and binary message comes back exactly.  The suite prints one line per case
# and, last, "conformance: N passed, M failed"; every line is shown here as a
# TAP comment: FAIL lines with diag, the others with note.
#
# To run the suite by hand against a running server:
#   /usr/bin/python3 t/conformance/wsconform.py ws://localhost:PORT/framed \
#       --max-message 1048576 [--case 6.4] [--timeout 2]
use strict;
use warnings FATAL => 'all';

use FindBin;
use File::Spec::Functions qw(catfile);

use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();

my $python = '/usr/bin/python3';
my $suite  = catfile($FindBin::Bin, 'conformance', 'wsconform.py');
# /framed: WebSessionMaxMessage 1048576 (also the module's default)
my $max_message = 1048576;

plan skip_all => 'mod_websession is not loaded' unless need_module('websession');
plan skip_all => "$python is not available" unless -x $python;
plan skip_all => "$suite is missing" unless -f $suite;

plan tests => 4;

my $vars = Apache::Test::vars();
my $url  = sprintf 'ws://%s:%d/framed', $vars->{servername}, $vars->{port};

my @cmd = ($python, $suite, $url, '--max-message', $max_message);
note "running: @cmd";

# The catalogue for these options: --list prints one line per case that a
# run with the same options would run ("<id> <description>").
my @catalogue = grep { /^\d+(?:\.\d+)+ / } qx{@cmd --list 2>&1};

my @lines;
my $status;
{
    my $pid = open(my $out, '-|', @cmd)
        or BAIL_OUT("cannot run $python $suite: $!");
    # The suite bounds every wait itself (about 10 s in all against a
    # conformant server); this only guards against a hang.
    local $SIG{ALRM} = sub { kill 'TERM', $pid; };
    alarm 600;
    while (my $line = <$out>) {
        chomp $line;
        push @lines, $line;
        if ($line =~ /^FAIL /) { diag $line } else { note $line }
    }
    close $out;
    $status = $?;
    alarm 0;
}

my ($passed, $failed);
if (@lines && $lines[-1] =~ /^conformance: (\d+) passed, (\d+) failed$/) {
    ($passed, $failed) = ($1, $2);
}
my $counts = defined $passed ? "$passed passed, $failed failed" : 'no summary line';

is $status >> 8, 0, "wsconform.py $url exits 0 ($counts)"
    or diag sprintf 'exit status %d, signal %d', $status >> 8, $status & 127;
# Every case of the catalogue ran and passed: none failed, none was
# skipped, none went missing (a crash of the suite, a case it stopped
# running, or a catalogue emptied by a bug would each show here).
my @ids = map { /^(\S+) / ? $1 : () } @catalogue;
ok defined $passed && $passed == @ids && $failed == 0 && @ids >= 300,
    "conformance: $counts, of the catalogue's " . scalar(@ids) . ' cases (wsconform.py --list)'
    or diag 'cases that failed or were skipped: '
          . (join(', ', map { /^(?:FAIL|skip) (\S+)/ ? $1 : () } @lines)
             || 'none (so some did not run at all)');
my %ok_line;
$ok_line{$_}++ for map { /^ok (\S+) / ? $1 : () } @lines;
my @missing = grep { ($ok_line{$_} // 0) != 1 } @ids;
my %listed  = map { $_ => 1 } @ids;
my @extra   = grep { !$listed{$_} } sort keys %ok_line;
ok @ids && !@missing && !@extra,
    'each case of the catalogue has exactly one "ok" line, and no other case ran'
    or diag "not passed exactly once: @missing[0 .. ($#missing < 19 ? $#missing : 19)];"
          . " not in the catalogue: @extra";
# Strict where the RFC leaves a choice: a pong for every ping of a client
# that reads, and, when a client's protocol error closes the connection,
# the echoes of its earlier messages first (a reference server does both).
my @lenient = grep { /^ok .*non-strict/ } @lines;
ok @lines && !@lenient, 'no case passed only leniently (non-strict)'
    or diag join "\n", @lenient;
