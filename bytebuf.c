/* bytebuf.c -- the growable byte queue behind the keeper's buffers. */

#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"

void bytebuf_append(bytebuf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->len + n > b->cap) {
        if (b->off > 0) {
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            unsigned char *d;

            while (cap < b->len + n) {
                cap *= 2;
            }
            d = realloc(b->data, cap);
            if (!d) {
                abort();
            }
            b->data = d;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void bytebuf_consume(bytebuf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        b->off = b->len = 0;
    }
}

void bytebuf_clear(bytebuf *b)
{
    b->off = b->len = 0;
}

void bytebuf_free(bytebuf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
