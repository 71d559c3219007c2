# The proof of the HTTP fallback (docs/PROTOCOL.md, "The HTTP fallback
# transports"), as t/40_chaos.t is for WebSockets: the same cutting proxy
# (t/clients/chaos.py) sits between the reference client and httpd and cuts
# the fallback's requests at random points -- inside request and response
# heads, inside a POST's body or its A<n> answer, inside an event stream or
# a poll's answer, and while a stream or a poll waits.  Over sse and over
# poll, 3,000 numbered messages go to /ws/chaos-echo, which echoes each and
# pushes its own stream of 3,000: both streams must arrive exactly once and
# in order, with at least 80 forced drops each.  The seed of a run is
# printed so a failure can be replayed (chaos.py --seed).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my $N         = 3000;
my $MIN_DROPS = 80;

my $vars   = Apache::Test::vars();
my $python = '/usr/bin/python3';
my $client = catfile($vars->{top_dir}, 't', 'clients', 'chaos.py');

plan tests => 2 * 6, need_module('websession');

for my $transport (qw(sse poll)) {
    my $c = run_json_client('timeout', 150, $python, $client, '--port', $vars->{port},
                            '--transport', $transport, '--messages', $N,
                            '--min-drops', $MIN_DROPS, '--timeout', 110);
    my $r = $c->{summary} || {};
    diag $c->{output} unless $r->{ok};
    $r->{$_} //= '?' for qw(seed seconds stalls reconnects);

    # The client's own verdict (exit 0: both streams exact, enough drops, no
    # stray message, no error), with the seed that replays the run.
    ok $c->{rc} == 0 && $r->{ok} && $r->{seed} =~ /\A\d+\z/
            && ($r->{transport} // '') eq $transport && ($r->{sent} // 0) == $N
            && ref $r->{errors} eq 'ARRAY' && !@{ $r->{errors} },
        "$transport: chaos client exits 0: $N sent, no errors or stray messages"
        . " (seed $r->{seed}, $r->{seconds} s, exit $c->{rc})"
        or diag "$transport: errors: " . join('; ', @{ $r->{errors} || [] });
    is $r->{echoes}, $N, "$transport: $N messages to the script came back";
    ok $r->{echoes_exact}, "$transport: ... each exactly once and in order";
    is $r->{stream}, $N, "$transport: the script's own stream of $N arrived";
    ok $r->{stream_exact}, "$transport: ... each exactly once and in order";
    cmp_ok $r->{drops} // 0, '>=', $MIN_DROPS,
        "$transport: forced drops: " . ($r->{drops} // 0) . " ("
        . join(', ', map { "$_ $r->{drops_by_kind}{$_}" } sort keys %{ $r->{drops_by_kind} || {} })
        . "), $r->{stalls} stalls, $r->{reconnects} resumes";
}
