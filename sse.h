/* sse.h -- websession.v1 messages as Server-Sent Events, no I/O.
 *
 * The HTTP fallback (docs/PROTOCOL.md, "The HTTP fallback transports")
 * carries the keeper's outgoing frames as text/event-stream events.  The
 * keeper queues WebSocket frames (sendq) whatever the transport; this
 * encoder turns one complete, unmasked, unfragmented frame into its event:
 *   text without CR   "data: " line per LF-separated piece, then an empty line
 *   text with a CR    "event: text64", one data line of base64 (RFC 4648)
 *   binary            "event: binary", one data line of base64
 *   close             "event: close", "data: <code>[ <reason>]" (1005 when
 *                     the frame has no code; CR and LF in the reason become
 *                     spaces)
 *   ping, pong        nothing (the fallback has no such frames)
 */
#ifndef WS_SSE_H
#define WS_SSE_H

#include <stddef.h>

#include "bytebuf.h"

typedef struct {
    int opcode;                     /* WS_OP_* */
    const unsigned char *payload;   /* into the frame */
    size_t len;
} sse_frame;

/* Total length of the frame at p[0..avail), or 0 if it is not all there. */
size_t sse_frame_whole(const unsigned char *p, size_t avail, sse_frame *f);

/* Append the event for frame f to out. */
void sse_encode(bytebuf *out, const sse_frame *f);

/* Append a comment line and the empty line that ends it. */
void sse_comment(bytebuf *out, const char *text);

#endif /* WS_SSE_H */
