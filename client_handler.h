/* client_handler.h -- serving the browser library (websession.js).
 *
 * Contract:
 *  - ws_client_handler() answers requests whose handler is
 *    "websession-client" (SetHandler websession-client) with the library
 *    built into the module: a URL ending in ".mjs" gets it as an ES module
 *    (with `export`), any other URL as a classic script for <script src>.
 *  - GET and HEAD only (405 otherwise); ETag with conditional requests
 *    (304), Cache-Control no-cache so browsers revalidate after an upgrade.
 */
#ifndef WS_CLIENT_HANDLER_H
#define WS_CLIENT_HANDLER_H

#include "httpd.h"

int ws_client_handler(request_rec *r);

#endif /* WS_CLIENT_HANDLER_H */
