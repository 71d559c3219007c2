/* status.h -- the status page: what the sessions of this node are doing.
 *
 * Contract:
 *  - ws_status_handler() answers requests whose handler is
 *    "websession-status" (SetHandler websession-status; access is the
 *    site's own Require rules).  GET or HEAD: every live session and the
 *    node's totals, as HTML, as JSON (?format=json) or in the Prometheus
 *    text exposition format (?format=prometheus).  Never a session's
 *    secret id: sessions are named by their public fingerprint.
 *  - POST with the form field end=<fingerprint> ends that session through
 *    its keeper (IPC_HELLO with the secret from the table, then IPC_END):
 *    the client gets close 1001, the script EOF, as at any end.  Refused
 *    (403) when an Origin header names another site.  Answered 303 to the
 *    page (HTML), or 200 with JSON when ?format=json; 404 for a session
 *    that is not (or no longer) live.
 *  - ws_status_hook() adds the totals to mod_status's server-status page.
 *  - shared is the module's shared state (spawner.h); NULL answers 503.
 *    route is the node's WebSessionRoute (NULL: none), shown with the node.
 */
#ifndef WS_STATUS_H
#define WS_STATUS_H

#include "httpd.h"
#include "spawner.h"

int ws_status_handler(request_rec *r, const ws_shared *shared, const char *route);
int ws_status_hook(request_rec *r, int flags, const ws_shared *shared);

#endif /* WS_STATUS_H */
