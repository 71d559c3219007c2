/* bytebuf.h -- a growable byte queue, no I/O.
 *
 * Bytes [off, len) of data are pending.  bytebuf_append grows the buffer
 * (aborting only if memory is exhausted: callers bound what they queue)
 * and compacts it first when that makes room.  Offsets into the pending
 * bytes stay valid across appends; absolute pointers do not.
 */
#ifndef BYTEBUF_H
#define BYTEBUF_H

#include <stddef.h>

typedef struct {
    unsigned char *data;
    size_t off, len, cap;
} bytebuf;

void bytebuf_append(bytebuf *b, const void *p, size_t n);
/* n bytes from the front are done with. */
void bytebuf_consume(bytebuf *b, size_t n);
void bytebuf_clear(bytebuf *b);
void bytebuf_free(bytebuf *b);

static inline size_t bytebuf_pending(const bytebuf *b)
{
    return b->len - b->off;
}

#endif /* BYTEBUF_H */
