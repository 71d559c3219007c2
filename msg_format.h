/* msg_format.h -- how messages cross a script's stdin and stdout, no I/O.
 *
 * Two modes (WebSessionMessages):
 *  lines   one text message per line.  To the script: the message then "\n".
 *          From the script: bytes up to "\n"; one "\r" before it is dropped.
 *          A last line without "\n" at EOF is still a message.
 *  framed  records, the same in both directions:
 *              <type> SP <length> LF <payload> LF
 *          type is 'T' (text, UTF-8) or 'B' (binary); length is the payload
 *          size in decimal ASCII without sign or leading zeros ("0" allowed).
 *          Payload bytes are arbitrary.  So `cat` echoes exactly.
 *
 * msg_reader parses script output incrementally: it consumes every byte it
 * is given, keeps what it needs, and reports one event per call (the same
 * calling pattern as ws_parser).  A message longer than max_message, or a
 * malformed framed record, is MSG_EV_ERROR with a reason; the reader is then
 * finished.  Event data stays valid until the next call.
 */
#ifndef MSG_FORMAT_H
#define MSG_FORMAT_H

#include <stddef.h>

#define MSG_LINES  0
#define MSG_FRAMED 1

#define MSG_MAX_HEADER 24   /* "B " + 20 digits + "\n" + NUL */

typedef enum {
    MSG_EV_NEED_MORE = 0,
    MSG_EV_MESSAGE,
    MSG_EV_ERROR
} msg_event_type;

typedef struct {
    msg_event_type type;
    int binary;                 /* framed 'B' records; always 0 in lines mode */
    const unsigned char *data;
    size_t len;
    const char *reason;         /* MSG_EV_ERROR */
} msg_event;

typedef struct msg_reader msg_reader;

msg_reader *msg_reader_create(int mode, size_t max_message);
void msg_reader_destroy(msg_reader *r);

msg_event_type msg_reader_feed(msg_reader *r, const unsigned char *buf,
                               size_t len, size_t *used, msg_event *ev);

/* At EOF: a pending partial line (lines mode) becomes a last message;
 * a partial framed record is MSG_EV_ERROR; nothing pending is NEED_MORE. */
msg_event_type msg_reader_finish(msg_reader *r, msg_event *ev);

/* What to write to the script around a message's payload.  Returns the
 * length written to out (NUL-terminated).  lines mode: empty header. */
size_t msg_encode_header(int mode, int binary, size_t len,
                         char out[MSG_MAX_HEADER]);
/* Always "\n" (1 byte) in both modes. */
#define MSG_TRAILER "\n"

#endif /* MSG_FORMAT_H */
