/* msg_format.c -- the script stdin/stdout message format (lines and framed
 * records): an incremental reader for script output and the header encoder.
 * No I/O.
 */

#include "msg_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    RD_HEADER = 0,      /* framed: "<type> <length>\n" */
    RD_PAYLOAD,         /* framed: payload bytes */
    RD_TRAILER,         /* framed: the "\n" after the payload */
    RD_DONE             /* after MSG_EV_ERROR */
} reader_state;

struct msg_reader {
    int mode;
    size_t max_message;
    reader_state state;

    unsigned char *buf;         /* line or payload being gathered */
    size_t len;
    size_t cap;
    int reset;                  /* a message was delivered: drop it next call */

    /* framed header */
    size_t hdr_len;             /* bytes of header seen, type byte included */
    int binary;
    size_t need;                /* declared payload length */

    const char *error;          /* reason once RD_DONE */
};

msg_reader *msg_reader_create(int mode, size_t max_message)
{
    msg_reader *r;

    if (mode != MSG_LINES && mode != MSG_FRAMED) {
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->mode = mode;
    r->max_message = max_message;
    r->state = RD_HEADER;
    return r;
}

void msg_reader_destroy(msg_reader *r)
{
    if (r) {
        free(r->buf);
        free(r);
    }
}

static msg_event_type reader_fail(msg_reader *r, msg_event *ev, const char *why)
{
    r->state = RD_DONE;
    r->error = why;
    ev->type = MSG_EV_ERROR;
    ev->reason = why;
    return MSG_EV_ERROR;
}

/* Room for need bytes; need never exceeds max_message + 1. */
static int reserve(msg_reader *r, size_t need, size_t limit)
{
    size_t cap;
    unsigned char *b;

    if (need <= r->cap) {
        return 1;
    }
    cap = r->cap < 512 ? 1024 : r->cap * 2;
    if (cap < need) {
        cap = need;
    }
    if (cap > limit) {
        cap = limit;
    }
    b = realloc(r->buf, cap);
    if (!b) {
        return 0;
    }
    r->buf = b;
    r->cap = cap;
    return 1;
}

static msg_event_type deliver(msg_reader *r, msg_event *ev, size_t len)
{
    static const unsigned char empty[1] = { 0 };

    r->reset = 1;
    ev->type = MSG_EV_MESSAGE;
    ev->binary = r->mode == MSG_FRAMED ? r->binary : 0;
    ev->data = r->buf ? r->buf : empty;
    ev->len = len;
    return MSG_EV_MESSAGE;
}

static msg_event_type feed_lines(msg_reader *r, const unsigned char *buf,
                                 size_t len, size_t *used, msg_event *ev)
{
    const unsigned char *nl = len ? memchr(buf, '\n', len) : NULL;
    size_t take = nl ? (size_t)(nl - buf) : len;
    /* One more byte than the limit may be a "\r" that will be dropped. */
    size_t limit = r->max_message < (size_t)-1 ? r->max_message + 1 : r->max_message;

    if (take > limit - r->len) {
        *used = take;
        return reader_fail(r, ev, "line longer than WebSessionMaxMessage");
    }
    if (take) {
        if (!reserve(r, r->len + take, limit)) {
            *used = 0;
            return reader_fail(r, ev, "out of memory");
        }
        memcpy(r->buf + r->len, buf, take);
        r->len += take;
    }
    if (!nl) {
        *used = len;
        /* A full extra byte that is not "\r" can only end up too long. */
        if (r->len == limit && r->buf[r->len - 1] != '\r') {
            return reader_fail(r, ev, "line longer than WebSessionMaxMessage");
        }
        return MSG_EV_NEED_MORE;
    }
    *used = take + 1;
    {
        size_t n = r->len;
        if (n && r->buf[n - 1] == '\r') {
            n--;
        }
        if (n > r->max_message) {
            return reader_fail(r, ev, "line longer than WebSessionMaxMessage");
        }
        return deliver(r, ev, n);
    }
}

static msg_event_type feed_framed(msg_reader *r, const unsigned char *buf,
                                  size_t len, size_t *used, msg_event *ev)
{
    size_t pos = 0;

    for (;;) {
        if (r->state == RD_HEADER) {
            while (pos < len) {
                unsigned char c = buf[pos++];
                size_t i = r->hdr_len++;

                if (i == 0) {
                    if (c != 'T' && c != 'B') {
                        *used = pos;
                        return reader_fail(r, ev, "framed record: bad type byte");
                    }
                    r->binary = c == 'B';
                    r->need = 0;
                }
                else if (i == 1) {
                    if (c != ' ') {
                        *used = pos;
                        return reader_fail(r, ev,
                                           "framed record: no space after the type");
                    }
                }
                else if (c >= '0' && c <= '9') {
                    size_t d = (size_t)(c - '0');
                    if (i > 2 && r->need == 0) {
                        *used = pos;
                        return reader_fail(r, ev,
                                           "framed record: leading zero in the length");
                    }
                    /* need * 10 + d > max_message, without overflow */
                    if (d > r->max_message
                        || r->need > (r->max_message - d) / 10) {
                        *used = pos;
                        return reader_fail(r, ev,
                                           "framed record: length over WebSessionMaxMessage");
                    }
                    r->need = r->need * 10 + d;
                }
                else if (c == '\n') {
                    if (i == 2) {
                        *used = pos;
                        return reader_fail(r, ev, "framed record: empty length");
                    }
                    r->state = RD_PAYLOAD;
                    break;
                }
                else {
                    *used = pos;
                    return reader_fail(r, ev,
                                       "framed record: bad character in the length");
                }
            }
            if (r->state == RD_HEADER) {
                *used = pos;
                return MSG_EV_NEED_MORE;
            }
        }

        if (r->state == RD_PAYLOAD) {
            size_t n = r->need - r->len;
            if (n > len - pos) {
                n = len - pos;
            }
            if (n) {
                if (!reserve(r, r->len + n, r->need)) {
                    *used = pos;
                    return reader_fail(r, ev, "out of memory");
                }
                memcpy(r->buf + r->len, buf + pos, n);
                r->len += n;
                pos += n;
            }
            if (r->len < r->need) {
                *used = pos;
                return MSG_EV_NEED_MORE;
            }
            r->state = RD_TRAILER;
        }

        /* RD_TRAILER */
        if (pos == len) {
            *used = pos;
            return MSG_EV_NEED_MORE;
        }
        if (buf[pos++] != '\n') {
            *used = pos;
            return reader_fail(r, ev,
                               "framed record: payload not followed by a newline");
        }
        r->state = RD_HEADER;
        r->hdr_len = 0;
        *used = pos;
        return deliver(r, ev, r->len);
    }
}

/* What every call does first: report a finished reader's error again, and
 * drop the message the previous event handed out.  1 if finished. */
static int begin_call(msg_reader *r, msg_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (r->state == RD_DONE) {
        ev->type = MSG_EV_ERROR;
        ev->reason = r->error;
        return 1;
    }
    if (r->reset) {
        r->reset = 0;
        r->len = 0;
    }
    return 0;
}

msg_event_type msg_reader_feed(msg_reader *r, const unsigned char *buf,
                               size_t len, size_t *used, msg_event *ev)
{
    if (begin_call(r, ev)) {
        *used = 0;
        return MSG_EV_ERROR;
    }
    if (r->mode == MSG_LINES) {
        return feed_lines(r, buf, len, used, ev);
    }
    return feed_framed(r, buf, len, used, ev);
}

msg_event_type msg_reader_finish(msg_reader *r, msg_event *ev)
{
    if (begin_call(r, ev)) {
        return MSG_EV_ERROR;
    }
    if (r->mode == MSG_LINES) {
        size_t n = r->len;
        if (n == 0) {
            return MSG_EV_NEED_MORE;
        }
        /* End of output ends the line like "\n" would. */
        if (r->buf[n - 1] == '\r') {
            n--;
        }
        if (n > r->max_message) {
            return reader_fail(r, ev, "line longer than WebSessionMaxMessage");
        }
        return deliver(r, ev, n);
    }
    if (r->state == RD_HEADER && r->hdr_len == 0) {
        return MSG_EV_NEED_MORE;
    }
    return reader_fail(r, ev, "framed record: truncated at end of output");
}

size_t msg_encode_header(int mode, int binary, size_t len,
                         char out[MSG_MAX_HEADER])
{
    int n;

    if (mode != MSG_FRAMED) {
        out[0] = '\0';
        return 0;
    }
    n = snprintf(out, MSG_MAX_HEADER, "%c %zu\n", binary ? 'B' : 'T', len);
    if (n < 0 || n >= MSG_MAX_HEADER) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}
