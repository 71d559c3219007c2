/* ws_handshake.h -- the WebSocket opening handshake and session ids, no I/O.
 *
 * Contract:
 *  - ws_hs_check() decides what an HTTP request asks for, from the header
 *    values as received (NULL when absent).  Header lists are parsed as
 *    RFC 9110 token lists: comma-separated, optional whitespace, tokens
 *    compared case-insensitively, empty elements ignored.
 *  - It never allocates; results are enums the handler maps to responses.
 *  - Session ids are WS_SECRET_LEN random bytes written as unpadded
 *    base64url (32 characters), optionally followed by "." and the node's
 *    route (WebSessionRoute), the load balancers' "<secret>.<route>"
 *    convention; decoding accepts exactly those forms.  The route is public:
 *    only the 32 characters before it are secret.
 */
#ifndef WS_HANDSHAKE_H
#define WS_HANDSHAKE_H

#include <stddef.h>
#include "session_table.h"

typedef struct {
    const char *method;         /* "GET" expected */
    int http11;                 /* request is HTTP/1.1 or later */
    const char *upgrade;        /* Upgrade */
    const char *connection;     /* Connection */
    const char *version;        /* Sec-WebSocket-Version */
    const char *key;            /* Sec-WebSocket-Key */
} ws_hs_request;

typedef enum {
    WS_HS_OK = 0,          /* a valid version 13 upgrade */
    WS_HS_NOT_WEBSOCKET,   /* no "websocket" in Upgrade: a plain request */
    WS_HS_BAD_METHOD,      /* upgrade asked with a method other than GET */
    WS_HS_BAD_PROTOCOL,    /* upgrade over HTTP/1.0 */
    WS_HS_NO_CONNECTION,   /* Connection lacks the "upgrade" token */
    WS_HS_BAD_VERSION,     /* Sec-WebSocket-Version missing or not 13 */
    WS_HS_BAD_KEY          /* Sec-WebSocket-Key missing or not 16 bytes in base64 */
} ws_hs_result;

ws_hs_result ws_hs_check(const ws_hs_request *rq);
/* Short human text for a result, for logs and error bodies. */
const char *ws_hs_result_text(ws_hs_result res);

/* 1 if the comma-separated list contains token (case-insensitive). */
int ws_hs_has_token(const char *list, const char *token);

/* The rest of the first list element that starts with prefix (compared
 * case-insensitively), copied to out: 1.  0 if there is none; -1 if there
 * is one but it does not fit in outlen bytes with its NUL. */
int ws_hs_token_after(const char *list, const char *prefix, char *out, size_t outlen);

#define WS_ACCEPT_LEN 28
/* Sec-WebSocket-Accept for key: base64(SHA-1(key + RFC 6455 GUID)). */
void ws_hs_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* 1 if the Origin header value names the same scheme, host and port as the
 * request (host_header is the Host header, tls tells the scheme; default
 * ports 80/443 may be omitted on either side).  "null" is never same-origin. */
int ws_hs_same_origin(const char *origin, const char *host_header, int tls);

/* An origin in its one comparable form, "scheme://host:port": scheme http or
 * https, host lower-cased (IPv6 literals in brackets), the port always
 * written, in decimal without leading zeros.  Returns its length, or -1 when
 * origin is not such an origin (a path, user info, another scheme, "null")
 * or the form does not fit in outlen bytes with its NUL. */
#define WS_ORIGIN_MAX 300
int ws_hs_origin_normalise(const char *origin, char *out, size_t outlen);

/* WebSessionOrigin: which pages may open sessions. */
typedef enum {
    WS_ORIGIN_DEFAULT = 0,      /* same origin only */
    WS_ORIGIN_LIST,             /* the listed origins, and the same origin if same */
    WS_ORIGIN_ANY               /* every origin */
} ws_origin_mode;

typedef struct {
    ws_origin_mode mode;
    int same;                   /* WS_ORIGIN_LIST: "same" was listed */
    const char *const *list;    /* WS_ORIGIN_LIST: ws_hs_origin_normalise forms */
    size_t n;
} ws_origin_policy;

/* 1 if a request with this Origin header (NULL when absent: not a browser,
 * always allowed) may open or resume a session under policy p; host_header
 * and tls as for ws_hs_same_origin.  A listed origin matches only as a
 * whole, after both sides are normalised. */
int ws_hs_origin_allowed(const ws_origin_policy *p, const char *origin,
                         const char *host_header, int tls);

#define WS_ID_LEN 32   /* base64url of WS_SECRET_LEN bytes, no padding */
#define WS_ROUTE_MAX 32 /* a route: 1 to 32 of A-Z a-z 0-9 _ - */
#define WS_ID_MAX (WS_ID_LEN + 1 + WS_ROUTE_MAX)    /* with ".route" */

/* 1 if route is a valid route name: 1 to WS_ROUTE_MAX characters of
 * [A-Za-z0-9_-] (safe in a cookie value, a URL, a token and a log). */
int ws_route_valid(const char *route);

/* The id of secret: WS_ID_LEN base64url characters, then "." and route
 * when route is not NULL (it must be ws_route_valid). */
void ws_id_encode(const unsigned char secret[WS_SECRET_LEN], const char *route,
                  char out[WS_ID_MAX + 1]);
/* 1 and the bytes when s is exactly WS_ID_LEN base64url characters,
 * optionally followed by "." and a valid route; then *route (when route
 * is not NULL) points at the route inside s, or is NULL for an id without
 * one.  0 otherwise, secret and *route untouched. */
int ws_id_decode(const char *s, unsigned char secret[WS_SECRET_LEN], const char **route);

/* Public fingerprint for logs and WEBSESSION_ID: hex of the public id. */
void ws_pubid_hex(const unsigned char pubid[WS_PUBID_LEN], char out[2 * WS_PUBID_LEN + 1]);

#endif /* WS_HANDSHAKE_H */
