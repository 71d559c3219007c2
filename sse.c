/* sse.c -- encoding outgoing frames as Server-Sent Events. */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "apr_base64.h"

#include "sse.h"
#include "ws_codec.h"

size_t sse_frame_whole(const unsigned char *p, size_t avail, sse_frame *f)
{
    size_t hlen = 2, n;

    if (avail < 2) {
        return 0;
    }
    n = p[1] & 0x7f;
    if (n == 126) {
        hlen = 4;
    }
    else if (n == 127) {
        hlen = 10;
    }
    if (avail < hlen) {
        return 0;
    }
    if (n == 126) {
        n = ((size_t)p[2] << 8) | p[3];
    }
    else if (n == 127) {
        n = 0;
        for (size_t i = 2; i < 10; i++) {
            n = (n << 8) | p[i];
        }
    }
    if (n > avail - hlen) {
        return 0;
    }
    f->opcode = p[0] & 0x0f;
    f->payload = p + hlen;
    f->len = n;
    return hlen + n;
}

static void put(bytebuf *out, const char *s)
{
    bytebuf_append(out, s, strlen(s));
}

#define B64_SLICE (3 * 4096)     /* a multiple of 3: slices concatenate */

static void put_base64(bytebuf *out, const char *event, const unsigned char *p, size_t n)
{
    char tmp[4 * (B64_SLICE / 3) + 1];      /* apr_base64 writes a NUL too */

    put(out, "event: ");
    put(out, event);
    put(out, "\ndata: ");
    while (n > 0) {
        size_t slice = n > B64_SLICE ? B64_SLICE : n;
        int w = apr_base64_encode_binary(tmp, p, (int)slice);

        bytebuf_append(out, tmp, (size_t)w - 1);
        p += slice;
        n -= slice;
    }
    put(out, "\n\n");
}

static void put_text(bytebuf *out, const unsigned char *p, size_t n)
{
    for (;;) {
        const unsigned char *lf = memchr(p, '\n', n);
        size_t piece = lf ? (size_t)(lf - p) : n;

        put(out, "data: ");
        bytebuf_append(out, p, piece);
        put(out, "\n");
        if (!lf) {
            break;
        }
        p += piece + 1;
        n -= piece + 1;
    }
    put(out, "\n");
}

static void put_close(bytebuf *out, const unsigned char *p, size_t n)
{
    char code[16];
    unsigned c = WS_CLOSE_NO_STATUS;

    if (n >= 2) {
        c = ((unsigned)p[0] << 8) | p[1];
    }
    snprintf(code, sizeof(code), "%u", c);
    put(out, "event: close\ndata: ");
    put(out, code);
    if (n > 2) {
        put(out, " ");
        for (size_t i = 2; i < n; i++) {
            unsigned char ch = p[i] == '\r' || p[i] == '\n' ? ' ' : p[i];

            bytebuf_append(out, &ch, 1);
        }
    }
    put(out, "\n\n");
}

void sse_encode(bytebuf *out, const sse_frame *f)
{
    switch (f->opcode) {
    case WS_OP_TEXT:
        if (memchr(f->payload, '\r', f->len)) {
            put_base64(out, "text64", f->payload, f->len);
        }
        else {
            put_text(out, f->payload, f->len);
        }
        break;
    case WS_OP_BINARY:
        put_base64(out, "binary", f->payload, f->len);
        break;
    case WS_OP_CLOSE:
        put_close(out, f->payload, f->len);
        break;
    default:
        break;
    }
}

void sse_comment(bytebuf *out, const char *text)
{
    put(out, ": ");
    put(out, text);
    put(out, "\n\n");
}
