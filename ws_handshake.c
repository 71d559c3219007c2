/* ws_handshake.c -- WebSocket opening handshake checks, Sec-WebSocket-Accept,
 * the Origin policy, and session id / public id text forms.  No I/O and
 * no allocation.
 */

#include "ws_handshake.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <apr_sha1.h>
#include <apr_base64.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- small helpers ------------------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0..n) with NUL-terminated t. */
static int ieq_n(const char *s, size_t n, const char *t)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (t[i] == '\0' || lower(s[i]) != lower(t[i])) {
            return 0;
        }
    }
    return t[n] == '\0';
}

/* Trims OWS around s: returns the start and sets *n. */
static const char *trim(const char *s, size_t *n)
{
    const char *e;
    while (is_ows(*s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && is_ows(e[-1])) {
        e--;
    }
    *n = (size_t)(e - s);
    return s;
}

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* ---- handshake ---------------------------------------------------------- */

/* The next element of a comma-separated list at *p, trimmed of optional
 * whitespace (maybe empty); advances *p past it.  0 at the end of the list. */
static int next_element(const char **p, const char **start, size_t *len)
{
    const char *s = *p, *end;

    if (!s) {
        return 0;
    }
    while (is_ows(*s)) {
        s++;
    }
    *start = s;
    while (*s && *s != ',') {
        s++;
    }
    end = s;
    while (end > *start && is_ows(end[-1])) {
        end--;
    }
    *len = (size_t)(end - *start);
    *p = *s ? s + 1 : NULL;
    return 1;
}

int ws_hs_has_token(const char *list, const char *token)
{
    const char *p = list, *el;
    size_t n;

    if (!token || !*token) {
        return 0;
    }
    while (next_element(&p, &el, &n)) {
        if (n > 0 && ieq_n(el, n, token)) {
            return 1;
        }
    }
    return 0;
}

int ws_hs_token_after(const char *list, const char *prefix, char *out, size_t outlen)
{
    size_t plen = prefix ? strlen(prefix) : 0, n;
    const char *p = list, *el;

    if (!plen || !outlen) {
        return 0;
    }
    while (next_element(&p, &el, &n)) {
        if (n > plen && ieq_n(el, plen, prefix)) {
            if (n - plen >= outlen) {
                return -1;
            }
            memcpy(out, el + plen, n - plen);
            out[n - plen] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Sec-WebSocket-Key: base64 of 16 bytes, i.e. 22 characters and "==". */
static int key_ok(const char *key)
{
    size_t n, i;
    const char *k;

    if (!key) {
        return 0;
    }
    k = trim(key, &n);
    if (n != 24 || k[22] != '=' || k[23] != '=') {
        return 0;
    }
    for (i = 0; i < 22; i++) {
        if (!is_b64(k[i])) {
            return 0;
        }
    }
    return 1;
}

ws_hs_result ws_hs_check(const ws_hs_request *rq)
{
    const char *v;
    size_t n;

    if (!ws_hs_has_token(rq->upgrade, "websocket")) {
        return WS_HS_NOT_WEBSOCKET;
    }
    if (!rq->method || strcmp(rq->method, "GET") != 0) {
        return WS_HS_BAD_METHOD;
    }
    if (!rq->http11) {
        return WS_HS_BAD_PROTOCOL;
    }
    if (!ws_hs_has_token(rq->connection, "upgrade")) {
        return WS_HS_NO_CONNECTION;
    }
    if (!rq->version) {
        return WS_HS_BAD_VERSION;
    }
    v = trim(rq->version, &n);
    if (n != 2 || v[0] != '1' || v[1] != '3') {
        return WS_HS_BAD_VERSION;
    }
    if (!key_ok(rq->key)) {
        return WS_HS_BAD_KEY;
    }
    return WS_HS_OK;
}

const char *ws_hs_result_text(ws_hs_result res)
{
    switch (res) {
    case WS_HS_OK:
        return "valid WebSocket upgrade";
    case WS_HS_NOT_WEBSOCKET:
        return "not a WebSocket upgrade request";
    case WS_HS_BAD_METHOD:
        return "WebSocket upgrade requires the GET method";
    case WS_HS_BAD_PROTOCOL:
        return "WebSocket upgrade requires HTTP/1.1";
    case WS_HS_NO_CONNECTION:
        return "Connection header lacks the upgrade token";
    case WS_HS_BAD_VERSION:
        return "Sec-WebSocket-Version missing or not 13";
    case WS_HS_BAD_KEY:
        return "Sec-WebSocket-Key missing or invalid";
    }
    return "unknown handshake result";
}

void ws_hs_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
    apr_sha1_ctx_t ctx;
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    char tmp[32];           /* apr_base64_encode_len(20) == 29 */
    size_t n = 0;
    const char *k = key ? trim(key, &n) : "";

    apr_sha1_init(&ctx);
    /* Keys are tiny; feed anything absurdly long in bounded pieces. */
    while (n > 0) {
        unsigned piece = n > 65536 ? 65536u : (unsigned)n;
        apr_sha1_update(&ctx, k, piece);
        k += piece;
        n -= piece;
    }
    apr_sha1_update(&ctx, WS_GUID, (unsigned)(sizeof(WS_GUID) - 1));
    apr_sha1_final(digest, &ctx);
    apr_base64_encode_binary(tmp, digest, APR_SHA1_DIGESTSIZE);
    memcpy(out, tmp, WS_ACCEPT_LEN);
    out[WS_ACCEPT_LEN] = '\0';
}

/* ---- same origin -------------------------------------------------------- */

typedef struct {
    const char *host;       /* without brackets for IPv6 literals */
    size_t host_len;
    int ipv6;
    unsigned port;
} authority;

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

static int ipv6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
        || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Parses host[:port] from s[0..n) exactly; port defaults to defport. */
static int parse_authority(const char *s, size_t n, unsigned defport,
                           authority *a)
{
    size_t i = 0;

    a->ipv6 = 0;
    if (n == 0) {
        return 0;
    }
    if (s[0] == '[') {
        size_t j = 1;
        while (j < n && s[j] != ']') {
            if (!ipv6_char(s[j])) {
                return 0;
            }
            j++;
        }
        if (j >= n || j == 1) {
            return 0;
        }
        a->host = s + 1;
        a->host_len = j - 1;
        a->ipv6 = 1;
        i = j + 1;
    }
    else {
        while (i < n && host_char(s[i])) {
            i++;
        }
        if (i == 0) {
            return 0;
        }
        a->host = s;
        a->host_len = i;
    }
    if (i == n) {
        a->port = defport;
        return 1;
    }
    if (s[i] != ':') {
        return 0;
    }
    i++;
    if (i == n || n - i > 5) {
        return 0;
    }
    a->port = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        a->port = a->port * 10 + (unsigned)(s[i] - '0');
    }
    return a->port >= 1 && a->port <= 65535;
}

int ws_hs_same_origin(const char *origin, const char *host_header, int tls)
{
    const char *scheme = tls ? "https" : "http";
    unsigned defport = tls ? 443 : 80;
    size_t slen = strlen(scheme), on, hn, i;
    const char *o, *h;
    authority oa, ha;

    if (!origin || !host_header) {
        return 0;
    }
    o = trim(origin, &on);
    h = trim(host_header, &hn);
    /* "null" and anything else without our scheme fail here. */
    if (on < slen + 3) {
        return 0;
    }
    for (i = 0; i < slen; i++) {
        if (lower(o[i]) != scheme[i]) {
            return 0;
        }
    }
    if (memcmp(o + slen, "://", 3) != 0) {
        return 0;
    }
    if (!parse_authority(o + slen + 3, on - slen - 3, defport, &oa)
        || !parse_authority(h, hn, defport, &ha)) {
        return 0;
    }
    if (oa.ipv6 != ha.ipv6 || oa.port != ha.port || oa.host_len != ha.host_len) {
        return 0;
    }
    for (i = 0; i < oa.host_len; i++) {
        if (lower(oa.host[i]) != lower(ha.host[i])) {
            return 0;
        }
    }
    return 1;
}

int ws_hs_origin_normalise(const char *origin, char *out, size_t outlen)
{
    const char *o, *scheme;
    size_t on, slen, need, i;
    authority a;
    int n;

    if (!origin) {
        return -1;
    }
    o = trim(origin, &on);
    if (on >= 8 && ieq_n(o, 8, "https://")) {
        scheme = "https";
    }
    else if (on >= 7 && ieq_n(o, 7, "http://")) {
        scheme = "http";
    }
    else {
        return -1;
    }
    slen = strlen(scheme);
    if (!parse_authority(o + slen + 3, on - slen - 3, scheme[4] ? 443 : 80, &a)) {
        return -1;
    }
    /* "scheme://" host, brackets, ':' and the port's digits, NUL */
    need = slen + 3 + a.host_len + (a.ipv6 ? 2 : 0) + 1 + 1;
    for (i = a.port; i > 0; i /= 10) {
        need++;
    }
    if (need > outlen) {
        return -1;
    }
    memcpy(out, scheme, slen);
    memcpy(out + slen, "://", 3);
    n = (int)slen + 3;
    if (a.ipv6) {
        out[n++] = '[';
    }
    for (i = 0; i < a.host_len; i++) {
        out[n++] = lower(a.host[i]);
    }
    if (a.ipv6) {
        out[n++] = ']';
    }
    n += snprintf(out + n, outlen - (size_t)n, ":%u", a.port);
    return n;
}

int ws_hs_origin_allowed(const ws_origin_policy *p, const char *origin,
                         const char *host_header, int tls)
{
    char n[WS_ORIGIN_MAX];
    size_t i;

    if (!origin || p->mode == WS_ORIGIN_ANY) {
        return 1;
    }
    if ((p->mode == WS_ORIGIN_DEFAULT || p->same)
        && ws_hs_same_origin(origin, host_header, tls)) {
        return 1;
    }
    if (p->mode != WS_ORIGIN_LIST || ws_hs_origin_normalise(origin, n, sizeof(n)) < 0) {
        return 0;
    }
    for (i = 0; i < p->n; i++) {
        if (strcmp(p->list[i], n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- session ids -------------------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ws_route_valid(const char *route)
{
    size_t n = 0;

    if (!route) {
        return 0;
    }
    for (; route[n]; n++) {
        char c = route[n];

        if (n >= WS_ROUTE_MAX
            || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return 0;
        }
    }
    return n > 0;
}

void ws_id_encode(const unsigned char secret[WS_SECRET_LEN], const char *route,
                  char out[WS_ID_MAX + 1])
{
    size_t i, o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    for (i = 0; i < WS_SECRET_LEN; i++) {
        acc = (acc << 8) | secret[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 0x3F];
        }
    }
    if (bits) {
        out[o++] = b64url[(acc << (6 - bits)) & 0x3F];
    }
    out[o] = '\0';
    if (route && ws_route_valid(route)) {
        out[o++] = '.';
        memcpy(out + o, route, strlen(route) + 1);
    }
}

/* Branch-free value of a base64url character, or -1: ids are secrets, so
 * decoding should not leak them through data-dependent branches. */
static int b64url_value(unsigned char c)
{
    int x = c, v = -1;
    /* in_range(lo, hi) is -1 (all ones) when lo <= x <= hi, else 0. */
#define IN_RANGE(lo, hi) ((((lo) - 1 - x) & (x - (hi) - 1)) >> 8)
    v += (IN_RANGE('A', 'Z') & (x - 'A' + 1));
    v += (IN_RANGE('a', 'z') & (x - 'a' + 26 + 1));
    v += (IN_RANGE('0', '9') & (x - '0' + 52 + 1));
    v += (IN_RANGE('-', '-') & (62 + 1));
    v += (IN_RANGE('_', '_') & (63 + 1));
#undef IN_RANGE
    return v;
}

int ws_id_decode(const char *s, unsigned char secret[WS_SECRET_LEN], const char **route)
{
    unsigned char tmp[WS_SECRET_LEN];
    size_t i, o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    int bad = 0;
    const char *r = NULL;

    if (!s) {
        return 0;
    }
    for (i = 0; i < WS_ID_LEN; i++) {
        if (s[i] == '\0') {
            return 0;
        }
    }
    /* The route is public: checking it may branch. */
    if (s[WS_ID_LEN] == '.') {
        r = s + WS_ID_LEN + 1;
        if (!ws_route_valid(r)) {
            return 0;
        }
    }
    else if (s[WS_ID_LEN] != '\0') {
        return 0;
    }
    for (i = 0; i < WS_ID_LEN; i++) {
        int v = b64url_value((unsigned char)s[i]);
        bad |= v;               /* negative sets the sign bit */
        acc = (acc << 6) | ((unsigned)v & 0x3F);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < WS_SECRET_LEN) {
                tmp[o++] = (unsigned char)(acc >> bits);
            }
        }
    }
    /* Leftover bits of the final character must be zero (canonical). */
    if (bits) {
        bad |= -(int)((acc & ((1u << bits) - 1)) != 0);
    }
    if (bad < 0 || o != WS_SECRET_LEN) {
        return 0;
    }
    memcpy(secret, tmp, WS_SECRET_LEN);
    if (route) {
        *route = r;
    }
    return 1;
}

void ws_pubid_hex(const unsigned char pubid[WS_PUBID_LEN], char out[2 * WS_PUBID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < WS_PUBID_LEN; i++) {
        out[2 * i] = hex[pubid[i] >> 4];
        out[2 * i + 1] = hex[pubid[i] & 0x0F];
    }
    out[2 * WS_PUBID_LEN] = '\0';
}
