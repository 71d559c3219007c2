/* wsv1.h -- the messages of the websession.v1 subprotocol, no I/O.
 *
 * Every WebSocket message of a websession.v1 connection starts with one
 * ASCII type byte (docs/PROTOCOL.md has the full grammar):
 *   D<payload>     data, in a text or binary frame as the application sent it
 *   R<n>[ <w>]     resume point: n data messages received so far; the server
 *                  adds w, the bytes a client may have unacknowledged
 *   A<n>           acknowledgement: n data messages received so far
 *   P              heartbeat (server to client); answered with A<n>
 *   I<id>          the session id, sent by the server once, on a new session
 *   C<code>[ <r>]  the client's close, in the HTTP fallback only (code 1000
 *                  or 3000-4999, reason up to 123 bytes)
 * Numbers are decimal, 1 to 20 digits, no sign, no leading zeros.
 * Control messages (all but D) are text frames of at most 125 bytes.
 */
#ifndef WSV1_H
#define WSV1_H

#include <stddef.h>
#include <stdint.h>

#define WSV1_PROTOCOL   "websession.v1"
#define WSV1_ID_PREFIX  "websession.id."

/* Close codes of websession.v1 (besides RFC 6455's and the script's). */
#define WSV1_CLOSE_DETACH    4100   /* client: this connection only, the session goes on */
#define WSV1_CLOSE_MISMATCH  4400   /* resumed with another protocol */
#define WSV1_CLOSE_RESUME    4409   /* the resume point cannot be served */
#define WSV1_CLOSE_UNKNOWN   4410   /* session unknown, expired or elsewhere */

typedef enum {
    WSV1_BAD = 0,
    WSV1_DATA,
    WSV1_RESUME,
    WSV1_ACK,
    WSV1_PING,
    WSV1_ID,
    WSV1_CLOSE
} wsv1_type;

typedef struct {
    wsv1_type type;
    const unsigned char *payload;   /* DATA: after the type byte; ID: the id;
                                     * CLOSE: the reason */
    size_t len;
    uint64_t n;                     /* RESUME, ACK; CLOSE: the code */
    uint64_t window;                /* RESUME from the server, else 0 */
    int has_window;                 /* RESUME: the window was given (server form) */
    const char *error;              /* BAD: why */
} wsv1_msg;

/* A count as the protocol writes it (also in the HTTP fallback's headers):
 * 1 if p[0..len) is one, stored in *out. */
int wsv1_number(const unsigned char *p, size_t len, uint64_t *out);

/* Classify one message (binary: it came in a binary frame). */
wsv1_type wsv1_parse(const unsigned char *p, size_t len, int binary, wsv1_msg *m);

#endif /* WSV1_H */
