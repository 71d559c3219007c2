/* sendq.h -- frames on their way from a keeper to its client, no I/O.
 *
 * Contract:
 *  - Items are complete, unmasked WebSocket frames (ws_frame_header ...).
 *  - Data frames are numbered 1, 2, 3 ... in the order queued; the number
 *    never resets for the life of the session.  With retain set (the
 *    websession.v1 protocol) a data frame stays queued after it is written
 *    until the peer acknowledges it (sendq_ack), so a new connection can be
 *    served from any point the peer names (sendq_resume).  Without retain a
 *    frame is gone once written whole; a frame cut by a lost connection is
 *    written whole again on the next one.
 *  - Control frames go out before further data, but only at a frame
 *    boundary; they are dropped when the connection is lost.
 *  - Control frames of one kind (same opcode; for a text frame, the same
 *    first payload byte: websession.v1's "A", "P", "R", "I") wait at most
 *    SENDQ_PONGS_KEPT deep for pongs and one deep for the others: a newer
 *    one pushes out the oldest unwritten one of its kind.  An ack or a
 *    resume point is cumulative, a heartbeat is one; pongs past the last
 *    16 may be dropped (RFC 6455 5.5.3 allows answering only the latest
 *    ping).  So the control queue holds a few KiB besides the frame being
 *    written, however many pings a peer that never reads may send, and a
 *    peer that does read gets a pong for each of its pings.
 *  - A final frame (a close) goes out after every data frame; a close sent
 *    with sendq_close_now goes out next instead (at a frame boundary, even
 *    while held) and nothing follows it.
 *  - While held (after a v1 attach, until the peer's resume point is
 *    known) only control frames are written.
 *  - sendq_peek/sendq_wrote give the caller contiguous bytes to write.
 */
#ifndef SENDQ_H
#define SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"

typedef struct {
    int retain;
    int held;
    bytebuf dq;               /* data frames [dq.off, dq.len), then maybe the final */
    bytebuf cq;               /* control frames */
    size_t wrel;                /* bytes of dq after dq.off written on this connection */
    size_t cur_left;            /* bytes left of the frame being written */
    int cur_ctl;                /* that frame is a control frame */
    uint64_t queued;            /* data frames queued so far */
    uint64_t acked;             /* data frames no longer in dq */
    uint64_t wframes;           /* data frames written whole on this connection */
    uint64_t sent_max;          /* the highest data frame ever written whole */
    size_t final_len;           /* length of the final frame at the end of dq, 0 if none */
    int final_written;
    int closing_now;            /* sendq_close_now: the close is in cq, nothing after it */
} sendq;

void sendq_init(sendq *q, int retain);
void sendq_free(sendq *q);

void sendq_data(sendq *q, const unsigned char *hdr, size_t hlen,
                const unsigned char *prefix, size_t plen,
                const unsigned char *payload, size_t len);
#define SENDQ_PONGS_KEPT 16

/* A control frame (payload <= 125 bytes). */
void sendq_ctl(sendq *q, const unsigned char *frame, size_t len);
/* Ignored if a final frame is already queued. */
void sendq_final(sendq *q, const unsigned char *frame, size_t len);
/* A close that must not wait for data (errors, the peer's close, stop). */
void sendq_close_now(sendq *q, const unsigned char *frame, size_t len);

/* Contiguous bytes to write next (0 when nothing may be written now). */
size_t sendq_peek(const sendq *q, const unsigned char **p);
void sendq_wrote(sendq *q, size_t n);

/* The peer has received n data frames in all.  -1 if n is more than was
 * ever written whole (on any connection), less than an earlier
 * acknowledgement, or covers a frame this connection is in the middle of
 * writing (nothing changes then).  Frames written on an earlier connection
 * may be acknowledged later (the HTTP fallback acknowledges in POSTs). */
int sendq_ack(sendq *q, uint64_t n);
/* A new connection: the peer has n data frames; writing restarts at frame
 * n + 1 and the hold ends.  -1 if frame n + 1 is no longer held or n is
 * more than was queued. */
int sendq_resume(sendq *q, uint64_t n);
/* The connection is lost. */
void sendq_detach(sendq *q);
void sendq_hold(sendq *q);

/* Bytes queued and not yet acknowledged (the flow-control measure). */
size_t sendq_pending_bytes(const sendq *q);
/* Anything left to write on the current connection? */
int sendq_has_output(const sendq *q);
/* The final frame (or the close_now frame) has been written whole. */
int sendq_final_done(const sendq *q);

#endif /* SENDQ_H */
