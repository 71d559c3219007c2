/* client_handler.c -- the browser library, served from inside the module. */

#include <string.h>

#include "httpd.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include "client_handler.h"

/* build/client_js.c, generated from client/websession.js */
extern const unsigned char ws_client_js[];
extern const apr_size_t ws_client_js_len;

#define ESM_TAIL "\nexport const WebSession = globalThis.WebSession;\n" \
                 "export default WebSession;\n"

static const char *etag(apr_pool_t *p, int esm)
{
    apr_uint32_t h = 2166136261u;       /* FNV-1a over the library */

    for (apr_size_t i = 0; i < ws_client_js_len; i++) {
        h = (h ^ ws_client_js[i]) * 16777619u;
    }
    return apr_psprintf(p, "\"wsjs-%08x-%s\"", (unsigned)h, esm ? "m" : "c");
}

int ws_client_handler(request_rec *r)
{
    apr_size_t n;
    int esm, rv;

    if (!r->handler || strcmp(r->handler, "websession-client")) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    n = strlen(r->uri);
    esm = n > 4 && !strcmp(r->uri + n - 4, ".mjs");
    apr_table_setn(r->headers_out, "ETag", etag(r->pool, esm));
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    rv = ap_meets_conditions(r);
    if (rv != OK) {
        return rv;
    }
    ap_set_content_type(r, "text/javascript; charset=utf-8");
    ap_set_content_length(r, ws_client_js_len + (esm ? strlen(ESM_TAIL) : 0));
    if (r->header_only) {
        return OK;
    }
    ap_rwrite(ws_client_js, (int)ws_client_js_len, r);
    if (esm) {
        ap_rputs(ESM_TAIL, r);
    }
    return OK;
}
