# The browser library is served by the module (SetHandler websession-client):
# as a classic script (/websession.js) and as an ES module (/websession.mjs),
# with an ETag that conditional requests honour, GET and HEAD only.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD POST);

plan tests => 14, need_module('websession');

my $js = GET '/websession.js';
is $js->code, 200, 'GET /websession.js: 200';
like $js->header('Content-Type'), qr{^text/javascript\b}, '... as text/javascript';
like $js->content, qr/\bWebSession\b/, '... the library';
unlike $js->content, qr/^\s*export\b/m, '... a classic script: no export statement';
is $js->header('Content-Length'), length($js->content), '... Content-Length matches';
my $etag = $js->header('ETag');
ok $etag, "... with an ETag ($etag)";
like $js->header('Cache-Control') // '', qr/no-cache/, '... revalidated by browsers';

my $again = GET '/websession.js', 'If-None-Match' => $etag;
is $again->code, 304, 'If-None-Match with that ETag: 304';

my $mjs = GET '/websession.mjs';
is $mjs->code, 200, 'GET /websession.mjs: 200';
like $mjs->content, qr/^export default WebSession;$/m, '... an ES module with a default export';
isnt $mjs->header('ETag'), $etag, '... with its own ETag';

my $head = HEAD '/websession.js';
is $head->code, 200, 'HEAD: 200';
is $head->content, '', '... without a body';

is +(POST '/websession.js', content => 'x')->code, 405, 'POST: 405';
