# The proof of websession.v1 (docs/PROTOCOL.md): a TCP proxy between the
# client and httpd drops connections at random -- inside the upgrade,
# mid-frame, while idle, during replay -- and stalls some.  Through it the
# reference client (tools/websession_client.py) sends 10,000 numbered
# messages to /ws/chaos-echo, which echoes each and pushes its own stream of
# 10,000.  Both streams must arrive exactly once and in order, with at
# least 100 forced drops, within two minutes.  t/clients/chaos.py does the
# work and prints one JSON line; its seed is printed so a failure can be
# replayed (--seed).
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use FindBin;
use lib "$FindBin::Bin/lib";
use CheckRun;

my $vars   = Apache::Test::vars();
my $python = '/usr/bin/python3';
my $client = catfile($vars->{top_dir}, 't', 'clients', 'chaos.py');

plan tests => 6, need
    need_module('websession'),
    { "$python cannot import websockets (python3-websockets)" =>
          system("$python -c 'import websockets' >/dev/null 2>&1") == 0 };

my $c = run_json_client('timeout', 150, $python, $client, '--port', $vars->{port},
                        qw(--messages 10000 --min-drops 100 --timeout 110));
my $r = $c->{summary} || {};
diag $c->{output} unless $r->{ok};
$r->{$_} //= '?' for qw(seed seconds stalls reconnects);

# The client's own verdict: it exits 0 only when both streams were exact,
# the drops reached --min-drops, nothing arrived that is neither an echo nor
# the stream, and no error (a timeout, a session that failed) happened; its
# summary names the seed that replays this run.
ok $c->{rc} == 0 && $r->{ok} && ($r->{seed} // '') =~ /\A\d+\z/
        && ($r->{transport} // '') eq 'websocket' && ($r->{sent} // 0) == 10000
        && ref $r->{errors} eq 'ARRAY' && !@{ $r->{errors} },
    "chaos client exits 0: 10,000 sent, no errors or stray messages"
    . " (seed $r->{seed}, $r->{seconds} s, exit $c->{rc})"
    or diag 'errors: ' . join('; ', @{ $r->{errors} || [] });
is $r->{echoes}, 10000, "10,000 messages to the script came back ($r->{echoes})";
ok $r->{echoes_exact}, '... each exactly once and in order';
is $r->{stream}, 10000, "the script's own stream of 10,000 arrived ($r->{stream})";
ok $r->{stream_exact}, '... each exactly once and in order';
cmp_ok $r->{drops} // 0, '>=', 100,
    "forced drops: $r->{drops} (" . join(', ', map { "$_ $r->{drops_by_kind}{$_}" }
                                          sort keys %{ $r->{drops_by_kind} || {} })
    . "), $r->{stalls} stalls, $r->{reconnects} resumes, in $r->{seconds} s";
