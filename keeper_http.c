/* keeper_http.c -- the HTTP fallback: the down stream's events and the
 * records of POSTs. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

/* The HTTP fallback's resume point came in a request header: act on it as
 * if the client had sent its R on a WebSocket. */
void http_resume(keeper *k, uint64_t received)
{
    char r[32];
    ws_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = WS_EV_MESSAGE;
    ev.data = (const unsigned char *)r;
    ev.len = (size_t)snprintf(r, sizeof(r), "R%" PRIu64, received);
    if (k->close_queued) {
        v1_while_closing(k, &ev);
    }
    else {
        v1_message(k, &ev);
    }
}

/* A record of a POST broke websession.v1: the session closes (1002). */
static uint32_t post_fail(keeper *k, const char *why, const char **out)
{
    v1_fail(k, WS_CLOSE_PROTOCOL, why);     /* (in_post: ends once delivered) */
    *out = why;
    return IPC_ERR_PROTOCOL;
}

/* One record of a POST.  Returns 1 to go on with the next; else no more
 * records are taken (-1 with *status).  A C only sets *close_code: it is
 * taken once the body has ended with it.  Once the queue toward the script
 * is full (*full), data and close records are left for the client to send
 * again, but acknowledgements are still taken: they free the queue toward
 * the client, which is what lets the script go on. */
static int take_record(keeper *k, const msg_event *ev, uint64_t *seq, int *full,
                       unsigned *close_code, uint32_t *status, const char **why)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_DATA: {
        uint64_t s = (*seq)++;

        if (k->close_queued || s <= k->rx_count || *full) {
            return 1;       /* had it already, closing (dropped), or sent again later */
        }
        if (s > k->rx_count + 1) {
            *status = IPC_ERR_GAP;
            *why = "messages are missing before this one";
            return -1;
        }
        if (!flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))) {
            *full = 1;                  /* full: the client sends the rest later */
            return 1;
        }
        k->rx_count++;
        if (deliver(k, ev->binary, m.payload, m.len) < 0) {
            *status = IPC_ERR_PROTOCOL;
            *why = LINES_BINARY;
            return -1;
        }
        return 1;
    }
    case WSV1_ACK:
        if (m.n > k->out.acked && sendq_ack(&k->out, m.n) < 0) {
            *status = post_fail(k, "websession.v1: acknowledgement of messages never sent",
                                why);
            return -1;
        }
        k->client_spoke = 1;
        return 1;
    case WSV1_CLOSE:
        *close_code = (unsigned)m.n;    /* (1000 or 3000-4999: never 0) */
        return 1;
    case WSV1_BAD:
        *status = post_fail(k, m.error, why);
        return -1;
    default:
        *status = post_fail(k, "websession.v1: a POST carries D, A and C messages only", why);
        return -1;
    }
}

/* An HTTP fallback POST (after a HELLO): take its records, answer with the
 * count of client data messages. */
void handle_post(keeper *k, int fd, const unsigned char *msg, size_t len)
{
    size_t max_record = k->cfg.max_message + 1 > 256 ? k->cfg.max_message + 1 : 256;
    uint32_t status = IPC_OK;
    const char *why = "";
    const unsigned char *p = msg + sizeof(ipc_post);
    size_t n = len - sizeof(ipc_post);      /* the reader's rules: len >= that */
    msg_reader *rd;
    ipc_post hdr;
    int full = 0;
    unsigned close_code = 0;                /* the body's C, if any */

    if (!k->v1) {
        /* The HTTP fallback speaks websession.v1 only: a plain WebSocket
         * session takes none of these records (a down request gets 4400,
         * take_attach). */
        send_reply(fd, IPC_ERR_MISMATCH, "a plain WebSocket session", 0);
        return;
    }
    memcpy(&hdr, msg, sizeof(hdr));
    rd = msg_reader_create(MSG_FRAMED, max_record);
    k->in_post = 1;
    for (;;) {
        msg_event ev;
        size_t used = 0;
        msg_event_type t;

        if (n > 0) {
            t = msg_reader_feed(rd, p, n, &used, &ev);
            p += used;
            n -= used;
            if (t == MSG_EV_NEED_MORE) {
                continue;
            }
        }
        else if ((t = msg_reader_finish(rd, &ev)) == MSG_EV_NEED_MORE) {
            break;
        }
        if (t == MSG_EV_ERROR) {
            status = post_fail(k, ev.reason, &why);
            break;
        }
        if (close_code) {
            /* "A client puts ... a C last": what follows is not taken,
             * nor is the C before it (the session closes with 1002). */
            status = post_fail(k, "websession.v1: a record after C", &why);
            break;
        }
        if (take_record(k, &ev, &hdr.first_seq, &full, &close_code, &status, &why) <= 0) {
            break;
        }
    }
    if (status == IPC_OK && close_code && !full && !k->close_queued) {
        /* The session ends once the close event has gone down.  (Behind
         * data not taken, the C comes again with it.) */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02051: [%s] client closed the session (%u)", k->fp, close_code);
        queue_close(k, close_code, "");
    }
    k->in_post = 0;
    msg_reader_destroy(rd);
    client_heard(k);
    send_reply(fd, status, why, k->rx_count);
}

/* A poll answer is complete: the comment ": end" goes last (PROTOCOL.md,
 * "The end of a poll answer"), so that a client can tell it from one that
 * was cut.  Nothing is encoded after it. */
void poll_end(keeper *k)
{
    sse_comment(&k->http_out, "end");
    k->poll_ended = 1;
}

/* A fallback down request whose resume point is below what the client has
 * acknowledged was overtaken by a newer request of the same client (a
 * proxy may deliver requests out of order): stale, it must not evict the
 * current one nor end the session.  Only websession.v1 counts. */
int http_stale(const keeper *k, uint64_t received)
{
    return k->v1 && received < k->out.acked;
}

/* HTTP fallback: turn queued frames into events (whole frames only: the
 * queue gives a frame boundary whenever nothing is half written). */
void encode_events(keeper *k)
{
    const unsigned char *p;
    size_t len;

    while (bytebuf_pending(&k->http_out) < HTTP_OUT_HIGH
           && (len = sendq_peek(&k->out, &p)) > 0) {
        sse_frame f;
        size_t whole = sse_frame_whole(p, len, &f);

        if (!whole) {
            break;
        }
        if (f.opcode != WS_OP_TEXT || !f.len || f.payload[0] != 'R') {
            k->poll_news = 1;
        }
        sse_encode(&k->http_out, &f);
        sendq_wrote(&k->out, whole);
    }
}
