/* fuzz_handshake.c -- libFuzzer target for ws_handshake.c.
 *
 * Input: byte 0 holds flags (HTTP/1.1, TLS); the rest is split on NUL bytes
 * into header values: method, Upgrade, Connection, Sec-WebSocket-Version,
 * Sec-WebSocket-Key, Origin, Host, a session id.  A missing field is NULL.
 */

#include "ws_handshake.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS 8

static void must(int cond)
{
    if (!cond) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy, *f[NFIELDS] = { NULL };
    unsigned flags;
    size_t i, start, nf = 0;
    ws_hs_request rq;
    ws_hs_result res;

    if (size < 1) {
        return 0;
    }
    flags = data[0];
    copy = malloc(size);
    must(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    /* Split on NUL: each field is NUL-terminated in place. */
    start = 0;
    for (i = 0; i < size && nf < NFIELDS; i++) {
        if (i == size - 1 || copy[i] == '\0') {
            f[nf++] = copy + start;
            start = i + 1;
            if (i == size - 1) {
                break;
            }
        }
    }

    rq.method = f[0];
    rq.http11 = (flags & 1) != 0;
    rq.upgrade = f[1];
    rq.connection = f[2];
    rq.version = f[3];
    rq.key = f[4];
    res = ws_hs_check(&rq);
    must(res >= WS_HS_OK && res <= WS_HS_BAD_KEY);
    must(ws_hs_result_text(res) != NULL);
    if (res == WS_HS_OK) {
        char acc[WS_ACCEPT_LEN + 1];
        memset(acc, 0, sizeof(acc));
        ws_hs_accept(rq.key, acc);
        must(strlen(acc) == WS_ACCEPT_LEN);
        must(ws_hs_has_token(rq.upgrade, "websocket"));
        must(ws_hs_has_token(rq.connection, "upgrade"));
    }
    /* The key can be anything for ws_hs_accept. */
    {
        char acc[WS_ACCEPT_LEN + 1];
        ws_hs_accept(f[4], acc);
        must(strlen(acc) == WS_ACCEPT_LEN);
    }

    /* Token lists with the fields as lists and as tokens. */
    for (i = 0; i < NFIELDS; i++) {
        size_t j;
        for (j = 0; j < NFIELDS; j++) {
            int has = ws_hs_has_token(f[i], f[j]);
            /* A token never contains a comma, so a match means no comma. */
            if (has) {
                must(f[j] && strchr(f[j], ',') == NULL);
            }
        }
        /* Every field is a list that contains itself when it is one
         * simple token. */
        if (f[i] && f[i][0] && strspn(f[i], "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == strlen(f[i])) {
            must(ws_hs_has_token(f[i], f[i]));
        }
    }

    /* Same origin in both schemes, and with the arguments the other way. */
    {
        int a = ws_hs_same_origin(f[5], f[6], 0);
        int b = ws_hs_same_origin(f[5], f[6], 1);
        must(!(a && b));        /* one scheme cannot match both */
        (void)ws_hs_same_origin(f[6], f[5], (int)(flags >> 1) & 1);
        (void)ws_hs_same_origin(f[0], f[1], (int)(flags >> 2) & 1);
    }

    /* An origin's normal form is its own normal form, is allowed by a list
     * naming it, and is same-origin with its own authority as the Host. */
    {
        char n[WS_ORIGIN_MAX], again[WS_ORIGIN_MAX];
        int len = ws_hs_origin_normalise(f[5], n, sizeof(n));

        if (len >= 0) {
            const char *const list[1] = { n };
            ws_origin_policy p = { WS_ORIGIN_LIST, 0, list, 1 };
            const char *authority = strstr(n, "://") + 3;
            int tls = n[4] == 's';

            must((size_t)len == strlen(n));
            must(ws_hs_origin_normalise(n, again, sizeof(again)) == len);
            must(strcmp(n, again) == 0);
            must(ws_hs_origin_allowed(&p, f[5], f[6], (int)(flags >> 3) & 1));
            must(ws_hs_same_origin(f[5], authority, tls));
            must(!ws_hs_same_origin(f[5], authority, !tls));
        }
    }

    /* Session ids: whatever decodes re-encodes to the same text, with its
     * route if it had one; a route is valid and inside the input. */
    for (i = 0; i < NFIELDS; i++) {
        unsigned char secret[WS_SECRET_LEN];
        const char *route = "unset";
        if (ws_id_decode(f[i], secret, &route)) {
            char id[WS_ID_MAX + 1];
            must(!route || (route == f[i] + WS_ID_LEN + 1 && ws_route_valid(route)));
            ws_id_encode(secret, route, id);
            must(strcmp(id, f[i]) == 0);
        }
        must(!f[i] || ws_route_valid(f[i]) == (strlen(f[i]) >= 1 && strlen(f[i]) <= WS_ROUTE_MAX
                                      && strspn(f[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                "abcdefghijklmnopqrstuvwxyz0123456789_-")
                                         == strlen(f[i])));
    }
    /* And bytes from the input encode and decode back. */
    if (size >= WS_SECRET_LEN) {
        unsigned char back[WS_SECRET_LEN];
        char id[WS_ID_MAX + 1], hex[2 * WS_PUBID_LEN + 1];
        const char *route;
        ws_id_encode(data, NULL, id);
        must(strlen(id) == WS_ID_LEN);
        must(ws_id_decode(id, back, &route) && memcmp(back, data, WS_SECRET_LEN) == 0);
        must(route == NULL);
        ws_id_encode(data, "node-1_a", id);
        must(strlen(id) == WS_ID_LEN + 9 && strcmp(id + WS_ID_LEN, ".node-1_a") == 0);
        must(ws_id_decode(id, back, &route) && memcmp(back, data, WS_SECRET_LEN) == 0);
        must(route && strcmp(route, "node-1_a") == 0);
        ws_pubid_hex(data, hex);
        must(strlen(hex) == 2 * WS_PUBID_LEN);
    }

    free(copy);
    return 0;
}
