/* keeper_client.c -- the attached client connection: frames queued for it,
 * what it sends (the RFC 6455 codec), writing, heartbeats, attach and drop. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

static size_t client_output(keeper *k, const unsigned char **p);
static void client_wrote(keeper *k, size_t n);

/* ---- frames to the client --------------------------------------------- */

/* A message from the script; websession.v1 prefixes it with its type. */
void queue_data(keeper *k, int binary, const unsigned char *data, size_t len)
{
    unsigned char hdr[WS_MAX_HEADER];
    size_t plen = k->v1 ? 1 : 0;
    size_t h = ws_frame_header(hdr, 1, binary ? WS_OP_BINARY : WS_OP_TEXT, len + plen, NULL);

    sendq_data(&k->out, hdr, h, (const unsigned char *)"D", plen, data, len);
    k->stats.msgs_out++;
    k->stats.bytes_out += len;
}

/* A control frame (pong), or a websession.v1 control message (text). */
static void queue_ctl(keeper *k, int opcode, const void *data, size_t len)
{
    unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL];
    size_t h = ws_frame_header(f, 1, opcode, len, NULL);

    memcpy(f + h, data, len);
    sendq_ctl(&k->out, f, h + len);
}

static void queue_v1(keeper *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void queue_v1(keeper *k, const char *fmt, ...)
{
    char msg[WS_MAX_CONTROL + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    queue_ctl(k, WS_OP_TEXT, msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* The close frame goes after the data already queued.  While a v1
 * connection waits for the client's resume point no data can go, so a
 * close for any reason but the script's end goes at once instead. */
void queue_close_how(keeper *k, unsigned code, const char *reason, int after_data)
{
    unsigned char pl[WS_MAX_CONTROL];
    size_t n = 0;

    if (k->close_queued) {
        return;
    }
    if (code != WS_CLOSE_NO_STATUS) {
        n = ws_close_payload(pl, code, reason);
    }
    {
        unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL];
        size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

        memcpy(f + h, pl, n);
        if (after_data || !k->awaiting_r) {
            sendq_final(&k->out, f, h + n);
        }
        else {
            sendq_close_now(&k->out, f, h + n);
        }
    }
    k->close_queued = 1;
    k->stats.close_code = code;
    snprintf(k->stats.close_reason, sizeof(k->stats.close_reason), "%s", reason ? reason : "");
    if (k->conn == CONN_OPEN || k->conn == CONN_FAILING) {
        conn_set(k, CONN_CLOSING, "close queued");
    }
}

void queue_close(keeper *k, unsigned code, const char *reason)
{
    queue_close_how(k, code, reason, 0);
}

/* ---- the client connection -------------------------------------------- */

void client_drop(keeper *k, const char *why)
{
    /* An HTTP fallback client has no close frame to answer with: its
     * orderly end of the connection after the whole close event is the
     * closest to a receipt there is. */
    int delivered = k->transport && k->peer_eof && k->close_queued
                    && sendq_final_done(&k->out) && !bytebuf_pending(&k->http_out);

    if (k->cfd < 0) {
        return;
    }
    keeper_close(k, &k->cfd);
    k->peer_eof = 0;
    bytebuf_clear(&k->http_out);
    k->poll_ended = 0;
    sendq_detach(&k->out);
    if (delivered || (k->close_queued && sendq_final_done(&k->out))) {
        /* The close handshake is complete: nobody is coming back. */
        begin_end(k, "connection closed");
    }
    conn_set(k, CONN_NONE, why);
    if (!session_over(k)) {
        ws_table_mark_detached(k->env->table, k->cfg.slot, k->cfg.gen, apr_time_now());
        ap_log_error(APLOG_MARK, k->poll_answered ? APLOG_DEBUG : APLOG_INFO, 0, k->env->s,
                     "WS02010: [%s] client detached (%s); waiting up to %" APR_TIME_T_FMT
                     " s for it to return", k->fp, why,
                     apr_time_sec(k->resume_timeout));
    }
}

/* Write what the WebSocket client's socket takes now, without waiting and
 * without acting on an error (the loop sees it next).  Pongs go out as
 * their pings are read, so a client that reads gets one for each; only for
 * one that does not do they pile up, and sendq bounds them. */
static void send_now(keeper *k)
{
    const unsigned char *p;
    size_t len;

    while (k->cfd >= 0 && !k->transport && k->conn != CONN_LINGER
           && (len = client_output(k, &p)) > 0) {
        ssize_t n = send(k->cfd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n <= 0) {
            return;
        }
        client_wrote(k, (size_t)n);
    }
}

static void client_feed(keeper *k, const unsigned char *p, size_t n)
{
    while (!k->input_done) {
        ws_event ev;
        size_t used = 0;
        ws_event_type t = ws_parser_feed(k->parser, p, n, &used, &ev);

        p += used;
        n -= used;
        switch (t) {
        case WS_EV_NEED_MORE:
            return;
        case WS_EV_MESSAGE:
            if (k->close_queued) {
                /* We are closing: data no longer counts, but a v1 client's
                 * R and A do, since the close waits behind the data they
                 * release (the script's exit status after a resume). */
                if (k->v1) {
                    v1_while_closing(k, &ev);
                }
                break;
            }
            if ((k->v1 ? v1_message(k, &ev) : deliver(k, ev.binary, ev.data, ev.len)) < 0) {
                k->input_done = 1;
                return;
            }
            break;
        case WS_EV_PING:
            if (!k->close_queued) {
                queue_ctl(k, WS_OP_PONG, ev.data, ev.len);
                send_now(k);
            }
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            if (k->v1 && ev.code == WSV1_CLOSE_DETACH && !k->close_queued) {
                /* This connection only: the session waits for a resume.
                 * No close frame back: it could land inside a data frame,
                 * and the client has given up on this connection. */
                client_drop(k, "client left this connection (4100)");
                return;
            }
            if (k->close_queued) {
                begin_end(k, "close handshake complete");
            }
            else {
                queue_close(k, ev.code, "");    /* 1005: an empty close, as received */
                begin_end(k, "client closed the session");
            }
            k->input_done = 1;
            return;
        case WS_EV_ERROR:
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                         "WS02012: [%s] client protocol error, closing with %u: %s",
                         k->fp, ev.code, ev.reason);
            /* Nothing more is read; what the script writes in answer to
             * the messages before the error goes out first (T_FAIL). */
            timers_set(&k->timers, T_FAIL, apr_time_now() + apr_time_from_msec(FAIL_GRACE_MS));
            k->fail_code = ev.code;
            k->fail_reason = ev.reason;
            k->input_done = 1;
            if (k->conn == CONN_OPEN) {
                conn_set(k, CONN_FAILING, "client protocol error");
            }
            return;
        }
    }
}

void client_attach(keeper *k, int fd, int relay, const ipc_attach *a,
                   const unsigned char *pre, size_t n)
{
    int one = 1;

    if (k->cfd >= 0) {
        /* A poll answered and lingering is routine, not news. */
        ap_log_error(APLOG_MARK, k->poll_answered ? APLOG_DEBUG : APLOG_INFO, 0, k->env->s,
                     "WS02013: [%s] new attach evicts the previous connection", k->fp);
        keeper_close(k, &k->cfd);
        sendq_detach(&k->out);
        conn_set(k, CONN_NONE, "evicted by a new attach");
    }
    set_nonblock(fd);
    if (!relay) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    k->cfd = fd;
    k->attaches++;
    k->stats.transports |= !(a->flags & IPC_ATTACH_HTTP) ? 1u
                           : (a->flags & IPC_ATTACH_POLL) ? 4u : 2u;
    k->pub.transport = !(a->flags & IPC_ATTACH_HTTP) ? 0u : (a->flags & IPC_ATTACH_POLL) ? 2u : 1u;
    if (k->attaches > 1) {
        ws_table_note(k->env->table, WS_STAT_RESUMES);
    }
    k->peer_eof = 0;
    k->input_done = 0;
    k->transport = a->flags & IPC_ATTACH_HTTP;
    k->poll_open = (a->flags & IPC_ATTACH_OPEN) != 0;
    k->poll_news = 0;
    k->poll_answered = 0;
    k->poll_expired = 0;
    k->poll_ended = 0;
    bytebuf_clear(&k->http_out);
    if (k->transport) {
        /* The request is read; what else the client sends is not frames. */
        k->input_done = 1;
        sse_comment(&k->http_out, WSV1_PROTOCOL);
    }
    ws_parser_destroy(k->parser);
    k->parser = ws_parser_create(k->cfg.max_message, 1);
    k->last_rx = apr_time_now();
    /* a close queued while detached: its deadline starts now */
    conn_set(k, k->close_queued ? CONN_CLOSING : CONN_OPEN, "attached");
    if (k->transport == IPC_ATTACH_POLL) {
        timers_set(&k->timers, T_POLL, k->last_rx + apr_time_from_sec(POLL_WAIT_SECONDS));
    }
    ws_table_mark_attached(k->env->table, k->cfg.slot, k->cfg.gen, k->last_rx);
    if (k->v1) {
        /* Say where we stand; send nothing else until the client has. */
        sendq_hold(&k->out);
        k->awaiting_r = 1;
        if (!k->introduced) {
            char id[WS_ID_MAX + 1];

            ws_id_encode(k->cfg.secret, k->cfg.route[0] ? k->cfg.route : NULL, id);
            queue_v1(k, "I%s", id);
            k->introduced = 1;
        }
        queue_v1(k, "R%" PRIu64 " %u", k->rx_count, (unsigned)k->cfg.buffer);
        k->rx_acked = k->rx_count;
        timers_clear(&k->timers, T_ACK);
        k->ack_held = 0;
    }
    if (k->transport) {
        http_resume(k, a->received);
    }
    else if (n) {
        client_feed(k, pre, n);
    }
}

/* ---- the loop ---------------------------------------------------------- */

/* The end of what this connection carries: shut our side, drain theirs
 * briefly (so that the client's unread bytes cannot turn into a reset that
 * destroys what we wrote). */
static void end_output(keeper *k)
{
    shutdown(k->cfd, SHUT_WR);
    conn_set(k, CONN_LINGER, k->close_queued ? "close sent" : "poll answered");
}

/* Bytes to write next on the client connection. */
static size_t client_output(keeper *k, const unsigned char **p)
{
    if (!k->transport) {
        return sendq_peek(&k->out, p);
    }
    if (!bytebuf_pending(&k->http_out) && !k->poll_ended) {
        encode_events(k);
    }
    *p = k->http_out.data + k->http_out.off;
    return bytebuf_pending(&k->http_out);
}

static void client_wrote(keeper *k, size_t n)
{
    if (k->transport) {
        bytebuf_consume(&k->http_out, n);
    }
    else {
        sendq_wrote(&k->out, n);
    }
}

int flush_client(keeper *k)
{
    const unsigned char *p;
    size_t len;

    for (;;) {
        while (k->cfd >= 0 && k->conn != CONN_LINGER && (len = client_output(k, &p)) > 0) {
            ssize_t n = send(k->cfd, p, len, MSG_NOSIGNAL);

            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return 0;
                }
                client_drop(k, strerror(errno));
                return -1;
            }
            client_wrote(k, (size_t)n);
        }
        if (k->cfd < 0 || k->conn == CONN_LINGER) {
            return 0;
        }
        if (k->poll_ended) {
            end_output(k);      /* a poll's end marker is out */
            return 0;
        }
        if (k->close_queued && sendq_final_done(&k->out)) {
            if (k->transport != IPC_ATTACH_POLL) {
                end_output(k);  /* our close frame (or event) is out */
                return 0;
            }
        }
        else if (k->transport == IPC_ATTACH_POLL && !sendq_has_output(&k->out)
                 && (k->poll_news || k->poll_open || k->poll_expired)) {
            k->poll_answered = 1;   /* a complete answer: the client polls again */
        }
        else {
            return 0;
        }
        poll_end(k);            /* a complete poll answer: its marker, then the end */
    }
}

void read_client(keeper *k)
{
    unsigned char buf[READ_CHUNK];
    ssize_t n = recv(k->cfd, buf, sizeof(buf), 0);

    if (n > 0) {
        client_heard(k);
        if (!k->input_done) {
            client_feed(k, buf, (size_t)n);
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    k->peer_eof = n == 0;
    client_drop(k, n == 0 ? "connection closed by peer" : strerror(errno));
}

/* The client sent something (bytes on its connection, a POST): it is
 * alive for another twice WebSessionPing and a second (PROTOCOL.md,
 * Heartbeats). */
void client_heard(keeper *k)
{
    k->last_rx = apr_time_now();
    if (k->cfg.ping_ms && (k->conn == CONN_OPEN || k->conn == CONN_FAILING)) {
        timers_set(&k->timers, T_SILENT, k->last_rx + 2 * apr_time_from_msec(k->cfg.ping_ms)
                                          + apr_time_from_sec(1));
    }
}

/* websession.v1: acknowledge the client's messages now, if the queue to
 * the script has room; else as soon as it has (ack_room). */
static void acknowledge(keeper *k)
{
    if (!flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))) {
        k->ack_held = 1;
        return;
    }
    k->ack_held = 0;
    queue_v1(k, "A%" PRIu64, k->rx_count);
    k->rx_acked = k->rx_count;
}

/* The queue to the script got shorter: a held acknowledgement may go. */
void ack_room(keeper *k)
{
    if (k->ack_held && flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))) {
        acknowledge(k);
    }
}

/* A deadline of the attached connection (keeper_timer) fell due. */
void client_timer(keeper *k, keeper_timer t, apr_time_t now)
{
    switch (t) {
    case T_FAIL:
        queue_close(k, k->fail_code, k->fail_reason);
        begin_end(k, "client protocol error");
        break;
    case T_CLOSE:
        client_drop(k, "client did not read the close frame");
        break;
    case T_LINGER:
        client_drop(k, "close handshake done");
        break;
    case T_SILENT:
        client_drop(k, "no heartbeat from the client (WebSessionPing)");
        break;
    case T_PING:
        if (k->v1) {
            queue_v1(k, "P");
        }
        else {
            queue_ctl(k, WS_OP_PING, "", 0);
        }
        timers_set(&k->timers, T_PING, now + apr_time_from_msec(k->cfg.ping_ms));
        break;
    case T_ACK:
        acknowledge(k);
        break;
    case T_POLL:
        k->poll_expired = 1;        /* flush_client answers the poll */
        break;
    default:
        break;
    }
}
