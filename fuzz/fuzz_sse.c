/* fuzz_sse.c -- libFuzzer target for the Server-Sent Events encoder (sse.c).
 *
 * Input: byte 0 picks the opcode (low 4 bits); the rest is a payload.  The
 * payload goes into a server frame, is encoded, and the event is parsed back
 * the way a client does (lines, "event:" and "data:" fields, base64): the
 * text, the bytes or the close code and reason must come back exactly (CR
 * and LF in a close reason as spaces).  The raw input is also offered to
 * sse_frame_whole, which must never claim more bytes than it was given.
 */

#include "sse.h"
#include "ws_codec.h"

#include "apr_base64.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

/* Parse one event: its name (or "") and its data lines joined with LF. */
static void parse_event(const char *ev, size_t n, char *name, char *data, size_t *dlen)
{
    size_t at = 0, dl = 0;
    int lines = 0;

    name[0] = '\0';
    check(n >= 2 && ev[n - 1] == '\n' && ev[n - 2] == '\n');
    check(memchr(ev, '\r', n) == NULL);
    while (at < n - 1) {
        const char *lf = memchr(ev + at, '\n', n - at);
        size_t len = (size_t)(lf - (ev + at));

        if (!strncmp(ev + at, "event: ", 7)) {
            memcpy(name, ev + at + 7, len - 7);
            name[len - 7] = '\0';
        }
        else {
            check(len >= 6 && !strncmp(ev + at, "data: ", 6));
            if (lines++) {
                data[dl++] = '\n';
            }
            memcpy(data + dl, ev + at + 6, len - 6);
            dl += len - 6;
        }
        at += len + 1;
    }
    check(at == n - 1);
    data[dl] = '\0';
    *dlen = dl;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    bytebuf out = { 0 };
    sse_frame f;
    unsigned char *frame;
    size_t h, plen, dlen;
    int opcode;
    char name[32], *data;

    if (size == 0) {
        return 0;
    }
    if (sse_frame_whole(in, size, &f)) {
        check(f.payload >= in && f.payload + f.len <= in + size);
    }
    opcode = in[0] & 0x0f;
    plen = size - 1;
    if (opcode == WS_OP_CLOSE && plen > WS_MAX_CONTROL) {
        plen = WS_MAX_CONTROL;
    }
    frame = malloc(WS_MAX_HEADER + plen);
    h = ws_frame_header(frame, 1, opcode, plen, NULL);
    memcpy(frame + h, in + 1, plen);
    check(sse_frame_whole(frame, h + plen, &f) == h + plen);
    check(plen == 0 || sse_frame_whole(frame, h + plen - 1, &f) == 0);
    sse_frame_whole(frame, h + plen, &f);
    sse_encode(&out, &f);
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY && opcode != WS_OP_CLOSE) {
        check(bytebuf_pending(&out) == 0);
        free(frame);
        return 0;
    }
    data = malloc(2 * bytebuf_pending(&out) + 16);
    parse_event((const char *)out.data + out.off, bytebuf_pending(&out), name, data, &dlen);
    if (opcode == WS_OP_CLOSE) {
        char want[200];
        unsigned code = plen >= 2 ? ((unsigned)in[1] << 8) | in[2] : 1005;
        int w = snprintf(want, sizeof(want), "%u", code);

        if (plen > 2) {
            want[w++] = ' ';
            for (size_t i = 3; i < plen + 1; i++) {
                want[w++] = in[i] == '\r' || in[i] == '\n' ? ' ' : (char)in[i];
            }
        }
        check(!strcmp(name, "close") && dlen == (size_t)w && !memcmp(data, want, dlen));
    }
    else if (opcode == WS_OP_TEXT && !memchr(in + 1, '\r', plen)) {
        check(name[0] == '\0' && dlen == plen && !memcmp(data, in + 1, plen));
    }
    else {
        unsigned char *back = malloc((size_t)apr_base64_decode_len(data) + 1);
        int n = apr_base64_decode_binary(back, data);

        check(!strcmp(name, opcode == WS_OP_TEXT ? "text64" : "binary"));
        check((size_t)n == plen && !memcmp(back, in + 1, plen));
        free(back);
    }
    free(data);
    free(frame);
    bytebuf_free(&out);
    return 0;
}
