# A bad directive value must stop httpd at config time, with a message
# that names the directive and what it accepts. Runs `httpd -t` on tiny
# configs that load only an MPM and the freshly built module.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use File::Spec::Functions qw(catfile);
use File::Temp qw(tempdir);

my $vars  = Apache::Test::vars();
my $httpd = $vars->{httpd} || '/usr/sbin/apache2';
my $so    = Apache::Test::config()->{modules}{'mod_websession.c'}
         || catfile($vars->{top_dir}, '.libs', 'mod_websession.so');
my $mpm   = '/usr/lib/apache2/modules/mod_mpm_event.so';

# [ name, config lines, regexes the error output must match ]
# Directory-level directives go in <Location>, like t/conf/extra.conf.in.
my @bad = (
    [ 'WebSession maybe',
      "<Location /x>\n  WebSession maybe\n</Location>",
      [ qr/WebSession\b/, qr/\bOn\b/, qr/\bOff\b/ ] ],
    [ 'WebSessionMessages json',
      "<Location /x>\n  WebSessionMessages json\n</Location>",
      [ qr/WebSessionMessages/, qr/\blines\b/, qr/\bframed\b/ ] ],
    [ 'WebSessionResumeTimeout -1',
      "<Location /x>\n  WebSessionResumeTimeout -1\n</Location>",
      [ qr/WebSessionResumeTimeout/, qr/second|integer|number/i ] ],
    [ 'WebSessionResumeTimeout abc',
      "<Location /x>\n  WebSessionResumeTimeout abc\n</Location>",
      [ qr/WebSessionResumeTimeout/, qr/second|integer|number/i ] ],
    [ 'WebSessionMaxMessage 0',
      "<Location /x>\n  WebSessionMaxMessage 0\n</Location>",
      [ qr/WebSessionMaxMessage/, qr/byte|integer|number|positive/i ] ],
    [ 'WebSessionMaxSessions 0',
      "WebSessionMaxSessions 0",
      [ qr/WebSessionMaxSessions/, qr/integer|number|positive/i ] ],
    [ 'WebSessionOrigin ftp//x',
      "<Location /x>\n  WebSessionOrigin ftp//x\n</Location>",
      [ qr/WebSessionOrigin/, qr/\bsame\b/, qr/\bany\b/ ] ],
    # With TAKE1, httpd core itself refuses "" ("WebSessionCommand takes
    # one argument, <help string>"), so the help string is the message.
    [ 'WebSessionCommand ""',
      "<Location /x>\n  WebSession On\n  WebSessionCommand \"\"\n</Location>",
      [ qr/WebSessionCommand/, qr/empty|missing|must|require|argument|command/i ] ],
    [ 'WebSessionRoute node.1',
      "WebSessionRoute node.1",
      [ qr/WebSessionRoute/, qr/1 to 32/, qr/route=/ ] ],
    [ 'WebSessionRoute of 33 characters',
      "WebSessionRoute " . ('r' x 33),
      [ qr/WebSessionRoute/, qr/1 to 32/ ] ],
    [ 'WebSessionRouteCookie a=b',
      "WebSessionRouteCookie a=b",
      [ qr/WebSessionRouteCookie/, qr/cookie name/, qr/\boff\b/ ] ],
    [ 'WebSessionRouteCookie ROUTEID HttpOnly',
      "WebSessionRouteCookie ROUTEID HttpOnly",
      [ qr/WebSessionRouteCookie/, qr/Secure/ ] ],
);

my $good = <<'EOF_GOOD';
WebSessionMaxSessions 64
WebSessionRoute node-1_A
WebSessionRouteCookie ROUTEID Secure
<VirtualHost 127.0.0.1:1>
  WebSessionRoute none
  WebSessionRouteCookie off
</VirtualHost>
<Location /x>
  WebSession On
  WebSessionCommand "/bin/cat -u"
  WebSessionMessages framed
  WebSessionResumeTimeout 5
  WebSessionMaxMessage 1024
  WebSessionOrigin http://allowed.example https://also.example:8443
</Location>
<Location /y>
  WebSession Off
  WebSessionMessages lines
  WebSessionOrigin same
</Location>
<Location /z>
  WebSession On
  WebSessionOrigin any
</Location>
EOF_GOOD

plan tests => 1 + 3 * @bad + 4, need {
    "mod_websession is not built ($so)" => -e $so,
    "no httpd binary ($httpd)"          => -x $httpd,
    "no event MPM ($mpm)"               => -e $mpm,
};

my $dir = tempdir(CLEANUP => 1);

sub httpd_t {
    my($name, $body) = @_;
    my $conf = catfile($dir, "$name.conf");
    open my $fh, '>', $conf or die "$conf: $!";
    print $fh <<"EOC";
ServerRoot "$dir"
ServerName localhost
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
ErrorLog "$dir/error_log"
Listen 127.0.0.1:1
LoadModule mpm_event_module "$mpm"
LoadModule websession_module "$so"
$body
EOC
    close $fh;
    my $out = `"$httpd" -t -d "$dir" -f "$conf" 2>&1`;
    return ($? >> 8, $out);
}

{
    my($rc, $out) = httpd_t('good', $good);
    is $rc, 0, 'a good configuration passes httpd -t'
        or diag $out;
}

my $n = 0;
for my $case (@bad) {
    my($name, $body, $want) = @$case;
    my($rc, $out) = httpd_t('bad' . $n++, $body);
    isnt $rc, 0, "$name: httpd -t fails";
    like $out, qr/Syntax error/i, "$name: reported as a syntax error"
        or diag $out;
    my @miss = grep { $out !~ $_ } @$want;
    ok !@miss, "$name: message names the directive and the allowed values"
        or diag "output:\n$out\nmissing: @miss";
}

# The module must not accept WebSessionMaxSessions inside <Location>
# (it is server-wide) ...
{
    my($rc, $out) = httpd_t('maxsess-in-location',
        "<Location /x>\n  WebSessionMaxSessions 5\n</Location>");
    isnt $rc, 0, 'WebSessionMaxSessions inside <Location> is refused';
    like $out, qr/WebSessionMaxSessions/, '... naming the directive'
        or diag $out;
}

# ... nor WebSessionRoute there (it is per server).
{
    my($rc, $out) = httpd_t('route-in-location',
        "<Location /x>\n  WebSessionRoute node1\n</Location>");
    isnt $rc, 0, 'WebSessionRoute inside <Location> is refused';
    like $out, qr/WebSessionRoute/, '... naming the directive'
        or diag $out;
}
